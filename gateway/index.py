"""The gateway's payment index: (agent, txn_id) lookups and daily registries.

Theory of operation
-------------------
The journal is the single source of truth; this index is a *derived* view of
it, kept by the gateway in its own SQLite file, for two things the journal is
not shaped for:

* answering a repeated ``pay`` from what was stored, forever — the journal
  prunes acknowledged entries after its retention period, and refuses a
  pruned payment_id outright, while an agent may repeat a request later;
* the daily registry per agent, by (agent, calendar day) in
  ``gateway.registry_timezone``.

One row per gateway payment intent, keyed by ``payment_id``. The gateway adds a
row after the journal entry is durable and before it answers, through one
writer thread that commits many rows at once (``synchronous=NORMAL``: the index
needs no fsync of its own, because it can always be rebuilt from the journal).

Rebuilding: the ``watermark`` is a journal seq such that every gateway intent
at or below it is in the index. It advances only at moments when no payment is
between its journal append and its index row (see
:meth:`gateway.service.PaymentService.advance_watermark`) and never after an
index write failed. On start-up :meth:`GatewayIndex.catch_up` reads the journal
after the watermark and adds what is missing (``INSERT OR IGNORE``), so a crash
or a lost index file costs a re-read, never a payment. If the watermark entry's
hash differs from the journal's, the index belongs to another journal and is
rebuilt from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import sqlite3
import threading
import zoneinfo
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from central_sync.journal import KIND_PAYMENT_INTENT, Entry, Journal, JournalError
from gateway.errors import GatewayIndexError
from gateway.osmp import txn_date_osmp

__all__ = ["GatewayIndex", "PaymentRecord", "record_from_entry"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
WRITE_BATCH_ROWS_MAX: Final = 1024
CATCH_UP_READ_ENTRIES: Final = 2048
WRITE_QUEUE_MAX: Final = 100_000
WRITE_COALESCE_S: Final = 0.02

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    ts_ms INTEGER NOT NULL,
    day TEXT NOT NULL,
    agent TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    txn_date TEXT,
    account TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS payments_by_agent_day ON payments(agent, day, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value ANY) STRICT;
"""
_COLUMNS: Final = (
    "payment_id, seq, ts_ms, day, agent, txn_id, protocol, txn_date, account, amount_minor, "
    "currency"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentRecord:
    """One accepted gateway payment: what the agent sent and where the journal put it."""

    payment_id: str
    seq: int
    """The journal seq of the intent; the gateway's ``prv_txn``."""
    ts_ms: int
    day: str
    agent: str
    txn_id: str
    protocol: str
    txn_date: str | None
    account: str
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        assert self.seq >= 1
        assert self.amount_minor > 0
        assert self.protocol in ("osmp", "json")

    def row(self) -> tuple[Any, ...]:
        return (
            self.payment_id,
            self.seq,
            self.ts_ms,
            self.day,
            self.agent,
            self.txn_id,
            self.protocol,
            self.txn_date,
            self.account,
            self.amount_minor,
            self.currency,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> PaymentRecord:
        return cls(
            payment_id=str(row[0]),
            seq=int(row[1]),
            ts_ms=int(row[2]),
            day=str(row[3]),
            agent=str(row[4]),
            txn_id=str(row[5]),
            protocol=str(row[6]),
            txn_date=None if row[7] is None else str(row[7]),
            account=str(row[8]),
            amount_minor=int(row[9]),
            currency=str(row[10]),
        )


async def first_readable_seq(journal: Journal, start: int, head_seq: int) -> int:
    """The first seq >= ``start`` the journal still has (it prunes from the front)."""
    try:
        await journal.read(start, 1)
        return start
    except JournalError:
        pass
    low, high = start + 1, head_seq  # invariant: start is pruned; the head never is
    while low < high:
        mid = (low + high) // 2
        try:
            await journal.read(mid, 1)
            high = mid
        except JournalError:
            low = mid + 1
    logger.warning("gateway_index_gap from_seq=%d to_seq=%d reason=pruned", start, low - 1)
    return low


def day_of(ts_ms: int, tz: dt.tzinfo) -> str:
    """The registry date (ISO) of a moment, in the registry's time zone."""
    return dt.datetime.fromtimestamp(ts_ms // 1000, tz).date().isoformat()


def record_from_entry(entry: Entry, tz: dt.tzinfo) -> PaymentRecord | None:
    """The record of a gateway payment intent; None for any other entry."""
    body = entry.body
    if entry.kind != KIND_PAYMENT_INTENT or body.get("channel") != "gateway":
        return None
    try:
        return PaymentRecord(
            payment_id=str(body["payment_id"]),
            seq=entry.seq,
            ts_ms=entry.ts_ms,
            day=day_of(entry.ts_ms, tz),
            agent=str(body["agent"]),
            txn_id=str(body["txn_id"]),
            protocol=str(body.get("protocol", "osmp")),
            txn_date=None if body.get("txn_date") is None else txn_date_osmp(str(body["txn_date"])),
            account=str(body["account"]),
            amount_minor=int(body["amount_minor"]),
            currency=str(body["currency"]),
        )
    except (KeyError, TypeError, ValueError, AssertionError):
        logger.warning("gateway_index_skipped_entry seq=%d reason=malformed-body", entry.seq)
        return None


@dataclass(slots=True)
class _Pending:
    record: PaymentRecord
    done: Callable[[bool], None]


class GatewayIndex:
    """The index file. Open with :meth:`open`; reads are thread-safe and synchronous."""

    def __init__(self, path: Path, tz: zoneinfo.ZoneInfo, conn: sqlite3.Connection) -> None:
        self.path = path
        self.tz = tz
        self._conn = conn  # writer thread only (after open)
        self._reader = self._connect(path)
        self._read_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-index")
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.write_failed = False
        """True once an index write failed: the watermark then stays put until a restart."""

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    @classmethod
    async def open(cls, path: Path, *, timezone: str) -> GatewayIndex:
        """Open (creating) the index file; start its writer."""
        tz = zoneinfo.ZoneInfo(timezone)

        def _open() -> sqlite3.Connection:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = cls._connect(path)
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                conn.close()
                raise GatewayIndexError(f"index {path} has schema {row[0]}, not {SCHEMA_VERSION}")
            stored_tz = conn.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
            if stored_tz is not None and stored_tz[0] != timezone:
                # Registry days follow the configured zone; recompute them all.
                rows = conn.execute("SELECT payment_id, ts_ms FROM payments").fetchall()
                conn.executemany(
                    "UPDATE payments SET day = ? WHERE payment_id = ?",
                    [(day_of(ts, tz), pid) for pid, ts in rows],
                )
            conn.execute(
                "INSERT INTO meta VALUES ('timezone', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (timezone,),
            )
            conn.execute("COMMIT")
            return conn

        try:
            conn = await asyncio.to_thread(_open)
        except sqlite3.Error as exc:
            raise GatewayIndexError(f"cannot open gateway index {path}: {exc}") from None
        index = cls(path, tz, conn)
        index._writer = asyncio.get_running_loop().create_task(
            index._writer_loop(), name="gateway-index-writer"
        )
        return index

    async def close(self) -> None:
        """Write every pending row, then close."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
        with self._read_lock:
            self._reader.close()

    # -- reads (any thread) --

    def get(self, payment_id: str) -> PaymentRecord | None:
        """The record of ``payment_id``, or None."""
        try:
            with self._read_lock:
                row = self._reader.execute(
                    f"SELECT {_COLUMNS} FROM payments WHERE payment_id = ?",  # noqa: S608
                    (payment_id,),
                ).fetchone()
        except sqlite3.Error as exc:
            raise GatewayIndexError(f"gateway index read failed: {exc}") from None
        return None if row is None else PaymentRecord.from_row(row)

    def registry(self, agent: str, day: str) -> list[PaymentRecord]:
        """Every payment of ``agent`` on ``day`` (ISO date), in journal order."""
        try:
            with self._read_lock:
                rows = self._reader.execute(
                    f"SELECT {_COLUMNS} FROM payments WHERE agent = ? AND day = ? ORDER BY seq",  # noqa: S608
                    (agent, day),
                ).fetchall()
        except sqlite3.Error as exc:
            raise GatewayIndexError(f"gateway index read failed: {exc}") from None
        return [PaymentRecord.from_row(r) for r in rows]

    def watermark(self) -> int:
        with self._read_lock:
            row = self._reader.execute("SELECT value FROM meta WHERE key = 'watermark'").fetchone()
        return 0 if row is None else int(row[0])

    def count(self) -> int:
        with self._read_lock:
            return int(self._reader.execute("SELECT count(*) FROM payments").fetchone()[0])

    # -- writes --

    async def add(self, record: PaymentRecord) -> bool:
        """Add a row (ignored if present); True once committed, False if the write failed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def done(ok: bool) -> None:
            if not future.done():
                future.set_result(ok)

        self.add_later(record, done)
        return await asyncio.shield(future)

    def add_later(self, record: PaymentRecord, done: Callable[[bool], None]) -> None:
        """Queue a row; ``done(ok)`` is called on the event loop once it is committed.

        No task or future per row: the payment path calls this for every payment.
        """
        if self._closed or len(self._pending) >= WRITE_QUEUE_MAX:
            self.write_failed = True
            logger.error("gateway_index_write_refused payment_id=%s", record.payment_id)
            done(False)
            return
        self._pending.append(_Pending(record, done))
        self._wakeup.set()

    async def _writer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                if not self._closed:
                    # Rows are not on any answer's path (the service keeps them
                    # in memory until written), so gather for a moment: one
                    # commit and one thread hop for many payments.
                    await asyncio.sleep(WRITE_COALESCE_S)
                continue
            batch = self._pending[:WRITE_BATCH_ROWS_MAX]
            del self._pending[:WRITE_BATCH_ROWS_MAX]
            try:
                await loop.run_in_executor(
                    self._executor, self._insert, [p.record.row() for p in batch]
                )
                ok = True
            except Exception as exc:  # the writer must not die; the journal has the data
                self.write_failed = True
                logger.error("gateway_index_write_failed rows=%d error=%s", len(batch), exc)
                ok = False
            for p in batch:
                p.done(ok)

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT OR IGNORE INTO payments ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                rows,
            )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    async def set_watermark(self, seq: int, head_hash: bytes) -> None:
        """Record that every gateway intent up to ``seq`` is in the index."""

        def _set() -> None:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            for key, value in (("watermark", seq), ("watermark_hash", head_hash)):
                conn.execute(
                    "INSERT INTO meta VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            conn.execute("COMMIT")

        await asyncio.get_running_loop().run_in_executor(self._executor, _set)

    async def _reset(self) -> None:
        def _wipe() -> None:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM payments")
            conn.execute("DELETE FROM meta WHERE key IN ('watermark', 'watermark_hash')")
            conn.execute("COMMIT")

        await asyncio.get_running_loop().run_in_executor(self._executor, _wipe)

    # -- rebuilding from the journal --

    async def _watermark_matches(self, journal: Journal, head_seq: int) -> bool:
        mark = self.watermark()
        if mark == 0:
            return True
        if mark > head_seq:
            return False
        with self._read_lock:
            row = self._reader.execute(
                "SELECT value FROM meta WHERE key = 'watermark_hash'"
            ).fetchone()
        try:
            entries = await journal.read(mark, 1)
        except JournalError:
            return True  # pruned: nothing left to compare against
        return bool(entries) and row is not None and bytes(row[0]) == entries[0].hash

    async def catch_up(self, journal: Journal) -> int:
        """Add every gateway intent the journal has after the watermark; return how many.

        Only call when no payment is in progress (start-up).
        """
        head_seq, head_hash = await journal.head()
        if not await self._watermark_matches(journal, head_seq):
            logger.warning("gateway_index_rebuild reason=other-journal path=%s", self.path)
            await self._reset()
        seq = self.watermark() + 1
        added = 0
        if seq <= head_seq:
            seq = await first_readable_seq(journal, seq, head_seq)
        while seq <= head_seq:
            entries = await journal.read(seq, CATCH_UP_READ_ENTRIES)
            if not entries:
                break
            records = [r for e in entries if (r := record_from_entry(e, self.tz)) is not None]
            if records:
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._insert, [r.row() for r in records]
                )
                added += len(records)
            seq = entries[-1].seq + 1
        await self.set_watermark(head_seq, head_hash)
        if added:
            logger.info("gateway_index_caught_up rows=%d head_seq=%d", added, head_seq)
        return added


async def read_registry(
    *, index_path: Path, journal_path: Path, timezone: str, agent: str, day: str
) -> list[PaymentRecord]:
    """One agent's registry of one day without a running gateway (``lobbypay gateway registry``).

    Reads the index file read-only, then the journal entries after its
    watermark (opened for inspection: it refuses appends), so payments the
    index has not caught up with yet are included. Writes nothing.
    """
    tz = zoneinfo.ZoneInfo(timezone)
    found: dict[str, PaymentRecord] = {}
    watermark = 0
    index_exists, journal_exists = await asyncio.to_thread(
        lambda: (index_path.exists(), journal_path.exists())
    )
    if index_exists:

        def _read_index() -> tuple[int, list[PaymentRecord]]:
            uri = f"file:{index_path.absolute()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            try:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM payments WHERE agent = ? ORDER BY seq",  # noqa: S608
                    (agent,),
                ).fetchall()
                mark = conn.execute("SELECT value FROM meta WHERE key = 'watermark'").fetchone()
            finally:
                conn.close()
            records = [PaymentRecord.from_row(r) for r in rows]
            # Days are recomputed: the index may have been written under another zone.
            return (0 if mark is None else int(mark[0])), [
                r for r in records if day_of(r.ts_ms, tz) == day
            ]

        try:
            watermark, records = await asyncio.to_thread(_read_index)
        except sqlite3.Error as exc:
            raise GatewayIndexError(f"cannot read gateway index {index_path}: {exc}") from None
        found.update((r.payment_id, r) for r in records)
    if journal_exists:
        journal = await Journal.open(journal_path, check_tail=False)
        try:
            head_seq, _ = await journal.head()
            seq = watermark + 1
            if seq <= head_seq:
                seq = await first_readable_seq(journal, seq, head_seq)
            while seq <= head_seq:
                entries = await journal.read(seq, CATCH_UP_READ_ENTRIES)
                if not entries:
                    break
                for e in entries:
                    r = record_from_entry(e, tz)
                    if r is not None and r.agent == agent and r.day == day:
                        found.setdefault(r.payment_id, r)
                seq = entries[-1].seq + 1
        finally:
            await journal.close()
    return sorted(
        (dataclasses.replace(r, day=day_of(r.ts_ms, tz)) for r in found.values()),
        key=lambda r: r.seq,
    )
