"""Every name a driver package exports resolves (the exports are imported lazily)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "package",
    ["drivers.zvt", "drivers.escpos", "drivers.pcsc", "drivers.identification", "drivers.scanner"],
)
def test_driver_package_exports_all_resolve(package: str) -> None:
    module = importlib.import_module(package)
    for name in getattr(module, "__all__", ()):
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_driver_package_unknown_name_raises_attribute_error() -> None:
    module = importlib.import_module("drivers.zvt")
    with pytest.raises(AttributeError):
        _ = module.NoSuchThing
