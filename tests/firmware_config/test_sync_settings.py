"""The ``[sync]`` section: the sync agent's bounds, timeouts and intervals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from firmware_config.loader import ConfigError, load_config
from firmware_config.settings import Settings, SyncSettings, field_doc


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_sync_defaults_are_sane_and_within_central_bounds() -> None:
    sync = Settings().sync
    assert sync.batch_entries_max == 10_000
    assert sync.batch_entries_max <= 20_000  # central's default batch_entries_max
    assert sync.batch_bytes_max == 4 * 1024 * 1024
    assert sync.backoff_initial_s <= sync.backoff_max_s
    assert sync.response_timeout_s == 60.0
    assert sync.heartbeat_interval_s == 60.0
    assert sync.catalog_poll_interval_s == 300.0
    assert sync.tls_ca_file is None


def test_sync_section_loads_from_a_file_and_the_environment(tmp_path: Path) -> None:
    write(
        tmp_path / "local.toml",
        "[sync]\nbatch_entries_max = 500\nbackoff_initial_s = 2\nbackoff_max_s = 60.5\n"
        'tls_ca_file = "/etc/lobbypay/central-ca.pem"\n',
    )
    loaded = load_config(tmp_path, env={"LOBBYPAY_SYNC__HEARTBEAT_INTERVAL_S": "15"})
    sync = loaded.settings.sync
    assert sync.batch_entries_max == 500
    assert sync.backoff_initial_s == 2.0
    assert sync.backoff_max_s == 60.5
    assert sync.heartbeat_interval_s == 15.0
    assert sync.tls_ca_file == Path("/etc/lobbypay/central-ca.pem")
    assert str(loaded.source_of("sync.batch_entries_max")).endswith("local.toml:2")
    assert "LOBBYPAY_SYNC__HEARTBEAT_INTERVAL_S" in str(
        loaded.source_of("sync.heartbeat_interval_s")
    )


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("batch_entries_max = 0", "sync.batch_entries_max"),
        ("batch_entries_max = 20001", "sync.batch_entries_max"),
        ('batch_entries_max = "100"', "sync.batch_entries_max"),
        ("batch_bytes_max = 1000", "sync.batch_bytes_max"),
        ("response_timeout_s = 0", "sync.response_timeout_s"),
        ("heartbeat_interval_s = -5", "sync.heartbeat_interval_s"),
        ("catalog_bytes_max = 0", "sync.catalog_bytes_max"),
        ('tls_ca_file = "relative/ca.pem"', "sync.tls_ca_file"),
        ("backof_max_s = 5", "sync.backof_max_s"),
    ],
)
def test_bad_sync_value_is_reported_with_its_key_and_line(
    tmp_path: Path, line: str, key: str
) -> None:
    write(tmp_path / "local.toml", f"[sync]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    found = {(p.key, str(p.source)) for p in info.value.problems}
    assert (key, f"{tmp_path / 'local.toml'}:2") in found


def test_backoff_maximum_below_the_initial_delay_is_refused() -> None:
    with pytest.raises(ValidationError, match="backoff_initial_s"):
        SyncSettings(backoff_initial_s=10.0, backoff_max_s=5.0)
    assert SyncSettings(backoff_initial_s=5.0, backoff_max_s=5.0).backoff_max_s == 5.0


def test_every_sync_setting_has_a_docstring() -> None:
    for name in SyncSettings.model_fields:
        assert field_doc(SyncSettings, name), name
    assert field_doc(Settings, "sync")
