"""The journal read model: payments per account, paid-since, recovery facts, readings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.history import KioskHistory


@dataclass(frozen=True)
class E:
    seq: int
    kind: str
    ts_ms: int
    body: Any


def _intent(seq: int, pid: str, amount: int, ts: int = 1_000, **extra: Any) -> E:
    body = {
        "payment_id": pid,
        "account": "1000000008",
        "amount_minor": amount,
        "currency": "RUB",
        "items": [{"service": "CW", "amount_minor": amount - 100}],
        "surcharge_minor": 100,
        **extra,
    }
    return E(seq, "payment-intent", ts, body)


def _result(seq: int, pid: str, outcome: str, **extra: Any) -> E:
    return E(seq, "payment-result", 2_000, {"payment_id": pid, "outcome": outcome, **extra})


def test_payments_outcomes_and_paid_since() -> None:
    h = KioskHistory()
    h.add_all(
        [
            _intent(1, "kp-a", 10_100, terminal_receipt_before=None),
            _result(2, "kp-a", "approved", receipt_no=1),
            _intent(3, "kp-b", 5_100, ts=5_000, terminal_receipt_before=1),
            _result(4, "kp-b", "declined", receipt_no=2),
            _intent(5, "kp-c", 7_100, ts=6_000),
        ]
    )
    assert h.paid_since("1000000008", 0) == {"CW": 10_000}
    assert h.paid_since("1000000008", 1_001) == {}
    assert [p.payment_id for p in h.unresolved()] == ["kp-c"]
    assert h.last_receipt_no == 2
    assert h.payment("kp-b") is not None
    assert h.payment("kp-b").receipt_no_known  # type: ignore[union-attr]
    assert not h.payment("kp-c").receipt_no_known  # type: ignore[union-attr]
    assert h.last_payment().payment_id == "kp-a"  # type: ignore[union-attr]


def test_cancel_reversal_and_receipt_events() -> None:
    h = KioskHistory()
    h.add_all(
        [
            _intent(1, "kp-a", 10_100),
            E(
                2,
                "device-event",
                1_500,
                {"event": "payment-cancel-requested", "payment_id": "kp-a"},
            ),
            _result(3, "kp-a", "approved", receipt_no=5),
            E(
                4,
                "device-event",
                2_500,
                {"event": "payment-reversal-requested", "payment_id": "kp-a"},
            ),
        ]
    )
    record = h.payment("kp-a")
    assert record is not None
    assert record.cancel_requested
    assert [p.payment_id for p in h.reversals_pending()] == ["kp-a"]
    assert record.stands
    h.add(E(5, "reversal", 3_000, {"payment_id": "kp-a", "receipt_no": 6}))
    assert not record.stands
    assert h.reversals_pending() == []
    assert h.last_receipt_no == 6


def test_entries_seen_twice_are_ignored_and_junk_is_skipped() -> None:
    h = KioskHistory()
    h.add(_intent(1, "kp-a", 10_100))
    h.add(_result(2, "kp-a", "approved"))
    h.add(_result(2, "kp-a", "declined"))  # same seq again: ignored
    h.add(E(3, "payment-intent", 0, {"payment_id": 5}))  # malformed: skipped
    h.add(E(4, "meter-reading", 0, "not an object"))
    assert h.payment("kp-a").outcome == "approved"  # type: ignore[union-attr]
    assert len(h.payments("1000000008")) == 1


def test_readings_are_bounded_per_meter() -> None:
    h = KioskHistory()
    for i in range(300):
        h.add(
            E(
                i + 1,
                "meter-reading",
                i,
                {"account": "1", "meter_id": "m", "reading_milli": i, "date": "2025-06-01"},
            )
        )
    readings = h.readings("1", "m")
    assert len(readings) == 240
    assert readings[-1].value_milli == 299


def test_payments_are_bounded() -> None:
    h = KioskHistory(payments_max=3)
    for i in range(5):
        h.add(_intent(i + 1, f"kp-{i}", 1_000 + i))
    assert [p.payment_id for p in h.payments("1000000008")] == ["kp-2", "kp-3", "kp-4"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    ["payment_id", "account", "amount_minor", "currency", "items", "outcome", "event",
     "receipt_no", "meter_id", "reading_milli", "date", "terminal_receipt_before"]
)  # fmt: skip


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["payment-intent", "payment-result", "reversal", "device-event",
                 "meter-reading", "end-of-day", "other"]
            ),
            st.one_of(_JSON, st.dictionaries(_KEYS, _JSON, max_size=8)),
        ),
        max_size=20,
    )
)  # fmt: skip
def test_history_never_crashes_on_any_body(entries: list[tuple[str, Any]]) -> None:
    h = KioskHistory(payments_max=5)
    for seq, (kind, body) in enumerate(entries, 1):
        h.add(E(seq, kind, seq * 10, body))
    h.unresolved()
    h.reversals_pending()
    h.last_payment()
    h.paid_since("1000000008", 0)
