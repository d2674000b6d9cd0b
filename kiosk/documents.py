"""Paper and screen documents: the payment receipt (from journal bodies) and the statement.

The receipt is built from the payment's ``payment-intent`` and
``payment-result`` bodies, never from screen state: the receipt on screen, the
printed one, and a reprint from service mode all say exactly what the journal
says. Its QR carries a short verification record (``LP1|payment_id|total|
currency|time|terminal``) that central can check against the ledger.

The statement (DESIGN.md, kiosk: "statement") lists the account's services as
the catalog has them and this kiosk's payments for the chosen period; it is
laid out as an ESC/POS :class:`~drivers.escpos.Document` for the printer and
as text rows for the screen.
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from drivers.escpos.document import Align, Cut, Document, Feed, Style, TextLine
from drivers.escpos.receipt import CardDetails, Receipt, ReceiptItem, paper_text
from kiosk.i18n import money, period_label, t

__all__ = [
    "StatementRow",
    "build_receipt",
    "month_window",
    "statement_document",
    "statement_rows",
]

_MASKED_OK: Final = re.compile(r"^[0-9]{0,6}[*Xx]{2,13}[0-9]{0,4}$")
_RRN_OK: Final = re.compile(r"^[A-Za-z0-9]{1,12}$")


def _period_text(period: str) -> str:
    # Receipts print periods as MM.YYYY, the way Russian bills do.
    if len(period) == 7 and period[4] == "-":
        return f"{period[5:]}.{period[:4]}"
    return period


def _card(result: Mapping[str, Any]) -> CardDetails | None:
    pan, auth, rrn = result.get("masked_pan"), result.get("auth_code"), result.get("rrn")
    if not isinstance(pan, str) or not _MASKED_OK.match(pan) or not isinstance(auth, str):
        return None
    if not isinstance(rrn, str) or not _RRN_OK.match(rrn) or not 1 <= len(auth) <= 8:
        return None
    brand = result.get("card_brand")
    return CardDetails(
        masked_pan=pan,
        auth_code=auth,
        rrn=rrn,
        brand=brand if isinstance(brand, str) and brand else None,
    )


def build_receipt(
    intent: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    paid_at: dt.datetime,
    header: Sequence[str],
    terminal_label: str,
    lang: str,
) -> Receipt:
    """The receipt of an approved payment, from its journal bodies."""
    items = []
    account = str(intent.get("account", ""))
    for raw in intent.get("items", []):
        name = raw.get("name_ru" if lang == "ru" else "name_en") or raw.get("service", "?")
        items.append(
            ReceiptItem(
                service=str(name),
                amount_minor=int(raw["amount_minor"]),
                account=account or None,
                period=_period_text(str(raw["period"])) if raw.get("period") else None,
            )
        )
    surcharge = int(intent.get("surcharge_minor", 0))
    total = int(intent["amount_minor"])
    terminal_id = result.get("terminal_id")
    tid = terminal_id if isinstance(terminal_id, str) and terminal_id else terminal_label
    payment_id = str(intent["payment_id"])
    qr = "|".join(
        (
            "LP1",
            payment_id,
            str(total),
            str(intent.get("currency", "RUB")),
            paid_at.strftime("%Y%m%dT%H%M%S"),
            tid,
        )
    )
    return Receipt(
        header=tuple(header),
        items=tuple(items),
        total_minor=total,
        surcharge_minor=surcharge,
        paid_at=paid_at,
        terminal_id=tid,
        card=_card(result),
        reference=payment_id,
        qr_payload=qr,
        footer=(t(lang, "receipt.thanks"),),
    )


# --------------------------------------------------------------------------- statement


def _paper_money(amount_minor: int, lang: str) -> str:
    # Code page 866 has neither the rouble sign nor the narrow no-break space.
    return money(amount_minor, lang).replace("\u202f", " ").replace("₽", "р.").replace("−", "-")


def month_window(today: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """The first day of the month ``months - 1`` months before ``today``'s, and ``today``."""
    assert months >= 1
    total = today.year * 12 + (today.month - 1) - (months - 1)
    return dt.date(total // 12, total % 12 + 1, 1), today


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementRow:
    """One line of a statement: a date (or period), what, and an amount."""

    when: str
    what: str
    amount_minor: int
    kind: str
    """"charge" (a service's current debt) or "payment" (a kiosk payment)."""


def statement_rows(
    lines: Sequence[Any],
    payments: Sequence[Any],
    *,
    lang: str,
    tz: dt.tzinfo | None = None,
) -> list[StatementRow]:
    """Statement rows: the catalog's services (``ServiceLine``), then the period's payments."""
    rows = [
        StatementRow(
            when=period_label(line.view.service.period, lang),
            what=line.name(lang),
            amount_minor=line.debt_minor,
            kind="charge",
        )
        for line in lines
    ]
    for p in payments:
        if not p.stands:
            continue
        when = dt.datetime.fromtimestamp(p.intent_ts_ms / 1000, tz).strftime("%d.%m.%Y")
        rows.append(
            StatementRow(
                when=when,
                what=t(lang, "statement.payment_row", reference=p.payment_id[-8:]),
                amount_minor=-(p.amount_minor - p.surcharge_minor),
                kind="payment",
            )
        )
    return rows


def statement_document(
    *,
    account: str,
    holder: str,
    address: str,
    start: dt.date,
    end: dt.date,
    rows: Sequence[StatementRow],
    header: Sequence[str],
    lang: str,
    width_chars: int,
) -> Document:
    """The statement laid out for the receipt printer."""
    codec = "cp866"
    elements: list[Any] = []

    def line(text: str, style: Style | None = None) -> None:
        text = paper_text(text, codec)
        while text:
            elements.append(TextLine(text=text[:width_chars], style=style or Style()))
            text = text[width_chars:]

    def columns(left: str, right: str) -> None:
        left, right = paper_text(left, codec), paper_text(right, codec)
        room = width_chars - len(right) - 1
        if room < 4:
            line(left)
            line(right.rjust(width_chars))
            return
        wrapped = textwrap.wrap(left, room, break_long_words=True) or [""]
        for part in wrapped[:-1]:
            elements.append(TextLine(text=part))
        # The amount goes on the last line of the wrapped text, flush right.
        elements.append(TextLine(text=wrapped[-1].ljust(width_chars - len(right)) + right))

    for i, text in enumerate(header):
        line(text, Style(bold=i == 0, align=Align.CENTER))
    line(t(lang, "statement.title", account=account), Style(bold=True, align=Align.CENTER))
    line(holder)
    line(address)
    line(
        t(lang, "statement.period", start=start.strftime("%d.%m.%Y"), end=end.strftime("%d.%m.%Y"))
    )
    elements.append(TextLine(text="-" * width_chars))
    line(t(lang, "statement.charges"), Style(bold=True))
    for row in rows:
        if row.kind == "charge":
            columns(f"{row.when} {row.what}", _paper_money(row.amount_minor, lang))
    elements.append(TextLine(text="-" * width_chars))
    line(t(lang, "statement.payments"), Style(bold=True))
    payments = [r for r in rows if r.kind == "payment"]
    if not payments:
        line(t(lang, "statement.no_payments"))
    for row in payments:
        columns(f"{row.when} {row.what}", _paper_money(row.amount_minor, lang))
    elements.append(Feed(lines=3))
    elements.append(Cut(partial=True))
    return Document(elements=tuple(elements), width_chars=width_chars)
