"""Identification events: who is at the kiosk, whatever they used to say so.

Every source -- the on-screen keypad, a smart card reader, a serial
magstripe/barcode scanner, a bill's QR code -- ends in one of two events:

* :class:`AccountIdentified` with an :data:`AccountReference`: a virtual
  number (typed or printed), a card hash (HMAC of a card's identity under the
  deployment key; never the card data itself), or the fields of a bill's QR.
* :class:`IdentificationFailed` with a reason and the message for the screen,
  in Russian and English.

Which reference a source may give is an invariant checked when the event is
built: the keypad gives virtual numbers, a card reader card hashes, a scanner
either (printed number or magstripe card), a QR its payment fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from drivers.scanner.gost_qr import PaymentQr

__all__ = [
    "AccountIdentified",
    "AccountReference",
    "CardHashRef",
    "IdentificationEvent",
    "IdentificationFailed",
    "IdentificationSource",
    "QrRef",
    "VirtualNumberRef",
]

IdentificationSource = Literal["keypad", "card", "scanner", "qr"]
SOURCES: Final = ("keypad", "card", "scanner", "qr")

_CARD_HASH: Final = re.compile(r"[0-9a-f]{32,128}\Z")
_REASON: Final = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualNumberRef:
    """A resident's virtual number (canonical ASCII digits)."""

    number: str

    def __post_init__(self) -> None:
        if not (1 <= len(self.number) <= 32 and self.number.isascii() and self.number.isdigit()):
            raise ValueError("VirtualNumberRef.number must be 1-32 ASCII digits")


@dataclass(frozen=True, slots=True, kw_only=True)
class CardHashRef:
    """A card hash: lower-case hex HMAC of a card's identity under the deployment key."""

    card_hash: str

    def __post_init__(self) -> None:
        if not _CARD_HASH.match(self.card_hash) or len(self.card_hash) % 2:
            raise ValueError("CardHashRef.card_hash must be lower-case hex, 16-64 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class QrRef:
    """The fields of a bill's GOST R 56042 QR; ``payment.account_reference`` is ``persAcc``."""

    payment: PaymentQr

    def __post_init__(self) -> None:
        if not isinstance(self.payment, PaymentQr):
            raise TypeError("QrRef.payment must be a PaymentQr")


AccountReference = VirtualNumberRef | CardHashRef | QrRef

_ALLOWED: Final[dict[str, tuple[type, ...]]] = {
    "keypad": (VirtualNumberRef,),
    "card": (CardHashRef,),
    "scanner": (VirtualNumberRef, CardHashRef),
    "qr": (QrRef,),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountIdentified:
    """A resident identified themselves; look ``reference`` up in the catalog."""

    source: IdentificationSource
    reference: AccountReference

    def __post_init__(self) -> None:
        allowed = _ALLOWED.get(self.source)
        if allowed is None:
            raise ValueError(f"unknown identification source {self.source!r}")
        if not isinstance(self.reference, allowed):
            raise TypeError(f"source {self.source!r} cannot give a {type(self.reference).__name__}")


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentificationFailed:
    """An attempt to identify failed; show ``message_ru``/``message_en`` and let them retry."""

    source: IdentificationSource
    reason: str
    message_ru: str
    message_en: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown identification source {self.source!r}")
        if not _REASON.match(self.reason):
            raise ValueError("IdentificationFailed.reason must be a snake_case code")
        if not (self.message_ru.strip() and self.message_en.strip()):
            raise ValueError("IdentificationFailed needs both messages")

    def message(self, lang: str) -> str:
        """The message in ``lang`` (``"ru"``; anything else is English)."""
        return self.message_ru if lang == "ru" else self.message_en


IdentificationEvent = AccountIdentified | IdentificationFailed
