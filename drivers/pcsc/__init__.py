"""Resident cards over PC/SC: sans-I/O APDU layer, identities, and the pyscard transport.

Import map (only :mod:`drivers.pcsc.reader` imports pyscard):

* :mod:`drivers.pcsc.apdu` -- command/response APDUs and status words (ISO 7816-4 §5).
* :mod:`drivers.pcsc.tlv` -- BER-TLV parsing (ISO 7816-4 §5.2.2).
* :mod:`drivers.pcsc.atr` -- ATR parsing and the PC/SC contactless ATR.
* :mod:`drivers.pcsc.identity` -- :class:`CardIdentity`, masking, :func:`card_hash`.
* :mod:`drivers.pcsc.session` -- :class:`ResidentCardSession`, the read state machine.
* :mod:`drivers.pcsc.events` -- the monitor's event dataclasses.
* :mod:`drivers.pcsc.stream` -- the bounded drop-oldest event queue and the
  :class:`CardEventSource` protocol both monitors satisfy.
* :mod:`drivers.pcsc.simulator` -- a simulated reader and cards (demo, kiosk tests).
* :mod:`drivers.pcsc.reader` -- :class:`~drivers.pcsc.reader.CardReaderMonitor`,
  :func:`~drivers.pcsc.reader.read_card` (pyscard).
* :mod:`drivers.pcsc.cli` -- ``lobbypay card watch|read``.
"""

from typing import TYPE_CHECKING

from drivers._lazy import lazy_exports

if TYPE_CHECKING:
    from drivers.pcsc.errors import (
        CardError,
        CardNotRecognised,
        CardProtocolError,
        CardRemovedError,
        NoCardError,
        ReaderUnavailable,
        TlvError,
    )
    from drivers.pcsc.events import (
        CardEvent,
        CardInserted,
        CardReadFailed,
        CardRemoved,
        ReaderAdded,
        ReaderRemoved,
    )
    from drivers.pcsc.identity import CardIdentity, card_hash, mask_uid
    from drivers.pcsc.session import ResidentCardSession
    from drivers.pcsc.stream import CardEventQueue, CardEventSource

# Names are imported on first use (PEP 562), so that importing this package —
# which `lobbypay --help` does for every command — stays cheap.
_LAZY: dict[str, tuple[str, str]] = {
    "CardError": ("drivers.pcsc.errors", "CardError"),
    "CardNotRecognised": ("drivers.pcsc.errors", "CardNotRecognised"),
    "CardProtocolError": ("drivers.pcsc.errors", "CardProtocolError"),
    "CardRemovedError": ("drivers.pcsc.errors", "CardRemovedError"),
    "NoCardError": ("drivers.pcsc.errors", "NoCardError"),
    "ReaderUnavailable": ("drivers.pcsc.errors", "ReaderUnavailable"),
    "TlvError": ("drivers.pcsc.errors", "TlvError"),
    "CardEvent": ("drivers.pcsc.events", "CardEvent"),
    "CardInserted": ("drivers.pcsc.events", "CardInserted"),
    "CardReadFailed": ("drivers.pcsc.events", "CardReadFailed"),
    "CardRemoved": ("drivers.pcsc.events", "CardRemoved"),
    "ReaderAdded": ("drivers.pcsc.events", "ReaderAdded"),
    "ReaderRemoved": ("drivers.pcsc.events", "ReaderRemoved"),
    "CardIdentity": ("drivers.pcsc.identity", "CardIdentity"),
    "card_hash": ("drivers.pcsc.identity", "card_hash"),
    "mask_uid": ("drivers.pcsc.identity", "mask_uid"),
    "ResidentCardSession": ("drivers.pcsc.session", "ResidentCardSession"),
    "CardEventQueue": ("drivers.pcsc.stream", "CardEventQueue"),
    "CardEventSource": ("drivers.pcsc.stream", "CardEventSource"),
}


__getattr__ = lazy_exports(globals(), _LAZY)


__all__ = [
    "CardError",
    "CardEvent",
    "CardEventQueue",
    "CardEventSource",
    "CardIdentity",
    "CardInserted",
    "CardNotRecognised",
    "CardProtocolError",
    "CardReadFailed",
    "CardRemoved",
    "CardRemovedError",
    "NoCardError",
    "ReaderAdded",
    "ReaderRemoved",
    "ReaderUnavailable",
    "ResidentCardSession",
    "TlvError",
    "card_hash",
    "mask_uid",
]
