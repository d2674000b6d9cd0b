"""One service on the amount screen: a tick box, the name with what is owed, the amount."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from kiosk.i18n import money, t
from kiosk.model import BasketItem, ServiceLine


class AmountRow(Vertical):
    """The row's widgets; the screen tells it what to show (it keeps no state of its own)."""

    DEFAULT_CSS = """
    AmountRow { height: auto; margin-bottom: 1; }
    AmountRow > Horizontal { height: auto; }
    AmountRow .tick { width: 6; min-width: 6; }
    AmountRow .name { width: 1fr; padding: 0 1; height: auto; min-height: 3; }
    AmountRow .amount { width: 20; }
    AmountRow .problem { color: $error; height: auto; padding: 0 7; }
    AmountRow.-active .amount { background: $accent; }
    """

    def __init__(self, line: ServiceLine) -> None:
        super().__init__(id=f"row-{line.code}")
        self.line = line

    def compose(self) -> ComposeResult:
        code = self.line.code
        with Horizontal():
            yield Button("", id=f"sel-{code}", classes="tick")
            yield Static("", classes="name")
            yield Button("", id=f"amt-{code}", classes="amount")
        yield Static("", classes="problem")

    def show(
        self, item: BasketItem, amount_text: str, problem: str | None, lang: str, today: str
    ) -> None:
        line = self.line
        self.query_one(".tick", Button).label = Text("☑" if item.selected else "☐")
        details = t(lang, "amounts.debt", amount=money(line.outstanding_minor, lang))
        nxt = line.next_instalment(today)
        if nxt is not None:
            details = t(lang, "amounts.next_instalment", date=nxt[0], amount=money(nxt[1], lang))
        name = Text(line.name(lang), style="bold")
        name.append("\n" + details, style="dim")
        self.query_one(".name", Static).update(name)
        self.query_one(".amount", Button).label = Text(amount_text)
        self.query_one(".problem", Static).update(Text(problem or ""))
