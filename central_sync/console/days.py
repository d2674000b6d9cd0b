"""Days as the console shows them: calendar days at a fixed offset from UTC."""

from __future__ import annotations

import datetime as dt

from central_sync.console.errors import ConsoleInputError

DAY_MS = 86_400_000
DAY_SPAN_MAX = 366


def parse_day(text: object, name: str = "day") -> dt.date:
    """``YYYY-MM-DD`` as a date; ConsoleInputError for anything else."""
    if not isinstance(text, str) or len(text) != 10:
        raise ConsoleInputError(f"{name} must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConsoleInputError(f"{name} must be a date YYYY-MM-DD, not {text!r}") from None


def day_start_ms(day: dt.date, offset_min: int) -> int:
    """When ``day`` begins at ``offset_min`` east of UTC, in ms since the epoch."""
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return int(midnight.timestamp() * 1000) - offset_min * 60_000


def day_of(ts_ms: int, offset_min: int) -> dt.date:
    """The day a moment falls on at ``offset_min`` east of UTC."""
    return dt.datetime.fromtimestamp((ts_ms + offset_min * 60_000) / 1000, dt.UTC).date()


def span(first: dt.date, last: dt.date) -> int:
    """Days from ``first`` to ``last`` inclusive; ConsoleInputError if reversed or too long."""
    days = (last - first).days + 1
    if days < 1:
        raise ConsoleInputError("the end date is before the start date")
    if days > DAY_SPAN_MAX:
        raise ConsoleInputError(f"at most {DAY_SPAN_MAX} days at once")
    return days
