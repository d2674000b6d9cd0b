"""`lobbypay config ...` and `lobbypay identity ...` through the real dispatcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_config.dispatch import main

LOBBYPAY = Path(sys.executable).parent / "lobbypay"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LOBBYPAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_config_show_prints_each_value_with_its_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "local.toml", '[terminal]\nlabel = "Lenina 5"\n')
    monkeypatch.setenv("LOBBYPAY_JOURNAL__OFFLINE_PAYMENTS_MAX", "10")
    assert main(["config", "show", "--config-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line}
    assert lines["terminal.label"].endswith(f"# {tmp_path / 'local.toml'}:2")
    assert '"Lenina 5"' in lines["terminal.label"]
    assert lines["journal.offline_payments_max"].endswith(
        "# env LOBBYPAY_JOURNAL__OFFLINE_PAYMENTS_MAX"
    )
    assert lines["journal.retention_s"].endswith("# default")
    assert "/var/lib/lobbypay/journal.db" in lines["journal.path"]
    from firmware_config.settings import setting_fields

    assert set(lines) == {item.key for item in setting_fields()}


def test_config_show_masks_secrets_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path / "local.toml",
        '[devices.payment_terminal]\npassword = "918273"\n'
        '[kiosk]\nservice_pin_hash = "pbkdf2$aa55aa55"\n',
    )
    assert main(["config", "show", "--config-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert main(["config", "show", "--json", "--config-dir", str(tmp_path)]) == 0
    document = json.loads(capsys.readouterr().out)
    for output in (text, json.dumps(document)):
        assert "918273" not in output
        assert "aa55aa55" not in output
    assert "devices.payment_terminal.password = ***" in text
    entry = document["settings"]["devices.payment_terminal.password"]
    assert entry["value"] == "***"
    assert entry["source"] == {
        "kind": "local",
        "path": str(tmp_path / "local.toml"),
        "line": 2,
        "env_var": None,
    }
    assert document["settings"]["kiosk.service_pin_hash"]["value"] == "***"
    assert document["settings"]["kiosk.languages"]["value"] == ["ru", "en"]
    assert document["derived"]["journal.path"] == "/var/lib/lobbypay/journal.db"


def test_config_validate_ok_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", "--config-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "configuration OK"


def test_config_validate_speaks_russian_in_russian_locale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "ru_RU.UTF-8")
    assert main(["config", "validate", "--config-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "конфигурация в порядке"


def test_config_validate_prints_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "override.d" / "50-x.toml", "[journal]\nretention_s = 0\n")
    write(
        tmp_path / "local.toml",
        '[devices.payment_terminal]\npassword = "12ab56"\n[gateway]\nlisten_prt = 1\n',
    )
    assert main(["config", "validate", "--config-dir", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{tmp_path / 'override.d' / '50-x.toml'}:2: journal.retention_s: "
        "Input should be greater than 0",
        f"{tmp_path / 'local.toml'}:2: devices.payment_terminal.password: must be exactly 6 digits",
        f"{tmp_path / 'local.toml'}:4: gateway.listen_prt: "
        "unknown setting; did you mean 'gateway.listen_port'?",
        "3 configuration problem(s) found",
    ]
    assert "12ab56" not in out


def test_config_show_with_problems_exits_2_and_prints_them_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "local.toml", "[journal\n")
    with pytest.raises(SystemExit) as info:
        main(["config", "show", "--config-dir", str(tmp_path)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{tmp_path / 'local.toml'}:1: TOML syntax error" in captured.err


def test_config_without_subcommand_prints_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config"]) == 2
    assert "validate" in capsys.readouterr().err


def test_identity_init_then_show_with_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "keys" / "id.key"
    assert main(["identity", "init", "--key", str(key), "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert main(["identity", "show", "--key", str(key), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert created == shown
    assert shown["terminal_id"].startswith("T")
    assert len(shown["terminal_id"]) == 17
    assert shown["key_path"] == str(key)
    assert len(bytes.fromhex(shown["public_key"])) == 32
    assert set(shown) == {"terminal_id", "public_key", "fingerprint", "key_path"}


def test_identity_init_uses_key_path_from_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    write(tmp_path / "etc" / "local.toml", f'[terminal]\ndata_dir = "{data_dir}"\n')
    assert main(["identity", "init", "--config-dir", str(tmp_path / "etc")]) == 0
    out = capsys.readouterr().out
    assert str(data_dir / "identity" / "ed25519.key") in out
    assert (data_dir / "identity" / "ed25519.key").exists()
    assert main(["identity", "show", "--config-dir", str(tmp_path / "etc")]) == 0
    assert "terminal_id" in capsys.readouterr().out


def test_identity_init_twice_refuses_and_keeps_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "id.key"
    assert main(["identity", "init", "--key", str(key)]) == 0
    before = key.read_bytes()
    capsys.readouterr()
    assert main(["identity", "init", "--key", str(key)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err
    assert "--force" in err
    assert key.read_bytes() == before
    assert main(["identity", "init", "--key", str(key), "--force"]) == 0
    assert key.read_bytes() != before
    assert "enrolled again" in capsys.readouterr().err


def test_identity_show_never_prints_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "id.key"
    main(["identity", "init", "--key", str(key)])
    capsys.readouterr()
    pem_body = b"".join(key.read_bytes().splitlines()[1:-1]).decode()
    for extra in ([], ["--json"]):
        assert main(["identity", "show", "--key", str(key), *extra]) == 0
        captured = capsys.readouterr()
        assert pem_body not in captured.out + captured.err
        assert "PRIVATE" not in captured.out + captured.err


def test_identity_show_readable_key_exits_2_with_chmod_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "id.key"
    main(["identity", "init", "--key", str(key)])
    key.chmod(0o644)
    capsys.readouterr()
    assert main(["identity", "show", "--key", str(key)]) == 2
    assert f"chmod 600 {key}" in capsys.readouterr().err


def test_identity_key_and_config_dir_are_exclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["identity", "show", "--key", "/x", "--config-dir", str(tmp_path)])
    assert info.value.code == 2


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOBBYPAY_")}
    env.update(env_extra or {})
    return subprocess.run(
        [str(LOBBYPAY), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_lobbypay_script_validate_reports_problems_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", "[kiosk]\nidle_timeout_s = 1\n")
    result = _run("config", "validate", env_extra={"LOBBYPAY_CONFIG_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert f"{tmp_path / 'local.toml'}:2: kiosk.idle_timeout_s: " in result.stdout


def test_lobbypay_script_identity_init_and_show(tmp_path: Path) -> None:
    key = tmp_path / "id.key"
    init = _run("identity", "init", "--key", str(key), "--json")
    assert init.returncode == 0, init.stderr
    show = _run("identity", "show", "--key", str(key), "--json")
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["terminal_id"] == json.loads(init.stdout)["terminal_id"]
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_lobbypay_script_config_show_json_env_override(tmp_path: Path) -> None:
    result = _run(
        "config",
        "show",
        "--json",
        "--config-dir",
        str(tmp_path),
        env_extra={"LOBBYPAY_GATEWAY__LISTEN_PORT": "9443"},
    )
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)["settings"]["gateway.listen_port"]
    assert entry["value"] == 9443
    assert entry["source"]["env_var"] == "LOBBYPAY_GATEWAY__LISTEN_PORT"


def test_config_describe_documents_every_setting_with_a_working_env_var(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pydantic import SecretStr

    from firmware_config.loader import load_config
    from firmware_config.settings import Settings, effective_values, setting_fields

    assert main(["config", "describe", "--json"]) == 0
    rows = {row["key"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {item.key for item in setting_fields()}
    defaults = effective_values(Settings())
    for key, row in rows.items():
        assert row["description"], key
        assert row["type"], key
        value = defaults[key]
        if row["secret"]:
            assert row["default"] == "***"
            assert isinstance(value, SecretStr)
            value = value.get_secret_value()
        # The documented variable really sets the documented key.
        text = ",".join(value) if isinstance(value, list) else "" if value is None else str(value)
        loaded = load_config(tmp_path, env={row["env_var"]: text})
        assert loaded.provenance[key].env_var == row["env_var"], key


def test_config_describe_text_filters_by_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "describe", "journal"]) == 0
    out = capsys.readouterr().out
    assert "journal.offline_payments_max\n" in out
    assert "env: LOBBYPAY_JOURNAL__OFFLINE_PAYMENTS_MAX" in out
    assert "terminal.role" not in out
    assert main(["config", "describe", "no.such"]) == 2
