"""ZVT payment terminal driver (ECR interface rev. 13): core, transports, client, simulator.

Layers, bottom up (CONVENTIONS rule 2):

* :mod:`~drivers.zvt.framing`, :mod:`~drivers.zvt.apdu`, :mod:`~drivers.zvt.fields`,
  :mod:`~drivers.zvt.messages` — bytes ↔ frames ↔ APDUs ↔ typed commands/messages;
* :mod:`~drivers.zvt.link` — serial ACK/NAK/retransmission or raw TCP APDUs;
* :mod:`~drivers.zvt.session` — the ECR session state machine (:class:`ZvtConnection`);
* :mod:`~drivers.zvt.transport` — pyserial / asyncio TCP byte transports;
* :mod:`~drivers.zvt.client` — :class:`ZvtTerminal`, the asyncio API the kiosk uses;
* :mod:`~drivers.zvt.simulator` — a terminal that speaks the same bytes.

The kiosk and gateway import :class:`ZvtTerminal` and the result types below;
the simulator is imported from its own module so that production code does not
load it.
"""

from drivers.zvt.apdu import NEED_DATA, Apdu
from drivers.zvt.client import (
    EndOfDayResult,
    LastTransaction,
    LinkCounters,
    Operation,
    PaymentOutcome,
    PaymentSession,
    PaymentStatus,
    RegistrationResult,
    RepeatedReceipt,
    TerminalStatus,
    ZvtTerminal,
)
from drivers.zvt.errors import (
    ZvtApduError,
    ZvtCommandRejected,
    ZvtDeviceError,
    ZvtError,
    ZvtFrameError,
    ZvtPermanentDeviceError,
    ZvtProtocolError,
    ZvtTemporaryDeviceError,
    ZvtTimeout,
    ZvtUsageError,
)
from drivers.zvt.messages import (
    AbortRequest,
    Ack,
    Authorization,
    Completion,
    EndOfDay,
    EndOfDayTotals,
    IntermediateStatus,
    Nack,
    PrintLine,
    PrintTextBlock,
    Registration,
    RepeatReceipt,
    Reversal,
    SchemeTotal,
    StatusEnquiry,
    StatusInformation,
    TerminalAbort,
)
from drivers.zvt.session import SessionState, ZvtConnection, ZvtTimeouts

__all__ = [
    "NEED_DATA",
    "AbortRequest",
    "Ack",
    "Apdu",
    "Authorization",
    "Completion",
    "EndOfDay",
    "EndOfDayResult",
    "EndOfDayTotals",
    "IntermediateStatus",
    "LastTransaction",
    "LinkCounters",
    "Nack",
    "Operation",
    "PaymentOutcome",
    "PaymentSession",
    "PaymentStatus",
    "PrintLine",
    "PrintTextBlock",
    "Registration",
    "RegistrationResult",
    "RepeatReceipt",
    "RepeatedReceipt",
    "Reversal",
    "SchemeTotal",
    "SessionState",
    "StatusEnquiry",
    "StatusInformation",
    "TerminalAbort",
    "TerminalStatus",
    "ZvtApduError",
    "ZvtCommandRejected",
    "ZvtConnection",
    "ZvtDeviceError",
    "ZvtError",
    "ZvtFrameError",
    "ZvtPermanentDeviceError",
    "ZvtProtocolError",
    "ZvtTemporaryDeviceError",
    "ZvtTerminal",
    "ZvtTimeout",
    "ZvtTimeouts",
    "ZvtUsageError",
]
