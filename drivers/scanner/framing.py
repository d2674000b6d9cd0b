"""Sans-I/O line framer for serial scanners: bytes (with their arrival time) in, lines out.

Theory of operation
-------------------
Barcode, QR and magstripe scanners in serial mode send one read per line,
ended by a suffix the installer configures: CR, LF or CRLF (the default
accepts all three), or something else (``FramerConfig.suffix``), or nothing
at all (``idle_terminates_line``: a pause ends the line). Between reads the
wire carries noise: power-up garbage, control characters, half a read when
the cable wiggles.

The framer is a three-state machine driven by four inputs:

===========  ==========================  ==========================  ===========================
state        BYTE (stored data byte)     END (suffix seen)           GAP (timeout)
===========  ==========================  ==========================  ===========================
IDLE         -> LINE, start line         -> IDLE (empty line: drop)  -> IDLE
LINE         -> LINE, append             -> IDLE, emit line          -> IDLE, discard (or emit
                                                                        when idle ends lines)
SKIP         -> SKIP                     -> IDLE                     -> IDLE
===========  ==========================  ==========================  ===========================

plus OVERFLOW (LINE reaching ``line_bytes_max``): -> SKIP, discard; the rest of
that over-long line is skipped up to its suffix so that its tail is not taken
for a new read. GAP fires when a partial line is older than ``line_timeout_s``
or has been silent for ``inter_byte_timeout_s``; it is evaluated on every
``feed`` (before the new bytes, with their arrival time) and on ``poll``.
Control characters (C0 and DEL) that are not part of the suffix are dropped
and counted; bytes >= 0x80 are kept (windows-1251 and KOI8-R text lives there).

The framer never copies a finished line: it hands its buffer over (a
``bytearray`` the consumer may wipe, see :mod:`drivers.scanner.track2`) and
starts a new one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "FramerConfig",
    "FramerEvent",
    "LineDiscarded",
    "LineFramer",
    "LineReceived",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class FramerConfig:
    """Line framing options for one scanner."""

    suffix: bytes | None = None
    """The line terminator; None accepts CR, LF and CRLF."""
    line_bytes_max: int = 4096
    """Longest line kept, in bytes (control characters not counted)."""
    line_timeout_s: float = 3.0
    """A partial line older than this is noise and discarded."""
    inter_byte_timeout_s: float = 0.5
    """A partial line silent for this long is discarded (or ended, see below)."""
    idle_terminates_line: bool = False
    """For scanners that send no suffix: a silence of ``inter_byte_timeout_s`` ends the line."""

    def __post_init__(self) -> None:
        if self.suffix is not None and not 1 <= len(self.suffix) <= 8:
            raise ValueError("FramerConfig.suffix must be 1-8 bytes, or None for CR/LF/CRLF")
        if self.line_bytes_max < 1:
            raise ValueError("FramerConfig.line_bytes_max must be positive")
        if not (self.line_timeout_s > 0 and self.inter_byte_timeout_s > 0):
            raise ValueError("FramerConfig timeouts must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class LineReceived:
    """One complete line. ``data`` is handed over: the consumer owns (and may wipe) it."""

    data: bytearray = field(repr=False)
    control_bytes_removed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytearray) or not self.data:
            raise ValueError("LineReceived.data must be a non-empty bytearray")
        if self.control_bytes_removed < 0:
            raise ValueError("LineReceived.control_bytes_removed must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class LineDiscarded:
    """A partial or over-long line was dropped as noise (its bytes are gone)."""

    reason: Literal["timeout", "too_long"]
    bytes_count: int

    def __post_init__(self) -> None:
        if self.reason not in ("timeout", "too_long") or self.bytes_count < 0:
            raise ValueError("LineDiscarded: bad reason or count")


FramerEvent = LineReceived | LineDiscarded


class _State(enum.Enum):
    IDLE = "idle"
    LINE = "line"
    SKIP = "skip"


class _Input(enum.Enum):
    BYTE = "byte"
    END = "end"
    GAP = "gap"
    OVERFLOW = "overflow"


class _Action(enum.Enum):
    NONE = "none"
    START = "start"
    APPEND = "append"
    EMIT = "emit"
    DISCARD_TIMEOUT = "discard_timeout"
    DISCARD_TOO_LONG = "discard_too_long"
    GAP_IN_LINE = "gap_in_line"  # discard, or emit when idle ends lines


_TRANSITIONS: Final[dict[tuple[_State, _Input], tuple[_State, _Action]]] = {
    (_State.IDLE, _Input.BYTE): (_State.LINE, _Action.START),
    (_State.IDLE, _Input.END): (_State.IDLE, _Action.NONE),
    (_State.IDLE, _Input.GAP): (_State.IDLE, _Action.NONE),
    (_State.LINE, _Input.BYTE): (_State.LINE, _Action.APPEND),
    (_State.LINE, _Input.END): (_State.IDLE, _Action.EMIT),
    (_State.LINE, _Input.GAP): (_State.IDLE, _Action.GAP_IN_LINE),
    (_State.LINE, _Input.OVERFLOW): (_State.SKIP, _Action.DISCARD_TOO_LONG),
    (_State.SKIP, _Input.BYTE): (_State.SKIP, _Action.NONE),
    (_State.SKIP, _Input.END): (_State.IDLE, _Action.NONE),
    (_State.SKIP, _Input.GAP): (_State.IDLE, _Action.NONE),
}

_CR: Final = 0x0D
_LF: Final = 0x0A


def _is_control(byte: int) -> bool:
    return byte < 0x20 or byte == 0x7F


class LineFramer:
    """Turns a scanner's byte stream into lines; see the module docstring.

    ``feed(data, now)`` and ``poll(now)`` return the events they produced;
    ``now`` is a monotonic time in seconds supplied by the caller (so tests
    control time and the framer never reads a clock).
    """

    def __init__(self, config: FramerConfig | None = None) -> None:
        self.config = config or FramerConfig()
        self._state = _State.IDLE
        self._buf = bytearray()
        self._controls = 0
        self._first_at = 0.0
        self._last_at = 0.0
        self._matched = 0  # bytes of a custom suffix matched so far
        self._skipped = 0

    @property
    def state(self) -> str:
        """``idle``, ``line`` or ``skip`` (for diagnostics and tests)."""
        return self._state.value

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the partial line held now (always <= ``line_bytes_max``)."""
        return len(self._buf)

    def next_deadline(self) -> float | None:
        """When ``poll`` next has something to do (None while idle)."""
        if self._state is _State.LINE:
            return min(
                self._first_at + self.config.line_timeout_s,
                self._last_at + self.config.inter_byte_timeout_s,
            )
        if self._state is _State.SKIP:
            return self._last_at + self.config.inter_byte_timeout_s
        return None

    def poll(self, now: float) -> list[FramerEvent]:
        """Apply timeouts as of ``now``."""
        out: list[FramerEvent] = []
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._step(_Input.GAP, 0, now, out)
        return out

    def feed(self, data: bytes | bytearray, now: float) -> list[FramerEvent]:
        """Process bytes that arrived at ``now``; returns lines and discards."""
        out = self.poll(now)
        suffix = self.config.suffix
        for byte in data:
            if suffix is None:
                if byte in (_CR, _LF):
                    self._step(_Input.END, 0, now, out)
                else:
                    self._data_byte(byte, now, out)
                continue
            self._suffix_byte(byte, suffix, now, out)
        return out

    def _suffix_byte(self, byte: int, suffix: bytes, now: float, out: list[FramerEvent]) -> None:
        if byte == suffix[self._matched]:
            self._matched += 1
            if self._matched == len(suffix):
                self._matched = 0
                self._step(_Input.END, 0, now, out)
            return
        if self._matched:
            # A partial suffix that did not complete was data after all. Suffixes
            # are short and rarely self-overlapping, so re-scanning is enough.
            pending = suffix[: self._matched]
            self._matched = 0
            for earlier in pending:
                self._data_byte(earlier, now, out)
            self._suffix_byte(byte, suffix, now, out)
            return
        self._data_byte(byte, now, out)

    def _data_byte(self, byte: int, now: float, out: list[FramerEvent]) -> None:
        if _is_control(byte):
            if self._state is _State.LINE:
                self._controls += 1
                self._last_at = now
            return
        self._step(_Input.BYTE, byte, now, out)
        if self._state is _State.LINE and len(self._buf) > self.config.line_bytes_max:
            self._step(_Input.OVERFLOW, 0, now, out)

    def _step(self, event: _Input, byte: int, now: float, out: list[FramerEvent]) -> None:
        state, action = _TRANSITIONS.get((self._state, event), (self._state, _Action.NONE))
        if action is _Action.START:
            self._buf = bytearray((byte,))
            self._controls = 0
            self._first_at = now
        elif action is _Action.APPEND:
            self._buf.append(byte)
        elif action is _Action.EMIT:
            out.append(self._hand_over())
        elif action is _Action.GAP_IN_LINE:
            if self.config.idle_terminates_line:
                out.append(self._hand_over())
            else:
                out.append(LineDiscarded(reason="timeout", bytes_count=self._wipe_buffer()))
        elif action is _Action.DISCARD_TOO_LONG:
            out.append(LineDiscarded(reason="too_long", bytes_count=self._wipe_buffer()))
        if event is _Input.GAP:
            self._matched = 0  # a suffix cannot straddle a silence
        else:
            self._last_at = now
        self._state = state

    def _hand_over(self) -> LineReceived:
        line, self._buf = self._buf, bytearray()
        event = LineReceived(data=line, control_bytes_removed=self._controls)
        self._controls = 0
        return event

    def _wipe_buffer(self) -> int:
        count = len(self._buf)
        # Discarded bytes may be half a card read: overwrite before letting go.
        self._buf[:] = bytes(count)
        self._buf = bytearray()
        self._controls = 0
        return count
