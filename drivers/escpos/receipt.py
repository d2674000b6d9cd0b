"""The payment receipt: a document model and its layout on paper.

A :class:`Receipt` holds what a kiosk receipt says -- header, one line per paid
service, surcharge, total, the card details the payment terminal returned
(masked PAN, auth code, RRN), date and time, terminal id, a QR payload and a
footer. :func:`layout_receipt` lays it out as a
:class:`~drivers.escpos.document.Document` for a paper width of 32, 42 or 48
characters, in Russian or English.

Money is ``int`` kopecks throughout; :func:`format_money` writes ``1 234,56 руб.``
(Russian) or ``1,234.56 RUB`` (English). The currency label is configurable
because code page 866 has no rouble sign: paper says "руб.", a screen may say "₽".

Card data: the model refuses anything that could be a full card number. A masked
PAN shows at most the first six and last four digits (PCI DSS 3.4), so more than
ten digits, or no mask character, is a :class:`ReceiptError`.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime

from .document import (
    PLAIN,
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

__all__ = [
    "LABELS",
    "CardDetails",
    "Receipt",
    "ReceiptItem",
    "format_money",
    "layout_receipt",
    "paper_text",
    "sample_receipt",
]

ITEMS_MAX = 100
TEXT_CHARS_MAX = 200
HEADER_LINES_MAX = 8
SERVICE_LINES_MAX = 3
QR_PAYLOAD_BYTES_MAX = 2000
AMOUNT_MINOR_MAX = 10**12  # ten billion roubles: anything above is a bug upstream

LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "receipt": "Чек оплаты",
        "date": "Дата",
        "terminal": "Терминал",
        "reference": "Платёж №",
        "account": "Л/с",
        "period": "Период",
        "surcharge": "Комиссия",
        "total": "ИТОГО",
        "card": "Карта",
        "auth_code": "Код авторизации",
        "rrn": "RRN",
        "approved": "ОПЛАЧЕНО",
        "test": "ТЕСТОВЫЙ ЧЕК",
        "currency": "руб.",
    },
    "en": {
        "receipt": "Payment receipt",
        "date": "Date",
        "terminal": "Terminal",
        "reference": "Payment no.",
        "account": "Account",
        "period": "Period",
        "surcharge": "Surcharge",
        "total": "TOTAL",
        "card": "Card",
        "auth_code": "Auth code",
        "rrn": "RRN",
        "approved": "PAID",
        "test": "TEST RECEIPT",
        "currency": "RUB",
    },
}

# Typography that code page 866 lacks, spelled with what it has, so a header
# typed with "smart" quotes still prints sensibly instead of as "?".
_PAPER_SUBSTITUTES = {
    "«": '"',
    "»": '"',
    "“": '"',
    "”": '"',
    "„": '"',
    "‘": "'",
    "’": "'",
    "—": "-",
    "–": "-",
    "…": "...",
    "₽": "р.",
    "\u00a0": " ",
}


def _check_lang(lang: str) -> None:
    if lang not in LABELS:
        raise ReceiptError(f"language {lang!r} is not one of {sorted(LABELS)}")


def _check_text(name: str, text: str, *, allow_empty: bool = False) -> None:
    if not isinstance(text, str):
        raise ReceiptError(f"{name} must be text")
    if not text.strip() and not allow_empty:
        raise ReceiptError(f"{name} is empty")
    if len(text) > TEXT_CHARS_MAX:
        raise ReceiptError(f"{name} is longer than {TEXT_CHARS_MAX} characters")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text):
        raise ReceiptError(f"{name} contains a control character")


def _check_amount(name: str, value: int, *, positive: bool) -> None:
    # bool is an int subclass; True kopecks is a bug, not an amount.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReceiptError(f"{name} must be an int number of kopecks")
    if value < (1 if positive else 0) or value > AMOUNT_MINOR_MAX:
        raise ReceiptError(f"{name} {value} is out of range")


def format_money(amount_minor: int, *, label: str = "руб.", lang: str = "ru") -> str:
    """Format kopecks as ``1 234,56 руб.`` (ru) or ``1,234.56 RUB`` (en)."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise ReceiptError("amount must be an int number of kopecks")
    _check_lang(lang)
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 100)
    thousands = " " if lang == "ru" else ","
    decimal = "," if lang == "ru" else "."
    grouped = f"{units:,}".replace(",", thousands)
    text = f"{sign}{grouped}{decimal}{minor:02d}"
    return f"{text} {label}" if label else text


def paper_text(text: str, codec: str | None) -> str:
    """``text`` as the printer will print it in ``codec`` (``None``: unchanged).

    Known typography is spelled with plain characters; anything else the code page
    lacks becomes ``?``, which is what the printer would print anyway.
    """
    if codec is None:
        return text
    out = []
    for ch in text:
        ch = _PAPER_SUBSTITUTES.get(ch, ch)
        try:
            ch.encode(codec)
        except UnicodeEncodeError:
            ch = "?" * len(ch)
        out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptItem:
    """One paid service: its name, amount, and optionally account and period."""

    service: str
    amount_minor: int
    account: str | None = None
    period: str | None = None

    def __post_init__(self) -> None:
        _check_text("service", self.service)
        _check_amount("amount_minor", self.amount_minor, positive=True)
        if self.account is not None:
            _check_text("account", self.account)
        if self.period is not None:
            _check_text("period", self.period)


def _looks_masked(pan: str) -> bool:
    digits = sum(ch.isdigit() for ch in pan)
    masks = sum(ch in "*Xx•#" for ch in pan)
    others = len(pan) - digits - masks - pan.count(" ")
    return others == 0 and masks >= 1 and digits <= 10


@dataclass(frozen=True, slots=True, kw_only=True)
class CardDetails:
    """What the payment terminal returned about the card: never a full PAN."""

    masked_pan: str
    auth_code: str
    rrn: str
    brand: str | None = None

    def __post_init__(self) -> None:
        # Never put the value in the message: it might be a full card number.
        if not isinstance(self.masked_pan, str) or not _looks_masked(self.masked_pan):
            raise ReceiptError("masked_pan is not a masked card number")
        if not (1 <= len(self.auth_code) <= 8 and self.auth_code.isascii()):
            raise ReceiptError("auth_code must be 1..8 ASCII characters")
        _check_text("auth_code", self.auth_code)
        if not (1 <= len(self.rrn) <= 12 and self.rrn.isascii() and self.rrn.isalnum()):
            raise ReceiptError("rrn must be 1..12 ASCII letters or digits")
        if self.brand is not None:
            _check_text("brand", self.brand)


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """A payment receipt. ``total_minor`` must equal the items plus the surcharge."""

    header: tuple[str, ...]
    items: tuple[ReceiptItem, ...]
    total_minor: int
    paid_at: datetime
    terminal_id: str
    surcharge_minor: int = 0
    card: CardDetails | None = None
    reference: str | None = None
    qr_payload: str | None = None
    footer: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.header, tuple) or not isinstance(self.footer, tuple):
            raise ReceiptError("header and footer must be tuples of lines")
        if len(self.header) > HEADER_LINES_MAX or len(self.footer) > HEADER_LINES_MAX:
            raise ReceiptError(f"header and footer hold at most {HEADER_LINES_MAX} lines")
        for line in (*self.header, *self.footer):
            _check_text("header/footer line", line, allow_empty=True)
        if not isinstance(self.items, tuple) or not 1 <= len(self.items) <= ITEMS_MAX:
            raise ReceiptError(f"a receipt has 1..{ITEMS_MAX} items")
        if not all(isinstance(item, ReceiptItem) for item in self.items):
            raise ReceiptError("items must be ReceiptItem values")
        _check_amount("surcharge_minor", self.surcharge_minor, positive=False)
        _check_amount("total_minor", self.total_minor, positive=True)
        expected = sum(item.amount_minor for item in self.items) + self.surcharge_minor
        if self.total_minor != expected:
            raise ReceiptError(f"total {self.total_minor} is not items + surcharge = {expected}")
        if not isinstance(self.paid_at, datetime):
            raise ReceiptError("paid_at must be a datetime")
        _check_text("terminal_id", self.terminal_id)
        if self.reference is not None:
            _check_text("reference", self.reference)
        if self.qr_payload is not None:
            try:
                size = len(self.qr_payload.encode("utf-8"))
            except UnicodeEncodeError:
                raise ReceiptError("qr_payload is not valid Unicode text") from None
            if not 1 <= size <= QR_PAYLOAD_BYTES_MAX:
                raise ReceiptError(f"qr_payload must be 1..{QR_PAYLOAD_BYTES_MAX} bytes of UTF-8")


class _Layout:
    """Accumulates elements for one paper width and code page."""

    def __init__(self, width: int, codec: str | None) -> None:
        self.width = width
        self.codec = codec
        self.elements: list[Element] = []

    def text(self, text: str, style: Style = PLAIN) -> None:
        text = paper_text(text, self.codec)
        capacity = self.width // style.width
        if not text:
            self.elements.append(TextLine(text=""))
            return
        for line in textwrap.wrap(text, capacity, break_long_words=True) or [""]:
            self.elements.append(TextLine(text=line, style=style if line else PLAIN))

    def rule(self, char: str = "-") -> None:
        self.elements.append(TextLine(text=char * self.width))

    def columns(self, left: str, right: str, style: Style = PLAIN, *, lines_max: int = 0) -> None:
        """``left`` wrapped in the space ``right`` leaves; ``right`` flush right, first line."""
        left = paper_text(left, self.codec)
        right = paper_text(right, self.codec)
        capacity = self.width // style.width
        if len(right) + 2 > capacity:
            # The value alone fills the line: label on its own line(s), then value.
            self.text(left, style)
            self.elements.append(TextLine(text=right[-capacity:].rjust(capacity), style=style))
            return
        room = capacity - len(right) - 1
        wrapped = textwrap.wrap(left, room, break_long_words=True) or [""]
        if lines_max and len(wrapped) > lines_max:
            # Keep the line count bounded: a service name that would take more
            # lines is cut, and the cut is visible.
            wrapped = wrapped[:lines_max]
            last = wrapped[-1]
            wrapped[-1] = (last[: room - 3] + "...") if len(last) > room - 3 else last + "..."
        first = wrapped[0].ljust(capacity - len(right)) + right
        self.elements.append(TextLine(text=first, style=style))
        for cont in wrapped[1:]:
            self.elements.append(TextLine(text=cont, style=style))


def layout_receipt(
    receipt: Receipt,
    profile: PrinterProfile | None = None,
    *,
    lang: str = "ru",
    currency_label: str | None = None,
    for_screen: bool = False,
) -> Document:
    """Lay ``receipt`` out for ``profile``'s paper width, in ``lang`` ("ru"/"en").

    ``currency_label`` defaults to the language's label ("руб." / "RUB").
    With ``for_screen`` the text keeps characters the code page lacks (for the
    kiosk's on-screen receipt); otherwise it is made printable in the profile's
    code page, so what is rendered equals what the printer prints.
    """
    profile = profile or PrinterProfile()
    _check_lang(lang)
    labels = LABELS[lang]
    label = labels["currency"] if currency_label is None else currency_label
    out = _Layout(profile.width_chars, None if for_screen else profile.codec)

    def money(amount: int) -> str:
        return format_money(amount, label=label, lang=lang)

    center = Style(align=Align.CENTER)
    for i, line in enumerate(receipt.header):
        out.text(line, Style(bold=True, align=Align.CENTER) if i == 0 else center)
    out.text(labels["receipt"], center)
    out.rule()
    out.columns(labels["date"], receipt.paid_at.strftime("%d.%m.%Y %H:%M:%S"))
    out.columns(labels["terminal"], receipt.terminal_id)
    if receipt.reference is not None:
        out.columns(labels["reference"], receipt.reference)
    out.rule()
    for item in receipt.items:
        out.columns(item.service, money(item.amount_minor), lines_max=SERVICE_LINES_MAX)
        details = []
        if item.account is not None:
            details.append(f"{labels['account']} {item.account}")
        if item.period is not None:
            details.append(f"{labels['period']} {item.period}")
        if details:
            out.text("  " + ", ".join(details))
    if receipt.surcharge_minor:
        out.columns(labels["surcharge"], money(receipt.surcharge_minor))
    out.rule()
    # Double height, single width: the total stands out and keeps the columns.
    out.columns(labels["total"], money(receipt.total_minor), Style(bold=True, height=2))
    out.rule()
    if receipt.card is not None:
        card = receipt.card
        pan = card.masked_pan if card.brand is None else f"{card.brand} {card.masked_pan}"
        out.columns(labels["card"], pan)
        out.columns(labels["auth_code"], card.auth_code)
        out.columns(labels["rrn"], card.rrn)
        out.text(labels["approved"], Style(bold=True, align=Align.CENTER))
    if receipt.qr_payload is not None:
        out.elements.append(
            QrCode(
                data=receipt.qr_payload.encode("utf-8"),
                module_size=profile.qr_module_size,
                level=profile.qr_level,
                align=Align.CENTER,
            )
        )
    for line in receipt.footer:
        out.text(line, center)
    out.elements.append(Feed(lines=3))
    out.elements.append(Cut(partial=profile.partial_cut))
    return Document(elements=tuple(out.elements), width_chars=profile.width_chars)


def sample_receipt(*, lang: str = "ru", test: bool = True) -> Receipt:
    """A realistic receipt for ``printer test``/``render`` and for tests."""
    _check_lang(lang)
    ru = lang == "ru"
    header: tuple[str, ...] = (
        "ООО «Расчётный центр»" if ru else "Settlement Centre LLC",
        "ул. Ленина, 1, Москва" if ru else "1 Lenin St, Moscow",
    )
    if test:
        header = (*header, LABELS[lang]["test"])
    items = (
        ReceiptItem(
            service="Холодное водоснабжение" if ru else "Cold water",
            amount_minor=123456,
            account="1234567890",
            period="03.2024",
        ),
        ReceiptItem(
            service=(
                "Содержание и ремонт общего имущества многоквартирного дома"
                if ru
                else "Maintenance and repair of the common property of the building"
            ),
            amount_minor=250000,
            account="1234567890",
        ),
        ReceiptItem(service="Электроэнергия" if ru else "Electricity", amount_minor=98765),
    )
    surcharge = 4720
    total = sum(i.amount_minor for i in items) + surcharge
    return Receipt(
        header=header,
        items=items,
        surcharge_minor=surcharge,
        total_minor=total,
        paid_at=datetime(2024, 3, 15, 14, 5, 33),
        terminal_id="T-000123",
        reference="P-20240315-0042",
        card=CardDetails(masked_pan="220220******1234", auth_code="A1B2C3", rrn="407512345678"),
        # A GOST R 56042-2014 payment QR, so a resident can pay the same bill again.
        qr_payload=(
            "ST00012|Name=ООО Расчётный центр|PersonalAcc=40702810900000000001|"
            "BankName=ПАО Банк|BIC=044525000|CorrespAcc=30101810400000000225|"
            f"Sum={total}|PersAcc=1234567890"
        ),
        footer=("Спасибо!" if ru else "Thank you!",),
    )
