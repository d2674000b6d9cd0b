"""Running the central service: sockets, signals and systemd readiness.

``serve(settings)`` starts the app from :func:`create_app`, tells systemd it is
ready (``READY=1`` on ``$NOTIFY_SOCKET``, the ``Type=notify`` protocol of
sd_notify(3)) and pings the watchdog at half of ``$WATCHDOG_USEC``, then waits
for SIGTERM or SIGINT and shuts down within ``shutdown_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys

from aiohttp import web

from central_sync.central.app import create_app
from central_sync.central.settings import CentralServiceSettings

logger = logging.getLogger(__name__)


def sd_notify(state: str) -> bool:
    """Send ``state`` to systemd if it is listening; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


async def _watchdog(interval_s: float) -> None:
    while True:
        sd_notify("WATCHDOG=1")
        await asyncio.sleep(interval_s)


async def serve(settings: CentralServiceSettings) -> None:
    """Serve until SIGTERM/SIGINT."""
    runner = web.AppRunner(
        create_app(settings), shutdown_timeout=settings.shutdown_timeout_s, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for address in runner.addresses:
        print(f"central listening on http://{address[0]}:{address[1]}", file=sys.stderr, flush=True)
    sd_notify("READY=1")
    watchdog: asyncio.Task[None] | None = None
    usec = os.environ.get("WATCHDOG_USEC", "")
    if usec.isdigit() and int(usec) > 0:
        watchdog = asyncio.create_task(_watchdog(int(usec) / 2_000_000))
    try:
        await stop.wait()
    finally:
        sd_notify("STOPPING=1")
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        await runner.cleanup()
