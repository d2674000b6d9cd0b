"""The PC/SC resident card driver's error taxonomy.

One base error, :class:`CardError`, for everything this package raises on
purpose. Below it:

* :class:`CardNotRecognised` -- the card answered, but it is not a lobbypay
  resident card: no UID, no resident application, an ATR that is not ISO 7816-3,
  a record without an account number. Permanent for that card; the kiosk shows
  "card not recognised, try again".
* :class:`CardProtocolError` (a kind of :class:`CardNotRecognised`) -- bytes
  from the card (or the reader) that break ISO 7816-4: a response shorter than
  its status word, a truncated BER-TLV object, an unexpected status word, plain
  garbage. :class:`TlvError` is the BER-TLV flavour. The resident sees the
  same "not recognised" message (so ``except CardNotRecognised`` covers both);
  technicians see the detail in the log.
* :class:`CardRemovedError` -- the card left the reader before the read
  finished. Temporary: the resident simply taps again.
* :class:`ReaderUnavailable` -- no reader, pcscd not running or restarting, the
  reader held by another program. Temporary: the monitor retries with backoff.
* :class:`NoCardError` -- a read was asked for, but no card arrived in time.

``temporary`` decides retry. Every error carries a title and a next step in
Russian and English, because a resident or a technician reads them. Messages
never contain a card's UID or record in full (see ``session.mask_uid``).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "LANGUAGES",
    "CardError",
    "CardNotRecognised",
    "CardProtocolError",
    "CardRemovedError",
    "NoCardError",
    "ReaderUnavailable",
    "TlvError",
]

LANGUAGES = ("ru", "en")


class CardError(Exception):
    """Base of every error raised on purpose by :mod:`drivers.pcsc`."""

    temporary: ClassVar[bool] = False
    titles: ClassVar[dict[str, str]] = {
        "ru": "Карта не распознана",
        "en": "Card not recognised",
    }
    next_steps: ClassVar[dict[str, str]] = {
        "ru": "Приложите карту ещё раз.",
        "en": "Please present your card again.",
    }

    def title(self, lang: str = "ru") -> str:
        """The one-line title shown to a resident, in ``lang`` ("ru" or "en")."""
        return self.titles.get(lang, self.titles["en"])

    def next_step(self, lang: str = "ru") -> str:
        """What the resident or technician should do next, in ``lang``."""
        return self.next_steps.get(lang, self.next_steps["en"])


class CardNotRecognised(CardError):
    """The card is not a lobbypay resident card (unknown card, no UID, no record)."""


class CardProtocolError(CardNotRecognised):
    """The card or reader answered with bytes that break ISO 7816-4.

    ``sw`` is the status word (SW1 << 8 | SW2) when one was received.
    """

    def __init__(self, message: str, *, sw: int | None = None) -> None:
        super().__init__(message)
        self.sw = sw


class TlvError(CardProtocolError):
    """A BER-TLV structure (ISO/IEC 7816-4 §5.2.2) is malformed or out of bounds."""


class CardRemovedError(CardError):
    """The card was removed before the read finished."""

    temporary = True
    titles: ClassVar[dict[str, str]] = {
        "ru": "Карта убрана слишком рано",
        "en": "Card removed too early",
    }
    next_steps: ClassVar[dict[str, str]] = {
        "ru": "Приложите карту и держите её до звукового сигнала.",
        "en": "Present your card and hold it until the beep.",
    }


class ReaderUnavailable(CardError):
    """No usable reader right now: none attached, pcscd down, or the reader is busy."""

    temporary = True
    titles: ClassVar[dict[str, str]] = {
        "ru": "Считыватель карт недоступен",
        "en": "Card reader unavailable",
    }
    next_steps: ClassVar[dict[str, str]] = {
        "ru": "Подождите немного или обратитесь к сотруднику.",
        "en": "Please wait a moment or ask a member of staff.",
    }


class NoCardError(CardError):
    """No card was presented within the time allowed."""

    temporary = True
    titles: ClassVar[dict[str, str]] = {
        "ru": "Карта не приложена",
        "en": "No card presented",
    }
    next_steps: ClassVar[dict[str, str]] = {
        "ru": "Приложите карту к считывателю.",
        "en": "Place your card on the reader.",
    }
