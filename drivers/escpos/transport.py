"""The only module that touches pyserial: a serial link to the printer.

:class:`SerialTransport` opens a device path (``/dev/ttyUSB0``, a pty) or any
pyserial URL (``socket://host:9100`` for a network printer) and maps every
pyserial and OS error to this package's faults: :class:`PrinterConnectionError`
when the link cannot be opened or breaks, :class:`PrinterTimeout` when a write
does not finish in time. Every call is bounded by a timeout.

:class:`AsyncSerialTransport` runs those blocking calls on one worker thread
(one thread, so calls never interleave on the wire) and bounds each await with
:func:`asyncio.wait_for` as well, so a stuck driver cannot stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import serial

from .errors import PrinterConnectionError, PrinterTimeout

__all__ = ["AsyncSerialTransport", "PrinterTransport", "SerialTransport"]

T = TypeVar("T")

# Extra time an await allows beyond the blocking call's own timeout, so the
# thread's own timeout fires first and gives the precise error.
_GRACE_S = 1.0


class SerialTransport:
    """A blocking serial link with timeouts (pyserial ``serial_for_url``)."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 19200,
        read_timeout_s: float = 1.0,
        write_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        try:
            self._port: Any = serial.serial_for_url(
                url,
                baudrate=baudrate,
                timeout=read_timeout_s,
                write_timeout=write_timeout_s,
            )
        except (serial.SerialException, ValueError, OSError) as exc:
            raise PrinterConnectionError(f"cannot open printer at {url}: {exc}") from None

    def write(self, data: bytes) -> None:
        """Send all of ``data`` or raise."""
        try:
            written = self._port.write(data)
            self._port.flush()
        except serial.SerialTimeoutException:
            raise PrinterTimeout(f"printer at {self.url} did not take data in time") from None
        except (serial.SerialException, OSError) as exc:
            raise PrinterConnectionError(f"write to printer at {self.url} failed: {exc}") from None
        if written is not None and written != len(data):
            raise PrinterTimeout(f"printer at {self.url} took {written} of {len(data)} bytes")

    def read_exact(self, size: int, timeout_s: float) -> bytes:
        """Read ``size`` bytes, or fewer if ``timeout_s`` passes first."""
        deadline = time.monotonic() + timeout_s
        out = bytearray()
        try:
            while len(out) < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._port.timeout = remaining
                out += self._port.read(size - len(out))
        except (serial.SerialException, OSError) as exc:
            raise PrinterConnectionError(f"read from printer at {self.url} failed: {exc}") from None
        return bytes(out)

    def reset_input(self) -> None:
        """Drop bytes that arrived unasked (stale replies, noise)."""
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise PrinterConnectionError(f"printer at {self.url}: {exc}") from None

    def close(self) -> None:
        """Close the link; errors on close are not interesting."""
        # pyserial's socket:// handler skips closing its socket when shutdown()
        # fails on a connection the peer already dropped; close it ourselves.
        sock = getattr(self._port, "_socket", None)
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class PrinterTransport(Protocol):
    """What :class:`~drivers.escpos.client.EscPosPrinter` needs from a link."""

    async def write(self, data: bytes, timeout_s: float) -> None: ...

    async def read_exact(self, size: int, timeout_s: float) -> bytes: ...

    async def reset_input(self) -> None: ...

    async def close(self) -> None: ...


class AsyncSerialTransport:
    """:class:`SerialTransport` for asyncio, one worker thread, every await bounded."""

    def __init__(self, transport: SerialTransport, executor: ThreadPoolExecutor) -> None:
        self._transport = transport
        self._executor = executor
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        baudrate: int = 19200,
        open_timeout_s: float = 5.0,
        write_timeout_s: float = 10.0,
    ) -> AsyncSerialTransport:
        """Open ``url`` within ``open_timeout_s``."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="escpos")
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.run_in_executor(
                    executor,
                    lambda: SerialTransport(
                        url, baudrate=baudrate, write_timeout_s=write_timeout_s
                    ),
                ),
                open_timeout_s,
            )
        except TimeoutError:
            executor.shutdown(wait=False, cancel_futures=True)
            raise PrinterTimeout(f"opening printer at {url} took over {open_timeout_s} s") from None
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        return cls(transport, executor)

    async def _run(self, timeout_s: float, fn: Any, *args: Any) -> Any:
        if self._closed and fn != self._transport.close:
            raise PrinterConnectionError(f"printer link to {self._transport.url} is closed")
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor, fn, *args), timeout_s + _GRACE_S
            )
        except TimeoutError:
            raise PrinterTimeout(f"printer call took over {timeout_s} s") from None

    async def write(self, data: bytes, timeout_s: float) -> None:
        """Send ``data`` within ``timeout_s``."""
        await self._run(timeout_s, self._transport.write, data)

    async def read_exact(self, size: int, timeout_s: float) -> bytes:
        """Read ``size`` bytes or fewer once ``timeout_s`` passes."""
        data: bytes = await self._run(timeout_s, self._transport.read_exact, size, timeout_s)
        return data

    async def reset_input(self) -> None:
        """Drop unread input."""
        await self._run(_GRACE_S, self._transport.reset_input)

    async def close(self) -> None:
        """Close the link and stop the worker thread; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._run(_GRACE_S, self._transport.close)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
