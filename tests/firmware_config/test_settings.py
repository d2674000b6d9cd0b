"""The settings model: defaults, documentation, validators, derived paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from firmware_config.settings import (
    Settings,
    effective_values,
    field_at,
    field_doc,
    section_model_at,
    setting_fields,
)


def test_settings_defaults_validate_without_any_file() -> None:
    settings = Settings()
    assert settings.terminal.data_dir == Path("/var/lib/lobbypay")
    assert settings.journal.offline_payment_amount_max_minor == 1_500_000
    assert settings.journal.offline_amount_total_max_minor == 50_000_000
    assert settings.journal.offline_payments_max == 5_000
    assert settings.journal.offline_age_max_s == 72 * 3600
    assert settings.journal.retention_s == 90 * 24 * 3600
    assert settings.kiosk.languages == ["ru", "en"]
    assert settings.devices.payment_terminal.password.get_secret_value() == "000000"
    assert settings.gateway.listen_port == 8080


def test_settings_ignores_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The loader applies the environment (with provenance); the model must not
    # read it a second time behind the loader's back.
    monkeypatch.setenv("LOBBYPAY_JOURNAL__OFFLINE_PAYMENTS_MAX", "7")
    assert Settings.model_validate({}).journal.offline_payments_max == 5_000


def test_every_setting_and_section_has_a_docstring() -> None:
    def walk(model: type[BaseModel]) -> None:
        for name, info in model.model_fields.items():
            assert field_doc(model, name), f"{model.__name__}.{name} has no docstring"
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation)

    walk(Settings)


def test_setting_fields_lists_every_leaf_with_secrets_marked() -> None:
    fields = {item.key: item for item in setting_fields()}
    assert "journal.offline_payments_max" in fields
    assert "devices.payment_terminal.url" in fields
    assert "devices" not in fields
    secrets = {key for key, item in fields.items() if item.secret}
    assert secrets == {"devices.payment_terminal.password", "kiosk.service_pin_hash"}
    assert set(effective_values(Settings())) == set(fields)


def test_section_and_field_lookup_by_path() -> None:
    assert section_model_at(("devices", "printer")) is not None
    assert section_model_at(("journal", "path")) is None
    assert field_at(("journal", "offline_payments_max")) is not None
    assert field_at(("journal", "nope")) is None


def test_derived_paths_default_under_data_dir() -> None:
    settings = Settings.model_validate({"terminal": {"data_dir": "/srv/lp"}})
    assert settings.identity_key_path == Path("/srv/lp/identity/ed25519.key")
    assert settings.journal_path == Path("/srv/lp/journal.db")
    assert settings.card_hash_key_path == Path("/srv/lp/keys/card-hash.key")


def test_derived_paths_explicit_values_win() -> None:
    settings = Settings.model_validate(
        {"identity": {"key_path": "/k/id.key"}, "journal": {"path": "/j/j.db"}}
    )
    assert settings.identity_key_path == Path("/k/id.key")
    assert settings.journal_path == Path("/j/j.db")


def _error_locs(data: dict[str, object]) -> set[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate(data)
    return {tuple(error["loc"]) for error in info.value.errors()}


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"journal": {"offline_payments_max": 0}}, ("journal", "offline_payments_max")),
        ({"journal": {"offline_payments_max": "10"}}, ("journal", "offline_payments_max")),
        ({"journal": {"offline_payments_max": True}}, ("journal", "offline_payments_max")),
        ({"journal": {"retention_s": 1.5}}, ("journal", "retention_s")),
        ({"terminal": {"data_dir": "relative/dir"}}, ("terminal", "data_dir")),
        ({"terminal": {"role": "atm"}}, ("terminal", "role")),
        ({"central": {"public_key": "abcd"}}, ("central", "public_key")),
        ({"central": {"url": "ftp://central"}}, ("central", "url")),
        ({"central": {"url": "https://user:pw@central"}}, ("central", "url")),
        ({"central": {"request_timeout_s": True}}, ("central", "request_timeout_s")),
        ({"deployment": {"currency": "USD"}}, ("deployment", "currency")),
        (
            {"deployment": {"virtual_number_length_min": 10, "virtual_number_length_max": 8}},
            ("deployment", "virtual_number_length_max"),
        ),
        (
            {"deployment": {"virtual_number_check": "luhn", "virtual_number_length_max": 16}},
            ("deployment", "virtual_number_length_max"),
        ),
        (
            {
                "journal": {
                    "offline_payment_amount_max_minor": 100,
                    "offline_amount_total_max_minor": 99,
                }
            },
            ("journal", "offline_amount_total_max_minor"),
        ),
        ({"devices": {"payment_terminal": {"password": "12345"}}}, None),
        ({"devices": {"payment_terminal": {"driver": "zvt"}}}, None),
        ({"devices": {"scanner": {"baudrate": 10}}}, ("devices", "scanner", "baudrate")),
        ({"kiosk": {"languages": ["ru", "de"]}}, ("kiosk", "languages")),
        ({"kiosk": {"languages": []}}, ("kiosk", "languages")),
        ({"gateway": {"listen_port": 70000}}, ("gateway", "listen_port")),
        ({"logging": {"level": "LOUD"}}, ("logging", "level")),
        ({"journal": {"offline_payment_max": 1}}, ("journal", "offline_payment_max")),
    ],
)
def test_settings_bad_value_is_rejected_at_its_key(
    data: dict[str, object], loc: tuple[str, ...] | None
) -> None:
    locs = _error_locs(data)
    if loc is None:
        device = next(iter(data["devices"]))  # type: ignore[call-overload]
        field = "password" if "password" in str(data) else "url"
        loc = ("devices", device, field)
    assert locs == {loc}


def test_central_public_key_is_normalized_to_lower_case() -> None:
    key = "AB" * 32
    settings = Settings.model_validate({"central": {"public_key": key}})
    assert settings.central.public_key == "ab" * 32
    assert settings.central.public_key_bytes == bytes.fromhex("ab" * 32)
    assert Settings().central.public_key_bytes is None


def test_logging_level_accepts_lower_case() -> None:
    assert Settings.model_validate({"logging": {"level": "debug"}}).logging.level == "DEBUG"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.journal.offline_payments_max = 1  # type: ignore[misc]


def test_secret_values_do_not_appear_in_repr() -> None:
    settings = Settings.model_validate({"devices": {"payment_terminal": {"password": "654321"}}})
    assert "654321" not in repr(settings)
    assert "654321" not in str(settings.model_dump())


def test_validation_error_text_does_not_quote_secret_input() -> None:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate({"devices": {"payment_terminal": {"password": "55x555"}}})
    assert "55x555" not in str(info.value)
    assert "55x555" not in repr(info.value)
