"""Receipt: the payment went through; the receipt on screen with its QR, and the print status."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from kiosk.i18n import t
from kiosk.messages import GoHome, PrintFinished
from kiosk.screens.base import KioskScreen
from kiosk.services import PrintOutcome, StaffStatus


class ReceiptScreen(KioskScreen):
    """Shown as soon as the payment is approved, before the printer has finished."""

    TITLE_KEY = "receipt.title"
    DEFAULT_CSS = """
    ReceiptScreen #paper {
        width: 49; border: round $primary; background: $surface; scrollbar-size-vertical: 1;
    }
    ReceiptScreen #receipt { width: auto; padding: 0 1; }
    ReceiptScreen #side { width: 1fr; padding: 0 2; }
    ReceiptScreen #qr { width: auto; height: auto; color: black; background: white; }
    ReceiptScreen #print-status { height: auto; margin-top: 1; text-style: bold; }
    ReceiptScreen #finish { margin-top: 1; width: 24; height: 3; }
    """

    def __init__(
        self,
        lang: str,
        receipt_text: str,
        qr_text: str,
        *,
        staff: StaffStatus | None = None,
    ) -> None:
        super().__init__(lang, staff)
        self.receipt_text = receipt_text
        self.qr_text = qr_text
        self.outcome: PrintOutcome | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with VerticalScroll(id="paper"):
                yield Static(Text(self.receipt_text), id="receipt")
            with Vertical(id="side"):
                yield Static(Text(self.qr_text), id="qr")
                yield Static(id="print-status")
                yield Button("", id="finish", variant="success")

    def apply_language(self) -> None:
        super().apply_language()
        self.query_one("#finish", Button).label = t(self.lang, "receipt.finish")
        self._redraw()

    def _redraw(self) -> None:
        lang, outcome = self.lang, self.outcome
        if outcome is None:
            text = t(lang, "receipt.printing")
        elif outcome.ok:
            text = t(lang, "receipt.thanks")
        elif outcome.fault == "paper_out":
            text = t(lang, "receipt.paper_out")
        else:
            text = t(lang, "receipt.printer_fault", reason=outcome.reason.get(lang, ""))
        self.query_one("#print-status", Static).update(Text(text))

    def on_print_finished(self, message: PrintFinished) -> None:
        self.outcome = message.outcome
        self._redraw()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "finish":
            self.post_message(GoHome())

    def action_back(self) -> None:
        # There is nothing to go back to: the payment is done.
        self.post_message(GoHome())
