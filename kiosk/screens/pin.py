"""The technician PIN for service mode: digits on the keypad, shown only as dots."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from kiosk.i18n import t
from kiosk.messages import GoBack, PinEntered, PinResult
from kiosk.pin import PIN_DIGITS_MAX, PinCheck
from kiosk.screens.base import KioskScreen
from kiosk.services import StaffStatus
from kiosk.widgets.keypad import NumericKeypad


class PinScreen(KioskScreen):
    """The PIN never leaves this screen except inside :class:`PinEntered`."""

    TITLE_KEY = "pin.title"
    DEFAULT_CSS = """
    PinScreen #pin-box { width: 42; padding: 1 1; }
    PinScreen #prompt { height: 2; }
    PinScreen #dots { border: tall $accent; height: 3; width: 38; content-align: center middle; }
    PinScreen #result { height: auto; min-height: 2; color: $error; }
    PinScreen #nav { height: 3; width: 38; }
    PinScreen #ok { dock: right; }
    """

    def __init__(self, lang: str, *, staff: StaffStatus | None = None) -> None:
        super().__init__(lang, staff)
        self.pin = ""
        self.check: PinCheck | None = None
        self.checking = False

    def compose_body(self) -> ComposeResult:
        with Vertical(id="pin-box"):
            yield Static(id="prompt")
            yield Static(id="dots")
            yield NumericKeypad(point=False, id="keypad")
            yield Static(id="result")
            with Horizontal(id="nav"):
                yield Button("", id="back")
                yield Button("", id="ok", variant="primary")

    def apply_language(self) -> None:
        super().apply_language()
        self.query_one("#prompt", Static).update(t(self.lang, "pin.enter"))
        self.query_one("#back", Button).label = t(self.lang, "back")
        self.query_one("#ok", Button).label = t(self.lang, "ok")
        self._redraw()

    def _redraw(self) -> None:
        self.query_one("#dots", Static).update(Text("●" * len(self.pin)))
        check, text = self.check, ""
        if check is not None and not check.ok:
            if check.disabled:
                text = t(self.lang, "pin.disabled")
            elif check.locked_s:
                text = t(self.lang, "pin.locked", seconds=check.locked_s)
            else:
                text = t(self.lang, "pin.wrong", left=check.attempts_left)
        self.query_one("#result", Static).update(text)
        self.query_one("#ok", Button).disabled = self.checking or not self.pin

    def on_numeric_keypad_pressed(self, event: NumericKeypad.Pressed) -> None:
        if event.key == "back":
            self.pin = self.pin[:-1]
        elif event.key == "clear":
            self.pin = ""
        elif event.key.isdigit() and len(self.pin) < PIN_DIGITS_MAX:
            self.pin += event.key
        self._redraw()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            self.post_message(GoBack())
        elif event.button.id == "ok" and self.pin and not self.checking:
            self.checking = True
            pin, self.pin = self.pin, ""
            self._redraw()
            self.post_message(PinEntered(pin))

    def on_pin_result(self, message: PinResult) -> None:
        self.checking = False
        self.check = message.check
        self._redraw()
