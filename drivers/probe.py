"""Finding out what is plugged into a box: serial devices and PC/SC readers.

Theory of operation
-------------------
`lobbypay provision` asks this module which devices answer, so a technician
sees what is connected before drivers are chosen. Each serial port that matches
the globs (``/dev/ttyUSB*``, ``/dev/ttyACM*``, ``/dev/ttyS*`` by default) is
asked, one question at a time, with the drivers' own clients:

1. ESC/POS printer: DLE EOT 1-4 (the real-time status requests). Four reply
   bytes with the fixed bits of a status byte mean a printer; NAKs, garbage or
   silence mean "not a printer". The query is four short control sequences,
   which a payment terminal ignores or NAKs (nothing is printed, nothing paid).
2. ZVT payment terminal: Status Enquiry 05 01 (ZVT chapter 2.13). A
   Completion or Abort with a terminal status code means a payment terminal.
3. Serial scanner: a scanner only ever talks when it reads a code, so the port
   is listened to for ``scanner_listen_s`` (the technician scans any code
   meanwhile); one classified read means a scanner. What was read is never
   reported (it may be a card's track data), only that something was.

A port that answers none of these is reported as silent. Every question has a
timeout, the number of ports is bounded (``PORTS_MAX``), and ports are probed
one after another, so a wedged device costs at most its own timeouts.

PC/SC readers are listed with pyscard (``SCardListReaders``) in a worker thread
under a timeout, because a hung pcscd would otherwise hang provisioning.

This module imports nothing of lobbypay outside ``drivers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import glob
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SERIAL_GLOBS",
    "PORTS_MAX",
    "DeviceKind",
    "PortFinding",
    "ProbeTimeouts",
    "ReaderFinding",
    "candidate_ports",
    "list_pcsc_readers",
    "probe_port",
    "probe_serial",
]

logger = logging.getLogger(__name__)

DEFAULT_SERIAL_GLOBS: tuple[str, ...] = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyS*")
PORTS_MAX = 32
"""Most serial ports probed in one run (a box has a handful; /dev/ttyS* can list 32)."""

READERS_MAX = 16
"""Most PC/SC reader names reported."""

TEXT_CHARS_MAX = 120


class DeviceKind(enum.StrEnum):
    """What answered on a port."""

    PAYMENT_TERMINAL = "payment_terminal"
    PRINTER = "printer"
    SCANNER = "scanner"
    SILENT = "silent"
    """Opened, but nothing answered (maybe a scanner that read nothing)."""
    UNUSABLE = "unusable"
    """Could not be opened (permissions, busy, vanished)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeTimeouts:
    """Every wait of a probe, in seconds."""

    printer_status_s: float = 1.0
    """Time for the four DLE EOT replies."""
    zvt_status_s: float = 6.0
    """Time for a whole ZVT Status Enquiry (connect, command, completion)."""
    scanner_listen_s: float = 0.0
    """How long to listen for a scan on a port nothing else answered (0: do not listen)."""
    pcsc_s: float = 3.0
    """Time for pcscd to list its readers."""

    def __post_init__(self) -> None:
        for name in ("printer_status_s", "zvt_status_s", "pcsc_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.scanner_listen_s <= 300:
            raise ValueError("scanner_listen_s must be between 0 and 300")


@dataclass(frozen=True, slots=True, kw_only=True)
class PortFinding:
    """What one serial port turned out to be."""

    path: str
    kind: DeviceKind
    detail: str = ""
    """Plain words for the technician, e.g. "ready, software lobbypay-zvt-sim/1.0"."""
    ready: bool = True
    """False when the device answered but reported a fault (paper out, terminal busy)."""

    def __post_init__(self) -> None:
        if len(self.detail) > TEXT_CHARS_MAX:
            object.__setattr__(self, "detail", self.detail[: TEXT_CHARS_MAX - 1] + "…")

    @property
    def answered(self) -> bool:
        """Whether a known device answered on this port."""
        return self.kind in (DeviceKind.PAYMENT_TERMINAL, DeviceKind.PRINTER, DeviceKind.SCANNER)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderFinding:
    """The PC/SC readers pcscd knows, or why they could not be listed."""

    readers: tuple[str, ...] = ()
    error: str | None = None


def candidate_ports(
    globs: Sequence[str] = DEFAULT_SERIAL_GLOBS, *, ports_max: int = PORTS_MAX
) -> list[str]:
    """Device paths matching ``globs``, each once, in order, at most ``ports_max``.

    Symlinks (udev's stable names) are kept as named, but two names of one
    device are probed once.
    """
    found: list[str] = []
    seen: set[str] = set()
    for pattern in globs:
        for path in sorted(glob.glob(pattern)):
            try:
                real = os.path.realpath(path)
            except OSError:
                continue
            if real in seen or not os.path.exists(real):
                continue
            seen.add(real)
            found.append(path)
            if len(found) >= ports_max:
                return found
    return found


async def probe_printer(path: str, timeouts: ProbeTimeouts) -> PortFinding | None:
    """A printer finding if an ESC/POS printer answers DLE EOT on ``path``, else None.

    Raises OSError-like :class:`~drivers.escpos.errors.PrinterConnectionError`
    (a subclass of the printer errors) when the port cannot be opened.
    """
    from drivers.escpos.client import EscPosPrinter
    from drivers.escpos.errors import EscPosProtocolError, PrinterTimeout

    printer = await EscPosPrinter.open(
        path,
        open_timeout_s=timeouts.printer_status_s + 1.0,
        status_timeout_s=timeouts.printer_status_s,
        write_timeout_s=timeouts.printer_status_s,
    )
    try:
        status = await printer.status()
    except (PrinterTimeout, EscPosProtocolError):
        return None
    finally:
        await printer.close()
    problems = [
        name
        for name, bad in (
            ("offline", not status.online),
            ("cover open", status.cover_open),
            ("paper out", status.paper_out),
            ("paper near end", status.paper_near_end),
            ("error", status.unrecoverable_error or status.autocutter_error),
        )
        if bad
    ]
    return PortFinding(
        path=path,
        kind=DeviceKind.PRINTER,
        detail="ESC/POS printer: " + (", ".join(problems) if problems else "ready"),
        ready=status.ready,
    )


async def probe_zvt(path: str, timeouts: ProbeTimeouts) -> PortFinding | None:
    """A payment-terminal finding if a ZVT terminal answers Status Enquiry, else None."""
    from drivers.zvt.client import ZvtTerminal
    from drivers.zvt.errors import ZvtError
    from drivers.zvt.session import ZvtTimeouts

    budget = timeouts.zvt_status_s
    terminal = ZvtTerminal(
        path,
        timeouts=ZvtTimeouts(
            connect_timeout_s=min(2.0, budget),
            write_timeout_s=min(2.0, budget),
            link_ack_timeout_s=min(1.0, budget),
            command_ack_timeout_s=min(3.0, budget),
            progress_timeout_s=budget,
            completion_timeout_s=budget,
            transaction_timeout_s=budget,
        ),
    )
    try:
        async with asyncio.timeout(budget):
            await terminal.connect()
            status = await terminal.status()
    except (ZvtError, TimeoutError):
        return None
    finally:
        with contextlib.suppress(ZvtError, OSError):
            await terminal.close()
    software = f", software {status.sw_version}" if status.sw_version else ""
    return PortFinding(
        path=path,
        kind=DeviceKind.PAYMENT_TERMINAL,
        detail=f"ZVT terminal: status {status.terminal_status:02X} "
        f"{status.message('en')}{software}",
        ready=status.ready,
    )


async def probe_scanner(path: str, timeouts: ProbeTimeouts) -> PortFinding | None:
    """A scanner finding if a classified read arrives within ``scanner_listen_s``."""
    from drivers.scanner.serial_scanner import ScannerConfig, ScannerFault, SerialScanner

    if timeouts.scanner_listen_s <= 0:
        return None
    scanner = SerialScanner(ScannerConfig(url=path, reopen_attempts_max=1, reopen_delay_s=0.0))
    events = scanner.events()
    try:
        async with asyncio.timeout(timeouts.scanner_listen_s):
            async for event in events:
                if isinstance(event, ScannerFault):
                    return None
                # Only the kind of read is reported, never its content.
                return PortFinding(
                    path=path,
                    kind=DeviceKind.SCANNER,
                    detail=f"serial scanner: read a {type(event).__name__}",
                )
    except TimeoutError:
        return None
    finally:
        # events() is an async generator: closing it closes the port.
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    return None


async def probe_port(path: str, timeouts: ProbeTimeouts | None = None) -> PortFinding:
    """Ask ``path`` the questions in the module docstring, in order; never raises."""
    from drivers.escpos.errors import PrinterConnectionError, PrinterError

    timeouts = timeouts or ProbeTimeouts()
    try:
        found = await probe_printer(path, timeouts)
    except PrinterConnectionError as exc:
        return PortFinding(path=path, kind=DeviceKind.UNUSABLE, detail=_short(exc), ready=False)
    except PrinterError as exc:
        logger.info("probe_printer_failed path=%s error=%s", path, type(exc).__name__)
        found = None
    if found is None:
        found = await probe_zvt(path, timeouts)
    if found is None:
        found = await probe_scanner(path, timeouts)
    if found is None:
        found = PortFinding(path=path, kind=DeviceKind.SILENT, detail="no answer", ready=False)
    logger.info("probe_port path=%s kind=%s", path, found.kind.value)
    return found


async def probe_serial(
    globs: Sequence[str] = DEFAULT_SERIAL_GLOBS,
    timeouts: ProbeTimeouts | None = None,
    *,
    ports_max: int = PORTS_MAX,
) -> list[PortFinding]:
    """Probe every candidate port, one after another (see :func:`probe_port`)."""
    return [
        await probe_port(path, timeouts) for path in candidate_ports(globs, ports_max=ports_max)
    ]


def _list_readers_blocking() -> list[str]:
    from drivers.pcsc.reader import list_readers

    return list_readers()


async def list_pcsc_readers(timeout_s: float = 3.0) -> ReaderFinding:
    """The PC/SC readers pcscd reports, within ``timeout_s``; never raises.

    The blocking call runs in a daemon thread of its own: if pcscd hangs, the
    thread is abandoned rather than holding up the caller (or its event loop's
    default executor at shutdown).
    """
    import threading

    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[str]] = loop.create_future()

    def settle(result: list[str] | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    def work() -> None:
        try:
            names = _list_readers_blocking()
        except BaseException as exc:  # reported to the caller, not lost in the thread
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                loop.call_soon_threadsafe(settle, None, exc)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, names, None)

    threading.Thread(target=work, name="probe-pcsc", daemon=True).start()
    try:
        names = await asyncio.wait_for(future, timeout_s)
    except TimeoutError:
        return ReaderFinding(error=f"pcscd did not answer within {timeout_s} s")
    except ImportError:
        return ReaderFinding(error="pyscard is not installed")
    except Exception as exc:
        return ReaderFinding(error=_short(exc))
    return ReaderFinding(readers=tuple(str(name)[:TEXT_CHARS_MAX] for name in names[:READERS_MAX]))


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= TEXT_CHARS_MAX else text[: TEXT_CHARS_MAX - 1] + "…"
