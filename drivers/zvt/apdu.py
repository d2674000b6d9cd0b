"""ZVT APDUs: control field, length, data (ZVT ECR interface rev. 13, chapter 1.2).

An APDU is ``CLASS INSTR LEN DATA``. ``LEN`` is one byte for 0..254 data bytes;
the value ``FF`` announces the extended form ``FF lo hi`` (little-endian, up to
65535 data bytes), as the Wireshark dissector reads it (``tvb_get_letohs``).
Acknowledgements are APDUs too: ``80 00 00`` (positive) and ``84 xx 00``
(negative, ``xx`` the error code).

:class:`ApduStream` cuts a byte stream into APDUs for the TCP/IP transport,
where APDUs travel without DLE/CRC framing; it keeps a partial APDU until the
rest arrives (wsproto-style buffering) and bounds the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from drivers.zvt.errors import ZvtApduError, ZvtFrameError, ZvtUsageError


class _NeedData:
    """Sentinel type for :data:`NEED_DATA` (h11 style)."""

    _instance: _NeedData | None = None

    def __new__(cls) -> _NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

APDU_HEADER_BYTES: Final = 3
APDU_EXT_HEADER_BYTES: Final = 5
APDU_DATA_BYTES_MAX: Final = 0xFFFF
_EXT_MARK: Final = 0xFF


@dataclass(frozen=True, slots=True, kw_only=True)
class Apdu:
    """One APDU. ``data`` is excluded from ``repr`` because it may hold card data."""

    cls: int
    instr: int
    data: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not (0 <= self.cls <= 0xFF and 0 <= self.instr <= 0xFF):
            raise ZvtUsageError("APDU control bytes must be 0..255")
        if len(self.data) > APDU_DATA_BYTES_MAX:
            raise ZvtUsageError("APDU data longer than 65535 bytes")

    @property
    def control(self) -> int:
        """The control field as one number, e.g. ``0x0601``."""
        return (self.cls << 8) | self.instr

    def __str__(self) -> str:
        return f"APDU {self.cls:02X} {self.instr:02X} len={len(self.data)}"


def encode_apdu(apdu: Apdu) -> bytes:
    """Serialise an APDU, choosing the short or the extended length form."""
    n = len(apdu.data)
    if n < _EXT_MARK:
        header = bytes((apdu.cls, apdu.instr, n))
    else:
        header = bytes((apdu.cls, apdu.instr, _EXT_MARK, n & 0xFF, n >> 8))
    return header + apdu.data


def apdu_total_length(buf: bytes | bytearray | memoryview) -> int | None:
    """Total length of the APDU at the start of ``buf``, or None if the header is incomplete."""
    if len(buf) < APDU_HEADER_BYTES:
        return None
    length = buf[2]
    if length != _EXT_MARK:
        return APDU_HEADER_BYTES + length
    if len(buf) < APDU_EXT_HEADER_BYTES:
        return None
    return APDU_EXT_HEADER_BYTES + (buf[3] | (buf[4] << 8))


def decode_apdu(raw: bytes | bytearray | memoryview) -> Apdu:
    """Parse exactly one APDU; wrong or inconsistent lengths are a typed error."""
    total = apdu_total_length(raw)
    if total is None:
        raise ZvtApduError("APDU shorter than its header")
    if total != len(raw):
        raise ZvtApduError(f"APDU length field says {total} bytes, got {len(raw)}")
    start = APDU_EXT_HEADER_BYTES if raw[2] == _EXT_MARK else APDU_HEADER_BYTES
    return Apdu(cls=raw[0], instr=raw[1], data=bytes(raw[start:]))


class ApduStream:
    """Split a TCP byte stream into APDUs (ZVT TCP/IP transport).

    ``receive_data`` appends bytes; ``next_apdu`` returns one APDU or
    :data:`NEED_DATA`. An APDU announcing more than ``apdu_bytes_max`` bytes is a
    :class:`ZvtFrameError`: a stream cannot be resynchronised after that, so the
    caller must close the connection.
    """

    def __init__(self, *, apdu_bytes_max: int = 16_389) -> None:
        if apdu_bytes_max < APDU_EXT_HEADER_BYTES:
            raise ZvtUsageError("apdu_bytes_max too small")
        self.apdu_bytes_max = apdu_bytes_max
        self._buf = bytearray()

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as an APDU."""
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the socket."""
        self._buf += data

    def next_apdu(self) -> Apdu | _NeedData:
        """The next complete APDU, or NEED_DATA."""
        total = apdu_total_length(self._buf)
        if total is None:
            return NEED_DATA
        if total > self.apdu_bytes_max:
            self.clear()
            raise ZvtFrameError(f"APDU of {total} bytes exceeds apdu_bytes_max")
        if len(self._buf) < total:
            return NEED_DATA
        apdu = decode_apdu(bytes(self._buf[:total]))
        self._consume(total)
        return apdu

    def clear(self) -> None:
        """Drop everything buffered (the bytes are overwritten first)."""
        self._consume(len(self._buf))

    def _consume(self, n: int) -> None:
        # Overwrite before dropping: the buffer may have held card data.
        self._buf[:n] = bytes(n)
        del self._buf[:n]
