"""Driver <-> simulator over a real pty and a real TCP socket, with injected faults."""

from __future__ import annotations

import asyncio
import os
import socket
import termios
import time
import tty
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.escpos.client import EscPosPrinter
from drivers.escpos.document import Cut, PrinterProfile, QrCode, TextLine
from drivers.escpos.errors import (
    CoverOpenError,
    PaperOutError,
    PrinterConnectionError,
    PrinterTimeout,
    StatusByteError,
)
from drivers.escpos.receipt import layout_receipt, sample_receipt
from drivers.escpos.render import render_text
from drivers.escpos.simulator import PtyPrinterServer, SimulatedPrinter, TcpPrinterServer
from drivers.escpos.status import PrinterStatus, encode_status

STATUS_QUERY_BYTES = 12


@pytest.fixture(params=["pty", "tcp"])
async def link(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SimulatedPrinter, str]]:
    sim = SimulatedPrinter(width_chars=42)
    if request.param == "pty":
        async with PtyPrinterServer(sim) as pty_server:
            yield sim, pty_server.path
    else:
        async with TcpPrinterServer(sim) as tcp_server:
            yield sim, tcp_server.url


async def open_printer(url: str, **kwargs: object) -> EscPosPrinter:
    return await EscPosPrinter.open(url, status_timeout_s=2.0, **kwargs)  # type: ignore[arg-type]


async def test_receipt_prints_and_is_recorded_as_laid_out(
    link: tuple[SimulatedPrinter, str],
) -> None:
    sim, url = link
    receipt = sample_receipt()
    async with await open_printer(url) as printer:
        report = await printer.print_receipt(receipt)
    expected = layout_receipt(receipt, PrinterProfile())
    assert sim.document() == expected
    assert render_text(sim.document()) == render_text(expected)
    assert sim.qr_payloads == [receipt.qr_payload.encode()]  # type: ignore[union-attr]
    assert sim.faults == []
    assert sim.ignored == 0
    assert report.lines_total == expected.text_lines
    assert report.status_after.ready
    assert not report.paper_near_end


async def test_english_receipt_on_58mm_paper(link: tuple[SimulatedPrinter, str]) -> None:
    sim, url = link
    sim.width_chars = 32
    profile = PrinterProfile(width_chars=32)
    async with await open_printer(url, profile=profile) as printer:
        await printer.print_receipt(sample_receipt(lang="en"), lang="en")
    expected = layout_receipt(sample_receipt(lang="en"), profile, lang="en")
    assert render_text(sim.document()) == render_text(expected)
    assert "TOTAL" in render_text(sim.document())


async def test_status_is_checked_before_each_chunk_and_at_the_end(
    link: tuple[SimulatedPrinter, str],
) -> None:
    sim, url = link
    async with await open_printer(url, chunk_lines=5) as printer:
        report = await printer.print_receipt(sample_receipt())
    chunks = -(-report.lines_total // 5)
    # 4 requests per status check: one before, one after each chunk (the last
    # chunk may carry only the QR, feed and cut).
    assert sim.status_requests // 4 in (chunks + 1, chunks + 2)


async def test_paper_out_mid_receipt_raises_with_progress_and_partial_output(
    link: tuple[SimulatedPrinter, str],
) -> None:
    sim, url = link
    sim.load_paper(10)
    async with await open_printer(url, chunk_lines=4) as printer:
        with pytest.raises(PaperOutError) as info:
            await printer.print_receipt(sample_receipt())
        err = info.value
        status = await printer.status()
    full = layout_receipt(sample_receipt(), PrinterProfile())
    assert err.lines_total == full.text_lines
    assert 10 < err.lines_sent < err.lines_total
    assert err.lines_sent % 4 == 0
    # The simulator printed exactly the roll's ten lines and nothing after them.
    assert sim.printed == list(full.elements[:10])
    assert not any(isinstance(e, Cut | QrCode) for e in sim.printed)
    assert render_text(full).startswith(render_text(sim.document()))
    assert status.paper_out
    assert not status.online
    assert err.title("en") == "Out of paper"


async def test_printing_resumes_after_paper_is_loaded(link: tuple[SimulatedPrinter, str]) -> None:
    sim, url = link
    sim.load_paper(3)
    async with await open_printer(url) as printer:
        with pytest.raises(PaperOutError):
            await printer.print_receipt(sample_receipt())
        sim.load_paper(None)
        sim.clear()
        await printer.print_receipt(sample_receipt())
    assert sim.document() == layout_receipt(sample_receipt(), PrinterProfile())


async def test_cover_open_before_printing_raises_and_sends_nothing(
    link: tuple[SimulatedPrinter, str],
) -> None:
    sim, url = link
    sim.open_cover()
    async with await open_printer(url) as printer:
        with pytest.raises(CoverOpenError):
            await printer.print_receipt(sample_receipt())
    assert sim.received_bytes == STATUS_QUERY_BYTES
    assert sim.initialized == 0
    assert sim.printed == []


async def test_paper_near_end_is_reported_not_raised(link: tuple[SimulatedPrinter, str]) -> None:
    sim, url = link
    sim.load_paper(100)
    sim.paper_near_end_lines = 90
    async with await open_printer(url) as printer:
        report = await printer.print_receipt(sample_receipt())
    assert report.paper_near_end
    assert report.status_after.ready


async def test_status_reports_cover_and_paper(link: tuple[SimulatedPrinter, str]) -> None:
    sim, url = link
    async with await open_printer(url) as printer:
        assert (await printer.status()).ready
        sim.open_cover()
        status = await printer.status()
        assert status.cover_open
        assert not status.online
        sim.close_cover()
        assert (await printer.status()).ready


def test_simulator_records_bad_commands_and_keeps_printing() -> None:
    sim = SimulatedPrinter(width_chars=32)
    reply = sim.feed(b"\x1b\x01one\n\x1d\x21\x88two\n\x10\x04\x04")
    assert reply == bytes((encode_status(sim.status)[4],))
    assert [e.text for e in sim.printed if isinstance(e, TextLine)] == ["one", "two"]
    assert len(sim.faults) == 2


@pytest.fixture
def silent_pty() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave, termios.TCSANOW)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


async def test_status_without_reply_times_out(silent_pty: tuple[int, str]) -> None:
    _, path = silent_pty
    printer = await EscPosPrinter.open(path, status_timeout_s=0.3)
    async with printer:
        started = time.monotonic()
        with pytest.raises(PrinterTimeout):
            await printer.status()
        assert time.monotonic() - started < 2.0


async def test_status_byte_without_fixed_bits_is_a_protocol_error(
    silent_pty: tuple[int, str],
) -> None:
    master, path = silent_pty
    loop = asyncio.get_running_loop()

    def answer_zeros() -> None:
        data = os.read(master, 1024)
        os.write(master, b"\x00" * (data.count(b"\x10\x04")))

    loop.add_reader(master, answer_zeros)
    try:
        async with await EscPosPrinter.open(path, status_timeout_s=1.0) as printer:
            with pytest.raises(StatusByteError):
                await printer.status()
    finally:
        loop.remove_reader(master)


async def test_missing_device_is_a_connection_error() -> None:
    with pytest.raises(PrinterConnectionError):
        await EscPosPrinter.open("/dev/lobbypay-no-such-printer")


async def test_closed_tcp_port_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PrinterConnectionError):
        await EscPosPrinter.open(f"socket://127.0.0.1:{port}")


async def test_printer_gone_mid_session_raises_then_reconnects_when_back() -> None:
    sim = SimulatedPrinter()
    server = TcpPrinterServer(sim)
    host, port = await server.start()
    printer = await EscPosPrinter.open(server.url, status_timeout_s=0.5, open_timeout_s=2.0)
    try:
        assert (await printer.status()).ready
        await server.stop()
        with pytest.raises(PrinterConnectionError):
            await printer.status()
        with pytest.raises(PrinterConnectionError):
            await printer.status()  # still gone: reopening fails, typed
        back = TcpPrinterServer(sim)
        await back.start(host, port)
        try:
            await printer.print_receipt(sample_receipt())
        finally:
            await back.stop()
    finally:
        await printer.close()
    assert sim.document() == layout_receipt(sample_receipt(), PrinterProfile())


async def test_partial_status_reply_times_out(silent_pty: tuple[int, str]) -> None:
    master, path = silent_pty
    loop = asyncio.get_running_loop()

    def answer_two_bytes() -> None:
        os.read(master, 1024)
        os.write(master, b"\x12\x12")

    loop.add_reader(master, answer_two_bytes)
    try:
        async with await EscPosPrinter.open(path, status_timeout_s=0.3) as printer:
            with pytest.raises(PrinterTimeout, match="2 of 4"):
                await printer.status()
    finally:
        loop.remove_reader(master)


class ScriptedTransport:
    """A link that answers each status query from a script of printer states."""

    def __init__(self, states: list[PrinterStatus]) -> None:
        self.states = states
        self.writes: list[bytes] = []
        self._pending = b""

    async def write(self, data: bytes, timeout_s: float) -> None:
        self.writes.append(data)
        replies = encode_status(self.states.pop(0))
        self._pending = bytes(replies[n] for n in (1, 2, 3, 4))

    async def read_exact(self, size: int, timeout_s: float) -> bytes:
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    async def reset_input(self) -> None:
        self._pending = b""

    async def close(self) -> None:
        pass


async def test_cover_opened_mid_receipt_stops_sending() -> None:
    ready = PrinterStatus()
    opened = PrinterStatus(online=False, cover_open=True)
    transport = ScriptedTransport([ready, ready, opened, ready, ready])
    printer = EscPosPrinter(transport, chunk_lines=4)
    with pytest.raises(CoverOpenError):
        await printer.print_receipt(sample_receipt())
    # Status, chunk 1 + status, chunk 2 + status: then it stopped.
    assert len(transport.writes) == 3
    assert transport.writes[1].startswith(b"\x1b@")
    assert transport.states == [ready, ready]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_simulator_answers_every_status_request_and_never_crashes(noise: bytes) -> None:
    sim = SimulatedPrinter(width_chars=32, paper_lines=5)
    replies = sim.feed(noise)
    assert len(replies) == sim.status_requests
    assert all(b & 0x93 == 0x12 for b in replies)
    assert sum(isinstance(e, TextLine) for e in sim.printed) <= 5
