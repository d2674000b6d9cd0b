"""Statement: the account's charges and this kiosk's payments for a chosen period; printable."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Static

from kiosk.documents import StatementRow
from kiosk.i18n import money, t
from kiosk.messages import GoBack, PrintFinished, StatementReady, StatementRequested
from kiosk.model import AccountSession
from kiosk.screens.base import KioskScreen
from kiosk.screens.services import account_heading
from kiosk.services import PrintOutcome, StaffStatus


class StatementScreen(KioskScreen):
    """Period buttons (1, 3, 6, 12 months), the rows, and Print."""

    TITLE_KEY = "statement.title"
    PERIODS: ClassVar[tuple[int, ...]] = (1, 3, 6, 12)
    DEFAULT_CSS = """
    StatementScreen #heading { height: auto; padding: 0 1; }
    StatementScreen #periods { height: 3; }
    StatementScreen #periods > Button { width: 12; min-width: 8; }
    StatementScreen #period { height: 1; padding: 0 1; }
    StatementScreen #rows { height: 1fr; }
    StatementScreen #status { height: auto; padding: 0 1; }
    StatementScreen #nav { height: 3; }
    StatementScreen #print { dock: right; }
    """

    def __init__(
        self, lang: str, session: AccountSession, *, staff: StaffStatus | None = None
    ) -> None:
        super().__init__(lang, staff)
        self.session = session
        self.months = 3
        self.rows: tuple[StatementRow, ...] = ()
        self.start = self.end = ""
        self.print_outcome: PrintOutcome | None = None

    def title_text(self) -> str:
        return t(self.lang, self.TITLE_KEY, account=self.session.virtual_number)

    def compose_body(self) -> ComposeResult:
        yield Static(id="heading")
        with Horizontal(id="periods"):
            for months in self.PERIODS:
                yield Button("", id=f"months-{months}")
        yield Static(id="period")
        yield DataTable(id="rows", show_cursor=False, zebra_stripes=True)
        yield Static(id="status")
        with Horizontal(id="nav"):
            yield Button("", id="back")
            yield Button("", id="print", variant="primary")

    def on_mount(self) -> None:
        super().on_mount()
        self.post_message(StatementRequested(self.months))

    def apply_language(self) -> None:
        super().apply_language()
        lang = self.lang
        self.query_one("#heading", Static).update(Text(account_heading(self.session, lang)))
        for months in self.PERIODS:
            button = self.query_one(f"#months-{months}", Button)
            button.label = t(lang, "statement.months", n=months)
            button.variant = "primary" if months == self.months else "default"
        self.query_one("#back", Button).label = t(lang, "back")
        self.query_one("#print", Button).label = t(lang, "statement.print")
        self._redraw()

    def _redraw(self) -> None:
        lang = self.lang
        period = t(lang, "statement.period", start=self.start, end=self.end) if self.start else ""
        self.query_one("#period", Static).update(period)
        table = self.query_one("#rows", DataTable)
        table.clear(columns=True)
        table.add_column(t(lang, "statement.col_date"))
        table.add_column(t(lang, "statement.col_what"))
        table.add_column(t(lang, "statement.col_amount"))
        for row in self.rows:
            table.add_row(
                row.when, Text(row.what), Text(money(row.amount_minor, lang), justify="right")
            )
        outcome = self.print_outcome
        status = ""
        if outcome is not None:
            status = (
                t(lang, "statement.printed")
                if outcome.ok
                else t(lang, "statement.print_failed", reason=outcome.reason.get(lang, ""))
            )
        self.query_one("#status", Static).update(Text(status))

    def on_statement_ready(self, message: StatementReady) -> None:
        self.months = message.months
        self.rows = tuple(message.rows)
        self.start, self.end = message.start, message.end
        self.apply_language()

    def on_print_finished(self, message: PrintFinished) -> None:
        self.print_outcome = message.outcome
        self._redraw()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "back":
            self.post_message(GoBack())
        elif button == "print":
            self.print_outcome = None
            self.post_message(StatementRequested(self.months, print_it=True))
        elif button.startswith("months-"):
            self.print_outcome = None
            self.post_message(StatementRequested(int(button.removeprefix("months-"))))
