"""Lazy package exports (PEP 562), shared by the driver packages.

`lobbypay --help` imports every command module, and with it each driver
package; the names a package exports are imported on first use instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], table: Mapping[str, tuple[str, str]]
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``table[name]`` = (module, attribute) on use."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> object:
        try:
            module, attribute = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), attribute)
        namespace[name] = value
        return value

    return __getattr__
