"""Render a printed document as plain text or as a monochrome PNG.

The same :class:`~drivers.escpos.document.Document` comes from the receipt
layout (what we mean to print) and from the simulator's decoder (what the
printer received), so rendering both and comparing is how tests show that the
printer got what we meant.

Text: one line per printed line, justified within the paper width; a double
width character takes two columns (written as the character and a space);
feeds are blank lines; a cut is ``>8----``. QR symbols are ``[QR]`` or, with
``qr="blocks"``, drawn with half-block characters for a screen.

PNG: 12 x 24 dots per font-A character (ESC/POS font A), so a 42-character line
is 504 dots wide as on an 80 mm printer. QR symbols are drawn by
:mod:`drivers.escpos.qr` at their module size with a four-module quiet zone.
"""

from __future__ import annotations

from .document import Align, Cut, Document, Feed, PrinterProfile, QrCode, Style, TextLine
from .errors import QrCapacityError
from .font import GLYPH_HEIGHT, GLYPH_WIDTH, glyph
from .png import write_png
from .qr import QrMatrix, encode_qr
from .receipt import Receipt, layout_receipt

__all__ = [
    "CELL_HEIGHT_DOTS",
    "CELL_WIDTH_DOTS",
    "Bitmap",
    "render_bitmap",
    "render_png",
    "render_receipt_text",
    "render_text",
]

CELL_WIDTH_DOTS = 12
CELL_HEIGHT_DOTS = 24
LINE_GAP_DOTS = 6
MARGIN_DOTS = 8
QR_QUIET_MODULES = 4
CUT_LINE = ">8"


def _justify(text: str, visual: int, width: int, align: Align) -> str:
    if align == Align.CENTER:
        return " " * ((width - visual) // 2) + text
    if align == Align.RIGHT:
        return " " * (width - visual) + text
    return text


def _qr_blocks(matrix: QrMatrix, width: int) -> list[str]:
    """The symbol in half blocks: each text row shows two module rows."""
    n = matrix.size + 2 * QR_QUIET_MODULES

    def dark(x: int, y: int) -> bool:
        x -= QR_QUIET_MODULES
        y -= QR_QUIET_MODULES
        return 0 <= x < matrix.size and 0 <= y < matrix.size and matrix.rows[y][x] == 1

    lines = []
    for y in range(0, n, 2):
        row = ""
        for x in range(n):
            top, bottom = dark(x, y), dark(x, y + 1)
            row += "█" if top and bottom else "▀" if top else "▄" if bottom else " "
        lines.append(_justify(row, n, width, Align.CENTER).rstrip())
    return lines


def render_text(document: Document, *, qr: str = "label") -> str:
    """The document as text lines (``qr`` is "label" or "blocks")."""
    assert qr in ("label", "blocks")
    width = document.width_chars
    out: list[str] = []
    for element in document.elements:
        if isinstance(element, TextLine):
            w = element.style.width
            text = "".join(ch + " " * (w - 1) for ch in element.text)
            visual = len(element.text) * w
            out.append(_justify(text, visual, width, element.style.align).rstrip())
        elif isinstance(element, QrCode):
            matrix = _qr_matrix(element)
            if qr == "blocks" and matrix is not None:
                out.extend(_qr_blocks(matrix, width))
            else:
                out.append(_justify("[QR]", 4, width, element.align))
        elif isinstance(element, Feed):
            out.extend([""] * element.lines)
        else:
            assert isinstance(element, Cut)
            out.append(CUT_LINE + "-" * (width - len(CUT_LINE)))
    return "\n".join(out) + "\n"


def _qr_matrix(element: QrCode) -> QrMatrix | None:
    try:
        return encode_qr(element.data, element.level)
    except QrCapacityError:
        # The printer itself would refuse such a symbol; draw nothing for it.
        return None


class Bitmap:
    """A black-and-white raster, one byte per dot (1 = ink), grown downwards."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[bytearray] = []

    @property
    def height(self) -> int:
        return len(self.rows)

    def grow(self, dots: int) -> int:
        """Add ``dots`` blank rows; return the y of the first one."""
        top = len(self.rows)
        self.rows.extend(bytearray(self.width) for _ in range(dots))
        return top

    def fill(self, x: int, y: int, w: int, h: int) -> None:
        """Ink a rectangle, clipped to the paper."""
        x0, x1 = max(x, 0), min(x + w, self.width)
        if x1 <= x0:
            return
        ink = b"\x01" * (x1 - x0)
        for row in self.rows[max(y, 0) : y + h]:
            row[x0:x1] = ink


def _draw_text(bitmap: Bitmap, element: TextLine) -> None:
    style = element.style
    sx, sy = 2 * style.width, 2 * style.height
    cell_w = CELL_WIDTH_DOTS * style.width
    top = bitmap.grow(CELL_HEIGHT_DOTS * style.height + LINE_GAP_DOTS)
    visual = len(element.text) * cell_w
    if style.align == Align.CENTER:
        left = (bitmap.width - visual) // 2
    elif style.align == Align.RIGHT:
        left = bitmap.width - visual
    else:
        left = 0
    for i, ch in enumerate(element.text):
        x0 = left + i * cell_w + style.width
        y0 = top + sy
        for r, bits in enumerate(glyph(ch)):
            if not bits:
                continue
            for c in range(GLYPH_WIDTH):
                if bits >> (GLYPH_WIDTH - 1 - c) & 1:
                    # Emphasis widens every stroke by one dot, as the print head does.
                    bitmap.fill(x0 + c * sx, y0 + r * sy, sx + (1 if style.bold else 0), sy)
    assert GLYPH_HEIGHT * sy + sy <= CELL_HEIGHT_DOTS * style.height


def _draw_qr(bitmap: Bitmap, element: QrCode) -> None:
    matrix = _qr_matrix(element)
    if matrix is None:
        _draw_text(bitmap, TextLine(text="[QR]", style=Style(align=Align.CENTER)))
        return
    modules = matrix.size + 2 * QR_QUIET_MODULES
    module = element.module_size
    # A symbol wider than the paper would not print; draw it smaller instead of
    # cutting it, so the on-screen receipt still scans.
    while module > 1 and modules * module > bitmap.width:
        module -= 1
    span = modules * module
    if element.align == Align.CENTER:
        left = (bitmap.width - span) // 2
    elif element.align == Align.RIGHT:
        left = bitmap.width - span
    else:
        left = 0
    top = bitmap.grow(span)
    origin_x = left + QR_QUIET_MODULES * module
    origin_y = top + QR_QUIET_MODULES * module
    for y, row in enumerate(matrix.rows):
        for x, dark in enumerate(row):
            if dark:
                bitmap.fill(origin_x + x * module, origin_y + y * module, module, module)


def render_bitmap(document: Document) -> Bitmap:
    """Draw the document at 12 x 24 dots per character."""
    bitmap = Bitmap(document.width_chars * CELL_WIDTH_DOTS)
    bitmap.grow(MARGIN_DOTS)
    for element in document.elements:
        if isinstance(element, TextLine):
            _draw_text(bitmap, element)
        elif isinstance(element, QrCode):
            _draw_qr(bitmap, element)
        elif isinstance(element, Feed):
            bitmap.grow((CELL_HEIGHT_DOTS + LINE_GAP_DOTS) * element.lines)
        else:
            top = bitmap.grow(CELL_HEIGHT_DOTS)
            for x in range(0, bitmap.width, 8):
                bitmap.fill(x, top + CELL_HEIGHT_DOTS // 2, 4, 1)
    bitmap.grow(MARGIN_DOTS)
    return bitmap


def render_png(document: Document) -> bytes:
    """The document as a 1-bit PNG."""
    bitmap = render_bitmap(document)
    return write_png(bitmap.width, bitmap.rows)


def render_receipt_text(
    receipt: Receipt,
    *,
    width_chars: int = 42,
    lang: str = "ru",
    currency_label: str | None = None,
    qr: str = "blocks",
) -> str:
    """A receipt as text for the kiosk's screen (keeps "₽" and other characters)."""
    profile = PrinterProfile(width_chars=width_chars)
    document = layout_receipt(
        receipt, profile, lang=lang, currency_label=currency_label, for_screen=True
    )
    return render_text(document, qr=qr)
