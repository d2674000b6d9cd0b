"""Virtual smart cards for tests: APDU in, R-APDU out (ISO/IEC 7816-4).

These are the card side of the conversation, written independently of
``drivers.pcsc`` (they share no code with it), so the driver is tested against
bytes, not against itself. The same objects answer in-process (the two-peer
harness in the unit tests) and over vpcd (``vpcd.py``) through the real pcscd.

A card's :meth:`VirtualCard.respond` returns the R-APDU bytes, or
:data:`DISCONNECT` to emulate the card leaving the field in the middle of a
command (the vpcd connection is closed instead of answering).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

DISCONNECT: Final = object()
"""Returned by :meth:`VirtualCard.respond`: drop the connection instead of answering."""

RESIDENT_AID = bytes.fromhex("F04C4F42425950415901")
RESIDENT_EF = bytes.fromhex("0101")


def _with_tck(atr_without_tck: bytes) -> bytes:
    check = 0
    for byte in atr_without_tck[1:]:
        check ^= byte
    return atr_without_tck + bytes([check])


# PC/SC part 3 ATR of a contactless storage card: MIFARE Classic 1K (SS=03, NN=0001).
ATR_MIFARE_1K = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
# PC/SC part 3 ATR of an ISO 14443-4 contactless smart card (historical bytes from the ATS).
ATR_ISO14443_4 = _with_tck(bytes.fromhex("3B888001" + "0000000033818100"))
# A contact card speaking T=1 (TD1 = 01): 3B 84 01 'LOBY' TCK.
ATR_CONTACT_T1 = _with_tck(bytes.fromhex("3B84014C4F4259"))
# A contact card speaking T=0 only (no TCK): 3B 04 'LOBY'.
ATR_CONTACT_T0 = bytes.fromhex("3B044C4F4259")

SW_OK = b"\x90\x00"


def sw(value: int) -> bytes:
    """Two status bytes."""
    return value.to_bytes(2, "big")


def tlv(tag: int, value: bytes) -> bytes:
    """A primitive BER-TLV object with a one-byte tag (short or long length form)."""
    if len(value) < 0x80:
        length = bytes([len(value)])
    elif len(value) < 0x100:
        length = bytes([0x81, len(value)])
    else:
        length = bytes([0x82]) + len(value).to_bytes(2, "big")
    return bytes([tag]) + length + value


def resident_record(
    account: str = "1234567890",
    serial: str | None = "SN-0001",
    deployment: str | None = "kazan-01",
    *,
    extra: bytes = b"",
) -> bytes:
    """The EF 01 01 content of the lobbypay resident card profile."""
    out = tlv(0x80, account.encode("ascii"))
    if serial is not None:
        out += tlv(0x81, serial.encode("ascii"))
    if deployment is not None:
        out += tlv(0x82, deployment.encode("ascii"))
    return out + extra


class VirtualCard:
    """Base card: an ATR, a log of the commands received, power control."""

    def __init__(self, atr: bytes) -> None:
        self.atr = atr
        self.commands: list[bytes] = []
        self.power_events: list[str] = []
        self._lock = threading.Lock()

    def handle(self, apdu: bytes) -> bytes | object:
        """Log and answer one command (thread-safe: vpcd runs it in a thread)."""
        with self._lock:
            self.commands.append(bytes(apdu))
            return self.respond(bytes(apdu))

    def respond(self, apdu: bytes) -> bytes | object:
        return sw(0x6D00)

    def power(self, event: str) -> None:
        self.power_events.append(event)

    def instructions(self) -> list[int]:
        """INS bytes of every command received, in order."""
        return [c[1] for c in self.commands if len(c) >= 2]


class UidCard(VirtualCard):
    """A contactless card behind a PC/SC reader: answers GET DATA (FF CA 00 00) with its UID.

    PC/SC part 3 §3.2.2.1.3: Le = 00 returns the full UID; a shorter Le than the
    UID gets 6Cxx; anything else is 6A81 (function not supported), as a reader
    answers for a storage card.
    """

    def __init__(self, uid: bytes, atr: bytes = ATR_MIFARE_1K) -> None:
        super().__init__(atr)
        self.uid = uid

    def respond(self, apdu: bytes) -> bytes | object:
        if apdu[:4] == b"\xff\xca\x00\x00" and len(apdu) == 5:
            le = apdu[4] or 256
            if le < len(self.uid):
                return sw(0x6C00 | len(self.uid))
            return self.uid + SW_OK
        return sw(0x6A81)


class ProfileCard(VirtualCard):
    """A contact card with the lobbypay resident application and EF 01 01.

    Options (ISO 7816-4 behaviours real cards show):

    * ``get_response_chunk``: answer commands with data by 61xx and hand the data
      out by GET RESPONSE at most this many bytes at a time (T=0 cards).
    * ``strict_le``: a READ BINARY whose Le exceeds what is left gets 6Cxx.
    * ``eof_status``: the status word for a short read at the end of the file
      (6282 per ISO 7816-4, or 9000 as many cards do).
    * ``fci``: data returned by SELECT AID.
    """

    def __init__(
        self,
        record: bytes,
        *,
        atr: bytes = ATR_CONTACT_T1,
        get_response_chunk: int | None = None,
        strict_le: bool = False,
        eof_status: int = 0x6282,
        fci: bytes = b"",
    ) -> None:
        super().__init__(atr)
        self.record = record
        self.get_response_chunk = get_response_chunk
        self.strict_le = strict_le
        self.eof_status = eof_status
        self.fci = fci
        self.app_selected = False
        self.ef_selected = False
        self._pending = b""

    def _answer(self, data: bytes, status: int = 0x9000) -> bytes:
        if data and self.get_response_chunk is not None and status == 0x9000:
            self._pending = data
            return sw(0x6100 | min(len(data), 256) & 0xFF)
        return data + sw(status)

    def respond(self, apdu: bytes) -> bytes | object:
        if len(apdu) < 4:
            return sw(0x6700)
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        if cla == 0xFF:
            return sw(0x6E00)
        if ins == 0xC0:
            return self._get_response(body)
        self._pending = b""
        if ins == 0xA4 and p1 == 0x04:
            lc = body[0] if body else 0
            if body[1 : 1 + lc] != RESIDENT_AID:
                self.app_selected = self.ef_selected = False
                return sw(0x6A82)
            self.app_selected = True
            self.ef_selected = False
            return self._answer(self.fci)
        if ins == 0xA4 and p1 == 0x02:
            if not self.app_selected or body[:3] != b"\x02" + RESIDENT_EF:
                return sw(0x6A82)
            if p2 != 0x0C:
                return sw(0x6A86)
            self.ef_selected = True
            return SW_OK
        if ins == 0xB0:
            return self._read_binary(p1, p2, body)
        return sw(0x6D00)

    def _read_binary(self, p1: int, p2: int, body: bytes) -> bytes | object:
        if not self.ef_selected:
            return sw(0x6986)
        if len(body) != 1:
            return sw(0x6700)
        offset = (p1 << 8) | p2
        le = body[0] or 256
        if offset >= len(self.record):
            return sw(0x6B00)
        chunk = self.record[offset : offset + le]
        if len(chunk) < le:
            if self.strict_le:
                return sw(0x6C00 | len(chunk))
            if self.eof_status != 0x9000:
                return chunk + sw(self.eof_status)
        return self._answer(chunk)

    def _get_response(self, body: bytes) -> bytes:
        if not self._pending:
            return sw(0x6985)
        le = (body[0] or 256) if body else 256
        size = min(le, self.get_response_chunk or 256, len(self._pending))
        out, self._pending = self._pending[:size], self._pending[size:]
        if self._pending:
            return out + sw(0x6100 | min(len(self._pending), 256) & 0xFF)
        return out + SW_OK


Rule = Callable[[bytes], bytes | object | None]


class MisbehavingCard(VirtualCard):
    """Wraps a well-behaved card; each rule may override the answer to a command.

    A rule gets the command and returns the bytes to send, :data:`DISCONNECT`,
    or ``None`` to let the next rule (and finally the inner card) answer.
    """

    def __init__(self, inner: VirtualCard, *rules: Rule, atr: bytes | None = None) -> None:
        super().__init__(inner.atr if atr is None else atr)
        self.inner = inner
        self.rules = rules

    def respond(self, apdu: bytes) -> bytes | object:
        for rule in self.rules:
            answer = rule(apdu)
            if answer is not None:
                return answer
        return self.inner.respond(apdu)


def on_ins(ins: int, answer: bytes | object, *, after: int = 0, times: int | None = None) -> Rule:
    """A rule: answer commands with INS ``ins`` by ``answer``.

    Only from the ``after``-th such command on, and at most ``times`` times.
    """
    seen = [0]

    def rule(apdu: bytes) -> bytes | object | None:
        if len(apdu) >= 2 and apdu[1] == ins:
            seen[0] += 1
            index = seen[0] - 1
            if index >= after and (times is None or index < after + times):
                return answer
        return None

    return rule


def always(answer: bytes | object) -> Rule:
    """A rule: answer every command by ``answer``."""
    return lambda _apdu: answer


def stall_on_ins(ins: int, release: threading.Event, timeout_s: float = 15.0) -> Rule:
    """A rule: never answer INS ``ins`` -- hold the command until ``release`` is set
    (or ``timeout_s`` passes), then leave the field, like a card that hangs."""

    def rule(apdu: bytes) -> bytes | object | None:
        if len(apdu) >= 2 and apdu[1] == ins:
            release.wait(timeout_s)
            return DISCONNECT
        return None

    return rule
