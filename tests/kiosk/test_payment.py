"""The payment life cycle table and the recovery rule for outcome-unknown payments."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.payment import (
    TRANSITIONS,
    PaymentEvent,
    PaymentMachine,
    PaymentPhase,
    PaymentStateError,
    RecoveryAction,
    decide_recovery,
)


@dataclass(frozen=True)
class Tx:
    result_code: int
    amount_minor: int | None
    currency: str | None
    receipt_no: int | None

    @property
    def approved(self) -> bool:
        return self.result_code == 0


def test_happy_path_through_the_table() -> None:
    m = PaymentMachine("kp-000000000001")
    for event in (PaymentEvent.INTENT_WRITTEN, PaymentEvent.TERMINAL_ASKED, PaymentEvent.APPROVED):
        m.fire(event)
    assert m.phase is PaymentPhase.APPROVED
    assert m.phase.final
    assert m.phase.money_taken
    assert m.history == [
        PaymentPhase.NEW,
        PaymentPhase.INTENT_WRITTEN,
        PaymentPhase.AT_TERMINAL,
        PaymentPhase.APPROVED,
    ]


def test_result_before_intent_is_refused() -> None:
    m = PaymentMachine("kp-000000000001")
    with pytest.raises(PaymentStateError):
        m.fire(PaymentEvent.APPROVED)
    with pytest.raises(PaymentStateError):
        m.fire(PaymentEvent.TERMINAL_ASKED)  # the terminal is never asked before the intent


def test_final_phases_accept_nothing_but_a_reversal_of_an_approval() -> None:
    for (phase, event), _ in TRANSITIONS.items():
        if phase.final:
            assert (phase, event) == (PaymentPhase.APPROVED, PaymentEvent.REVERSED)


@given(st.lists(st.sampled_from(list(PaymentEvent)), max_size=12))
def test_any_event_sequence_never_reaches_at_terminal_without_an_intent(
    events: list[PaymentEvent],
) -> None:
    m = PaymentMachine("kp-000000000001")
    for event in events:
        try:
            m.fire(event)
        except PaymentStateError:
            continue
    if PaymentPhase.AT_TERMINAL in m.history:
        assert m.history.index(PaymentPhase.INTENT_WRITTEN) < m.history.index(
            PaymentPhase.AT_TERMINAL
        )


def _decide(last: Tx | None, before: int | None = 7, cancel: bool = False) -> RecoveryAction:
    return decide_recovery(
        amount_minor=49_217,
        currency="RUB",
        receipt_no_before=before,
        last=last,
        cancel_requested=cancel,
    ).action


def test_recovery_terminal_still_shows_the_transaction_before() -> None:
    assert _decide(Tx(0, 10_000, "RUB", 7)) is RecoveryAction.RECORD_NOT_BOOKED


def test_recovery_new_approved_transaction_with_our_amount_is_recorded() -> None:
    assert _decide(Tx(0, 49_217, "RUB", 8)) is RecoveryAction.RECORD_APPROVED


def test_recovery_approved_after_cancel_is_reversed() -> None:
    assert _decide(Tx(0, 49_217, "RUB", 8), cancel=True) is RecoveryAction.REVERSE


def test_recovery_declined_is_recorded_declined() -> None:
    assert _decide(Tx(5, 49_217, "RUB", 8)) is RecoveryAction.RECORD_DECLINED
    assert _decide(Tx(5, None, None, 8)) is RecoveryAction.RECORD_DECLINED


def test_recovery_other_amount_is_not_attributed_and_alarms() -> None:
    decision = decide_recovery(
        amount_minor=49_217,
        currency="RUB",
        receipt_no_before=7,
        last=Tx(0, 50_000, "RUB", 8),
        cancel_requested=False,
    )
    assert decision.action is RecoveryAction.RECORD_NOT_BOOKED
    assert decision.alarm


def test_recovery_empty_terminal_log() -> None:
    assert _decide(None, before=None) is RecoveryAction.RECORD_NOT_BOOKED
    decision = decide_recovery(
        amount_minor=1, currency="RUB", receipt_no_before=3, last=None, cancel_requested=False
    )
    assert decision.alarm


def test_recovery_after_end_of_day_with_no_receipt_numbers() -> None:
    assert _decide(Tx(0, 999_999, "RUB", None), before=None) is RecoveryAction.RECORD_NOT_BOOKED
    assert _decide(Tx(0, 49_217, "RUB", None), before=4) is RecoveryAction.RECORD_NOT_BOOKED


@given(
    st.integers(0, 9999),
    st.integers(0, 9999),
    st.integers(1, 10**6),
    st.sampled_from([0, 5, 0x6C]),
    st.booleans(),
)
def test_recovery_records_approval_only_for_a_new_booking_of_the_same_amount(
    before: int, receipt: int, amount: int, code: int, cancel: bool
) -> None:
    action = decide_recovery(
        amount_minor=49_217,
        currency="RUB",
        receipt_no_before=before,
        last=Tx(code, amount, "RUB", receipt),
        cancel_requested=cancel,
    ).action
    money_moves = action in (RecoveryAction.RECORD_APPROVED, RecoveryAction.REVERSE)
    assert money_moves == (receipt != before and amount == 49_217 and code == 0)
