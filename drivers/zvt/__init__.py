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

from typing import TYPE_CHECKING

from drivers._lazy import lazy_exports

if TYPE_CHECKING:
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

# Names are imported on first use (PEP 562), so that importing this package —
# which `lobbypay --help` does for every command — stays cheap.
_LAZY: dict[str, tuple[str, str]] = {
    "NEED_DATA": ("drivers.zvt.apdu", "NEED_DATA"),
    "Apdu": ("drivers.zvt.apdu", "Apdu"),
    "EndOfDayResult": ("drivers.zvt.client", "EndOfDayResult"),
    "LastTransaction": ("drivers.zvt.client", "LastTransaction"),
    "LinkCounters": ("drivers.zvt.client", "LinkCounters"),
    "Operation": ("drivers.zvt.client", "Operation"),
    "PaymentOutcome": ("drivers.zvt.client", "PaymentOutcome"),
    "PaymentSession": ("drivers.zvt.client", "PaymentSession"),
    "PaymentStatus": ("drivers.zvt.client", "PaymentStatus"),
    "RegistrationResult": ("drivers.zvt.client", "RegistrationResult"),
    "RepeatedReceipt": ("drivers.zvt.client", "RepeatedReceipt"),
    "TerminalStatus": ("drivers.zvt.client", "TerminalStatus"),
    "ZvtTerminal": ("drivers.zvt.client", "ZvtTerminal"),
    "ZvtApduError": ("drivers.zvt.errors", "ZvtApduError"),
    "ZvtCommandRejected": ("drivers.zvt.errors", "ZvtCommandRejected"),
    "ZvtDeviceError": ("drivers.zvt.errors", "ZvtDeviceError"),
    "ZvtError": ("drivers.zvt.errors", "ZvtError"),
    "ZvtFrameError": ("drivers.zvt.errors", "ZvtFrameError"),
    "ZvtPermanentDeviceError": ("drivers.zvt.errors", "ZvtPermanentDeviceError"),
    "ZvtProtocolError": ("drivers.zvt.errors", "ZvtProtocolError"),
    "ZvtTemporaryDeviceError": ("drivers.zvt.errors", "ZvtTemporaryDeviceError"),
    "ZvtTimeout": ("drivers.zvt.errors", "ZvtTimeout"),
    "ZvtUsageError": ("drivers.zvt.errors", "ZvtUsageError"),
    "AbortRequest": ("drivers.zvt.messages", "AbortRequest"),
    "Ack": ("drivers.zvt.messages", "Ack"),
    "Authorization": ("drivers.zvt.messages", "Authorization"),
    "Completion": ("drivers.zvt.messages", "Completion"),
    "EndOfDay": ("drivers.zvt.messages", "EndOfDay"),
    "EndOfDayTotals": ("drivers.zvt.messages", "EndOfDayTotals"),
    "IntermediateStatus": ("drivers.zvt.messages", "IntermediateStatus"),
    "Nack": ("drivers.zvt.messages", "Nack"),
    "PrintLine": ("drivers.zvt.messages", "PrintLine"),
    "PrintTextBlock": ("drivers.zvt.messages", "PrintTextBlock"),
    "Registration": ("drivers.zvt.messages", "Registration"),
    "RepeatReceipt": ("drivers.zvt.messages", "RepeatReceipt"),
    "Reversal": ("drivers.zvt.messages", "Reversal"),
    "SchemeTotal": ("drivers.zvt.messages", "SchemeTotal"),
    "StatusEnquiry": ("drivers.zvt.messages", "StatusEnquiry"),
    "StatusInformation": ("drivers.zvt.messages", "StatusInformation"),
    "TerminalAbort": ("drivers.zvt.messages", "TerminalAbort"),
    "SessionState": ("drivers.zvt.session", "SessionState"),
    "ZvtConnection": ("drivers.zvt.session", "ZvtConnection"),
    "ZvtTimeouts": ("drivers.zvt.session", "ZvtTimeouts"),
}


__getattr__ = lazy_exports(globals(), _LAZY)


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
