"""Meter readings: submit a reading (checked against the previous one), history and chart."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Static

from kiosk.i18n import reading, t
from kiosk.messages import GoBack, ReadingResult, ReadingSubmitted
from kiosk.model import AccountSession, ReadingEntry, ReadingPoint, monthly_consumption
from kiosk.screens.base import KioskScreen
from kiosk.services import ReadingOutcome, StaffStatus
from kiosk.widgets.chart import ConsumptionChart
from kiosk.widgets.keypad import NumericKeypad

MeterKey = tuple[str, str]


class MetersScreen(KioskScreen):
    """One meter at a time: its previous reading, a keypad for the new one, its history."""

    TITLE_KEY = "meters.title"
    DEFAULT_CSS = """
    MetersScreen #meters { height: 3; }
    MetersScreen #meters > Button { margin-right: 1; }
    MetersScreen #entry-side { width: 42; padding: 0 1; }
    MetersScreen #history-side { width: 1fr; padding: 0 1; }
    MetersScreen #previous { height: 2; }
    MetersScreen #entry-label { height: 1; }
    MetersScreen #entry { border: tall $accent; height: 3; width: 38; content-align: right middle; }
    MetersScreen #submit { width: 38; margin-top: 1; }
    MetersScreen #result { height: auto; min-height: 2; }
    MetersScreen #result.-error { color: $error; }
    MetersScreen #history { height: 10; }
    MetersScreen #chart-title { height: 1; text-style: bold; margin-top: 1; }
    MetersScreen #nav { height: 3; dock: bottom; }
    """

    def __init__(
        self,
        lang: str,
        session: AccountSession,
        points: Mapping[MeterKey, tuple[ReadingPoint, ...]],
        *,
        staff: StaffStatus | None = None,
    ) -> None:
        super().__init__(lang, staff)
        self.session = session
        self.points = dict(points)
        self.keys = list(points)
        self.selected: MeterKey | None = self.keys[0] if self.keys else None
        self.entry = ReadingEntry()
        self.outcome: ReadingOutcome | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="meters"):
            for i, _key in enumerate(self.keys):
                yield Button("", id=f"meter-{i}")
        with Horizontal():
            with Vertical(id="entry-side"):
                yield Static(id="previous")
                yield Static(id="entry-label")
                yield Static(id="entry")
                yield NumericKeypad(point=True, id="keypad")
                yield Button("", id="submit", variant="success")
                yield Static(id="result")
            with VerticalScroll(id="history-side"):
                yield Static(id="history-title")
                yield DataTable(id="history", show_cursor=False)
                yield Static(id="chart-title")
                yield ConsumptionChart(id="chart")
        with Horizontal(id="nav"):
            yield Button("", id="back")

    def _unit(self, key: MeterKey) -> str:
        code, meter_id = key
        for meter in self.session.line(code).view.service.meters:
            if meter.meter_id == meter_id:
                return meter.unit
        return ""

    def apply_language(self) -> None:
        super().apply_language()
        lang = self.lang
        self.query_one("#back", Button).label = t(lang, "back")
        self.query_one("#submit", Button).label = t(lang, "meters.submit")
        for i, (code, meter_id) in enumerate(self.keys):
            button = self.query_one(f"#meter-{i}", Button)
            button.label = t(
                lang, "meters.row", service=self.session.line(code).name(lang), meter=meter_id
            )
            button.variant = "primary" if (code, meter_id) == self.selected else "default"
        self._redraw()

    def _redraw(self) -> None:
        lang, key = self.lang, self.selected
        submit = self.query_one("#submit", Button)
        if key is None:
            self.query_one("#previous", Static).update(t(lang, "meters.none"))
            submit.disabled = True
            for widget_id in ("#entry-label", "#entry", "#history-title", "#chart-title"):
                self.query_one(widget_id, Static).update("")
            return
        unit = self._unit(key)
        points = self.points[key]
        last = points[-1]
        self.query_one("#previous", Static).update(
            t(
                lang,
                "meters.previous",
                value=reading(last.value_milli, lang),
                unit=unit,
                date=last.date or "—",
            )
        )
        self.query_one("#entry-label", Static).update(t(lang, "meters.enter", unit=unit))
        self.query_one("#entry", Static).update(
            Text(self.entry.text(lang) if not self.entry.empty else "")
        )
        submit.disabled = self.entry.empty
        result = self.query_one("#result", Static)
        outcome = self.outcome
        text = ""
        if outcome is not None:
            if outcome.ok:
                text = t(
                    lang,
                    "meters.saved",
                    value=reading(outcome.previous_milli + outcome.consumption_milli, lang),
                    consumption=reading(outcome.consumption_milli, lang),
                    unit=unit,
                )
            elif outcome.problem == "too_low":
                text = t(lang, "meters.too_low", previous=reading(outcome.previous_milli, lang))
            elif outcome.problem == "too_high":
                consumption = max(0, self.entry.milli - outcome.previous_milli)
                text = t(lang, "meters.too_high", consumption=reading(consumption, lang), unit=unit)
            else:
                text = t(lang, "payment.journal_down")
        result.update(Text(text))
        result.set_class(outcome is not None and not outcome.ok, "-error")
        self.query_one("#history-title", Static).update(
            Text(t(lang, "meters.history"), style="bold")
        )
        table = self.query_one("#history", DataTable)
        table.clear(columns=True)
        table.add_column(t(lang, "meters.col_date"))
        table.add_column(t(lang, "meters.col_value"))
        table.add_column(t(lang, "meters.col_consumption"))
        for p in reversed(points):
            used = "" if p.consumption_milli is None else reading(p.consumption_milli, lang)
            table.add_row(p.date or "—", reading(p.value_milli, lang), used)
        self.query_one("#chart-title", Static).update(t(lang, "meters.chart"))
        self.query_one("#chart", ConsumptionChart).plot(
            monthly_consumption(points), unit, lang, t(lang, "meters.no_history")
        )

    def on_numeric_keypad_pressed(self, event: NumericKeypad.Pressed) -> None:
        self.entry = self.entry.press(event.key)
        self.outcome = None
        self._redraw()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "back":
            self.post_message(GoBack())
        elif button == "submit" and self.selected is not None and not self.entry.empty:
            code, meter_id = self.selected
            self.post_message(ReadingSubmitted(code, meter_id, self.entry.milli))
        elif button.startswith("meter-"):
            self.selected = self.keys[int(button.removeprefix("meter-"))]
            self.entry = ReadingEntry()
            self.outcome = None
            self.apply_language()

    def on_reading_result(self, message: ReadingResult) -> None:
        self.outcome = message.outcome
        if self.selected is not None:
            self.points[self.selected] = tuple(message.points)
        if message.outcome.ok:
            self.entry = ReadingEntry()
        self._redraw()
