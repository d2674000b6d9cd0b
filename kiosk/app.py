"""The kiosk's Textual app: the frame, the welcome screen, the idle timer. The flow is in
:mod:`kiosk.controller`, the I/O in :mod:`kiosk.services`, the screens in :mod:`kiosk.screens`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType

from kiosk.controller import IDLE_TICK_S, KioskController
from kiosk.screens.welcome import WelcomeScreen


class KioskApp(KioskController):
    """``KioskApp(settings)``; ``lobbypay kiosk`` runs it, ``--serve`` serves it to a browser."""

    # Absolute, so that subclasses elsewhere (benches, tests) find it too.
    CSS_PATH = Path(__file__).with_name("kiosk.tcss")
    TITLE = "lobbypay"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", show=False, priority=True),
    ]

    async def on_mount(self) -> None:
        await self.push_screen(WelcomeScreen(self.lang, self.staff, demo=self.demo))
        self.set_interval(IDLE_TICK_S, self.idle_tick, name="idle")
        self.run_worker(self.start_services(), group="start", exit_on_error=False)

    async def on_unmount(self) -> None:
        with contextlib.suppress(Exception):
            await self.services.close()
