"""SQLite storage for the central ledger: the embedded default (one process).

Theory of operation: one connection lives in one dedicated thread (the standard
``sqlite3`` module; every call hops to that thread through a one-worker
executor). An asyncio lock admits one operation or ledger transaction at a time,
and each write transaction starts with ``BEGIN IMMEDIATE``, so there is exactly one
writer — also against another process opening the same file (it waits up to
``busy_timeout_s`` and then gets :class:`StorageUnavailableError`, retryable).
WAL mode with ``synchronous=FULL``: an ack promises the entries are durable, so
a commit must survive power loss before the ack is signed.

Everything the ledger does is written once in ``sql.py`` as async operations on
a :class:`SqlConnection`. This module's connection answers at once (``sqlite3``
blocks, in the database thread), so an operation never suspends: the whole of it
runs to completion in the database thread in one hop (:func:`_run_inline`), as
if it had been written against ``sqlite3`` directly.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from central_sync.central.errors import (
    BadRequestError,
    StorageError,
    StorageUnavailableError,
)
from central_sync.central.sql import (
    Dialect,
    Operation,
    SqlConnection,
    SqlLedgerTransaction,
    SqlStorage,
    StoredPayment,
    ledger_migrations,
)
from central_sync.central.storage import (
    LedgerTransaction,
    PaymentRow,
    ResultRow,
    ReversalRow,
)

T = TypeVar("T")

IN_CHUNK_MAX = 500  # host parameters per IN (...) list, well under SQLite's limit

DIALECT = Dialect(
    name="sqlite",
    serial_key="INTEGER PRIMARY KEY",
    integer="INTEGER",
    blob="BLOB",
    boolean="INTEGER",
    clustered=" WITHOUT ROWID",
    row_lock="",  # BEGIN IMMEDIATE already holds the database's write lock
)
MIGRATIONS = ledger_migrations(DIALECT)

_INSERT_PAYMENTS = "INSERT INTO payments ({}) VALUES ({}) ON CONFLICT DO NOTHING".format(  # noqa: S608
    ", ".join(PaymentRow._fields), ", ".join("?" * len(PaymentRow._fields))
)
_SELECT_STORED = "SELECT payment_id, terminal_key, seq, agent, txn_id FROM payments"
_SELECT_PAIRS = "SELECT agent, txn_id, payment_id FROM payments"


def sqlite_path(url: str) -> str:
    """The file path of ``sqlite:///path`` (absolute) or ``sqlite://:memory:``."""
    parts = urlsplit(url)
    if parts.netloc == ":memory:" or url == "sqlite://":
        return ":memory:"
    if parts.netloc:
        raise BadRequestError("sqlite URL must be sqlite:///path/to/file.db (three slashes)")
    path = unquote(parts.path)
    if not path:
        raise BadRequestError("sqlite URL lacks a path")
    return path


def _chunks(items: Sequence[T], size: int = IN_CHUNK_MAX) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_inline(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run an operation that awaits only a :class:`_SqliteConnection` to its end, here."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    # Our own invariant: nothing on a SQLite connection waits for the event loop.
    raise AssertionError("a SQLite operation suspended; it may await only its connection")


@functools.lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    # Only our own table and column names are formatted into the statement.
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608


class _SqliteConnection(SqlConnection):
    """The sqlite3 connection, in the database thread, inside the storage's transaction."""

    dialect = DIALECT

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        return self._conn.execute(sql, args).rowcount

    async def execute_script(self, script: str) -> None:
        # executescript would COMMIT first; run statement by statement instead,
        # inside our own transaction, so a migration applies whole or not at all.
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self._conn.execute(sql, args).fetchall()

    async def lock_schema(self) -> None:
        pass  # BEGIN IMMEDIATE: this transaction is the only writer

    async def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        # sqlite3 binds an exact tuple's items directly but asks a NamedTuple for
        # each item through the sequence protocol: copying is cheaper.
        self._conn.executemany(_insert_sql(table, tuple(columns)), map(tuple, rows))

    async def insert_payments(self, rows: Sequence[PaymentRow]) -> set[str]:
        inserted = self._conn.executemany(_INSERT_PAYMENTS, map(tuple, rows)).rowcount
        if inserted == len(rows):
            return set()  # the usual case: no duplicates, nothing more to ask
        # A payment is ours if its row is this terminal's at this seq (the entry
        # was inserted just now, so no earlier row can hold that pair).
        held = {
            (p.payment_id, p.terminal_key, p.seq)
            for p in await self.payments_by_id([r.payment_id for r in rows])
        }
        return {r.payment_id for r in rows if (r.payment_id, r.terminal_key, r.seq) not in held}

    async def update_results(self, terminal_key: int, results: Sequence[ResultRow]) -> set[str]:
        updated: set[str] = set()
        for r in results:
            cursor = self._conn.execute(
                "UPDATE payments SET outcome = ?, result_seq = ?, result_ts_ms = ?, auth_code = ?,"
                " rrn = ?, masked_pan = ?, card_brand = ?, offline = ?"
                " WHERE payment_id = ? AND terminal_key = ? AND outcome IS NULL",
                (
                    r.outcome,
                    r.seq,
                    r.ts_ms,
                    r.auth_code,
                    r.rrn,
                    r.masked_pan,
                    r.card_brand,
                    r.offline,
                    r.payment_id,
                    terminal_key,
                ),
            )
            if cursor.rowcount == 1:
                updated.add(r.payment_id)
        return updated

    async def update_reversals(
        self, terminal_key: int, reversals: Sequence[ReversalRow]
    ) -> set[str]:
        updated: set[str] = set()
        for v in reversals:
            cursor = self._conn.execute(
                "UPDATE payments SET reversed_seq = ?, reversal_reason = ?"
                " WHERE payment_id = ? AND terminal_key = ? AND reversed_seq IS NULL",
                (v.seq, v.reason, v.payment_id, terminal_key),
            )
            if cursor.rowcount == 1:
                updated.add(v.payment_id)
        return updated

    async def payments_by_id(self, payment_ids: Sequence[str]) -> list[StoredPayment]:
        out: list[StoredPayment] = []
        for chunk in _chunks(payment_ids):
            marks = ",".join("?" * len(chunk))
            # Only "?" placeholders are formatted into the statement.
            sql = f"{_SELECT_STORED} WHERE payment_id IN ({marks})"
            rows = self._conn.execute(sql, chunk)
            out += [StoredPayment(*row) for row in rows]
        return out

    async def payment_ids_by_pair(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for chunk in _chunks(pairs, IN_CHUNK_MAX // 2):
            marks = ",".join("(?, ?)" for _ in chunk)
            # Only "(?, ?)" placeholders are formatted into the statement.
            sql = f"{_SELECT_PAIRS} WHERE (agent, txn_id) IN (VALUES {marks})"
            rows = self._conn.execute(sql, [value for pair in chunk for value in pair])
            out.update({(agent, txn_id): pid for agent, txn_id, pid in rows})
        return out


class _SqliteLedgerTransaction(SqlLedgerTransaction):
    def __init__(self, storage: SqliteStorage) -> None:
        self._storage = storage

    async def _run(self, operation: Operation[T]) -> T:
        # Inside BEGIN IMMEDIATE, which ledger_transaction() issued.
        return await self._storage._call(_inline(operation))


def _inline(operation: Operation[T]) -> Callable[[sqlite3.Connection], T]:
    def run(conn: sqlite3.Connection) -> T:
        return _run_inline(operation(_SqliteConnection(conn)))

    return run


class SqliteStorage(SqlStorage):
    """The ledger in one SQLite file (see the module docstring)."""

    dialect = DIALECT
    migrations = MIGRATIONS

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = str(path)
        self.url = "sqlite://:memory:" if self.path == ":memory:" else f"sqlite:///{self.path}"
        self.busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    # -- plumbing ----------------------------------------------------------------

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the database thread, mapping sqlite errors."""
        if self._executor is None or self._conn is None:
            raise StorageError("the storage is not open")
        conn = self._conn
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, conn)
        except sqlite3.OperationalError as exc:
            raise StorageUnavailableError(f"sqlite: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"sqlite: {exc}") from exc

    async def _write(self, operation: Operation[T]) -> T:
        """Run ``operation`` in one write transaction (BEGIN IMMEDIATE ... COMMIT)."""
        inline = _inline(operation)

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = inline(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        async with self._lock:
            return await self._call(run)

    async def _read(self, operation: Operation[T]) -> T:
        async with self._lock:
            return await self._call(_inline(operation))

    async def open(self) -> None:
        if self._conn is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="central-sqlite")
        loop = asyncio.get_running_loop()

        def connect() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_s)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            return conn

        try:
            self._conn = await loop.run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise StorageUnavailableError(f"cannot open {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._conn is None or self._executor is None:
            return
        conn, executor = self._conn, self._executor
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
            self._conn = None
            self._executor = None
        executor.shutdown(wait=True)

    # -- ingest ------------------------------------------------------------------

    @asynccontextmanager
    async def ledger_transaction(self) -> AsyncIterator[LedgerTransaction]:
        async with self._lock:
            await self._call(lambda conn: conn.execute("BEGIN IMMEDIATE"))
            try:
                yield _SqliteLedgerTransaction(self)
            except BaseException:
                await asyncio.shield(self._call(lambda conn: conn.execute("ROLLBACK")))
                raise
            await self._call(lambda conn: conn.execute("COMMIT"))
