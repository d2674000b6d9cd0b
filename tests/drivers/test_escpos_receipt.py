"""Receipt model invariants, money formatting and the paper layout."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from drivers.escpos.document import Align, Cut, Feed, PrinterProfile, QrCode, Style, TextLine
from drivers.escpos.encoder import encode_document
from drivers.escpos.errors import ReceiptError
from drivers.escpos.receipt import (
    LABELS,
    CardDetails,
    Receipt,
    ReceiptItem,
    format_money,
    layout_receipt,
    paper_text,
    sample_receipt,
)
from drivers.escpos.render import render_text


def receipt(**changes: object) -> Receipt:
    base = Receipt(
        header=("ТСЖ Дом",),
        items=(ReceiptItem(service="Вода", amount_minor=10000),),
        total_minor=10000,
        paid_at=datetime(2024, 1, 2, 3, 4, 5),
        terminal_id="T1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def lines(doc_elements: tuple[object, ...]) -> list[str]:
    return [e.text for e in doc_elements if isinstance(e, TextLine)]


@pytest.mark.parametrize(
    ("minor", "lang", "label", "text"),
    [
        (0, "ru", "руб.", "0,00 руб."),
        (5, "ru", "руб.", "0,05 руб."),
        (123456, "ru", "руб.", "1 234,56 руб."),
        (123456789, "ru", "₽", "1 234 567,89 ₽"),
        (-1050, "ru", "руб.", "-10,50 руб."),
        (123456, "en", "RUB", "1,234.56 RUB"),
        (99, "en", "", "0.99"),
    ],
)
def test_format_money(minor: int, lang: str, label: str, text: str) -> None:
    assert format_money(minor, label=label, lang=lang) == text


@pytest.mark.parametrize("bad", [1.5, True, "100"])
def test_format_money_refuses_non_integers(bad: object) -> None:
    with pytest.raises(ReceiptError):
        format_money(bad)  # type: ignore[arg-type]


def test_total_must_equal_items_plus_surcharge() -> None:
    with pytest.raises(ReceiptError, match="total"):
        receipt(total_minor=10001)
    assert receipt(surcharge_minor=150, total_minor=10150).total_minor == 10150


@pytest.mark.parametrize(
    "changes",
    [
        {"items": ()},
        {"items": (ReceiptItem(service="x", amount_minor=1),) * 101},
        {"surcharge_minor": -1, "total_minor": 9999},
        {"terminal_id": ""},
        {"header": ["list"]},
        {"header": ("bad\x1bline",)},
        {"qr_payload": ""},
        {"qr_payload": "x" * 2001},
        {"qr_payload": "\ud800"},
        {"paid_at": "2024-01-02"},
    ],
)
def test_invalid_receipt_raises_receipt_error(changes: dict[str, object]) -> None:
    with pytest.raises(ReceiptError):
        receipt(**changes)


@pytest.mark.parametrize("amount", [0, -5, True, 10.0, 10**13])
def test_item_amount_must_be_positive_int_kopecks(amount: object) -> None:
    with pytest.raises(ReceiptError):
        ReceiptItem(service="Вода", amount_minor=amount)  # type: ignore[arg-type]


@pytest.mark.parametrize("pan", ["2202201234561234", "4111 1111 1111 1111", "220220123456789012"])
def test_full_card_number_is_refused_without_echoing_it(pan: str) -> None:
    with pytest.raises(ReceiptError) as info:
        CardDetails(masked_pan=pan, auth_code="123456", rrn="1")
    assert pan not in str(info.value)
    assert pan.replace(" ", "")[-8:] not in str(info.value)


@pytest.mark.parametrize("pan", ["220220******1234", "****1234", "4111 11** **** 1111", "XXXX1234"])
def test_masked_card_numbers_are_accepted(pan: str) -> None:
    assert CardDetails(masked_pan=pan, auth_code="A1", rrn="123").masked_pan == pan


@pytest.mark.parametrize(
    ("auth", "rrn"),
    [("", "1"), ("123456789", "1"), ("A1", ""), ("A1", "1234567890123"), ("A1", "12-3")],
)
def test_bad_auth_code_or_rrn_is_refused(auth: str, rrn: str) -> None:
    with pytest.raises(ReceiptError):
        CardDetails(masked_pan="****1234", auth_code=auth, rrn=rrn)


@pytest.mark.parametrize("width", [32, 42, 48])
def test_every_layout_line_fits_the_paper_and_amounts_are_flush_right(width: int) -> None:
    doc = layout_receipt(sample_receipt(), PrinterProfile(width_chars=width))
    assert doc.width_chars == width
    for element in doc.elements:
        if isinstance(element, TextLine):
            assert len(element.text) * element.style.width <= width
    texts = lines(doc.elements)
    amount_lines = [t for t in texts if t.endswith(" руб.")]
    assert len(amount_lines) == 5  # three services, surcharge, total
    assert all(len(t) == width for t in amount_lines)
    assert f"{'Электроэнергия':<{width - len('987,65 руб.')}}987,65 руб." in texts


def test_layout_has_total_bold_double_height_and_card_details() -> None:
    doc = layout_receipt(sample_receipt(), PrinterProfile())
    total = next(e for e in doc.elements if isinstance(e, TextLine) and e.text.startswith("ИТОГО"))
    assert total.style == Style(bold=True, height=2)
    assert total.text.endswith("4 769,41 руб.")
    texts = lines(doc.elements)
    assert any(t.startswith("Карта") and t.endswith("220220******1234") for t in texts)
    assert any(t.startswith("Код авторизации") and t.endswith("A1B2C3") for t in texts)
    assert any(t.startswith("RRN") and t.endswith("407512345678") for t in texts)
    assert any(t.endswith("15.03.2024 14:05:33") for t in texts)
    assert any(t.endswith("T-000123") for t in texts)
    qr = [e for e in doc.elements if isinstance(e, QrCode)]
    assert len(qr) == 1
    assert qr[0].data.decode().startswith("ST00012|")
    assert qr[0].align == Align.CENTER
    assert doc.elements[-2:] == (Feed(lines=3), Cut(partial=True))


def test_long_service_name_wraps_beside_its_amount() -> None:
    doc = layout_receipt(sample_receipt(), PrinterProfile(width_chars=42))
    texts = lines(doc.elements)
    first = texts.index("Содержание и ремонт общего   2 500,00 руб.")
    assert texts[first + 1 : first + 3] == ["имущества многоквартирного", "дома"]


def test_very_long_service_name_is_cut_at_three_lines_with_an_ellipsis() -> None:
    name = "Очень длинное название услуги " * 6
    r = receipt(items=(ReceiptItem(service=name, amount_minor=10000),))
    doc = layout_receipt(r, PrinterProfile(width_chars=32))
    texts = lines(doc.elements)
    start = next(i for i, t in enumerate(texts) if t.startswith("Очень"))
    assert texts[start].endswith("100,00 руб.")
    assert texts[start + 2].endswith("...")
    assert not texts[start + 3].startswith(("название", "услуги", "Очень", "длинное"))


def test_unbreakable_long_word_is_split_hard() -> None:
    r = receipt(items=(ReceiptItem(service="Ж" * 50, amount_minor=10000),))
    doc = layout_receipt(r, PrinterProfile(width_chars=32))
    texts = lines(doc.elements)
    assert texts[texts.index(next(t for t in texts if t.startswith("Ж")))].startswith("Ж" * 20)


def test_value_wider_than_paper_goes_on_its_own_line() -> None:
    r = receipt(terminal_id="T" * 40)
    texts = lines(layout_receipt(r, PrinterProfile(width_chars=32)).elements)
    i = texts.index("Терминал")
    assert texts[i + 1] == "T" * 32


def test_english_layout_uses_english_labels() -> None:
    doc = layout_receipt(sample_receipt(lang="en"), PrinterProfile(), lang="en")
    text = render_text(doc)
    for key in ("total", "card", "auth_code", "date", "terminal"):
        assert LABELS["en"][key] in text
    assert "4,769.41 RUB" in text
    assert "Итого" not in text
    assert "ИТОГО" not in text


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ReceiptError):
        layout_receipt(sample_receipt(), lang="de")


def test_cyrillic_round_trips_through_cp866() -> None:
    alphabet = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя№"
    assert paper_text(alphabet, "cp866") == alphabet
    assert alphabet.encode("cp866").decode("cp866") == alphabet
    r = receipt(header=(alphabet[:32], alphabet[32:]))
    profile = PrinterProfile(width_chars=42)
    data = encode_document(layout_receipt(r, profile), profile)
    assert alphabet[:32].encode("cp866") in data
    assert alphabet[32:].encode("cp866") in data


def test_typography_outside_cp866_is_spelled_plainly_on_paper_but_kept_on_screen() -> None:
    assert paper_text("«Дом» — №1 … 5 ₽", "cp866") == '"Дом" - №1 ... 5 р.'
    assert paper_text("Ω", "cp866") == "?"
    r = receipt(header=("«Дом»",))
    paper = layout_receipt(r)
    screen = layout_receipt(r, for_screen=True, currency_label="₽")
    assert lines(paper.elements)[0] == '"Дом"'
    assert lines(screen.elements)[0] == "«Дом»"
    assert any(t.endswith("100,00 ₽") for t in lines(screen.elements))
