"""A receipt printer simulator that speaks ESC/POS over a pty or TCP.

Theory of operation: :class:`SimulatedPrinter` is the sans-I/O core. Bytes from
the host go through an :class:`~drivers.escpos.decoder.EscPosDecoder`; each
printed element is recorded in :attr:`SimulatedPrinter.printed` (what came out
on paper), each ``DLE EOT n`` is answered at once with the status byte built by
:func:`~drivers.escpos.status.encode_status`, and each malformed command is
recorded in :attr:`SimulatedPrinter.faults` and skipped, as a printer would.

Faults a test or a technician can inject:

* ``paper_lines``: the roll holds that many text lines; the line after the last
  is not printed, and from then on the printer is offline with "paper end"
  (DLE EOT 1 bit 3, DLE EOT 2 bit 5, DLE EOT 4 bits 5-6). Refilling
  (:meth:`SimulatedPrinter.load_paper`) brings it back online.
* ``open_cover()`` / ``close_cover()``: with the cover open nothing prints and
  the printer is offline (DLE EOT 2 bit 2).

While offline the printer accepts data and drops it, counting the dropped
elements; real printers buffer it instead, but dropping makes a partial receipt
visible in the record, which is what the tests look at.

:class:`PtyPrinterServer` and :class:`TcpPrinterServer` connect the core to a
pseudo-terminal (the host opens the slave path like a serial port) or a TCP
listener (``socket://host:port``, one connection at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty

from .decoder import NEED_DATA, CodePageSelected, EscPosDecoder, Ignored, Initialized
from .decoder import StatusRequested as _StatusRequested
from .document import Document, Element, QrCode, TextLine
from .errors import EscPosDecodeError
from .status import PrinterStatus, encode_status

__all__ = ["PtyPrinterServer", "SimulatedPrinter", "TcpPrinterServer"]

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 4096
FAULTS_MAX = 1000
PRINTED_ELEMENTS_MAX = 100_000


class SimulatedPrinter:
    """The printer's state and record; feed it host bytes, send back what it returns."""

    def __init__(
        self,
        *,
        width_chars: int = 42,
        code_page: int = 0,
        paper_lines: int | None = None,
        paper_near_end_lines: int = 0,
    ) -> None:
        self._decoder = EscPosDecoder(width_chars=width_chars, code_page=code_page)
        self.paper_lines = paper_lines
        self.paper_near_end_lines = paper_near_end_lines
        self.cover_open = False
        self.paper_out = False
        self.printed: list[Element] = []
        self.faults: list[str] = []
        self.ignored = 0
        self.dropped = 0
        self.initialized = 0
        self.code_page = code_page
        self.received_bytes = 0
        self.status_requests = 0

    @property
    def width_chars(self) -> int:
        """Paper width in font-A characters (where the printer wraps)."""
        return self._decoder.width_chars

    @width_chars.setter
    def width_chars(self, value: int) -> None:
        assert 16 <= value <= 64
        self._decoder.width_chars = value

    # -- fault injection ---------------------------------------------------------

    def open_cover(self) -> None:
        """Open the cover: nothing prints until it is closed."""
        self.cover_open = True

    def close_cover(self) -> None:
        """Close the cover."""
        self.cover_open = False

    def load_paper(self, lines: int | None = None) -> None:
        """Put in a new roll of ``lines`` text lines (``None``: endless)."""
        self.paper_lines = lines
        self.paper_out = False

    # -- state --------------------------------------------------------------------

    @property
    def status(self) -> PrinterStatus:
        """What DLE EOT reports now."""
        near_end = self.paper_lines is not None and self.paper_lines <= self.paper_near_end_lines
        stopped = self.paper_out or self.cover_open
        return PrinterStatus(
            online=not stopped,
            cover_open=self.cover_open,
            paper_near_end=near_end or self.paper_out,
            paper_out=self.paper_out,
            stopped_by_paper_end=self.paper_out,
            error=stopped,
        )

    def document(self) -> Document:
        """Everything printed so far, as a document."""
        return Document(elements=tuple(self.printed), width_chars=self.width_chars)

    def clear(self) -> None:
        """Forget what was printed (tear the paper off)."""
        self.printed.clear()
        self.faults.clear()
        self.ignored = self.dropped = self.received_bytes = self.status_requests = 0

    # -- the byte interface --------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; return the bytes the printer sends back."""
        self.received_bytes += len(data)
        self._decoder.receive_data(data)
        replies = bytearray()
        while True:
            try:
                event = self._decoder.next_event()
            except EscPosDecodeError as exc:
                if len(self.faults) < FAULTS_MAX:
                    self.faults.append(str(exc))
                logger.info("printer_sim_bad_command error=%s", exc)
                continue
            if event is NEED_DATA:
                return bytes(replies)
            if isinstance(event, _StatusRequested):
                self.status_requests += 1
                replies.append(encode_status(self.status)[event.request])
            elif isinstance(event, Initialized):
                self.initialized += 1
            elif isinstance(event, CodePageSelected):
                self.code_page = event.page
            elif isinstance(event, Ignored):
                self.ignored += 1
            else:
                self._print(event)

    def _print(self, element: Element) -> None:
        if self.cover_open or self.paper_out or len(self.printed) >= PRINTED_ELEMENTS_MAX:
            self.dropped += 1
            return
        if isinstance(element, TextLine) and self.paper_lines is not None:
            if self.paper_lines == 0:
                self.paper_out = True
                self.dropped += 1
                logger.info("printer_sim_paper_out printed_lines=%d", len(self.printed))
                return
            self.paper_lines -= 1
        self.printed.append(element)

    @property
    def qr_payloads(self) -> list[bytes]:
        """The data of every QR symbol printed."""
        return [e.data for e in self.printed if isinstance(e, QrCode)]


class PtyPrinterServer:
    """Serve a :class:`SimulatedPrinter` on a pseudo-terminal.

    :attr:`path` is the slave side; open it like a serial port. The slave stays
    open here too, so the master never sees end-of-file when a client closes.
    """

    def __init__(self, printer: SimulatedPrinter) -> None:
        self.printer = printer
        self._master = -1
        self._slave = -1
        self.path = ""

    async def start(self) -> str:
        """Create the pty and start answering; return the slave path."""
        self._master, self._slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation -- ESC/POS is binary.
        tty.setraw(self._slave, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._on_readable)
        logger.info("printer_sim_pty_started path=%s", self.path)
        return self.path

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, READ_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            logger.info("printer_sim_pty_read_error error=%s", exc)
            return
        reply = self.printer.feed(data)
        if reply:
            try:
                os.write(self._master, reply)
            except OSError as exc:
                logger.info("printer_sim_pty_write_error error=%s", exc)

    async def stop(self) -> None:
        """Stop answering and close the pty."""
        if self._master >= 0:
            asyncio.get_running_loop().remove_reader(self._master)
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._master = self._slave = -1

    async def __aenter__(self) -> PtyPrinterServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class TcpPrinterServer:
    """Serve a :class:`SimulatedPrinter` on TCP, like a network printer's port 9100.

    Connections are served one at a time (a printer has one print head); a
    second client waits until the first closes.
    """

    def __init__(self, printer: SimulatedPrinter, *, idle_timeout_s: float = 300.0) -> None:
        self.printer = printer
        self.idle_timeout_s = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._lock = asyncio.Lock()
        self._writers: set[asyncio.StreamWriter] = set()
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        """The pyserial URL of this printer."""
        return f"socket://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0: any free port); return the bound address."""
        self._server = await asyncio.start_server(self._serve, host, port)
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        logger.info("printer_sim_tcp_started host=%s port=%d", self.host, self.port)
        return self.host, self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        async with self._lock:
            try:
                while True:
                    try:
                        data = await asyncio.wait_for(
                            reader.read(READ_CHUNK_BYTES), self.idle_timeout_s
                        )
                    except TimeoutError:
                        break
                    if not data:
                        break
                    reply = self.printer.feed(data)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
            except (ConnectionError, OSError) as exc:
                logger.info("printer_sim_tcp_error error=%s", exc)
            finally:
                self._writers.discard(writer)
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()

    async def stop(self) -> None:
        """Stop listening and close the connections."""
        if self._server is not None:
            self._server.close()
            # Server.close() leaves accepted connections open (before 3.13's
            # close_clients), so close them here; the handlers then see EOF.
            for writer in list(self._writers):
                writer.close()
            await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None

    async def __aenter__(self) -> TcpPrinterServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
