"""ZVT serial framing: ``DLE STX <APDU, DLE doubled> DLE ETX CRC-lo CRC-hi``.

ZVT transport protocol (PA00P016), serial line. The checksum is CRC-CCITT in
its reflected form (polynomial 0x8408, initial value 0, no final XOR; also known
as CRC-16/KERMIT) over the unescaped APDU followed by the ETX byte, sent low
byte first. Checked against captured frames, e.g. ``80 00 00`` → ``F5 1F`` and
``06 01 0A ...`` with a doubled DLE → ``F2 FF`` (see the tests).

Between frames a single ``ACK`` (06) or ``NAK`` (15) byte acknowledges the
previous frame. :class:`FrameDecoder` is sans-I/O: feed it bytes, take events.
It keeps a partial frame across calls (wsproto style), resynchronises on the
next ``DLE STX`` after garbage, and reports a bad frame once, when it ends, so
that the NAK goes out after the peer stopped sending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from drivers.zvt.apdu import NEED_DATA, _NeedData
from drivers.zvt.errors import ZvtUsageError

STX: Final = 0x02
ETX: Final = 0x03
ACK: Final = 0x06
DLE: Final = 0x10
NAK: Final = 0x15

FRAME_BYTES_MAX_DEFAULT: Final = 16_389  # APDU header (5) + 16 KiB of data
_COMPACT_AFTER_BYTES: Final = 4096


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16(data: bytes | bytearray) -> int:
    """CRC-CCITT (reflected, 0x8408, init 0) as the ZVT serial protocol computes it."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def frame_crc(apdu: bytes | bytearray) -> bytes:
    """The two CRC bytes of a frame (low byte first) for an unescaped APDU."""
    crc = crc16(bytes(apdu) + bytes((ETX,)))
    return bytes((crc & 0xFF, crc >> 8))


def encode_frame(apdu: bytes) -> bytes:
    """Wrap an encoded APDU in a serial frame, doubling every DLE inside it."""
    if not apdu:
        raise ZvtUsageError("empty APDU")
    body = apdu.replace(b"\x10", b"\x10\x10")
    return b"\x10\x02" + body + b"\x10\x03" + frame_crc(apdu)


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameReceived:
    """A frame with a good CRC; ``apdu`` is the unescaped APDU (not in ``repr``)."""

    apdu: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AckReceived:
    """The peer acknowledged our last frame (06)."""


@dataclass(frozen=True, slots=True)
class NakReceived:
    """The peer rejected our last frame (15)."""


class RejectReason(Enum):
    """Why a frame was rejected (it will be answered with NAK)."""

    BAD_CRC = "bad_crc"
    BAD_ESCAPE = "bad_escape"
    OVERSIZE = "oversize"
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameRejected:
    """A frame started but was corrupt; the receiver answers NAK."""

    reason: RejectReason


FrameEvent = FrameReceived | AckReceived | NakReceived | FrameRejected


class _St(Enum):
    HUNT = 0
    HUNT_DLE = 1
    BODY = 2
    BODY_DLE = 3
    CRC = 4
    SKIP = 5
    SKIP_DLE = 6
    SKIP_CRC = 7


_IN_FRAME: Final = frozenset(
    {_St.BODY, _St.BODY_DLE, _St.CRC, _St.SKIP, _St.SKIP_DLE, _St.SKIP_CRC}
)


class FrameDecoder:
    """Incremental decoder for the serial framing (sans-I/O).

    ``frame_bytes_max`` bounds the unescaped APDU of one frame; a longer frame is
    rejected (``OVERSIZE``) and skipped. Bytes outside frames that are neither
    ACK, NAK nor the start of a frame are counted in ``garbage_bytes`` and
    dropped.
    """

    def __init__(self, *, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> None:
        if frame_bytes_max < 3:
            raise ZvtUsageError("frame_bytes_max must allow an APDU header")
        self.frame_bytes_max = frame_bytes_max
        self.garbage_bytes = 0
        self._buf = bytearray()
        self._pos = 0
        self._state = _St.HUNT
        self._payload = bytearray()
        self._crc = bytearray()
        self._skip_left = 0
        self._reject: RejectReason | None = None

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not ended (a timeout means truncation)."""
        return self._state in _IN_FRAME

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the line."""
        self._buf += data

    def flush(self) -> FrameRejected | None:
        """The line went quiet: a frame that started and did not end is truncated."""
        if not self.in_frame:
            return None
        reason = self._reject or RejectReason.TRUNCATED
        self._start_hunt()
        return FrameRejected(reason=reason)

    def reset(self) -> None:
        """Forget everything buffered."""
        self._wipe(self._buf)
        self._pos = 0
        self._start_hunt()

    def next_event(self) -> FrameEvent | _NeedData:
        """The next event from buffered bytes, or NEED_DATA."""
        buf = self._buf
        n = len(buf)
        pos = self._pos
        try:
            while pos < n:
                st = self._state
                if st is _St.BODY:
                    i = buf.find(DLE, pos)
                    end = n if i < 0 else i
                    self._payload += buf[pos:end]
                    if len(self._payload) > self.frame_bytes_max:
                        # Leave the DLE (if any) for SKIP to find: it may start
                        # the DLE ETX that ends this frame.
                        self._skip(RejectReason.OVERSIZE)
                        pos = end
                        continue
                    pos = end if i < 0 else i + 1
                    if i >= 0:
                        self._state = _St.BODY_DLE
                    continue
                if st is _St.SKIP:
                    i = buf.find(DLE, pos)
                    if i < 0:
                        pos = n
                    else:
                        pos = i + 1
                        self._state = _St.SKIP_DLE
                    continue
                byte = buf[pos]
                pos += 1
                if st is _St.HUNT:
                    if byte == DLE:
                        self._state = _St.HUNT_DLE
                    elif byte == ACK:
                        return AckReceived()
                    elif byte == NAK:
                        return NakReceived()
                    else:
                        self.garbage_bytes += 1
                elif st is _St.HUNT_DLE:
                    if byte == STX:
                        self._start_frame()
                    elif byte == DLE:
                        self.garbage_bytes += 1
                    else:
                        # A lone DLE was noise; look at this byte afresh, it may
                        # be an ACK or NAK.
                        self.garbage_bytes += 1
                        self._state = _St.HUNT
                        pos -= 1
                elif st is _St.BODY_DLE:
                    if byte == DLE:
                        self._payload.append(DLE)
                        self._state = _St.BODY
                        if len(self._payload) > self.frame_bytes_max:
                            self._skip(RejectReason.OVERSIZE)
                    elif byte == ETX:
                        self._state = _St.CRC
                        self._crc.clear()
                    elif byte == STX:
                        # A new frame began inside this one: the first was cut off.
                        self._start_frame()
                        return FrameRejected(reason=RejectReason.TRUNCATED)
                    else:
                        self._skip(RejectReason.BAD_ESCAPE)
                elif st is _St.CRC:
                    self._crc.append(byte)
                    if len(self._crc) == 2:
                        return self._finish_frame()
                elif st is _St.SKIP_DLE:
                    if byte == ETX:
                        self._state = _St.SKIP_CRC
                        self._skip_left = 2
                    elif byte == STX:
                        reason = self._reject or RejectReason.TRUNCATED
                        self._start_frame()
                        return FrameRejected(reason=reason)
                    else:
                        self._state = _St.SKIP
                elif st is _St.SKIP_CRC:
                    self._skip_left -= 1
                    if self._skip_left == 0:
                        reason = self._reject or RejectReason.BAD_ESCAPE
                        self._start_hunt()
                        return FrameRejected(reason=reason)
            return NEED_DATA
        finally:
            self._pos = pos
            if pos >= n or pos > _COMPACT_AFTER_BYTES:
                self._wipe(buf, pos)
                self._pos = 0

    def _finish_frame(self) -> FrameEvent:
        good = bytes(self._crc) == frame_crc(self._payload)
        apdu = bytes(self._payload) if good else b""
        self._start_hunt()
        if not good:
            return FrameRejected(reason=RejectReason.BAD_CRC)
        if not apdu:
            return FrameRejected(reason=RejectReason.TRUNCATED)
        return FrameReceived(apdu=apdu)

    def _start_frame(self) -> None:
        self._wipe(self._payload)
        self._reject = None
        self._state = _St.BODY

    def _start_hunt(self) -> None:
        self._wipe(self._payload)
        self._crc.clear()
        self._reject = None
        self._state = _St.HUNT

    def _skip(self, reason: RejectReason) -> None:
        self._wipe(self._payload)
        self._reject = reason
        self._state = _St.SKIP

    @staticmethod
    def _wipe(buf: bytearray, upto: int | None = None) -> None:
        # Overwrite before dropping: frames may carry card data.
        n = len(buf) if upto is None else upto
        buf[:n] = bytes(n)
        del buf[:n]
