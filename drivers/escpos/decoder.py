"""A sans-I/O ESC/POS decoder: bytes in, printed elements and requests out.

Theory of operation (after h11's ``receive_data()`` / ``next_event()``): the
caller feeds whatever bytes arrived with :meth:`EscPosDecoder.receive_data` and
calls :meth:`EscPosDecoder.next_event` until it returns :data:`NEED_DATA`. Each
command is parsed only when all its bytes are there; a partial command stays in
the buffer untouched (rollback) and is parsed again when more bytes arrive.

The decoder models the printer's line buffer: characters collect in the current
line in the style set when the line started; LF prints the line as a
:class:`~drivers.escpos.document.TextLine`; a character that does not fit the
paper width prints the line first (the printer's automatic wrap). QR functions
collect model, module size, level and data; fn 181 prints a
:class:`~drivers.escpos.document.QrCode`. ``DLE EOT n`` gives a
:class:`StatusRequested` at once -- real printers answer it even while offline.

Commands this package does not model but printers accept (underline, fonts,
line spacing, drawer kick, raster images, barcodes, ...) are skipped by their
parameter lengths from the command reference and reported as :class:`Ignored`,
so nothing passes silently. A command the decoder does not know, or a parameter
out of its range, raises :class:`~drivers.escpos.errors.EscPosDecodeError` after
its bytes are consumed, so the caller can record the fault and go on. Every
buffer is bounded: a line by the paper width, QR data by 7089 bytes, the
incomplete command by its length limit; a GS ( payload over the limit is skipped
as it streams in, never stored.

Characters inside a line keep the style the line started with; a style change in
mid-line applies from the next line. That is enough for receipts, which this
package writes one style per line.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from .document import (
    CODE_PAGES,
    PLAIN,
    QR_DATA_BYTES_MAX,
    Align,
    Cut,
    Element,
    Feed,
    QrCode,
    Style,
    TextLine,
)
from .errors import EscPosDecodeError, ReceiptError
from .qr import ErrorLevel

__all__ = [
    "NEED_DATA",
    "CodePageSelected",
    "EscPosDecoder",
    "Event",
    "Ignored",
    "Initialized",
    "StatusRequested",
]

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C
LF, CR, HT = 0x0A, 0x0D, 0x09
TAB_CHARS = 8
GS_PAREN_BYTES_MAX = 65535
VARIABLE_PARAM_BYTES_MAX = 255
RASTER_BYTES_MAX = 1 << 20


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = _NeedData.NEED_DATA


@dataclass(frozen=True, slots=True, kw_only=True)
class Initialized:
    """ESC @: buffer cleared, modes reset."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CodePageSelected:
    """ESC t n."""

    page: int

    def __post_init__(self) -> None:
        assert 0 <= self.page <= 255


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRequested:
    """DLE EOT n: the host waits for one status byte."""

    request: int

    def __post_init__(self) -> None:
        assert 1 <= self.request <= 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored:
    """A well-formed command the decoder skips (its first bytes, for the record)."""

    command: bytes


Event = Initialized | CodePageSelected | StatusRequested | Ignored | Element

# Commands skipped by fixed parameter count: ESC x -> count, GS x -> count, FS x -> count.
_ESC_FIXED = {
    0x20: 1,  # ESC SP n right-side character spacing
    0x24: 2,  # ESC $ absolute print position
    0x25: 1,  # ESC % user-defined character set
    0x2D: 1,  # ESC - underline
    0x32: 0,  # ESC 2 default line spacing
    0x33: 1,  # ESC 3 line spacing
    0x3C: 0,  # ESC < return home
    0x3D: 1,  # ESC = select peripheral device
    0x3F: 1,  # ESC ? cancel user-defined character
    0x47: 1,  # ESC G double-strike
    0x4A: 1,  # ESC J print and feed n dots
    0x4B: 1,  # ESC K print and reverse feed n dots
    0x4C: 0,  # ESC L page mode
    0x4D: 1,  # ESC M character font
    0x52: 1,  # ESC R international character set
    0x53: 0,  # ESC S standard mode
    0x54: 1,  # ESC T print direction in page mode
    0x55: 1,  # ESC U unidirectional printing
    0x56: 1,  # ESC V 90-degree rotation
    0x57: 8,  # ESC W print area in page mode
    0x5C: 2,  # ESC \ relative print position
    0x63: 2,  # ESC c 3/4/5 n paper sensors, panel buttons
    0x65: 1,  # ESC e print and reverse feed n lines
    0x70: 3,  # ESC p m t1 t2 generate pulse (drawer kick)
    0x72: 1,  # ESC r print colour
    0x75: 1,  # ESC u transmit peripheral status
    0x76: 0,  # ESC v transmit paper sensor status
    0x7B: 1,  # ESC { upside-down
}
_GS_FIXED = {
    0x24: 2,  # GS $ absolute vertical position
    0x2F: 1,  # GS / print downloaded bit image
    0x3A: 0,  # GS : start/end macro definition
    0x42: 1,  # GS B white/black reverse
    0x48: 1,  # GS H HRI position
    0x49: 1,  # GS I transmit printer ID
    0x4C: 2,  # GS L left margin
    0x50: 2,  # GS P motion units
    0x54: 1,  # GS T set print position to line start
    0x57: 2,  # GS W print area width
    0x5C: 2,  # GS \ relative vertical position
    0x5E: 3,  # GS ^ execute macro
    0x61: 1,  # GS a automatic status back
    0x62: 1,  # GS b smoothing
    0x66: 1,  # GS f HRI font
    0x68: 1,  # GS h bar code height
    0x72: 1,  # GS r transmit status
    0x77: 1,  # GS w bar code width
}
_FS_FIXED = {
    0x21: 1,  # FS ! Kanji print mode
    0x26: 0,  # FS & Kanji mode on
    0x2D: 1,  # FS - Kanji underline
    0x2E: 0,  # FS . Kanji mode off
    0x43: 1,  # FS C Kanji code system
    0x53: 2,  # FS S Kanji spacing
    0x57: 1,  # FS W Kanji quadruple size
    0x70: 2,  # FS p n m print NV bit image
}


class EscPosDecoder:
    """Decode a host's ESC/POS stream (see the module docstring).

    ``width_chars`` is the paper width in font-A characters, used for the
    automatic wrap; ``code_page`` is the table in force after ESC @.
    """

    def __init__(self, *, width_chars: int = 42, code_page: int = 0) -> None:
        assert 16 <= width_chars <= 64
        self.width_chars = width_chars
        self._default_page = code_page
        self._buf = bytearray()
        self._skip_bytes = 0
        self._events: deque[Event] = deque()
        self._reset_modes()

    def _reset_modes(self) -> None:
        self.code_page = self._default_page
        self._bold = False
        self._width = 1
        self._height = 1
        self._align = Align.LEFT
        self._line: list[str] = []
        self._line_style = PLAIN
        self._qr_size = 3
        self._qr_level = ErrorLevel.L
        self._qr_data: bytes | None = None

    @property
    def style(self) -> Style:
        """The style the next line will start with."""
        return Style(bold=self._bold, width=self._width, height=self._height, align=self._align)

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet parsed (an incomplete command)."""
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the host."""
        if self._skip_bytes:
            skipped = min(self._skip_bytes, len(data))
            self._skip_bytes -= skipped
            data = data[skipped:]
        self._buf += data

    def next_event(self) -> Event | _NeedData:
        """The next event, or :data:`NEED_DATA` when the buffer holds no whole command.

        Raises :class:`EscPosDecodeError` for a bad command; its bytes are consumed.
        """
        while not self._events:
            if not self._buf:
                return NEED_DATA
            consumed = self._parse()
            if consumed is None:
                return NEED_DATA
        return self._events.popleft()

    # -- parsing ---------------------------------------------------------------

    def _take(self, n: int) -> int:
        del self._buf[:n]
        return n

    def _fail(self, n: int, message: str) -> EscPosDecodeError:
        head = bytes(self._buf[: min(n, 8)]).hex(" ")
        self._take(n)
        return EscPosDecodeError(f"{message} (bytes {head})")

    def _ignored(self, n: int) -> int:
        self._events.append(Ignored(command=bytes(self._buf[: min(n, 8)])))
        return self._take(n)

    def _parse(self) -> int | None:
        b = self._buf[0]
        if b == LF:
            self._print_line()
            return self._take(1)
        if b == CR:
            # Automatic line feed is off by default: CR is ignored (reference, "CR").
            return self._take(1)
        if b == HT:
            column = len(self._line)
            target = (column // TAB_CHARS + 1) * TAB_CHARS
            if target <= self.width_chars // self._line_style.width:
                for _ in range(target - column):
                    self._add_char(" ")
            return self._take(1)
        if b == ESC:
            return self._parse_esc()
        if b == GS:
            return self._parse_gs()
        if b == DLE:
            return self._parse_dle()
        if b == FS:
            return self._parse_fs()
        if b < 0x20:
            return self._ignored(1)
        self._add_char(self._decode_char(b))
        return self._take(1)

    def _decode_char(self, b: int) -> str:
        codec = CODE_PAGES.get(self.code_page, "cp437")
        ch = bytes((b,)).decode(codec, errors="replace")
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            # Control pictures in the table (cp437 0x7F) print as glyphs; we
            # record them as "?" so a document never holds a control character.
            return "?"
        return ch

    def _add_char(self, ch: str) -> None:
        if not self._line:
            self._line_style = self.style
        if len(self._line) + 1 > self.width_chars // self._line_style.width:
            self._print_line()
            self._line_style = self.style
        self._line.append(ch)

    def _print_line(self) -> None:
        text = "".join(self._line)
        style = self._line_style if text else PLAIN
        self._events.append(TextLine(text=text, style=style))
        self._line = []

    def _flush_pending(self) -> None:
        if self._line:
            self._print_line()

    def _parse_esc(self) -> int | None:
        if len(self._buf) < 2:
            return None
        cmd = self._buf[1]
        if cmd == 0x40:  # ESC @
            self._reset_modes()
            self._events.append(Initialized())
            return self._take(2)
        if cmd == 0x44:  # ESC D n1..nk NUL: horizontal tab positions
            end = self._buf.find(0, 2, 2 + 33)
            if end < 0:
                if len(self._buf) >= 2 + 33:
                    raise self._fail(2 + 33, "ESC D without NUL within 32 positions")
                return None
            return self._ignored(end + 1)
        if cmd == 0x2A:  # ESC * m nL nH d1..dk: bit image
            if len(self._buf) < 5:
                return None
            m, n = self._buf[2], self._buf[3] | self._buf[4] << 8
            if m not in (0, 1, 32, 33):
                raise self._fail(5, f"ESC * mode {m}")
            return self._skip_param_bytes(5, n * (3 if m >= 32 else 1))
        if cmd == 0x26:  # ESC & y c1 c2 [x d1..d(y*x)]...: user-defined characters
            raise self._fail(2, "ESC & user-defined characters are not supported")
        if cmd in (0x69, 0x6D):  # ESC i / ESC m: partial cut (obsolete forms)
            self._flush_pending()
            self._events.append(Cut(partial=True))
            return self._take(2)
        if cmd == 0x42:  # ESC B n t: beeper
            return self._fixed(4)
        params = {0x21: 1, 0x45: 1, 0x61: 1, 0x64: 1, 0x74: 1}.get(cmd)
        if params is None:
            fixed = _ESC_FIXED.get(cmd)
            if fixed is None:
                raise self._fail(2, f"unknown command ESC 0x{cmd:02X}")
            if cmd in (0x4A, 0x4B, 0x65) and len(self._buf) >= 2 + fixed:
                self._flush_pending()
            return self._fixed(2 + fixed)
        if len(self._buf) < 3:
            return None
        n = self._buf[2]
        if cmd == 0x21:  # ESC ! n: print mode
            self._bold = bool(n & 0x08)
            self._height = 2 if n & 0x10 else 1
            self._width = 2 if n & 0x20 else 1
        elif cmd == 0x45:  # ESC E n
            self._bold = bool(n & 1)
        elif cmd == 0x61:  # ESC a n
            if n not in (0, 1, 2, 48, 49, 50):
                raise self._fail(3, f"ESC a {n} is out of range")
            self._align = Align(n % 48)
        elif cmd == 0x64:  # ESC d n: print buffer and feed n lines
            if self._line:
                self._print_line()
                n -= 1
            if n > 0:
                self._events.append(Feed(lines=n))
        else:  # ESC t n
            self.code_page = n
            self._events.append(CodePageSelected(page=n))
        return self._take(3)

    def _fixed(self, total: int) -> int | None:
        if len(self._buf) < total:
            return None
        return self._ignored(total)

    def _skip_param_bytes(self, header: int, count: int) -> int | None:
        """Skip a command with ``count`` data bytes after ``header`` bytes."""
        if count > RASTER_BYTES_MAX:
            raise self._fail(header, f"command data of {count} bytes is over the limit")
        if len(self._buf) < header + count:
            return None
        return self._ignored(header + count)

    def _parse_gs(self) -> int | None:
        if len(self._buf) < 2:
            return None
        cmd = self._buf[1]
        if cmd == 0x28:  # GS ( fn pL pH payload
            return self._parse_gs_paren()
        if cmd == 0x21:  # GS ! n
            if len(self._buf) < 3:
                return None
            n = self._buf[2]
            if n & 0x88:
                raise self._fail(3, f"GS ! 0x{n:02X} has reserved bits set")
            self._width = (n >> 4) + 1
            self._height = (n & 7) + 1
            return self._take(3)
        if cmd == 0x56:  # GS V m [n]
            if len(self._buf) < 3:
                return None
            m = self._buf[2]
            if m in (0, 1, 48, 49):
                total = 3
            elif m in (65, 66, 97, 98, 103, 104):
                total = 4
                if len(self._buf) < total:
                    return None
            else:
                raise self._fail(3, f"GS V {m} is out of range")
            self._flush_pending()
            self._events.append(Cut(partial=m in (1, 49, 66, 98, 104)))
            return self._take(total)
        if cmd == 0x76:  # GS v 0 m xL xH yL yH d...: raster bit image
            if len(self._buf) < 8:
                return None
            x = self._buf[4] | self._buf[5] << 8
            y = self._buf[6] | self._buf[7] << 8
            if self._buf[2] != 0x30 or self._buf[3] not in (0, 1, 2, 3, 48, 49, 50, 51):
                raise self._fail(8, "GS v with a bad function or mode")
            self._flush_pending()
            return self._skip_param_bytes(8, x * y)
        if cmd == 0x6B:  # GS k m ...: bar code
            if len(self._buf) < 3:
                return None
            m = self._buf[2]
            if m <= 6:  # function A: NUL-terminated data
                end = self._buf.find(0, 3, 3 + VARIABLE_PARAM_BYTES_MAX + 1)
                if end < 0:
                    if len(self._buf) > 3 + VARIABLE_PARAM_BYTES_MAX:
                        raise self._fail(3, "GS k data without NUL")
                    return None
                return self._ignored(end + 1)
            if 65 <= m <= 79:  # function B: length byte
                if len(self._buf) < 4:
                    return None
                return self._skip_param_bytes(4, self._buf[3])
            raise self._fail(3, f"GS k bar code system {m}")
        if cmd == 0x67:  # GS g 0/2 m nL nH: maintenance counters
            return self._fixed(6)
        fixed = _GS_FIXED.get(cmd)
        if fixed is None:
            raise self._fail(2, f"unknown command GS 0x{cmd:02X}")
        return self._fixed(2 + fixed)

    def _parse_gs_paren(self) -> int | None:
        if len(self._buf) < 5:
            return None
        fn, length = self._buf[2], self._buf[3] | self._buf[4] << 8
        if fn != 0x6B:
            # Every GS ( x command has the same pL pH framing: skip it whole.
            return self._skip_param_bytes(5, length)
        if length > QR_DATA_BYTES_MAX + 3:
            # Over the store limit: drop the header now and the payload as it
            # streams in, so an oversize command never fills memory.
            have = len(self._buf) - 5
            skip_now = min(have, length)
            self._skip_bytes = length - skip_now
            err = self._fail(5, f"GS ( k of {length} bytes is over the limit")
            del self._buf[:skip_now]
            raise err
        if len(self._buf) < 5 + length:
            return None
        payload = bytes(self._buf[5 : 5 + length])
        total = 5 + length
        if length < 2:
            raise self._fail(total, "GS ( k without cn and fn")
        cn, qfn, args = payload[0], payload[1], payload[2:]
        if cn != 0x31:
            # PDF417 (cn 48), MaxiCode (50), 2-D GS1 DataBar (51), ...: not modelled.
            return self._ignored(total)
        if qfn == 0x41:  # fn 165: select model
            if len(args) != 2 or args[0] not in (49, 50, 51):
                raise self._fail(total, "QR fn 165 with bad parameters")
        elif qfn == 0x43:  # fn 167: module size
            if len(args) != 1 or not 1 <= args[0] <= 16:
                raise self._fail(total, "QR fn 167 with bad module size")
            self._qr_size = args[0]
        elif qfn == 0x45:  # fn 169: error correction level
            if len(args) != 1 or args[0] not in (48, 49, 50, 51):
                raise self._fail(total, "QR fn 169 with bad level")
            self._qr_level = ErrorLevel(args[0])
        elif qfn == 0x50:  # fn 180: store data
            if len(args) < 2 or args[0] != 0x30:
                raise self._fail(total, "QR fn 180 without data")
            self._qr_data = bytes(args[1:])
        elif qfn == 0x51:  # fn 181: print the stored symbol
            if len(args) != 1 or args[0] != 0x30:
                raise self._fail(total, "QR fn 181 with bad parameters")
            if self._qr_data is None:
                raise self._fail(total, "QR fn 181 with no data stored")
            self._flush_pending()
            try:
                qr = QrCode(
                    data=self._qr_data,
                    module_size=self._qr_size,
                    level=self._qr_level,
                    align=self._align,
                )
            except ReceiptError as exc:
                raise self._fail(total, str(exc)) from None
            self._events.append(qr)
        elif qfn == 0x52:  # fn 182: transmit size information
            pass
        else:
            raise self._fail(total, f"QR function 0x{qfn:02X}")
        return self._ignored(total) if qfn == 0x52 else self._take(total)

    def _parse_dle(self) -> int | None:
        if len(self._buf) < 3:
            return None
        cmd, n = self._buf[1], self._buf[2]
        if cmd == 0x04:  # DLE EOT n
            if 1 <= n <= 4:
                self._events.append(StatusRequested(request=n))
                return self._take(3)
            if n in (7, 8, 18):  # DLE EOT n a: ink, peeler, interface status
                return self._fixed(4)
            raise self._fail(3, f"DLE EOT {n} is out of range")
        if cmd == 0x05:  # DLE ENQ n: real-time request
            return self._ignored(3)
        if cmd == 0x14:  # DLE DC4 fn a b: real-time pulse, power-off, buffer clear
            return self._fixed(5)
        raise self._fail(2, f"unknown command DLE 0x{cmd:02X}")

    def _parse_fs(self) -> int | None:
        if len(self._buf) < 2:
            return None
        cmd = self._buf[1]
        fixed = _FS_FIXED.get(cmd)
        if fixed is None:
            raise self._fail(2, f"unknown command FS 0x{cmd:02X}")
        return self._fixed(2 + fixed)
