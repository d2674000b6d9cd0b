"""The resident's session as plain values: services, amounts, surcharges, the order, readings.

Everything here is pure (no I/O, no Textual): the screens display these values
and the controller builds them, so the rules a resident meets — what is owed,
how much may be paid, which fee applies, what a reading may be — are tested on
their own.

Money is ``int`` kopecks. A service's *outstanding* amount is its catalog debt
minus what this kiosk has already taken for it since the catalog was
published (the catalog only learns about those payments after the next sync);
that keeps a resident from paying one bill twice in a day.

Surcharges follow the catalog's :class:`~central_sync.catalog.SurchargeRule`:
a fee borne by the resident is added to the card amount and must be accepted;
a fee borne by the provider is shown for information only. Declining the fee
(the seed's "Cancel" on the surcharge window) pays without it when every
resident fee is ``declinable``, and otherwise cancels the payment.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from central_sync.catalog.model import AccountView, LimitProblem, ServiceView

__all__ = [
    "AMOUNT_DIGITS_MAX",
    "AccountSession",
    "AmountEntry",
    "BasketItem",
    "Order",
    "OrderItem",
    "ReadingEntry",
    "ReadingPoint",
    "ServiceLine",
    "SurchargeLine",
    "SurchargeQuote",
    "allocate_sum",
    "build_order",
    "decide_surcharge",
    "default_amount",
    "monthly_consumption",
    "new_payment_id",
    "quote_surcharges",
    "reading_problem",
]

AMOUNT_DIGITS_MAX: Final = 9
"""Most rouble digits the keypad accepts (up to 999 999 999,99 ₽; limits cut in far earlier)."""
READING_DIGITS_MAX: Final = 9
"""Most whole digits of a meter reading typed on the keypad."""
Source = Literal["keypad", "card", "scanner", "qr"]

# Largest plausible consumption between two readings, in thousandths of the
# unit. A typo that adds a digit is caught; a real month never comes close.
CONSUMPTION_MAX_MILLI: Final[Mapping[str, int]] = {
    "m3": 200_000,
    "kWh": 10_000_000,
    "Gcal": 50_000,
}
CONSUMPTION_MAX_MILLI_DEFAULT: Final = 1_000_000_000


def new_payment_id(prefix: str = "kp") -> str:
    """A fresh payment id (journal pattern ``[A-Za-z0-9][A-Za-z0-9._:-]{7,63}``)."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


# --------------------------------------------------------------------------- services


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceLine:
    """One service of the account as the resident sees it."""

    view: ServiceView
    paid_here_minor: int = 0
    """Taken by this kiosk for this service since the catalog was published."""

    def __post_init__(self) -> None:
        assert self.paid_here_minor >= 0

    @property
    def code(self) -> str:
        return self.view.service.code

    @property
    def debt_minor(self) -> int:
        return self.view.service.debt_minor

    @property
    def outstanding_minor(self) -> int:
        """What is still owed after this kiosk's own payments (never negative)."""
        return max(0, self.debt_minor - self.paid_here_minor)

    @property
    def is_open(self) -> bool:
        return self.outstanding_minor > 0

    def name(self, lang: str) -> str:
        return self.view.service.name("ru" if lang == "ru" else "en")

    def provider_name(self, lang: str) -> str:
        return self.view.service.provider.name("ru" if lang == "ru" else "en")

    def next_instalment(self, today: str) -> tuple[str, int] | None:
        """(due date, amount) of the next instalment still to pay, if the service has a plan."""
        inst = self.view.service.next_instalment(today)
        if inst is None:
            return None
        return inst.due_date, min(inst.amount_minor, self.outstanding_minor)

    def check(self, amount_minor: int) -> LimitProblem | None:
        """Whether the catalog's amount limits allow paying ``amount_minor`` for this service."""
        return self.view.limits.check(amount_minor, self.outstanding_minor)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSession:
    """Who is at the kiosk: the account found, how, and a bill's sum if they scanned one."""

    view: AccountView
    source: Source
    lines: tuple[ServiceLine, ...]
    bill_sum_minor: int | None = None
    today: str = field(default_factory=lambda: dt.date.today().isoformat())

    @property
    def virtual_number(self) -> str:
        return self.view.virtual_number

    @property
    def open_lines(self) -> tuple[ServiceLine, ...]:
        return tuple(line for line in self.lines if line.is_open)

    @property
    def paid_lines(self) -> tuple[ServiceLine, ...]:
        return tuple(line for line in self.lines if not line.is_open)

    @property
    def total_outstanding_minor(self) -> int:
        return sum(line.outstanding_minor for line in self.lines)

    def line(self, code: str) -> ServiceLine:
        for line in self.lines:
            if line.code == code:
                return line
        raise KeyError(code)

    @classmethod
    def of(
        cls,
        view: AccountView,
        source: Source,
        *,
        paid_here: Mapping[str, int] | None = None,
        bill_sum_minor: int | None = None,
        today: str | None = None,
    ) -> AccountSession:
        paid = paid_here or {}
        lines = tuple(
            ServiceLine(view=s, paid_here_minor=max(0, paid.get(s.service.code, 0)))
            for s in view.services
        )
        return cls(
            view=view,
            source=source,
            lines=lines,
            bill_sum_minor=bill_sum_minor,
            today=today or dt.date.today().isoformat(),
        )


# --------------------------------------------------------------------------- amounts


def default_amount(line: ServiceLine, today: str) -> int:
    """What the amount screen proposes: the next instalment if there is a plan, else all owed."""
    nxt = line.next_instalment(today)
    if nxt is not None and nxt[1] > 0:
        return nxt[1]
    return line.outstanding_minor


def allocate_sum(lines: Sequence[ServiceLine], sum_minor: int) -> dict[str, int]:
    """Spread a bill's sum over the open services in order, each up to what it owes.

    What is left after every debt is covered goes to the first open service
    (an advance), where the amount limits then decide whether it is allowed.
    """
    if sum_minor <= 0:
        return {}
    out: dict[str, int] = {}
    left = sum_minor
    open_lines = [line for line in lines if line.is_open] or list(lines[:1])
    for line in open_lines:
        take = min(left, line.outstanding_minor)
        if take > 0:
            out[line.code] = take
            left -= take
    if left > 0 and open_lines:
        first = open_lines[0].code
        out[first] = out.get(first, 0) + left
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class BasketItem:
    """A service on the amount screen: ticked or not, and the amount to pay."""

    code: str
    amount_minor: int
    selected: bool

    def __post_init__(self) -> None:
        assert self.amount_minor >= 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AmountEntry:
    """The on-screen keypad's money entry: roubles, then at most two kopeck digits.

    Immutable; each key press returns a new entry, so the screen keeps no
    half-parsed state. ``text`` is what the display shows ("1234,5").
    """

    whole: str = ""
    frac: str | None = None

    def press(self, key: str) -> AmountEntry:
        if key == "back":
            if self.frac is not None:
                return AmountEntry(whole=self.whole, frac=self.frac[:-1] if self.frac else None)
            return AmountEntry(whole=self.whole[:-1])
        if key == "clear":
            return AmountEntry()
        if key in (",", "."):
            return self if self.frac is not None else AmountEntry(whole=self.whole, frac="")
        if len(key) == 1 and "0" <= key <= "9":
            if self.frac is not None:
                return (
                    self
                    if len(self.frac) >= 2
                    else AmountEntry(whole=self.whole, frac=self.frac + key)
                )
            if len(self.whole) >= AMOUNT_DIGITS_MAX or (self.whole == "0" and key == "0"):
                return self
            whole = key if self.whole == "0" else self.whole + key
            return AmountEntry(whole=whole)
        return self

    @property
    def minor(self) -> int:
        frac = (self.frac or "").ljust(2, "0")
        return int(self.whole or "0") * 100 + int(frac)

    def text(self, lang: str) -> str:
        sep = "," if lang == "ru" else "."
        whole = self.whole or "0"
        return whole if self.frac is None else f"{whole}{sep}{self.frac}"

    @classmethod
    def of(cls, amount_minor: int) -> AmountEntry:
        whole, kop = divmod(max(0, amount_minor), 100)
        return cls(whole=str(whole), frac=None if kop == 0 else f"{kop:02d}")


# --------------------------------------------------------------------------- order


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderItem:
    """One service paid in an order."""

    code: str
    name_ru: str
    name_en: str
    provider_id: str
    period: str
    amount_minor: int
    debt_minor: int

    def __post_init__(self) -> None:
        assert self.amount_minor > 0

    def name(self, lang: str) -> str:
        return self.name_ru if lang == "ru" else self.name_en


@dataclass(frozen=True, slots=True, kw_only=True)
class SurchargeLine:
    """The fee on one item: who pays it and whether the resident may decline it."""

    code: str
    name_ru: str
    name_en: str
    amount_minor: int
    payer: Literal["resident", "provider"]
    declinable: bool

    def name(self, lang: str) -> str:
        return self.name_ru if lang == "ru" else self.name_en


@dataclass(frozen=True, slots=True, kw_only=True)
class SurchargeQuote:
    """Every fee of an order, before the resident decides."""

    lines: tuple[SurchargeLine, ...]

    @property
    def resident_lines(self) -> tuple[SurchargeLine, ...]:
        return tuple(x for x in self.lines if x.payer == "resident" and x.amount_minor > 0)

    @property
    def provider_lines(self) -> tuple[SurchargeLine, ...]:
        return tuple(x for x in self.lines if x.payer == "provider" and x.amount_minor > 0)

    @property
    def resident_total_minor(self) -> int:
        return sum(x.amount_minor for x in self.resident_lines)

    @property
    def needs_decision(self) -> bool:
        """A screen is shown when any fee applies (the resident's to accept, or for information)."""
        return bool(self.resident_lines or self.provider_lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """What the resident confirms and the terminal is asked for."""

    account: str
    items: tuple[OrderItem, ...]
    surcharge_minor: int
    currency: str = "RUB"
    catalog_version: int = 0
    source: Source = "keypad"

    def __post_init__(self) -> None:
        assert self.items, "an order has at least one item"
        assert self.surcharge_minor >= 0
        codes = [i.code for i in self.items]
        assert len(set(codes)) == len(codes), "one service once per order"

    @property
    def items_minor(self) -> int:
        return sum(i.amount_minor for i in self.items)

    @property
    def total_minor(self) -> int:
        return self.items_minor + self.surcharge_minor


def build_order(
    session: AccountSession, basket: Iterable[BasketItem]
) -> tuple[tuple[OrderItem, ...], dict[str, LimitProblem]]:
    """The selected items, or the limit problem of each item that is not allowed."""
    items: list[OrderItem] = []
    problems: dict[str, LimitProblem] = {}
    for b in basket:
        if not b.selected:
            continue
        line = session.line(b.code)
        problem = line.check(b.amount_minor)
        if problem is not None:
            problems[b.code] = problem
            continue
        s = line.view.service
        items.append(
            OrderItem(
                code=s.code,
                name_ru=s.name_ru,
                name_en=s.name_en,
                provider_id=s.provider.id,
                period=s.period,
                amount_minor=b.amount_minor,
                debt_minor=s.debt_minor,
            )
        )
    return tuple(items), problems


def quote_surcharges(session: AccountSession, items: Sequence[OrderItem]) -> SurchargeQuote:
    """The fee of every item under the catalog's most specific surcharge rule."""
    lines = []
    for item in items:
        rule = session.line(item.code).view.surcharge
        if rule is None:
            continue
        amount = rule.amount_for(item.amount_minor)
        if amount <= 0:
            continue
        lines.append(
            SurchargeLine(
                code=item.code,
                name_ru=item.name_ru,
                name_en=item.name_en,
                amount_minor=amount,
                payer=rule.payer,
                declinable=rule.declinable,
            )
        )
    return SurchargeQuote(lines=tuple(lines))


def decide_surcharge(quote: SurchargeQuote, *, accepted: bool) -> int | None:
    """The surcharge to add to the card amount, or None when the payment is cancelled.

    Accepting adds every resident fee. Declining pays without them when all are
    declinable; one fee that may not be declined cancels the payment.
    """
    if accepted:
        return quote.resident_total_minor
    if all(x.declinable for x in quote.resident_lines):
        return 0
    return None


# --------------------------------------------------------------------------- meters


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingEntry:
    """The keypad's meter reading entry: whole units, then at most three decimals."""

    whole: str = ""
    frac: str | None = None

    def press(self, key: str) -> ReadingEntry:
        if key == "back":
            if self.frac is not None:
                return ReadingEntry(whole=self.whole, frac=self.frac[:-1] if self.frac else None)
            return ReadingEntry(whole=self.whole[:-1])
        if key == "clear":
            return ReadingEntry()
        if key in (",", "."):
            return self if self.frac is not None else ReadingEntry(whole=self.whole, frac="")
        if len(key) == 1 and "0" <= key <= "9":
            if self.frac is not None:
                return (
                    self
                    if len(self.frac) >= 3
                    else ReadingEntry(whole=self.whole, frac=self.frac + key)
                )
            if len(self.whole) >= READING_DIGITS_MAX:
                return self
            whole = key if self.whole == "0" else self.whole + key
            return ReadingEntry(whole=whole)
        return self

    @property
    def empty(self) -> bool:
        return self.whole == "" and not self.frac

    @property
    def milli(self) -> int:
        frac = (self.frac or "").ljust(3, "0")
        return int(self.whole or "0") * 1000 + int(frac)

    def text(self, lang: str) -> str:
        sep = "," if lang == "ru" else "."
        whole = self.whole or "0"
        return whole if self.frac is None else f"{whole}{sep}{self.frac}"


def reading_problem(previous_milli: int, new_milli: int, unit: str) -> str | None:
    """``None`` if a reading is plausible after ``previous_milli``; else "too_low"/"too_high"."""
    if new_milli < previous_milli:
        return "too_low"
    if new_milli - previous_milli > CONSUMPTION_MAX_MILLI.get(unit, CONSUMPTION_MAX_MILLI_DEFAULT):
        return "too_high"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingPoint:
    """One reading of a meter: when, what it showed, and the consumption since the one before."""

    date: str
    value_milli: int
    consumption_milli: int | None
    source: Literal["catalog", "kiosk"]


def monthly_consumption(points: Sequence[ReadingPoint]) -> list[tuple[str, int]]:
    """Consumption per month ("YYYY-MM", thousandths), the month of each later reading."""
    by_month: dict[str, int] = {}
    for p in points:
        if p.consumption_milli is not None and len(p.date) >= 7:
            month = p.date[:7]
            by_month[month] = by_month.get(month, 0) + p.consumption_milli
    return sorted(by_month.items())


def reading_history(
    catalog_value_milli: int,
    catalog_date: str | None,
    submitted: Sequence[tuple[str, int]],
) -> tuple[ReadingPoint, ...]:
    """The catalog's last accepted reading followed by this kiosk's submissions since.

    ``submitted`` is (ISO date, thousandths) in the order they were written.
    Submissions older than the catalog's reading are left out: central has
    already taken them into the catalog.
    """
    points = [
        ReadingPoint(
            date=catalog_date or "",
            value_milli=catalog_value_milli,
            consumption_milli=None,
            source="catalog",
        )
    ]
    previous = catalog_value_milli
    for date, value in submitted:
        if catalog_date is not None and date < catalog_date:
            continue
        points.append(
            ReadingPoint(
                date=date,
                value_milli=value,
                consumption_milli=max(0, value - previous),
                source="kiosk",
            )
        )
        previous = value
    return tuple(points)
