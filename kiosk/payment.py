"""The card payment's life cycle and the recovery rule for payments whose answer was lost.

Theory of operation
-------------------
DESIGN.md, "The journal": a kiosk card payment is write-ahead. Its
``payment-intent`` (with the ``payment_id``, the amount, and the terminal's
last receipt number *before* this payment) is in the journal, fsync'd, before
the payment terminal is asked anything. Its ``payment-result`` follows the
terminal's answer. An intent without a result is an *outcome-unknown* payment.

The phases and what moves between them are the table :data:`TRANSITIONS`
(state x event -> state); :class:`PaymentMachine` refuses anything else, so the
services code cannot, say, record a result before the intent::

    NEW --intent_written--> INTENT_WRITTEN --terminal_asked--> AT_TERMINAL
    NEW --refused--> REFUSED                     (offline limit, journal down)
    AT_TERMINAL --cancel_requested--> CANCELLING
    AT_TERMINAL|CANCELLING --approved--> APPROVED     --reversed--> REVERSED
    AT_TERMINAL|CANCELLING --declined/aborted/failed--> DECLINED/CANCELLED/FAILED
    AT_TERMINAL|CANCELLING --unknown--> CHECKING --(a resolution)--> ...
    CHECKING --gave_up--> UNRESOLVED              (left to start-up / service mode)

Recovery (:func:`decide_recovery`) compares the terminal's *last transaction*
(ZVT Repeat Receipt) with what the intent remembered. The kiosk asks one
payment at a time and settles every unknown payment before it takes a new one,
so the terminal's last transaction is either the one before this payment (the
same receipt number as the intent recorded: the payment was never booked) or
this payment itself (a new receipt number, the same amount). Anything else
cannot be attributed and is left to reconciliation with an alarm, never
guessed. An approved payment that the resident had asked to cancel is
reversed; every other approved payment is recorded and stands, so an approved
payment is never lost and a payment is never charged twice (nothing is ever
re-sent to the terminal under the same ``payment_id``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "TRANSITIONS",
    "PaymentEvent",
    "PaymentMachine",
    "PaymentPhase",
    "RecoveryAction",
    "RecoveryDecision",
    "TerminalTransaction",
    "decide_recovery",
]


class PaymentPhase(enum.StrEnum):
    """Where one card payment is."""

    NEW = "new"
    REFUSED = "refused"
    INTENT_WRITTEN = "intent-written"
    AT_TERMINAL = "at-terminal"
    CANCELLING = "cancelling"
    CHECKING = "checking"
    APPROVED = "approved"
    REVERSED = "reversed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNRESOLVED = "unresolved"

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def money_taken(self) -> bool:
        """True when the resident's card was charged and the charge stands."""
        return self is PaymentPhase.APPROVED


_FINAL: Final = frozenset(
    {
        PaymentPhase.REFUSED,
        PaymentPhase.APPROVED,
        PaymentPhase.REVERSED,
        PaymentPhase.DECLINED,
        PaymentPhase.CANCELLED,
        PaymentPhase.FAILED,
        PaymentPhase.UNRESOLVED,
    }
)


class PaymentEvent(enum.StrEnum):
    """What happens to a payment."""

    REFUSED = "refused"
    INTENT_WRITTEN = "intent_written"
    TERMINAL_ASKED = "terminal_asked"
    CANCEL_REQUESTED = "cancel_requested"
    APPROVED = "approved"
    DECLINED = "declined"
    ABORTED = "aborted"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REVERSED = "reversed"
    GAVE_UP = "gave_up"


P, E = PaymentPhase, PaymentEvent
_OUTCOMES: Final = {
    E.APPROVED: P.APPROVED,
    E.DECLINED: P.DECLINED,
    E.ABORTED: P.CANCELLED,
    E.FAILED: P.FAILED,
}
TRANSITIONS: Final[Mapping[tuple[PaymentPhase, PaymentEvent], PaymentPhase]] = {
    (P.NEW, E.REFUSED): P.REFUSED,
    (P.NEW, E.INTENT_WRITTEN): P.INTENT_WRITTEN,
    # The terminal may refuse before it starts (busy): no money, recorded as failed.
    (P.INTENT_WRITTEN, E.FAILED): P.FAILED,
    (P.INTENT_WRITTEN, E.TERMINAL_ASKED): P.AT_TERMINAL,
    (P.AT_TERMINAL, E.CANCEL_REQUESTED): P.CANCELLING,
    (P.CANCELLING, E.CANCEL_REQUESTED): P.CANCELLING,
    **{(P.AT_TERMINAL, e): p for e, p in _OUTCOMES.items()},
    **{(P.CANCELLING, e): p for e, p in _OUTCOMES.items()},
    (P.AT_TERMINAL, E.UNKNOWN): P.CHECKING,
    (P.CANCELLING, E.UNKNOWN): P.CHECKING,
    **{(P.CHECKING, e): p for e, p in _OUTCOMES.items()},
    (P.CHECKING, E.GAVE_UP): P.UNRESOLVED,
    # Recovery may reverse an approval the resident had cancelled.
    (P.APPROVED, E.REVERSED): P.REVERSED,
}
del P, E


class PaymentStateError(Exception):
    """A payment step out of order: a bug in the kiosk, never the resident's doing."""


class PaymentMachine:
    """One payment's phase, moved only along :data:`TRANSITIONS`."""

    def __init__(self, payment_id: str) -> None:
        self.payment_id = payment_id
        self.phase = PaymentPhase.NEW
        self.history: list[PaymentPhase] = [self.phase]

    def fire(self, event: PaymentEvent) -> PaymentPhase:
        nxt = TRANSITIONS.get((self.phase, event))
        if nxt is None:
            raise PaymentStateError(
                f"payment {self.payment_id}: {event.value} is not allowed in {self.phase.value}"
            )
        self.phase = nxt
        self.history.append(nxt)
        return nxt


# --------------------------------------------------------------------------- recovery


class TerminalTransaction(Protocol):
    """What recovery needs of the terminal's last transaction (``drivers.zvt.LastTransaction``)."""

    @property
    def result_code(self) -> int: ...
    @property
    def amount_minor(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def receipt_no(self) -> int | None: ...
    @property
    def approved(self) -> bool: ...


class RecoveryAction(enum.StrEnum):
    """What to do with an outcome-unknown payment."""

    RECORD_APPROVED = "record-approved"
    """The terminal booked and approved this payment: record it; it stands."""
    RECORD_DECLINED = "record-declined"
    """The terminal booked and declined it: record the decline."""
    RECORD_NOT_BOOKED = "record-not-booked"
    """The terminal never booked it: record it as failed (no money moved)."""
    REVERSE = "reverse"
    """Approved although the resident asked to cancel: record the approval, then reverse it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryDecision:
    """The action, a reason code for the journal, and whether staff must look at it."""

    action: RecoveryAction
    reason: str
    alarm: bool = False


def decide_recovery(
    *,
    amount_minor: int,
    currency: str,
    receipt_no_before: int | None,
    last: TerminalTransaction | None,
    cancel_requested: bool,
) -> RecoveryDecision:
    """Attribute the terminal's last transaction to an outcome-unknown payment, or not.

    ``receipt_no_before`` is the terminal's last receipt number when the intent
    was written (``None``: the terminal had none). See the module docstring.
    """
    if last is None:
        if receipt_no_before is None:
            return RecoveryDecision(action=RecoveryAction.RECORD_NOT_BOOKED, reason="not-booked")
        # The terminal forgot transactions it had: replaced or reset. Nothing
        # can be attributed; reconciliation with the bank decides.
        return RecoveryDecision(
            action=RecoveryAction.RECORD_NOT_BOOKED, reason="terminal-log-empty", alarm=True
        )
    if last.receipt_no == receipt_no_before:
        # Still the transaction from before the intent (an end-of-day has no
        # receipt number, so None == None counts too).
        return RecoveryDecision(action=RecoveryAction.RECORD_NOT_BOOKED, reason="not-booked")
    same_money = (last.amount_minor is None and not last.approved) or (
        last.amount_minor == amount_minor and last.currency in (None, currency)
    )
    # A payment always gets a receipt number; a new record without one is not ours.
    if last.receipt_no is None or not same_money:
        return RecoveryDecision(
            action=RecoveryAction.RECORD_NOT_BOOKED,
            reason="terminal-last-transaction-differs",
            alarm=True,
        )
    if not last.approved:
        return RecoveryDecision(action=RecoveryAction.RECORD_DECLINED, reason="terminal-declined")
    if cancel_requested:
        return RecoveryDecision(action=RecoveryAction.REVERSE, reason="cancelled-by-resident")
    return RecoveryDecision(action=RecoveryAction.RECORD_APPROVED, reason="terminal-approved")
