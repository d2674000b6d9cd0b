"""The error taxonomy of :mod:`firmware_config`: one base, one family per concern.

Every error a technician can meet carries a next step (what to do about it), so
the CLI can print something more useful than a traceback. Messages never hold a
secret, a key's bytes or a configuration value marked secret.
"""

from __future__ import annotations


class FirmwareConfigError(Exception):
    """Base of every error raised by :mod:`firmware_config`."""

    next_step: str = ""
    """What a technician should do about it (empty when nothing obvious)."""
