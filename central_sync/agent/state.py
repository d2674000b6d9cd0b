"""The agent's status file: what `lobbypay sync status` shows besides the journal itself.

The running agent (`lobbypay sync run`) and `lobbypay sync status` are different
processes, so the agent writes what only it knows — the last verified ack, the
last failure, a final refusal, the last catalog pull — to a small JSON file
beside the journal, replaced atomically (write to a temporary file, rename).
It is informational: the journal stays the only source of truth about which
entries central holds, so a lost or stale status file loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from central_sync.agent.errors import StateFileError

STATE_FILE_NAME = "sync-state.json"
STATE_FILE_BYTES_MAX = 64 * 1024
STATE_FORMAT = 1
TEXT_CHARS_MAX = 500


def _text(value: str) -> str:
    return value if len(value) <= TEXT_CHARS_MAX else value[: TEXT_CHARS_MAX - 1] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """A failure the agent met: a retryable one, a final refusal, or a refused catalog."""

    reason: str
    message: str
    at_ms: int
    final: bool = False

    def __post_init__(self) -> None:
        assert self.at_ms >= 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentState:
    """Everything in the status file."""

    terminal_id: str
    updated_ms: int = 0
    last_ack_seq: int | None = None
    last_ack_central_time_ms: int | None = None
    last_ack_ms: int | None = None
    consecutive_failures: int = 0
    last_error: Problem | None = None
    final_refusal: Problem | None = None
    catalog_version: int | None = None
    catalog_pulled_ms: int | None = None
    catalog_error: Problem | None = None
    last_heartbeat_ms: int | None = None
    config_version: int | None = None
    """The configuration bundle in force after the last pull."""
    config_error: Problem | None = None
    """The last bundle refused or rolled back (cleared by the next good pull)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = STATE_FORMAT
        return data

    def with_(self, **changes: Any) -> AgentState:
        return replace(self, **changes)


def _problem(value: Any) -> Problem | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise StateFileError("a problem entry is not an object")
    try:
        return Problem(
            reason=_text(str(value["reason"])),
            message=_text(str(value["message"])),
            at_ms=int(value["at_ms"]),
            final=bool(value.get("final", False)),
        )
    except (KeyError, TypeError, ValueError, AssertionError):
        raise StateFileError("a problem entry is malformed") from None


def _opt_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise StateFileError(f"{name} is not an integer")
    return value


def load_state(path: Path) -> AgentState | None:
    """The state in ``path``; None if there is no file yet; StateFileError if unreadable."""
    try:
        with open(path, "rb") as f:
            raw = f.read(STATE_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > STATE_FILE_BYTES_MAX:
        raise StateFileError(f"{path} is larger than {STATE_FILE_BYTES_MAX} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StateFileError(f"{path} is not a sync status file") from None
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise StateFileError(f"{path} is not a sync status file of format {STATE_FORMAT}")
    terminal_id = data.get("terminal_id")
    if not isinstance(terminal_id, str):
        raise StateFileError(f"{path} lacks the terminal id")
    extra = data.get("extra")
    return AgentState(
        terminal_id=terminal_id,
        updated_ms=_opt_int(data.get("updated_ms"), "updated_ms") or 0,
        last_ack_seq=_opt_int(data.get("last_ack_seq"), "last_ack_seq"),
        last_ack_central_time_ms=_opt_int(
            data.get("last_ack_central_time_ms"), "last_ack_central_time_ms"
        ),
        last_ack_ms=_opt_int(data.get("last_ack_ms"), "last_ack_ms"),
        consecutive_failures=_opt_int(data.get("consecutive_failures"), "consecutive_failures")
        or 0,
        last_error=_problem(data.get("last_error")),
        final_refusal=_problem(data.get("final_refusal")),
        catalog_version=_opt_int(data.get("catalog_version"), "catalog_version"),
        catalog_pulled_ms=_opt_int(data.get("catalog_pulled_ms"), "catalog_pulled_ms"),
        catalog_error=_problem(data.get("catalog_error")),
        last_heartbeat_ms=_opt_int(data.get("last_heartbeat_ms"), "last_heartbeat_ms"),
        config_version=_opt_int(data.get("config_version"), "config_version"),
        config_error=_problem(data.get("config_error")),
        extra=extra if isinstance(extra, dict) else {},
    )


def save_state(path: Path, state: AgentState) -> None:
    """Replace the status file atomically (never a half-written file)."""
    data = json.dumps(state.to_json(), ensure_ascii=False, sort_keys=True, indent=1).encode()
    assert len(data) <= STATE_FILE_BYTES_MAX
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StateFileError(f"cannot write {path}: {exc.strerror}") from None
