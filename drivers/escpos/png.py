"""Monochrome PNG writing and reading with the standard library (RFC 2083 / PNG 1.2).

We write 1-bit greyscale images (IHDR colour type 0, bit depth 1), one IDAT
chunk, filter type 0 on every row; that is the whole of what a thermal receipt
needs, and it keeps the files small. :func:`read_png` reads back exactly that
form (any filter type 0 image with one or more IDAT chunks), so tests can check
what was drawn; anything else is a :class:`PngError`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from .errors import EscPosError

__all__ = ["PNG_SIGNATURE", "PngError", "read_png", "write_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PIXELS_MAX = 64 * 1024 * 1024


class PngError(EscPosError):
    """A PNG that is not the 1-bit greyscale form this module writes."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def write_png(width: int, rows: Sequence[bytes | bytearray]) -> bytes:
    """Encode ``rows`` (one byte per pixel, non-zero = black ink) as a PNG."""
    height = len(rows)
    assert width >= 1
    assert height >= 1
    assert width * height <= PNG_PIXELS_MAX
    raw = bytearray()
    # In greyscale 0 is black; ink pixels become 0 bits, paper 1 bits.
    ink_to_bit = bytes.maketrans(bytes(range(256)), b"1" + b"0" * 255)
    pad = (-width) % 8
    for row in rows:
        assert len(row) == width
        bits = bytes(row).translate(ink_to_bit) + b"1" * pad
        raw.append(0)
        raw += int(bits, 2).to_bytes(len(bits) // 8, "big")
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode a PNG written by :func:`write_png`: ``(width, height, rows)``, 1 = ink."""
    if not data.startswith(PNG_SIGNATURE):
        raise PngError("not a PNG signature")
    pos = len(PNG_SIGNATURE)
    header: tuple[int, ...] | None = None
    idat = bytearray()
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise PngError("truncated chunk")
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise PngError(f"bad CRC in {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise PngError("no IHDR")
    width, height, depth, colour, _, _, interlace = header
    if (depth, colour, interlace) != (1, 0, 0) or width * height > PNG_PIXELS_MAX:
        raise PngError("not a 1-bit greyscale, non-interlaced image")
    try:
        raw = zlib.decompress(bytes(idat))
    except zlib.error as exc:
        raise PngError(f"bad image data: {exc}") from None
    stride = (width + 7) // 8
    if len(raw) != height * (stride + 1):
        raise PngError("image data has the wrong length")
    rows = []
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        if line[0] != 0:
            raise PngError("only filter type 0 is supported")
        bits = format(int.from_bytes(line[1:], "big"), f"0{stride * 8}b")[:width]
        rows.append(bits.translate(str.maketrans("01", "\x01\x00")).encode("latin-1"))
    return width, height, rows
