"""Surcharge: show the fee; the resident accepts it or declines (which may cancel the payment)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from kiosk.i18n import money, t
from kiosk.messages import GoBack, SurchargeDecided
from kiosk.model import SurchargeQuote
from kiosk.screens.base import KioskScreen
from kiosk.services import StaffStatus


class SurchargeScreen(KioskScreen):
    """Every fee of the order: the resident's to accept, the provider's for information."""

    TITLE_KEY = "surcharge.title"
    DEFAULT_CSS = """
    SurchargeScreen #fees { height: auto; padding: 1 2; }
    SurchargeScreen #nav { height: 3; dock: bottom; }
    SurchargeScreen #nav > Button { margin-right: 1; }
    SurchargeScreen #accept { dock: right; }
    """

    def __init__(
        self, lang: str, quote: SurchargeQuote, *, staff: StaffStatus | None = None
    ) -> None:
        super().__init__(lang, staff)
        self.quote = quote

    def compose_body(self) -> ComposeResult:
        yield Static(id="fees")
        with Horizontal(id="nav"):
            yield Button("", id="back")
            yield Button("", id="decline", variant="error")
            yield Button("", id="accept", variant="success")

    def apply_language(self) -> None:
        super().apply_language()
        lang = self.lang
        lines = []
        if self.quote.resident_lines:
            lines.append(t(lang, "surcharge.intro"))
            for fee in self.quote.resident_lines:
                row = t(
                    lang,
                    "surcharge.row",
                    service=fee.name(lang),
                    amount=money(fee.amount_minor, lang),
                )
                if fee.declinable:
                    row += f" ({t(lang, 'surcharge.declinable')})"
                lines.append("  " + row)
            lines.append("")
            lines.append(
                t(lang, "surcharge.total", amount=money(self.quote.resident_total_minor, lang))
            )
        for fee in self.quote.provider_lines:
            lines.append(
                t(
                    lang,
                    "surcharge.provider_pays",
                    service=fee.name(lang),
                    amount=money(fee.amount_minor, lang),
                )
            )
        self.query_one("#fees", Static).update(Text("\n".join(lines)))
        self.query_one("#back", Button).label = t(lang, "back")
        self.query_one("#decline", Button).label = t(lang, "surcharge.decline")
        self.query_one("#accept", Button).label = t(lang, "surcharge.accept")
        # With only the provider's fees there is nothing to decline.
        self.query_one("#decline", Button).display = bool(self.quote.resident_lines)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            self.post_message(GoBack())
        elif event.button.id in ("accept", "decline"):
            self.post_message(SurchargeDecided(event.button.id == "accept"))
