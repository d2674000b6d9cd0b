"""Events a card reader monitor delivers (no pyscard here, so consumers and
simulators can use them without the PC/SC stack).

Every event is a frozen, slotted, keyword-only dataclass that checks its
invariants when built. Order per reader is always: ``ReaderAdded``, then any
number of (``CardInserted`` or ``CardReadFailed``) each followed by
``CardRemoved``, then ``ReaderRemoved`` -- a monitor that loses a reader (unplug,
pcscd restart) first reports the card in it as removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.pcsc.atr import ATR_BYTES_MAX
from drivers.pcsc.errors import CardError
from drivers.pcsc.identity import CardIdentity

__all__ = [
    "READER_NAME_CHARS_MAX",
    "CardEvent",
    "CardInserted",
    "CardReadFailed",
    "CardRemoved",
    "ReaderAdded",
    "ReaderRemoved",
    "describe_event",
]

READER_NAME_CHARS_MAX = 128
"""pcsc-lite's MAX_READERNAME."""

_HEX = frozenset("0123456789ABCDEF")


def _check_reader(reader: str) -> None:
    if not 1 <= len(reader) <= READER_NAME_CHARS_MAX:
        raise ValueError(f"a reader name is 1..{READER_NAME_CHARS_MAX} characters")


def _check_atr_hex(atr_hex: str) -> None:
    if len(atr_hex) % 2 or not set(atr_hex) <= _HEX:
        raise ValueError("atr_hex is upper-case hex")
    if not 2 <= len(atr_hex) // 2 <= ATR_BYTES_MAX:
        raise ValueError(f"an ATR is 2..{ATR_BYTES_MAX} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderAdded:
    """A reader appeared (plugged in, or seen after pcscd came back)."""

    reader: str

    def __post_init__(self) -> None:
        _check_reader(self.reader)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderRemoved:
    """A reader disappeared (unplugged, or pcscd stopped)."""

    reader: str

    def __post_init__(self) -> None:
        _check_reader(self.reader)


@dataclass(frozen=True, slots=True, kw_only=True)
class CardInserted:
    """A card was presented and read: ``identity`` says who it is (masked ``repr``)."""

    reader: str
    atr_hex: str
    identity: CardIdentity

    def __post_init__(self) -> None:
        _check_reader(self.reader)
        _check_atr_hex(self.atr_hex)


@dataclass(frozen=True, slots=True, kw_only=True)
class CardRemoved:
    """The card left the reader (or the reader went away with it)."""

    reader: str

    def __post_init__(self) -> None:
        _check_reader(self.reader)


@dataclass(frozen=True, slots=True, kw_only=True)
class CardReadFailed:
    """A card was presented but could not be read; ``error`` is the typed reason.

    ``error.temporary`` tells the kiosk whether to say "try again" (removed too
    early, reader busy) or "card not recognised". ``atr_hex`` is set when the
    ATR was obtained.
    """

    reader: str
    error: CardError
    atr_hex: str | None = None

    def __post_init__(self) -> None:
        _check_reader(self.reader)
        if not isinstance(self.error, CardError):
            raise TypeError("error must be a CardError")
        if self.atr_hex is not None:
            _check_atr_hex(self.atr_hex)


CardEvent = ReaderAdded | ReaderRemoved | CardInserted | CardRemoved | CardReadFailed
"""Anything :meth:`drivers.pcsc.reader.CardReaderMonitor.events` yields."""


def describe_event(event: CardEvent) -> str:
    """A log-safe one-line description: identities masked, errors by type only."""
    if isinstance(event, CardInserted):
        return f"CardInserted reader={event.reader!r} {event.identity.masked()}"
    if isinstance(event, CardReadFailed):
        return f"CardReadFailed reader={event.reader!r} error={type(event.error).__name__}"
    return f"{type(event).__name__} reader={event.reader!r}"
