"""PostgreSQL storage for the central ledger: several stateless workers, one database.

Theory of operation: an asyncpg pool per worker process. A ledger transaction
holds one pooled connection in a READ COMMITTED transaction and locks the
terminal's row with ``SELECT ... FOR UPDATE`` first, so two workers (or two
requests in one worker) never apply the same terminal's batches concurrently,
while different terminals proceed in parallel. Entries go in by binary ``COPY``,
and so do payments, inside a savepoint; if a unique constraint on ``payment_id``
or ``(agent, txn_id)`` refuses one, the savepoint is rolled back and the payments
go in by ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING``,
so the constraints decide duplicates even between workers racing on the same
payment (the second insert waits for the first to commit, then does nothing and
is recorded as a duplicate).

Everything else is the shared SQL of ``sql.py``; this module keeps the dialect,
the pool, the schema, the migration lock and the mapping of asyncpg's errors.

The URL may carry ``?schema=NAME``; the ledger then lives in that schema (created
if missing), which is how each test run gets its own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from central_sync.central.errors import BadRequestError, StorageError, StorageUnavailableError
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

SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MIGRATION_LOCK_ID = 0x4C425043  # "LBPC": one migrator at a time across workers

DIALECT = Dialect(
    name="postgresql",
    serial_key="BIGSERIAL PRIMARY KEY",
    integer="BIGINT",
    blob="BYTEA",
    boolean="BOOLEAN",
    clustered="",
    row_lock=" FOR UPDATE",
)
MIGRATIONS = ledger_migrations(DIALECT)

# Payment columns after payment_id and terminal_key, with their array types.
_PAYMENT_ARRAYS = (
    ("seq", "bigint"),
    ("ts_ms", "bigint"),
    ("amount_minor", "bigint"),
    ("currency", "text"),
    ("account", "text"),
    ("channel", "text"),
    ("agent", "text"),
    ("txn_id", "text"),
    ("surcharge_minor", "bigint"),
    ("outcome", "text"),
    ("result_seq", "bigint"),
    ("result_ts_ms", "bigint"),
    ("auth_code", "text"),
    ("rrn", "text"),
    ("masked_pan", "text"),
    ("card_brand", "text"),
    ("offline", "boolean"),
)
assert PaymentRow._fields == ("payment_id", "terminal_key", *(n for n, _ in _PAYMENT_ARRAYS))

_INSERT_PAYMENTS = """
INSERT INTO payments (payment_id, terminal_key, {names})
SELECT u.payment_id, $1, {u_names}
FROM unnest($2::text[], {arrays}) AS u(payment_id, {names})
ON CONFLICT DO NOTHING
RETURNING payment_id
""".format(
    names=", ".join(n for n, _ in _PAYMENT_ARRAYS),
    u_names=", ".join(f"u.{n}" for n, _ in _PAYMENT_ARRAYS),
    arrays=", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(_PAYMENT_ARRAYS, start=3)),
)

_UPDATE_RESULTS = """
UPDATE payments p SET outcome = r.outcome, result_seq = r.seq, result_ts_ms = r.ts_ms,
    auth_code = r.auth_code, rrn = r.rrn, masked_pan = r.masked_pan,
    card_brand = r.card_brand, offline = r.offline
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::boolean[])
    AS r(payment_id, seq, ts_ms, outcome, auth_code, rrn, masked_pan, card_brand, offline)
WHERE p.payment_id = r.payment_id AND p.terminal_key = $1 AND p.outcome IS NULL
RETURNING p.payment_id
"""

_UPDATE_REVERSALS = """
UPDATE payments p SET reversed_seq = r.seq, reversal_reason = r.reason
FROM unnest($2::text[], $3::bigint[], $4::text[]) AS r(payment_id, seq, reason)
WHERE p.payment_id = r.payment_id AND p.terminal_key = $1 AND p.reversed_seq IS NULL
RETURNING p.payment_id
"""


def split_schema(url: str) -> tuple[str, str | None]:
    """(dsn without our ``schema`` parameter, schema or None)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    rest = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if schema is not None and not SCHEMA_PATTERN.match(schema):
        raise BadRequestError("schema must be lowercase letters, digits and underscores")
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return dsn, schema


_UNAVAILABLE = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    OSError,
    TimeoutError,
)


@asynccontextmanager
async def _mapped_errors() -> AsyncIterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StorageUnavailableError(f"postgresql: {exc.__class__.__name__}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise StorageError(f"postgresql: {exc.__class__.__name__}: {exc}") from exc


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """The statement with its ``?`` placeholders as ``$1, $2, ...`` (none sit in literals)."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


def _rowcount(status: str) -> int:
    # asyncpg answers a command tag: "INSERT 0 1", "UPDATE 3", "CREATE TABLE", ...
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresConnection(SqlConnection):
    """A pooled asyncpg connection inside the storage's transaction."""

    dialect = DIALECT

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._conn.execute(numbered(sql), *args))

    async def execute_script(self, script: str) -> None:
        await self._conn.execute(script)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self._conn.fetch(numbered(sql), *args)
        return rows

    async def lock_schema(self) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)

    async def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        await self._conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def insert_payments(self, rows: Sequence[PaymentRow]) -> set[str]:
        # A stable order keeps two workers that insert overlapping payment ids
        # from locking index entries in opposite orders (a deadlock).
        ordered = sorted(rows, key=lambda r: r.payment_id)
        try:
            # The usual case, no duplicate: binary COPY, the fastest insert. In a
            # savepoint, so a row a unique constraint refuses undoes only this.
            async with self._conn.transaction():
                await self._conn.copy_records_to_table(
                    "payments", records=ordered, columns=PaymentRow._fields
                )
            return set()
        except asyncpg.exceptions.UniqueViolationError:
            pass
        # Some payment is held already (or was just committed by another worker):
        # insert row by row under the constraints and learn which were refused.
        payment_ids, terminal_keys, *columns = zip(*ordered, strict=True)
        assert len(set(terminal_keys)) == 1
        inserted = {
            row[0]
            for row in await self._conn.fetch(
                _INSERT_PAYMENTS, terminal_keys[0], list(payment_ids), *map(list, columns)
            )
        }
        return {pid for pid in payment_ids if pid not in inserted}

    async def update_results(self, terminal_key: int, results: Sequence[ResultRow]) -> set[str]:
        if not results:
            return set()
        columns = [list(column) for column in zip(*results, strict=True)]
        rows = await self._conn.fetch(_UPDATE_RESULTS, terminal_key, *columns)
        return {row[0] for row in rows}

    async def update_reversals(
        self, terminal_key: int, reversals: Sequence[ReversalRow]
    ) -> set[str]:
        if not reversals:
            return set()
        payment_ids, seqs, _ts, reasons = (list(c) for c in zip(*reversals, strict=True))
        rows = await self._conn.fetch(_UPDATE_REVERSALS, terminal_key, payment_ids, seqs, reasons)
        return {row[0] for row in rows}

    async def payments_by_id(self, payment_ids: Sequence[str]) -> list[StoredPayment]:
        rows = await self._conn.fetch(
            "SELECT payment_id, terminal_key, seq, agent, txn_id FROM payments"
            " WHERE payment_id = ANY($1::text[])",
            list(payment_ids),
        )
        return [StoredPayment(*row) for row in rows]

    async def payment_ids_by_pair(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        rows = await self._conn.fetch(
            "SELECT p.agent, p.txn_id, p.payment_id FROM payments p"
            " JOIN unnest($1::text[], $2::text[]) AS u(agent, txn_id)"
            " ON p.agent = u.agent AND p.txn_id = u.txn_id",
            [agent for agent, _ in pairs],
            [txn_id for _, txn_id in pairs],
        )
        return {(row[0], row[1]): row[2] for row in rows}


class _PostgresLedgerTransaction(SqlLedgerTransaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = _PostgresConnection(conn)

    async def _run(self, operation: Operation[T]) -> T:
        async with _mapped_errors():
            return await operation(self._conn)


class PostgresStorage(SqlStorage):
    """The ledger in PostgreSQL (see the module docstring)."""

    dialect = DIALECT
    migrations = MIGRATIONS

    def __init__(
        self,
        url: str,
        *,
        pool_size_max: int = 10,
        command_timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.dsn, self.schema = split_schema(url)
        self.pool_size_max = pool_size_max
        self.command_timeout_s = command_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("the storage is not open")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = {"search_path": self.schema} if self.schema else {}
        async with _mapped_errors():
            if self.schema:
                conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout_s)
                try:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                except asyncpg.exceptions.UniqueViolationError:
                    pass  # created by a concurrent worker at the same moment
                finally:
                    await conn.close()
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size_max,
                command_timeout=self.command_timeout_s,
                timeout=self.connect_timeout_s,
                server_settings=settings,
            )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _write(self, operation: Operation[T]) -> T:
        async with _mapped_errors(), self.pool.acquire() as conn, conn.transaction():
            return await operation(_PostgresConnection(conn))

    async def _read(self, operation: Operation[T]) -> T:
        async with _mapped_errors(), self.pool.acquire() as conn:
            return await operation(_PostgresConnection(conn))

    @asynccontextmanager
    async def ledger_transaction(self) -> AsyncIterator[LedgerTransaction]:
        async with _mapped_errors(), self.pool.acquire() as conn, conn.transaction():
            yield _PostgresLedgerTransaction(conn)

    async def drop_schema(self) -> None:
        """Drop this storage's schema and everything in it (tests only)."""
        if not self.schema:
            raise StorageError("refusing to drop: this storage has no schema of its own")

        async def run(conn: SqlConnection) -> None:
            await conn.execute_script(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

        await self._read(run)
