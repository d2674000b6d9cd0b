"""Welcome: tap a card, scan a bill, or type the account number; switch language."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Key
from textual.widgets import Button, Static

from kiosk.i18n import t
from kiosk.messages import (
    DemoBillScanned,
    DemoCardTapped,
    IdentifyResult,
    IdleTick,
    LanguageToggled,
    NumberSubmitted,
    StaffStatusChanged,
)
from kiosk.screens.base import KioskScreen
from kiosk.services import StaffStatus
from kiosk.widgets.keypad import NumericKeypad

NUMBER_DIGITS_MAX = 20


class WelcomeScreen(KioskScreen):
    """The first screen; the idle timeout always comes back here with nothing kept."""

    TITLE_KEY = "welcome.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "demo_card(0)", show=False),
        Binding("f6", "demo_card(1)", show=False),
        Binding("f7", "demo_bill", show=False),
    ]
    DEFAULT_CSS = """
    WelcomeScreen #welcome-left { width: 1fr; padding: 1 2; }
    WelcomeScreen #welcome-right { width: 42; padding: 1 1; }
    WelcomeScreen #subtitle {
        text-style: bold; color: $accent; height: 3; content-align: left middle;
    }
    WelcomeScreen #how { height: auto; margin-bottom: 1; }
    WelcomeScreen #message { color: $error; height: auto; min-height: 2; }
    WelcomeScreen #demo { color: $text-muted; height: auto; }
    WelcomeScreen #number {
        border: tall $accent; height: 3; width: 38; content-align: center middle; text-style: bold;
    }
    WelcomeScreen #find { width: 38; height: 3; margin-top: 1; }
    WelcomeScreen #lang { width: 20; height: 3; margin-top: 1; }
    """

    def __init__(self, lang: str, staff: StaffStatus | None = None, *, demo: bool = False) -> None:
        super().__init__(lang, staff)
        self.demo = demo
        self.number = ""
        self.message: dict[str, str] | None = None
        self.busy = False

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="welcome-left"):
                yield Static(id="subtitle")
                yield Static(id="how")
                yield Static(id="message")
                yield Static(id="demo")
                yield Button("", id="lang", variant="default")
            with Vertical(id="welcome-right"):
                yield Static(id="number-label")
                yield Static(id="number")
                yield NumericKeypad(point=False, id="keypad")
                yield Button("", id="find", variant="primary")

    def apply_language(self) -> None:
        super().apply_language()
        lang = self.lang
        self.query_one("#subtitle", Static).update(t(lang, "welcome.subtitle"))
        self.query_one("#how", Static).update(t(lang, "welcome.how"))
        self.query_one("#number-label", Static).update(t(lang, "welcome.number"))
        self.query_one("#find", Button).label = t(lang, "welcome.find")
        self.query_one("#lang", Button).label = t(lang, "lang_button")
        self.query_one("#demo", Static).update(t(lang, "welcome.demo_cards") if self.demo else "")
        self._show_number()
        self._show_message()

    def _show_number(self) -> None:
        self.query_one("#number", Static).update(Text(self.number or "—"))

    def _show_message(self) -> None:
        if self.busy:
            text = t(self.lang, "welcome.looking")
        elif self.staff is not None and self.staff.ready and self.staff.payments_paused:
            text = t(self.lang, "welcome.paused") if self.message is None else ""
        else:
            text = ""
        if self.message is not None:
            text = self.message.get(self.lang, "")
        self.query_one("#message", Static).update(Text(text))

    def on_staff_status_changed(self, message: StaffStatusChanged) -> None:
        super().on_staff_status_changed(message)
        self._show_message()

    def on_numeric_keypad_pressed(self, event: NumericKeypad.Pressed) -> None:
        self._press(event.key)

    def _press(self, key: str) -> None:
        if key == "back":
            self.number = self.number[:-1]
        elif key == "clear":
            self.number = ""
        elif key.isdigit() and len(self.number) < NUMBER_DIGITS_MAX:
            self.number += key
        self.message = None
        self._show_number()
        self._show_message()

    def on_key(self, event: Key) -> None:
        # A physical keyboard (service laptop, kiosk browser) types too.
        if event.character is not None and event.character.isdigit():
            self._press(event.character)
            event.stop()
        elif event.key == "backspace":
            self._press("back")
            event.stop()
        elif event.key == "enter":
            self._submit()
            event.stop()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "find":
            self._submit()
        elif event.button.id == "lang":
            self.post_message(LanguageToggled())

    def _submit(self) -> None:
        if self.number and not self.busy:
            self.post_message(NumberSubmitted(self.number))

    def on_identify_result(self, message: IdentifyResult) -> None:
        self.busy = message.busy
        self.message = dict(message.message) if message.message else None
        if message.message:
            self.number = ""
            self._show_number()
        self._show_message()

    def on_idle_tick(self, message: IdleTick) -> None:
        super().on_idle_tick(IdleTick(None))
        if message.seconds_left == 0 and (self.number or self.message) and not self.busy:
            self._press("clear")

    def action_back(self) -> None:
        self._press("clear")

    def action_demo_card(self, index: int) -> None:
        if self.demo:
            self.post_message(DemoCardTapped(index))

    def action_demo_bill(self) -> None:
        if self.demo:
            self.post_message(DemoBillScanned())
