"""A small QR Code encoder and matrix reader (ISO/IEC 18004:2015), byte mode only.

Why our own: the printer draws its own QR from GS ( k, but the kiosk's on-screen
receipt and the PNG renderer must draw the same symbol, and the project keeps its
dependencies few. The encoder follows the standard's steps:

1. data encoding in byte mode (clause 7.4.5) with the character-count indicator
   of 8 bits for versions 1-9 and 16 bits for 10-40 (table 3), terminator and pad
   codewords ``EC 11`` (7.4.9, 7.4.10);
2. Reed-Solomon error correction over GF(2^8) with the polynomial ``0x11D``
   (7.5), in the block structure of table 9, codewords interleaved (7.6);
3. module placement (7.7): finder, separator, timing, alignment patterns
   (annex E), format information (7.9, BCH(15,5), mask ``0x5412``) and version
   information for versions 7+ (7.10, BCH(18,6));
4. data masking (7.8): the eight masks of table 10, scored with the penalty
   rules N1-N4 of table 11, the lowest score wins.

:func:`read_matrix` undoes all that for matrices drawn by us (no image
processing): it checks the format and version information, unmasks, checks each
block's Reed-Solomon syndromes and parses byte-mode segments. Tests use it to
show that what the renderer draws is a valid symbol holding the right bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import QrCapacityError, QrDecodeError

__all__ = ["ErrorLevel", "QrMatrix", "encode_qr", "read_matrix"]


class ErrorLevel(enum.Enum):
    """Error correction level (7.5.1); the value is the ESC/POS GS ( k fn 169 byte."""

    L = 48
    M = 49
    Q = 50
    H = 51

    @property
    def format_bits(self) -> int:
        """The two level bits of the format information (table 12)."""
        return {ErrorLevel.L: 1, ErrorLevel.M: 0, ErrorLevel.Q: 3, ErrorLevel.H: 2}[self]

    @property
    def ordinal(self) -> int:
        return {ErrorLevel.L: 0, ErrorLevel.M: 1, ErrorLevel.Q: 2, ErrorLevel.H: 3}[self]


# Table 9: error correction codewords per block and number of blocks, indexed
# [level ordinal][version]; index 0 is unused.
_ECC_PER_BLOCK = (
    (-1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
     28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
    (-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
     26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28),
    (-1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30,
     28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
    (-1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28,
     30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
)  # fmt: skip
_NUM_BLOCKS = (
    (-1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8,
     8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25),
    (-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
     17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49),
    (-1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20,
     23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68),
    (-1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25,
     25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81),
)  # fmt: skip

VERSION_MIN = 1
VERSION_MAX = 40
_FORMAT_MASK = 0x5412
_FORMAT_POLY = 0x537
_VERSION_POLY = 0x1F25

# GF(2^8) with the primitive polynomial x^8 + x^4 + x^3 + x^2 + 1 (7.5.2).
_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _rs_generator(degree: int) -> list[int]:
    """Coefficients (highest power first, leading 1 dropped) of prod (x - a^i)."""
    poly = [1]
    for i in range(degree):
        nxt = [0] * (len(poly) + 1)
        for j, coef in enumerate(poly):
            nxt[j] ^= coef
            nxt[j + 1] ^= _gf_mul(coef, _EXP[i])
        poly = nxt
    return poly[1:]


def _rs_remainder(data: Sequence[int], degree: int) -> list[int]:
    gen = _rs_generator(degree)
    rem = [0] * degree
    for byte in data:
        factor = byte ^ rem[0]
        rem = [*rem[1:], 0]
        for j, coef in enumerate(gen):
            rem[j] ^= _gf_mul(coef, factor)
    return rem


def _raw_data_modules(version: int) -> int:
    """Modules left for data and EC after the function patterns (7.7)."""
    result = (16 * version + 128) * version + 64
    if version >= 2:
        num_align = version // 7 + 2
        result -= (25 * num_align - 10) * num_align - 55
        if version >= 7:
            result -= 36
    return result


def _data_codewords(version: int, level: ErrorLevel) -> int:
    lv = level.ordinal
    return _raw_data_modules(version) // 8 - _ECC_PER_BLOCK[lv][version] * _NUM_BLOCKS[lv][version]


def _alignment_positions(version: int) -> list[int]:
    """Row/column centres of the alignment patterns (annex E, table E.1)."""
    if version == 1:
        return []
    num_align = version // 7 + 2
    step = (version * 8 + num_align * 3 + 5) // (num_align * 4 - 4) * 2
    size = version * 4 + 17
    positions = [size - 7 - i * step for i in range(num_align - 1)]
    return [6, *reversed(positions)]


def _format_bits(level: ErrorLevel, mask: int) -> int:
    data = level.format_bits << 3 | mask
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * _FORMAT_POLY)
    return (data << 10 | rem) ^ _FORMAT_MASK


def _version_bits(version: int) -> int:
    rem = version
    for _ in range(12):
        rem = (rem << 1) ^ ((rem >> 11) * _VERSION_POLY)
    return version << 12 | rem


_MASKS: tuple[Callable[[int, int], bool], ...] = (
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class QrMatrix:
    """A finished symbol: ``rows[y][x]`` is 1 for a dark module. No quiet zone."""

    version: int
    level: ErrorLevel
    mask: int
    rows: tuple[bytes, ...]

    def __post_init__(self) -> None:
        assert VERSION_MIN <= self.version <= VERSION_MAX
        assert 0 <= self.mask <= 7
        assert len(self.rows) == self.size
        assert all(len(r) == self.size and set(r) <= {0, 1} for r in self.rows)

    @property
    def size(self) -> int:
        return self.version * 4 + 17


class _Grid:
    """Modules under construction plus which of them are function patterns."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.size = version * 4 + 17
        self.dark = [[False] * self.size for _ in range(self.size)]
        self.function = [[False] * self.size for _ in range(self.size)]
        self._draw_function_patterns()

    def set_function(self, x: int, y: int, dark: bool) -> None:
        self.dark[y][x] = dark
        self.function[y][x] = True

    def _draw_function_patterns(self) -> None:
        size = self.size
        for i in range(size):
            self.set_function(6, i, i % 2 == 0)
            self.set_function(i, 6, i % 2 == 0)
        for cx, cy in ((3, 3), (size - 4, 3), (3, size - 4)):
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    x, y = cx + dx, cy + dy
                    if 0 <= x < size and 0 <= y < size:
                        dist = max(abs(dx), abs(dy))
                        self.set_function(x, y, dist not in (2, 4))
        align = _alignment_positions(self.version)
        last = len(align) - 1
        for i, ax in enumerate(align):
            for j, ay in enumerate(align):
                if (i, j) in ((0, 0), (0, last), (last, 0)):
                    continue
                for dy in range(-2, 3):
                    for dx in range(-2, 3):
                        self.set_function(ax + dx, ay + dy, max(abs(dx), abs(dy)) != 1)
        # Reserve the format areas now (drawn for real once the mask is known).
        self.draw_format(0)
        if self.version >= 7:
            bits = _version_bits(self.version)
            for i in range(18):
                bit = (bits >> i) & 1 == 1
                a, b = size - 11 + i % 3, i // 3
                self.set_function(a, b, bit)
                self.set_function(b, a, bit)

    def draw_format(self, bits: int) -> None:
        size = self.size

        def bit(i: int) -> bool:
            return (bits >> i) & 1 == 1

        for i in range(6):
            self.set_function(8, i, bit(i))
        self.set_function(8, 7, bit(6))
        self.set_function(8, 8, bit(7))
        self.set_function(7, 8, bit(8))
        for i in range(9, 15):
            self.set_function(14 - i, 8, bit(i))
        for i in range(8):
            self.set_function(size - 1 - i, 8, bit(i))
        for i in range(8, 15):
            self.set_function(8, size - 15 + i, bit(i))
        self.set_function(8, size - 8, True)

    def data_positions(self) -> list[tuple[int, int]]:
        """Non-function module positions in placement order (7.7.3)."""
        out: list[tuple[int, int]] = []
        size = self.size
        right = size - 1
        while right >= 1:
            if right == 6:
                right = 5
            upward = (right + 1) & 2 == 0
            for vert in range(size):
                y = size - 1 - vert if upward else vert
                for j in (0, 1):
                    x = right - j
                    if not self.function[y][x]:
                        out.append((x, y))
            right -= 2
        return out


def _penalty(dark: list[list[bool]]) -> int:
    """Penalty score of table 11 (N1=3, N2=3, N3=40, N4=10)."""
    size = len(dark)
    score = 0
    lines = [list(row) for row in dark] + [[dark[y][x] for y in range(size)] for x in range(size)]
    finder_a = [True, False, True, True, True, False, True, False, False, False, False]
    finder_b = list(reversed(finder_a))
    for line in lines:
        run = 1
        for i in range(1, size + 1):
            if i < size and line[i] == line[i - 1]:
                run += 1
                continue
            if run >= 5:
                score += 3 + (run - 5)
            run = 1
        # N3: a 1:1:3:1:1 pattern with four light modules on one side; the
        # quiet zone outside the symbol counts as light.
        padded = [False] * 4 + line + [False] * 4
        for i in range(len(padded) - 10):
            window = padded[i : i + 11]
            if window in (finder_a, finder_b):
                score += 40
    for y in range(size - 1):
        for x in range(size - 1):
            c = dark[y][x]
            if c == dark[y][x + 1] == dark[y + 1][x] == dark[y + 1][x + 1]:
                score += 3
    total = size * size
    darks = sum(row.count(True) for row in dark)
    k = (abs(darks * 20 - total * 10) + total - 1) // total - 1
    return score + max(k, 0) * 10


def _codewords(data: bytes, version: int, level: ErrorLevel) -> list[int]:
    capacity = _data_codewords(version, level)
    count_bits = 8 if version <= 9 else 16
    bits: list[int] = []

    def put(value: int, n: int) -> None:
        bits.extend((value >> i) & 1 for i in range(n - 1, -1, -1))

    put(0b0100, 4)
    put(len(data), count_bits)
    for byte in data:
        put(byte, 8)
    assert len(bits) <= capacity * 8
    put(0, min(4, capacity * 8 - len(bits)))
    put(0, -len(bits) % 8)
    words = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)]
    pad = 0xEC
    while len(words) < capacity:
        words.append(pad)
        pad ^= 0xEC ^ 0x11
    # Split into blocks (table 9): short blocks first, long ones have one more
    # data codeword; then interleave data, then EC codewords (7.6).
    lv = level.ordinal
    num_blocks = _NUM_BLOCKS[lv][version]
    ecc_len = _ECC_PER_BLOCK[lv][version]
    raw = _raw_data_modules(version) // 8
    short_len = raw // num_blocks - ecc_len
    num_long = raw % num_blocks
    blocks: list[list[int]] = []
    pos = 0
    for b in range(num_blocks):
        n = short_len + (1 if b >= num_blocks - num_long else 0)
        blocks.append(words[pos : pos + n])
        pos += n
    assert pos == capacity
    ecs = [_rs_remainder(block, ecc_len) for block in blocks]
    out: list[int] = []
    for i in range(short_len + 1):
        out.extend(block[i] for block in blocks if i < len(block))
    for i in range(ecc_len):
        out.extend(ec[i] for ec in ecs)
    assert len(out) == raw
    return out


def capacity_bytes(version: int, level: ErrorLevel) -> int:
    """How many bytes a byte-mode symbol of ``version`` and ``level`` holds."""
    count_bits = 8 if version <= 9 else 16
    return (_data_codewords(version, level) * 8 - 4 - count_bits) // 8


def encode_qr(
    data: bytes,
    level: ErrorLevel = ErrorLevel.M,
    *,
    version_min: int = VERSION_MIN,
    version_max: int = VERSION_MAX,
    mask: int | None = None,
) -> QrMatrix:
    """Encode ``data`` in byte mode in the smallest version that holds it.

    Raises :class:`QrCapacityError` if no version up to ``version_max`` does.
    ``mask`` forces a mask pattern (0-7); by default the lowest penalty wins.
    """
    assert VERSION_MIN <= version_min <= version_max <= VERSION_MAX
    assert mask is None or 0 <= mask <= 7
    for version in range(version_min, version_max + 1):
        if len(data) <= capacity_bytes(version, level):
            break
    else:
        raise QrCapacityError(
            f"{len(data)} bytes do not fit a version {version_max} QR symbol at level {level.name}"
        )
    grid = _Grid(version)
    words = _codewords(data, version, level)
    positions = grid.data_positions()
    for i, (x, y) in enumerate(positions):
        grid.dark[y][x] = i < len(words) * 8 and (words[i >> 3] >> (7 - (i & 7))) & 1 == 1
    best: tuple[int, int, list[list[bool]]] | None = None
    for candidate in range(8) if mask is None else (mask,):
        fn = _MASKS[candidate]
        trial = [row[:] for row in grid.dark]
        for x, y in positions:
            if fn(x, y):
                trial[y][x] = not trial[y][x]
        saved = grid.dark
        grid.dark = trial
        grid.draw_format(_format_bits(level, candidate))
        grid.dark = saved
        score = _penalty(trial) if mask is None else 0
        if best is None or score < best[0]:
            best = (score, candidate, trial)
    assert best is not None
    _, chosen, dark = best
    rows = tuple(bytes(int(c) for c in row) for row in dark)
    return QrMatrix(version=version, level=level, mask=chosen, rows=rows)


def _read_format(rows: Sequence[Sequence[int]]) -> tuple[ErrorLevel, int]:
    size = len(rows)

    def at(x: int, y: int) -> int:
        return 1 if rows[y][x] else 0

    first = [at(8, i) for i in range(6)] + [at(8, 7), at(8, 8), at(7, 8)]
    first += [at(14 - i, 8) for i in range(9, 15)]
    second = [at(size - 1 - i, 8) for i in range(8)] + [at(8, size - 15 + i) for i in range(8, 15)]
    best: tuple[int, ErrorLevel, int] | None = None
    for copy in (first, second):
        word = sum(bit << i for i, bit in enumerate(copy))
        for level in ErrorLevel:
            for mask in range(8):
                distance = bin(word ^ _format_bits(level, mask)).count("1")
                if best is None or distance < best[0]:
                    best = (distance, level, mask)
    assert best is not None
    # BCH(15,5) corrects up to 3 bit errors (7.9.2); beyond that it is not a symbol.
    if best[0] > 3:
        raise QrDecodeError("format information does not decode")
    return best[1], best[2]


def read_matrix(rows: Sequence[Sequence[int]]) -> bytes:
    """Read the bytes from a QR matrix (``rows[y][x]`` truthy = dark, no quiet zone).

    Raises :class:`QrDecodeError` if the size, format information, version
    information or any block's Reed-Solomon check is wrong, or a segment is not
    byte mode.
    """
    size = len(rows)
    if size < 21 or (size - 17) % 4 or any(len(r) != size for r in rows):
        raise QrDecodeError(f"a {size}-row matrix is not a QR symbol size")
    version = (size - 17) // 4
    if version > VERSION_MAX:
        raise QrDecodeError("version out of range")
    level, mask = _read_format(rows)
    grid = _Grid(version)
    if version >= 7:
        word = 0
        for i in range(18):
            word |= (1 if rows[i // 3][size - 11 + i % 3] else 0) << i
        if word != _version_bits(version):
            raise QrDecodeError("version information does not match the symbol size")
    fn = _MASKS[mask]
    bits = [(1 if rows[y][x] else 0) ^ (1 if fn(x, y) else 0) for x, y in grid.data_positions()]
    raw = _raw_data_modules(version) // 8
    words = [int("".join(map(str, bits[i * 8 : i * 8 + 8])), 2) for i in range(raw)]
    lv = level.ordinal
    num_blocks = _NUM_BLOCKS[lv][version]
    ecc_len = _ECC_PER_BLOCK[lv][version]
    short_len = raw // num_blocks - ecc_len
    num_long = raw % num_blocks
    lengths = [short_len + (1 if b >= num_blocks - num_long else 0) for b in range(num_blocks)]
    blocks: list[list[int]] = [[] for _ in range(num_blocks)]
    pos = 0
    for i in range(short_len + 1):
        for b in range(num_blocks):
            if i < lengths[b]:
                blocks[b].append(words[pos])
                pos += 1
    ecs: list[list[int]] = [[] for _ in range(num_blocks)]
    for _ in range(ecc_len):
        for b in range(num_blocks):
            ecs[b].append(words[pos])
            pos += 1
    data: list[int] = []
    for block, ec in zip(blocks, ecs, strict=True):
        if _rs_remainder(block, ecc_len) != ec:
            raise QrDecodeError("Reed-Solomon check failed")
        data.extend(block)
    stream = "".join(f"{w:08b}" for w in data)
    out = bytearray()
    pos = 0
    count_bits = 8 if version <= 9 else 16
    while pos + 4 <= len(stream):
        mode = int(stream[pos : pos + 4], 2)
        pos += 4
        if mode == 0:
            break
        if mode != 0b0100:
            raise QrDecodeError(f"segment mode {mode:04b} is not byte mode")
        if pos + count_bits > len(stream):
            raise QrDecodeError("truncated character count")
        count = int(stream[pos : pos + count_bits], 2)
        pos += count_bits
        if pos + 8 * count > len(stream):
            raise QrDecodeError("segment longer than the symbol")
        for _ in range(count):
            out.append(int(stream[pos : pos + 8], 2))
            pos += 8
    return bytes(out)
