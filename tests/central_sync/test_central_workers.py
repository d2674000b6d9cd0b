"""Two real central worker processes on one PostgreSQL database, 50 terminals at once.

Every batch is sent to both workers at the same moment, so the same terminal's
batches race across processes (per-terminal serialization), and some payments
are shared between terminals (cross-worker permanent dedup). Afterwards: every
entry stored exactly once, heads equal the terminals' heads, no payment twice.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import aiohttp

from central_sync import protocol
from central_sync.central.postgres import PostgresStorage
from central_sync.central.synthetic import chain, payment_bodies
from central_sync.journal import Entry
from firmware_config.identity import generate_identity
from tests.central_sync.central_support import (
    Key,
    batch,
    enroll,
    pg_url_with_schema,
    start_server,
    stop_server,
)
from tests.central_sync.conftest import require_pg

TERMINALS = 50
PAYMENTS_PER_TERMINAL = 30
BATCH_ENTRIES = 12
REQUEST_ATTEMPTS_MAX = 200


def terminal_chain(index: int) -> list[Entry]:
    """30 payments; one shares (agent, txn_id) with its neighbour, every 10th a payment_id."""
    rng = random.Random(index)
    bodies: list[tuple[str, dict[str, Any]]] = []
    for n in range(PAYMENTS_PER_TERMINAL):
        intent, result = payment_bodies(rng, n + 1)
        if n == 3:
            intent.update(channel="gateway", agent="atm-1", txn_id=f"shared-{index // 2}")
        if n == 7 and index % 10 in (0, 1):
            intent["payment_id"] = result["payment_id"] = f"shared-pid-{index // 10:04d}"
        bodies += [("payment-intent", intent), ("payment-result", result)]
    return chain(iter(bodies))


async def run_terminal(
    session: aiohttp.ClientSession, urls: list[str], key: Key, entries: list[Entry], central: bytes
) -> int:
    """A minimal agent: send from the acked seq to both workers until all is acked."""
    acked = 0
    for _ in range(REQUEST_ATTEMPTS_MAX):
        if acked == len(entries):
            return acked
        data = batch(entries[acked : acked + BATCH_ENTRIES], key)

        async def post(url: str, data: bytes = data) -> protocol.Ack | protocol.Refusal | None:
            headers = {"X-Lobbypay-Terminal": key.terminal_id}
            async with session.post(f"{url}/v1/batches", data=data, headers=headers) as resp:
                body = await resp.read()
            try:
                return protocol.parse_answer(
                    body, central_public_key=central, terminal_id=key.terminal_id, request=data
                )
            except protocol.SyncProtocolError:
                return None

        for answer in await asyncio.gather(*(post(url) for url in urls)):
            if isinstance(answer, protocol.Ack):
                assert answer.head_hash == entries[answer.acked_seq - 1].hash
                acked = max(acked, answer.acked_seq)
            elif isinstance(answer, protocol.Refusal):
                assert answer.retryable, answer
                if answer.kind is protocol.RefusalKind.GAP:
                    assert answer.expected_seq is not None
                    acked = answer.expected_seq - 1
                else:
                    await asyncio.sleep(0.05)
    raise AssertionError(f"{key.terminal_id} not fully acked after {REQUEST_ATTEMPTS_MAX} tries")


async def test_two_workers_fifty_terminals_nothing_lost_nothing_twice(tmp_path: Path) -> None:
    await require_pg()
    url = pg_url_with_schema()
    central = generate_identity(tmp_path / "central.key").public_key_bytes
    storage = PostgresStorage(url, pool_size_max=2)
    await storage.open()
    try:
        await storage.migrate()
        keys = [Key() for _ in range(TERMINALS)]
        for key in keys:
            await enroll(storage, key)
        chains = [terminal_chain(i) for i in range(TERMINALS)]
        env = {"LOBBYPAY_LEDGER_PG_POOL_SIZE_MAX": "8"}
        servers = [start_server(tmp_path, "--db", url, env=env) for _ in range(2)]
        try:
            timeout = aiohttp.ClientTimeout(total=60)
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                acked = await asyncio.gather(
                    *(
                        run_terminal(session, [u for _, u in servers], key, entries, central)
                        for key, entries in zip(keys, chains, strict=True)
                    )
                )
        finally:
            codes = [stop_server(process) for process, _ in servers]
        assert codes == [0, 0]
        assert acked == [2 * PAYMENTS_PER_TERMINAL] * TERMINALS

        counts = await storage.counts()
        shared_pairs = TERMINALS // 2  # (agent, txn_id) shared by terminals 2k and 2k+1
        shared_ids = len({i // 10 for i in range(TERMINALS) if i % 10 in (0, 1)})
        assert counts.entries == TERMINALS * 2 * PAYMENTS_PER_TERMINAL  # 0 lost, 0 twice
        assert counts.payments == TERMINALS * PAYMENTS_PER_TERMINAL - shared_pairs - shared_ids
        assert counts.duplicates == 2 * (shared_pairs + shared_ids)  # intent + result each
        assert counts.alarms == 0
        for key, entries in zip(keys, chains, strict=True):
            stored = await storage.entry_hashes(key.terminal_id)
            assert [(seq, h) for seq, h, _ in stored] == [(e.seq, e.hash) for e in entries]
            terminal = await storage.get_terminal(key.terminal_id)
            assert terminal is not None
            assert (terminal.head_seq, terminal.head_hash) == (len(entries), entries[-1].hash)
        rows = await storage.export_rows("payments", 0, 2**62)
        assert len({r["payment_id"] for r in rows}) == len(rows) == counts.payments
        pairs = [(r["agent"], r["txn_id"]) for r in rows if r["agent"] is not None]
        assert len(set(pairs)) == len(pairs) == shared_pairs
    finally:
        await storage.drop_schema()
        await storage.close()
