"""Service mode: device status, journal queue, catalog and sync state; test print, end-of-day."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.widgets import Button, Static

from kiosk.i18n import money, t
from kiosk.messages import GoHome, ServiceAction, ServiceActionDone, ServiceReportReady
from kiosk.screens.base import KioskScreen
from kiosk.services import ServiceReport, StaffStatus

ACTIONS = ("test_receipt", "reprint", "end_of_day", "resolve", "clear_alarms")


def age_text(seconds: float | None, lang: str) -> str:
    """A rough age: "42 s", "5 min", "3 h", "2 d" (or "never")."""
    if seconds is None:
        return t(lang, "service.never")
    s = int(seconds)
    if s < 120:
        return t(lang, "age.seconds", n=s)
    if s < 7200:
        return t(lang, "age.minutes", n=s // 60)
    if s < 172_800:
        return t(lang, "age.hours", n=s // 3600)
    return t(lang, "age.days", n=s // 86_400)


def ago_text(then_ms: int | None, now_ms: int, lang: str) -> str:
    """ "12 min ago", or "never" when it never happened."""
    if not then_ms:
        return t(lang, "service.never")
    return t(lang, "age.ago", age=age_text(max(0, now_ms - then_ms) / 1000, lang))


def state_text(state: tuple[str, Mapping[str, str]], lang: str) -> str:
    name, detail = state
    reason = detail.get(lang, "")
    if name == "ok":
        return t(lang, "state.ok") + (f" ({reason})" if reason else "")
    if name == "absent":
        return t(lang, "state.absent")
    if name == "paper_out":
        return t(lang, "state.paper_out")
    if name == "paper_low":
        return t(lang, "state.paper_low")
    return t(lang, "state.fault", reason=reason)


def report_lines(report: ServiceReport, lang: str, now_ms: int) -> list[str]:
    """Service mode's figures as lines of text."""
    lines = [
        t(lang, "service.devices"),
        "  " + t(lang, "service.terminal", state=state_text(report.terminal, lang)),
        "  " + t(lang, "service.printer", state=state_text(report.printer, lang)),
        "  " + t(lang, "service.card_reader", state=state_text(report.card_reader, lang)),
        "  " + t(lang, "service.scanner", state=state_text(report.scanner, lang)),
        t(lang, "service.journal"),
        "  "
        + t(
            lang,
            "service.queue",
            entries=report.unsent_entries,
            age=age_text(report.oldest_pending_age_s, lang),
        ),
        "  "
        + t(
            lang,
            "service.stored",
            count=report.stored_payments,
            amount=money(report.stored_amount_minor, lang),
        ),
        "  " + t(lang, "service.unknown", count=report.outcome_unknown),
        t(
            lang,
            "service.catalog",
            version=report.catalog_version,
            accounts=report.catalog_accounts,
            age=age_text(report.catalog_age_s, lang),
            stale=t(lang, "service.stale") if report.catalog_stale else "",
        ),
        t(
            lang,
            "service.sync",
            acked=report.acknowledged_through,
            ago=ago_text(report.last_ack_ms, now_ms, lang),
            applied=ago_text(report.catalog_applied_at_ms, now_ms, lang),
        ),
        t(
            lang,
            "service.central",
            state=t(lang, "staff.online" if report.online else "staff.offline"),
        ),
        t(
            lang,
            "service.alarms",
            alarms=", ".join(t(lang, f"alarm.{a}") for a in report.alarms if _known_alarm(a))
            or t(lang, "service.no_alarms"),
        ),
    ]
    return lines


def _known_alarm(name: str) -> bool:
    from kiosk.i18n import MESSAGES

    return f"alarm.{name}" in MESSAGES["en"]


class ServiceModeScreen(KioskScreen):
    """The technician's panel; Exit (or the idle timeout) returns to the welcome screen."""

    TITLE_KEY = "service.title"
    DEFAULT_CSS = """
    ServiceModeScreen #report { height: 1fr; padding: 0 1; }
    ServiceModeScreen #action-result { height: auto; padding: 0 1; text-style: bold; }
    ServiceModeScreen #actions { grid-size: 3 2; grid-gutter: 0 1; height: 6; }
    ServiceModeScreen #actions > Button { width: 100%; }
    """

    def __init__(self, lang: str, *, staff: StaffStatus | None = None, now_ms: int = 0) -> None:
        super().__init__(lang, staff)
        self.report: ServiceReport | None = None
        self.result: dict[str, str] | None = None
        self.now_ms = now_ms

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="report"):
            yield Static(id="report-text")
        yield Static(id="action-result")
        with Grid(id="actions"):
            for action in ACTIONS:
                yield Button("", id=action)
            yield Button("", id="exit", variant="primary")

    def apply_language(self) -> None:
        super().apply_language()
        for action in ACTIONS:
            self.query_one(f"#{action}", Button).label = t(self.lang, f"service.{action}")
        self.query_one("#exit", Button).label = t(self.lang, "service.exit")
        self._redraw()

    def _redraw(self) -> None:
        text = ""
        if self.report is not None:
            text = "\n".join(report_lines(self.report, self.lang, self.now_ms))
        self.query_one("#report-text", Static).update(Text(text))
        result = self.result.get(self.lang, "") if self.result else ""
        self.query_one("#action-result", Static).update(Text(result))

    def on_service_report_ready(self, message: ServiceReportReady) -> None:
        self.report = message.report
        self._redraw()

    def on_service_action_done(self, message: ServiceActionDone) -> None:
        self.result = dict(message.result.text)
        self._redraw()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "exit":
            self.post_message(GoHome())
        elif button in ACTIONS:
            self.result = None
            self._redraw()
            self.post_message(ServiceAction(button))

    def action_back(self) -> None:
        self.post_message(GoHome())
