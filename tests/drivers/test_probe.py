"""Probing serial ports and PC/SC readers: the simulators on real ptys, pcscd with vpcd."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.escpos.simulator import PtyPrinterServer, SimulatedPrinter
from drivers.probe import (
    DeviceKind,
    ProbeTimeouts,
    candidate_ports,
    list_pcsc_readers,
    probe_port,
    probe_serial,
)
from drivers.scanner.simulator import ScannerSimulator
from drivers.zvt.simulator import TerminalSimulator
from tests.drivers.vcard.pcscd import PcscDaemon

FAST = ProbeTimeouts(printer_status_s=0.5, zvt_status_s=3.0)


@pytest.fixture
def ports(tmp_path: Path) -> Path:
    directory = tmp_path / "dev"
    directory.mkdir()
    return directory


@contextlib.asynccontextmanager
async def scanning(scanner: ScannerSimulator, interval_s: float = 0.1) -> AsyncIterator[None]:
    """Keep scanning a code, as a technician holding one in front of the scanner."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            with contextlib.suppress(OSError, TimeoutError):
                scanner.scan(b"1234567890")

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_probe_serial_finds_terminal_printer_and_scanner_on_their_ptys(ports: Path) -> None:
    terminal = await TerminalSimulator().serve_pty(link_path=ports / "ttyUSB0")
    printer = PtyPrinterServer(SimulatedPrinter())
    (ports / "ttyUSB1").symlink_to(await printer.start())
    scanner = ScannerSimulator()
    (ports / "ttyACM0").symlink_to(scanner.port_path)
    try:
        async with scanning(scanner):
            found = await probe_serial(
                [str(ports / "ttyUSB*"), str(ports / "ttyACM*")],
                ProbeTimeouts(printer_status_s=0.5, zvt_status_s=3.0, scanner_listen_s=3.0),
            )
    finally:
        await terminal.close()
        await printer.stop()
        scanner.close()

    kinds = {Path(f.path).name: f.kind for f in found}
    assert kinds == {
        "ttyUSB0": DeviceKind.PAYMENT_TERMINAL,
        "ttyUSB1": DeviceKind.PRINTER,
        "ttyACM0": DeviceKind.SCANNER,
    }
    by_name = {Path(f.path).name: f for f in found}
    assert "lobbypay-zvt-sim" in by_name["ttyUSB0"].detail
    assert by_name["ttyUSB1"].detail == "ESC/POS printer: ready"
    # What the scanner read is never reported, only that it read something.
    assert "1234567890" not in by_name["ttyACM0"].detail


async def test_printer_out_of_paper_is_found_but_not_ready(ports: Path) -> None:
    printer = SimulatedPrinter()
    printer.paper_out = True
    server = PtyPrinterServer(printer)
    path = await server.start()
    try:
        finding = await probe_port(path, FAST)
    finally:
        await server.stop()

    assert (finding.kind, finding.ready) == (DeviceKind.PRINTER, False)
    assert "paper out" in finding.detail


async def test_silent_port_is_reported_silent_within_its_timeouts() -> None:
    master, slave = os.openpty()
    try:
        started = time.monotonic()
        finding = await probe_port(os.ttyname(slave), FAST)
        elapsed = time.monotonic() - started
    finally:
        os.close(master)
        os.close(slave)

    assert (finding.kind, finding.answered) == (DeviceKind.SILENT, False)
    assert elapsed < FAST.printer_status_s + FAST.zvt_status_s + 3.0


async def test_port_that_cannot_be_opened_is_unusable(tmp_path: Path) -> None:
    finding = await probe_port(str(tmp_path / "ttyUSB9"), FAST)

    assert (finding.kind, finding.ready) == (DeviceKind.UNUSABLE, False)


def test_candidate_ports_lists_each_device_once_and_stops_at_the_bound(ports: Path) -> None:
    for n in range(5):
        (ports / f"ttyUSB{n}").touch()
    (ports / "by-id-printer").symlink_to(ports / "ttyUSB0")  # a second name of one device
    (ports / "ttyUSB-dangling").symlink_to(ports / "missing")

    everything = candidate_ports([str(ports / "*")])
    bounded = candidate_ports([str(ports / "*")], ports_max=3)

    assert [Path(p).name for p in everything] == [
        "by-id-printer",
        "ttyUSB1",
        "ttyUSB2",
        "ttyUSB3",
        "ttyUSB4",
    ]
    assert len(bounded) == 3


def test_probe_timeouts_refuse_non_positive_waits() -> None:
    with pytest.raises(ValueError, match="zvt_status_s"):
        ProbeTimeouts(zvt_status_s=0)
    with pytest.raises(ValueError, match="scanner_listen_s"):
        ProbeTimeouts(scanner_listen_s=-1)


async def test_pcsc_readers_are_listed_from_pcscd(pcscd: PcscDaemon) -> None:
    finding = await list_pcsc_readers(5.0)

    assert finding.error is None
    assert list(finding.readers) == pcscd.reader_names


async def test_pcsc_without_pcscd_reports_an_error_instead_of_raising(pcscd: PcscDaemon) -> None:
    pcscd.stop()

    finding = await list_pcsc_readers(5.0)

    assert finding.readers == ()
    assert finding.error
