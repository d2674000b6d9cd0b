"""Payout reports as CSV and PDF (with Cyrillic), for the exports page.

CSV: UTF-8 with a byte-order mark (so spreadsheet programs read Cyrillic), one
line per recipient and currency, money as integer minor units and as an exact
decimal string; a cell that a spreadsheet would run as a formula is prefixed
with an apostrophe (CSV injection).

PDF: fpdf2 with the DejaVu Sans TrueType font from Debian's ``fonts-dejavu-core``
(found at run time; a clear error names the package when it is missing). fpdf2
is imported only when a PDF is made (the ``central`` extra installs it).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from central_sync.console.errors import ConsoleError
from central_sync.console.i18n import Lang, money, t
from central_sync.console.ledger import PayoutLine

FONT_ENV = "LOBBYPAY_CONSOLE_FONT"
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ReportUnavailableError(ConsoleError):
    """A report cannot be made here (the PDF font or library is missing)."""

    code = "report-unavailable"


@dataclass(frozen=True, slots=True, kw_only=True)
class PayoutReport:
    by: str
    first_day: str
    last_day: str
    lines: Sequence[PayoutLine]
    generated: str
    """When and by whom, already formatted."""
    user: str


def decimal_text(amount_minor: int) -> str:
    """``-1234.56`` from minor units, exactly."""
    whole, minor = divmod(abs(amount_minor), 100)
    return f"{'-' if amount_minor < 0 else ''}{whole}.{minor:02d}"


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def payouts_csv(report: PayoutReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow((report.by, "currency", "payments", "amount_minor", "amount", "from", "to"))
    for line in report.lines:
        writer.writerow(
            (
                _cell(line.key),
                _cell(line.currency),
                line.payments,
                line.amount_minor,
                decimal_text(line.amount_minor),
                report.first_day,
                report.last_day,
            )
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def font_path() -> Path:
    """The DejaVu Sans font file; ReportUnavailableError naming the package if missing."""
    override = os.environ.get(FONT_ENV)
    for candidate in ((Path(override),) if override else ()) + FONT_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise ReportUnavailableError(
        "no DejaVu Sans font for PDF reports: install the Debian package fonts-dejavu-core"
        f" (or set {FONT_ENV} to a TrueType font with Cyrillic)"
    )


def payouts_pdf(report: PayoutReport, lang: Lang) -> bytes:
    """An A4 PDF of the report with Cyrillic text, totals per currency at the end."""
    try:
        from fpdf import FPDF
        from fpdf.enums import XPos, YPos
    except ImportError:
        raise ReportUnavailableError(
            "PDF reports need fpdf2: install lobbypay with the 'central' extra"
        ) from None
    font = font_path()
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_creator("lobbypay")
    pdf.set_title(t(lang, "payouts.title", by=t(lang, f"exports.by.{report.by}")))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("DejaVu", "", str(font))
    pdf.add_page()
    pdf.set_font("DejaVu", size=15)
    pdf.cell(
        0,
        9,
        t(lang, "payouts.title", by=t(lang, f"exports.by.{report.by}")),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_font("DejaVu", size=10)
    pdf.cell(
        0,
        6,
        t(lang, "payouts.period", start=report.first_day, end=report.last_day),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.cell(
        0,
        6,
        t(lang, "payouts.generated", when=report.generated, user=report.user),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(4)
    widths = (85, 20, 25, 50)
    headers = (
        t(lang, "payouts.key"),
        t(lang, "payouts.currency"),
        t(lang, "payouts.count"),
        t(lang, "payouts.amount"),
    )
    pdf.set_fill_color(235, 238, 243)
    for width, header, align in zip(widths, headers, "LLRR", strict=True):
        pdf.cell(width, 7, header, border=1, align=align, fill=True)
    pdf.ln()
    totals: dict[str, list[int]] = {}
    for line in report.lines:
        cells = (line.key[:60], line.currency, str(line.payments), money(line.amount_minor, lang))
        for width, text, align in zip(widths, cells, "LLRR", strict=True):
            pdf.cell(width, 6, text, border=1, align=align)
        pdf.ln()
        total = totals.setdefault(line.currency, [0, 0])
        total[0] += line.payments
        total[1] += line.amount_minor
    for currency, (count, amount) in sorted(totals.items()):
        cells = (t(lang, "common.total"), currency, str(count), money(amount, lang))
        for width, text, align in zip(widths, cells, "LLRR", strict=True):
            pdf.cell(width, 7, text, border=1, align=align, fill=True)
        pdf.ln()
    return bytes(pdf.output())
