"""Helpers for driving the kiosk with Textual's Pilot against the device simulators."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from drivers.zvt.session import ZvtTimeouts
from kiosk.app import KioskApp
from kiosk.devices import DeviceChoice
from kiosk.messages import NumberSubmitted
from tests.kiosk.support import FROZEN_NOW, make_settings

SIZE = (100, 32)
WAIT_S = 15.0


# Short waits, so that a terminal that stops answering is noticed in seconds, not minutes.
TEST_TIMEOUTS = ZvtTimeouts(progress_timeout_s=2.0, completion_timeout_s=2.0)


def make_app(tmp_path: Path, *, frozen: bool = True, **kiosk: Any) -> KioskApp:
    """A kiosk on the simulators (terminal, printer, card reader, scanner) with its own data dir."""
    settings = make_settings(tmp_path, **kiosk)
    devices = DeviceChoice(card_reader="simulator", scanner="simulator")
    return KioskApp(
        settings,
        devices=devices,
        clock=(lambda: FROZEN_NOW) if frozen else time.time,
        terminal_timeouts=TEST_TIMEOUTS,
    )


async def until(pilot: Pilot[Any], predicate: Any, timeout_s: float = WAIT_S) -> None:
    """Let the app run until ``predicate()`` is true (fails the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {getattr(predicate, '__name__', predicate)}"
            )
        await pilot.pause(0.02)


async def started(pilot: Pilot[Any], app: KioskApp, *, fast: bool = True) -> None:
    """Wait until the services have started and recovered; make the terminal quick."""
    await until(pilot, lambda: app.services_started)
    sim = app.services.terminal_simulator
    if fast and sim is not None:
        sim.config.step_delay_s = 0.01
    await pilot.pause()


def screen_name(app: KioskApp) -> str:
    return type(app.screen).__name__


async def on_screen(pilot: Pilot[Any], app: KioskApp, name: str, timeout_s: float = WAIT_S) -> None:
    def shown() -> bool:
        return screen_name(app) == name

    shown.__name__ = f"screen {name} (now {screen_name(app)})"
    await until(pilot, shown, timeout_s)
    await pilot.pause()


async def type_number(pilot: Pilot[Any], digits: str) -> None:
    for digit in digits:
        await pilot.click(f"#key-{digit}")


async def identify(pilot: Pilot[Any], app: KioskApp, number: str) -> None:
    """Submit ``number`` as the welcome screen's Find does; wait for the services screen.

    (The keypad itself has its own tests; typing ten digits per test would only
    make the suite slow.)
    """
    app.screen.post_message(NumberSubmitted(number))
    await on_screen(pilot, app, "ServicesScreen")


def text_of(app: KioskApp, selector: str) -> str:
    """The plain text a Static (or Button label) shows."""
    widget = app.screen.query_one(selector)
    content = getattr(widget, "label", None)
    if content is None:
        content = widget.render()
    return str(getattr(content, "plain", content))


async def settle(seconds: float = 0.05) -> None:
    await asyncio.sleep(seconds)
