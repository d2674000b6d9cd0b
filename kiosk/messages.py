"""Messages between the screens and the controller (CONVENTIONS rule 7: screens do no I/O).

Requests go up: a screen posts one (it bubbles to the app, whose controller
handles it and, where I/O is needed, runs a :mod:`kiosk.services` coroutine in
a worker). Answers come down: the controller posts them to the screen that
asked. Screens therefore hold only values and never call a service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual.message import Message

from kiosk.model import BasketItem
from kiosk.pin import PinCheck
from kiosk.services import (
    PaymentReport,
    PaymentUpdate,
    PrintOutcome,
    ReadingOutcome,
    ServiceReport,
    StaffStatus,
)

# ----------------------------------------------------------------------- requests (up)


class LanguageToggled(Message):
    """The resident switched language on the welcome screen."""


class NumberSubmitted(Message):
    """A virtual number typed on the keypad."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class DemoCardTapped(Message):
    """Demo only: present demo card ``index`` on the simulated reader."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index


class DemoBillScanned(Message):
    """Demo only: scan the demo bill's QR with the simulated scanner."""


class GoBack(Message):
    """Back to the previous screen."""


class GoHome(Message):
    """Finish: clear the session and return to the welcome screen."""


class Navigate(Message):
    """Open one of the account's screens: ``amounts``, ``meters`` or ``statement``."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target


class AmountsChosen(Message):
    """The resident finished the amount screen with this basket."""

    def __init__(self, basket: tuple[BasketItem, ...]) -> None:
        super().__init__()
        self.basket = basket


class SurchargeDecided(Message):
    """The resident accepted or declined the surcharge."""

    def __init__(self, accepted: bool) -> None:
        super().__init__()
        self.accepted = accepted


class PayConfirmed(Message):
    """OK on the confirmation screen: take the payment."""


class CancelPaymentRequested(Message):
    """Cancel on the card payment screen."""


class RetryPayment(Message):
    """Try the card payment again after a decline."""


class ReadingSubmitted(Message):
    """A meter reading to validate and record."""

    def __init__(self, code: str, meter_id: str, value_milli: int) -> None:
        super().__init__()
        self.code = code
        self.meter_id = meter_id
        self.value_milli = value_milli


class StatementRequested(Message):
    """Show (and with ``print_it`` print) the statement of the last ``months`` months."""

    def __init__(self, months: int, *, print_it: bool = False) -> None:
        super().__init__()
        self.months = months
        self.print_it = print_it


class ServiceModeRequested(Message):
    """A technician tapped the staff line."""


class PinEntered(Message):
    """A technician PIN to check."""

    def __init__(self, pin: str) -> None:
        super().__init__()
        self.pin = pin


class ServiceAction(Message):
    """A service-mode button: report, test_receipt, end_of_day, reprint, resolve, clear_alarms."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action


# ----------------------------------------------------------------------- answers (down)


class LanguageChanged(Message):
    """Every screen re-renders its texts in ``lang``."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang


class IdleTick(Message):
    """Seconds left before the idle timeout (None: the countdown is not running)."""

    def __init__(self, seconds_left: int | None) -> None:
        super().__init__()
        self.seconds_left = seconds_left


class StaffStatusChanged(Message):
    """New staff-line values."""

    def __init__(self, status: StaffStatus) -> None:
        super().__init__()
        self.status = status


class IdentifyResult(Message):
    """Looking up an identification: ``busy`` while it runs, then a message or nothing."""

    def __init__(self, *, busy: bool, message: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.busy = busy
        self.message = message


class PaymentProgress(Message):
    """A live terminal status."""

    def __init__(self, update: PaymentUpdate) -> None:
        super().__init__()
        self.update = update


class PaymentFinished(Message):
    """The payment ended (any outcome)."""

    def __init__(self, report: PaymentReport) -> None:
        super().__init__()
        self.report = report


class PrintFinished(Message):
    """A print job ended."""

    def __init__(self, outcome: PrintOutcome) -> None:
        super().__init__()
        self.outcome = outcome


class ReadingResult(Message):
    """A reading was accepted or refused; ``points`` is the meter's history now."""

    def __init__(self, outcome: ReadingOutcome, points: tuple[Any, ...]) -> None:
        super().__init__()
        self.outcome = outcome
        self.points = points


class StatementReady(Message):
    """Statement rows for a period."""

    def __init__(self, months: int, start: str, end: str, rows: tuple[Any, ...]) -> None:
        super().__init__()
        self.months = months
        self.start = start
        self.end = end
        self.rows = rows


class PinResult(Message):
    """The answer to a PIN entry."""

    def __init__(self, check: PinCheck) -> None:
        super().__init__()
        self.check = check


class ServiceReportReady(Message):
    """Service-mode figures."""

    def __init__(self, report: ServiceReport) -> None:
        super().__init__()
        self.report = report


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionText:
    """A finished service action's text by language."""

    ok: bool
    text: Mapping[str, str]


class ServiceActionDone(Message):
    """A service-mode action finished."""

    def __init__(self, result: ActionText) -> None:
        super().__init__()
        self.result = result


class Notice(Message):
    """A one-off message for the resident on the screen that receives it."""

    def __init__(self, text: Mapping[str, str]) -> None:
        super().__init__()
        self.text = text
