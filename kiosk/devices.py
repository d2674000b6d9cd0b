"""The kiosk's devices, each back-end chosen by name in configuration (CONVENTIONS rule 5).

Theory of operation: :data:`BACKENDS` lists every back-end per device kind with
the settings it reads. :class:`DeviceChoice` names one back-end per kind —
from ``[devices.*].driver`` by default, overridable by the caller (the demo
uses the simulated card reader and scanner, which the configuration schema
does not offer yet). Every kind has a simulator that speaks the same bytes as
the real device over a pty, so the kiosk always runs the real protocol code:

* payment terminal — ``zvt`` (serial or TCP) and ``simulator`` (the ZVT
  simulator on an in-process pty, :func:`drivers.zvt.backend.open_terminal`);
* printer — ``escpos`` and ``simulator`` (:class:`~drivers.escpos.SimulatedPrinter`
  on a pty);
* card reader — ``pcsc`` (pcscd), ``simulator`` (simulated reader and cards),
  ``none``;
* scanner — ``serial`` and ``simulator`` (a pty the kiosk can "scan" into),
  ``none``.

The rest of the kiosk sees only the opened objects' interfaces.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from drivers.escpos.client import EscPosPrinter
    from drivers.escpos.simulator import PtyPrinterServer, SimulatedPrinter
    from drivers.pcsc.simulator import SimulatedCardReaderMonitor
    from drivers.scanner.serial_scanner import SerialScanner
    from drivers.scanner.simulator import ScannerSimulator
    from drivers.zvt.backend import TerminalHandle
    from drivers.zvt.session import ZvtTimeouts
    from firmware_config.settings import Settings

__all__ = [
    "BACKENDS",
    "Backend",
    "CardReaderDevice",
    "DeviceChoice",
    "DeviceError",
    "PrinterDevice",
    "ScannerDevice",
    "open_card_reader",
    "open_payment_terminal",
    "open_printer",
    "open_scanner",
]

logger = logging.getLogger(__name__)

PRINTER_BAUDRATE: Final = 19_200


class DeviceError(Exception):
    """A device back-end is unknown or cannot be opened as configured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """One back-end: its kind, name, the settings it reads, and what it is."""

    kind: str
    name: str
    options: tuple[str, ...]
    description: str


BACKENDS: Final[tuple[Backend, ...]] = (
    Backend(
        kind="payment_terminal",
        name="zvt",
        options=(
            "devices.payment_terminal.url",
            "devices.payment_terminal.password",
            "kiosk.card_timeout_s",
        ),
        description="ZVT (ECR interface v13) over serial, socket:// or tcp://",
    ),
    Backend(
        kind="payment_terminal",
        name="simulator",
        options=("kiosk.card_timeout_s",),
        description="the ZVT terminal simulator on an in-process pty",
    ),
    Backend(
        kind="printer",
        name="escpos",
        options=("devices.printer.url", "kiosk.receipt_width_chars"),
        description="ESC/POS receipt printer over serial or socket://",
    ),
    Backend(
        kind="printer",
        name="simulator",
        options=("kiosk.receipt_width_chars",),
        description="the ESC/POS printer simulator on an in-process pty",
    ),
    Backend(kind="card_reader", name="pcsc", options=(), description="PC/SC readers via pcscd"),
    Backend(
        kind="card_reader",
        name="simulator",
        options=(),
        description="a simulated reader; the demo cards are presented from the kiosk",
    ),
    Backend(kind="card_reader", name="none", options=(), description="no resident card reader"),
    Backend(
        kind="scanner",
        name="serial",
        options=("devices.scanner.url", "devices.scanner.baudrate"),
        description="line-oriented serial QR / barcode / magstripe scanner",
    ),
    Backend(
        kind="scanner",
        name="simulator",
        options=(),
        description="a scanner simulator on a pty; the demo bill is scanned from the kiosk",
    ),
    Backend(kind="scanner", name="none", options=(), description="no scanner"),
)


def _known(kind: str) -> tuple[str, ...]:
    return tuple(b.name for b in BACKENDS if b.kind == kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceChoice:
    """The back-end name of each device kind."""

    payment_terminal: str = "simulator"
    printer: str = "simulator"
    card_reader: str = "none"
    scanner: str = "none"

    def __post_init__(self) -> None:
        for kind in ("payment_terminal", "printer", "card_reader", "scanner"):
            name = getattr(self, kind)
            if name not in _known(kind):
                raise DeviceError(f"unknown {kind} back-end {name!r}; known: {_known(kind)}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: str) -> DeviceChoice:
        d = settings.devices
        choice = cls(
            payment_terminal=d.payment_terminal.driver,
            printer=d.printer.driver,
            card_reader=d.card_reader.driver,
            scanner=d.scanner.driver,
        )
        return replace(choice, **overrides) if overrides else choice


# --------------------------------------------------------------------------- terminal


async def open_payment_terminal(
    name: str, settings: Settings, *, timeouts: ZvtTimeouts | None = None
) -> TerminalHandle:
    """Connect to and register with the payment terminal back-end ``name``.

    ``timeouts`` overrides the driver's waits (the defaults suit real terminals).
    """
    from drivers.zvt.backend import ZvtOptions, open_terminal
    from drivers.zvt.session import ZvtTimeouts

    cfg = settings.devices.payment_terminal
    options = ZvtOptions(
        device=cfg.url,
        password=int(cfg.password.get_secret_value()),
        currency=settings.deployment.currency,
        card_timeout_s=settings.kiosk.card_timeout_s,
        timeouts=timeouts or ZvtTimeouts(),
    )
    if name == "zvt":
        return await open_terminal("zvt", options)
    if name == "simulator":
        return await open_terminal("zvt-simulator", options)
    raise DeviceError(f"unknown payment_terminal back-end {name!r}")


# --------------------------------------------------------------------------- printer


@dataclass(slots=True, kw_only=True)
class PrinterDevice:
    """An opened printer and, for the simulator, the simulated printer behind it."""

    printer: EscPosPrinter
    simulator: SimulatedPrinter | None = None
    server: PtyPrinterServer | None = None

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.printer.close()
        if self.server is not None:
            await self.server.stop()


async def open_printer(name: str, settings: Settings) -> PrinterDevice:
    """Open the printer back-end ``name``."""
    from drivers.escpos.client import EscPosPrinter
    from drivers.escpos.document import PrinterProfile
    from drivers.escpos.simulator import PtyPrinterServer, SimulatedPrinter

    profile = PrinterProfile(width_chars=settings.kiosk.receipt_width_chars)
    if name == "escpos":
        printer = await EscPosPrinter.open(
            settings.devices.printer.url, baudrate=PRINTER_BAUDRATE, profile=profile
        )
        return PrinterDevice(printer=printer)
    if name == "simulator":
        simulated = SimulatedPrinter(width_chars=profile.width_chars)
        server = PtyPrinterServer(simulated)
        path = await server.start()
        try:
            printer = await EscPosPrinter.open(path, baudrate=PRINTER_BAUDRATE, profile=profile)
        except BaseException:
            await server.stop()
            raise
        return PrinterDevice(printer=printer, simulator=simulated, server=server)
    raise DeviceError(f"unknown printer back-end {name!r}")


# --------------------------------------------------------------------------- card reader


@dataclass(slots=True, kw_only=True)
class CardReaderDevice:
    """A card event source and, for the simulator, the simulated reader to present cards on."""

    monitor: Any
    simulator: SimulatedCardReaderMonitor | None = None

    @property
    def readers(self) -> list[str]:
        return list(getattr(self.monitor, "readers", []))

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.monitor.close()


def open_card_reader(name: str, settings: Settings) -> CardReaderDevice | None:
    """Start the card reader back-end ``name`` (needs a running loop); None for ``none``."""
    del settings  # no option of these back-ends lives in the configuration yet
    if name == "none":
        return None
    if name == "pcsc":
        from drivers.pcsc.reader import CardReaderMonitor

        monitor = CardReaderMonitor()
        monitor.start()
        return CardReaderDevice(monitor=monitor)
    if name == "simulator":
        from drivers.pcsc.simulator import SimulatedCardReaderMonitor

        sim = SimulatedCardReaderMonitor()
        sim.start()
        return CardReaderDevice(monitor=sim, simulator=sim)
    raise DeviceError(f"unknown card_reader back-end {name!r}")


# --------------------------------------------------------------------------- scanner


@dataclass(slots=True, kw_only=True)
class ScannerDevice:
    """A serial scanner and, for the simulator, the pty end to "scan" into."""

    scanner: SerialScanner
    simulator: ScannerSimulator | None = None

    @property
    def is_open(self) -> bool:
        return self.scanner.is_open

    async def aclose(self) -> None:
        if self.simulator is not None:
            self.simulator.close()


def open_scanner(name: str, settings: Settings) -> ScannerDevice | None:
    """Make the scanner back-end ``name`` (its port opens when its events are read)."""
    if name == "none":
        return None
    from drivers.scanner.serial_scanner import ScannerConfig, SerialScanner

    if name == "serial":
        cfg = settings.devices.scanner
        return ScannerDevice(
            scanner=SerialScanner(ScannerConfig(url=cfg.url, baudrate=cfg.baudrate))
        )
    if name == "simulator":
        from drivers.scanner.simulator import ScannerSimulator

        sim = ScannerSimulator()
        return ScannerDevice(scanner=SerialScanner(ScannerConfig(url=sim.port_path)), simulator=sim)
    raise DeviceError(f"unknown scanner back-end {name!r}")
