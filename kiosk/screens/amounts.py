"""Amounts: choose services, edit each amount on the keypad, see the running total."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from kiosk.i18n import money, t
from kiosk.messages import AmountsChosen, GoBack
from kiosk.model import AccountSession, AmountEntry, BasketItem
from kiosk.screens.base import KioskScreen
from kiosk.services import StaffStatus
from kiosk.widgets.amount_row import AmountRow
from kiosk.widgets.keypad import NumericKeypad


class AmountsScreen(KioskScreen):
    """The basket editor (partial payment and overpayment within the catalog's limits)."""

    TITLE_KEY = "amounts.title"
    DEFAULT_CSS = """
    AmountsScreen #rows { width: 1fr; padding: 0 1; }
    AmountsScreen #side { width: 42; padding: 0 1; }
    AmountsScreen #hint { height: auto; color: $text-muted; padding: 0 1; }
    AmountsScreen #keypad-title { height: 2; text-style: bold; }
    AmountsScreen #entry {
        border: tall $accent; height: 3; width: 38; content-align: right middle;
    }
    AmountsScreen #bill { height: auto; color: $accent; }
    AmountsScreen #total { height: 2; text-style: bold; }
    AmountsScreen #nav { height: 3; dock: bottom; }
    AmountsScreen #next { dock: right; }
    """

    def __init__(
        self,
        lang: str,
        session: AccountSession,
        basket: tuple[BasketItem, ...],
        *,
        staff: StaffStatus | None = None,
    ) -> None:
        super().__init__(lang, staff)
        self.session = session
        self.items = {b.code: b for b in basket}
        self.entries = {b.code: AmountEntry.of(b.amount_minor) for b in basket}
        self.active: str | None = next((b.code for b in basket if b.selected), None)
        # The first key after choosing a row replaces its amount; later keys edit it.
        self.fresh = True

    def compose_body(self) -> ComposeResult:
        yield Static(id="hint")
        with Horizontal():
            with VerticalScroll(id="rows"):
                for code in self.items:
                    yield AmountRow(self.session.line(code))
            with Vertical(id="side"):
                yield Static(id="keypad-title")
                yield Static(id="entry")
                yield NumericKeypad(point=True, id="keypad")
                yield Static(id="bill")
                yield Static(id="total")
        with Horizontal(id="nav"):
            yield Button("", id="back")
            yield Button("", id="next", variant="success")

    def apply_language(self) -> None:
        super().apply_language()
        self.query_one("#hint", Static).update(t(self.lang, "amounts.hint"))
        self.query_one("#back", Button).label = t(self.lang, "back")
        self.query_one("#next", Button).label = t(self.lang, "next")
        bill = self.session.bill_sum_minor
        self.query_one("#bill", Static).update(
            t(self.lang, "amounts.from_bill", amount=money(bill, self.lang)) if bill else ""
        )
        self._refresh()

    def problem(self, code: str) -> str | None:
        """The resident-facing problem with a selected row's amount, if any."""
        item = self.items[code]
        if not item.selected:
            return None
        problem = self.session.line(code).check(item.amount_minor)
        if problem is None:
            return None
        text = problem.message("ru" if self.lang == "ru" else "en")
        return f"{text}: {money(problem.limit_minor, self.lang)}"

    @property
    def total_minor(self) -> int:
        return sum(b.amount_minor for b in self.items.values() if b.selected)

    def _refresh(self) -> None:
        lang = self.lang
        any_problem = False
        for code, item in self.items.items():
            row = self.query_one(f"#row-{code}", AmountRow)
            problem = self.problem(code)
            any_problem = any_problem or problem is not None
            row.show(item, money(item.amount_minor, lang), problem, lang, self.session.today)
            row.set_class(code == self.active, "-active")
        selected = [b for b in self.items.values() if b.selected]
        title = ""
        entry = ""
        if self.active is not None:
            name = self.session.line(self.active).name(lang)
            title = t(lang, "amounts.keypad_title", service=name)
            entry = self.entries[self.active].text(lang)
        self.query_one("#keypad-title", Static).update(Text(title))
        self.query_one("#entry", Static).update(Text(entry))
        total = t(lang, "amounts.total", amount=money(self.total_minor, lang))
        if not selected:
            total += "\n" + t(lang, "amounts.nothing")
        self.query_one("#total", Static).update(Text(total))
        self.query_one("#next", Button).disabled = not selected or any_problem

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "back":
            self.post_message(GoBack())
        elif button == "next":
            self.post_message(AmountsChosen(tuple(self.items.values())))
        elif button.startswith("sel-"):
            code = button.removeprefix("sel-")
            item = self.items[code]
            amount = item.amount_minor
            if not item.selected and amount == 0:
                amount = self.session.line(code).outstanding_minor
                self.entries[code] = AmountEntry.of(amount)
            self.items[code] = BasketItem(
                code=code, amount_minor=amount, selected=not item.selected
            )
            self.active = code
            self.fresh = True
            self._refresh()
        elif button.startswith("amt-"):
            self.active = button.removeprefix("amt-")
            self.fresh = True
            self._refresh()

    def on_numeric_keypad_pressed(self, event: NumericKeypad.Pressed) -> None:
        code = self.active
        if code is None:
            return
        start = AmountEntry() if self.fresh and event.key != "back" else self.entries[code]
        self.fresh = False
        entry = start.press(event.key)
        self.entries[code] = entry
        amount = entry.minor
        self.items[code] = BasketItem(code=code, amount_minor=amount, selected=amount > 0)
        self._refresh()
