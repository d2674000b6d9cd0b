"""``lobbypay terminal``: help, actions against a simulator process, exit codes, ``simulate``."""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from drivers.zvt.cli import PASSWORD_ENV, add_terminal_parser

pytestmark = pytest.mark.timeout(60)

ACTIONS = ["status", "pay", "reverse", "end-of-day", "last", "simulate"]


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lobbypay")
    add_terminal_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["terminal", *argv])
    return int(args.func(args))


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line:
                return line.strip()
        if proc.poll() is not None:
            break
    raise AssertionError("simulator printed nothing")


def _start_simulator(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware_config.dispatch",
            "terminal",
            "simulate",
            "--delay",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = _read_line(proc, 20)
    return proc, line.split(": ", 1)[1]


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise


@pytest.fixture(scope="module")
def zvt_cli_sim() -> Iterator[str]:
    proc, url = _start_simulator("--tcp", "127.0.0.1:0")
    yield url
    assert _stop(proc) == 0


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_has_help(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(action, "--help")
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_terminal_without_action_prints_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli() == 2
    assert "ACTION" in capsys.readouterr().out


def test_pay_approved_prints_json_with_masked_card(
    zvt_cli_sim: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("pay", "--device", zvt_cli_sim, "--amount", "12345", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["approved"] is True
    assert result["amount_minor"] == 12345
    assert result["currency"] == "RUB"
    assert result["masked_pan"] == "220220******0014"
    assert result["status"] == "approved"


def test_pay_then_last_then_reverse_then_end_of_day(
    zvt_cli_sim: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("pay", "--device", zvt_cli_sim, "--amount", "500") == 0
    assert "payment: APPROVED" in capsys.readouterr().out
    assert run_cli("last", "--device", zvt_cli_sim, "--json") == 0
    last = json.loads(capsys.readouterr().out)["transaction"]
    assert last["amount_minor"] == 500
    assert last["approved"] is True
    receipt = str(last["receipt_no"])
    assert run_cli("reverse", "--device", zvt_cli_sim, "--receipt", receipt, "--lang", "ru") == 0
    assert "reversal: APPROVED" in capsys.readouterr().out
    # Reversing twice is refused by the terminal: a problem found.
    assert run_cli("reverse", "--device", zvt_cli_sim, "--receipt", receipt) == 2
    capsys.readouterr()
    assert run_cli("end-of-day", "--device", zvt_cli_sim) == 0
    assert "end of day: ok" in capsys.readouterr().out


def test_status_text_output(zvt_cli_sim: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("status", "--device", zvt_cli_sim, "--lang", "ru") == 0
    assert "терминал готов" in capsys.readouterr().out


def test_declined_payment_exits_2() -> None:
    proc, url = _start_simulator("--tcp", "127.0.0.1:0", "--outcome", "declined")
    try:
        assert run_cli("pay", "--device", url, "--amount", "100") == 2
    finally:
        assert _stop(proc) == 0


def test_unreachable_device_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("status", "--device", "tcp://127.0.0.1:1", "--timeout", "2") == 1
    assert "not available" in capsys.readouterr().err


@pytest.mark.parametrize("amount", ["12.50", "0", "-5", "abc"])
def test_bad_amount_exits_2(amount: str) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli("pay", "--device", "tcp://127.0.0.1:1", "--amount", amount)
    assert info.value.code == 2


def test_bad_password_variable_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "12ab")
    assert run_cli("status", "--device", "tcp://127.0.0.1:1") == 2


def test_simulate_pty_prints_a_path_that_works_as_a_device(
    tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]
) -> None:
    link = os.path.join(tmp_path, "zvt-pty")
    proc, path = _start_simulator("--pty", "--link", link)
    try:
        assert path == link
        assert os.path.realpath(path).startswith("/dev/pts/")
        assert run_cli("pay", "--device", path, "--amount", "1999") == 0
        assert "amount: 19.99 RUB" in capsys.readouterr().out
    finally:
        assert _stop(proc) == 0
    assert not os.path.lexists(link)


def test_ctrl_c_during_pay_aborts_the_payment_on_the_terminal() -> None:
    sim, url = _start_simulator("--tcp", "127.0.0.1:0", "--card-wait", "20")
    pay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware_config.dispatch",
            "terminal",
            "pay",
            "--device",
            url,
            "--amount",
            "700",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        while "insert or tap card" not in _read_line(pay, 20):
            pass
        pay.send_signal(signal.SIGINT)
        out, _ = pay.communicate(timeout=20)
        assert pay.returncode == 2
        assert "payment: ABORTED" in out
    finally:
        if pay.poll() is None:
            pay.kill()
        assert _stop(sim) == 0
