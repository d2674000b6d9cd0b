"""Atomic file writes and a small TOML writer (the config bundle layer, provisioning).

A configuration file, a unit file or the enrollment record is either the old
one or the new one, never half of each: the new bytes go to a temporary file in
the same directory, are fsync'd, and are renamed over the old name (POSIX
rename is atomic), then the directory is fsync'd so the rename survives a power
cut — Raspberry-Pi-class boxes lose power often.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Replace ``path`` with ``data`` atomically; False (nothing written) if unchanged."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_directory(path.parent)
    return True


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_file(path: Path) -> bool:
    """Remove ``path`` durably; False if it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_directory(path.parent)
    return True


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string (same escapes).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as TOML here")


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def to_toml(data: Mapping[str, Any], *, header: str = "") -> str:
    """TOML text for nested tables of strings, integers, booleans and lists of them.

    Keys are written in the given order (bare keys only, which is all our
    settings use); ``header`` lines become comments at the top.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]

    def emit(table: Mapping[str, Any], path: tuple[str, ...]) -> None:
        scalars = [(k, v) for k, v in table.items() if not _is_table(v)]
        tables = [(k, v) for k, v in table.items() if _is_table(v)]
        if path and scalars:
            if lines:
                lines.append("")
            lines.append(f"[{'.'.join(path)}]")
        for key, value in scalars:
            lines.append(f"{key} = {_toml_value(value)}")
        for key, value in tables:
            emit(value, (*path, key))

    emit(data, ())
    return "\n".join(lines) + "\n"
