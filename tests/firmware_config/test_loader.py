"""Layered loading: order of layers, provenance, environment, every problem at once."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_config.loader import (
    FILE_BYTES_MAX,
    PROFILES_DIR,
    ConfigError,
    Problem,
    Source,
    available_profiles,
    load_config,
)

NO_ENV: dict[str, str] = {}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(config_dir: Path, env: dict[str, str] | None = None) -> tuple[Problem, ...]:
    with pytest.raises(ConfigError) as info:
        load_config(config_dir, env=NO_ENV if env is None else env)
    return info.value.problems


def test_missing_config_dir_gives_defaults_from_default_layer(tmp_path: Path) -> None:
    loaded = load_config(tmp_path / "absent", env=NO_ENV)
    assert loaded.settings.journal.offline_payments_max == 5_000
    assert loaded.files == ()
    assert set(s.kind for s in loaded.provenance.values()) == {"default"}
    assert loaded.source_of("terminal.role") == Source(kind="default")


def test_layers_override_in_order_with_provenance_per_layer(tmp_path: Path) -> None:
    # Each layer sets `terminal.label` (the last one must win) and one key of
    # its own (each must be attributed to its own file and line).
    write(tmp_path / "profile.toml", '[terminal]\nlabel = "profile"\nlocation = "hall"\n')
    write(
        tmp_path / "override.d" / "20-second.toml",
        '[terminal]\nlabel = "override-20"\n\n[gateway]\nlisten_port = 9020\n',
    )
    write(
        tmp_path / "override.d" / "10-first.toml",
        '[terminal]\nlabel = "override-10"\n[kiosk]\nidle_timeout_s = 90\n'
        "[gateway]\nlisten_port = 9010\n",
    )
    write(tmp_path / "override.d" / "README", "not toml, ignored\n")
    write(tmp_path / "override.d" / ".30-editor-backup.toml", "not = [toml, ignored\n")
    write(
        tmp_path / "local.toml",
        'hardware_profile = "rpi4"\n\n[terminal]\nlabel = "local"\nrole = "gateway"\n',
    )
    loaded = load_config(tmp_path, env=NO_ENV)
    settings, prov = loaded.settings, loaded.provenance

    assert settings.terminal.label == "local"
    assert prov["terminal.label"] == Source(kind="local", path=tmp_path / "local.toml", line=4)
    assert prov["terminal.role"] == Source(kind="local", path=tmp_path / "local.toml", line=5)
    assert prov["hardware_profile"] == Source(kind="local", path=tmp_path / "local.toml", line=1)

    # override.d is read in name order: 20 overrides 10.
    assert settings.gateway.listen_port == 9020
    assert prov["gateway.listen_port"].path == tmp_path / "override.d" / "20-second.toml"
    assert prov["gateway.listen_port"].line == 5
    assert prov["kiosk.idle_timeout_s"] == Source(
        kind="override", path=tmp_path / "override.d" / "10-first.toml", line=4
    )
    # The site's profile.toml refines the shipped profile.
    assert prov["terminal.location"] == Source(
        kind="profile", path=tmp_path / "profile.toml", line=3
    )
    # The shipped rpi4 profile sets the devices.
    assert settings.devices.payment_terminal.driver == "zvt"
    shipped = prov["devices.payment_terminal.driver"]
    assert shipped.kind == "profile"
    assert shipped.path == PROFILES_DIR / "rpi4.toml"
    assert shipped.line is not None
    assert (
        (PROFILES_DIR / "rpi4.toml").read_text().splitlines()[shipped.line - 1].startswith("driver")
    )
    assert prov["journal.retention_s"].kind == "default"
    assert loaded.files == (
        PROFILES_DIR / "rpi4.toml",
        tmp_path / "profile.toml",
        tmp_path / "override.d" / "10-first.toml",
        tmp_path / "override.d" / "20-second.toml",
        tmp_path / "local.toml",
    )


def test_env_overrides_every_file_layer_with_env_var_provenance(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", "[journal]\noffline_payments_max = 20\n")
    env = {
        "LOBBYPAY_JOURNAL__OFFLINE_PAYMENTS_MAX": "10",
        "LOBBYPAY_DEVICES__PRINTER__DRIVER": "escpos",
        "LOBBYPAY_DEVICES__PRINTER__URL": "socket://127.0.0.1:9100",
        "LOBBYPAY_KIOSK__LANGUAGES": "en, ru",
        "LOBBYPAY_CENTRAL__REQUEST_TIMEOUT_S": "2.5",
        "LOBBYPAY_IDENTITY__KEY_PATH": "/srv/id.key",
        "LOBBYPAY_CONFIG_DIR": "/elsewhere",  # not a setting: ignored here
        "LOBBYPAY_SOMETHING_ELSE": "x",  # another package's variable: ignored
        "PATH": "/usr/bin",
    }
    loaded = load_config(tmp_path, env=env)
    settings = loaded.settings
    assert settings.journal.offline_payments_max == 10
    assert loaded.provenance["journal.offline_payments_max"] == Source(
        kind="env", env_var="LOBBYPAY_JOURNAL__OFFLINE_PAYMENTS_MAX"
    )
    assert settings.devices.printer.url == "socket://127.0.0.1:9100"
    assert settings.kiosk.languages == ["en", "ru"]
    assert settings.central.request_timeout_s == 2.5
    assert settings.identity_key_path == Path("/srv/id.key")
    assert str(loaded.provenance["kiosk.languages"]) == "env LOBBYPAY_KIOSK__LANGUAGES"


def test_env_json_list_and_empty_optional(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", '[journal]\npath = "/data/j.db"\n')
    env = {"LOBBYPAY_KIOSK__LANGUAGES": '["ru"]', "LOBBYPAY_JOURNAL__PATH": ""}
    settings = load_config(tmp_path, env=env).settings
    assert settings.kiosk.languages == ["ru"]
    assert settings.journal.path is None


def test_process_environment_is_used_when_env_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "local.toml", "[journal]\noffline_payments_max = 20\n")
    monkeypatch.setenv("LOBBYPAY_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("LOBBYPAY_GATEWAY__LISTEN_PORT", "8181")
    loaded = load_config()
    assert loaded.config_dir == tmp_path
    assert loaded.settings.journal.offline_payments_max == 20
    assert loaded.settings.gateway.listen_port == 8181


def test_hardware_profile_from_env_beats_local_file(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", 'hardware_profile = "rpi4"\n')
    loaded = load_config(tmp_path, env={"LOBBYPAY_HARDWARE_PROFILE": "generic"})
    assert loaded.settings.hardware_profile == "generic"
    assert loaded.settings.devices.payment_terminal.driver == "simulator"
    assert loaded.provenance["devices.card_reader.driver"].path == PROFILES_DIR / "generic.toml"


def test_shipped_profiles_validate_on_their_own(tmp_path: Path) -> None:
    assert {"rpi4", "generic"} <= set(available_profiles())
    for name in available_profiles():
        loaded = load_config(tmp_path, env={"LOBBYPAY_HARDWARE_PROFILE": name})
        assert loaded.settings.hardware_profile == name


def test_unknown_hardware_profile_is_a_problem_at_its_line(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", '# box\nhardware_profile = "rpi9"\n')
    (problem,) = problems_of(tmp_path)
    assert problem.key == "hardware_profile"
    assert problem.source == Source(kind="local", path=tmp_path / "local.toml", line=2)
    assert "rpi4" in problem.message


def test_hardware_profile_name_cannot_be_a_path(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", 'hardware_profile = "../../etc/passwd"\n')
    (problem,) = problems_of(tmp_path)
    assert problem.key == "hardware_profile"
    assert problem.source is not None
    assert problem.source.line == 1


def test_hardware_profile_outside_local_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "override.d" / "a.toml", 'hardware_profile = "rpi4"\n')
    (problem,) = problems_of(tmp_path)
    assert problem.key == "hardware_profile"
    assert problem.source is not None
    assert problem.source.kind == "override"


def test_every_problem_in_several_files_is_reported_with_key_and_line(tmp_path: Path) -> None:
    write(
        tmp_path / "profile.toml",
        '[devices.printer]\ndriver = "escpos"\n',  # url left unset: required for escpos
    )
    write(
        tmp_path / "override.d" / "10-limits.toml",
        "[journal]\n"
        "offline_payments_max = 0\n"  # line 2: must be > 0
        "ofline_age_max_s = 5\n",  # line 3: unknown key (typo)
    )
    write(
        tmp_path / "override.d" / "20-broken.toml",
        '[central]\nurl = "https://central.example"\npublic_key = \n',  # line 3: syntax error
    )
    write(
        tmp_path / "local.toml",
        "[terminal]\n"
        'role = "atm"\n'  # line 2: not a role
        "\n"
        "[kiosk]\n"
        'idle_timeout_s = "60"\n'  # line 5: string, not integer
        'languages = ["ru", 5]\n'  # line 6: item 1 is not a string
        "\n"
        "[jornal]\n"  # line 8: unknown section
        "path = 1\n",
    )
    env = {"LOBBYPAY_GATEWAY__LISTEN_PORT": "eighty"}
    found = {(p.key, str(p.source)) for p in problems_of(tmp_path, env)}

    override = tmp_path / "override.d"
    assert found == {
        ("devices.printer.url", f"{tmp_path / 'profile.toml'}:2"),
        ("journal.offline_payments_max", f"{override / '10-limits.toml'}:2"),
        ("journal.ofline_age_max_s", f"{override / '10-limits.toml'}:3"),
        ("", f"{override / '20-broken.toml'}:3"),
        ("terminal.role", f"{tmp_path / 'local.toml'}:2"),
        ("kiosk.idle_timeout_s", f"{tmp_path / 'local.toml'}:5"),
        ("kiosk.languages[1]", f"{tmp_path / 'local.toml'}:6"),
        ("jornal", f"{tmp_path / 'local.toml'}:8"),
        ("gateway.listen_port", "env LOBBYPAY_GATEWAY__LISTEN_PORT"),
    }


def test_problems_print_as_path_line_key_message_in_file_order(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", "[journal]\nretention_s = -1\noffline_age_max_s = 0\n")
    problems = problems_of(tmp_path)
    lines = [str(p) for p in problems]
    local = tmp_path / "local.toml"
    assert lines == [
        f"{local}:2: journal.retention_s: Input should be greater than 0",
        f"{local}:3: journal.offline_age_max_s: Input should be greater than 0",
    ]


def test_path_of_wrong_type_gets_a_readable_message(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", "[terminal]\ndata_dir = 7\n")
    (problem,) = problems_of(tmp_path)
    assert problem.key == "terminal.data_dir"
    assert problem.message.startswith("must be a path")


def test_unknown_key_suggests_the_close_name(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", "[journal]\nofline_payments_max = 1\n")
    (problem,) = problems_of(tmp_path)
    assert problem.message == "unknown setting; did you mean 'journal.offline_payments_max'?"


def test_toml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", '[terminal]\nlabel = "a"\n\n\nrole = kiosk\n')
    (problem,) = problems_of(tmp_path)
    assert problem.key == ""
    assert problem.source == Source(kind="local", path=tmp_path / "local.toml", line=5)
    assert problem.message.startswith("TOML syntax error: ")
    assert "line 5" not in problem.message  # the line is in the location, once


def test_toml_error_at_end_of_document_reports_last_line(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", '[terminal]\nlabel = "a')
    (problem,) = problems_of(tmp_path)
    assert problem.source is not None
    assert problem.source.line == 2


def test_section_given_as_value_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", "journal = 5\n")
    (problem,) = problems_of(tmp_path)
    assert problem.key == "journal"
    assert problem.message == "must be a table ([journal])"
    assert problem.source is not None
    assert problem.source.line == 1


def test_value_replacing_a_table_takes_its_provenance(tmp_path: Path) -> None:
    write(tmp_path / "override.d" / "a.toml", '[devices.printer]\ndriver = "escpos"\nurl = "/x"\n')
    write(tmp_path / "local.toml", '[devices]\nprinter = { driver = "simulator" }\n')
    loaded = load_config(tmp_path, env=NO_ENV)
    # Tables merge key by key: the inline table in local.toml replaces only driver.
    assert loaded.settings.devices.printer.driver == "simulator"
    assert loaded.settings.devices.printer.url == "/x"
    assert loaded.provenance["devices.printer.driver"].line == 2
    assert loaded.provenance["devices.printer.url"].kind == "override"


def test_required_url_points_at_the_driver_that_needs_it(tmp_path: Path) -> None:
    env = {"LOBBYPAY_DEVICES__PAYMENT_TERMINAL__DRIVER": "zvt"}
    (problem,) = problems_of(tmp_path, env)
    assert problem.key == "devices.payment_terminal.url"
    assert problem.source == Source(
        kind="env", env_var="LOBBYPAY_DEVICES__PAYMENT_TERMINAL__DRIVER"
    )


def test_malformed_env_name_is_a_problem(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, {"LOBBYPAY_JOURNAL____PATH": "/x"})
    assert problem.source == Source(kind="env", env_var="LOBBYPAY_JOURNAL____PATH")


def test_unknown_env_setting_is_a_problem(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, {"LOBBYPAY_JOURNAL__NOPE": "1"})
    assert problem.key == "journal.nope"
    assert str(problem.source) == "env LOBBYPAY_JOURNAL__NOPE"


def test_secret_value_never_appears_in_problems(tmp_path: Path) -> None:
    write(
        tmp_path / "local.toml",
        '[devices.payment_terminal]\npassword = "98765x"\n[kiosk]\nservice_pin_hash = 424242\n',
    )
    problems = problems_of(
        tmp_path, {"LOBBYPAY_DEVICES__PAYMENT_TERMINAL__PASSWORD": "secret-pw-771"}
    )
    text = "\n".join(str(p) for p in problems)
    assert {p.key for p in problems} == {
        "devices.payment_terminal.password",
        "kiosk.service_pin_hash",
    }
    for secret in ("98765x", "424242", "secret-pw-771"):
        assert secret not in text
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert "98765x" not in str(info.value)
    assert "98765x" not in repr(info.value.problems)


def test_non_utf8_file_is_a_problem_with_line(tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_bytes(b'[terminal]\nlabel = "\xff"\n')
    (problem,) = problems_of(tmp_path)
    assert problem.message == "not valid UTF-8 text"
    assert problem.source is not None
    assert problem.source.line == 2


def test_oversized_file_is_a_problem_not_a_read(tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_bytes(b"#" * (FILE_BYTES_MAX + 1))
    (problem,) = problems_of(tmp_path)
    assert "larger than" in problem.message


def test_file_at_exactly_the_size_limit_is_read(tmp_path: Path) -> None:
    body = b'[terminal]\nlabel = "x"\n'
    (tmp_path / "local.toml").write_bytes(body + b"#" * (FILE_BYTES_MAX - len(body)))
    assert load_config(tmp_path, env=NO_ENV).settings.terminal.label == "x"


def test_directory_in_place_of_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "local.toml").mkdir()
    (problem,) = problems_of(tmp_path)
    assert "directory" in problem.message


def test_fifo_in_place_of_file_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "local.toml")
    (problem,) = problems_of(tmp_path)
    assert problem.message == "is not a regular file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "local.toml", "")
    path.chmod(0)
    (problem,) = problems_of(tmp_path)
    assert "cannot read" in problem.message


def test_deeply_nested_toml_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n")
    (problem,) = problems_of(tmp_path)
    assert problem.source is not None
    assert problem.source.kind == "local"


def test_config_error_is_a_firmware_config_error_with_next_step(tmp_path: Path) -> None:
    from firmware_config.errors import FirmwareConfigError

    write(tmp_path / "local.toml", "[journal]\nretention_s = 0\n")
    with pytest.raises(FirmwareConfigError) as info:
        load_config(tmp_path, env=NO_ENV)
    assert "config validate" in info.value.next_step


_FUZZ_LINES = st.sampled_from(
    [
        "[journal]",
        "[devices.printer]",
        "[[kiosk]]",
        "offline_payments_max = 3",
        "offline_payments_max = -3",
        'driver = "escpos"',
        "url = 5",
        "languages = [",
        '"ru", 1]',
        "x.y.z = {a = [1, {b = 2}]}",
        'password = "123"',
        "retention_s = 1e400",
        'label = """',
        "key = 1979-05-27",
        "= 1",
        "\x00",
        "ё = 'ж'",
        "",
    ]
)


@settings(max_examples=120, deadline=None)
@given(
    lines=st.lists(st.one_of(_FUZZ_LINES, st.text(max_size=20)), max_size=12),
    raw=st.binary(max_size=64),
    use_raw=st.booleans(),
)
def test_any_local_file_gives_settings_or_config_error(
    lines: list[str], raw: bytes, use_raw: bool
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        config_dir = Path(directory)
        data = raw if use_raw else "\n".join(lines).encode("utf-8", "surrogatepass")
        (config_dir / "local.toml").write_bytes(data)
        try:
            load_config(config_dir, env=NO_ENV)
        except ConfigError as exc:
            for problem in exc.problems:
                assert problem.source is not None
                assert problem.source.path == config_dir / "local.toml"
                assert str(problem)
