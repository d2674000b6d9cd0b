"""Byte transports for the ZVT driver: pyserial (with an asyncio wrapper) and TCP.

* ``/dev/ttyUSB0``, ``/dev/pts/3``, ``socket://host:port``, ``rfc2217://...``:
  opened with :func:`serial.serial_for_url`. A reader thread pushes what it
  reads into a bounded queue on the event loop; writes run in the default
  executor with a write timeout. These carry the serial framing (DLE/STX),
  ``socket://`` included (a serial device server such as ser2net).
* ``tcp://host[:port]``: the ZVT TCP/IP transport (raw APDUs, port 20007 by
  default), with asyncio streams.

A closed port, an unplugged adapter or a broken TCP connection becomes a
:class:`ZvtTemporaryDeviceError`; a URL that can never work is a
:class:`ZvtPermanentDeviceError`. ``read`` returns ``b""`` when its timeout
passes with nothing to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import threading
from typing import Final, Protocol
from urllib.parse import urlsplit

import serial

from drivers.zvt.errors import (
    ZvtPermanentDeviceError,
    ZvtTemporaryDeviceError,
    ZvtTimeout,
    ZvtUsageError,
)

logger = logging.getLogger(__name__)

ZVT_TCP_PORT: Final = 20007
READ_CHUNK_BYTES: Final = 4096
QUEUE_CHUNKS_MAX: Final = 1024
_READER_POLL_S: Final = 0.05
_READER_JOIN_S: Final = 2.0


class ByteTransport(Protocol):
    """What the client needs from a transport."""

    url: str

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None: ...

    async def read(self, timeout_s: float) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    def discard_pending(self) -> int: ...


def default_framing(url: str) -> str:
    """``tcp`` for ``tcp://`` URLs, ``serial`` for everything else."""
    return "tcp" if url.startswith("tcp://") else "serial"


def make_transport(
    url: str,
    *,
    connect_timeout_s: float,
    write_timeout_s: float,
    baudrate: int = 9600,
) -> ByteTransport:
    """The transport for a device URL (see the module docstring)."""
    if url.startswith("tcp://"):
        return TcpTransport(
            url, connect_timeout_s=connect_timeout_s, write_timeout_s=write_timeout_s
        )
    return SerialTransport(url, baudrate=baudrate, write_timeout_s=write_timeout_s)


class SerialTransport:
    """pyserial port + reader thread + bounded asyncio queue.

    ZVT serial line parameters (PA00P016): 9600 baud by default, 8 data bits,
    no parity, 2 stop bits.
    """

    def __init__(self, url: str, *, baudrate: int = 9600, write_timeout_s: float = 2.0) -> None:
        self.url = url
        self.baudrate = baudrate
        self.write_timeout_s = write_timeout_s
        self._port: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_CHUNKS_MAX)
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def is_open(self) -> bool:
        """True while the port is open and the reader has not failed."""
        return self._port is not None and self._error is None

    async def open(self) -> None:
        """Open the port (in the executor: opening can block)."""
        if self._port is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=QUEUE_CHUNKS_MAX)
        self._error = None
        self._stop.clear()
        port = await self._loop.run_in_executor(None, self._open_blocking)
        self._port = port
        self._thread = threading.Thread(
            target=self._reader, args=(port,), name="zvt-serial-reader", daemon=True
        )
        self._thread.start()
        logger.info("zvt_port_open url=%s", self.url)

    def _open_blocking(self) -> serial.SerialBase:
        try:
            port = serial.serial_for_url(
                self.url,
                do_not_open=True,
                baudrate=self.baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_TWO,
                timeout=_READER_POLL_S,
                write_timeout=self.write_timeout_s,
            )
        except ValueError as exc:
            raise ZvtPermanentDeviceError(f"bad device URL {self.url!r}: {exc}") from None
        try:
            port.open()
            port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            code = getattr(exc, "errno", None)
            if code in (errno.EACCES, errno.EPERM):
                raise ZvtPermanentDeviceError(f"no permission to open {self.url}") from None
            # Missing device nodes come back when the adapter is plugged in again.
            raise ZvtTemporaryDeviceError(f"cannot open {self.url}: {exc}") from None
        return port

    def _reader(self, port: serial.SerialBase) -> None:
        loop = self._loop
        assert loop is not None
        while not self._stop.is_set():
            try:
                waiting = int(getattr(port, "in_waiting", 0))
                data = port.read(min(max(1, waiting), READ_CHUNK_BYTES))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's fd vanished under close().
                if not self._stop.is_set():
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(self._fail, exc)
                return
            if data:
                try:
                    loop.call_soon_threadsafe(self._deliver, bytes(data))
                except RuntimeError:
                    return

    def _deliver(self, data: bytes) -> None:
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self._fail(ZvtTemporaryDeviceError("serial receive queue overflow"))

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
            logger.warning("zvt_port_failed url=%s error=%s", self.url, type(exc).__name__)
        # Wake a reader waiting on an empty queue.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(b"")

    async def read(self, timeout_s: float) -> bytes:
        """Up to one chunk of bytes, ``b""`` after ``timeout_s``; raises when the port failed."""
        if self._port is None:
            raise ZvtTemporaryDeviceError("port is not open")
        if self._queue.empty() and self._error is not None:
            raise ZvtTemporaryDeviceError(f"port {self.url} failed: {self._error}")
        try:
            data = await asyncio.wait_for(self._queue.get(), timeout=max(timeout_s, 0.0))
        except TimeoutError:
            return b""
        if not data and self._error is not None:
            raise ZvtTemporaryDeviceError(f"port {self.url} failed: {self._error}")
        return data

    async def write(self, data: bytes) -> None:
        """Write all bytes (in the executor, bounded by the write timeout)."""
        port = self._port
        if port is None or self._error is not None:
            raise ZvtTemporaryDeviceError("port is not open")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, port.write, data)
        except serial.SerialTimeoutException:
            raise ZvtTimeout("serial write timed out", stage="write") from None
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            self._fail(exc)
            raise ZvtTemporaryDeviceError(f"write to {self.url} failed") from None

    def discard_pending(self) -> int:
        """Drop bytes received but not read yet; returns how many."""
        dropped = 0
        while not self._queue.empty():
            dropped += len(self._queue.get_nowait())
        return dropped

    async def close(self) -> None:
        """Stop the reader and close the port."""
        port, thread = self._port, self._thread
        self._port = None
        self._thread = None
        self._stop.set()
        if port is not None:
            cancel = getattr(port, "cancel_read", None)
            if cancel is not None:
                with contextlib.suppress(Exception):
                    cancel()
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, _READER_JOIN_S)
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()
            logger.info("zvt_port_closed url=%s", self.url)


class TcpTransport:
    """ZVT TCP/IP transport over asyncio streams (``tcp://host[:port]``)."""

    def __init__(self, url: str, *, connect_timeout_s: float, write_timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "tcp" or not parts.hostname:
            raise ZvtUsageError(f"not a tcp:// URL: {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise ZvtUsageError(f"bad port in {url!r}") from None
        self.url = url
        self.host = parts.hostname
        self.port = port or ZVT_TCP_PORT
        self.connect_timeout_s = connect_timeout_s
        self.write_timeout_s = write_timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._eof = False

    @property
    def is_open(self) -> bool:
        """True while connected and not at EOF."""
        return self._writer is not None and not self._eof

    async def open(self) -> None:
        """Connect, bounded by ``connect_timeout_s``."""
        if self._writer is not None:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout=self.connect_timeout_s
            )
        except TimeoutError:
            raise ZvtTemporaryDeviceError(f"connect to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise ZvtTemporaryDeviceError(
                f"cannot connect to {self.host}:{self.port}: {exc}"
            ) from None
        self._eof = False
        logger.info("zvt_tcp_open host=%s port=%d", self.host, self.port)

    async def read(self, timeout_s: float) -> bytes:
        """Up to one chunk, ``b""`` after ``timeout_s``; EOF or reset raise."""
        reader = self._reader
        if reader is None or self._eof:
            raise ZvtTemporaryDeviceError("TCP connection is closed")
        try:
            data = await asyncio.wait_for(
                reader.read(READ_CHUNK_BYTES), timeout=max(timeout_s, 0.0)
            )
        except TimeoutError:
            return b""
        except OSError as exc:
            self._eof = True
            raise ZvtTemporaryDeviceError(f"TCP connection broken: {exc}") from None
        if not data:
            self._eof = True
            raise ZvtTemporaryDeviceError("terminal closed the TCP connection")
        return data

    async def write(self, data: bytes) -> None:
        """Write and drain, bounded by ``write_timeout_s``."""
        writer = self._writer
        if writer is None or self._eof:
            raise ZvtTemporaryDeviceError("TCP connection is closed")
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), timeout=self.write_timeout_s)
        except TimeoutError:
            raise ZvtTimeout("TCP write timed out", stage="write") from None
        except OSError as exc:
            self._eof = True
            raise ZvtTemporaryDeviceError(f"TCP write failed: {exc}") from None

    def discard_pending(self) -> int:
        """Nothing is queued outside the socket buffer."""
        return 0

    async def close(self) -> None:
        """Close the connection."""
        writer = self._writer
        self._writer = None
        self._reader = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=self.write_timeout_s)
            logger.info("zvt_tcp_closed host=%s port=%d", self.host, self.port)
