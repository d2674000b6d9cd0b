"""The ``[kiosk]`` section: defaults, bounds, types, and loading from a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from firmware_config.loader import ConfigError, load_config
from firmware_config.settings import KioskSettings, Settings


def test_kiosk_defaults() -> None:
    kiosk = Settings().kiosk
    assert kiosk.idle_timeout_s == 60
    assert kiosk.languages == ["ru", "en"]
    assert kiosk.pin_attempts_max == 5
    assert kiosk.pin_lockout_s == 300
    assert kiosk.catalog_path is None
    assert kiosk.receipt_header == ["lobbypay"]
    assert kiosk.receipt_width_chars == 42
    assert kiosk.card_timeout_s == 60
    assert kiosk.recovery_timeout_s == 60
    assert kiosk.online_check_interval_s == 30
    assert kiosk.online_check_timeout_s == 2.0
    assert (kiosk.serve_host, kiosk.serve_port) == ("127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("idle_timeout_s", 4),
        ("idle_timeout_s", 3601),
        ("idle_timeout_s", "60"),
        ("pin_attempts_max", 0),
        ("pin_lockout_s", 5),
        ("receipt_width_chars", 31),
        ("receipt_width_chars", 65),
        ("card_timeout_s", 256),
        ("recovery_timeout_s", 0),
        ("online_check_interval_s", True),
        ("online_check_timeout_s", 0),
        ("online_check_timeout_s", float("nan")),
        ("serve_port", 0),
        ("serve_port", 70_000),
        ("serve_host", ""),
        ("catalog_path", "relative/catalog.db"),
        ("receipt_header", ["x" * 65]),
        ("receipt_header", ["line"] * 9),
        ("languages", ["de"]),
        ("languages", ["ru", "ru"]),
    ],
)
def test_kiosk_refuses_out_of_range_and_wrong_types(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        KioskSettings.model_validate({field: value})


def test_kiosk_section_from_a_file_with_provenance(tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_text(
        "[kiosk]\n"
        "idle_timeout_s = 90\n"
        'receipt_header = ["ООО «Расчётный центр»", "Барнаул"]\n'
        'catalog_path = "/srv/lobbypay/catalog.db"\n'
        "serve_port = 8100\n",
        encoding="utf-8",
    )
    loaded = load_config(tmp_path, env={})
    kiosk = loaded.settings.kiosk
    assert kiosk.idle_timeout_s == 90
    assert kiosk.receipt_header == ["ООО «Расчётный центр»", "Барнаул"]
    assert kiosk.catalog_path == Path("/srv/lobbypay/catalog.db")
    assert kiosk.serve_port == 8100
    source = loaded.source_of("kiosk.serve_port")
    assert source.path == tmp_path / "local.toml"


def test_kiosk_setting_from_the_environment(tmp_path: Path) -> None:
    loaded = load_config(tmp_path, env={"LOBBYPAY_KIOSK__RECOVERY_TIMEOUT_S": "120"})
    assert loaded.settings.kiosk.recovery_timeout_s == 120


def test_kiosk_problem_names_its_key(tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_text("[kiosk]\nreceipt_width_chars = 100\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert [p.key for p in caught.value.problems] == ["kiosk.receipt_width_chars"]
