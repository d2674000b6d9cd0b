"""Rendering documents to text and PNG; the PNG's QR reads back."""

from __future__ import annotations

import pytest

from drivers.escpos.document import (
    Align,
    Cut,
    Document,
    Feed,
    PrinterProfile,
    QrCode,
    Style,
    TextLine,
)
from drivers.escpos.errors import EscPosError
from drivers.escpos.font import glyph, has_glyph
from drivers.escpos.png import PNG_SIGNATURE, PngError, read_png, write_png
from drivers.escpos.qr import ErrorLevel, read_matrix
from drivers.escpos.receipt import layout_receipt, sample_receipt
from drivers.escpos.render import (
    CELL_WIDTH_DOTS,
    render_bitmap,
    render_png,
    render_receipt_text,
    render_text,
)


def test_text_render_justifies_and_spaces_double_width() -> None:
    doc = Document(
        width_chars=16,
        elements=(
            TextLine(text="left"),
            TextLine(text="mid", style=Style(align=Align.CENTER)),
            TextLine(text="right", style=Style(align=Align.RIGHT)),
            TextLine(text="WIDE", style=Style(width=2, align=Align.CENTER)),
            Feed(lines=2),
            QrCode(data=b"q"),
            Cut(),
        ),
    )
    assert render_text(doc) == (
        "left\n      mid\n           right\n    W I D E\n\n\n      [QR]\n>8--------------\n"
    )


def test_screen_receipt_keeps_rouble_sign_and_draws_qr_blocks() -> None:
    text = render_receipt_text(sample_receipt(), currency_label="₽")
    assert "4 769,41 ₽" in text
    assert "ООО «Расчётный центр»" in text
    assert "█" in text
    assert "[QR]" not in text


def test_every_ascii_and_russian_letter_has_its_own_glyph() -> None:
    chars = [chr(c) for c in range(0x20, 0x7F)] + [chr(c) for c in range(0x410, 0x450)]
    chars += ["Ё", "ё", "№"]
    assert [c for c in chars if not has_glyph(c)] == []
    # Distinct letters must not share a bitmap unless they look alike by design.
    assert glyph("Ш") != glyph("Щ")
    assert glyph("И") != glyph("Й")
    assert glyph("А") == glyph("A")


def test_png_has_signature_and_paper_width_in_dots() -> None:
    profile = PrinterProfile(width_chars=42)
    doc = layout_receipt(sample_receipt(), profile)
    png = render_png(doc)
    assert png.startswith(PNG_SIGNATURE)
    width, height, rows = read_png(png)
    assert width == 42 * CELL_WIDTH_DOTS == 504
    bitmap = render_bitmap(doc)
    assert height == bitmap.height > 25 * 24
    assert rows == [bytes(r) for r in bitmap.rows]
    assert any(any(r) for r in rows)


@pytest.mark.parametrize("width", [32, 48])
def test_png_width_follows_the_paper(width: int) -> None:
    doc = layout_receipt(sample_receipt(), PrinterProfile(width_chars=width))
    assert read_png(render_png(doc))[0] == width * CELL_WIDTH_DOTS


def _qr_from_pixels(rows: list[bytes], module: int) -> bytes:
    """Find the symbol's bounding box and sample each module's centre."""
    ys = [y for y, r in enumerate(rows) if any(r)]
    xs = [x for r in rows for x, v in enumerate(r) if v]
    top, left = ys[0], min(xs)
    size = (max(xs) - left + 1) // module
    matrix = [
        bytes(
            rows[top + y * module + module // 2][left + x * module + module // 2]
            for x in range(size)
        )
        for y in range(size)
    ]
    return read_matrix(matrix)


@pytest.mark.parametrize("module", [2, 4, 6])
def test_png_qr_decodes_to_its_payload(module: int) -> None:
    payload = "ST00012|Name=ТСЖ Дом|PersonalAcc=40702810900000000001|Sum=476941".encode()
    doc = Document(
        width_chars=42,
        elements=(QrCode(data=payload, module_size=module, level=ErrorLevel.M),),
    )
    _, _, rows = read_png(render_png(doc))
    assert _qr_from_pixels(rows, module) == payload


def test_qr_wider_than_paper_is_drawn_smaller_and_still_reads() -> None:
    payload = b"x" * 300
    doc = Document(width_chars=32, elements=(QrCode(data=payload, module_size=16),))
    bitmap = render_bitmap(doc)
    rows = [bytes(r) for r in bitmap.rows]
    xs = [x for r in rows for x, v in enumerate(r) if v]
    span = max(xs) - min(xs) + 1
    module = next(m for m in range(16, 0, -1) if span % m == 0 and span // m in range(21, 178, 4))
    assert _qr_from_pixels(rows, module) == payload


def test_write_then_read_png_round_trips_odd_width() -> None:
    rows = [bytes((x + y) % 2 for x in range(13)) for y in range(5)]
    assert read_png(write_png(13, rows)) == (13, 5, rows)


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a",
        PNG_SIGNATURE,
        PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR" + b"\x00" * 17,
    ],
)
def test_read_png_refuses_what_it_does_not_write(data: bytes) -> None:
    with pytest.raises(PngError):
        read_png(data)
    assert issubclass(PngError, EscPosError)
