"""Benchmark: central ingest of signed batches, beside raw inserts into the same database.

For SQLite (and PostgreSQL when reachable) it prints:

* ingest: transactions/s through ``Ingestor.ingest`` — decompress, verify the
  signature, the hash chain and the summary, dedup, apply in one transaction,
  sign the ack — for pre-built batches of synthetic terminals (one transaction
  = one payment: a payment-intent and its payment-result entry);
* raw: the same rows (entries and payments) inserted by plain batched inserts
  (SQLite ``executemany``, PostgreSQL binary ``COPY``) into tables of the same
  shape in the same database, one commit per batch, measured in the same run;
* the ratio ingest / raw, and CPU-seconds per transaction (the one-core figure);
* bytes per transaction on the wire (compressed signed batches);
* the catalog figures from ``bench/catalog.py`` (``run_catalog_bench``).

    python bench/sync.py [--quick] [--no-pg] [--pg-dsn DSN]

The last line is ``sync_ingest_tx_per_s=<n> bytes_per_tx=<n>`` (SQLite ingest).
Targets: >= 50,000 tx/s into SQLite on one core and >= 0.3x raw; <= 120 bytes/tx.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import protocol
from central_sync.central import sqlite as central_sqlite
from central_sync.central.errors import StorageError
from central_sync.central.ingest import Ingestor, build_plan
from central_sync.central.postgres import PostgresStorage
from central_sync.central.sqlite import SqliteStorage
from central_sync.central.storage import Storage, TerminalRecord, TerminalState
from central_sync.central.synthetic import synthetic_entries
from firmware_config.identity import terminal_id_from_public_key

TARGET_TX_PER_S = 50_000
TARGET_VS_RAW = 0.3
TARGET_BYTES_PER_TX = 120
PG_DSN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


class Key:
    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes_raw()
        self.terminal_id = terminal_id_from_public_key(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


@dataclass(frozen=True, slots=True)
class Workload:
    keys: list[Key]
    batches: list[bytes]  # interleaved across terminals, each terminal's in order
    tx: int
    entries: int


def make_workload(terminals: int, tx_per_terminal: int, batch_entries: int) -> Workload:
    keys = [Key() for _ in range(terminals)]
    per_terminal: list[list[bytes]] = []
    for index, key in enumerate(keys):
        entries = synthetic_entries(index, tx_per_terminal)
        per_terminal.append(
            [
                protocol.build_batch(
                    entries[i : i + batch_entries],
                    terminal_id=key.terminal_id,
                    signer=key,
                    entries_max=batch_entries,
                    bytes_max=64 << 20,
                ).data
                for i in range(0, len(entries), batch_entries)
            ]
        )
    interleaved = [b for round_ in zip(*per_terminal, strict=True) for b in round_]
    return Workload(keys, interleaved, terminals * tx_per_terminal, terminals * tx_per_terminal * 2)


async def enroll_all(storage: Storage, keys: list[Key]) -> None:
    for n, key in enumerate(keys):
        code = f"BENCH-{n:06d}"
        await storage.add_registration_code(
            code_hash=code,
            location="bench",
            label=None,
            created_ms=0,
            expires_ms=2**62,
            actor="bench",
        )
        await storage.enroll(
            terminal_id=key.terminal_id,
            public_key=key.public,
            code_hash=code,
            location="bench",
            label="bench",
            now_ms=1,
        )


async def time_ingest(storage: Storage, work: Workload) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process) to ingest every batch."""
    ingestor = Ingestor(storage, signer=Key())
    # The pre-built workload is large and long-lived; a real central process is
    # not. Freeze it out of the cyclic GC's sight so collections cost what they
    # would in the service.
    gc.collect()
    gc.freeze()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for data in work.batches:
        result = await ingestor.ingest(data)
        if result.ack is None:
            raise SystemExit(f"bench batch refused: {result.refusal}")
    return time.perf_counter() - wall0, time.process_time() - cpu0


def raw_rows(work: Workload) -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """(entry rows, payment rows) per batch, exactly what ingest stores (not timed)."""
    out = []
    keys = {k.terminal_id: n + 1_000_000 for n, k in enumerate(work.keys)}
    for data in work.batches:
        batch = protocol.verify_batch(data, public_key=_key_of(work, data).public)
        tk = keys[batch.terminal_id]
        terminal = TerminalRecord(
            key=tk,
            terminal_id=batch.terminal_id,
            public_key=bytes(32),
            label="",
            location="",
            state=TerminalState.ENROLLED,
            head_seq=0,
            head_hash=bytes(32),
            enrolled_ms=0,
        )
        plan = build_plan(terminal, batch, batch.entries, 0)
        entries = [tuple(row) for row in plan.entries]
        payments = [tuple(row) for row in plan.payments]
        assert all(row.result_seq is not None for row in plan.payments)
        out.append((entries, payments))
    return out


_KEY_CACHE: dict[str, Key] = {}


def _key_of(work: Workload, data: bytes) -> Key:
    if not _KEY_CACHE:
        _KEY_CACHE.update({k.terminal_id: k for k in work.keys})
    return _KEY_CACHE[protocol.open_batch(data).terminal_id]


PAYMENT_COLUMNS = (
    "payment_id, terminal_key, seq, ts_ms, amount_minor, currency, account, channel, agent,"
    " txn_id, surcharge_minor, outcome, result_seq, result_ts_ms, auth_code, rrn,"
    " masked_pan, card_brand, offline"
)


def raw_sqlite(
    path: Path, rows: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]
) -> float:
    """Seconds for plain batched inserts of the same rows into same-shaped tables."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    ddl = central_sqlite.MIGRATIONS[0][1]
    for statement in ddl.split(";"):
        text = statement.strip()
        if text.startswith(("CREATE TABLE entries", "CREATE TABLE payments")) or (
            text.startswith("CREATE") and " ON payments " in text
        ):
            conn.execute(
                text.replace("TABLE entries", "TABLE raw_entries")
                .replace("TABLE payments", "TABLE raw_payments")
                .replace("ON payments ", "ON raw_payments ")
                .replace("INDEX payments_", "INDEX raw_payments_")
                .replace("REFERENCES terminals(key)", "")
            )
    gc.collect()
    start = time.perf_counter()
    for entries, payments in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO raw_entries VALUES (?, ?, ?, ?, ?, ?)", entries)
        conn.executemany(
            f"INSERT INTO raw_payments ({PAYMENT_COLUMNS}) VALUES ({', '.join('?' * 19)})",
            payments,
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


async def raw_postgres(
    storage: PostgresStorage, rows: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]
) -> float:
    columns = [c.strip() for c in PAYMENT_COLUMNS.split(",")]
    async with storage.pool.acquire() as conn:
        await conn.execute("CREATE TABLE raw_entries (LIKE entries INCLUDING ALL)")
        await conn.execute("CREATE TABLE raw_payments (LIKE payments INCLUDING ALL)")
        gc.collect()
        start = time.perf_counter()
        for entries, payments in rows:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "raw_entries",
                    records=entries,
                    columns=["terminal_key", "seq", "kind", "ts_ms", "hash", "data"],
                )
                await conn.copy_records_to_table("raw_payments", records=payments, columns=columns)
        return time.perf_counter() - start


def line(name: str, tx: int, seconds: float, cpu: float | None = None) -> float:
    rate = tx / seconds
    extra = (
        "" if cpu is None else f"   {cpu / tx * 1e6:6.1f} CPU-us/tx ({tx / cpu:,.0f} tx per CPU-s)"
    )
    print(f"  {name:34} {rate:12,.0f} tx/s{extra}")
    return rate


async def sqlite_round(work: Workload, rows: Any, directory: Path) -> tuple[float, float, float]:
    """One fresh database: (ingest wall s, ingest CPU s, raw wall s)."""
    path = directory / f"central-{uuid.uuid4().hex[:8]}.db"
    storage = SqliteStorage(path)
    await storage.open()
    try:
        await storage.migrate()
        await enroll_all(storage, work.keys)
        wall, cpu = await time_ingest(storage, work)
        counts = await storage.counts()
        assert counts.entries == work.entries, counts
        assert counts.payments == work.tx, counts
    finally:
        await storage.close()
    return wall, cpu, raw_sqlite(path, rows)


async def bench_sqlite(work: Workload, rows: Any, directory: Path, rounds: int) -> float:
    results = [await sqlite_round(work, rows, directory) for _ in range(rounds)]
    wall, cpu, _ = min(results, key=lambda r: r[0])
    raw = min(r[2] for r in results)
    print(f"SQLite (WAL, synchronous=FULL, one commit per batch; best of {rounds}):")
    raw_rate = line("raw batched inserts (baseline)", work.tx, raw)
    rate = line("ingest (verify + apply + ack)", work.tx, wall, cpu)
    print(
        f"  ratio ingest/raw {rate / raw_rate:.2f} (target >= {TARGET_VS_RAW}); "
        f"target {TARGET_TX_PER_S:,} tx/s on one core"
    )
    return rate


async def pg_round(work: Workload, rows: Any, dsn: str) -> tuple[float, float, float]:
    schema = f"lp_bench_{uuid.uuid4().hex[:10]}"
    url = f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"
    storage = PostgresStorage(url, pool_size_max=2)
    await storage.open()
    try:
        await storage.migrate()
        await enroll_all(storage, work.keys)
        wall, cpu = await time_ingest(storage, work)
        raw = await raw_postgres(storage, rows)
    finally:
        await storage.drop_schema()
        await storage.close()
    return wall, cpu, raw


async def bench_postgres(work: Workload, rows: Any, dsn: str, rounds: int) -> None:
    try:
        results = [await pg_round(work, rows, dsn) for _ in range(rounds)]
    except (OSError, StorageError) as exc:
        print(f"PostgreSQL: not reachable at {dsn} ({exc.__class__.__name__}); skipped")
        return
    wall, cpu, _ = min(results, key=lambda r: r[0])
    raw = min(r[2] for r in results)
    print(f"PostgreSQL (one transaction per batch, same schema; best of {rounds}):")
    raw_rate = line("raw COPY inserts (baseline)", work.tx, raw)
    rate = line("ingest (verify + apply + ack)", work.tx, wall, cpu)
    print(f"  ratio ingest/raw {rate / raw_rate:.2f}")


def bench_catalog(quick: bool) -> None:
    try:
        from bench.catalog import run_catalog_bench
    except ImportError as exc:
        print(f"catalog: bench/catalog.py run_catalog_bench not available ({exc})")
        return
    accounts = 20_000 if quick else 1_000_000
    figures = run_catalog_bench(accounts, 5)
    print(f"catalog ({accounts:,} accounts x 5 services, bench/catalog.py):")
    for name, value in figures.items():
        print(f"  {name:34} {value:,.3f}" if isinstance(value, float) else f"  {name:34} {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="central ingest and wire-size benchmark")
    parser.add_argument("--quick", action="store_true", help="small run, under 45 s")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-catalog", action="store_true", help="skip the catalog figures")
    parser.add_argument("--pg-dsn", default=os.environ.get("LOBBYPAY_TEST_PG_DSN", PG_DSN_DEFAULT))
    parser.add_argument("--batch-entries", type=int, default=2000, help="entries per batch")
    args = parser.parse_args(argv)
    terminals = 4
    tx_per_terminal = 5_000 if args.quick else 50_000
    started = time.perf_counter()
    work = make_workload(terminals, tx_per_terminal, args.batch_entries)
    wire = sum(len(b) for b in work.batches)
    bytes_per_tx = wire / work.tx
    print(
        f"sync bench ({'quick' if args.quick else 'full'}): {terminals} terminals x "
        f"{tx_per_terminal:,} payments (intent + result), {args.batch_entries} entries per batch"
    )
    print(f"wire: {bytes_per_tx:.1f} bytes per transaction (target <= {TARGET_BYTES_PER_TX})")
    rows = raw_rows(work)
    rounds = 2 if args.quick else 3
    directory = Path(tempfile.mkdtemp(prefix="lobbypay-sync-bench-"))
    try:
        rate = asyncio.run(bench_sqlite(work, rows, directory, rounds))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if not args.no_pg:
        asyncio.run(bench_postgres(work, rows, args.pg_dsn, rounds))
    print("agent flush of a 1,000,000-entry backlog: measured by the sync agent's bench (lead)")
    if not args.no_catalog:
        bench_catalog(args.quick)
    print(f"elapsed {time.perf_counter() - started:.1f} s")
    print(f"sync_ingest_tx_per_s={rate:.0f} bytes_per_tx={bytes_per_tx:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
