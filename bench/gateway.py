"""Benchmark: durable OSMP pays per second beside an empty aiohttp handler, and overload.

The servers run in this process (one event loop, as ``lobbypay gateway serve``
runs them); the load generator is another process on loopback: a closed-loop
HTTP/1.1 keep-alive client written on raw asyncio streams (wrk is not
installed, and aiohttp's client would be slower than the servers it measures).

1. The baseline: an aiohttp app whose handler returns an empty 200, at 32 and
   256 concurrent connections. For reference, ``command=check`` at 256
   connections: the gateway's whole protocol path without a journal write.
2. The gateway from ``create_app``, with a real signed catalog and the real
   journal on this disk (WAL, synchronous=FULL, group commit): ``command=pay``
   with a new txn_id every request, HTTP Basic (verified once, then cached),
   audit log on (to a file), at 32 and 256 connections. Every pay is answered
   only after its journal entry is fsync'd. Afterwards the journal must hold
   exactly one intent per pay answered with result 0.
3. Latency at a sustainable load: pays arriving at 70% of the capacity
   measured at 256 connections (open loop, up to 256 connections).
4. Overload: pays offered at twice that capacity (open loop, up to 1024
   connections) to a gateway with the default ``requests_in_flight_max``.
   Only two answers are allowed: result 0, and result 1 (retry later) for the
   overload; the journal must hold exactly the pays answered 0.

    python bench/gateway.py [--quick] [--dir DIR]

The machine may be shared, so the baseline and the pays are measured in three
alternating rounds, back to back, and the figures are medians of the rounds.
The last line is ``gateway_pay_ratio=<x> p99_ms=<n>``: the lower of the two
median pay/empty throughput ratios (32 and 256 connections), and the median
pay p99 latency at 256 connections, closed loop. Targets: ratio >= 0.35,
p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_RATIO = 0.35
TARGET_P99_MS = 50.0
PASSWORD = "bench-password-0123"


# -- the load generator (runs in its own process) -----------------------------------------


async def _client_main(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed loop (``rate`` 0) or paced open loop; returns counts and latencies."""
    host, port = spec["host"], spec["port"]
    conns = int(spec["connections"])
    duration_s = float(spec["duration_s"])
    warmup_s = float(spec["warmup_s"])
    rate = float(spec.get("rate", 0.0))
    kind = spec["kind"]
    accounts: list[str] = spec.get("accounts", ["0"])
    auth = spec.get("auth", "")
    prefix = int(spec.get("txn_prefix", 1))
    latencies: list[float] = []
    results: dict[str, int] = {}
    results_all: dict[str, int] = {}
    errors = 0
    counter = [0]
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    tokens: asyncio.Queue[None] | None = asyncio.Queue() if rate > 0 else None

    def request() -> bytes:
        if kind == "empty":
            return b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
        counter[0] += 1
        n = counter[0]
        account = accounts[n % len(accounts)]
        if kind == "check":
            target = f"/osmp?command=check&account={account}&sum=100.00"
        else:
            target = (
                f"/osmp?command=pay&txn_id={prefix}{n:010d}&txn_date=20250601120000"
                f"&account={account}&sum=100.00"
            )
        return (f"GET {target} HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\n\r\n").encode()

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                if tokens is not None:
                    await tokens.get()
                now = time.perf_counter()
                if now >= stop_at:
                    return
                sent = time.perf_counter()
                writer.write(request())
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                status = int(head[9:12])
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                done = time.perf_counter()
                if kind != "empty":
                    i = body.find(b"<result>")
                    code = body[i + 8 : body.find(b"</result>")].decode() if i >= 0 else "?"
                    key = f"{status}:{code}"
                else:
                    key = str(status)
                results_all[key] = results_all.get(key, 0) + 1
                if sent >= measure_from:
                    latencies.append(done - sent)
                    results[key] = results.get(key, 0) + 1
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()

    async def pacer() -> None:
        assert tokens is not None
        interval = 1.0 / rate
        next_at = time.perf_counter()
        while time.perf_counter() < stop_at:
            next_at += interval
            tokens.put_nowait(None)
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        for _ in range(conns):
            tokens.put_nowait(None)

    tasks = [asyncio.create_task(worker()) for _ in range(conns)]
    if tokens is not None:
        tasks.append(asyncio.create_task(pacer()))
    await asyncio.gather(*tasks)
    latencies.sort()
    count = len(latencies)
    return {
        "count": count,
        "per_s": count / duration_s,
        "p50_ms": latencies[count // 2] * 1000 if count else None,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] * 1000 if count else None,
        "results": results,
        "results_all": results_all,
        "errors": errors,
        "sent_total": counter[0],
    }


def client_entry() -> None:
    spec = json.loads(sys.argv[2])
    print(json.dumps(asyncio.run(_client_main(spec))))


async def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        json.dumps(spec),
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError("load generator failed")
    return dict(json.loads(out))


# -- the servers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    name: str
    connections: int
    per_s: float
    p50_ms: float | None
    p99_ms: float | None
    results: dict[str, int]
    """Answers in the measured window."""
    results_all: dict[str, int]
    """Every answer, warm-up included."""


async def start_site(app: Any) -> tuple[Any, int]:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    return runner, int(runner.addresses[0][1])


def prepare(root: Path, accounts: int) -> tuple[Any, list[str]]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from central_sync.catalog import generator, publish
    from central_sync.catalog.store import CatalogStore
    from firmware_config.settings import Settings
    from gateway.agents import hash_password, new_agent_toml

    data = root / "data"
    data.mkdir(parents=True)
    now = time.time_ns() // 1_000_000
    catalog = generator.generate_catalog(7, accounts, 5)
    key = Ed25519PrivateKey.generate()
    release = publish.build_snapshot(
        catalog, 1, key, published_at_ms=now - 60_000, expires_at_ms=now + 30 * 86_400_000
    )
    store = CatalogStore.open(data / "catalog.db")
    try:
        publish.apply_release(
            store,
            release,
            central_public_key=key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            ),
            now_ms=now,
        )
    finally:
        store.close()
    agents = root / "agents.toml"
    agents.write_text(
        new_agent_toml(
            "bench_bank",
            name="bench",
            ip_allow=["127.0.0.0/8"],
            protocols=["osmp"],
            password_hash=hash_password(PASSWORD),
            hmac_key_id=None,
            hmac_secret_hex=None,
            amount_min_minor=100,
            amount_max_minor=10**9,
            rate_per_s=100_000,
            rate_burst=100_000,
        )
    )
    os.chmod(agents, 0o600)
    settings = Settings.model_validate(
        {
            "terminal": {"data_dir": str(data), "role": "gateway"},
            "journal": {
                # The bench stores far more payments than a terminal may keep offline.
                "offline_payments_max": 10_000_000,
                "offline_amount_total_max_minor": 10**15,
                "offline_payment_amount_max_minor": 10**9,
            },
            "gateway": {"agents_path": str(agents), "requests_in_flight_max": 1024},
        }
    )
    vns = sorted(catalog.accounts)
    return settings, [vns[(i * 7919) % len(vns)] for i in range(min(len(vns), 4096))]


async def measure(name: str, port: int, kind: str, conns: int, seconds: float, **extra: Any) -> Row:
    result = await run_client(
        {
            "host": "127.0.0.1",
            "port": port,
            "kind": kind,
            "connections": conns,
            "duration_s": seconds,
            "warmup_s": min(1.0, seconds / 3),
            **extra,
        }
    )
    if result["errors"]:
        raise RuntimeError(f"{name}: {result['errors']} connection errors")
    return Row(
        name=name,
        connections=conns,
        per_s=result["per_s"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        results=result["results"],
        results_all=result["results_all"],
    )


def show(row: Row) -> None:
    p50 = f"{row.p50_ms:7.2f}" if row.p50_ms is not None else "      -"
    p99 = f"{row.p99_ms:7.2f}" if row.p99_ms is not None else "      -"
    answers = ", ".join(f"{k}x{v}" for k, v in sorted(row.results.items()))
    print(
        f"  {row.name:22} {row.connections:4d} conns {row.per_s:9.0f} /s"
        f"  p50 {p50} ms  p99 {p99} ms  [{answers}]",
        flush=True,
    )


async def journal_intents(settings: Any) -> int:
    from central_sync.journal import Journal

    journal = await Journal.open(settings.journal_path)
    try:
        stats = await journal.stats()
    finally:
        await journal.close()
    return int(stats.entries_by_kind.get("payment-intent", 0))


async def bench(root: Path, quick: bool) -> int:
    from aiohttp import encode_basic_auth, web

    from firmware_config.settings import GatewaySettings
    from gateway.app import create_app
    from gateway.server import tune_gc

    seconds = 2.5 if quick else 8.0
    settings, accounts = prepare(root, 2_000 if quick else 20_000)
    auth = encode_basic_auth("bench_bank", PASSWORD)
    # The process tuning `lobbypay gateway serve` applies; it applies to the
    # baseline server too, which runs in this same process.
    tune_gc()
    # The audit log is on, as under `lobbypay gateway serve`, into a file.
    handler = logging.FileHandler(root / "audit.log")
    audit = logging.getLogger("lobbypay.gateway.audit")
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False

    async def empty(request: web.Request) -> web.Response:
        return web.Response()

    baseline = web.Application()
    baseline.router.add_get("/", empty)
    rows: dict[tuple[str, int], Row] = {}
    base_runner, base_port = await start_site(baseline)
    runner, port = await start_site(create_app(settings))
    # The machine is shared: its load drifts within a run. So the baseline and
    # the pays are measured in alternating rounds, each pair back to back, and
    # the ratio is the median of the rounds' ratios.
    rounds = 3
    slice_s = seconds / rounds * 1.5
    ratios: dict[int, list[float]] = {32: [], 256: []}
    pay_rows: list[Row] = []
    empty_rows: list[Row] = []
    print(
        f"empty aiohttp handler vs gateway durable pay (journal fsync'd before each answer),"
        f" closed loop, {rounds} alternating rounds:",
        flush=True,
    )
    for r in range(rounds):
        for conns in (32, 256):
            empty_row = await measure("empty handler", base_port, "empty", conns, slice_s)
            pay_row = await measure(
                "gateway pay", port, "pay", conns, slice_s,
                accounts=accounts, auth=auth, txn_prefix=10 + 2 * r + (conns == 256),
            )  # fmt: skip
            show(empty_row)
            show(pay_row)
            ratios[conns].append(pay_row.per_s / empty_row.per_s)
            pay_rows.append(pay_row)
            empty_rows.append(empty_row)
    await base_runner.cleanup()
    for conns in (32, 256):
        # The round with the median rate stands for each series below.
        for name, series in (("empty", empty_rows), ("pay", pay_rows)):
            mine = sorted((x for x in series if x.connections == conns), key=lambda x: x.per_s)
            rows[name, conns] = mine[len(mine) // 2]
    print("gateway check (same protocol path, no journal write), for reference:", flush=True)
    rows["check", 256] = row = await measure(
        "gateway check", port, "check", 256, slice_s, accounts=accounts, auth=auth
    )
    show(row)
    capacity = rows["pay", 256].per_s
    # Latency at a sustainable load: requests arrive at 70% of the measured
    # capacity (open loop), over up to 256 connections, instead of 256
    # connections each sending again the moment it is answered.
    paced = await run_client(
        {
            "host": "127.0.0.1",
            "port": port,
            "kind": "pay",
            "connections": 256,
            "duration_s": seconds,
            "warmup_s": min(1.0, seconds / 3),
            "rate": 0.7 * capacity,
            "accounts": accounts,
            "auth": auth,
            "txn_prefix": 30,
        }
    )
    paced_row = Row(
        name="gateway pay @0.7 cap",
        connections=256,
        per_s=paced["per_s"],
        p50_ms=paced["p50_ms"],
        p99_ms=paced["p99_ms"],
        results=paced["results"],
        results_all=paced["results_all"],
    )
    pay_rows.append(paced_row)
    show(paced_row)
    await runner.cleanup()
    answered = sum(r.results_all.get("200:0", 0) for r in pay_rows)
    other_answers = sum(n for r in pay_rows for k, n in r.results_all.items() if k != "200:0")
    intents = await journal_intents(settings)
    print(
        f"  every answer result 0: {'yes' if other_answers == 0 else 'NO'};"
        f" pays answered 0: {answered}, journal payments: {intents}",
        flush=True,
    )
    steady_ok = other_answers == 0 and intents == answered

    in_flight_max = GatewaySettings().requests_in_flight_max  # the shipped default
    overload_settings = settings.model_copy(
        update={
            "gateway": settings.gateway.model_copy(update={"requests_in_flight_max": in_flight_max})
        }
    )
    runner, port = await start_site(create_app(overload_settings))
    offered = 2 * capacity
    print(
        f"overload: {offered:.0f} pays/s offered (2x capacity),"
        f" in-flight bound {in_flight_max} (default):",
        flush=True,
    )
    result = await run_client(
        {
            "host": "127.0.0.1",
            "port": port,
            "kind": "pay",
            "connections": 1024,
            "duration_s": seconds,
            "warmup_s": 0.0,
            "rate": offered,
            "accounts": accounts,
            "auth": auth,
            "txn_prefix": 40,
        }
    )
    await runner.cleanup()
    after = await journal_intents(settings)
    answers = result["results_all"]
    ok = answers.get("200:0", 0)
    overload = answers.get("200:1", 0)
    other = sum(n for k, n in answers.items() if k not in ("200:0", "200:1")) + result["errors"]
    recorded = after - intents
    print(
        f"  {result['sent_total']} pays sent: result 0 x{ok}, result 1 (overload) x{overload},"
        f" other x{other}; journal gained {recorded} payments",
        flush=True,
    )
    overload_ok = other == 0 and recorded == ok and overload > 0

    ratio_32 = statistics.median(ratios[32])
    ratio_256 = statistics.median(ratios[256])
    ratio = min(ratio_32, ratio_256)
    p99s = [
        x.p99_ms or float("inf") for x in pay_rows if x.connections == 256 and x is not paced_row
    ]
    p99 = statistics.median(p99s)
    print("summary:")
    print(
        f"  pay/empty throughput (median of rounds): 32 conns {ratio_32:.2f}x,"
        f" 256 conns {ratio_256:.2f}x (target >= {TARGET_RATIO}x);"
        f" rounds: {', '.join(f'{x:.2f}' for x in ratios[32])} |"
        f" {', '.join(f'{x:.2f}' for x in ratios[256])}"
    )
    empty_p99 = statistics.median(
        x.p99_ms or float("inf") for x in empty_rows if x.connections == 256
    )
    print(
        f"  pay p99 at 256 conns (median of rounds): {p99:.1f} ms closed loop,"
        f" {paced_row.p99_ms or 0:.1f} ms at 0.7x capacity (target <= {TARGET_P99_MS:.0f} ms);"
        f" empty handler {empty_p99:.1f} ms"
    )
    print(f"  nothing lost at steady load: {'yes' if steady_ok else 'NO'}")
    print(
        "  overload: only result 0 / result 1, journal == pays answered 0: "
        + ("yes" if overload_ok else "NO")
    )
    print(f"gateway_pay_ratio={ratio:.2f} p99_ms={p99:.0f}")
    return 0 if overload_ok and steady_ok else 1


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--client":
        client_entry()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (about 30 s)")
    parser.add_argument("--dir", type=Path, help="work directory on the disk to measure")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gateway-bench-", dir=args.dir))
    try:
        return asyncio.run(bench(root, args.quick))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
