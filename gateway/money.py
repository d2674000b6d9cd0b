"""Exact money text <-> integer kopecks (DESIGN.md, "Money and identifiers").

OSMP sends ``sum=10.45``: a decimal string in roubles. It is parsed exactly as
text, never through ``float`` or ``Decimal`` arithmetic, into ``int`` minor units.
Anything that is not a plain amount (a sign, an exponent, a comma, spaces,
leading zeros, more than two fraction digits, a bare point) is a format error:
an agent whose software sends ``10.455`` has a rounding bug we must not hide.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["SUM_INTEGER_DIGITS_MAX", "SumFormatError", "format_minor", "parse_sum_minor"]

SUM_INTEGER_DIGITS_MAX: Final = 10
"""At most 9 999 999 999.99 roubles: far above any limit, far below int64 kopecks."""

_SUM_RE: Final = re.compile(r"(0|[1-9][0-9]{0,9})(?:\.([0-9]{1,2}))?")
assert SUM_INTEGER_DIGITS_MAX == 10  # the {0,9} above


class SumFormatError(ValueError):
    """The text is not an exact amount with at most two fraction digits."""


def parse_sum_minor(text: str) -> int:
    """``"10.45"`` -> ``1045``; ``"10"`` -> ``1000``; ``"10.5"`` -> ``1050``.

    Raises :class:`SumFormatError` for anything else. ``str.isdigit`` is not
    used because it accepts digits of other scripts ("١٠").
    """
    match = _SUM_RE.fullmatch(text) if text.isascii() else None
    if match is None:
        raise SumFormatError(
            "sum must be roubles with at most two decimals, like 10.45 "
            "(no sign, exponent, comma, spaces or leading zeros)"
        )
    whole, fraction = match.group(1), match.group(2) or ""
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


def format_minor(amount_minor: int) -> str:
    """``1045`` -> ``"10.45"``; negative amounts keep their sign (balances)."""
    if type(amount_minor) is not int:
        raise TypeError("amount must be int minor units")
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 100)
    return f"{sign}{whole}.{fraction:02d}"
