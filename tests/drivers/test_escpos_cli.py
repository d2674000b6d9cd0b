"""`lobbypay printer ...`: help, render, and test/status/simulate against simulators."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from drivers.escpos.client import EscPosPrinter
from drivers.escpos.document import PrinterProfile
from drivers.escpos.png import read_png
from drivers.escpos.receipt import layout_receipt, sample_receipt
from drivers.escpos.render import render_text
from drivers.escpos.simulator import SimulatedPrinter, TcpPrinterServer
from firmware_config.dispatch import main

LOBBYPAY = [sys.executable, "-m", "firmware_config.dispatch"]


@pytest.mark.parametrize(
    "argv",
    [
        ["printer", "--help"],
        ["printer", "test", "--help"],
        ["printer", "status", "--help"],
        ["printer", "simulate", "--help"],
        ["printer", "render", "--help"],
    ],
)
def test_every_printer_command_has_help(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_printer_without_subcommand_prints_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["printer"]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize(("lang", "width"), [("ru", 42), ("en", 32)])
def test_render_text_prints_the_sample_receipt(
    lang: str, width: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["printer", "render", "--text", "--lang", lang, "--width", str(width)]) == 0
    expected = render_text(
        layout_receipt(sample_receipt(lang=lang), PrinterProfile(width_chars=width), lang=lang)
    )
    assert capsys.readouterr().out == expected


def test_render_png_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "receipt.png"
    assert main(["printer", "render", "--png", str(out), "--width", "48"]) == 0
    width, height, _ = read_png(out.read_bytes())
    assert width == 48 * 12
    assert height > 500


def test_render_png_to_unwritable_path_exits_1(tmp_path: Path) -> None:
    assert main(["printer", "render", "--png", str(tmp_path / "no" / "such" / "x.png")]) == 1


async def run_cli(*args: str, timeout_s: float = 30.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *LOBBYPAY,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_status_json_against_the_simulator() -> None:
    sim = SimulatedPrinter()
    async with TcpPrinterServer(sim) as server:
        code, out, _ = await run_cli("printer", "status", "--device", server.url, "--json")
        assert code == 0
        status = json.loads(out)
        assert status["ready"] is True
        assert status["paper_out"] is False
        sim.open_cover()
        code, out, _ = await run_cli("printer", "status", "--device", server.url, "--json")
        assert code == 2
        assert json.loads(out)["cover_open"] is True


async def test_test_print_lands_on_the_simulator() -> None:
    sim = SimulatedPrinter(width_chars=32)
    async with TcpPrinterServer(sim) as server:
        code, out, _ = await run_cli(
            "printer", "test", "--device", server.url, "--width", "32", "--lang", "en"
        )
    assert code == 0
    assert "Test receipt printed" in out
    expected = layout_receipt(sample_receipt(lang="en"), PrinterProfile(width_chars=32), lang="en")
    assert sim.document() == expected


async def test_test_print_with_cover_open_exits_1_with_bilingual_message() -> None:
    sim = SimulatedPrinter()
    sim.open_cover()
    async with TcpPrinterServer(sim) as server:
        code, _, err = await run_cli("printer", "test", "--device", server.url)
    assert code == 1
    assert "Открыта крышка принтера" in err
    assert sim.printed == []


async def test_status_of_missing_device_exits_1() -> None:
    code, _, err = await run_cli(
        "printer", "status", "--device", "/dev/lobbypay-no-such-printer", "--lang", "en"
    )
    assert code == 1
    assert "Printer not connected" in err


async def test_simulate_tcp_records_a_print_and_shows_it_on_ctrl_c() -> None:
    proc = await asyncio.create_subprocess_exec(
        *LOBBYPAY,
        "printer",
        "simulate",
        "--tcp",
        "127.0.0.1:0",
        "--seconds",
        "60",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        url = first.rsplit(" ", 1)[-1].strip()
        assert url.startswith("socket://127.0.0.1:")
        async with await EscPosPrinter.open(url) as printer:
            await printer.print_receipt(sample_receipt())
        proc.send_signal(signal.SIGINT)
        rest = (await asyncio.wait_for(proc.stdout.read(), 15)).decode()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert rest == render_text(layout_receipt(sample_receipt(), PrinterProfile()))


async def test_simulate_pty_prints_its_path() -> None:
    code, out, _ = await run_cli("printer", "simulate", "--pty", "--seconds", "0.2")
    assert code == 0
    assert out.startswith("printer simulator on /dev/")


@pytest.mark.parametrize(
    "argv",
    [
        ["printer", "simulate", "--tcp", "nonsense"],
        ["printer", "simulate", "--pty", "--paper-lines", "-1"],
    ],
)
def test_simulate_bad_arguments_exit_2(argv: list[str]) -> None:
    assert main(argv) == 2
