"""Hardware profiles shipped with lobbypay, one TOML file per kind of box.

A profile is the second configuration layer (after the built-in defaults):
``hardware_profile = "rpi4"`` in ``local.toml`` (or ``LOBBYPAY_HARDWARE_PROFILE``)
selects ``<name>.toml`` from this directory. This file exists so the profiles
are package data of a regular package.
"""
