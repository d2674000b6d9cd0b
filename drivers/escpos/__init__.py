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
