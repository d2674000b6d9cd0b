"""What a receipt printer puts on paper, as plain values.

A :class:`Document` is a sequence of elements -- text lines with a style, QR
symbols, blank feeds and cuts -- at a paper width in characters of font A. It is
the meeting point of every part of this package: the layout builds one from a
:class:`~drivers.escpos.receipt.Receipt`, the encoder turns it into ESC/POS
bytes, the decoder (and so the simulator) turns bytes back into one, and the
renderer draws one as text or PNG. A round trip through the encoder and the
decoder gives back an equal document; the tests hold us to that.

:class:`PrinterProfile` holds what differs between printer models: the paper
width in characters, the ESC t code page number and its Python codec, and QR
settings.
"""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass, field

from .errors import ReceiptError
from .qr import ErrorLevel

__all__ = [
    "CODE_PAGES",
    "PAPER_WIDTHS",
    "Align",
    "Cut",
    "Document",
    "Element",
    "Feed",
    "PrinterProfile",
    "QrCode",
    "Style",
    "TextLine",
]

# Characters per line of font A (12 x 24 dots) on common paper: 58 mm rolls print
# 384 dots = 32 characters; 80 mm rolls 512 or 576 dots = 42 or 48 characters.
PAPER_WIDTHS = (32, 42, 48)
PAPER_WIDTH_MIN = 16
PAPER_WIDTH_MAX = 64

# ESC t n (Epson ESC/POS command reference, "ESC t", character code table) for the
# tables this driver can write, with the Python codec for each. Cyrillic receipts
# use PC866 at n = 17 on Epson TM printers and on most Epson-compatible models;
# some compatible models number their tables differently (for example PC866 at
# n = 7 or 59 on a few 58 mm models) -- the printer's self-test page lists its
# table, and PrinterProfile.code_page follows it.
CODE_PAGES: dict[int, str] = {
    0: "cp437",
    2: "cp850",
    16: "cp1252",
    17: "cp866",
    19: "cp858",
    34: "cp855",
    46: "cp1251",
}

# GS ( k fn 180 stores at most 7089 data bytes (pL + pH * 256 - 3, with the
# reference's upper bound of 7092 for the parameter length).
QR_DATA_BYTES_MAX = 7089
FEED_LINES_MAX = 255
SIZE_MAX = 8


class Align(enum.IntEnum):
    """ESC a n justification; the value is ``n``."""

    LEFT = 0
    CENTER = 1
    RIGHT = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Style:
    """Character style: emphasis (ESC E), size (GS !) and justification (ESC a)."""

    bold: bool = False
    width: int = 1
    height: int = 1
    align: Align = Align.LEFT

    def __post_init__(self) -> None:
        if not (1 <= self.width <= SIZE_MAX and 1 <= self.height <= SIZE_MAX):
            raise ReceiptError(f"character size {self.width}x{self.height} is outside 1..8")


PLAIN = Style()


def _check_text(text: str) -> None:
    for ch in text:
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            raise ReceiptError(f"control character U+{ord(ch):04X} in printed text")


@dataclass(frozen=True, slots=True, kw_only=True)
class TextLine:
    """One printed line. An empty line is a blank line of the plain style."""

    text: str
    style: Style = PLAIN

    def __post_init__(self) -> None:
        _check_text(self.text)
        if not self.text and self.style != PLAIN:
            # A blank line carries no characters to style; keeping it plain makes
            # the encode/decode round trip exact.
            raise ReceiptError("a blank line must use the plain style")


@dataclass(frozen=True, slots=True, kw_only=True)
class QrCode:
    """A QR symbol printed with GS ( k (model 2)."""

    data: bytes
    module_size: int = 6
    level: ErrorLevel = ErrorLevel.M
    align: Align = Align.CENTER

    def __post_init__(self) -> None:
        if not 1 <= len(self.data) <= QR_DATA_BYTES_MAX:
            raise ReceiptError(f"QR data of {len(self.data)} bytes is outside 1..7089")
        if not 1 <= self.module_size <= 16:
            raise ReceiptError(f"QR module size {self.module_size} is outside 1..16")


@dataclass(frozen=True, slots=True, kw_only=True)
class Feed:
    """Blank paper, ``lines`` lines of the default spacing (ESC d n)."""

    lines: int

    def __post_init__(self) -> None:
        if not 1 <= self.lines <= FEED_LINES_MAX:
            raise ReceiptError(f"feed of {self.lines} lines is outside 1..255")


@dataclass(frozen=True, slots=True, kw_only=True)
class Cut:
    """Feed to the cutter and cut (GS V); ``partial`` leaves one point uncut."""

    partial: bool = True


Element = TextLine | QrCode | Feed | Cut


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """Printed elements in order, at ``width_chars`` characters of font A per line."""

    elements: tuple[Element, ...]
    width_chars: int = 42

    def __post_init__(self) -> None:
        if not PAPER_WIDTH_MIN <= self.width_chars <= PAPER_WIDTH_MAX:
            raise ReceiptError(f"paper width {self.width_chars} is outside 16..64 characters")
        for element in self.elements:
            if not isinstance(element, TextLine | QrCode | Feed | Cut):
                raise ReceiptError(f"{type(element).__name__} is not a document element")
            if isinstance(element, TextLine):
                capacity = self.width_chars // element.style.width
                if len(element.text) > capacity:
                    raise ReceiptError(f"line of {len(element.text)} characters exceeds {capacity}")

    @property
    def text_lines(self) -> int:
        """How many text lines (blank ones included) the document prints."""
        return sum(1 for e in self.elements if isinstance(e, TextLine))


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterProfile:
    """What differs between printer models; defaults suit an 80 mm Epson TM."""

    width_chars: int = 42
    code_page: int = 17
    codec: str = field(default="")
    qr_module_size: int = 6
    qr_level: ErrorLevel = ErrorLevel.M
    partial_cut: bool = True

    def __post_init__(self) -> None:
        if not PAPER_WIDTH_MIN <= self.width_chars <= PAPER_WIDTH_MAX:
            raise ReceiptError(f"paper width {self.width_chars} is outside 16..64 characters")
        if not 0 <= self.code_page <= 255:
            raise ReceiptError(f"code page {self.code_page} is outside 0..255")
        if not self.codec:
            if self.code_page not in CODE_PAGES:
                raise ReceiptError(f"code page {self.code_page} needs an explicit codec")
            object.__setattr__(self, "codec", CODE_PAGES[self.code_page])
        try:
            info = codecs.lookup(self.codec)
        except LookupError:
            raise ReceiptError(f"unknown codec {self.codec!r}") from None
        # ESC/POS text is one byte per character; a multi-byte codec would let
        # one character spill over two columns and break the layout.
        if any(len(info.encode(ch, "replace")[0]) != 1 for ch in ("A", "Ж", "€")):
            raise ReceiptError(f"codec {self.codec!r} is not a single-byte code page")
        if not 1 <= self.qr_module_size <= 16:
            raise ReceiptError(f"QR module size {self.qr_module_size} is outside 1..16")
