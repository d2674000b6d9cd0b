"""The [gateway] settings section: defaults, bounds and cross-field checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from firmware_config.settings import GatewaySettings, Settings, field_doc


def _gateway(**values: Any) -> GatewaySettings:
    return Settings.model_validate({"gateway": values}).gateway


def test_gateway_defaults_are_bounded_and_plain_http() -> None:
    g = _gateway()
    assert g.requests_in_flight_max == 128
    assert g.retry_after_s == 2
    assert g.catalog_age_max_s == 24 * 3600
    assert g.hmac_replay_window_s == 300
    assert g.body_bytes_max == 16_384
    assert g.registry_timezone == "Europe/Moscow"
    assert g.agents_path is g.catalog_path is g.index_path is None
    assert g.tls_cert_path is g.tls_key_path is g.tls_client_ca_path is None


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"requests_in_flight_max": 0}, "requests_in_flight_max"),
        ({"requests_in_flight_max": "128"}, "requests_in_flight_max"),
        ({"requests_in_flight_max": True}, "requests_in_flight_max"),
        ({"retry_after_s": 0}, "retry_after_s"),
        ({"body_bytes_max": 10}, "body_bytes_max"),
        ({"body_bytes_max": 10**9}, "body_bytes_max"),
        ({"hmac_replay_window_s": 1}, "hmac_replay_window_s"),
        ({"nonce_cache_entries_max": 5}, "nonce_cache_entries_max"),
        ({"request_timeout_s": 0}, "request_timeout_s"),
        ({"request_timeout_s": float("inf")}, "request_timeout_s"),
        ({"registry_timezone": "Mars/Olympus"}, "registry_timezone"),
        ({"registry_timezone": "../../etc/passwd"}, "registry_timezone"),
        ({"agents_path": "agents.toml"}, "agents_path"),
        ({"tls_cert_path": "/etc/lobbypay/gw.pem"}, "tls_key_path"),
        ({"tls_key_path": "/etc/lobbypay/gw.key"}, "tls_key_path"),
        ({"tls_client_ca_path": "/etc/lobbypay/ca.pem"}, "tls_client_ca_path"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_bad_gateway_values_are_refused_naming_the_key(values: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError) as info:
        _gateway(**values)
    locations = {".".join(str(p) for p in err["loc"]) for err in info.value.errors()}
    assert f"gateway.{key}" in locations


def test_tls_with_client_certificates_validates() -> None:
    g = _gateway(
        tls_cert_path="/etc/lobbypay/gw.pem",
        tls_key_path="/etc/lobbypay/gw.key",
        tls_client_ca_path="/etc/lobbypay/agents-ca.pem",
        registry_timezone="Asia/Barnaul",
    )
    assert g.tls_client_ca_path == Path("/etc/lobbypay/agents-ca.pem")
    assert g.registry_timezone == "Asia/Barnaul"


def test_every_gateway_setting_has_a_docstring() -> None:
    for name in GatewaySettings.model_fields:
        assert field_doc(GatewaySettings, name).strip(), f"gateway.{name} has no docstring"
