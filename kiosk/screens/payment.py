"""Card payment: live terminal status, Cancel, and how it ended when it did not succeed."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, Static

from kiosk.i18n import money, t
from kiosk.messages import (
    CancelPaymentRequested,
    GoBack,
    GoHome,
    PaymentFinished,
    PaymentProgress,
    RetryPayment,
)
from kiosk.payment import PaymentPhase
from kiosk.screens.base import KioskScreen
from kiosk.services import PaymentReport, PaymentUpdate, StaffStatus

# Outcomes after which the resident may simply try again (no money moved).
_RETRYABLE: frozenset[PaymentPhase] = frozenset(
    {PaymentPhase.DECLINED, PaymentPhase.CANCELLED, PaymentPhase.FAILED}
)


class PaymentScreen(KioskScreen):
    """While the terminal works, only Cancel; afterwards Retry / Back / Finish as they apply."""

    TITLE_KEY = "payment.title"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", show=False)]
    DEFAULT_CSS = """
    PaymentScreen #amount { height: 3; padding: 1 2; text-style: bold; }
    PaymentScreen #status {
        height: 7; padding: 1 2; text-style: bold; color: $accent; content-align: center middle;
        border: round $accent;
    }
    PaymentScreen #outcome { height: auto; padding: 1 2; }
    PaymentScreen #nav { height: 3; dock: bottom; }
    PaymentScreen #nav > Button { margin-right: 1; }
    PaymentScreen #retry { dock: right; }
    """

    def __init__(self, lang: str, amount_minor: int, *, staff: StaffStatus | None = None) -> None:
        super().__init__(lang, staff)
        self.amount_minor = amount_minor
        self.update_: PaymentUpdate | None = None
        self.report: PaymentReport | None = None
        self.cancelling = False

    @property
    def running(self) -> bool:
        return self.report is None

    def compose_body(self) -> ComposeResult:
        yield Static(id="amount")
        yield Static(id="status")
        yield Static(id="outcome")
        with Horizontal(id="nav"):
            yield Button("", id="cancel", variant="error")
            yield Button("", id="back")
            yield Button("", id="home")
            yield Button("", id="retry", variant="success")

    def apply_language(self) -> None:
        super().apply_language()
        lang = self.lang
        self.query_one("#amount", Static).update(
            t(lang, "payment.amount", amount=money(self.amount_minor, lang))
        )
        for button, key in (
            ("cancel", "cancel"),
            ("back", "back"),
            ("home", "done"),
            ("retry", "retry"),
        ):
            self.query_one(f"#{button}", Button).label = t(lang, key)
        self._redraw()

    def _redraw(self) -> None:
        lang = self.lang
        report, update = self.report, self.update_
        status = t(lang, "payment.starting")
        if update is not None:
            status = update.terminal_text.get(lang) or t(lang, update.status_key)
        if self.cancelling and self.running:
            status = t(lang, "payment.cancelling")
        outcome = ""
        if report is not None:
            status = ""
            if report.message_key is not None:
                reason = report.reason.get(lang, "")
                outcome = t(lang, report.message_key, reason=reason, reference=reason)
        self.query_one("#status", Static).update(Text(status, justify="center"))
        self.query_one("#status", Static).display = bool(status)
        self.query_one("#outcome", Static).update(Text(outcome))
        cancel = self.query_one("#cancel", Button)
        cancel.display = self.running
        cancel.disabled = self.cancelling or update is None or not update.cancellable
        finished = report is not None
        retry_ok = finished and report is not None and report.phase in _RETRYABLE
        self.query_one("#retry", Button).display = retry_ok
        self.query_one("#back", Button).display = (
            finished
            and report is not None
            and (report.phase in _RETRYABLE or report.phase is PaymentPhase.REFUSED)
        )
        self.query_one("#home", Button).display = finished

    def on_payment_progress(self, message: PaymentProgress) -> None:
        self.update_ = message.update
        self._redraw()

    def on_payment_finished(self, message: PaymentFinished) -> None:
        self.report = message.report
        self._redraw()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button == "cancel" and self.running:
            self.cancelling = True
            self._redraw()
            self.post_message(CancelPaymentRequested())
        elif button == "retry":
            self.report = None
            self.update_ = None
            self.cancelling = False
            self._redraw()
            self.post_message(RetryPayment())
        elif button == "back":
            self.post_message(GoBack())
        elif button == "home":
            self.post_message(GoHome())

    def action_back(self) -> None:
        # Leaving while the terminal works would orphan the payment on screen.
        if not self.running:
            self.post_message(GoBack())
