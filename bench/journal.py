"""Benchmark: durable journal appends beside raw SQLite baselines on the same disk.

Prints durable appends per second and p50/p99 latency with 1, 16 and 256
concurrent appenders, beside two baselines measured in the same run, in the
same directory: raw sqlite3 inserts with one fsync'd commit per row, and raw
batched inserts (1,000 rows per commit). The baselines write exactly what the
journal writes for those payments — the same tables, the same entry rows, the
same payment keys, built before the clock starts — so a ratio measures the
journal's own cost (validation, hashing, group commit, asyncio), not a
difference in what is stored. Ratios, not absolute numbers, are what compare
across noisy machines.

    python bench/journal.py [--quick] [--dir DIR]

The last line is ``journal_group_commit_ratio=<x>``: the 256-appender rate over
the one-commit-per-row rate.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from central_sync import canonical
from central_sync.journal import Journal, PaymentIntent, schema_statements

TARGET_VS_ROW_COMMIT = 10.0
TARGET_VS_BATCHED = 0.25
TARGET_P99_MS = 20.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    name: str
    per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None


def intent(worker: int, i: int) -> PaymentIntent:
    return PaymentIntent(
        payment_id=f"pay-{worker:04d}-{i:08d}",
        amount_minor=150_000 + i % 977,
        currency="RUB",
        account="4000012345",
        channel="gateway",
        extra={
            "agent": "bank-atm-17",
            "txn_id": f"{worker}{i:010d}",
            "services": [{"code": "HVS", "provider": "vodokanal", "amount_minor": 150_000}],
        },
    )


def raw_rows(count: int) -> list[tuple[tuple[Any, ...], tuple[str, int]]]:
    """The rows the journal writes for ``count`` payments, in the order 256
    appenders produce them: an entry and its payment key (built before timing)."""
    rows = []
    prev = bytes(32)
    for seq in range(1, count + 1):
        worker, i = seq % 256, seq // 256
        body = canonical.encode(intent(worker, i).to_body())
        digest = hashlib.sha256(prev + body).digest()
        rows.append(
            (
                (seq, "payment-intent", seq, body, prev, digest),
                (f"payment-intent:pay-{worker:04d}-{i:08d}", seq),
            )
        )
        prev = digest
    return rows


def raw_connect(path: Path) -> sqlite3.Connection:
    """The journal's own schema, written by plain sqlite3 with the same durability."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for statement in schema_statements():
        conn.execute(statement)
    return conn


INSERT_ENTRY = "INSERT INTO entries (seq, kind, ts_ms, body, prev_hash, hash) VALUES (?,?,?,?,?,?)"
INSERT_KEY = "INSERT INTO payment_keys (dedup_key, seq) VALUES (?, ?)"


def raw_row_commit(directory: Path, seconds: float, rows: list[Any]) -> Result:
    """Baseline 1: the same rows, one INSERT each and one fsync'd COMMIT per row."""
    conn = raw_connect(directory / "raw-row.db")
    latencies: list[float] = []
    start = time.perf_counter()
    done = 0
    for entry, key in rows:
        if time.perf_counter() - start >= seconds:
            break
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(INSERT_ENTRY, entry)
        conn.execute(INSERT_KEY, key)
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
        done += 1
    elapsed = time.perf_counter() - start
    conn.close()
    p50, p99 = percentiles(latencies)
    return Result(
        name="raw sqlite, same rows, 1 commit per row", per_s=done / elapsed, p50_ms=p50, p99_ms=p99
    )


def raw_batched(directory: Path, rows: list[Any]) -> Result:
    """Baseline 2: the same rows by executemany, 1,000 per fsync'd COMMIT."""
    conn = raw_connect(directory / "raw-batched.db")
    start = time.perf_counter()
    for first in range(0, len(rows), 1000):
        chunk = rows[first : first + 1000]
        conn.execute("BEGIN")
        conn.executemany(INSERT_ENTRY, [entry for entry, _ in chunk])
        conn.executemany(INSERT_KEY, [key for _, key in chunk])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return Result(name="raw sqlite, same rows, 1000 per commit", per_s=len(rows) / elapsed)


def percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return p50, p99


async def journal_appenders(directory: Path, appenders: int, seconds: float) -> Result:
    """Durable appends through the journal from ``appenders`` concurrent tasks."""
    path = directory / f"journal-{appenders}.db"
    latencies: list[float] = []
    async with await Journal.open(path) as journal:
        deadline = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                payment = intent(w, i)
                t0 = time.perf_counter()
                await journal.record_payment_intent(payment)
                latencies.append(time.perf_counter() - t0)
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(appenders)))
        elapsed = time.perf_counter() - start
        report = await journal.verify()
        assert report.ok
        assert report.entries_checked == len(latencies)
    p50, p99 = percentiles(latencies)
    return Result(
        name=f"journal, {appenders} concurrent appenders",
        per_s=len(latencies) / elapsed,
        p50_ms=p50,
        p99_ms=p99,
    )


def show(result: Result) -> None:
    latency = ""
    if result.p50_ms is not None and result.p99_ms is not None:
        latency = f"  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
    print(f"  {result.name:38} {result.per_s:10.0f} /s{latency}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (under 30 s)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd(),
        help="a directory on the disk to measure (default: the current directory)",
    )
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 8.0
    batched_rows = 60_000 if args.quick else 200_000
    work = Path(tempfile.mkdtemp(prefix=".bench-journal-", dir=args.dir))
    try:
        print(f"journal bench in {work} ({'quick' if args.quick else 'full'} run)")
        print("baselines (the journal's schema and rows, same disk, same run):")
        rows = raw_rows(batched_rows)
        row = raw_row_commit(work, seconds, rows)
        show(row)
        batched = raw_batched(work, rows)
        show(batched)
        print("journal (durable on return, group commit):")
        results = {}
        for appenders in (1, 16, 256):
            results[appenders] = asyncio.run(journal_appenders(work, appenders, seconds))
            show(results[appenders])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    top = results[256]
    vs_row = top.per_s / row.per_s
    vs_batched = top.per_s / batched.per_s
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert top.p99_ms is not None
    print("ratios (256 appenders):")
    print(
        f"  vs one commit per row  {vs_row:8.1f}x   (target >= {TARGET_VS_ROW_COMMIT:g}x)  "
        f"{'ok' if vs_row >= TARGET_VS_ROW_COMMIT else 'MISSED'}"
    )
    print(
        f"  vs batched inserts     {vs_batched:8.2f}x   (target >= {TARGET_VS_BATCHED:g}x)  "
        f"{'ok' if vs_batched >= TARGET_VS_BATCHED else 'MISSED'}"
    )
    print(
        f"  p99 latency            {top.p99_ms:8.2f} ms (target <= {TARGET_P99_MS:g} ms)  "
        f"{'ok' if top.p99_ms <= TARGET_P99_MS else 'MISSED'}"
    )
    print(f"peak RSS {rss_mib:.1f} MiB")
    print(f"journal_group_commit_ratio={vs_row:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
