"""The on-screen numeric keypad: big touch targets, posts key presses, keeps no value.

The screen that owns a keypad keeps the value as an immutable entry
(:class:`kiosk.model.AmountEntry`, :class:`kiosk.model.ReadingEntry`, a PIN
string) and updates it from :class:`NumericKeypad.Pressed`; the keypad itself is
stateless, so two keypads can never disagree about a number.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Grid
from textual.message import Message
from textual.widgets import Button

KEYS_WITH_POINT = ("1", "2", "3", "4", "5", "6", "7", "8", "9", ",", "0", "back")
KEYS_DIGITS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "back")
_LABELS = {"back": "⌫", "clear": "C", ",": ","}


class KeyButton(Button):
    """A key: every tap counts, even two taps within the press animation ("00")."""

    async def _on_click(self, event: events.Click) -> None:
        event.stop()
        self.press()


class NumericKeypad(Grid):
    """A 3 x 4 grid of keys; ``point`` chooses "," (money, readings) or "C" (numbers, PINs)."""

    DEFAULT_CSS = """
    NumericKeypad {
        grid-size: 3 4;
        grid-gutter: 0 1;
        width: 38;
        height: 12;
    }
    NumericKeypad > Button {
        width: 100%;
        height: 3;
        min-width: 8;
        text-style: bold;
    }
    """

    class Pressed(Message):
        """One key: a digit, ``,``, ``back`` or ``clear``."""

        def __init__(self, keypad: NumericKeypad, key: str) -> None:
            super().__init__()
            self.keypad = keypad
            self.key = key

        @property
        def control(self) -> NumericKeypad:
            return self.keypad

    def __init__(self, *, point: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.keys = KEYS_WITH_POINT if point else KEYS_DIGITS

    def compose(self) -> ComposeResult:
        for key in self.keys:
            name = {"back": "back", "clear": "clear", ",": "point"}.get(key, key)
            yield KeyButton(_LABELS.get(key, key), id=f"key-{name}", classes="key")

    def set_language(self, lang: str) -> None:
        """The decimal key shows "," in Russian and "." in English (it means the same)."""
        for button in self.query("#key-point"):
            if isinstance(button, Button):
                button.label = "," if lang == "ru" else "."

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button_id = event.button.id or ""
        name = button_id.removeprefix("key-")
        key = {"point": ",", "back": "back", "clear": "clear"}.get(name, name)
        self.post_message(self.Pressed(self, key))
