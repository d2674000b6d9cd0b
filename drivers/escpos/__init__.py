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

from typing import TYPE_CHECKING

from drivers._lazy import lazy_exports

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
    "EscPosPrinter": ("drivers.escpos.client", "EscPosPrinter"),
    "PrintReport": ("drivers.escpos.client", "PrintReport"),
    "NEED_DATA": ("drivers.escpos.decoder", "NEED_DATA"),
    "EscPosDecoder": ("drivers.escpos.decoder", "EscPosDecoder"),
    "CODE_PAGES": ("drivers.escpos.document", "CODE_PAGES"),
    "Align": ("drivers.escpos.document", "Align"),
    "Cut": ("drivers.escpos.document", "Cut"),
    "Document": ("drivers.escpos.document", "Document"),
    "Feed": ("drivers.escpos.document", "Feed"),
    "PrinterProfile": ("drivers.escpos.document", "PrinterProfile"),
    "QrCode": ("drivers.escpos.document", "QrCode"),
    "Style": ("drivers.escpos.document", "Style"),
    "TextLine": ("drivers.escpos.document", "TextLine"),
    "encode_document": ("drivers.escpos.encoder", "encode_document"),
    "CoverOpenError": ("drivers.escpos.errors", "CoverOpenError"),
    "EscPosDecodeError": ("drivers.escpos.errors", "EscPosDecodeError"),
    "EscPosError": ("drivers.escpos.errors", "EscPosError"),
    "EscPosProtocolError": ("drivers.escpos.errors", "EscPosProtocolError"),
    "PaperOutError": ("drivers.escpos.errors", "PaperOutError"),
    "PrinterConnectionError": ("drivers.escpos.errors", "PrinterConnectionError"),
    "PrinterError": ("drivers.escpos.errors", "PrinterError"),
    "PrinterHardwareError": ("drivers.escpos.errors", "PrinterHardwareError"),
    "PrinterOfflineError": ("drivers.escpos.errors", "PrinterOfflineError"),
    "PrinterTemporaryError": ("drivers.escpos.errors", "PrinterTemporaryError"),
    "PrinterTimeout": ("drivers.escpos.errors", "PrinterTimeout"),
    "QrCapacityError": ("drivers.escpos.errors", "QrCapacityError"),
    "QrDecodeError": ("drivers.escpos.errors", "QrDecodeError"),
    "ReceiptError": ("drivers.escpos.errors", "ReceiptError"),
    "StatusByteError": ("drivers.escpos.errors", "StatusByteError"),
    "ErrorLevel": ("drivers.escpos.qr", "ErrorLevel"),
    "encode_qr": ("drivers.escpos.qr", "encode_qr"),
    "read_matrix": ("drivers.escpos.qr", "read_matrix"),
    "CardDetails": ("drivers.escpos.receipt", "CardDetails"),
    "Receipt": ("drivers.escpos.receipt", "Receipt"),
    "ReceiptItem": ("drivers.escpos.receipt", "ReceiptItem"),
    "format_money": ("drivers.escpos.receipt", "format_money"),
    "layout_receipt": ("drivers.escpos.receipt", "layout_receipt"),
    "sample_receipt": ("drivers.escpos.receipt", "sample_receipt"),
    "render_png": ("drivers.escpos.render", "render_png"),
    "render_receipt_text": ("drivers.escpos.render", "render_receipt_text"),
    "render_text": ("drivers.escpos.render", "render_text"),
    "PtyPrinterServer": ("drivers.escpos.simulator", "PtyPrinterServer"),
    "SimulatedPrinter": ("drivers.escpos.simulator", "SimulatedPrinter"),
    "TcpPrinterServer": ("drivers.escpos.simulator", "TcpPrinterServer"),
    "PrinterStatus": ("drivers.escpos.status", "PrinterStatus"),
    "check_ready": ("drivers.escpos.status", "check_ready"),
    "parse_status": ("drivers.escpos.status", "parse_status"),
}


__getattr__ = lazy_exports(globals(), _LAZY)


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
