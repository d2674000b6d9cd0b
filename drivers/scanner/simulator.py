"""A serial scanner simulator on a real pseudo-terminal.

The code under test opens :attr:`ScannerSimulator.port_path` exactly as it
would open ``/dev/ttyACM0``; the simulator writes what a scanner would send
into the pty's master side: a payload plus its suffix, optionally split into
chunks with delays between them, with noise around it, or cut off halfway.
:meth:`ScannerSimulator.unplug` closes the master, which is what the reading
side sees when a USB-serial scanner is pulled out (reads fail with EIO).
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import time
import tty
from types import TracebackType
from typing import Final

__all__ = ["NOISE", "ScannerSimulator"]

NOISE: Final = b"\x00\x13\x11\xff\x7f\x1b[0m"
"""Bytes a scanner or its cable produces on power-up and on wiggling."""


class ScannerSimulator:
    """One simulated scanner on a fresh pty pair (Linux, POSIX)."""

    def __init__(self, *, write_timeout_s: float = 2.0) -> None:
        self._master, self._slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation -- the bytes arrive as sent.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port_path: str = os.ttyname(self._slave)
        self.write_timeout_s = write_timeout_s
        self._closed = False

    def __enter__(self) -> ScannerSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, data: bytes) -> None:
        """Write raw bytes, waiting at most ``write_timeout_s`` for room in the pty."""
        if self._closed:
            raise OSError(errno.EBADF, "simulator is unplugged")
        view = memoryview(data)
        deadline = time.monotonic() + self.write_timeout_s
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("scanner simulator: nobody is reading the pty")
            _, writable, _ = select.select([], [self._master], [], remaining)
            if not writable:
                continue
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                continue
            view = view[written:]

    def scan(self, payload: bytes, *, suffix: bytes = b"\r\n") -> None:
        """Send one read at once, as a scanner does."""
        self.write(payload + suffix)

    async def scan_async(
        self,
        payload: bytes,
        *,
        suffix: bytes = b"\r\n",
        chunk_bytes: int | None = None,
        delay_s: float = 0.0,
        noise_before: bytes = b"",
    ) -> None:
        """Send one read in chunks of ``chunk_bytes`` with ``delay_s`` between them."""
        data = noise_before + payload + suffix
        step = chunk_bytes or len(data) or 1
        for offset in range(0, len(data), step):
            if offset and delay_s:
                await asyncio.sleep(delay_s)
            self.write(data[offset : offset + step])

    def unplug(self) -> None:
        """Close both sides, as pulling the scanner's cable does."""
        if not self._closed:
            self._closed = True
            os.close(self._master)
            os.close(self._slave)

    def close(self) -> None:
        """Release the pty (same as :meth:`unplug`)."""
        self.unplug()
