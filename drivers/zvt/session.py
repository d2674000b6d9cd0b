"""The ECR side of a ZVT session, sans-I/O (h11 style).

Theory of operation (ZVT rev. 13, chapters 1.3 and 2.2, "master-slave"):

1. The ECR sends a command (say Authorization 06 01) and becomes slave:
   ``IDLE → AWAIT_ACK``.
2. The terminal accepts with ``80 00 00`` (``AWAIT_ACK → RUNNING``) or refuses
   with ``84 xx`` (``→ IDLE``; nothing happened, the command may be retried).
3. While it works, the terminal sends Intermediate Status (04 FF: "insert
   card", "enter PIN", "please wait", "remove card") and may send receipt text
   (Print Line 06 D1 / Text Block 06 D3). The ECR answers each with ``80 00``.
4. The terminal sends Status-Information 04 0F with the result
   (``RUNNING → GOT_STATUS``); the ECR answers ``80 00``. Receipt lines may
   follow.
5. Completion 06 0F (success) or Abort 06 1E (failure, with result code) ends
   the command and gives control back: ``→ IDLE``; the ECR answers ``80 00``.

While a transaction runs the ECR may send Abort 06 B0 once; the terminal
answers ``80 00`` (it will end with 06 1E) or ``84 xx`` (too late to abort).
Some terminals omit the ``80 00`` before their first message, so a terminal
message in ``AWAIT_ACK`` counts as an implicit acceptance. Anything else
arriving where the table has no entry is a :class:`ZvtProtocolError`; the
connection still answers it (``80 00`` for a well-formed message, ``84 83``
for an unknown command, ``84 9A`` for a malformed one) so the terminal is never
left waiting.

Timeouts per state (values in :class:`ZvtTimeouts`, enforced by the I/O layer
through :meth:`ZvtConnection.timeout_s`): ``AWAIT_ACK`` waits
``command_ack_timeout_s`` for 80 00; ``RUNNING`` allows ``progress_timeout_s``
between terminal messages (the card wait is inside it); ``GOT_STATUS`` waits
``completion_timeout_s`` for Completion/Abort; ``transaction_timeout_s`` bounds
the whole command. The serial link adds its own ACK and inter-byte timers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

from drivers.zvt.apdu import NEED_DATA, _NeedData, encode_apdu
from drivers.zvt.errors import ZvtApduError, ZvtProtocolError, ZvtUsageError
from drivers.zvt.framing import FRAME_BYTES_MAX_DEFAULT
from drivers.zvt.link import RETRIES_MAX_DEFAULT, SerialLink, TcpLink, make_link
from drivers.zvt.messages import (
    NACK_MALFORMED,
    NACK_UNKNOWN_COMMAND,
    AbortRequest,
    Ack,
    Completion,
    EcrCommand,
    IntermediateStatus,
    Nack,
    PrintLine,
    PrintTextBlock,
    PtMessage,
    StatusInformation,
    TerminalAbort,
    decode_pt_message,
)

logger = logging.getLogger(__name__)

Framing = Literal["serial", "tcp"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ZvtTimeouts:
    """Every wait of the driver, in seconds."""

    connect_timeout_s: float = 5.0
    write_timeout_s: float = 2.0
    link_ack_timeout_s: float = 2.0
    byte_timeout_s: float = 1.0
    command_ack_timeout_s: float = 5.0
    progress_timeout_s: float = 120.0
    completion_timeout_s: float = 60.0
    transaction_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) <= 0:
                raise ZvtUsageError(f"{name} must be positive")


class SessionState(Enum):
    """Where the ECR stands in the current command."""

    IDLE = "idle"
    AWAIT_ACK = "await_ack"
    RUNNING = "running"
    GOT_STATUS = "got_status"


class Input(Enum):
    """Kinds of terminal message that drive the state machine."""

    ACK = "ack"
    NACK = "nack"
    INTERMEDIATE = "intermediate"
    STATUS = "status"
    PRINT = "print"
    COMPLETION = "completion"
    ABORT = "abort"


_S = SessionState
_I = Input

TRANSITIONS: Final[dict[tuple[SessionState, Input], SessionState]] = {
    (_S.AWAIT_ACK, _I.ACK): _S.RUNNING,
    (_S.AWAIT_ACK, _I.NACK): _S.IDLE,
    (_S.AWAIT_ACK, _I.INTERMEDIATE): _S.RUNNING,
    (_S.AWAIT_ACK, _I.STATUS): _S.GOT_STATUS,
    (_S.AWAIT_ACK, _I.PRINT): _S.RUNNING,
    (_S.AWAIT_ACK, _I.COMPLETION): _S.IDLE,
    (_S.AWAIT_ACK, _I.ABORT): _S.IDLE,
    (_S.RUNNING, _I.INTERMEDIATE): _S.RUNNING,
    (_S.RUNNING, _I.STATUS): _S.GOT_STATUS,
    (_S.RUNNING, _I.PRINT): _S.RUNNING,
    (_S.RUNNING, _I.COMPLETION): _S.IDLE,
    (_S.RUNNING, _I.ABORT): _S.IDLE,
    (_S.GOT_STATUS, _I.INTERMEDIATE): _S.GOT_STATUS,
    (_S.GOT_STATUS, _I.STATUS): _S.GOT_STATUS,
    (_S.GOT_STATUS, _I.PRINT): _S.GOT_STATUS,
    (_S.GOT_STATUS, _I.COMPLETION): _S.IDLE,
    (_S.GOT_STATUS, _I.ABORT): _S.IDLE,
}

TIMEOUT_BY_STATE: Final[dict[SessionState, str]] = {
    _S.AWAIT_ACK: "command_ack_timeout_s",
    _S.RUNNING: "progress_timeout_s",
    _S.GOT_STATUS: "completion_timeout_s",
}

_INPUT_OF: Final[dict[type, Input]] = {
    Ack: _I.ACK,
    Nack: _I.NACK,
    IntermediateStatus: _I.INTERMEDIATE,
    StatusInformation: _I.STATUS,
    PrintLine: _I.PRINT,
    PrintTextBlock: _I.PRINT,
    Completion: _I.COMPLETION,
    TerminalAbort: _I.ABORT,
}


class ZvtConnection:
    """ECR-side ZVT protocol state, no I/O.

    ``send(command) -> bytes`` to write; ``receive_data(bytes)`` then
    ``next_event()`` until it returns :data:`NEED_DATA`; after each call write
    ``data_to_send()`` (link ACK/NAK, our ``80 00`` replies, retransmissions).
    The I/O layer calls ``link_ack_timeout()`` when the serial link waited too
    long for an ACK and ``receive_timeout()`` when the line went quiet inside a
    frame.
    """

    def __init__(
        self,
        *,
        framing: Framing = "serial",
        frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
        retries_max: int = RETRIES_MAX_DEFAULT,
        text_encoding: str = "cp437",
    ) -> None:
        self.framing: Framing = framing
        self.text_encoding = text_encoding
        self._link: SerialLink | TcpLink = make_link(
            framing, frame_bytes_max=frame_bytes_max, retries_max=retries_max
        )
        self._state = SessionState.IDLE
        self._command: EcrCommand | None = None
        self._abort_pending = False

    # ---------------------------------------------------------------- state

    @property
    def state(self) -> SessionState:
        """The session state (see the module docstring)."""
        return self._state

    @property
    def command(self) -> EcrCommand | None:
        """The command in progress, if any."""
        return self._command

    @property
    def abort_pending(self) -> bool:
        """True after Abort 06 B0 was sent and not yet answered."""
        return self._abort_pending

    @property
    def awaiting_link_ack(self) -> bool:
        """True while a serial frame we sent waits for ACK."""
        return self._link.awaiting_ack

    @property
    def receiving_frame(self) -> bool:
        """True while a frame / APDU is half received."""
        return self._link.receiving

    @property
    def frames_sent(self) -> int:
        """Count of frames written, retransmissions included."""
        return self._link.frames_sent

    @property
    def link(self) -> SerialLink | TcpLink:
        """The link layer (for counters and diagnostics)."""
        return self._link

    def timeout_s(self, timeouts: ZvtTimeouts) -> float | None:
        """The application-level timeout of the current state (None when idle)."""
        name = TIMEOUT_BY_STATE.get(self._state)
        return None if name is None else float(getattr(timeouts, name))

    # ----------------------------------------------------------------- I/O

    def send(self, command: EcrCommand) -> bytes:
        """Start ``command`` (or request an abort); returns the bytes to write now.

        With serial framing the bytes may be empty while a frame waits for its
        ACK; the frame then comes out of :meth:`data_to_send` later.
        """
        if isinstance(command, AbortRequest):
            if self._state is SessionState.IDLE:
                raise ZvtUsageError("nothing to abort")
            if self._abort_pending:
                raise ZvtUsageError("an abort request is already pending")
            self._abort_pending = True
        else:
            if self._state is not SessionState.IDLE:
                raise ZvtUsageError(f"cannot send a command in state {self._state.value}")
            self._state = SessionState.AWAIT_ACK
            self._command = command
        apdu = command.to_apdu()
        logger.info("zvt_send control=%02X%02X len=%d", apdu.cls, apdu.instr, len(apdu.data))
        self._link.send_apdu(encode_apdu(apdu))
        return self.data_to_send()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the device."""
        self._link.receive_data(data)

    def data_to_send(self) -> bytes:
        """Bytes the protocol needs written now."""
        return self._link.data_to_send()

    def link_ack_timeout(self) -> None:
        """Serial ACK timer expired: retransmit or raise ZvtTimeout."""
        self._link.ack_timeout()

    def receive_timeout(self) -> None:
        """Inter-byte timer expired inside a frame."""
        self._link.receive_timeout()

    def reset(self) -> None:
        """Forget the command in progress and all buffered bytes (after a reconnect)."""
        self._link.reset()
        self._state = SessionState.IDLE
        self._command = None
        self._abort_pending = False

    def next_event(self) -> PtMessage | _NeedData:
        """The next terminal message, or NEED_DATA.

        Raises :class:`ZvtProtocolError` (unknown / unexpected command),
        :class:`ZvtApduError` (malformed APDU), :class:`ZvtFrameError` (the link
        gave up). Every terminal command has been answered before this returns
        or raises.
        """
        try:
            apdu = self._link.next_apdu()
        except ZvtApduError:
            self._reply(Nack(error_code=NACK_MALFORMED))
            raise
        if isinstance(apdu, _NeedData):
            return NEED_DATA
        try:
            message = decode_pt_message(apdu, text_encoding=self.text_encoding)
        except ZvtApduError:
            self._reply(Nack(error_code=NACK_MALFORMED))
            logger.warning("zvt_malformed control=%02X%02X", apdu.cls, apdu.instr)
            raise
        except ZvtProtocolError:
            self._reply(Nack(error_code=NACK_UNKNOWN_COMMAND))
            logger.warning("zvt_unknown_command control=%02X%02X", apdu.cls, apdu.instr)
            raise
        kind = _INPUT_OF[type(message)]
        logger.info(
            "zvt_receive control=%02X%02X state=%s", apdu.cls, apdu.instr, self._state.value
        )
        is_ack = kind in (Input.ACK, Input.NACK)
        if is_ack and self._abort_pending and self._state is not SessionState.AWAIT_ACK:
            # The answer to our Abort 06 B0; the transaction itself goes on.
            self._abort_pending = False
            return message
        new_state = TRANSITIONS.get((self._state, kind))
        if new_state is None:
            if not is_ack:
                self._reply(Ack())
            raise ZvtProtocolError(
                f"unexpected {type(message).__name__} in state {self._state.value}"
            )
        if not is_ack:
            self._reply(Ack())
        self._state = new_state
        if new_state is SessionState.IDLE:
            self._command = None
            self._abort_pending = False
        return message

    def _reply(self, message: Ack | Nack) -> None:
        self._link.send_apdu(encode_apdu(message.to_apdu()))
