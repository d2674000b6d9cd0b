"""A bar chart of daily volume as inline SVG, drawn on the server (no script, no library).

Bars are scaled to the largest day; the axis shows that maximum and zero; each
bar carries a ``<title>`` with the day and its figures, so hovering tells them
and a screen reader reads them. Every text is escaped like the rest of the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from central_sync.console.html import Markup, html, join

WIDTH = 960
HEIGHT = 260
LEFT = 90
BOTTOM = 40
TOP = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    label: str
    """Under the bar (the day, shortened)."""
    value: int
    title: str
    """What hovering over the bar says."""


def bar_chart(bars: Sequence[Bar], *, caption: str, value_label: str) -> Markup:
    """An SVG bar chart of ``bars`` (values are non-negative integers)."""
    plot_w = WIDTH - LEFT - 10
    plot_h = HEIGHT - TOP - BOTTOM
    top_value = max((b.value for b in bars), default=0)
    slot = plot_w / max(1, len(bars))
    bar_w = max(1.0, slot * 0.7)
    parts = []
    for i, bar in enumerate(bars):
        h = 0.0 if top_value == 0 else plot_h * bar.value / top_value
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h - h
        parts.append(
            html(
                '<rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}">'
                "<title>{title}</title></rect>",
                x=f"{x:.1f}",
                y=f"{y:.1f}",
                w=f"{bar_w:.1f}",
                h=f"{h:.1f}",
                title=bar.title,
            )
        )
        # Label every bar when they fit, else every seventh.
        if len(bars) <= 16 or i % 7 == 0 or i == len(bars) - 1:
            parts.append(
                html(
                    '<text x="{x}" y="{y}" text-anchor="middle">{label}</text>',
                    x=f"{x + bar_w / 2:.1f}",
                    y=HEIGHT - BOTTOM + 16,
                    label=bar.label,
                )
            )
    axis = html(
        '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#888"/>'
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/>'
        '<text x="{lx}" y="{ty}" text-anchor="end">{top}</text>'
        '<text x="{lx}" y="{b}" text-anchor="end">0</text>'
        '<text x="{lx}" y="{cy}" text-anchor="end">{unit}</text>',
        l=LEFT,
        t=TOP,
        b=TOP + plot_h,
        r=WIDTH - 10,
        lx=LEFT - 6,
        ty=TOP + 10,
        cy=TOP + plot_h // 2,
        top=top_value,
        unit=value_label,
    )
    return html(
        '<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{caption}</title>{axis}{bars}</svg>',
        w=WIDTH,
        h=HEIGHT,
        caption=caption,
        axis=axis,
        bars=join(parts),
    )
