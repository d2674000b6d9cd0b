"""`lobbypay kiosk`: help, --hash-pin, configuration problems, and the app in a real terminal."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_config.dispatch import main
from kiosk.app_cli import serve_command
from kiosk.pin import verify_pin
from tests.kiosk.support import make_settings

REPO = Path(__file__).resolve().parents[2]
TERMINAL_WAIT_S = 30.0


def test_kiosk_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["kiosk", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in ("--serve", "--config-dir", "--hash-pin", "--simulated-inputs", "--port"):
        assert option in out


def test_hash_pin_prints_a_verifiable_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("2468\n"))
    assert main(["kiosk", "--hash-pin"]) == 0
    line = capsys.readouterr().out.strip()
    assert verify_pin("2468", line)
    assert "2468" not in line


def test_hash_pin_refuses_a_short_pin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("12\n"))
    assert main(["kiosk", "--hash-pin"]) == 2
    assert "4..12 digits" in capsys.readouterr().err


def test_configuration_problem_exits_2_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "local.toml").write_text("[kiosk]\nidle_timeout_s = 1\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["kiosk", "--config-dir", str(tmp_path)])
    assert exited.value.code == 2
    assert "kiosk.idle_timeout_s" in capsys.readouterr().err


def test_serve_command_quotes_its_arguments() -> None:
    command = serve_command(Path("/etc/lobby pay"), simulated_inputs=True)
    assert command.endswith("-m kiosk --config-dir '/etc/lobby pay' --simulated-inputs")


def test_kiosk_runs_in_a_terminal_and_quits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    config = tmp_path / "etc"
    config.mkdir()
    (config / "local.toml").write_text(
        f'[terminal]\ndata_dir = "{settings.terminal.data_dir}"\n', encoding="utf-8"
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real command on a real terminal
        os.chdir(REPO)
        os.environ.update({"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "32"})
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "firmware_config.dispatch",
                "kiosk",
                "--config-dir",
                str(config),
            ],
        )
    screen = b""
    try:
        deadline = time.monotonic() + TERMINAL_WAIT_S
        while "Найти".encode() not in screen:
            assert time.monotonic() < deadline, screen[-2000:]
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    break
        assert "Добро пожаловать".encode() in screen
        log = settings.terminal.data_dir / "log" / "kiosk.log"
        while not log.exists() or "kiosk_ready" not in log.read_text(encoding="utf-8"):
            assert time.monotonic() < deadline, "the kiosk never finished starting"
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    os.read(fd, 65536)
        os.write(fd, b"\x11")  # Ctrl+Q
        deadline = time.monotonic() + TERMINAL_WAIT_S
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "the kiosk did not quit on Ctrl+Q"
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    os.read(fd, 65536)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    assert "kiosk_started" in log.read_text(encoding="utf-8")


def test_python_dash_m_kiosk_has_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert "--config-dir" in proc.stdout
