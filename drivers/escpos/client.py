"""The printer client: status and receipts over a transport, faults as errors.

Theory of operation: :meth:`EscPosPrinter.print_document` asks for the status
first (DLE EOT 1-4) and sends nothing unless the printer is ready, so a receipt
never half-prints into a closed cover. It then sends the document in chunks of
a few lines, asks for the status after each chunk, and once more at the end. A
fault seen after a chunk raises the typed error at once (the rest is not sent);
:class:`~drivers.escpos.errors.PaperOutError` carries how many lines had been
sent. Printers buffer data, so "sent" bounds what was printed from above.

Every exchange has a timeout: a status reply that does not come within
``status_timeout_s`` is :class:`~drivers.escpos.errors.PrinterTimeout`.

A printer opened by URL survives unplugging: a broken link raises
:class:`~drivers.escpos.errors.PrinterConnectionError` once, and the next call
opens the device again (within ``open_timeout_s``), so a kiosk recovers when the
cable or the network printer comes back without restarting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .document import Document, PrinterProfile
from .encoder import EncodedElement, encode_elements
from .errors import PaperOutError, PrinterConnectionError, PrinterError, PrinterTimeout
from .receipt import Receipt, layout_receipt
from .status import (
    PrinterStatus,
    StatusRequest,
    check_ready,
    parse_status,
    status_query,
)
from .transport import AsyncSerialTransport, PrinterTransport

__all__ = ["EscPosPrinter", "PrintReport"]

logger = logging.getLogger(__name__)

CHUNK_LINES = 8
CHUNK_BYTES_MAX = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class PrintReport:
    """The outcome of a print that finished without a fault."""

    lines_total: int
    bytes_sent: int
    status_before: PrinterStatus
    status_after: PrinterStatus

    @property
    def paper_near_end(self) -> bool:
        """The roll is low: tell staff before it runs out."""
        return self.status_after.paper_near_end


class EscPosPrinter:
    """An ESC/POS receipt printer behind a :class:`PrinterTransport`."""

    def __init__(
        self,
        transport: PrinterTransport,
        *,
        profile: PrinterProfile | None = None,
        status_timeout_s: float = 2.0,
        write_timeout_s: float = 10.0,
        chunk_lines: int = CHUNK_LINES,
        reopen: Callable[[], Awaitable[PrinterTransport]] | None = None,
    ) -> None:
        assert status_timeout_s > 0
        assert write_timeout_s > 0
        assert chunk_lines >= 1
        self.transport = transport
        # How to open the link again after it broke (None: a fixed transport).
        self._reopen = reopen
        self._broken = False
        self.profile = profile or PrinterProfile()
        self.status_timeout_s = status_timeout_s
        self.write_timeout_s = write_timeout_s
        self.chunk_lines = chunk_lines

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        baudrate: int = 19200,
        profile: PrinterProfile | None = None,
        open_timeout_s: float = 5.0,
        status_timeout_s: float = 2.0,
        write_timeout_s: float = 10.0,
        chunk_lines: int = CHUNK_LINES,
    ) -> EscPosPrinter:
        """Open the printer at ``url`` (device path or pyserial URL)."""

        async def connect() -> PrinterTransport:
            return await AsyncSerialTransport.open(
                url,
                baudrate=baudrate,
                open_timeout_s=open_timeout_s,
                write_timeout_s=write_timeout_s,
            )

        return cls(
            await connect(),
            profile=profile,
            status_timeout_s=status_timeout_s,
            write_timeout_s=write_timeout_s,
            chunk_lines=chunk_lines,
            reopen=connect,
        )

    async def close(self) -> None:
        """Close the transport."""
        await self.transport.close()

    async def __aenter__(self) -> EscPosPrinter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def status(self) -> PrinterStatus:
        """Ask DLE EOT 1-4 and parse the four replies.

        Raises :class:`PrinterTimeout` if they do not all come in time and
        :class:`StatusByteError` if one lacks its fixed bits.
        """
        return await self._send_and_query(b"")

    async def _send_and_query(self, data: bytes) -> PrinterStatus:
        """Send ``data`` and the status query in one write, then read the replies.

        One write, not two: the query then follows the data in the same
        segment on TCP, instead of waiting out Nagle's algorithm.
        """
        if self._broken and self._reopen is not None:
            with contextlib.suppress(PrinterError):
                await self.transport.close()
            self.transport = await self._reopen()
            self._broken = False
            logger.info("printer_reconnected")
        requests = tuple(StatusRequest)
        try:
            await self.transport.reset_input()
            await self.transport.write(data + status_query(requests), self.write_timeout_s)
            reply = await self.transport.read_exact(len(requests), self.status_timeout_s)
        except PrinterConnectionError:
            self._broken = True
            raise
        if len(reply) < len(requests):
            raise PrinterTimeout(
                f"printer sent {len(reply)} of {len(requests)} status bytes "
                f"within {self.status_timeout_s} s"
            )
        return parse_status({int(r): b for r, b in zip(requests, reply, strict=True)})

    def _chunks(self, elements: list[EncodedElement]) -> list[EncodedElement]:
        chunks: list[EncodedElement] = []
        data = bytearray()
        lines = 0
        for element in elements:
            data += element.data
            lines += element.lines
            if lines >= self.chunk_lines or len(data) >= CHUNK_BYTES_MAX:
                chunks.append(EncodedElement(data=bytes(data), lines=lines))
                data, lines = bytearray(), 0
        if data:
            chunks.append(EncodedElement(data=bytes(data), lines=lines))
        return chunks

    async def print_document(self, document: Document) -> PrintReport:
        """Print ``document``; raise a :class:`PrinterError` subclass on a fault."""
        chunks = self._chunks(encode_elements(document, self.profile))
        total = sum(c.lines for c in chunks)
        before = await self.status()
        check_ready(before, lines_sent=0, lines_total=total)
        sent_lines = 0
        sent_bytes = 0
        status = before
        try:
            for chunk in chunks:
                status = await self._send_and_query(chunk.data)
                sent_lines += chunk.lines
                sent_bytes += len(chunk.data)
                check_ready(status, lines_sent=sent_lines, lines_total=total)
        except PaperOutError as exc:
            logger.warning(
                "printer_paper_out lines_sent=%d lines_total=%d", exc.lines_sent, exc.lines_total
            )
            raise
        except PrinterError as exc:
            logger.warning(
                "printer_fault fault=%s lines_sent=%d lines_total=%d",
                type(exc).__name__,
                sent_lines,
                total,
            )
            raise
        logger.info(
            "printer_printed lines=%d bytes=%d near_end=%s",
            total,
            sent_bytes,
            status.paper_near_end,
        )
        return PrintReport(
            lines_total=total, bytes_sent=sent_bytes, status_before=before, status_after=status
        )

    async def print_receipt(
        self, receipt: Receipt, *, lang: str = "ru", currency_label: str | None = None
    ) -> PrintReport:
        """Lay ``receipt`` out for this printer and print it."""
        document = layout_receipt(receipt, self.profile, lang=lang, currency_label=currency_label)
        return await self.print_document(document)
