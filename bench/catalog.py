"""Catalog bench: build, transfer and apply a signed catalog; then time lookups.

Issue 3, "Benchmarks": a catalog of 1,000,000 accounts x 5 services built,
transferred and applied in <= 60 s, and lookups with p99 <= 1 ms.

Phases, each timed on the wall clock:

* **build**: central's side. Worker processes generate the synthetic accounts
  as wire records (generator.iter_records: central keeps each account's record,
  which is also how it diffs catalogs for deltas), encode them as canonical JSON
  lines and compress them into chunks (publish.encode_chunk); the parent signs
  the manifest and writes the release file (publish.write_release). Generation
  is part of this phase because the accounts have to come from somewhere; the
  workers' time is reported split into generate / encode / compress.
* **transfer**: the release file is streamed over a TCP socket on 127.0.0.1 into
  another file, as the agent would download it.
* **apply**: publish.apply_release into a fresh store: verify the signature,
  the chunk hashes, validate every record, insert, index, commit.
* **lookups**: 100,000 random CatalogStore.account() calls (and a tenth as many
  by card hash), each timed alone (``--quick``: 20,000).

Baselines, measured in the same run on the same rows:

* ``raw_insert_s``: plain sqlite3 executemany of the same (vn, record) rows into
  a fresh table with a primary key, one transaction, no validation.
* ``raw_select_p99_ms``: the same random lookups as a bare indexed SELECT of the
  record bytes, without decoding them.

``python bench/catalog.py --quick`` (100,000 accounts) finishes in well under 30 s;
its last line is ``catalog_build_transfer_apply_s=<n> lookup_p99_ms=<n>``.
``bench/sync.py`` calls :func:`run_catalog_bench` for its catalog figures.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import gc
import multiprocessing
import os
import random
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.catalog import generator, publish, wire
from central_sync.catalog.store import CatalogStore

SEED = 20250501
CHUNK_RECORDS = 8192
LOOKUPS = 100_000
TRANSFER_BLOCK_BYTES = 1 << 20
TRANSFER_TIMEOUT_S = 120.0


def _build_chunk(
    args: tuple[int, int, int, int],
) -> tuple[publish.EncodedChunk, float, float, float]:
    """Worker: generate accounts [start, stop) and encode them into one chunk.

    Returns the chunk and the seconds spent generating, encoding and compressing.
    Records are encoded as they are made, never held all at once, as central
    would stream them from its storage.
    """
    seed, start, stop, services = args
    clock = time.perf_counter
    generate_s = encode_s = 0.0
    lines = []
    t = clock()
    for record in generator.iter_records(seed, start, stop, services):
        made = clock()
        generate_s += made - t
        lines.append(wire.encode_line(record))
        t = clock()
        encode_s += t - made
    chunk = publish.encode_chunk(lines, level=publish.COMPRESS_LEVEL_DEFAULT)
    return chunk, generate_s, encode_s, clock() - t


def _build(
    path: Path, accounts: int, services: int, key: Ed25519PrivateKey, workers: int
) -> tuple[float, float, float]:
    ranges = [
        (SEED, start, min(start + CHUNK_RECORDS, accounts), services)
        for start in range(0, accounts, CHUNK_RECORDS)
    ]
    if workers > 1:
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            results = list(pool.map(_build_chunk, ranges))
    else:
        results = [_build_chunk(r) for r in ranges]
    chunks = [r[0] for r in results]
    now_ms = time.time_ns() // 1_000_000
    with path.open("wb") as out:
        publish.write_release(
            out,
            kind="snapshot",
            header=generator.generate_header(SEED),
            chunks=chunks,
            version=1,
            base_version=None,
            accounts=accounts,
            published_at_ms=now_ms,
            expires_at_ms=now_ms + 7 * 24 * 3600 * 1000,
            signer=key,
        )
        out.flush()
        os.fsync(out.fileno())
    return (
        sum(r[1] for r in results),
        sum(r[2] for r in results),
        sum(r[3] for r in results),
    )


def _transfer(src: Path, dst: Path) -> None:
    """Stream ``src`` over a local TCP socket into ``dst`` (server thread -> client)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(TRANSFER_TIMEOUT_S)
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn, src.open("rb") as f:
            conn.sendfile(f)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TRANSFER_TIMEOUT_S) as s,
        dst.open("wb") as out,
    ):
        while block := s.recv(TRANSFER_BLOCK_BYTES):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    thread.join(TRANSFER_TIMEOUT_S)
    server.close()


def _raw_insert(release: Path, db_path: Path) -> float:
    """Baseline: executemany of the release's (vn, line) rows; only the inserts are timed."""
    conn = sqlite3.connect(str(db_path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("CREATE TABLE accounts (vn TEXT PRIMARY KEY, body BLOB NOT NULL)")
    data = release.read_bytes()
    manifest_len = int.from_bytes(data[9:13], "big")
    body = wire.decode_json(data[13 : 13 + manifest_len])["body"]
    pos = 13 + manifest_len
    elapsed = 0.0
    conn.execute("BEGIN")
    for size, _raw, _records, _sha in body["chunks"]:
        lines = zlib.decompress(data[pos : pos + size]).split(b"\n")[:-1]
        pos += size
        rows = [(line[2 : line.index(b'"', 2)].decode(), line) for line in lines]
        t0 = time.perf_counter()
        conn.executemany("INSERT INTO accounts VALUES (?, ?)", rows)
        elapsed += time.perf_counter() - t0
    t0 = time.perf_counter()
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    elapsed += time.perf_counter() - t0
    conn.close()
    return elapsed


def _percentile_ms(samples_ns: list[int], q: float) -> float:
    samples_ns.sort()
    return samples_ns[min(len(samples_ns) - 1, int(q * len(samples_ns)))] / 1e6


def run_catalog_bench(
    accounts: int, services_per_account: int, *, lookups: int = LOOKUPS
) -> dict[str, float]:
    """Build, transfer and apply a catalog of ``accounts`` x ``services_per_account``.

    Returns the figures by name (seconds ``*_s``, milliseconds ``*_ms``, bytes,
    ratios). Uses a temporary directory, removed afterwards. ``lookups`` random
    lookups are timed (100,000 by default).
    """
    workers = max(1, min(2, os.cpu_count() or 1))
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    with tempfile.TemporaryDirectory(prefix="lobbypay-bench-catalog-") as tmp:
        root = Path(tmp)
        built, received = root / "central.release", root / "agent.release"

        t0 = time.perf_counter()
        generate_cpu_s, encode_cpu_s, compress_cpu_s = _build(
            built, accounts, services_per_account, key, workers
        )
        build_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        _transfer(built, received)
        transfer_s = time.perf_counter() - t0
        release_bytes = received.stat().st_size
        assert release_bytes == built.stat().st_size
        built.unlink()

        store = CatalogStore.open(root / "catalog.db")
        gc.collect()
        t0 = time.perf_counter()
        result = publish.apply_release(
            store, received, central_public_key=public, now_ms=time.time_ns() // 1_000_000
        )
        apply_s = time.perf_counter() - t0
        assert result.accounts == accounts

        raw_insert_s = _raw_insert(received, root / "raw.db")
        (root / "raw.db").unlink()

        rng = random.Random(SEED)
        vns = [generator.virtual_number(SEED, rng.randrange(accounts)) for _ in range(lookups)]
        reader = CatalogStore.open(root / "catalog.db", readonly=True)
        lookup_ns: list[int] = []
        clock = time.perf_counter_ns
        for vn in vns:
            t = clock()
            view = reader.account(vn)
            lookup_ns.append(clock() - t)
            assert view is not None
        raw = sqlite3.connect(f"file:{root / 'catalog.db'}?mode=ro", uri=True)
        raw_ns: list[int] = []
        for vn in vns:
            t = clock()
            row = raw.execute("SELECT body FROM accounts WHERE vn = ?", (vn,)).fetchone()
            raw_ns.append(clock() - t)
            assert row is not None
        raw.close()
        hashes = [
            h
            for r in generator.iter_records(
                SEED, 0, min(accounts, lookups // 5 + 64), services_per_account
            )
            for h in r[5]
        ][: max(1, lookups // 10)]
        card_ns: list[int] = []
        for h in hashes:
            t = clock()
            found = reader.account_by_card_hash(h)
            card_ns.append(clock() - t)
            assert found is not None
        reader.close()
        store.close()

    total_s = build_s + transfer_s + apply_s
    lookup_p99 = _percentile_ms(lookup_ns, 0.99)
    raw_p99 = _percentile_ms(raw_ns, 0.99)
    return {
        "accounts": float(accounts),
        "services_per_account": float(services_per_account),
        "build_workers": float(workers),
        "build_s": build_s,
        "build_generate_cpu_s": generate_cpu_s,
        "build_encode_cpu_s": encode_cpu_s,
        "build_compress_cpu_s": compress_cpu_s,
        "transfer_s": transfer_s,
        "apply_s": apply_s,
        "total_s": total_s,
        "release_bytes": float(release_bytes),
        "bytes_per_account": release_bytes / accounts,
        "raw_insert_s": raw_insert_s,
        "apply_vs_raw_insert": apply_s / raw_insert_s,
        "lookup_p50_ms": _percentile_ms(lookup_ns, 0.50),
        "lookup_p99_ms": lookup_p99,
        "raw_select_p50_ms": _percentile_ms(raw_ns, 0.50),
        "raw_select_p99_ms": raw_p99,
        "lookup_p99_vs_raw_select": lookup_p99 / raw_p99,
        "card_lookup_p99_ms": _percentile_ms(card_ns, 0.99) if card_ns else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Catalog build/transfer/apply and lookup bench (targets: <= 60 s, p99 <= 1 ms)."
    )
    parser.add_argument("--quick", action="store_true", help="100,000 accounts instead of 1M")
    parser.add_argument("--accounts", type=int, help="number of accounts (default 1,000,000)")
    parser.add_argument("--services", type=int, default=5, help="services per account")
    parser.add_argument("--lookups", type=int, help="timed lookups (default 100,000; quick 20,000)")
    args = parser.parse_args(argv)
    accounts = args.accounts or (100_000 if args.quick else 1_000_000)
    lookups = args.lookups or (20_000 if args.quick else LOOKUPS)
    figures = run_catalog_bench(accounts, args.services, lookups=lookups)
    f = figures
    ok = {True: "ok", False: "MISSED"}
    rows = [
        (
            "build (generate+encode+sign)",
            f"{f['build_s']:.2f} s",
            f"{f['build_workers']:.0f} worker processes",
        ),
        (
            "  worker: generate / encode / zlib",
            f"{f['build_generate_cpu_s']:.1f} / {f['build_encode_cpu_s']:.1f} / "
            f"{f['build_compress_cpu_s']:.1f} s",
            "worker time, summed",
        ),
        (
            "transfer (local TCP)",
            f"{f['transfer_s']:.2f} s",
            f"{f['release_bytes'] / 1e6:.1f} MB, {f['bytes_per_account']:.0f} B/account",
        ),
        (
            "apply (verify+insert)",
            f"{f['apply_s']:.2f} s",
            f"raw executemany {f['raw_insert_s']:.2f} s, ratio {f['apply_vs_raw_insert']:.2f}x",
        ),
        (
            "build+transfer+apply",
            f"{f['total_s']:.2f} s",
            f"target <= 60 s: {ok[f['total_s'] <= 60]}",
        ),
        (
            "lookup p50 / p99",
            f"{f['lookup_p50_ms']:.3f} / {f['lookup_p99_ms']:.3f} ms",
            f"target p99 <= 1 ms: {ok[f['lookup_p99_ms'] <= 1]}",
        ),
        (
            "raw SELECT p50 / p99",
            f"{f['raw_select_p50_ms']:.3f} / {f['raw_select_p99_ms']:.3f} ms",
            f"lookup/raw p99 {f['lookup_p99_vs_raw_select']:.1f}x",
        ),
        ("card lookup p99", f"{f['card_lookup_p99_ms']:.3f} ms", ""),
    ]
    print(f"catalog: {accounts:,} accounts x {args.services} services")
    for name, value, note in rows:
        print(f"  {name:30} {value:>18}   {note}")
    print(
        f"catalog_build_transfer_apply_s={f['total_s']:.1f} lookup_p99_ms={f['lookup_p99_ms']:.3f}"
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
