"""Reading one resident card: a sans-I/O state machine over APDUs (ISO/IEC 7816-4).

Theory of operation
-------------------
A :class:`ResidentCardSession` is made with the card's ATR. ``start()`` returns
the first :class:`~drivers.pcsc.apdu.CommandApdu` to send; every raw response
goes to ``receive()``, which returns either the next command or, at the end,
the :class:`~drivers.pcsc.identity.CardIdentity`. It never does I/O, so the
pyscard transport, the tests and the fuzzers drive it the same way::

    step = session.start()
    while isinstance(step, CommandApdu):
        step = session.receive(transmit(step.to_bytes()))
    identity = step

Which card is it? The ATR decides the order of two probes (PC/SC part 3
§3.1.3.2.3): a contactless ATR (``3B 8n 80 01 ...``) is identified by its UID
(GET DATA ``FF CA 00 00 00``); anything else is asked for the resident
application (SELECT by AID ``F0 4C 4F 42 42 59 50 41 59 01``). If the first
probe is refused, the other is tried once -- some readers give contactless
cards non-standard ATRs, and a dual-interface card may present either way --
and if both are refused the card is :class:`CardNotRecognised`. After the
application: SELECT EF ``01 01`` (P1=02, P2=0C), then READ BINARY in chunks of
``read_chunk_bytes`` until the card signals the end of the file (a short read,
6282, or 6B00 past the first chunk), bounded by ``record_bytes_max``.

Status words 61xx and 6Cxx (ISO 7816-4 §5.6) are handled below the table, per
command: 61xx is answered with GET RESPONSE and the data concatenated (bounded
by ``get_response_rounds_max``), 6Cxx by resending the same command with
Le = xx (once). What is left -- the final data and status word of a command --
becomes an *outcome* (``OK``, ``ABSENT``, ``MORE``, ``END``) and the table
:data:`TRANSITIONS` gives the next state. Errors stop the session in
``FAILED`` with a typed :class:`~drivers.pcsc.errors.CardError`; a failed or
finished session refuses further input.
"""

from __future__ import annotations

import enum

from drivers.pcsc.apdu import (
    SHORT_LE_MAX,
    CommandApdu,
    StatusKind,
    describe_status,
    get_response,
    get_uid,
    parse_response,
    read_binary,
    select_aid,
    select_ef,
)
from drivers.pcsc.atr import parse_atr
from drivers.pcsc.errors import CardError, CardNotRecognised, CardProtocolError
from drivers.pcsc.identity import UID_BYTES_MAX, UID_BYTES_MIN, CardIdentity, parse_resident_record

__all__ = [
    "RESIDENT_AID",
    "RESIDENT_EF",
    "TRANSITIONS",
    "Outcome",
    "ResidentCardSession",
    "State",
]

RESIDENT_AID = bytes.fromhex("F04C4F42425950415901")
"""The lobbypay resident application: proprietary RID F0 + ``LOBBYPAY`` + 01."""
RESIDENT_EF = bytes.fromhex("0101")
"""The elementary file holding the resident record (BER-TLV)."""

RECORD_BYTES_MAX = 1024
READ_CHUNK_BYTES = 128
GET_RESPONSE_ROUNDS_MAX = 16
EXCHANGE_BYTES_MAX = 2048
"""Most data bytes one command may collect through GET RESPONSE chaining."""
COMMANDS_MAX = 64
"""Most commands one session sends, whatever the card says (a hard loop bound)."""


class State(enum.Enum):
    """Where the session is (see the module docstring)."""

    START = "start"
    GET_UID = "get_uid"
    """First probe of a contactless card."""
    SELECT_APP = "select_app"
    """First probe of any other card."""
    GET_UID_FALLBACK = "get_uid_fallback"
    """The UID after the application was refused."""
    SELECT_APP_FALLBACK = "select_app_fallback"
    """The application after the UID was refused."""
    SELECT_EF = "select_ef"
    READ_BINARY = "read_binary"
    DONE = "done"
    NOT_RECOGNISED = "not_recognised"
    FAILED = "failed"


class Outcome(enum.Enum):
    """What one completed command meant."""

    CONTACTLESS = "contactless"
    """START only: the ATR has the PC/SC contactless shape."""
    CONTACT = "contact"
    """START only: any other valid ATR."""
    OK = "ok"
    ABSENT = "absent"
    """The card refused: no such function, application or file."""
    MORE = "more"
    """READ BINARY: a full chunk arrived, the file may go on."""
    END = "end"
    """READ BINARY: the end of the file was reached."""


TRANSITIONS: dict[tuple[State, Outcome], State] = {
    (State.START, Outcome.CONTACTLESS): State.GET_UID,
    (State.START, Outcome.CONTACT): State.SELECT_APP,
    (State.GET_UID, Outcome.OK): State.DONE,
    (State.GET_UID, Outcome.ABSENT): State.SELECT_APP_FALLBACK,
    (State.SELECT_APP, Outcome.OK): State.SELECT_EF,
    (State.SELECT_APP, Outcome.ABSENT): State.GET_UID_FALLBACK,
    (State.GET_UID_FALLBACK, Outcome.OK): State.DONE,
    (State.GET_UID_FALLBACK, Outcome.ABSENT): State.NOT_RECOGNISED,
    (State.SELECT_APP_FALLBACK, Outcome.OK): State.SELECT_EF,
    (State.SELECT_APP_FALLBACK, Outcome.ABSENT): State.NOT_RECOGNISED,
    (State.SELECT_EF, Outcome.OK): State.READ_BINARY,
    (State.SELECT_EF, Outcome.ABSENT): State.NOT_RECOGNISED,
    (State.READ_BINARY, Outcome.MORE): State.READ_BINARY,
    (State.READ_BINARY, Outcome.END): State.DONE,
    (State.READ_BINARY, Outcome.ABSENT): State.NOT_RECOGNISED,
}

_TERMINAL = frozenset({State.DONE, State.NOT_RECOGNISED, State.FAILED})

# READ BINARY status words that mean "this is not a readable resident file"
# rather than a broken card (ISO 7816-4 §11.2.3 and table 6).
_READ_REFUSALS = frozenset({0x6981, 0x6982, 0x6985, 0x6986, 0x6A82})


class ResidentCardSession:
    """Drive the reading of one card (see the module docstring).

    Limits: ``record_bytes_max`` (the resident file), ``read_chunk_bytes`` (Le of
    each READ BINARY, 1..256), ``get_response_rounds_max`` (61xx chaining per
    command) and a hard ``COMMANDS_MAX`` commands per session.
    """

    def __init__(
        self,
        atr: bytes,
        *,
        record_bytes_max: int = RECORD_BYTES_MAX,
        read_chunk_bytes: int = READ_CHUNK_BYTES,
        get_response_rounds_max: int = GET_RESPONSE_ROUNDS_MAX,
    ) -> None:
        if not 1 <= read_chunk_bytes <= SHORT_LE_MAX:
            raise ValueError(f"read_chunk_bytes must be 1..{SHORT_LE_MAX}")
        if not 1 <= record_bytes_max <= 0x7FFF:
            raise ValueError("record_bytes_max must fit a 15-bit READ BINARY offset")
        if get_response_rounds_max < 1:
            raise ValueError("get_response_rounds_max must be at least 1")
        self._atr = bytes(atr)
        self._record_bytes_max = record_bytes_max
        self._chunk = read_chunk_bytes
        self._rounds_max = get_response_rounds_max
        self.state = State.START
        self._commands_sent = 0
        self._command: CommandApdu | None = None
        """The command the current state sent (before GET RESPONSE / 6Cxx)."""
        self._last_sent: CommandApdu | None = None
        self._exchange_data = bytearray()
        self._rounds = 0
        self._resent = False
        self._record = bytearray()
        self._uid: bytes | None = None
        self.error: CardError | None = None
        self.identity: CardIdentity | None = None

    # --- public driving API -------------------------------------------------

    def start(self) -> CommandApdu:
        """Check the ATR and return the first command (raises on an unknown ATR)."""
        if self.state is not State.START:
            raise RuntimeError("session already started")
        try:
            info = parse_atr(self._atr)
        except CardError as exc:
            self._fail(exc)
            raise
        outcome = Outcome.CONTACTLESS if info.contactless else Outcome.CONTACT
        first = self._advance(outcome)
        assert isinstance(first, CommandApdu)  # both first states send a command
        return first

    def receive(self, raw: bytes) -> CommandApdu | CardIdentity:
        """Take the raw R-APDU of the last command; return the next command or the result."""
        if self.state in _TERMINAL or self._last_sent is None:
            raise RuntimeError(f"session cannot receive in state {self.state.value}")
        try:
            return self._receive(bytes(raw))
        except CardError as exc:
            self._fail(exc)
            raise

    # --- internals ----------------------------------------------------------

    def _fail(self, exc: CardError) -> None:
        self.state = State.FAILED
        self.error = exc

    def _send(self, command: CommandApdu) -> CommandApdu:
        if self._commands_sent >= COMMANDS_MAX:
            raise CardProtocolError(f"card needed more than {COMMANDS_MAX} commands")
        self._commands_sent += 1
        self._last_sent = command
        return command

    def _begin(self, command: CommandApdu) -> CommandApdu:
        self._command = command
        self._exchange_data.clear()
        self._rounds = 0
        self._resent = False
        return self._send(command)

    def _receive(self, raw: bytes) -> CommandApdu | CardIdentity:
        response = parse_response(raw)
        kind = response.kind
        assert self._last_sent is not None
        assert self._command is not None
        if kind is StatusKind.MORE_DATA:
            self._rounds += 1
            if self._rounds > self._rounds_max:
                raise CardProtocolError("too many GET RESPONSE rounds", sw=response.sw)
            self._collect(response.data)
            return self._send(get_response(response.sw2 or SHORT_LE_MAX))
        if kind is StatusKind.WRONG_LE:
            if response.data:
                raise CardProtocolError("6Cxx came with data", sw=response.sw)
            if self._resent:
                raise CardProtocolError("card asked for another Le twice", sw=response.sw)
            self._resent = True
            return self._send(self._last_sent.with_le(response.sw2 or SHORT_LE_MAX))
        if kind is StatusKind.ERROR and response.data:
            raise CardProtocolError("error status word came with data", sw=response.sw)
        self._collect(response.data)
        outcome = self._interpret(bytes(self._exchange_data), response.sw, kind)
        return self._advance(outcome)

    def _collect(self, data: bytes) -> None:
        if len(self._exchange_data) + len(data) > EXCHANGE_BYTES_MAX:
            raise CardProtocolError(f"response longer than {EXCHANGE_BYTES_MAX} bytes")
        self._exchange_data += data

    def _interpret(self, data: bytes, sw: int, kind: StatusKind) -> Outcome:
        """Turn one command's final data and status word into an outcome."""
        state = self.state
        if state in (State.GET_UID, State.GET_UID_FALLBACK):
            if kind is not StatusKind.OK:
                return Outcome.ABSENT
            if not UID_BYTES_MIN <= len(data) <= UID_BYTES_MAX:
                raise CardProtocolError(f"UID of {len(data)} bytes", sw=sw)
            self._uid = data
            return Outcome.OK
        if state in (State.SELECT_APP, State.SELECT_APP_FALLBACK, State.SELECT_EF):
            # The FCI a SELECT may return is not needed: the profile fixes the
            # file layout, so it is read and dropped.
            return Outcome.OK if kind is StatusKind.OK else Outcome.ABSENT
        if state is State.READ_BINARY:
            return self._interpret_read(data, sw, kind)
        raise AssertionError(f"no command is outstanding in state {state.value}")

    def _interpret_read(self, data: bytes, sw: int, kind: StatusKind) -> Outcome:
        assert self._command is not None
        assert self._command.le is not None
        requested = self._command.le
        offset = len(self._record)
        if kind is StatusKind.ERROR:
            if sw == 0x6B00 and offset > 0:
                return Outcome.END  # the previous chunk ended exactly at the end of the EF
            if sw in _READ_REFUSALS or sw == 0x6B00:
                return Outcome.ABSENT
            raise CardProtocolError(f"READ BINARY failed: {describe_status(sw)}", sw=sw)
        if kind is StatusKind.WARNING and sw != 0x6282:
            raise CardProtocolError(f"READ BINARY warning: {describe_status(sw)}", sw=sw)
        if len(data) > requested:
            raise CardProtocolError(f"READ BINARY gave {len(data)} bytes for Le {requested}")
        self._record += data
        if len(self._record) > self._record_bytes_max:
            raise CardProtocolError(f"resident record longer than {self._record_bytes_max} bytes")
        if sw == 0x6282 or len(data) < requested:
            return Outcome.END
        return Outcome.MORE

    def _advance(self, outcome: Outcome) -> CommandApdu | CardIdentity:
        key = (self.state, outcome)
        if key not in TRANSITIONS:
            raise CardProtocolError(f"unexpected {outcome.value} in {self.state.value}")
        self.state = TRANSITIONS[key]
        return self._enter()

    def _enter(self) -> CommandApdu | CardIdentity:
        state = self.state
        if state in (State.GET_UID, State.GET_UID_FALLBACK):
            return self._begin(get_uid())
        if state in (State.SELECT_APP, State.SELECT_APP_FALLBACK):
            return self._begin(select_aid(RESIDENT_AID))
        if state is State.SELECT_EF:
            return self._begin(select_ef(RESIDENT_EF))
        if state is State.READ_BINARY:
            return self._begin(read_binary(len(self._record), self._chunk))
        if state is State.NOT_RECOGNISED:
            error = CardNotRecognised("card has neither a UID nor the resident application")
            self.error = error
            raise error
        assert state is State.DONE
        if self._uid is not None:
            identity = CardIdentity(kind="uid", uid_hex=self._uid.hex().upper())
        else:
            identity = parse_resident_record(bytes(self._record)).to_identity()
        self.identity = identity
        return identity
