"""A simulated resident card reader for the demo and kiosk tests (no pcscd, no pyscard).

Theory of operation: :class:`SimulatedCardReaderMonitor` offers the same
interface as :class:`~drivers.pcsc.reader.CardReaderMonitor` (``start()``,
``events()``, ``close()``, see :class:`~drivers.pcsc.stream.CardEventSource`)
and the same events. When a simulated card is presented, it is read by the
real :class:`~drivers.pcsc.session.ResidentCardSession` over the card's
:meth:`~SimulatedCard.transmit` -- APDU bytes in, R-APDU bytes out -- so the
demo exercises the same protocol code as a real reader; only pyscard and
pcscd are left out. Two cards are provided: :class:`SimulatedUidCard` (a
contactless card behind a PC/SC reader: GET DATA ``FF CA``) and
:class:`SimulatedResidentCard` (the contact resident card profile of
DESIGN.md: SELECT AID, SELECT EF 01 01, READ BINARY of a BER-TLV record).

All methods run on the event loop thread; ``present``/``remove``/``unplug``/
``plug`` are synchronous because nothing here waits for a device.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from drivers.pcsc.apdu import CommandApdu
from drivers.pcsc.errors import CardError
from drivers.pcsc.events import (
    CardEvent,
    CardInserted,
    CardReadFailed,
    CardRemoved,
    ReaderAdded,
    ReaderRemoved,
)
from drivers.pcsc.identity import (
    TAG_ACCOUNT,
    TAG_CARD_SERIAL,
    TAG_DEPLOYMENT_ID,
    CardIdentity,
)
from drivers.pcsc.session import RESIDENT_AID, RESIDENT_EF, ResidentCardSession
from drivers.pcsc.stream import CardEventQueue

__all__ = [
    "SIMULATED_READER",
    "SimulatedCard",
    "SimulatedCardReaderMonitor",
    "SimulatedResidentCard",
    "SimulatedUidCard",
]

SIMULATED_READER = "lobbypay Simulated PCD 00 00"

# PC/SC part 3 ATR of a MIFARE Classic 1K behind a contactless reader.
_ATR_CONTACTLESS = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
# A contact card speaking T=1: 3B 84 01 'LOBY' TCK.
_ATR_CONTACT = bytes.fromhex("3B84014C4F42599D")

_OK = b"\x90\x00"


class SimulatedCard(Protocol):
    """A card as the reader sees it: an ATR and an APDU exchange."""

    @property
    def atr(self) -> bytes:
        """The Answer-to-Reset."""

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU with an R-APDU (data + SW1 SW2)."""


class SimulatedUidCard:
    """A contactless card: GET DATA ``FF CA 00 00 Le`` answers the UID (PC/SC part 3 §3.2.2.1.3)."""

    def __init__(self, uid: bytes, *, atr: bytes = _ATR_CONTACTLESS) -> None:
        if not 4 <= len(uid) <= 10:
            raise ValueError("a UID is 4..10 bytes")
        self._uid = bytes(uid)
        self._atr = atr

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[:4] == b"\xff\xca\x00\x00" and len(apdu) == 5:
            le = apdu[4] or 256
            if le < len(self._uid):
                return bytes([0x6C, len(self._uid)])
            return self._uid + _OK
        return b"\x6a\x81"


def _tlv(tag: int, value: bytes) -> bytes:
    if len(value) < 0x80:
        return bytes([tag, len(value)]) + value
    return bytes([tag, 0x81, len(value)]) + value


class SimulatedResidentCard:
    """A contact card with the lobbypay resident application and its record (DESIGN.md)."""

    def __init__(
        self,
        account: str,
        *,
        card_serial: str | None = None,
        deployment_id: str | None = None,
        atr: bytes = _ATR_CONTACT,
    ) -> None:
        # Validates the fields the same way a read will.
        CardIdentity(
            kind="resident_record",
            account=account,
            card_serial=card_serial,
            deployment_id=deployment_id,
        )
        record = _tlv(TAG_ACCOUNT, account.encode("ascii"))
        if card_serial is not None:
            record += _tlv(TAG_CARD_SERIAL, card_serial.encode("ascii"))
        if deployment_id is not None:
            record += _tlv(TAG_DEPLOYMENT_ID, deployment_id.encode("ascii"))
        self._record = record
        self._atr = atr
        self._app = False
        self._ef = False

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = apdu[:4]
        if cla == 0xFF:
            return b"\x6e\x00"
        if ins == 0xA4 and p1 == 0x04:
            self._app = apdu[5 : 5 + apdu[4]] == RESIDENT_AID if len(apdu) > 5 else False
            self._ef = False
            return _OK if self._app else b"\x6a\x82"
        if ins == 0xA4 and p1 == 0x02:
            self._ef = self._app and apdu[4:7] == b"\x02" + RESIDENT_EF
            return _OK if self._ef else b"\x6a\x82"
        if ins == 0xB0:
            if not self._ef:
                return b"\x69\x86"
            offset = (p1 << 8) | p2
            le = (apdu[4] or 256) if len(apdu) == 5 else 256
            if offset >= len(self._record):
                return b"\x6b\x00"
            chunk = self._record[offset : offset + le]
            return chunk + (b"\x62\x82" if len(chunk) < le else _OK)
        return b"\x6d\x00"


class SimulatedCardReaderMonitor:
    """Simulated readers with the :class:`~drivers.pcsc.reader.CardReaderMonitor` interface."""

    def __init__(
        self,
        readers: tuple[str, ...] = (SIMULATED_READER,),
        *,
        queue_events_max: int = 64,
    ) -> None:
        if not readers:
            raise ValueError("at least one simulated reader")
        self._initial = readers
        self._readers: dict[str, SimulatedCard | None] = {}
        self._queue = CardEventQueue(queue_events_max)
        self._started = False

    @property
    def readers(self) -> list[str]:
        return list(self._readers)

    @property
    def dropped_events(self) -> int:
        return self._queue.dropped_events

    def start(self) -> None:
        """Plug the configured readers in."""
        if self._started:
            raise RuntimeError("monitor already started")
        self._started = True
        for name in self._initial:
            self.plug(name)

    def events(self) -> AsyncIterator[CardEvent]:
        return self._queue.stream()

    async def close(self) -> None:
        self._queue.close()

    async def __aenter__(self) -> SimulatedCardReaderMonitor:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _reader(self, reader: str | None) -> str:
        name = reader if reader is not None else next(iter(self._readers), None)
        if name is None or name not in self._readers:
            raise KeyError(f"no simulated reader {reader!r}")
        return name

    def plug(self, reader: str) -> None:
        """A reader appears."""
        if reader in self._readers:
            return
        self._readers[reader] = None
        self._queue.put(ReaderAdded(reader=reader))

    def unplug(self, reader: str | None = None) -> None:
        """A reader disappears, with any card in it."""
        name = self._reader(reader)
        if self._readers[name] is not None:
            self._queue.put(CardRemoved(reader=name))
        del self._readers[name]
        self._queue.put(ReaderRemoved(reader=name))

    def present(self, card: SimulatedCard, reader: str | None = None) -> CardEvent:
        """Put ``card`` on the reader and read it; returns the event it produced."""
        name = self._reader(reader)
        if self._readers[name] is not None:
            self.remove(name)
        self._readers[name] = card
        event: CardEvent
        try:
            identity = _read(card)
        except CardError as exc:
            event = CardReadFailed(reader=name, error=exc, atr_hex=_atr_hex(card))
        else:
            event = CardInserted(reader=name, atr_hex=card.atr.hex().upper(), identity=identity)
        self._queue.put(event)
        return event

    def remove(self, reader: str | None = None) -> None:
        """Take the card off the reader (nothing happens if there is none)."""
        name = self._reader(reader)
        if self._readers[name] is not None:
            self._readers[name] = None
            self._queue.put(CardRemoved(reader=name))


def _atr_hex(card: SimulatedCard) -> str | None:
    return card.atr.hex().upper() if 2 <= len(card.atr) <= 33 else None


def _read(card: SimulatedCard) -> CardIdentity:
    session = ResidentCardSession(card.atr)
    step: CommandApdu | CardIdentity = session.start()
    while isinstance(step, CommandApdu):
        step = session.receive(card.transmit(step.to_bytes()))
    return step
