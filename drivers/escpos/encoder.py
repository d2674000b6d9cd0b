"""ESC/POS command encoding (Epson ESC/POS command reference, TM series).

Each function returns the bytes of one command; :func:`encode_document` turns a
:class:`~drivers.escpos.document.Document` into a byte stream, emitting style
commands only when the style changes. The stream starts with ESC @ (initialize:
clears the buffer and resets modes, so nothing left over from another job can
change this one) and ESC t (code page).

Commands used, by reference section:

* ``ESC @`` initialize printer; ``ESC t n`` select character code table
* ``ESC E n`` emphasized mode; ``GS ! n`` character size (bits 4-6 width - 1,
  bits 0-2 height - 1); ``ESC a n`` justification
* ``LF`` print and line feed; ``ESC d n`` print and feed n lines
* ``GS ( k`` QR Code: fn 165 (``31 41``) select model 2, fn 167 (``31 43``)
  module size, fn 169 (``31 45``) error correction level, fn 180 (``31 50 30``)
  store data, fn 181 (``31 51 30``) print
* ``GS V m n`` (function B, m = 65 full / 66 partial) feed to the cutting
  position plus n and cut
* ``DLE EOT n`` real-time status (see :mod:`drivers.escpos.status`)
"""

from __future__ import annotations

from dataclasses import dataclass

from .document import (
    PLAIN,
    QR_DATA_BYTES_MAX,
    Align,
    Cut,
    Document,
    Element,
    Feed,
    PrinterProfile,
    QrCode,
    Style,
    TextLine,
)
from .errors import ReceiptError
from .qr import ErrorLevel

__all__ = [
    "EncodedElement",
    "align",
    "bold",
    "char_size",
    "cut",
    "encode_document",
    "encode_elements",
    "feed_lines",
    "initialize",
    "qr_code",
    "select_code_page",
    "text_line",
]

ESC = 0x1B
GS = 0x1D
LF = 0x0A


def initialize() -> bytes:
    """ESC @."""
    return bytes((ESC, 0x40))


def select_code_page(n: int) -> bytes:
    """ESC t n."""
    assert 0 <= n <= 255
    return bytes((ESC, 0x74, n))


def bold(on: bool) -> bytes:
    """ESC E n (bit 0 of n turns emphasis on)."""
    return bytes((ESC, 0x45, 1 if on else 0))


def char_size(width: int, height: int) -> bytes:
    """GS ! n with width and height magnification 1..8."""
    assert 1 <= width <= 8
    assert 1 <= height <= 8
    return bytes((GS, 0x21, (width - 1) << 4 | (height - 1)))


def align(value: Align) -> bytes:
    """ESC a n."""
    return bytes((ESC, 0x61, int(value)))


def feed_lines(n: int) -> bytes:
    """ESC d n: print the buffer and feed n lines."""
    assert 0 <= n <= 255
    return bytes((ESC, 0x64, n))


def cut(*, partial: bool, feed_units: int = 0) -> bytes:
    """GS V m n, function B: feed to the cutting position plus n, then cut."""
    assert 0 <= feed_units <= 255
    return bytes((GS, 0x56, 66 if partial else 65, feed_units))


def _gs_k(payload: bytes) -> bytes:
    """GS ( k pL pH <payload>: pL + pH * 256 is the payload length."""
    return bytes((GS, 0x28, 0x6B, len(payload) & 0xFF, len(payload) >> 8)) + payload


def qr_code(data: bytes, *, module_size: int, level: ErrorLevel) -> bytes:
    """The five GS ( k functions that print one QR symbol (model 2)."""
    if not 1 <= len(data) <= QR_DATA_BYTES_MAX:
        raise ReceiptError(f"QR data of {len(data)} bytes is outside 1..{QR_DATA_BYTES_MAX}")
    assert 1 <= module_size <= 16
    return b"".join(
        (
            _gs_k(bytes((0x31, 0x41, 50, 0))),  # fn 165: model 2
            _gs_k(bytes((0x31, 0x43, module_size))),  # fn 167: module size in dots
            _gs_k(bytes((0x31, 0x45, level.value))),  # fn 169: error correction
            _gs_k(b"\x31\x50\x30" + data),  # fn 180: store in the symbol area
            _gs_k(b"\x31\x51\x30"),  # fn 181: print the stored symbol
        )
    )


def text_line(text: str, codec: str) -> bytes:
    """The characters of one line in ``codec``, then LF.

    Raises :class:`ReceiptError` for a character the code page lacks: the layout
    makes text printable first (:func:`~drivers.escpos.receipt.paper_text`), so
    meeting one here is a caller's bug, and printing "?" silently would hide it.
    """
    try:
        return text.encode(codec) + bytes((LF,))
    except UnicodeEncodeError as exc:
        raise ReceiptError(
            f"character U+{ord(text[exc.start]):04X} is not in code page {codec}"
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedElement:
    """The bytes for one element and how many text lines it prints (0 or 1)."""

    data: bytes
    lines: int


class _StyleTracker:
    """Emits style commands only for what changed since the last line."""

    def __init__(self) -> None:
        self.style = PLAIN

    def to(self, target: Style) -> bytes:
        out = bytearray()
        if target.align != self.style.align:
            out += align(target.align)
        if target.bold != self.style.bold:
            out += bold(target.bold)
        if (target.width, target.height) != (self.style.width, self.style.height):
            out += char_size(target.width, target.height)
        self.style = target
        return bytes(out)


def encode_elements(document: Document, profile: PrinterProfile) -> list[EncodedElement]:
    """The document as a prologue (ESC @, ESC t) and one entry per element."""
    if document.width_chars != profile.width_chars:
        raise ReceiptError(
            f"document width {document.width_chars} differs from the printer's "
            f"{profile.width_chars}"
        )
    tracker = _StyleTracker()
    out = [EncodedElement(data=initialize() + select_code_page(profile.code_page), lines=0)]
    for element in document.elements:
        out.append(_encode_one(element, tracker, profile))
    return out


def _encode_one(
    element: Element, tracker: _StyleTracker, profile: PrinterProfile
) -> EncodedElement:
    if isinstance(element, TextLine):
        if element.text:
            prefix = tracker.to(element.style)
        else:
            # A blank line takes the height of the current size; reset the size
            # (not the justification, which a blank line does not show) so a
            # blank line is one plain line whatever came before.
            prefix = tracker.to(Style(bold=tracker.style.bold, align=tracker.style.align))
        return EncodedElement(data=prefix + text_line(element.text, profile.codec), lines=1)
    if isinstance(element, QrCode):
        prefix = tracker.to(Style(bold=tracker.style.bold, align=element.align))
        data = qr_code(element.data, module_size=element.module_size, level=element.level)
        return EncodedElement(data=prefix + data, lines=0)
    if isinstance(element, Feed):
        return EncodedElement(data=feed_lines(element.lines), lines=0)
    assert isinstance(element, Cut)
    return EncodedElement(data=cut(partial=element.partial), lines=0)


def encode_document(document: Document, profile: PrinterProfile) -> bytes:
    """The whole document as one ESC/POS byte stream."""
    return b"".join(e.data for e in encode_elements(document, profile))
