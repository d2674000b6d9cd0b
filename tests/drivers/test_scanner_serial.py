"""The serial scanner over a real pty and a real TCP socket (pyserial socket://)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.scanner.classify import DigitsScanned, QrScanned, ResidentCardSwiped, ScanRejected
from drivers.scanner.framing import FramerConfig
from drivers.scanner.gost_qr import QrEncoding, encode_payment_qr
from drivers.scanner.samples import sample_bill
from drivers.scanner.serial_scanner import ScannerConfig, ScannerFault, SerialPort, SerialScanner
from drivers.scanner.simulator import NOISE, ScannerSimulator

WAIT_S = 5.0


@pytest.fixture
def sim() -> AsyncIterator[ScannerSimulator]:
    with ScannerSimulator() as simulator:
        yield simulator  # type: ignore[misc]


def _config(url: str, **kwargs: Any) -> ScannerConfig:
    kwargs.setdefault("read_timeout_s", 0.02)
    kwargs.setdefault("reopen_delay_s", 0.05)
    return ScannerConfig(url=url, **kwargs)


class Reader:
    """Runs a scanner's event loop in a task and collects what it yields."""

    def __init__(self, scanner: SerialScanner) -> None:
        self.scanner = scanner
        self.events: list[Any] = []
        self._new = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def opened(self) -> Reader:
        await self.scanner.wait_open(WAIT_S)
        return self

    async def _run(self) -> None:
        async for event in self.scanner.events():
            self.events.append(event)
            self._new.set()

    async def wait_for(self, count: int, kind: type | tuple[type, ...] = object) -> list[Any]:
        async with asyncio.timeout(WAIT_S):
            while True:
                matching = [e for e in self.events if isinstance(e, kind)]
                if len(matching) >= count:
                    return matching
                self._new.clear()
                await self._new.wait()

    async def wait_for_digits(self, digits: str) -> None:
        async with asyncio.timeout(WAIT_S):
            while not any(getattr(e, "digits", "") == digits for e in self.events):
                self._new.clear()
                await self._new.wait()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_scans_every_encoding_split_into_chunks_with_delays(sim: ScannerSimulator) -> None:
    reader = await Reader(SerialScanner(_config(sim.port_path))).opened()
    try:
        for encoding in QrEncoding:
            payload = encode_payment_qr(sample_bill(encoding))
            await sim.scan_async(payload, chunk_bytes=37, delay_s=0.005)
        events = await reader.wait_for(3)
        assert [type(e) for e in events] == [QrScanned] * 3
        assert [e.payment.encoding for e in events] == list(QrEncoding)
        assert all(e.payment.name == 'ТСЖ "Берёзовая роща"' for e in events)
    finally:
        await reader.stop()


async def test_noise_before_a_scan_is_filtered(sim: ScannerSimulator) -> None:
    reader = await Reader(SerialScanner(_config(sim.port_path))).opened()
    try:
        sim.write(b"\r\n\r\n" + NOISE + b"\r\n")  # power-up garbage, then a blank line
        await sim.scan_async(b";123456782=00011?", noise_before=b"\x00\x02")
        (event,) = await reader.wait_for(1)
        assert isinstance(event, ResidentCardSwiped)
        assert event.card.account == "123456782"
    finally:
        await reader.stop()


async def test_partial_line_then_silence_is_discarded_not_glued_to_next_scan(
    sim: ScannerSimulator,
) -> None:
    framing = FramerConfig(inter_byte_timeout_s=0.1, line_timeout_s=0.5)
    reader = await Reader(SerialScanner(_config(sim.port_path, framing=framing))).opened()
    try:
        sim.write(b"ST00012|Name=half a sc")  # the cable wiggled mid-read
        await asyncio.sleep(0.3)
        await sim.scan_async(b"123456782")
        (event,) = await reader.wait_for(1)
        assert isinstance(event, DigitsScanned)
        assert event.digits == "123456782"
    finally:
        await reader.stop()


async def test_slow_trickle_older_than_line_timeout_is_discarded(sim: ScannerSimulator) -> None:
    framing = FramerConfig(inter_byte_timeout_s=0.2, line_timeout_s=0.3)
    reader = await Reader(SerialScanner(_config(sim.port_path, framing=framing))).opened()
    try:
        await sim.scan_async(b"1234567890", suffix=b"", chunk_bytes=1, delay_s=0.05)
        await sim.scan_async(b"", suffix=b"\r\n")  # the suffix arrives too late
        await asyncio.sleep(0.3)
        await sim.scan_async(b"123456782")
        await reader.wait_for_digits("123456782")
        digits = [e.digits for e in reader.events if isinstance(e, DigitsScanned)]
        assert "1234567890" not in digits  # never delivered whole
        assert digits[-1] == "123456782"
    finally:
        await reader.stop()


async def test_bank_card_over_the_wire_is_rejected(sim: ScannerSimulator) -> None:
    reader = await Reader(SerialScanner(_config(sim.port_path))).opened()
    try:
        await sim.scan_async(b";5555555555554444=29121010000000?", chunk_bytes=5, delay_s=0.002)
        (event,) = await reader.wait_for(1)
        assert isinstance(event, ScanRejected)
        assert (event.kind, event.reason) == ("track", "bank_card")
    finally:
        await reader.stop()


async def test_unplug_yields_fault_and_gives_up_after_max_reopen_attempts(
    sim: ScannerSimulator,
) -> None:
    scanner = SerialScanner(_config(sim.port_path, reopen_attempts_max=2))
    reader = await Reader(scanner).opened()
    try:
        await sim.scan_async(b"123456782")
        await reader.wait_for(1, DigitsScanned)
        sim.unplug()
        async with asyncio.timeout(WAIT_S):
            await reader.task  # ends by itself after giving up
        faults = [e.reason for e in reader.events if isinstance(e, ScannerFault)]
        assert faults == ["port_failed", "open_failed", "open_failed", "gave_up"]
        assert scanner._executor is None
    finally:
        await reader.stop()


async def test_missing_device_yields_open_failed() -> None:
    reader = Reader(SerialScanner(_config("/dev/nonexistent-scanner", reopen_attempts_max=1)))
    async with asyncio.timeout(WAIT_S):
        await reader.task
    assert [e.reason for e in reader.events] == ["open_failed", "gave_up"]
    assert reader.events[-1].temporary is False


async def test_socket_url_reconnects_after_the_link_drops() -> None:
    connections = 0

    async def serve(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        # pyserial flushes input when it opens a port, as real ports do.
        await asyncio.sleep(0.2)
        writer.write(f"10000000{connections}\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # the scanner's network adapter drops the link

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader = Reader(SerialScanner(_config(f"socket://127.0.0.1:{port}")))
    try:
        events = await reader.wait_for(2, DigitsScanned)
        assert [e.digits for e in events[:2]] == ["100000001", "100000002"]
        assert any(isinstance(e, ScannerFault) and e.reason == "port_failed" for e in reader.events)
    finally:
        await reader.stop()
        server.close()
        await server.wait_closed()


async def test_breaking_out_of_events_closes_the_port(sim: ScannerSimulator) -> None:
    scanner = SerialScanner(_config(sim.port_path))
    events = scanner.events()
    pending = asyncio.ensure_future(anext(events))
    await scanner.wait_open(WAIT_S)
    await sim.scan_async(b"123456782")
    async with asyncio.timeout(WAIT_S):
        first = await pending
    assert isinstance(first, DigitsScanned)
    await events.aclose()  # type: ignore[attr-defined]
    assert scanner._executor is None


def test_serial_port_adapter_reads_what_arrived(sim: ScannerSimulator) -> None:
    port = SerialPort(sim.port_path, baudrate=9600, read_timeout_s=0.05)
    port.open()
    try:
        assert port.read(100) == b""  # nothing yet: returns after the timeout
        sim.write(b"abc\r\n")
        data = b""
        for _ in range(20):
            data += port.read(100)
            if data.endswith(b"\r\n"):
                break
        assert data == b"abc\r\n"
    finally:
        port.close()
        port.close()  # idempotent


def test_scanner_config_validation() -> None:
    with pytest.raises(ValueError, match="empty"):
        ScannerConfig(url="")
    with pytest.raises(ValueError, match="read_timeout_s"):
        ScannerConfig(url="/dev/x", read_timeout_s=0)
    with pytest.raises(ValueError, match="reopen_attempts_max"):
        ScannerConfig(url="/dev/x", reopen_attempts_max=0)
    with pytest.raises(ValueError, match="reason"):
        ScannerFault(reason="bogus")


def test_simulator_write_times_out_when_nobody_reads() -> None:
    def fill(simulator: ScannerSimulator) -> None:
        for _ in range(10_000):
            simulator.write(b"x" * 4096)

    with ScannerSimulator(write_timeout_s=0.2) as simulator, pytest.raises(TimeoutError):
        fill(simulator)
    with pytest.raises(OSError, match="unplugged"):
        simulator.write(b"late")
