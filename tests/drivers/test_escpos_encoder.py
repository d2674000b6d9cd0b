"""ESC/POS command encodings against hex fixtures from the Epson command reference."""

from __future__ import annotations

import pytest

from drivers.escpos import encoder
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
from drivers.escpos.errors import ReceiptError
from drivers.escpos.qr import ErrorLevel
from drivers.escpos.status import StatusRequest, status_query


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (encoder.initialize(), "1b 40"),
        (encoder.select_code_page(17), "1b 74 11"),
        (encoder.select_code_page(46), "1b 74 2e"),
        (encoder.bold(True), "1b 45 01"),
        (encoder.bold(False), "1b 45 00"),
        (encoder.char_size(1, 1), "1d 21 00"),
        (encoder.char_size(1, 2), "1d 21 01"),
        (encoder.char_size(2, 1), "1d 21 10"),
        (encoder.char_size(2, 2), "1d 21 11"),
        (encoder.char_size(8, 8), "1d 21 77"),
        (encoder.align(Align.LEFT), "1b 61 00"),
        (encoder.align(Align.CENTER), "1b 61 01"),
        (encoder.align(Align.RIGHT), "1b 61 02"),
        (encoder.feed_lines(3), "1b 64 03"),
        (encoder.cut(partial=True), "1d 56 42 00"),
        (encoder.cut(partial=False), "1d 56 41 00"),
        (encoder.cut(partial=False, feed_units=16), "1d 56 41 10"),
        (status_query((StatusRequest.PRINTER,)), "10 04 01"),
        (status_query(), "10 04 01 10 04 02 10 04 03 10 04 04"),
    ],
)
def test_command_encodes_to_reference_bytes(command: bytes, expected: str) -> None:
    assert command == h(expected)


def test_qr_code_encodes_the_five_gs_k_functions() -> None:
    data = encoder.qr_code(b"ABC", module_size=6, level=ErrorLevel.M)
    assert data == h(
        "1d 28 6b 04 00 31 41 32 00"  # fn 165 model 2
        "1d 28 6b 03 00 31 43 06"  # fn 167 module size 6
        "1d 28 6b 03 00 31 45 31"  # fn 169 level M
        "1d 28 6b 06 00 31 50 30 41 42 43"  # fn 180 store "ABC" (pL = 3 + 3)
        "1d 28 6b 03 00 31 51 30"  # fn 181 print
    )


def test_qr_store_length_uses_ph_above_255_bytes() -> None:
    data = encoder.qr_code(b"x" * 300, module_size=3, level=ErrorLevel.L)
    store = data.index(h("31 50 30"))
    # pL pH precede cn fn m: 303 = 0x012F
    assert data[store - 2 : store] == h("2f 01")


def test_qr_code_over_store_limit_raises_receipt_error() -> None:
    with pytest.raises(ReceiptError):
        encoder.qr_code(b"x" * 7090, module_size=3, level=ErrorLevel.L)


def test_text_line_encodes_cyrillic_in_cp866() -> None:
    assert encoder.text_line("Итого №1", "cp866") == h("88 e2 ae a3 ae 20 fc 31 0a")


def test_text_line_with_character_outside_code_page_raises() -> None:
    with pytest.raises(ReceiptError, match="U\\+20BD"):
        encoder.text_line("100 ₽", "cp866")


def test_document_starts_with_init_and_code_page_and_changes_styles_only_when_needed() -> None:
    doc = Document(
        width_chars=32,
        elements=(
            TextLine(text="A", style=Style(bold=True, align=Align.CENTER)),
            TextLine(text="B", style=Style(bold=True, align=Align.CENTER)),
            TextLine(text="C", style=Style(height=2)),
            TextLine(text=""),
            Feed(lines=2),
            Cut(partial=False),
        ),
    )
    data = encoder.encode_document(doc, PrinterProfile(width_chars=32))
    assert data == h(
        "1b 40 1b 74 11"
        "1b 61 01 1b 45 01 41 0a"  # centre, bold, "A"
        "42 0a"  # same style: no commands
        "1b 61 00 1b 45 00 1d 21 01 43 0a"  # left, not bold, double height
        "1d 21 00 0a"  # a blank line is plain size
        "1b 64 02"
        "1d 56 41 00"
    )


def test_qr_element_sets_its_alignment_first() -> None:
    doc = Document(width_chars=42, elements=(QrCode(data=b"Q", align=Align.RIGHT),))
    data = encoder.encode_document(doc, PrinterProfile())
    assert data.startswith(h("1b 40 1b 74 11 1b 61 02 1d 28 6b"))


def test_document_width_must_match_the_profile() -> None:
    doc = Document(width_chars=32, elements=(TextLine(text="x"),))
    with pytest.raises(ReceiptError, match="width"):
        encoder.encode_document(doc, PrinterProfile(width_chars=42))


@pytest.mark.parametrize(
    "build",
    [
        lambda: Style(width=9),
        lambda: TextLine(text="a\nb"),
        lambda: TextLine(text="\x1b@"),
        lambda: TextLine(text="", style=Style(bold=True)),
        lambda: QrCode(data=b""),
        lambda: QrCode(data=b"x", module_size=17),
        lambda: Feed(lines=0),
        lambda: Feed(lines=256),
        lambda: Document(width_chars=10, elements=()),
        lambda: Document(width_chars=32, elements=(TextLine(text="x" * 33),)),
        lambda: Document(width_chars=32, elements=(TextLine(text="x" * 17, style=Style(width=2)),)),
        lambda: PrinterProfile(code_page=99),
        lambda: PrinterProfile(code_page=17, codec="utf-8"),
        lambda: PrinterProfile(codec="no-such-codec"),
    ],
)
def test_invalid_document_parts_raise_receipt_error(build: object) -> None:
    with pytest.raises(ReceiptError):
        build()  # type: ignore[operator]


def test_profile_defaults_to_pc866_at_table_17() -> None:
    profile = PrinterProfile()
    assert (profile.code_page, profile.codec, profile.width_chars) == (17, "cp866", 42)
    assert PrinterProfile(code_page=46).codec == "cp1251"
    assert PrinterProfile(code_page=7, codec="cp866").codec == "cp866"
