"""Find the line on which each key of a TOML document is set.

:mod:`tomllib` gives values but no positions, and a technician needs
``local.toml:12: journal.offline_payments_max: ...``. This scanner walks the
document's structure (TOML v1.0.0, https://toml.io/en/v1.0.0) just far enough to
see keys: table headers (``[a.b]``, section "Table"), arrays of tables
(``[[a]]``, section "Array of Tables"), dotted and quoted keys (section "Keys"),
and inline tables (section "Inline Table"). Values are skipped, not decoded,
except that strings and arrays are walked so a ``key = 1`` inside a multi-line
string or a ``]`` inside a quoted string is not mistaken for structure.

Theory of operation: run :func:`tomllib.loads` first; only a document it accepts
is scanned, so the scanner may assume valid TOML. It still never loops forever
and never recurses without bound on odd input: every step consumes input or
raises :class:`TomlScanError`, and nesting is capped at ``NESTING_DEPTH_MAX``.

Keys are tuples of their parts (a quoted key may itself contain a dot). A leaf
is a key whose value is not a table; arrays, including arrays of tables, are
leaves as a whole. Keys inside an array of tables are not reported, because they
name elements of a list, not settings.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

Key = tuple[str, ...]

NESTING_DEPTH_MAX = 64
"""Deepest nesting of arrays and inline tables the scanner follows."""

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}#\n\r")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


class TomlScanError(ValueError):
    """The document is not TOML the scanner understands (callers run tomllib first)."""


@dataclass(frozen=True, slots=True)
class KeyLines:
    """Where each key of a document is written (1-based line numbers)."""

    leaves: dict[Key, int] = field(default_factory=dict)
    """Keys with a non-table value → line of the key."""

    tables: dict[Key, int] = field(default_factory=dict)
    """Tables → line of their header, or of the first key that creates them."""

    def line_of(self, key: Key) -> int | None:
        """Line of ``key``; for a key not written, of the nearest enclosing table."""
        if key in self.leaves:
            return self.leaves[key]
        for end in range(len(key), 0, -1):
            line = self.tables.get(key[:end])
            if line is not None:
                return line
        return None


def scan_key_lines(text: str) -> KeyLines:
    """Map every key of ``text`` (a valid TOML document) to the line it is set on."""
    return _Scanner(text).scan()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.result = KeyLines()
        self.arrays_of_tables: set[Key] = set()

    # -- positions --------------------------------------------------------

    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def eof(self) -> bool:
        return self.pos >= len(self.text)

    def expect(self, literal: str) -> None:
        if not self.text.startswith(literal, self.pos):
            raise TomlScanError(f"expected {literal!r} at line {self.line_at(self.pos)}")
        self.pos += len(literal)

    def skip_blanks(self) -> None:
        """Spaces and tabs only."""
        while self.peek() in (" ", "\t") and not self.eof():
            self.pos += 1

    def skip_comment(self) -> None:
        if self.peek() == "#":
            end = self.text.find("\n", self.pos)
            self.pos = len(self.text) if end < 0 else end

    def skip_blanks_comments_newlines(self) -> None:
        while not self.eof():
            start = self.pos
            self.skip_blanks()
            self.skip_comment()
            if self.peek() == "\n":
                self.pos += 1
            elif self.peek(2) == "\r\n":
                self.pos += 2
            if self.pos == start:
                return

    # -- recording --------------------------------------------------------

    def in_array_of_tables(self, key: Key) -> bool:
        return any(key[:end] in self.arrays_of_tables for end in range(1, len(key) + 1))

    def record_table(self, key: Key, line: int) -> None:
        if self.in_array_of_tables(key):
            return
        for end in range(1, len(key) + 1):
            self.result.tables.setdefault(key[:end], line)

    def record_leaf(self, key: Key, line: int) -> None:
        if self.in_array_of_tables(key):
            return
        self.record_table(key[:-1], line)
        self.result.leaves[key] = line

    # -- document ---------------------------------------------------------

    def scan(self) -> KeyLines:
        current: Key = ()
        while True:
            self.skip_blanks_comments_newlines()
            if self.eof():
                return self.result
            line = self.line_at(self.pos)
            if self.peek(2) == "[[":
                self.pos += 2
                self.skip_blanks()
                current = self.read_key()
                self.skip_blanks()
                self.expect("]]")
                if not self.in_array_of_tables(current):
                    self.record_leaf(current, line)
                    self.arrays_of_tables.add(current)
            elif self.peek() == "[":
                self.pos += 1
                self.skip_blanks()
                current = self.read_key()
                self.skip_blanks()
                self.expect("]")
                self.record_table(current, line)
            else:
                self.key_value(current, depth=0)
            self.skip_blanks()
            self.skip_comment()
            if not (self.eof() or self.peek() == "\n" or self.peek(2) == "\r\n"):
                raise TomlScanError(f"expected end of line at line {self.line_at(self.pos)}")

    def key_value(self, table: Key, depth: int) -> None:
        """``key = value``; records the key (and everything inside an inline table)."""
        line = self.line_at(self.pos)
        key = table + self.read_key()
        self.skip_blanks()
        self.expect("=")
        self.skip_blanks()
        if self.peek() == "{":
            self.record_table(key, line)
            self.inline_table(key, depth + 1)
        else:
            self.record_leaf(key, line)
            self.skip_value(depth + 1)

    # -- keys -------------------------------------------------------------

    def read_key(self) -> Key:
        parts = [self.read_simple_key()]
        while True:
            save = self.pos
            self.skip_blanks()
            if self.peek() != ".":
                self.pos = save
                return tuple(parts)
            self.pos += 1
            self.skip_blanks()
            parts.append(self.read_simple_key())

    def read_simple_key(self) -> str:
        ch = self.peek()
        if ch == '"':
            return self.read_basic_string()
        if ch == "'":
            self.pos += 1
            end = self.text.find("'", self.pos)
            if end < 0:
                raise TomlScanError("unterminated literal key")
            value = self.text[self.pos : end]
            self.pos = end + 1
            return value
        start = self.pos
        while not self.eof() and self.text[self.pos] in _BARE_KEY_CHARS:
            self.pos += 1
        if self.pos == start:
            raise TomlScanError(f"expected a key at line {self.line_at(self.pos)}")
        return self.text[start : self.pos]

    def read_basic_string(self) -> str:
        """A one-line ``"..."`` string, decoded (keys must compare equal to tomllib's)."""
        self.expect('"')
        out: list[str] = []
        while True:
            if self.eof() or self.peek() == "\n":
                raise TomlScanError("unterminated string")
            ch = self.text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                esc = self.text[self.pos + 1 : self.pos + 2]
                if esc in _ESCAPES:
                    out.append(_ESCAPES[esc])
                    self.pos += 2
                elif esc in ("u", "U"):
                    width = 4 if esc == "u" else 8
                    digits = self.text[self.pos + 2 : self.pos + 2 + width]
                    try:
                        out.append(chr(int(digits, 16)))
                    except ValueError:
                        raise TomlScanError("bad unicode escape") from None
                    self.pos += 2 + width
                else:
                    raise TomlScanError("bad escape")
            else:
                out.append(ch)
                self.pos += 1

    # -- values -----------------------------------------------------------

    def inline_table(self, table: Key, depth: int) -> None:
        if depth > NESTING_DEPTH_MAX:
            raise TomlScanError("nested too deeply")
        self.expect("{")
        self.skip_blanks()
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            self.skip_blanks()
            self.key_value(table, depth)
            self.skip_blanks()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("}")
            return

    def skip_value(self, depth: int) -> None:
        if depth > NESTING_DEPTH_MAX:
            raise TomlScanError("nested too deeply")
        start = self.pos
        if self.text.startswith('"""', self.pos):
            self.skip_multiline_string('"""', escapes=True)
        elif self.text.startswith("'''", self.pos):
            self.skip_multiline_string("'''", escapes=False)
        elif self.peek() == '"':
            self.read_basic_string()
        elif self.peek() == "'":
            end = self.text.find("'", self.pos + 1)
            if end < 0:
                raise TomlScanError("unterminated literal string")
            self.pos = end + 1
        elif self.peek() == "[":
            self.skip_array(depth)
        elif self.peek() == "{":
            # An inline table inside an array: part of a leaf, nothing to record.
            self.skip_inline_table_in_array(depth)
        else:
            while not self.eof() and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1
        if self.pos == start:
            raise TomlScanError(f"expected a value at line {self.line_at(self.pos)}")

    def skip_multiline_string(self, delimiter: str, *, escapes: bool) -> None:
        self.pos += 3
        while True:
            if self.eof():
                raise TomlScanError("unterminated multi-line string")
            ch = self.text[self.pos]
            if escapes and ch == "\\":
                self.pos += 2
            elif self.text.startswith(delimiter, self.pos):
                # Up to two quotes may sit just before the closing delimiter
                # (`""""" ` is two quotes of content, then the end).
                run = 3
                while run < 5 and self.text[self.pos + run : self.pos + run + 1] == delimiter[0]:
                    run += 1
                self.pos += run
                return
            else:
                self.pos += 1

    def skip_array(self, depth: int) -> None:
        self.expect("[")
        while True:
            self.skip_blanks_comments_newlines()
            if self.peek() == "]":
                self.pos += 1
                return
            self.skip_value(depth + 1)
            self.skip_blanks_comments_newlines()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("]")
            return

    def skip_inline_table_in_array(self, depth: int) -> None:
        saved = self.result
        saved_arrays = self.arrays_of_tables
        # Keys of an inline table inside an array belong to a list element;
        # scan them into a scratch result that is thrown away.
        self.result = KeyLines()
        self.arrays_of_tables = set()
        try:
            self.inline_table((), depth + 1)
        finally:
            self.result = saved
            self.arrays_of_tables = saved_arrays
