"""The TOML key-line scanner, checked against tomllib on generated documents."""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_config.tomlscan import (
    NESTING_DEPTH_MAX,
    Key,
    TomlScanError,
    scan_key_lines,
)

# -- generated values (TOML text, always valid) ------------------------------


def _basic_string(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_TRICKY_TEXT = st.text(
    alphabet=st.sampled_from([*list("ab =.#[]{},'\"\\\n\t"), "й", "€", "\x01"]),
    max_size=12,
)
_LITERAL_SAFE = st.text(alphabet=st.sampled_from([*list('ab =.#[]{},"\\\t'), "ё"]), max_size=10)

_ML_BASIC_FRAGMENTS = [
    *["\n", "a = 1", "[t]", '"', '""', "#", "x", "'''", "{", "}"],
    # Escapes: an escaped backslash, a line-ending backslash, escaped quotes
    # (the last one right before two plain quotes, so "\"""" is not an end).
    *["\\\\", "\\\n  ", '\\"', '\\"""'],
]
_ML_LITERAL_FRAGMENTS = ["\n", "k = 2", "[[t]]", "'", "''", "#", "\\", "x", '"""', "]"]


def _no_run(text: str, quote: str) -> str:
    """Break every run of three unescaped quotes, which would end the string early."""
    out: list[str] = []
    run = 0
    i = 0
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            out.append(text[i : i + 2])  # an escape pair is never part of a delimiter
            i += 2
            run = 0
            continue
        if text[i] == quote:
            if run == 2:
                out.append("x")
                run = 0
            run += 1
        else:
            run = 0
        out.append(text[i])
        i += 1
    return "".join(out)


_scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.sampled_from(["+1_000", "0xDEAD_beef", "0o17", "0b1010", "-0"]),
    st.sampled_from(["1.5", "-0.0", "inf", "-nan", "6.626e-34", "1_000.5"]),
    st.sampled_from(["true", "false"]),
    st.sampled_from(
        [
            "1979-05-27T07:32:00Z",
            "1979-05-27 07:32:00",
            "1979-05-27",
            "07:32:00.5",
            "1979-05-27T00:32:00-07:00",
        ]
    ),
    _TRICKY_TEXT.map(_basic_string),
    _LITERAL_SAFE.map(lambda s: f"'{s}'"),
    st.lists(st.sampled_from(_ML_BASIC_FRAGMENTS), max_size=8).map(
        lambda parts: '"""' + _no_run("".join(parts), '"') + '"""'
    ),
    st.lists(st.sampled_from(_ML_LITERAL_FRAGMENTS), max_size=8).map(
        lambda parts: "'''" + _no_run("".join(parts), "'") + "'''"
    ),
)


def _array(elements: list[str], multiline: bool, comment: bool, trailing: bool) -> str:
    if not multiline:
        return "[" + ", ".join(elements) + "]"
    sep = ' # ] , " = [x]\n' if comment else "\n"
    body = ("," + sep).join(elements) + ("," if trailing and elements else "")
    return "[\n" + body + "\n]"


def _inline_table_in_array(values: list[str]) -> str:
    return "{" + ", ".join(f'"k{i}.x" = {v}' for i, v in enumerate(values)) + "}"


_values = st.recursive(
    _scalars,
    lambda inner: st.builds(
        _array,
        st.lists(
            st.one_of(inner, st.lists(inner, max_size=3).map(_inline_table_in_array)), max_size=4
        ),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    max_leaves=6,
)

_bare_keys = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True)
_keys = st.one_of(
    _bare_keys, _TRICKY_TEXT.filter(bool), st.sampled_from(["a.b", "#", "=", "[x]", " "])
)


@dataclass
class Leaf:
    value: str


Tree = dict[str, Any]  # str -> Leaf | Tree

_trees = st.recursive(
    st.builds(Leaf, _values),
    lambda inner: st.dictionaries(_keys, inner, max_size=4),
    max_leaves=14,
)
_documents = st.dictionaries(_keys, _trees, max_size=6)


# -- rendering with known key lines -------------------------------------------


@dataclass
class Rendered:
    parts: list[str] = field(default_factory=list)
    line: int = 1
    leaves: dict[Key, int] = field(default_factory=dict)
    header_tables: dict[Key, int] = field(default_factory=dict)

    def emit(self, text: str) -> None:
        self.parts.append(text)
        self.line += text.count("\n")

    def text(self) -> str:
        return "".join(self.parts)


class Renderer:
    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw
        self.out = Rendered()

    def key_text(self, name: str) -> str:
        if _is_bare(name) and self.draw(st.booleans()):
            return name
        if "'" not in name and "\n" not in name and name.isprintable() and self.draw(st.booleans()):
            return f"'{name}'"
        return _basic_string(name)

    def dotted(self, names: Key) -> str:
        sep: str = self.draw(st.sampled_from([".", " . ", ".\t"]))
        return sep.join(self.key_text(n) for n in names)

    def filler(self) -> None:
        for _ in range(self.draw(st.integers(0, 2))):
            self.out.emit(
                self.draw(st.sampled_from(["\n", "# comment [x] a = 1\n", "   \n", "\t# ]\n"]))
            )

    def eol(self) -> None:
        self.out.emit(self.draw(st.sampled_from(["\n", "  # trailing = 1\n", "\t\n"])))

    def section(self, path: Key, node: Tree) -> None:
        later: list[tuple[str, Tree]] = []
        for name, child in node.items():
            if isinstance(child, Leaf):
                self.filler()
                self.key_value((name,), path, child)
                continue
            style = self.draw(st.sampled_from(["header", "dotted", "inline"]))
            if style == "header":
                later.append((name, child))
            elif style == "dotted" and child:
                self.dotted_children(path, (name,), child)
            else:
                self.filler()
                self.out.emit(self.dotted((name,)) + " = ")
                self.inline((*path, name), child)
                self.eol()
        for name, child in later:
            self.filler()
            self.out.header_tables[(*path, name)] = self.out.line
            self.out.emit(
                "[" + self.draw(st.sampled_from(["", " "])) + self.dotted((*path, name)) + "]"
            )
            self.eol()
            self.section((*path, name), child)

    def key_value(self, rel: Key, path: Key, leaf: Leaf) -> None:
        self.out.leaves[path + rel] = self.out.line
        self.out.emit(
            self.dotted(rel) + self.draw(st.sampled_from([" = ", "=", " =\t"])) + leaf.value
        )
        self.eol()

    def dotted_children(self, path: Key, rel: Key, node: Tree) -> None:
        for name, child in node.items():
            if isinstance(child, Leaf):
                self.filler()
                self.key_value((*rel, name), path, child)
            elif child and self.draw(st.booleans()):
                self.dotted_children(path, (*rel, name), child)
            else:
                self.filler()
                self.out.emit(self.dotted((*rel, name)) + " = ")
                self.inline(path + rel + (name,), child)
                self.eol()

    def inline(self, path: Key, node: Tree) -> None:
        self.out.emit("{")
        for index, (name, child) in enumerate(node.items()):
            if index:
                self.out.emit(", ")
            self.inline_member(path, (name,), child)
        self.out.emit("}")

    def inline_member(self, path: Key, rel: Key, child: Leaf | Tree) -> None:
        if isinstance(child, Leaf):
            self.out.leaves[path + rel] = self.out.line
            self.out.emit(self.dotted(rel) + " = " + child.value)
        elif child and len(child) == 1 and self.draw(st.booleans()):
            # {a.b = 1}: a dotted key inside an inline table.
            ((name, grandchild),) = child.items()
            self.inline_member(path, (*rel, name), grandchild)
        else:
            self.out.emit(self.dotted(rel) + " = ")
            self.inline(path + rel, child)


def _is_bare(name: str) -> bool:
    return bool(name) and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


def _toml_leaves(data: Mapping[str, Any], prefix: Key = ()) -> Iterator[Key]:
    for name, value in data.items():
        if isinstance(value, dict):
            yield from _toml_leaves(value, (*prefix, name))
        else:
            yield (*prefix, name)


def _toml_tables(data: Mapping[str, Any], prefix: Key = ()) -> Iterator[Key]:
    for name, value in data.items():
        if isinstance(value, dict):
            yield (*prefix, name)
            yield from _toml_tables(value, (*prefix, name))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_documents, crlf=st.booleans(), data=st.data())
def test_scan_key_lines_matches_tomllib_and_rendered_lines(
    document: Tree, crlf: bool, data: st.DataObject
) -> None:
    renderer = Renderer(data.draw)
    renderer.section((), document)
    text = renderer.out.text()
    if crlf:
        text = text.replace("\n", "\r\n")
    parsed = tomllib.loads(text)  # the generator only makes valid TOML
    expected = renderer.out.leaves
    assert set(_toml_leaves(parsed)) == set(expected)

    scanned = scan_key_lines(text)

    assert scanned.leaves == expected
    assert set(_toml_tables(parsed)) <= set(scanned.tables)
    for table, line in renderer.out.header_tables.items():
        assert scanned.tables[table] <= line


# -- examples --------------------------------------------------------------------


def test_scan_key_lines_reports_tables_dotted_and_inline_keys() -> None:
    text = (
        "top = 1\n"
        "[journal]\n"
        "offline_payments_max = 5\n"
        "[devices.printer]\n"
        'url = "/dev/ttyS0"\n'
        "[devices]\n"
        "scanner = { driver = 'serial', url = \"/dev/ttyACM0\" }\n"
        'card_reader.driver = "pcsc"\n'
    )
    scanned = scan_key_lines(text)
    assert scanned.leaves == {
        ("top",): 1,
        ("journal", "offline_payments_max"): 3,
        ("devices", "printer", "url"): 5,
        ("devices", "scanner", "driver"): 7,
        ("devices", "scanner", "url"): 7,
        ("devices", "card_reader", "driver"): 8,
    }
    assert scanned.tables[("journal",)] == 2
    assert scanned.tables[("devices", "printer")] == 4
    assert scanned.line_of(("devices", "printer", "baudrate")) == 4


def test_scan_key_lines_skips_keys_inside_multiline_strings() -> None:
    text = 'a = """\nb = 1\n[c]\n"""\nd = 2\n'
    assert scan_key_lines(text).leaves == {("a",): 1, ("d",): 5}


def test_scan_key_lines_treats_array_of_tables_as_one_leaf() -> None:
    text = "[[a]]\nx = 1\n[a.sub]\ny = 2\n[[a]]\nx = 3\n[b]\nz = 4\n"
    tomllib.loads(text)
    scanned = scan_key_lines(text)
    assert scanned.leaves == {("a",): 1, ("b", "z"): 8}


def test_scan_key_lines_deep_nesting_raises_scan_error() -> None:
    depth = NESTING_DEPTH_MAX + 5
    text = "a = " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(TomlScanError):
        scan_key_lines(text)


@pytest.mark.parametrize(
    "text",
    ['a = "unterminated\n', "[table\n", "= 1\n", "a = {b = 1\n", 'a = """x'],
)
def test_scan_key_lines_invalid_input_raises_scan_error_not_hang(text: str) -> None:
    with pytest.raises(TomlScanError):
        scan_key_lines(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab=.#[]{}'\"\\\n ,1")), max_size=40))
def test_scan_key_lines_arbitrary_text_ends_with_result_or_scan_error(text: str) -> None:
    with contextlib.suppress(TomlScanError):
        scan_key_lines(text)
