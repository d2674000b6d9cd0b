"""Command and response APDUs, ISO/IEC 7816-4 (sans-I/O: bytes in, values out).

Theory of operation: a :class:`CommandApdu` is a frozen value that knows its
ISO 7816-4 §5.1 case (1: header only, 2: expects data, 3: carries data, 4: both)
and encodes itself in the *short* form only (Lc 1..255, Le 1..256 with 256 sent
as ``00``), because the resident card profile never needs extended lengths and
many contactless readers reject them. :func:`parse_response` splits an R-APDU
into data and the status word SW1-SW2 and refuses anything that cannot be one.
:func:`classify_status` maps a status word onto the handful of outcomes the
session state machine (``session.py``) acts on; :data:`STATUS_WORDS` names the
common ones for logs.

This module imports no pyscard: the transport (``reader.py``) moves the bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.pcsc.errors import CardProtocolError

__all__ = [
    "RESPONSE_BYTES_MAX",
    "SHORT_DATA_BYTES_MAX",
    "SHORT_LE_MAX",
    "STATUS_WORDS",
    "SW_OK",
    "CommandApdu",
    "ResponseApdu",
    "StatusKind",
    "classify_status",
    "describe_status",
    "get_response",
    "get_uid",
    "parse_response",
    "read_binary",
    "select_aid",
    "select_ef",
]

SHORT_DATA_BYTES_MAX = 255
"""Largest command data field in a short APDU (ISO 7816-4 §5.1, Lc on one byte)."""

SHORT_LE_MAX = 256
"""Largest Le in a short APDU; encoded as ``00`` (ISO 7816-4 §5.1)."""

RESPONSE_BYTES_MAX = SHORT_LE_MAX + 2
"""Largest short R-APDU: 256 data bytes and SW1-SW2."""

SW_OK = 0x9000

READ_BINARY_OFFSET_MAX = 0x7FFF
"""READ BINARY with P1 b8 = 0 carries a 15-bit offset in P1-P2 (ISO 7816-4 §11.2.3)."""

# ISO/IEC 7816-4:2013 §5.6, tables 5 and 6 (plus the GET DATA answers of PC/SC
# part 3 §3.2.2.1.3). Only for naming status words in logs and messages; the
# decisions are made by classify_status() and the session's tables.
STATUS_WORDS: dict[int, str] = {
    0x9000: "normal processing",
    0x6200: "warning: no information given, non-volatile memory unchanged",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file reached before reading Le bytes",
    0x6283: "warning: selected file deactivated",
    0x6300: "warning: non-volatile memory changed, no information",
    0x6400: "execution error: non-volatile memory unchanged",
    0x6581: "execution error: memory failure",
    0x6700: "wrong length",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6900: "command not allowed",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6A80: "incorrect parameters in the data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A86: "incorrect parameters P1-P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1-P2 (offset outside the EF)",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


class StatusKind(enum.Enum):
    """What a status word means for the next step (ISO 7816-4 §5.6)."""

    OK = "ok"
    """9000."""
    MORE_DATA = "more_data"
    """61xx: xx more bytes wait for GET RESPONSE (xx = 00 means 256)."""
    WRONG_LE = "wrong_le"
    """6Cxx: resend the same command with Le = xx (00 means 256)."""
    WARNING = "warning"
    """62xx, 63xx: processed with a warning; data may be present."""
    ERROR = "error"
    """64xx-6Fxx other than 6Cxx: not processed."""
    INVALID = "invalid"
    """Not a status word ISO 7816-4 allows (SW1 outside 61-6F and 90)."""


def classify_status(sw: int) -> StatusKind:
    """Classify a status word (ISO 7816-4 §5.6): SW1 is 61-6F or 90."""
    sw1 = sw >> 8
    if sw == SW_OK:
        return StatusKind.OK
    if sw1 == 0x61:
        return StatusKind.MORE_DATA
    if sw1 == 0x6C:
        return StatusKind.WRONG_LE
    if sw1 in (0x62, 0x63):
        return StatusKind.WARNING
    if 0x64 <= sw1 <= 0x6F:
        return StatusKind.ERROR
    # 90xx other than 9000 is proprietary; 60xx and anything outside 6X/9X is
    # not a status word at all. Neither is something a resident card sends.
    return StatusKind.INVALID


def describe_status(sw: int) -> str:
    """A short English name for ``sw``, for logs: ``"6A82 file or application not found"``."""
    if (sw >> 8) == 0x61:
        name = f"{sw & 0xFF or 256} more bytes available"
    elif (sw >> 8) == 0x6C:
        name = f"wrong Le, exact length is {sw & 0xFF or 256}"
    else:
        name = STATUS_WORDS.get(sw) or STATUS_WORDS.get(sw & 0xFF00, "unknown status word")
    return f"{sw:04X} {name}"


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be a byte, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandApdu:
    """A short command APDU (ISO/IEC 7816-4 §5.1).

    ``le`` is the number of response bytes expected (1..256), or ``None`` when
    no response data is expected. ``data`` empty means no command data field.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _check_byte(name, getattr(self, name))
        if len(self.data) > SHORT_DATA_BYTES_MAX:
            raise ValueError(f"short APDU data is at most {SHORT_DATA_BYTES_MAX} bytes")
        if self.le is not None and not 1 <= self.le <= SHORT_LE_MAX:
            raise ValueError(f"short APDU Le must be 1..{SHORT_LE_MAX}, got {self.le}")

    @property
    def case(self) -> int:
        """ISO 7816-4 §5.1 case: 1 (no data, no Le), 2 (Le), 3 (data), 4 (both)."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    def with_le(self, le: int) -> CommandApdu:
        """The same command with another Le (the 6Cxx resend, ISO 7816-4 §5.6)."""
        return CommandApdu(
            cla=self.cla, ins=self.ins, p1=self.p1, p2=self.p2, data=self.data, le=le
        )

    def to_bytes(self) -> bytes:
        """Encode in the short form of ISO 7816-4 §5.1 (Le 256 is sent as ``00``)."""
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out.append(len(self.data))
            out += self.data
        if self.le is not None:
            out.append(self.le & 0xFF)
        return bytes(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseApdu:
    """A response APDU: the data field and the trailer SW1-SW2 (ISO 7816-4 §5.1)."""

    data: bytes
    sw1: int
    sw2: int

    def __post_init__(self) -> None:
        _check_byte("sw1", self.sw1)
        _check_byte("sw2", self.sw2)
        if len(self.data) > SHORT_LE_MAX:
            raise ValueError(f"short R-APDU data is at most {SHORT_LE_MAX} bytes")

    @property
    def sw(self) -> int:
        """The status word as one integer, SW1 << 8 | SW2."""
        return (self.sw1 << 8) | self.sw2

    @property
    def kind(self) -> StatusKind:
        """What the status word means (see :func:`classify_status`)."""
        return classify_status(self.sw)


def parse_response(raw: bytes) -> ResponseApdu:
    """Split an R-APDU into data and SW1-SW2 (ISO 7816-4 §5.1).

    Raises :class:`CardProtocolError` for anything shorter than a status word,
    longer than a short response, or whose trailer is not a status word.
    """
    if len(raw) < 2:
        raise CardProtocolError(f"response of {len(raw)} bytes has no status word")
    if len(raw) > RESPONSE_BYTES_MAX:
        raise CardProtocolError(f"response of {len(raw)} bytes exceeds {RESPONSE_BYTES_MAX}")
    response = ResponseApdu(data=bytes(raw[:-2]), sw1=raw[-2], sw2=raw[-1])
    if response.kind is StatusKind.INVALID:
        raise CardProtocolError(f"trailer {response.sw:04X} is not a status word", sw=response.sw)
    return response


# --- The commands the resident card profile uses -----------------------------


def get_uid() -> CommandApdu:
    """GET DATA for the contactless UID: ``FF CA 00 00 00`` (PC/SC part 3 §3.2.2.1.3)."""
    return CommandApdu(cla=0xFF, ins=0xCA, p1=0x00, p2=0x00, le=SHORT_LE_MAX)


def select_aid(aid: bytes) -> CommandApdu:
    """SELECT by DF name (AID), first occurrence, return FCI (ISO 7816-4 §11.2.2).

    P1 = 04 (select by DF name), P2 = 00; Le = 256 because a card may answer
    with an FCI template, which the session reads and ignores.
    """
    if not 5 <= len(aid) <= 16:
        raise ValueError("an AID is 5 to 16 bytes (ISO 7816-4 §8.2.1.2)")
    return CommandApdu(cla=0x00, ins=0xA4, p1=0x04, p2=0x00, data=aid, le=SHORT_LE_MAX)


def select_ef(fid: bytes) -> CommandApdu:
    """SELECT an EF under the current DF by file identifier, no response data.

    P1 = 02 (select EF under the current DF), P2 = 0C (no FCI returned), a case
    3 command (ISO 7816-4 §11.2.2, table 39 and 40).
    """
    if len(fid) != 2:
        raise ValueError("a file identifier is 2 bytes (ISO 7816-4 §7.1.1)")
    return CommandApdu(cla=0x00, ins=0xA4, p1=0x02, p2=0x0C, data=fid)


def read_binary(offset: int, le: int) -> CommandApdu:
    """READ BINARY of the current EF at a 15-bit ``offset`` (ISO 7816-4 §11.2.3)."""
    if not 0 <= offset <= READ_BINARY_OFFSET_MAX:
        raise ValueError(f"READ BINARY offset must be 0..{READ_BINARY_OFFSET_MAX}")
    return CommandApdu(cla=0x00, ins=0xB0, p1=offset >> 8, p2=offset & 0xFF, le=le)


def get_response(le: int) -> CommandApdu:
    """GET RESPONSE for ``le`` bytes after a 61xx (ISO 7816-4 §11.4.2)."""
    return CommandApdu(cla=0x00, ins=0xC0, p1=0x00, p2=0x00, le=le)
