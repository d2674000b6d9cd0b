"""Confirm: everything once more; OK pays."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from kiosk.i18n import money, period_label, t
from kiosk.messages import GoBack, PayConfirmed
from kiosk.model import AccountSession, Order
from kiosk.screens.base import KioskScreen
from kiosk.screens.services import account_heading
from kiosk.services import StaffStatus


class ConfirmScreen(KioskScreen):
    """The order as the terminal will be asked for it."""

    TITLE_KEY = "confirm.title"
    DEFAULT_CSS = """
    ConfirmScreen #who { height: auto; padding: 0 2; }
    ConfirmScreen #order { height: auto; padding: 1 2; }
    ConfirmScreen #total { height: 3; padding: 0 2; text-style: bold; color: $accent; }
    ConfirmScreen #nav { height: 3; dock: bottom; }
    ConfirmScreen #pay { dock: right; }
    """

    def __init__(
        self,
        lang: str,
        session: AccountSession,
        order: Order,
        *,
        staff: StaffStatus | None = None,
    ) -> None:
        super().__init__(lang, staff)
        self.session = session
        self.order = order

    def compose_body(self) -> ComposeResult:
        yield Static(id="who")
        yield Static(id="order")
        yield Static(id="total")
        with Horizontal(id="nav"):
            yield Button("", id="back")
            yield Button("", id="pay", variant="success")

    def apply_language(self) -> None:
        super().apply_language()
        lang = self.lang
        who = t(lang, "confirm.account", account=self.order.account)
        who += "\n" + account_heading(self.session, lang)
        self.query_one("#who", Static).update(Text(who))
        table = Table(show_header=False, box=None, expand=True, padding=(0, 1))
        table.add_column(ratio=3)
        table.add_column(ratio=1)
        table.add_column(justify="right", ratio=1)
        for item in self.order.items:
            table.add_row(
                item.name(lang), period_label(item.period, lang), money(item.amount_minor, lang)
            )
        if self.order.surcharge_minor:
            table.add_row(t(lang, "confirm.fee"), "", money(self.order.surcharge_minor, lang))
        self.query_one("#order", Static).update(table)
        self.query_one("#total", Static).update(
            t(lang, "confirm.total", amount=money(self.order.total_minor, lang))
        )
        self.query_one("#back", Button).label = t(lang, "back")
        self.query_one("#pay", Button).label = t(lang, "confirm.pay")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            self.post_message(GoBack())
        elif event.button.id == "pay":
            event.button.disabled = True  # one tap, one payment
            self.post_message(PayConfirmed())
