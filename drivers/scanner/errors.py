"""Error taxonomy of :mod:`drivers.scanner`.

One base, :class:`ScanError`; every error carries a machine ``reason`` code and
a user-facing message in Russian and English that the kiosk can show as is
("not recognised, try again" and the next step). Messages and ``str(error)``
never contain scanned content: not an account, not a card number, not a value
from a bill -- at most the *name* of a bill field.

* :class:`QrError` -- a GOST R 56042-2014 payload was refused (permanent for
  that payload: scanning the same paper again gives the same answer).
* :class:`Track2Error` -- a magstripe read was refused; :class:`BankCardSwiped`
  is the special case of a payment card swiped by mistake.
* :class:`ScannerPortError` -- the serial port failed (temporary: reopen).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

__all__ = [
    "BankCardSwiped",
    "QrEncodeError",
    "QrEncodingError",
    "QrError",
    "QrFieldError",
    "QrHeaderError",
    "QrSizeError",
    "ScanError",
    "ScannerPortError",
    "Track2Error",
]

Messages = Mapping[str, tuple[str, str]]
"""reason -> (message_ru, message_en)."""


class ScanError(Exception):
    """Base of every error raised by :mod:`drivers.scanner`.

    ``reason`` is a stable code (``snake_case``) for logs and for mapping to a
    screen; ``field`` names the bill field at fault, when there is one.
    """

    messages: ClassVar[Messages] = MappingProxyType({})
    default_message: ClassVar[tuple[str, str]] = (
        "Не удалось распознать. Попробуйте ещё раз.",
        "Not recognised. Please try again.",
    )
    temporary: ClassVar[bool] = False

    def __init__(self, reason: str, detail: str = "", *, field: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.field = field
        text = f"{reason}: {detail}" if detail else reason
        if field is not None:
            text = f"{text} (field {field})"
        super().__init__(text)

    @property
    def message_ru(self) -> str:
        """What the kiosk shows a resident, in Russian."""
        return self.messages.get(self.reason, self.default_message)[0]

    @property
    def message_en(self) -> str:
        """What the kiosk shows a resident, in English."""
        return self.messages.get(self.reason, self.default_message)[1]

    def message(self, lang: str) -> str:
        """The user-facing message in ``lang`` (``"ru"`` or ``"en"``; anything else is English)."""
        return self.message_ru if lang == "ru" else self.message_en


_QR_NOT_RECOGNISED = (
    "QR-код квитанции не распознан. Попробуйте ещё раз или введите номер лицевого счёта.",
    "The bill's QR code was not recognised. Try again or type your account number.",
)
_QR_BAD_DETAILS = (
    "В QR-коде квитанции неверные платёжные реквизиты. Введите номер лицевого счёта "
    "и сообщите об ошибке в управляющую компанию.",
    "The bill's QR code has invalid payment details. Type your account number and "
    "tell your management company about the error.",
)


class QrError(ScanError):
    """A GOST R 56042-2014 payload was refused.

    Reasons: ``bad_header``, ``unsupported_version``, ``bad_encoding``,
    ``payload_too_large``, ``too_many_fields``, ``field_too_long``,
    ``malformed_field``, ``duplicate_field``, ``missing_field``, ``bad_value``,
    ``bad_check_digit``, ``cannot_encode``.
    """

    messages: ClassVar[Messages] = MappingProxyType(
        {
            "bad_header": _QR_NOT_RECOGNISED,
            "unsupported_version": (
                "Эта версия QR-кода квитанции не поддерживается. Введите номер лицевого счёта.",
                "This version of the bill's QR code is not supported. Type your account number.",
            ),
            "bad_encoding": _QR_NOT_RECOGNISED,
            "payload_too_large": _QR_NOT_RECOGNISED,
            "too_many_fields": _QR_NOT_RECOGNISED,
            "field_too_long": _QR_NOT_RECOGNISED,
            "malformed_field": _QR_NOT_RECOGNISED,
            "duplicate_field": _QR_BAD_DETAILS,
            "missing_field": _QR_BAD_DETAILS,
            "bad_value": _QR_BAD_DETAILS,
            "bad_check_digit": _QR_BAD_DETAILS,
        }
    )
    default_message: ClassVar[tuple[str, str]] = _QR_NOT_RECOGNISED


class QrHeaderError(QrError):
    """The service block (``ST0001`` + encoding digit + separator) is wrong (GOST R 56042 cl. 6)."""


class QrEncodingError(QrError):
    """The bytes are not valid in the encoding the header declares."""


class QrSizeError(QrError):
    """The payload, a field, or the number of fields is over a limit."""


class QrFieldError(QrError):
    """A field is malformed, duplicated, missing or has an invalid value."""


class QrEncodeError(QrError):
    """The encoder cannot represent the given fields (our side, not a scanned bill)."""


_TRACK_NOT_RECOGNISED = (
    "Карта не распознана. Проведите карту жителя ещё раз.",
    "Card not recognised. Swipe your resident card again.",
)


class Track2Error(ScanError):
    """A magnetic stripe read was refused.

    Reasons: ``read_error``, ``malformed_track``, ``bad_lrc``, ``not_resident_card``,
    ``other_deployment``, ``bank_card``.
    """

    messages: ClassVar[Messages] = MappingProxyType(
        {
            "read_error": (
                "Карта не прочитана. Проведите её ещё раз ровно и не спеша.",
                "The card could not be read. Swipe it again, evenly and not too fast.",
            ),
            "malformed_track": _TRACK_NOT_RECOGNISED,
            "bad_lrc": (
                "Карта прочитана с ошибкой. Проведите её ещё раз.",
                "The card was misread. Swipe it again.",
            ),
            "not_resident_card": (
                "Это не карта жителя. Проведите карту жителя или введите номер лицевого счёта.",
                "This is not a resident card. Swipe your resident card or type your "
                "account number.",
            ),
            "other_deployment": (
                "Эта карта выпущена для другой системы. Введите номер лицевого счёта.",
                "This card was issued for another system. Type your account number.",
            ),
            "bank_card": (
                "Это банковская карта. Для входа проведите карту жителя; банковской картой "
                "вы оплатите на следующем шаге.",
                "This is a bank card. Swipe your resident card to sign in; you pay with "
                "the bank card at a later step.",
            ),
        }
    )
    default_message: ClassVar[tuple[str, str]] = _TRACK_NOT_RECOGNISED


class BankCardSwiped(Track2Error):
    """A payment card was swiped or scanned by mistake.

    Carries nothing read from the card: no digits, no track data, no cause
    chain. The buffer it came from has already been overwritten with zeros.
    """

    def __init__(self) -> None:
        super().__init__("bank_card")


class ScannerPortError(ScanError):
    """The serial port failed or vanished; the scanner reopens it (temporary)."""

    temporary: ClassVar[bool] = True
    messages: ClassVar[Messages] = MappingProxyType(
        {
            "port_failed": (
                "Сканер временно недоступен. Введите номер лицевого счёта.",
                "The scanner is temporarily unavailable. Type your account number.",
            ),
        }
    )
