"""The agents file: schema, permissions, password hashes; secrets never shown."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.agents import (
    hash_password,
    load_agents,
    new_agent_toml,
    parse_agents,
    verify_password,
)
from gateway.errors import AgentsFileError
from tests.gateway.support import agents_toml

SECRET_HEX = "ab" * 32


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_password_hash_verifies_and_refuses_other_passwords() -> None:
    stored = hash_password("correct horse", n=2**10)
    assert stored.startswith("scrypt$1024$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert hash_password("correct horse", n=2**10) != stored  # salted


def test_agents_file_loads_every_agent_with_its_indexes(tmp_path: Path) -> None:
    registry = load_agents(_write(tmp_path / "agents.toml", agents_toml()))
    assert set(registry.agents) == {"bank", "limited", "checker", "remote", "off"}
    assert registry.hmac_keys["bank-k1"].agent_id == "bank"
    bank = registry.agents["bank"]
    assert bank.ip_allowed("127.0.0.1")
    assert bank.ip_allowed("::ffff:127.0.0.1")
    assert not bank.ip_allowed("10.1.2.3")
    assert not bank.ip_allowed(None)
    assert not bank.ip_allowed("not-an-ip")
    assert "secret" not in repr(registry.hmac_keys["bank-k1"]).replace("secret=***", "")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_agents_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(AgentsFileError, match="chmod 600"):
        load_agents(_write(tmp_path / "agents.toml", agents_toml(), mode))


def test_missing_or_symlinked_agents_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgentsFileError):
        load_agents(tmp_path / "nope.toml")
    real = _write(tmp_path / "real.toml", agents_toml())
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    with pytest.raises(AgentsFileError):
        load_agents(link)


def test_every_problem_is_listed_and_no_secret_is_echoed() -> None:
    text = f"""
[agents.Bad-Id]
ip_allow = ["0.0.0.0/0"]
basic_password_hash = "plain-password-oops"

[agents.ok_id]
ip_allow = ["10.0.0.300/8"]
protocols = ["json", "ftp"]
amount_min_minor = 500
amount_max_minor = 100
[[agents.ok_id.hmac_keys]]
key_id = "k1"
secret_hex = "{SECRET_HEX[:10]}"
"""
    with pytest.raises(AgentsFileError) as info:
        parse_agents(text)
    problems = "\n".join(info.value.problems)
    assert "ip_allow" in problems
    assert "protocols" in problems
    assert "secret_hex" in problems
    assert "amount_max_minor" in problems
    assert "basic_password_hash" in problems
    assert "plain-password-oops" not in str(info.value) + problems
    assert SECRET_HEX[:10] not in str(info.value) + problems


def test_agent_without_credentials_or_json_without_keys_is_refused() -> None:
    with pytest.raises(AgentsFileError, match="no credentials"):
        parse_agents('[agents.a]\nip_allow = ["0.0.0.0/0"]\n')
    with pytest.raises(AgentsFileError, match="needs hmac_keys"):
        parse_agents(
            '[agents.a]\nip_allow = ["0.0.0.0/0"]\nprotocols = ["json"]\n'
            f'basic_password_hash = "{hash_password("x", n=2**10)}"\n'
        )


def test_duplicate_key_id_or_certificate_across_agents_is_refused() -> None:
    fp = "aa" * 32
    text = "".join(
        f"""
[agents.{name}]
ip_allow = ["0.0.0.0/0"]
protocols = ["osmp", "json"]
client_cert_sha256 = ["{fp}"]
[[agents.{name}.hmac_keys]]
key_id = "same"
secret_hex = "{SECRET_HEX}"
"""
        for name in ("one", "two")
    )
    with pytest.raises(AgentsFileError) as info:
        parse_agents(text)
    problems = "\n".join(info.value.problems)
    assert "key_id same twice" in problems
    assert "also belongs to one" in problems


def test_new_agent_toml_appends_a_loadable_agent() -> None:
    text = new_agent_toml(
        "atm_host",
        name='Банк "Пример"',
        ip_allow=["192.0.2.0/24"],
        protocols=["osmp", "json"],
        password_hash=hash_password("pw", n=2**10),
        hmac_key_id="atm_host-1",
        hmac_secret_hex=SECRET_HEX,
    )
    registry = parse_agents(agents_toml() + text)
    agent = registry.agents["atm_host"]
    assert agent.name == 'Банк "Пример"'
    assert agent.protocols == frozenset({"osmp", "json"})
    assert registry.hmac_keys["atm_host-1"].secret == bytes.fromhex(SECRET_HEX)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_parses_or_raises_agents_file_error(text: str) -> None:
    with contextlib.suppress(AgentsFileError):
        parse_agents(text)
