"""The ZVT payment-terminal back-ends, chosen by name in configuration (CONVENTIONS rule 5).

* ``zvt`` — a real terminal at ``options.device``.
* ``zvt-simulator`` — the simulator of :mod:`drivers.zvt.simulator`, served on
  an in-process pty and driven through the very same serial stack, for the
  demo and for development without hardware.

Both give a :class:`TerminalHandle` whose ``terminal`` is a connected and
registered :class:`~drivers.zvt.client.ZvtTerminal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, Self

from drivers.zvt.client import ZvtTerminal
from drivers.zvt.errors import ZvtUsageError
from drivers.zvt.session import ZvtTimeouts
from drivers.zvt.simulator import Outcome, PtyEndpoint, TerminalSimulator

BACKENDS: Final = ("zvt", "zvt-simulator")


@dataclass(frozen=True, slots=True, kw_only=True)
class ZvtOptions:
    """Options of the ZVT back-ends."""

    device: str = ""
    """Serial device, ``socket://host:port`` or ``tcp://host[:20007]`` (``zvt`` only)."""

    framing: Literal["serial", "tcp"] | None = None
    """Override the framing derived from ``device``."""

    password: int = field(default=0, repr=False)
    """Terminal password (3-byte BCD, 0..999999); a secret, kept out of ``repr``."""

    currency: str = "RUB"
    """ISO 4217 currency of payments."""

    text_encoding: str = "cp437"
    """Character set of texts from the terminal (``cp866`` for many Russian terminals)."""

    baudrate: int = 9600
    """Serial line speed."""

    card_timeout_s: int | None = 60
    """How long the terminal waits for a card (BMP 01 of Authorization)."""

    timeouts: ZvtTimeouts = field(default_factory=ZvtTimeouts)
    """Every wait of the driver."""

    simulator_outcome: str = "approved"
    """``zvt-simulator`` only: what every payment does (see ``simulator.Outcome``)."""

    simulator_delay_s: float = 0.3
    """``zvt-simulator`` only: pause between intermediate statuses."""


class TerminalHandle:
    """A connected terminal and, for the simulator back-end, the simulator behind it."""

    def __init__(
        self,
        terminal: ZvtTerminal,
        *,
        simulator: TerminalSimulator | None = None,
        endpoint: PtyEndpoint | None = None,
    ) -> None:
        self.terminal = terminal
        self.simulator = simulator
        self._endpoint = endpoint

    async def aclose(self) -> None:
        """Close the terminal (and stop the simulator)."""
        await self.terminal.close()
        if self._endpoint is not None:
            await self._endpoint.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _terminal(device: str, options: ZvtOptions) -> ZvtTerminal:
    return ZvtTerminal(
        device,
        framing=options.framing,
        password=options.password,
        currency=options.currency,
        timeouts=options.timeouts,
        text_encoding=options.text_encoding,
        baudrate=options.baudrate,
        card_timeout_s=options.card_timeout_s,
    )


async def open_terminal(backend: str, options: ZvtOptions) -> TerminalHandle:
    """Open the back-end named ``backend``, connect and register."""
    if backend == "zvt":
        if not options.device:
            raise ZvtUsageError("the zvt back-end needs a device")
        terminal = _terminal(options.device, options)
        await terminal.connect()
        await terminal.register()
        return TerminalHandle(terminal)
    if backend == "zvt-simulator":
        try:
            outcome = Outcome(options.simulator_outcome)
        except ValueError:
            raise ZvtUsageError(
                f"unknown simulator outcome {options.simulator_outcome!r}"
            ) from None
        simulator = TerminalSimulator(
            default_outcome=outcome, step_delay_s=options.simulator_delay_s
        )
        endpoint = await simulator.serve_pty()
        terminal = _terminal(endpoint.path, options)
        try:
            await terminal.connect()
            await terminal.register()
        except BaseException:
            await terminal.close()
            await endpoint.close()
            raise
        return TerminalHandle(terminal, simulator=simulator, endpoint=endpoint)
    raise ZvtUsageError(f"unknown payment terminal back-end {backend!r}; known: {BACKENDS}")
