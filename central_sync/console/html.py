"""Escaped-by-default HTML for the console's server-rendered pages.

Every value put into a page goes through :func:`esc` unless it is already
:class:`Markup` (text this module built). Templates are ``str.format`` strings
whose fields are escaped by :func:`html`; attributes are always quoted, so an
escaped value can never leave its attribute. There is no way to insert raw text
except by constructing :class:`Markup`, which only this package does.
"""

from __future__ import annotations

import html as _stdlib_html
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode


class Markup(str):
    """Text that is already safe HTML (built here from escaped parts)."""

    __slots__ = ()


def esc(value: Any) -> Markup:
    """``value`` as HTML text: Markup as it is, None as empty, anything else escaped."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(_stdlib_html.escape(str(value), quote=True))


def html(template: str, /, **values: Any) -> Markup:
    """``template.format(**values)`` with every value escaped (Markup values kept)."""
    return Markup(template.format(**{name: esc(value) for name, value in values.items()}))


def join(parts: Iterable[Any], separator: str = "") -> Markup:
    """The parts, each escaped, joined by a (trusted, literal) separator."""
    return Markup(separator.join(esc(part) for part in parts))


def attrs(values: Mapping[str, Any]) -> Markup:
    """Quoted, escaped attributes; a None or False value leaves its attribute out."""
    out = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        out.append(name if value is True else f'{name}="{esc(value)}"')
    return Markup(" ".join(out))


def query(path: str, params: Mapping[str, Any]) -> str:
    """``path`` with the non-empty ``params`` as a query string (escape it when printing)."""
    kept = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path
