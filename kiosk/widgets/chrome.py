"""The frame around every screen: the title bar with the idle countdown, and the staff line.

The staff line is deliberately terse (online/offline, stored payments, a
"staff needed" mark): enough for a passing technician, nothing a resident
needs to read. Tapping it opens the PIN screen for service mode.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from kiosk.i18n import t
from kiosk.messages import ServiceModeRequested
from kiosk.services import StaffStatus


class KioskHeader(Horizontal):
    """The screen's title on the left, the idle countdown on the right."""

    DEFAULT_CSS = """
    KioskHeader {
        height: 1;
        dock: top;
        background: $primary;
        color: $text;
    }
    KioskHeader > #title { width: 1fr; padding: 0 1; text-style: bold; }
    KioskHeader > #idle { width: auto; padding: 0 1; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static(self._title, id="title")
        yield Static("", id="idle")

    def set_title(self, title: str) -> None:
        self._title = title
        self.query_one("#title", Static).update(title)

    def set_idle(self, lang: str, seconds_left: int | None) -> None:
        text = "" if seconds_left is None else t(lang, "idle", seconds=seconds_left)
        self.query_one("#idle", Static).update(text)


def staff_text(lang: str, status: StaffStatus | None) -> str:
    """The staff line's text."""
    if status is None or not status.ready:
        return t(lang, "staff.starting")
    online = t(lang, "staff.online" if status.online else "staff.offline")
    parts = [
        "●" if status.online else "○",
        online,
        "·",
        t(lang, "staff.stored", count=status.stored_payments),
    ]
    if status.alarms or status.payments_paused:
        parts += ["·", t(lang, "staff.alarm")]
    return " ".join(parts)


class StaffLine(Static):
    """One dim line at the bottom; a tap asks for service mode."""

    DEFAULT_CSS = """
    StaffLine {
        height: 1;
        dock: bottom;
        color: $text-muted;
        background: $surface;
        padding: 0 1;
    }
    """

    def show(self, lang: str, status: StaffStatus | None) -> None:
        self.update(staff_text(lang, status))

    def on_click(self) -> None:
        self.post_message(ServiceModeRequested())
