"""What a scanned line is: a bill's payment QR, a magstripe read, or barcode digits.

Theory of operation
-------------------
One serial scanner may be a 2D imager (bill QR codes, printed barcodes with a
resident's account number) or a magstripe reader, and the kiosk does not care
which: every complete line from :mod:`drivers.scanner.framing` goes through
:func:`classify_line`, which tries, in order:

1. ``ST0001...`` -> GOST R 56042-2014 payment QR (:mod:`drivers.scanner.gost_qr`);
2. a track sentinel (``%``, ``;``) or ``digits=digits`` -> magstripe
   (:mod:`drivers.scanner.track2`), where bank cards are refused first;
3. ASCII digits (spaces and dashes allowed) -> a printed account number;
   a card number (13-19 digits, known IIN, Luhn) is refused as a bank card;
4. anything else -> "not recognised".

Lines shorter than ``line_bytes_min`` are noise and give no event at all
(power-up garbage should not flash an error at a resident). The line buffer
is overwritten with zeros before :func:`classify_line` returns, whatever it
was, since it may have held card data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from drivers.scanner.errors import BankCardSwiped, QrError, ScanError, Track2Error
from drivers.scanner.gost_qr import DEFAULT_POLICY, PaymentQr, QrPolicy, decode_payment_qr
from drivers.scanner.gost_qr import is_payment_qr as _is_payment_qr
from drivers.scanner.track2 import (
    DEFAULT_PROFILE,
    ResidentTrack2,
    Track2Profile,
    looks_like_track,
    pan_like,
    parse_track2,
    wipe,
)

__all__ = [
    "ClassifierConfig",
    "DigitsScanned",
    "QrScanned",
    "ResidentCardSwiped",
    "ScanEvent",
    "ScanKind",
    "ScanRejected",
    "classify_line",
]

logger = logging.getLogger(__name__)

ScanKind = Literal["qr", "track", "barcode", "unknown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassifierConfig:
    """How scanned lines are interpreted on this kiosk."""

    qr_policy: QrPolicy = DEFAULT_POLICY
    track2: Track2Profile = DEFAULT_PROFILE
    line_bytes_min: int = 5
    """Shorter lines are noise: no event (every real read is longer: a track 2
    has sentinels, separator and 8+ digits, a QR a 7-byte header, an account
    number 6+ digits)."""
    digits_max: int = 32
    """Longest digit string taken as a printed account number."""

    def __post_init__(self) -> None:
        if self.line_bytes_min < 1 or self.digits_max < 1:
            raise ValueError("ClassifierConfig limits must be positive")


DEFAULT_CLASSIFIER: Final = ClassifierConfig()


@dataclass(frozen=True, slots=True, kw_only=True)
class QrScanned:
    """A bill's payment QR code was read and validated."""

    payment: PaymentQr

    def __post_init__(self) -> None:
        if not isinstance(self.payment, PaymentQr):
            raise TypeError("QrScanned.payment must be a PaymentQr")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResidentCardSwiped:
    """A lobbypay resident card was swiped in the magstripe reader."""

    card: ResidentTrack2

    def __post_init__(self) -> None:
        if not isinstance(self.card, ResidentTrack2):
            raise TypeError("ResidentCardSwiped.card must be a ResidentTrack2")


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitsScanned:
    """A printed barcode with digits (a resident's account number) was read.

    ``digits`` is ASCII digits only (spaces and dashes removed); validating it
    as a virtual number is the identification layer's job.
    """

    digits: str = field(repr=False)

    def __post_init__(self) -> None:
        if not (self.digits.isascii() and self.digits.isdigit()):
            raise ValueError("DigitsScanned.digits must be ASCII digits")


_UNRECOGNISED: Final = (
    "Код не распознан. Отсканируйте QR-код квитанции или карту жителя ещё раз.",
    "Code not recognised. Scan the bill's QR code or your resident card again.",
)
_MESSAGES: Final = MappingProxyType({"unrecognised": _UNRECOGNISED})


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanRejected:
    """A line was read but refused; messages are ready for the kiosk screen."""

    kind: ScanKind
    reason: str
    message_ru: str
    message_en: str

    def __post_init__(self) -> None:
        if self.kind not in ("qr", "track", "barcode", "unknown"):
            raise ValueError(f"ScanRejected.kind {self.kind!r}")
        if not (self.reason and self.message_ru and self.message_en):
            raise ValueError("ScanRejected needs a reason and both messages")

    @classmethod
    def from_error(cls, kind: ScanKind, error: ScanError) -> ScanRejected:
        """Build from a typed error (its reason and messages, never its content)."""
        return cls(
            kind=kind,
            reason=error.reason,
            message_ru=error.message_ru,
            message_en=error.message_en,
        )


ScanEvent = QrScanned | ResidentCardSwiped | DigitsScanned | ScanRejected


def _unrecognised() -> ScanRejected:
    ru, en = _MESSAGES["unrecognised"]
    return ScanRejected(kind="unknown", reason="unrecognised", message_ru=ru, message_en=en)


def classify_line(
    line: bytearray, config: ClassifierConfig = DEFAULT_CLASSIFIER
) -> ScanEvent | None:
    """Classify one complete line (see the module docstring); wipes ``line``."""
    try:
        return _classify(line, config)
    finally:
        wipe(line)


def _classify(line: bytearray, config: ClassifierConfig) -> ScanEvent | None:
    if len(line.strip()) < config.line_bytes_min:
        logger.debug("scan_noise_line bytes=%d", len(line))
        return None
    if _is_payment_qr(line):
        try:
            return QrScanned(payment=decode_payment_qr(line, config.qr_policy))
        except QrError as exc:
            logger.info("scan_rejected kind=qr reason=%s field=%s", exc.reason, exc.field)
            return ScanRejected.from_error("qr", exc)
    if looks_like_track(line):
        try:
            card = parse_track2(line, config.track2)
        except BankCardSwiped as exc:
            logger.info("scan_rejected kind=track reason=bank_card")
            return ScanRejected.from_error("track", exc)
        except Track2Error as exc:
            logger.info("scan_rejected kind=track reason=%s", exc.reason)
            return ScanRejected.from_error("track", exc)
        return ResidentCardSwiped(card=card)
    return _classify_digits(line, config)


def _classify_digits(line: bytearray, config: ClassifierConfig) -> ScanEvent:
    digits = bytearray(b for b in line if b not in b" -\t")
    try:
        if not digits or not all(0x30 <= b <= 0x39 for b in digits):
            logger.info("scan_rejected kind=unknown reason=unrecognised")
            return _unrecognised()
        if pan_like(digits):
            logger.info("scan_rejected kind=barcode reason=bank_card")
            return ScanRejected.from_error("barcode", BankCardSwiped())
        if len(digits) > config.digits_max:
            logger.info("scan_rejected kind=barcode reason=unrecognised")
            return _unrecognised()
        return DigitsScanned(digits=digits.decode("ascii"))
    finally:
        wipe(digits)
