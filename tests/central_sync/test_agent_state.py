"""The agent's status file: atomic writes, tolerant and bounded reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from central_sync.agent.errors import StateFileError
from central_sync.agent.state import (
    STATE_FILE_BYTES_MAX,
    AgentState,
    Problem,
    load_state,
    save_state,
)


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sync-state.json"
    state = AgentState(
        terminal_id="TABC",
        updated_ms=5,
        last_ack_seq=120,
        last_ack_central_time_ms=6,
        last_ack_ms=7,
        consecutive_failures=2,
        last_error=Problem(reason="timeout", message="нет ответа", at_ms=8),
        final_refusal=Problem(reason="revoked", message="call", at_ms=9, final=True),
        catalog_version=4,
        catalog_pulled_ms=10,
        catalog_error=Problem(reason="rollback", message="old", at_ms=11),
        last_heartbeat_ms=12,
    )
    save_state(path, state)
    assert load_state(path) == state
    assert not list(tmp_path.glob(".*tmp"))


def test_missing_state_file_is_no_state(tmp_path: Path) -> None:
    assert load_state(tmp_path / "none.json") is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"format": 99, "terminal_id": "T"}',
        b'{"format": 1}',
        b'{"format": 1, "terminal_id": "T", "last_ack_seq": "x"}',
        b'{"format": 1, "terminal_id": "T", "last_error": {"reason": "x"}}',
        b"\xff\xfe",
    ],
)
def test_damaged_state_file_raises_a_typed_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sync-state.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError):
        load_state(path)


def test_oversized_state_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "sync-state.json"
    path.write_bytes(b" " * (STATE_FILE_BYTES_MAX + 10))
    with pytest.raises(StateFileError, match="larger"):
        load_state(path)


def test_unwritable_state_directory_raises_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateFileError):
        save_state(blocker / "sync-state.json", AgentState(terminal_id="T"))
