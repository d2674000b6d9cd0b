"""ESC/POS receipt printer: receipt layout, status, transport, simulator, renderer.

Layers (see each module's docstring):

* :mod:`.receipt` -- the receipt model and its layout into a :class:`Document`;
* :mod:`.encoder` / :mod:`.decoder` -- the sans-I/O ESC/POS core, both ways;
* :mod:`.status` -- DLE EOT status bytes and the typed faults they mean;
* :mod:`.transport` -- pyserial (device paths, ``socket://``) with asyncio;
* :mod:`.client` -- :class:`EscPosPrinter`: status and printing with timeouts;
* :mod:`.simulator` -- a printer on a pty or TCP that records what it prints;
* :mod:`.render` -- documents as text or PNG (with :mod:`.qr` and :mod:`.png`).
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import EscPosPrinter, PrintReport
    from .decoder import NEED_DATA, EscPosDecoder
    from .document import (
        CODE_PAGES,
        Align,
        Cut,
        Document,
        Feed,
        PrinterProfile,
        QrCode,
        Style,
        TextLine,
    )
    from .encoder import encode_document
    from .errors import (
        CoverOpenError,
        EscPosDecodeError,
        EscPosError,
        EscPosProtocolError,
        PaperOutError,
        PrinterConnectionError,
        PrinterError,
        PrinterHardwareError,
        PrinterOfflineError,
        PrinterTemporaryError,
        PrinterTimeout,
        QrCapacityError,
        QrDecodeError,
        ReceiptError,
        StatusByteError,
    )
    from .qr import ErrorLevel, encode_qr, read_matrix
    from .receipt import (
        CardDetails,
        Receipt,
        ReceiptItem,
        format_money,
        layout_receipt,
        sample_receipt,
    )
    from .render import render_png, render_receipt_text, render_text
    from .simulator import PtyPrinterServer, SimulatedPrinter, TcpPrinterServer
    from .status import PrinterStatus, check_ready, parse_status

# Names are imported on first use (PEP 562), so that importing this package —
# which `lobbypay --help` does for every command — stays cheap.
_LAZY: dict[str, tuple[str, str]] = {
    "EscPosPrinter": ("client", "EscPosPrinter"),
    "PrintReport": ("client", "PrintReport"),
    "NEED_DATA": ("decoder", "NEED_DATA"),
    "EscPosDecoder": ("decoder", "EscPosDecoder"),
    "CODE_PAGES": ("document", "CODE_PAGES"),
    "Align": ("document", "Align"),
    "Cut": ("document", "Cut"),
    "Document": ("document", "Document"),
    "Feed": ("document", "Feed"),
    "PrinterProfile": ("document", "PrinterProfile"),
    "QrCode": ("document", "QrCode"),
    "Style": ("document", "Style"),
    "TextLine": ("document", "TextLine"),
    "encode_document": ("encoder", "encode_document"),
    "CoverOpenError": ("errors", "CoverOpenError"),
    "EscPosDecodeError": ("errors", "EscPosDecodeError"),
    "EscPosError": ("errors", "EscPosError"),
    "EscPosProtocolError": ("errors", "EscPosProtocolError"),
    "PaperOutError": ("errors", "PaperOutError"),
    "PrinterConnectionError": ("errors", "PrinterConnectionError"),
    "PrinterError": ("errors", "PrinterError"),
    "PrinterHardwareError": ("errors", "PrinterHardwareError"),
    "PrinterOfflineError": ("errors", "PrinterOfflineError"),
    "PrinterTemporaryError": ("errors", "PrinterTemporaryError"),
    "PrinterTimeout": ("errors", "PrinterTimeout"),
    "QrCapacityError": ("errors", "QrCapacityError"),
    "QrDecodeError": ("errors", "QrDecodeError"),
    "ReceiptError": ("errors", "ReceiptError"),
    "StatusByteError": ("errors", "StatusByteError"),
    "ErrorLevel": ("qr", "ErrorLevel"),
    "encode_qr": ("qr", "encode_qr"),
    "read_matrix": ("qr", "read_matrix"),
    "CardDetails": ("receipt", "CardDetails"),
    "Receipt": ("receipt", "Receipt"),
    "ReceiptItem": ("receipt", "ReceiptItem"),
    "format_money": ("receipt", "format_money"),
    "layout_receipt": ("receipt", "layout_receipt"),
    "sample_receipt": ("receipt", "sample_receipt"),
    "render_png": ("render", "render_png"),
    "render_receipt_text": ("render", "render_receipt_text"),
    "render_text": ("render", "render_text"),
    "PtyPrinterServer": ("simulator", "PtyPrinterServer"),
    "SimulatedPrinter": ("simulator", "SimulatedPrinter"),
    "TcpPrinterServer": ("simulator", "TcpPrinterServer"),
    "PrinterStatus": ("status", "PrinterStatus"),
    "check_ready": ("status", "check_ready"),
    "parse_status": ("status", "parse_status"),
}


def __getattr__(name: str) -> object:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = [
    "CODE_PAGES",
    "NEED_DATA",
    "Align",
    "CardDetails",
    "CoverOpenError",
    "Cut",
    "Document",
    "ErrorLevel",
    "EscPosDecodeError",
    "EscPosDecoder",
    "EscPosError",
    "EscPosPrinter",
    "EscPosProtocolError",
    "Feed",
    "PaperOutError",
    "PrintReport",
    "PrinterConnectionError",
    "PrinterError",
    "PrinterHardwareError",
    "PrinterOfflineError",
    "PrinterProfile",
    "PrinterStatus",
    "PrinterTemporaryError",
    "PrinterTimeout",
    "PtyPrinterServer",
    "QrCapacityError",
    "QrCode",
    "QrDecodeError",
    "Receipt",
    "ReceiptError",
    "ReceiptItem",
    "SimulatedPrinter",
    "StatusByteError",
    "Style",
    "TcpPrinterServer",
    "TextLine",
    "check_ready",
    "encode_document",
    "encode_qr",
    "format_money",
    "layout_receipt",
    "parse_status",
    "read_matrix",
    "render_png",
    "render_receipt_text",
    "render_text",
    "sample_receipt",
]
