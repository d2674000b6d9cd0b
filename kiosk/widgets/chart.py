"""A consumption bar chart for meter readings, drawn with block characters.

The seed's resident portal shows consumption per month as a chart; a kiosk
in a terminal (or served to a browser) draws it as one bar per month, scaled to
the largest month, with the value written after the bar.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Static

from kiosk.i18n import period_label, reading

BAR_WIDTH_MAX = 20
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(value: int, largest: int, width: int) -> str:
    """A horizontal bar of ``width`` cells for ``value`` out of ``largest`` (eighths of a cell)."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = value * width * 8 // largest
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


def chart_lines(months: Sequence[tuple[str, int]], unit: str, lang: str) -> list[str]:
    """One line per month: label, bar, consumption."""
    if not months:
        return []
    largest = max(v for _, v in months)
    labels = [period_label(m, lang) for m, _ in months]
    pad = max(len(x) for x in labels)
    return [
        f"{label.ljust(pad)} {bar(v, largest, BAR_WIDTH_MAX).ljust(BAR_WIDTH_MAX)} "
        f"{reading(v, lang)} {unit}"
        for label, (_, v) in zip(labels, months, strict=True)
    ]


class ConsumptionChart(Static):
    """Monthly consumption as bars."""

    DEFAULT_CSS = """
    ConsumptionChart { height: auto; padding: 0 1; color: $accent; }
    """

    def plot(self, months: Sequence[tuple[str, int]], unit: str, lang: str, empty: str) -> None:
        lines = chart_lines(months, unit, lang)
        self.update("\n".join(lines) if lines else empty)
