"""The ESC/POS driver's error taxonomy.

One base error, :class:`EscPosError`, for everything this package raises on
purpose. Below it:

* :class:`ReceiptError` -- a receipt or printed document that breaks its own
  invariants (a local error: our caller built something wrong).
* :class:`EscPosProtocolError` -- bytes from the far end that do not follow the
  ESC/POS command reference: :class:`StatusByteError` for a DLE EOT reply without
  its fixed bits, :class:`EscPosDecodeError` for a command stream the decoder
  cannot take.
* :class:`PrinterError` -- device faults. ``temporary`` says whether retrying
  after a person fixes something (paper, cover) can succeed; the kiosk uses it to
  decide between "ask staff and retry" and "take the printer out of service".
  Each fault carries a title and a next step in Russian and English, because a
  resident or a technician reads them.

Faults are values the caller handles, never crashes: nothing in this package lets
an ``OSError``, ``UnicodeError`` or ``struct.error`` escape from a public call.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "CoverOpenError",
    "EscPosDecodeError",
    "EscPosError",
    "EscPosProtocolError",
    "PaperOutError",
    "PrinterConnectionError",
    "PrinterError",
    "PrinterHardwareError",
    "PrinterOfflineError",
    "PrinterTemporaryError",
    "PrinterTimeout",
    "QrCapacityError",
    "QrDecodeError",
    "ReceiptError",
    "StatusByteError",
]

LANGUAGES = ("ru", "en")


class EscPosError(Exception):
    """Base of every error raised on purpose by :mod:`drivers.escpos`."""


class ReceiptError(EscPosError, ValueError):
    """A receipt, receipt line or document element breaks an invariant."""


class QrCapacityError(ReceiptError):
    """The QR payload does not fit the largest QR version at the chosen level."""


class QrDecodeError(EscPosError):
    """A QR module matrix fails its format, version or Reed-Solomon checks."""


class EscPosProtocolError(EscPosError):
    """Bytes from the far end do not follow the ESC/POS command reference."""


class StatusByteError(EscPosProtocolError):
    """A DLE EOT status reply lacks the fixed bits the command reference requires."""

    def __init__(self, request: int, value: int) -> None:
        super().__init__(f"status byte 0x{value:02X} for DLE EOT {request} lacks its fixed bits")
        self.request = request
        self.value = value


class EscPosDecodeError(EscPosProtocolError):
    """The decoder met a command it cannot take (unknown, oversize, out of range)."""


class PrinterError(EscPosError):
    """A receipt printer fault. ``temporary`` faults can clear without a technician."""

    temporary: ClassVar[bool] = False
    titles: ClassVar[dict[str, str]] = {
        "ru": "Ошибка принтера",
        "en": "Printer error",
    }
    next_steps: ClassVar[dict[str, str]] = {
        "ru": "Обратитесь к сотруднику.",
        "en": "Please ask a member of staff.",
    }

    def title(self, lang: str = "ru") -> str:
        """The one-line title shown to a resident, in ``lang`` ("ru" or "en")."""
        return self.titles.get(lang, self.titles["en"])

    def next_step(self, lang: str = "ru") -> str:
        """What the reader should do next, in ``lang`` ("ru" or "en")."""
        return self.next_steps.get(lang, self.next_steps["en"])


class PrinterTemporaryError(PrinterError):
    """A fault a person can clear (paper, cover, offline): retry after it clears."""

    temporary = True


class PaperOutError(PrinterTemporaryError):
    """The paper roll is empty (DLE EOT 4, bits 5-6; DLE EOT 2, bit 5).

    ``lines_sent`` and ``lines_total`` say how far the receipt got: the number of
    printed lines the driver had sent when the fault was seen. A printer buffers
    data, so it may have printed fewer; it never printed more.
    """

    titles: ClassVar[dict[str, str]] = {"ru": "Закончилась бумага", "en": "Out of paper"}
    next_steps: ClassVar[dict[str, str]] = {
        "ru": "Чек не напечатан полностью. Обратитесь к сотруднику.",
        "en": "The receipt was not printed in full. Please ask a member of staff.",
    }

    def __init__(self, message: str = "paper out", *, lines_sent: int = 0, lines_total: int = 0):
        super().__init__(message)
        self.lines_sent = lines_sent
        self.lines_total = lines_total


class CoverOpenError(PrinterTemporaryError):
    """The printer cover is open (DLE EOT 2, bit 2)."""

    titles: ClassVar[dict[str, str]] = {"ru": "Открыта крышка принтера", "en": "Printer cover open"}
    next_steps: ClassVar[dict[str, str]] = {
        "ru": "Закройте крышку принтера.",
        "en": "Close the printer cover.",
    }


class PrinterOfflineError(PrinterTemporaryError):
    """The printer is offline for another reason (DLE EOT 1, bit 3)."""

    titles: ClassVar[dict[str, str]] = {"ru": "Принтер не готов", "en": "Printer offline"}


class PrinterTimeout(PrinterTemporaryError):
    """The printer did not answer or accept data within the time allowed."""

    titles: ClassVar[dict[str, str]] = {"ru": "Принтер не отвечает", "en": "Printer not responding"}


class PrinterConnectionError(PrinterTemporaryError):
    """The printer's device or socket cannot be opened, or the link broke."""

    titles: ClassVar[dict[str, str]] = {
        "ru": "Нет связи с принтером",
        "en": "Printer not connected",
    }


class PrinterHardwareError(PrinterError):
    """An unrecoverable or autocutter error (DLE EOT 3): needs a technician."""

    titles: ClassVar[dict[str, str]] = {"ru": "Неисправность принтера", "en": "Printer fault"}
    next_steps: ClassVar[dict[str, str]] = {
        "ru": "Принтер требует обслуживания. Обратитесь к сотруднику.",
        "en": "The printer needs service. Please ask a member of staff.",
    }
