"""BER-TLV data objects, ISO/IEC 7816-4 §5.2.2 (after ISO/IEC 8825-1), sans-I/O.

Theory of operation: :func:`parse_ber_tlv` walks a byte string once, left to
right, and returns the top-level data objects in order. Every length is checked
against the bytes that remain before anything is sliced, so a lying length can
only produce a :class:`TlvError`, never an over-read, a huge allocation or a
hang. Constructed objects are returned whole (their value is again BER-TLV and
can be parsed with another call); the resident record does not nest.

Rules implemented (ISO/IEC 7816-4:2013 §5.2.2):

* Tag field: one byte, or, when bits b5-b1 of the first byte are all 1, more
  bytes each with b8 = 1 except the last. We accept up to ``tag_bytes_max``
  (4) bytes; a subsequent byte of ``80`` (a leading zero in the tag number)
  is malformed (ISO/IEC 8825-1 §8.1.2.4.2).
* Length field: ``00``-``7F`` is the length itself; ``81``-``84`` say that one
  to four bytes follow. ``80`` (indefinite form) and ``85``-``FF`` are not
  allowed in ISO 7816-4 and are rejected.
* ``00`` and ``FF`` bytes before, between and after data objects carry no
  meaning (erased or padded files) and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.pcsc.errors import TlvError

__all__ = ["TAG_BYTES_MAX", "TLV_OBJECTS_MAX", "Tlv", "parse_ber_tlv"]

TAG_BYTES_MAX = 4
"""Longest tag field accepted (ISO 7816-4 itself uses at most three)."""

TLV_OBJECTS_MAX = 64
"""Most top-level data objects accepted in one parse."""

_LENGTH_BYTES_MAX = 4
_PADDING = (0x00, 0xFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tlv:
    """One BER-TLV data object: its tag (all tag bytes, big-endian) and value."""

    tag: int
    value: bytes
    constructed: bool

    def __post_init__(self) -> None:
        if self.tag <= 0:
            raise ValueError("a tag is a positive integer")


def _read_tag(data: bytes, pos: int, tag_bytes_max: int) -> tuple[int, bool, int]:
    first = data[pos]
    constructed = bool(first & 0x20)
    tag = first
    pos += 1
    if first & 0x1F != 0x1F:
        return tag, constructed, pos
    count = 1
    while True:
        if pos >= len(data):
            raise TlvError("tag field runs past the end of the data")
        byte = data[pos]
        if count == 1 and byte == 0x80:
            raise TlvError("tag field has a leading zero subsequent byte")
        tag = (tag << 8) | byte
        pos += 1
        count += 1
        if count > tag_bytes_max:
            raise TlvError(f"tag field longer than {tag_bytes_max} bytes")
        if not byte & 0x80:
            return tag, constructed, pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("length field missing at the end of the data")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    if first == 0x80:
        raise TlvError("indefinite length form is not allowed in ISO 7816-4")
    count = first & 0x7F
    if count > _LENGTH_BYTES_MAX:
        raise TlvError(f"length field of {count} subsequent bytes is not allowed")
    if pos + count > len(data):
        raise TlvError("length field runs past the end of the data")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def parse_ber_tlv(
    data: bytes,
    *,
    objects_max: int = TLV_OBJECTS_MAX,
    tag_bytes_max: int = TAG_BYTES_MAX,
) -> list[Tlv]:
    """Parse the top-level BER-TLV data objects in ``data`` (ISO 7816-4 §5.2.2).

    Raises :class:`TlvError` for a truncated or malformed object, or for more
    than ``objects_max`` objects. Padding bytes ``00``/``FF`` are skipped.
    """
    objects: list[Tlv] = []
    pos = 0
    end = len(data)
    while pos < end:
        if data[pos] in _PADDING:
            pos += 1
            continue
        if len(objects) >= objects_max:
            raise TlvError(f"more than {objects_max} data objects")
        tag, constructed, pos = _read_tag(data, pos, tag_bytes_max)
        length, pos = _read_length(data, pos)
        if length > end - pos:
            raise TlvError(f"value of {length} bytes runs past the end of the data")
        objects.append(Tlv(tag=tag, value=bytes(data[pos : pos + length]), constructed=constructed))
        pos += length
    return objects
