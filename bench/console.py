"""Benchmark: operator console page render times beside the login page, on a loaded ledger.

The central service (``create_app``, console included) runs in this process on a
real socket over a SQLite ledger (or PostgreSQL with ``--pg``) seeded with
terminals and their payments through the real ingest path, and with open
discrepancies from the reconciliation's synthetic seeder. A logged-in client
fetches each page repeatedly; the figures are the median and the slowest time
per page, from request to the last byte, and the ratio of the median to the
login page's (a page that reads no ledger: the baseline of this run).

    python bench/console.py [--quick] [--pg]

Target (issue 9): every page <= 300 ms with 10,000 open discrepancies. The last
line is ``console_page_ms_max=<x> open_discrepancies=<n>`` (the slowest median).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

from central_sync.central.app import create_app, identity_key, storage_key
from central_sync.central.settings import CentralServiceSettings
from central_sync.central.storage import Storage
from firmware_config.identity import generate_identity
from tests.support.console import PASSWORD, USERS, seed_ledger

TARGET_MS = 300.0
PG_DSN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')

Seeder = Callable[[Storage, int], Awaitable[int]]


async def _no_discrepancies(storage: Storage, count: int) -> int:
    return 0


def discrepancy_seeder() -> Seeder:
    """The reconciliation's seeder of open discrepancies (central_sync/reconcile)."""
    try:
        from central_sync.console.recon_pages import seed_open_discrepancies
    except ImportError:
        return _no_discrepancies
    return seed_open_discrepancies


async def timed(http: aiohttp.ClientSession, url: str, rounds: int) -> tuple[float, float, int]:
    """(median ms, slowest ms, status) of ``rounds`` GETs of ``url``."""
    times = []
    status = 0
    for _ in range(rounds):
        start = time.perf_counter()
        async with http.get(url, allow_redirects=False) as resp:
            await resp.read()
            status = resp.status
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times), status


async def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    terminals, payments = (10, 1_000) if args.quick else (20, 10_000)
    discrepancies = args.discrepancies
    rounds = 5 if args.quick else 15
    with tempfile.TemporaryDirectory(prefix="lobbypay-console-bench-") as tmp:
        data_dir = Path(tmp)
        generate_identity(data_dir / "central.key")
        url = ""
        if args.pg:
            url = f"{args.pg_dsn}?schema=lp_bench_console_{os.getpid()}"
        settings = CentralServiceSettings(data_dir=data_dir, database_url=url, port=0)
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        try:
            storage = app[storage_key]
            start = time.perf_counter()
            seeded = await seed_ledger(
                storage, app[identity_key], terminals=terminals, payments=payments
            )
            opened = await discrepancy_seeder()(storage, discrepancies)
            print(
                f"seeded {seeded.payments} payments on {terminals} terminals and"
                f" {opened} open discrepancies in {time.perf_counter() - start:.1f} s"
            )
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                login_ms, _, _ = await timed(http, f"{base}/console/login", rounds)
                async with http.get(f"{base}/console/login") as resp:
                    token = CSRF.search(await resp.text())
                assert token is not None
                async with http.post(
                    f"{base}/console/login",
                    data={
                        "csrf": token.group(1),
                        "user": USERS[next(iter(USERS))],
                        "password": PASSWORD,
                    },
                    headers={"Origin": base},
                    allow_redirects=False,
                ) as resp:
                    assert resp.status == 302, resp.status
                pages = [
                    "/console/terminals",
                    "/console/batches",
                    "/console/batches?page=2",
                    "/console/volume",
                    "/console/exports",
                    *(await _recon_pages(storage)),
                ]
                print(f"baseline: login page {login_ms:8.2f} ms (median of {rounds})")
                worst = 0.0
                for path in pages:
                    median, slowest, status = await timed(http, base + path, rounds)
                    assert status == 200, (path, status)
                    worst = max(worst, median)
                    print(
                        f"  {path:<48} {median:8.2f} ms  max {slowest:8.2f} ms"
                        f"  {median / login_ms:6.1f}x login"
                    )
            verdict = "met" if worst <= TARGET_MS else "MISSED"
            print(f"slowest page median {worst:.1f} ms (target <= {TARGET_MS:.0f} ms) {verdict}")
            print(f"console_page_ms_max={worst:.1f} open_discrepancies={opened}")
        finally:
            if args.pg:
                from central_sync.central.postgres import PostgresStorage

                storage = app[storage_key]
                if isinstance(storage, PostgresStorage):
                    await storage.drop_schema()
            await runner.cleanup()
    return 0


async def _recon_pages(storage: Storage) -> list[str]:
    try:
        from central_sync.console.recon_pages import bench_paths
    except ImportError:
        return []
    return await bench_paths(storage)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="operator console page render times")
    parser.add_argument("--quick", action="store_true", help="smaller ledger, fewer rounds")
    parser.add_argument(
        "--discrepancies", type=int, default=10_000, help="open discrepancies to seed (10000)"
    )
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--pg-dsn", default=PG_DSN_DEFAULT, help="PostgreSQL server")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
