"""Helpers for driving the kiosk with Textual's Pilot against the device simulators."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button

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


async def tap(pilot: Pilot[Any], selector: str) -> None:
    """Press the button ``selector`` as a tap does, and let its messages settle.

    ``Pilot.click`` waits for the whole process to look idle after each of its
    four mouse events, which costs a tenth of a second per tap here; pressing
    the button runs the same handlers (Button.press is what a click calls).
    The mouse path itself is covered by the tests that use ``click_number``.
    """
    widget = pilot.app.screen.query_one(selector)
    assert isinstance(widget, Button), f"{selector} is not a button"
    assert not widget.disabled, f"{selector} is disabled"
    assert widget.display, f"{selector} is hidden"
    widget.press()
    for _ in range(3):  # button -> keypad -> screen -> app
        await pilot.pause(0)


async def type_number(pilot: Pilot[Any], digits: str) -> None:
    for digit in digits:
        await tap(pilot, "#key-point" if digit in ",." else f"#key-{digit}")


async def click_number(pilot: Pilot[Any], digits: str) -> None:
    """Type with real mouse clicks (slow; for the tests of the keypad itself)."""
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
