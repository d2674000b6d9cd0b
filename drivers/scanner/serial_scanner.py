"""Serial scanner transport: pyserial underneath, asyncio on top.

Theory of operation
-------------------
This is the only module of :mod:`drivers.scanner` that touches pyserial.
:class:`SerialPort` is the thin blocking adapter (``serial.serial_for_url``,
so device paths, ptys and ``socket://host:port`` all work); every blocking
call runs on one dedicated worker thread per scanner, so reads and the final
close never race. A read waits at most ``read_timeout_s``, which bounds both
the latency of line timeouts and how long shutting down can take.

:meth:`SerialScanner.events` is an async iterator: bytes go through the
sans-I/O :class:`~drivers.scanner.framing.LineFramer`, complete lines through
:func:`~drivers.scanner.classify.classify_line`, and classified reads come
out. When the port fails (unplugged adapter, dropped TCP link) it yields a
:class:`ScannerFault`, waits ``reopen_delay_s`` and opens the port again --
forever by default, because a kiosk's scanner must come back by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import serial

from drivers.scanner.classify import (
    DEFAULT_CLASSIFIER,
    ClassifierConfig,
    ScanEvent,
    classify_line,
)
from drivers.scanner.errors import ScannerPortError
from drivers.scanner.framing import FramerConfig, LineDiscarded, LineFramer, LineReceived

__all__ = ["ScannerConfig", "ScannerFault", "SerialPort", "SerialScanner"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerConfig:
    """One serial scanner (``[scanner]`` in the kiosk configuration)."""

    url: str
    """Device path (``/dev/ttyACM0``), pty, or pyserial URL (``socket://host:port``)."""
    baudrate: int = 9600
    framing: FramerConfig = field(default_factory=FramerConfig)
    classifier: ClassifierConfig = DEFAULT_CLASSIFIER
    read_chunk_bytes_max: int = 4096
    """Most bytes taken from the port in one read."""
    read_timeout_s: float = 0.1
    """One blocking read waits at most this long."""
    reopen_delay_s: float = 1.0
    """Pause before reopening a failed port."""
    reopen_attempts_max: int | None = None
    """Give up after this many failed opens in a row (None: never give up)."""

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("ScannerConfig.url is empty")
        if self.baudrate <= 0 or self.read_chunk_bytes_max <= 0:
            raise ValueError("ScannerConfig: baudrate and read_chunk_bytes_max must be positive")
        if not (0 < self.read_timeout_s <= 5 and self.reopen_delay_s >= 0):
            raise ValueError("ScannerConfig: read_timeout_s in (0, 5], reopen_delay_s >= 0")
        if self.reopen_attempts_max is not None and self.reopen_attempts_max < 1:
            raise ValueError("ScannerConfig.reopen_attempts_max must be >= 1 or None")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerFault:
    """The port failed (``open_failed`` / ``port_failed``); the scanner retries by itself."""

    reason: str
    detail: str = ""
    temporary: bool = True

    def __post_init__(self) -> None:
        if self.reason not in ("open_failed", "port_failed", "gave_up"):
            raise ValueError(f"ScannerFault.reason {self.reason!r}")


class SerialPort:
    """Blocking pyserial adapter: open, read what is there, close."""

    def __init__(self, url: str, *, baudrate: int, read_timeout_s: float) -> None:
        self.url = url
        self._baudrate = baudrate
        self._read_timeout_s = read_timeout_s
        self._port: Any = None

    def open(self) -> None:
        """Open the port (raises :class:`ScannerPortError`)."""
        try:
            self._port = serial.serial_for_url(
                self.url, baudrate=self._baudrate, timeout=self._read_timeout_s
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ScannerPortError("port_failed", f"open: {type(exc).__name__}") from exc

    def read(self, bytes_max: int) -> bytes:
        """Bytes that arrived, waiting at most ``read_timeout_s`` for the first one."""
        port = self._port
        if port is None:
            raise ScannerPortError("port_failed", "not open")
        try:
            data: bytes = port.read(1)
            if data:
                waiting = port.in_waiting
                if waiting:
                    data += port.read(min(waiting, bytes_max - 1))
        except (serial.SerialException, OSError) as exc:
            raise ScannerPortError("port_failed", f"read: {type(exc).__name__}") from exc
        return data

    def close(self) -> None:
        """Close the port; never raises."""
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()


class SerialScanner:
    """An async source of classified scans from one serial scanner.

    Use ``async for event in scanner.events(): ...``; each event is a
    :data:`~drivers.scanner.classify.ScanEvent` or a :class:`ScannerFault`.
    Breaking out of the loop (or cancelling the task) closes the port.
    """

    def __init__(
        self,
        config: ScannerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._opened: asyncio.Event | None = None

    @property
    def is_open(self) -> bool:
        """Whether the port is open and being read right now."""
        return self._opened is not None and self._opened.is_set()

    def _open_event(self) -> asyncio.Event:
        if self._opened is None:
            self._opened = asyncio.Event()
        return self._opened

    async def wait_open(self, timeout_s: float) -> None:
        """Wait until :meth:`events` has the port open (raises TimeoutError).

        pyserial discards input that arrived before the port was opened, as a
        real port does; a simulator should not "scan" before this returns.
        """
        async with asyncio.timeout(timeout_s):
            await self._open_event().wait()

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scanner")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)

    async def events(self) -> AsyncIterator[ScanEvent | ScannerFault]:
        """Classified scans, with faults and automatic reopening."""
        cfg = self.config
        failures = 0
        try:
            while True:
                port = SerialPort(cfg.url, baudrate=cfg.baudrate, read_timeout_s=cfg.read_timeout_s)
                try:
                    await self._call(port.open)
                except ScannerPortError as exc:
                    failures += 1
                    logger.warning("scanner_open_failed url=%s detail=%s", cfg.url, exc.detail)
                    yield ScannerFault(reason="open_failed", detail=exc.detail)
                    if cfg.reopen_attempts_max is not None and failures >= cfg.reopen_attempts_max:
                        yield ScannerFault(reason="gave_up", temporary=False)
                        return
                    await asyncio.sleep(cfg.reopen_delay_s)
                    continue
                failures = 0
                logger.info("scanner_opened url=%s", cfg.url)
                self._open_event().set()
                framer = LineFramer(cfg.framing)
                try:
                    while True:
                        for event in await self._read_once(port, framer):
                            yield event
                except ScannerPortError as exc:
                    logger.warning("scanner_port_failed url=%s detail=%s", cfg.url, exc.detail)
                    yield ScannerFault(reason="port_failed", detail=exc.detail)
                finally:
                    self._open_event().clear()
                    await self._call(port.close)
                await asyncio.sleep(cfg.reopen_delay_s)
        finally:
            executor, self._executor = self._executor, None
            if executor is not None:
                executor.shutdown(wait=False)

    async def _read_once(self, port: SerialPort, framer: LineFramer) -> list[ScanEvent]:
        """One read (at most ``read_timeout_s``), framed and classified."""
        data = await self._call(port.read, self.config.read_chunk_bytes_max)
        now = self._clock()
        framed = framer.feed(data, now) if data else framer.poll(now)
        del data  # the chunk may hold card data; keep no reference to it
        out: list[ScanEvent] = []
        for item in framed:
            if isinstance(item, LineReceived):
                event = classify_line(item.data, self.config.classifier)
                if event is not None:
                    out.append(event)
            elif isinstance(item, LineDiscarded):
                logger.debug(
                    "scanner_line_discarded reason=%s bytes=%d", item.reason, item.bytes_count
                )
        return out
