"""A kiosk process for the crash tests: the real app, headless, on a terminal and printer over TCP.

Usage: python -m tests.kiosk.crash_child ROOT TERMINAL_URL PRINTER_URL [CRASH_AT]

Starts the kiosk (start-up recovery runs first), prints one ``STATUS`` JSON
line with what recovery left and whether payments are accepted, then
identifies account 1000000008 and pays cold water by card (with the fee),
waits for the printed receipt, prints ``DONE`` and exits. With CRASH_AT (a step
of :data:`kiosk.services.PROBE_STEPS`) the kiosk SIGKILLs itself the moment the
payment reaches that step.

Lines go straight to fd 1 so nothing sits in a buffer when the process is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from drivers.zvt.session import ZvtTimeouts
from kiosk.app import KioskApp
from kiosk.devices import DeviceChoice
from kiosk.messages import AmountsChosen, NumberSubmitted, PayConfirmed, SurchargeDecided
from kiosk.model import BasketItem
from tests.kiosk.pilot import SIZE, on_screen, started, until
from tests.kiosk.support import IVANOVA, make_settings


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class Probe:
    """Reports every payment step; once armed, dies at ``crash_at``.

    It is armed after start-up, so that recovery (which records results too)
    runs to the end and only the new payment is interrupted.
    """

    def __init__(self, crash_at: str | None) -> None:
        self.crash_at = crash_at
        self.armed = False

    def __call__(self, step: str, payment_id: str) -> None:
        say(f"STEP {step} {payment_id}")
        if self.armed and step == self.crash_at:
            os.kill(os.getpid(), signal.SIGKILL)


async def pay_once(app: KioskApp, pilot) -> None:  # type: ignore[no-untyped-def]
    app.screen.post_message(NumberSubmitted(IVANOVA))
    await on_screen(pilot, app, "ServicesScreen")
    app.screen.post_message(
        AmountsChosen((BasketItem(code="CW", amount_minor=48_730, selected=True),))
    )
    await on_screen(pilot, app, "SurchargeScreen")
    app.screen.post_message(SurchargeDecided(True))
    await on_screen(pilot, app, "ConfirmScreen")
    app.screen.post_message(PayConfirmed())
    await on_screen(pilot, app, "ReceiptScreen", timeout_s=60)
    await until(pilot, lambda: app.screen.outcome is not None, 30)


async def main(root: str, terminal_url: str, printer_url: str, crash_at: str | None) -> None:
    settings = make_settings(
        Path(root),
        recovery_timeout_s=20,
    )
    settings = settings.model_copy(
        update={
            "devices": settings.devices.model_copy(
                update={
                    "payment_terminal": settings.devices.payment_terminal.model_copy(
                        update={"driver": "zvt", "url": terminal_url}
                    ),
                    "printer": settings.devices.printer.model_copy(
                        update={"driver": "escpos", "url": printer_url}
                    ),
                }
            )
        }
    )
    probe = Probe(crash_at)
    app = KioskApp(
        settings,
        devices=DeviceChoice.from_settings(settings),
        probe=probe,
        terminal_timeouts=ZvtTimeouts(progress_timeout_s=3.0, completion_timeout_s=3.0),
    )
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app, fast=False)
        status = app.services.staff_status()
        say(
            "STATUS "
            + json.dumps(
                {
                    "unresolved": len(app.services.history.unresolved()),
                    "paused": status.payments_paused,
                    "alarms": list(status.alarms),
                }
            )
        )
        probe.armed = True
        await pay_once(app, pilot)
        say("DONE")


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2], args[3] if len(args) > 3 else None))
