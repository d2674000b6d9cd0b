"""The resident's session as values: outstanding amounts, keypad entries, basket, fees, readings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central_sync.catalog import AccountView, ServiceView
from central_sync.catalog.generator import demo_catalog
from central_sync.catalog.model import DEFAULT_AMOUNT_LIMITS, SurchargeRule
from kiosk.model import (
    AccountSession,
    AmountEntry,
    BasketItem,
    ReadingEntry,
    ReadingPoint,
    allocate_sum,
    build_order,
    decide_surcharge,
    default_amount,
    monthly_consumption,
    new_payment_id,
    quote_surcharges,
    reading_history,
    reading_problem,
)


def _session(vn: str = "1000000008", paid: dict[str, int] | None = None) -> AccountSession:
    catalog = demo_catalog()
    account = catalog.accounts[vn]
    header = catalog.header
    views = tuple(
        ServiceView(
            service=s,
            surcharge=header.surcharge_for(s.provider.id, s.code),
            limits=header.limits_for(s.provider.id, s.code),
            tariff=None,
        )
        for s in account.services
    )
    view = AccountView(account=account, services=views, catalog_version=1)
    return AccountSession.of(view, "keypad", paid_here=paid, today="2025-06-02")


def test_outstanding_subtracts_what_was_paid_here() -> None:
    session = _session(paid={"CW": 40_000})
    assert session.line("CW").outstanding_minor == 8_730
    assert session.line("MGMT").outstanding_minor == 312_450
    session = _session(paid={"CW": 60_000})
    assert session.line("CW").outstanding_minor == 0
    assert not session.line("CW").is_open


def test_default_amount_is_the_next_instalment() -> None:
    session = _session()
    assert default_amount(session.line("HW"), "2025-06-02") == 381_867
    assert default_amount(session.line("HW"), "2025-09-01") == 1_145_600  # plan over
    assert default_amount(session.line("CW"), "2025-06-02") == 48_730


def test_allocate_sum_covers_debts_in_order_then_advances() -> None:
    lines = _session().lines
    assert allocate_sum(lines, 100_000) == {"MGMT": 100_000}
    assert allocate_sum(lines, 400_000) == {"MGMT": 312_450, "CW": 48_730, "HW": 38_820}
    everything = sum(line.outstanding_minor for line in lines)
    spread = allocate_sum(lines, everything + 500)
    assert spread["MGMT"] == 312_450 + 500
    assert sum(spread.values()) == everything + 500
    assert allocate_sum(lines, 0) == {}


@given(st.integers(min_value=1, max_value=10**9))
def test_allocate_sum_never_loses_a_kopeck(total: int) -> None:
    assert sum(allocate_sum(_session().lines, total).values()) == total


def test_build_order_reports_limit_problems() -> None:
    session = _session()
    basket = (
        BasketItem(code="CW", amount_minor=50, selected=True),  # below 1.00 RUB
        BasketItem(code="MGMT", amount_minor=312_450, selected=True),
        BasketItem(code="EL", amount_minor=96_412, selected=False),
    )
    items, problems = build_order(session, basket)
    assert [i.code for i in items] == ["MGMT"]
    assert problems["CW"].code == "below-min"
    assert "EL" not in problems


def test_overpayment_within_the_limit_is_allowed() -> None:
    session = _session()
    limit = DEFAULT_AMOUNT_LIMITS.overpayment_max_minor
    assert session.line("CW").check(48_730 + limit) is None
    problem = session.line("CW").check(48_730 + limit + 1)
    assert problem is not None
    assert problem.code == "overpayment"


def test_surcharge_quote_and_decisions() -> None:
    session = _session("1000000016")
    items, _ = build_order(
        session,
        (
            BasketItem(code="MGMT", amount_minor=405_120, selected=True),
            BasketItem(code="INTERCOM", amount_minor=7_500, selected=True),
        ),
    )
    quote = quote_surcharges(session, items)
    by_code = {x.code: x for x in quote.lines}
    assert by_code["MGMT"].payer == "provider"  # the management company pays
    assert by_code["INTERCOM"].amount_minor == 1_000
    assert by_code["INTERCOM"].declinable
    assert quote.resident_total_minor == 1_000
    assert decide_surcharge(quote, accepted=True) == 1_000
    assert decide_surcharge(quote, accepted=False) == 0  # all resident fees declinable


def test_declining_a_non_declinable_fee_cancels() -> None:
    session = _session()
    items, _ = build_order(session, (BasketItem(code="CW", amount_minor=48_730, selected=True),))
    quote = quote_surcharges(session, items)
    assert quote.resident_total_minor == 487  # 1%, rounded half up
    assert decide_surcharge(quote, accepted=False) is None


def test_surcharge_rule_rounding_and_cap() -> None:
    rule = SurchargeRule(percent_bp=100, max_minor=50_000)
    assert rule.amount_for(50) == 1  # 0.5 kopeck rounds up
    assert rule.amount_for(10**9) == 50_000


# --------------------------------------------------------------------------- keypad entries

_KEYS = st.lists(st.sampled_from([*"0123456789", ",", "back", "clear"]), max_size=30)


@given(_KEYS)
def test_amount_entry_text_and_value_agree(keys: list[str]) -> None:
    entry = AmountEntry()
    for key in keys:
        entry = entry.press(key)
    text = entry.text("en")
    whole, _, frac = text.partition(".")
    assert entry.minor == int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    assert len(entry.whole) <= 9
    assert entry.frac is None or len(entry.frac) <= 2


def test_amount_entry_keys() -> None:
    entry = AmountEntry()
    for key in "0012,345":
        entry = entry.press(key)
    assert entry.text("ru") == "12,34"
    assert entry.minor == 1_234
    assert entry.press("back").press("back").press("back").text("ru") == "12"
    assert AmountEntry.of(312_450).text("ru") == "3124,50"
    assert AmountEntry.of(500).text("ru") == "5"


@given(_KEYS)
def test_reading_entry_text_and_value_agree(keys: list[str]) -> None:
    entry = ReadingEntry()
    for key in keys:
        entry = entry.press(key)
    whole, _, frac = entry.text("en").partition(".")
    assert entry.milli == int(whole) * 1000 + int((frac or "0").ljust(3, "0"))


def test_reading_problems() -> None:
    assert reading_problem(100_000, 100_000, "m3") is None
    assert reading_problem(100_000, 99_999, "m3") == "too_low"
    assert reading_problem(100_000, 300_001, "m3") == "too_high"
    assert reading_problem(100_000, 300_000, "m3") is None
    assert reading_problem(0, 10**9, "bananas") is None


def test_reading_history_and_monthly_consumption() -> None:
    points = reading_history(
        100_000,
        "2025-04-20",
        [("2025-03-01", 90_000), ("2025-05-20", 107_000), ("2025-06-01", 109_500)],
    )
    assert [p.value_milli for p in points] == [100_000, 107_000, 109_500]
    assert [p.consumption_milli for p in points] == [None, 7_000, 2_500]
    assert monthly_consumption(points) == [("2025-05", 7_000), ("2025-06", 2_500)]
    assert (
        monthly_consumption(
            [ReadingPoint(date="", value_milli=1, consumption_milli=None, source="catalog")]
        )
        == []
    )


def test_payment_ids_are_unique_and_journal_shaped() -> None:
    from central_sync.journal import PAYMENT_ID_PATTERN

    ids = {new_payment_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(PAYMENT_ID_PATTERN.match(i) for i in ids)


@pytest.mark.parametrize("code", ["MGMT", "CW", "HW", "EL", "CAPR"])
def test_every_open_service_of_ivanova_is_open(code: str) -> None:
    assert _session().line(code).is_open
