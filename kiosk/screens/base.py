"""The common frame of every kiosk screen: header with idle countdown, body, staff line.

A screen subclass composes its body in :meth:`KioskScreen.compose_body`, writes
its texts in :meth:`KioskScreen.apply_language` (called once mounted and again
whenever the language changes), and posts :mod:`kiosk.messages` requests. It
never calls a service.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen

from kiosk.i18n import t
from kiosk.messages import GoBack, IdleTick, LanguageChanged, StaffStatusChanged
from kiosk.services import StaffStatus
from kiosk.widgets.chrome import KioskHeader, StaffLine
from kiosk.widgets.keypad import NumericKeypad


class KioskScreen(Screen[None]):
    """Base of every screen (see the module docstring)."""

    TITLE_KEY: ClassVar[str] = "welcome.title"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", show=False)]

    def __init__(self, lang: str, staff: StaffStatus | None = None) -> None:
        super().__init__()
        self.lang = lang
        self.staff = staff

    def title_text(self) -> str:
        return t(self.lang, self.TITLE_KEY)

    def compose(self) -> ComposeResult:
        yield KioskHeader(self.title_text())
        with Vertical(id="body"):
            yield from self.compose_body()
        yield StaffLine(id="staff")

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one(StaffLine).show(self.lang, self.staff)
        self.apply_language()

    def apply_language(self) -> None:
        """Write every text of the screen in ``self.lang``."""
        self.query_one(KioskHeader).set_title(self.title_text())
        for keypad in self.query(NumericKeypad):
            keypad.set_language(self.lang)

    def on_language_changed(self, message: LanguageChanged) -> None:
        self.lang = message.lang
        self.query_one(StaffLine).show(self.lang, self.staff)
        self.apply_language()

    def on_idle_tick(self, message: IdleTick) -> None:
        self.query_one(KioskHeader).set_idle(self.lang, message.seconds_left)

    def on_staff_status_changed(self, message: StaffStatusChanged) -> None:
        self.staff = message.status
        self.query_one(StaffLine).show(self.lang, self.staff)

    def action_back(self) -> None:
        self.post_message(GoBack())
