"""ZVT data fields: BCD numbers, LL/LLL variables, BMP fields and the TLV container.

ZVT ECR interface rev. 13, chapter 9 ("Summary of utilised BMPs") and
chapter 9.4 ("TLV container"). The length rules of the BMP table follow the
Wireshark ZVT dissector (``epan/dissectors/packet-zvt.c``): a fixed size, an
``LLVAR`` (two bytes ``Fx Fy`` giving the payload length in bytes), an
``LLLVAR`` (three such bytes) or the TLV container with BER lengths. As in the
dissector, decoding stops at a BMP it does not know, because the length of an
unknown field cannot be known; :attr:`BmpFields.unknown_bmp` records where.

Card data never leaves this module in the clear. The card number (BMP 22) is
masked to at most the first 6 and last 4 digits while it is parsed; track data,
CVV, PIN offsets and the password (BMPs 23, 24, 2D, 2E, 3A, 3D, A7, D1) are
skipped and only their presence is recorded; free texts and TLV values have any
run of 13 or more digits masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from drivers.zvt.errors import ZvtApduError, ZvtUsageError

# --------------------------------------------------------------------------- BCD


def encode_bcd(value: int, size: int) -> bytes:
    """Encode ``value`` as ``size`` bytes of packed BCD, big-endian (ZVT chapter 9)."""
    if value < 0:
        raise ZvtUsageError("BCD value must not be negative")
    digits = str(value)
    if len(digits) > size * 2:
        raise ZvtUsageError(f"value does not fit in {size} BCD bytes")
    return bytes.fromhex(digits.rjust(size * 2, "0"))


def decode_bcd_digits(data: bytes, *, what: str) -> str:
    """Decode packed BCD to a digit string; a nibble above 9 is a typed error."""
    text = data.hex()
    if not text.isdigit() and text:
        raise ZvtApduError(f"{what}: invalid BCD")
    return text


def decode_bcd(data: bytes, *, what: str) -> int:
    """Decode packed BCD to an ``int`` (empty data is an error)."""
    if not data:
        raise ZvtApduError(f"{what}: empty BCD field")
    return int(decode_bcd_digits(data, what=what))


# ------------------------------------------------------------------ LLVAR/LLLVAR

LLVAR_BYTES_MAX: Final = 99
LLLVAR_BYTES_MAX: Final = 999


def encode_var_length(length: int, digits: int) -> bytes:
    """Encode the length of an LLVAR (2 digits) or LLLVAR (3 digits) as ``Fx`` bytes."""
    if not 0 <= length < 10**digits:
        raise ZvtUsageError(f"variable field too long for {digits} length digits")
    return bytes(0xF0 | int(d) for d in str(length).rjust(digits, "0"))


def decode_var_length(data: bytes, pos: int, digits: int, *, what: str) -> tuple[int, int]:
    """Read an ``Fx Fy [Fz]`` length prefix; returns (length, new position)."""
    if pos + digits > len(data):
        raise ZvtApduError(f"{what}: truncated length prefix")
    length = 0
    for byte in data[pos : pos + digits]:
        if byte & 0xF0 != 0xF0 or byte & 0x0F > 9:
            raise ZvtApduError(f"{what}: bad variable-length prefix")
        length = length * 10 + (byte & 0x0F)
    return length, pos + digits


# ------------------------------------------------------------------- card number

_PAN_DIGITS_MIN_FOR_BIN: Final = 13
_MASK: Final = "*"
# A run of 13..19 digits, optionally grouped by single spaces or dashes: the
# shape of a card number inside free text.
_PAN_IN_TEXT: Final = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
FULL_PAN_RUN: Final = re.compile(r"\d{13,}")


def mask_pan(digits: str) -> str:
    """Mask a card number to at most BIN (first 6) + last 4 digits.

    ``digits`` holds ``0-9`` and ``*`` (digits the terminal already masked).
    Numbers shorter than 13 digits keep only the last 4, so that what remains
    can never identify the card.
    """
    n = len(digits)
    keep_head = 6 if n >= _PAN_DIGITS_MIN_FOR_BIN else 0
    keep_tail = 4 if n > 4 else 0
    out = [ch if (i < keep_head or i >= n - keep_tail) else _MASK for i, ch in enumerate(digits)]
    masked = "".join(out)
    assert not FULL_PAN_RUN.search(masked)
    return masked


def scrub_text(text: str) -> str:
    """Mask anything in free text that looks like a card number (13-19 digits)."""

    def _mask(match: re.Match[str]) -> str:
        raw = match.group(0)
        digits = [c for c in raw if c.isdigit()]
        masked = iter(mask_pan("".join(digits)))
        return "".join(next(masked) if c.isdigit() else c for c in raw)

    text = _PAN_IN_TEXT.sub(_mask, text)
    # Runs longer than any card number escape the pattern above (it must not
    # cut a longer number in two); hide all but their last 4 digits.
    return FULL_PAN_RUN.sub(lambda m: _MASK * (len(m.group(0)) - 4) + m.group(0)[-4:], text)


def decode_pan(payload: bytes) -> str:
    """Decode BMP 22 (card number, BCD, ``E`` = masked digit, ``F`` = padding) and mask it.

    The terminal may send a full PAN; it is masked here, before it reaches any
    event or log line.
    """
    chars: list[str] = []
    nibbles = payload.hex()
    # Padding F may only end the number; strip it, then any other non-digit
    # nibble is a digit we must not show.
    nibbles = nibbles.rstrip("f")
    for nib in nibbles:
        chars.append(nib if nib.isdigit() else _MASK)
    return mask_pan("".join(chars))


def encode_pan(digits: str) -> bytes:
    """Encode a (masked) card number for BMP 22: ``*`` becomes ``E``, odd length pads ``F``."""
    if not digits or any(c not in "0123456789*" for c in digits):
        raise ZvtUsageError("card number must be digits or '*'")
    nibbles = digits.replace("*", "e")
    if len(nibbles) % 2:
        nibbles += "f"
    return bytes.fromhex(nibbles)


# --------------------------------------------------------------------------- TLV

TLV_DEPTH_MAX: Final = 8
TLV_ITEMS_MAX: Final = 1024
_TLV_TAG_BYTES_MAX: Final = 4
_BCD_PAN_BYTES_MAX: Final = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class TlvItem:
    """One BER-TLV data object of the ZVT TLV container (chapter 9.4).

    ``tag`` is the big-endian value of all tag bytes (``1F 07`` is ``0x1F07``).
    A constructed tag has ``children``; a primitive one has ``value``.
    """

    tag: int
    value: bytes = b""
    children: tuple[TlvItem, ...] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 0xFFFFFFFF:
            raise ZvtUsageError("TLV tag out of range")
        if self.children is not None and self.value:
            raise ZvtUsageError("a constructed TLV item has children, not a value")

    def find(self, tag: int) -> TlvItem | None:
        """First child (depth-first) with ``tag``."""
        return find_tlv(self.children or (), tag)


def find_tlv(items: Iterable[TlvItem], tag: int) -> TlvItem | None:
    """Depth-first search for the first item with ``tag``."""
    for item in items:
        if item.tag == tag:
            return item
        if item.children:
            found = find_tlv(item.children, tag)
            if found is not None:
                return found
    return None


def find_all_tlv(items: Iterable[TlvItem], tag: int) -> list[TlvItem]:
    """All items with ``tag``, depth-first, in order."""
    out: list[TlvItem] = []
    for item in items:
        if item.tag == tag:
            out.append(item)
        if item.children:
            out.extend(find_all_tlv(item.children, tag))
    return out


def _tag_bytes(tag: int) -> bytes:
    size = max(1, (tag.bit_length() + 7) // 8)
    return tag.to_bytes(size, "big")


def _is_constructed(tag: int) -> bool:
    return bool(_tag_bytes(tag)[0] & 0x20)


def encode_ber_length(length: int) -> bytes:
    """BER length as ZVT uses it: ``<0x80``, ``81 xx`` or ``82 hi lo``."""
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise ZvtUsageError("TLV length above 65535")


def decode_ber_length(data: bytes, pos: int) -> tuple[int, int]:
    """Read a BER length (short form, ``81``, ``82``); others are a typed error."""
    if pos >= len(data):
        raise ZvtApduError("TLV: truncated length")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count not in (1, 2):
        raise ZvtApduError("TLV: unsupported length form")
    if pos + 1 + count > len(data):
        raise ZvtApduError("TLV: truncated length")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _decode_tag(data: bytes, pos: int) -> tuple[int, int]:
    start = pos
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise ZvtApduError("TLV: truncated tag")
            if pos - start >= _TLV_TAG_BYTES_MAX:
                raise ZvtApduError("TLV: tag too long")
            byte = data[pos]
            pos += 1
            if not byte & 0x80:
                break
    return int.from_bytes(data[start:pos], "big"), pos


def _guard_value(value: bytes) -> bytes:
    """Never keep a card number that hides in a TLV value.

    A short value whose BCD view holds 13+ digits is dropped; digit runs in the
    text view are masked in place.
    """
    if len(value) <= _BCD_PAN_BYTES_MAX and FULL_PAN_RUN.search(value.hex()):
        return b""
    text = value.decode("latin-1")
    if FULL_PAN_RUN.search(text) or _PAN_IN_TEXT.search(text):
        return scrub_text(text).encode("latin-1")
    return value


class _TlvBudget:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items = 0


def _decode_tlv_seq(data: bytes, depth: int, budget: _TlvBudget) -> tuple[TlvItem, ...]:
    if depth > TLV_DEPTH_MAX:
        raise ZvtApduError("TLV: nesting too deep")
    items: list[TlvItem] = []
    pos = 0
    while pos < len(data):
        budget.items += 1
        if budget.items > TLV_ITEMS_MAX:
            raise ZvtApduError("TLV: too many items")
        tag, pos = _decode_tag(data, pos)
        length, pos = decode_ber_length(data, pos)
        if pos + length > len(data):
            raise ZvtApduError("TLV: value runs past its container")
        value = data[pos : pos + length]
        pos += length
        if _is_constructed(tag):
            try:
                children = _decode_tlv_seq(value, depth + 1, budget)
            except ZvtApduError:
                # Some terminals set the constructed bit on opaque values; keep
                # the bytes rather than reject a whole status message.
                items.append(TlvItem(tag=tag, value=_guard_value(value)))
            else:
                items.append(TlvItem(tag=tag, children=children))
        else:
            items.append(TlvItem(tag=tag, value=_guard_value(value)))
    return tuple(items)


def decode_tlv(data: bytes) -> tuple[TlvItem, ...]:
    """Decode a sequence of BER-TLV items (the body of BMP 06), bounded in depth and count."""
    return _decode_tlv_seq(bytes(data), 0, _TlvBudget())


def encode_tlv(items: Iterable[TlvItem]) -> bytes:
    """Encode TLV items (the body of BMP 06, without the total length)."""
    out = bytearray()
    for item in items:
        body = encode_tlv(item.children) if item.children is not None else item.value
        out += _tag_bytes(item.tag) + encode_ber_length(len(body)) + body
    return bytes(out)


def encode_tlv_container(items: Iterable[TlvItem]) -> bytes:
    """BMP 06 with its total length: ``06 <BER length> <items>``."""
    body = encode_tlv(items)
    return bytes([BMP_TLV]) + encode_ber_length(len(body)) + body


# -------------------------------------------------------------------------- BMPs


class FieldKind(Enum):
    """How the length of a BMP field is known."""

    FIXED = "fixed"
    LLVAR = "llvar"
    LLLVAR = "lllvar"
    TLV = "tlv"


@dataclass(frozen=True, slots=True)
class BmpSpec:
    """One row of the BMP table (chapter 9)."""

    name: str
    kind: FieldKind
    size: int = 0
    sensitive: bool = False


BMP_TIMEOUT: Final = 0x01
BMP_MAX_STATUS_INFOS: Final = 0x02
BMP_SERVICE_BYTE: Final = 0x03
BMP_AMOUNT: Final = 0x04
BMP_TLV: Final = 0x06
BMP_TRACE: Final = 0x0B
BMP_TIME: Final = 0x0C
BMP_DATE: Final = 0x0D
BMP_EXPIRY: Final = 0x0E
BMP_PAYMENT_TYPE: Final = 0x19
BMP_PAN: Final = 0x22
BMP_RESULT: Final = 0x27
BMP_TERMINAL_ID: Final = 0x29
BMP_AUTH_ATTRIBUTE: Final = 0x3B
BMP_ADDITIONAL_TEXT: Final = 0x3C
BMP_CURRENCY: Final = 0x49
BMP_TOTALS: Final = 0x60
BMP_RECEIPT: Final = 0x87
BMP_TURNOVER: Final = 0x88
BMP_CARD_TYPE: Final = 0x8A
BMP_CARD_NAME: Final = 0x8B
BMP_CARD_TYPE_ID: Final = 0x8C

_F = FieldKind.FIXED
_LL = FieldKind.LLVAR
_LLL = FieldKind.LLLVAR

BMP_SPECS: Final[dict[int, BmpSpec]] = {
    0x01: BmpSpec("timeout", _F, 1),
    0x02: BmpSpec("max_status_infos", _F, 1),
    0x03: BmpSpec("service_byte", _F, 1),
    0x04: BmpSpec("amount", _F, 6),
    0x05: BmpSpec("pump_no", _F, 1),
    0x06: BmpSpec("tlv", FieldKind.TLV),
    0x0B: BmpSpec("trace_no", _F, 3),
    0x0C: BmpSpec("time", _F, 3),
    0x0D: BmpSpec("date", _F, 2),
    0x0E: BmpSpec("expiry", _F, 2, sensitive=True),
    0x17: BmpSpec("card_sequence_no", _F, 2),
    0x19: BmpSpec("payment_type", _F, 1),
    0x22: BmpSpec("card_number", _LL),
    0x23: BmpSpec("track2", _LL, sensitive=True),
    0x24: BmpSpec("track3", _LLL, sensitive=True),
    0x27: BmpSpec("result_code", _F, 1),
    0x29: BmpSpec("terminal_id", _F, 4),
    0x2A: BmpSpec("vu_number", _F, 15),
    0x2D: BmpSpec("track1", _LL, sensitive=True),
    0x2E: BmpSpec("sync_chip_data", _LLL, sensitive=True),
    0x37: BmpSpec("original_trace_no", _F, 3),
    0x3A: BmpSpec("cvv", _F, 2, sensitive=True),
    0x3B: BmpSpec("auth_attribute", _F, 8),
    0x3C: BmpSpec("additional_text", _LLL),
    0x3D: BmpSpec("password", _F, 3, sensitive=True),
    0x49: BmpSpec("currency", _F, 2),
    0x60: BmpSpec("totals", _LLL),
    0x87: BmpSpec("receipt_no", _F, 2),
    0x88: BmpSpec("turnover_no", _F, 3),
    0x8A: BmpSpec("card_type", _F, 1),
    0x8B: BmpSpec("card_name", _LL),
    0x8C: BmpSpec("card_type_id", _F, 1),
    0x92: BmpSpec("offline_chip_data", _LLL, sensitive=True),
    0x9A: BmpSpec("geldkarte_record", _LLL),
    0xA0: BmpSpec("result_code_as", _F, 1),
    0xA7: BmpSpec("chip_ef_id", _LL, sensitive=True),
    0xAA: BmpSpec("date_yymmdd", _F, 3),
    0xAF: BmpSpec("ef_info", _LLL, sensitive=True),
    0xBA: BmpSpec("aid_parameter", _F, 5),
    0xD0: BmpSpec("algorithm_key", _F, 1),
    0xD1: BmpSpec("card_offset_pin_data", _LL, sensitive=True),
    0xD2: BmpSpec("direction", _F, 1),
    0xD3: BmpSpec("key_position", _F, 1),
    0xE0: BmpSpec("input_min_length", _F, 1),
    **{0xE1 + i: BmpSpec(f"text2_line{i + 1}", _LL) for i in range(8)},
    0xE9: BmpSpec("input_max_length", _F, 1),
    0xEA: BmpSpec("input_echo", _F, 1),
    0xEB: BmpSpec("mac", _F, 8),
    0xF0: BmpSpec("display_duration", _F, 1),
    **{0xF1 + i: BmpSpec(f"text1_line{i + 1}", _LL) for i in range(8)},
    0xF9: BmpSpec("beeps", _F, 1),
    0xFA: BmpSpec("status", _F, 1),
    0xFB: BmpSpec("ok_required", _F, 1),
    0xFC: BmpSpec("dialog_control", _F, 1),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BmpFields:
    """The BMP fields of one APDU, decoded without keeping card data.

    ``values`` holds the raw payload of every ordinary field (without LL/LLL
    prefix); the card number is only in ``masked_pan``; sensitive fields are
    only listed in ``redacted``; ``unknown_bmp`` is the BMP at which decoding
    stopped (the rest of the APDU could not be measured and was dropped).
    """

    values: Mapping[int, bytes] = field(default_factory=dict)
    masked_pan: str | None = None
    tlv: tuple[TlvItem, ...] | None = None
    redacted: frozenset[int] = frozenset()
    unknown_bmp: int | None = None

    def __post_init__(self) -> None:
        assert self.masked_pan is None or not FULL_PAN_RUN.search(self.masked_pan)

    def has(self, bmp: int) -> bool:
        """True if the BMP was present (sensitive ones included)."""
        return (
            bmp in self.values
            or bmp in self.redacted
            or (bmp == BMP_PAN and self.masked_pan is not None)
            or (bmp == BMP_TLV and self.tlv is not None)
        )

    def byte(self, bmp: int) -> int | None:
        """A one-byte binary field."""
        raw = self.values.get(bmp)
        return raw[0] if raw else None

    def bcd(self, bmp: int) -> int | None:
        """A BCD number field (amount, trace, receipt, currency ...)."""
        raw = self.values.get(bmp)
        if raw is None:
            return None
        return decode_bcd(raw, what=BMP_SPECS[bmp].name)

    def digits(self, bmp: int) -> str | None:
        """A BCD field kept as its digit string (terminal id, date, time)."""
        raw = self.values.get(bmp)
        if raw is None:
            return None
        return decode_bcd_digits(raw, what=BMP_SPECS[bmp].name)

    def text(self, bmp: int, encoding: str) -> str | None:
        """A text field, decoded leniently and scrubbed of card numbers."""
        raw = self.values.get(bmp)
        if raw is None:
            return None
        return scrub_text(raw.decode(encoding, errors="replace").replace("\x00", "").strip())


def decode_bmps(data: bytes, pos: int = 0) -> BmpFields:
    """Decode a sequence of BMP fields from ``data[pos:]`` (chapter 9).

    Truncated or malformed known fields and a repeated BMP are a typed
    :class:`ZvtApduError`; an unknown BMP ends decoding (dissector rule).
    """
    values: dict[int, bytes] = {}
    seen: set[int] = set()
    redacted: set[int] = set()
    masked_pan: str | None = None
    tlv: tuple[TlvItem, ...] | None = None
    unknown: int | None = None
    end = len(data)
    while pos < end:
        bmp = data[pos]
        spec = BMP_SPECS.get(bmp)
        if spec is None:
            unknown = bmp
            break
        if bmp in seen:
            raise ZvtApduError(f"BMP {bmp:02X} repeated")
        seen.add(bmp)
        pos += 1
        if spec.kind is FieldKind.FIXED:
            length = spec.size
        elif spec.kind is FieldKind.LLVAR:
            length, pos = decode_var_length(data, pos, 2, what=spec.name)
        elif spec.kind is FieldKind.LLLVAR:
            length, pos = decode_var_length(data, pos, 3, what=spec.name)
        else:
            length, pos = decode_ber_length(data, pos)
        if pos + length > end:
            raise ZvtApduError(f"BMP {bmp:02X} ({spec.name}) truncated")
        payload = data[pos : pos + length]
        pos += length
        if bmp == BMP_PAN:
            masked_pan = decode_pan(payload)
        elif spec.sensitive:
            redacted.add(bmp)
        elif spec.kind is FieldKind.TLV:
            tlv = decode_tlv(payload)
        else:
            values[bmp] = bytes(payload)
    return BmpFields(
        values=values,
        masked_pan=masked_pan,
        tlv=tlv,
        redacted=frozenset(redacted),
        unknown_bmp=unknown,
    )


def encode_bmp(bmp: int, payload: bytes) -> bytes:
    """Encode one BMP field with its tag and, for variable fields, its length prefix.

    For the TLV container pass the encoded items; the BER total length is added.
    """
    spec = BMP_SPECS.get(bmp)
    if spec is None:
        raise ZvtUsageError(f"unknown BMP {bmp:02X}")
    if spec.kind is FieldKind.FIXED:
        if len(payload) != spec.size:
            raise ZvtUsageError(f"BMP {bmp:02X} takes {spec.size} bytes")
        return bytes([bmp]) + payload
    if spec.kind is FieldKind.LLVAR:
        return bytes([bmp]) + encode_var_length(len(payload), 2) + payload
    if spec.kind is FieldKind.LLLVAR:
        return bytes([bmp]) + encode_var_length(len(payload), 3) + payload
    return bytes([bmp]) + encode_ber_length(len(payload)) + payload
