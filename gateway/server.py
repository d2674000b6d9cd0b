"""Running the gateway: sockets, TLS, signals, systemd readiness and graceful shutdown.

``serve(settings)`` starts the app from :func:`gateway.app.create_app` on
``gateway.listen_host:listen_port`` (HTTPS when ``tls_cert_path`` is set, asking
for client certificates when ``tls_client_ca_path`` is), tells systemd it is
ready (``READY=1``, sd_notify(3)), pings the watchdog at half of
``$WATCHDOG_USEC``, and on SIGTERM or SIGINT shuts down gracefully: the
listening socket closes, requests in flight finish (payments in flight always
finish: they are shielded from cancellation) within ``shutdown_timeout_s``, the
index and the journal are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Final

from aiohttp import web

from firmware_config.settings import GatewaySettings, Settings
from gateway.app import create_app

__all__ = ["build_ssl_context", "make_runner", "sd_notify", "serve", "tune_gc"]

GC_THRESHOLDS: Final = (10_000, 20, 100)
"""Young-generation collections every 10,000 allocations instead of 700: a pay
allocates a few hundred container objects, and at CPython's default the
collector ran every few requests and paused the event loop for milliseconds."""

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


def build_ssl_context(g: GatewaySettings) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2+), or None for plain HTTP."""
    if g.tls_cert_path is None or g.tls_key_path is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(g.tls_cert_path), str(g.tls_key_path))
    if g.tls_client_ca_path is not None:
        ctx.load_verify_locations(cafile=str(g.tls_client_ca_path))
        # Optional: agents on HTTP Basic connect without a certificate; one
        # that presents a certificate must present one our CA issued.
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def make_runner(app: web.Application, g: GatewaySettings) -> web.AppRunner:
    """An AppRunner with the gateway's connection bounds (no access log: the audit log is ours)."""
    return web.AppRunner(
        app,
        shutdown_timeout=g.shutdown_timeout_s,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=g.keepalive_timeout_s,
    )


def tune_gc() -> None:
    """Tune the garbage collector for a long-running server (call once started).

    Everything alive after start-up (modules, the app, agents, caches built so
    far) is moved out of the collector's sight with :func:`gc.freeze`, so full
    collections stop re-scanning it, and young collections run less often
    (:data:`GC_THRESHOLDS`). Measured in bench/gateway.py: fewer, shorter
    pauses, which is most of the pay latency tail.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _watchdog(interval_s: float) -> None:
    while True:
        sd_notify("WATCHDOG=1")
        await asyncio.sleep(interval_s)


async def serve(
    settings: Settings, *, agents_path: Path | None = None, ready: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully."""
    g = settings.gateway
    app = create_app(settings, agents_path=agents_path)
    runner = make_runner(app, g)
    await runner.setup()
    tune_gc()
    try:
        site = web.TCPSite(
            runner, g.listen_host, g.listen_port, ssl_context=build_ssl_context(g), backlog=1024
        )
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        scheme = "https" if g.tls_cert_path is not None else "http"
        for address in runner.addresses:
            print(
                f"gateway listening on {scheme}://{address[0]}:{address[1]}",
                file=sys.stderr,
                flush=True,
            )
        sd_notify("READY=1")
        if ready is not None:
            ready.set()
        watchdog: asyncio.Task[None] | None = None
        usec = os.environ.get("WATCHDOG_USEC", "")
        if usec.isdigit() and int(usec) > 0:
            watchdog = asyncio.create_task(_watchdog(int(usec) / 2_000_000))
        try:
            await stop.wait()
        finally:
            sd_notify("STOPPING=1")
            logger.info("gateway_stopping")
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
    finally:
        await runner.cleanup()
