"""The byte transports on real ptys and sockets: reads, timeouts, unplug, bad URLs, bounds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from collections.abc import Iterator

import pytest

from drivers.zvt.errors import (
    ZvtPermanentDeviceError,
    ZvtTemporaryDeviceError,
    ZvtUsageError,
)
from drivers.zvt.transport import (
    QUEUE_CHUNKS_MAX,
    ZVT_TCP_PORT,
    SerialTransport,
    TcpTransport,
    default_framing,
    make_transport,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def zvt_raw_pty() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    yield master, path
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


async def test_serial_transport_reads_and_writes_a_real_pty(zvt_raw_pty: tuple[int, str]) -> None:
    master, path = zvt_raw_pty
    transport = SerialTransport(path)
    await transport.open()
    assert transport.is_open
    await transport.write(b"\x10\x02\x80\x00\x00")
    await asyncio.sleep(0.05)
    assert os.read(master, 100) == b"\x10\x02\x80\x00\x00"
    os.write(master, b"\x06")
    assert await transport.read(1.0) == b"\x06"
    await transport.close()
    assert not transport.is_open


async def test_serial_read_timeout_returns_empty_bytes(zvt_raw_pty: tuple[int, str]) -> None:
    _, path = zvt_raw_pty
    transport = SerialTransport(path)
    await transport.open()
    started = time.monotonic()
    assert await transport.read(0.2) == b""
    assert 0.15 <= time.monotonic() - started < 1.0
    await transport.close()


async def test_serial_unplug_raises_temporary_error() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    transport = SerialTransport(os.ttyname(slave))
    await transport.open()
    os.close(master)
    os.close(slave)

    async def read_until_failure() -> None:
        for _ in range(20):
            await transport.read(0.2)

    with pytest.raises(ZvtTemporaryDeviceError):
        await read_until_failure()
    assert not transport.is_open
    await transport.close()


async def test_missing_serial_device_is_a_temporary_error(tmp_path: os.PathLike[str]) -> None:
    transport = SerialTransport(os.path.join(tmp_path, "ttyUSB9"))
    with pytest.raises(ZvtTemporaryDeviceError):
        await transport.open()


async def test_unknown_url_scheme_is_a_permanent_error() -> None:
    transport = SerialTransport("nosuchproto://x")
    with pytest.raises(ZvtPermanentDeviceError):
        await transport.open()


async def test_receive_queue_overflow_at_the_bound_fails_the_port(
    zvt_raw_pty: tuple[int, str],
) -> None:
    _, path = zvt_raw_pty
    transport = SerialTransport(path)
    await transport.open()
    for _ in range(QUEUE_CHUNKS_MAX):
        transport._deliver(b"x")
    assert transport.is_open
    transport._deliver(b"x")
    assert not transport.is_open
    assert transport.discard_pending() == QUEUE_CHUNKS_MAX
    with pytest.raises(ZvtTemporaryDeviceError):
        await transport.read(0.1)
    await transport.close()


async def test_tcp_transport_default_port_and_bad_urls() -> None:
    assert TcpTransport("tcp://10.0.0.5", connect_timeout_s=1, write_timeout_s=1).port == (
        ZVT_TCP_PORT
    )
    with pytest.raises(ZvtUsageError):
        TcpTransport("tcp://", connect_timeout_s=1, write_timeout_s=1)
    with pytest.raises(ZvtUsageError):
        TcpTransport("tcp://host:99999", connect_timeout_s=1, write_timeout_s=1)


async def test_tcp_eof_raises_temporary_error() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = TcpTransport(f"tcp://127.0.0.1:{port}", connect_timeout_s=1, write_timeout_s=1)
    await transport.open()
    with pytest.raises(ZvtTemporaryDeviceError):
        await transport.read(1.0)
    assert not transport.is_open
    await transport.close()
    server.close()
    await server.wait_closed()


def test_framing_and_transport_follow_the_url() -> None:
    assert default_framing("tcp://pt:20007") == "tcp"
    assert default_framing("socket://pt:4001") == "serial"
    assert default_framing("/dev/ttyUSB0") == "serial"
    assert isinstance(
        make_transport("tcp://pt", connect_timeout_s=1, write_timeout_s=1), TcpTransport
    )
    assert isinstance(
        make_transport("/dev/ttyUSB0", connect_timeout_s=1, write_timeout_s=1), SerialTransport
    )
