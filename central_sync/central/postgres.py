"""PostgreSQL storage for the central ledger: several stateless workers, one database.

Theory of operation: an asyncpg pool per worker process. A ledger transaction
holds one pooled connection in a READ COMMITTED transaction and locks the
terminal's row with ``SELECT ... FOR UPDATE`` first, so two workers (or two
requests in one worker) never apply the same terminal's batches concurrently,
while different terminals proceed in parallel. Entries go in by binary ``COPY``;
payments by ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING``,
so the unique constraints on ``payment_id`` and ``(agent, txn_id)`` decide
duplicates even between workers racing on the same payment (the second insert
waits for the first to commit, then does nothing and is recorded as a duplicate).

The URL may carry ``?schema=NAME``; the ledger then lives in that schema (created
if missing), which is how each test run gets its own.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from central_sync.central.errors import (
    BadRequestError,
    ConflictError,
    MigrationError,
    NotFoundError,
    RegistrationCodeError,
    StorageError,
    StorageUnavailableError,
)
from central_sync.central.storage import (
    Alarm,
    ApplyPlan,
    AuditRecord,
    DuplicateRow,
    LedgerCounts,
    LedgerTransaction,
    Storage,
    TerminalRecord,
    TerminalState,
    classify_unapplied_result,
)

T = TypeVar("T")

GENESIS_HASH = bytes(32)
SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MIGRATION_LOCK_ID = 0x4C425043  # "LBPC": one migrator at a time across workers

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_ledger",
        """
        CREATE TABLE terminals (
            key BIGSERIAL PRIMARY KEY,
            terminal_id TEXT NOT NULL UNIQUE,
            public_key BYTEA NOT NULL,
            label TEXT NOT NULL,
            location TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('enrolled', 'revoked', 'quarantined')),
            state_reason TEXT,
            head_seq BIGINT NOT NULL DEFAULT 0 CHECK (head_seq >= 0),
            head_hash BYTEA NOT NULL,
            enrolled_ms BIGINT NOT NULL,
            last_seen_ms BIGINT,
            queue_depth BIGINT,
            oldest_pending_age_s BIGINT,
            software_version TEXT,
            catalog_version BIGINT,
            config_version BIGINT,
            health TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE registration_codes (
            code_hash TEXT PRIMARY KEY,
            location TEXT NOT NULL,
            label TEXT,
            created_ms BIGINT NOT NULL,
            expires_ms BIGINT NOT NULL,
            used_ms BIGINT,
            used_by TEXT
        );
        CREATE TABLE entries (
            terminal_key BIGINT NOT NULL REFERENCES terminals(key),
            seq BIGINT NOT NULL,
            kind TEXT NOT NULL,
            ts_ms BIGINT NOT NULL,
            hash BYTEA NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (terminal_key, seq)
        );
        CREATE TABLE payments (
            id BIGSERIAL PRIMARY KEY,
            payment_id TEXT NOT NULL UNIQUE,
            terminal_key BIGINT NOT NULL REFERENCES terminals(key),
            seq BIGINT NOT NULL,
            ts_ms BIGINT NOT NULL,
            amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            account TEXT NOT NULL,
            channel TEXT NOT NULL,
            agent TEXT,
            txn_id TEXT,
            surcharge_minor BIGINT NOT NULL DEFAULT 0,
            outcome TEXT,
            result_seq BIGINT,
            result_ts_ms BIGINT,
            auth_code TEXT,
            rrn TEXT,
            masked_pan TEXT,
            card_brand TEXT,
            offline BOOLEAN,
            reversed_seq BIGINT,
            reversal_reason TEXT
        );
        CREATE UNIQUE INDEX payments_agent_txn ON payments (agent, txn_id) WHERE agent IS NOT NULL;
        CREATE INDEX payments_ts ON payments (ts_ms);
        CREATE TABLE duplicates (
            id BIGSERIAL PRIMARY KEY,
            terminal_key BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            kind TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            agent TEXT,
            txn_id TEXT,
            reason TEXT NOT NULL,
            existing_payment_id TEXT,
            received_ms BIGINT NOT NULL
        );
        CREATE TABLE meter_readings (
            terminal_key BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            ts_ms BIGINT NOT NULL,
            account TEXT NOT NULL,
            meter_id TEXT NOT NULL,
            value BIGINT NOT NULL,
            reading_ts_ms BIGINT NOT NULL,
            PRIMARY KEY (terminal_key, seq)
        );
        CREATE INDEX meter_readings_ts ON meter_readings (ts_ms);
        CREATE TABLE batches (
            id BIGSERIAL PRIMARY KEY,
            terminal_key BIGINT NOT NULL,
            from_seq BIGINT NOT NULL,
            to_seq BIGINT NOT NULL,
            applied BIGINT NOT NULL,
            outcome TEXT NOT NULL,
            wire_bytes BIGINT NOT NULL,
            received_ms BIGINT NOT NULL
        );
        CREATE TABLE alarms (
            id BIGSERIAL PRIMARY KEY,
            ts_ms BIGINT NOT NULL,
            terminal_id TEXT,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            resolved_ms BIGINT
        );
        CREATE TABLE audit (
            id BIGSERIAL PRIMARY KEY,
            ts_ms BIGINT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE TABLE publications (
            kind TEXT NOT NULL,
            scope TEXT NOT NULL,
            version BIGINT NOT NULL,
            data BYTEA NOT NULL,
            created_ms BIGINT NOT NULL,
            PRIMARY KEY (kind, scope, version)
        );
        CREATE TABLE catalog_releases (
            version BIGINT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('snapshot', 'delta')),
            base_version BIGINT,
            data BYTEA NOT NULL,
            created_ms BIGINT NOT NULL,
            PRIMARY KEY (version, kind)
        );
        """,
    ),
)

_SELECT_TERMINAL = (
    "SELECT key, terminal_id, public_key, label, location, state, state_reason, head_seq,"
    " head_hash, enrolled_ms, last_seen_ms, queue_depth, oldest_pending_age_s,"
    " software_version, catalog_version, config_version, health FROM terminals"
)

_INSERT_PAYMENTS = """
INSERT INTO payments (payment_id, terminal_key, seq, ts_ms, amount_minor, currency, account,
    channel, agent, txn_id, surcharge_minor, outcome, result_seq, result_ts_ms,
    auth_code, rrn, masked_pan, card_brand, offline)
SELECT u.payment_id, $1, u.seq, u.ts_ms, u.amount_minor, u.currency, u.account, u.channel,
    u.agent, u.txn_id, u.surcharge_minor, u.outcome, u.result_seq, u.result_ts_ms,
    u.auth_code, u.rrn, u.masked_pan, u.card_brand, u.offline
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::bigint[],
    $14::bigint[], $15::text[], $16::text[], $17::text[], $18::text[], $19::boolean[])
    AS u(payment_id, seq, ts_ms, amount_minor, currency, account, channel, agent, txn_id,
    surcharge_minor, outcome, result_seq, result_ts_ms, auth_code, rrn, masked_pan,
    card_brand, offline)
ON CONFLICT DO NOTHING
RETURNING payment_id
"""

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


def _terminal(row: Sequence[Any]) -> TerminalRecord:
    return TerminalRecord(
        key=row[0],
        terminal_id=row[1],
        public_key=bytes(row[2]),
        label=row[3],
        location=row[4],
        state=TerminalState(row[5]),
        state_reason=row[6],
        head_seq=row[7],
        head_hash=bytes(row[8]),
        enrolled_ms=row[9],
        last_seen_ms=row[10],
        queue_depth=row[11],
        oldest_pending_age_s=row[12],
        software_version=row[13],
        catalog_version=row[14],
        config_version=row[15],
        health=json.loads(row[16]),
    )


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


async def _audit(
    conn: asyncpg.Connection,
    now_ms: int,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO audit (ts_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        now_ms,
        actor,
        action,
        subject,
        json.dumps(detail, sort_keys=True),
    )


async def _get_terminal(
    conn: asyncpg.Connection, terminal_id: str, *, for_update: bool = False
) -> TerminalRecord | None:
    sql = _SELECT_TERMINAL + " WHERE terminal_id = $1" + (" FOR UPDATE" if for_update else "")
    row = await conn.fetchrow(sql, terminal_id)
    return None if row is None else _terminal(row)


class _PostgresLedgerTransaction(LedgerTransaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_terminal(self, terminal_id: str) -> TerminalRecord | None:
        async with _mapped_errors():
            return await _get_terminal(self._conn, terminal_id, for_update=True)

    async def stored_hashes(
        self, terminal_key: int, from_seq: int, to_seq: int
    ) -> dict[int, bytes]:
        async with _mapped_errors():
            rows = await self._conn.fetch(
                "SELECT seq, hash FROM entries WHERE terminal_key = $1 AND seq BETWEEN $2 AND $3",
                terminal_key,
                from_seq,
                to_seq,
            )
        return {row[0]: bytes(row[1]) for row in rows}

    async def apply(self, plan: ApplyPlan) -> list[DuplicateRow]:
        async with _mapped_errors():
            return await self._apply(plan)

    async def _apply(self, plan: ApplyPlan) -> list[DuplicateRow]:
        conn, tk = self._conn, plan.terminal_key
        await conn.copy_records_to_table(
            "entries",
            records=[(tk, *row) for row in plan.entries],
            columns=["terminal_key", "seq", "kind", "ts_ms", "hash", "data"],
        )
        duplicates = list(plan.duplicates)
        if plan.intents:
            # A stable order keeps two workers that insert overlapping payment ids
            # from locking index entries in opposite orders (a deadlock).
            intents = sorted(plan.intents, key=lambda i: i.payment_id)
            columns: list[list[Any]] = [[] for _ in range(18)]
            for i in intents:
                r = i.result
                values = (
                    i.payment_id,
                    i.seq,
                    i.ts_ms,
                    i.amount_minor,
                    i.currency,
                    i.account,
                    i.channel,
                    i.agent,
                    i.txn_id,
                    i.surcharge_minor,
                    None if r is None else r.outcome,
                    None if r is None else r.seq,
                    None if r is None else r.ts_ms,
                    None if r is None else r.auth_code,
                    None if r is None else r.rrn,
                    None if r is None else r.masked_pan,
                    None if r is None else r.card_brand,
                    None if r is None else r.offline,
                )
                for column, value in zip(columns, values, strict=True):
                    column.append(value)
            inserted = {row[0] for row in await conn.fetch(_INSERT_PAYMENTS, tk, *columns)}
            rejected = [i for i in intents if i.payment_id not in inserted]
            if rejected:
                duplicates.extend(await self._classify_intents(rejected))
        if plan.results:
            rs = plan.results
            updated = {
                row[0]
                for row in await conn.fetch(
                    _UPDATE_RESULTS,
                    tk,
                    [r.payment_id for r in rs],
                    [r.seq for r in rs],
                    [r.ts_ms for r in rs],
                    [r.outcome for r in rs],
                    [r.auth_code for r in rs],
                    [r.rrn for r in rs],
                    [r.masked_pan for r in rs],
                    [r.card_brand for r in rs],
                    [r.offline for r in rs],
                )
            }
            for r in rs:
                if r.payment_id not in updated:
                    duplicates.append(await self._orphan(tk, r.seq, "payment-result", r.payment_id))
        if plan.reversals:
            vs = plan.reversals
            updated = {
                row[0]
                for row in await conn.fetch(
                    _UPDATE_REVERSALS,
                    tk,
                    [v.payment_id for v in vs],
                    [v.seq for v in vs],
                    [v.reason for v in vs],
                )
            }
            for v in vs:
                if v.payment_id not in updated:
                    duplicates.append(await self._orphan(tk, v.seq, "reversal", v.payment_id))
        if plan.meter_readings:
            await conn.copy_records_to_table(
                "meter_readings",
                records=[(tk, *row) for row in plan.meter_readings],
                columns=[
                    "terminal_key",
                    "seq",
                    "ts_ms",
                    "account",
                    "meter_id",
                    "value",
                    "reading_ts_ms",
                ],
            )
        if duplicates:
            await conn.executemany(
                "INSERT INTO duplicates (terminal_key, seq, kind, payment_id, agent, txn_id,"
                " reason, existing_payment_id, received_ms)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                [(tk, *row, plan.now_ms) for row in duplicates],
            )
        await conn.execute(
            "UPDATE terminals SET head_seq = $1, head_hash = $2, last_seen_ms = $3 WHERE key = $4",
            plan.head_seq,
            plan.head_hash,
            plan.now_ms,
            tk,
        )
        await conn.execute(
            "INSERT INTO batches (terminal_key, from_seq, to_seq, applied, outcome, wire_bytes,"
            " received_ms) VALUES ($1, $2, $3, $4, 'applied', $5, $6)",
            tk,
            plan.from_seq,
            plan.head_seq,
            len(plan.entries),
            plan.wire_bytes,
            plan.now_ms,
        )
        return duplicates

    async def _classify_intents(self, rejected: Sequence[Any]) -> list[DuplicateRow]:
        conn = self._conn
        by_id = {
            row[0]
            for row in await conn.fetch(
                "SELECT payment_id FROM payments WHERE payment_id = ANY($1::text[])",
                [i.payment_id for i in rejected],
            )
        }
        gateway = [i for i in rejected if i.agent is not None]
        by_pair: dict[tuple[str, str], str] = {}
        if gateway:
            for row in await conn.fetch(
                "SELECT p.agent, p.txn_id, p.payment_id FROM payments p"
                " JOIN unnest($1::text[], $2::text[]) AS u(agent, txn_id)"
                " ON p.agent = u.agent AND p.txn_id = u.txn_id",
                [i.agent for i in gateway],
                [i.txn_id for i in gateway],
            ):
                by_pair[(row[0], row[1])] = row[2]
        out: list[DuplicateRow] = []
        for i in sorted(rejected, key=lambda i: i.seq):
            if i.payment_id in by_id:
                reason, existing = "payment_id", i.payment_id
            else:
                # Not by id, so the (agent, txn_id) constraint refused it.
                reason, existing = "agent_txn_id", by_pair.get((i.agent, i.txn_id))
            out.append(
                DuplicateRow(
                    i.seq, "payment-intent", i.payment_id, i.agent, i.txn_id, reason, existing
                )
            )
            if i.result is not None:
                out.append(
                    DuplicateRow(
                        i.result.seq,
                        "payment-result",
                        i.payment_id,
                        i.agent,
                        i.txn_id,
                        reason,
                        existing,
                    )
                )
        return out

    async def _orphan(self, tk: int, seq: int, kind: str, payment_id: str) -> DuplicateRow:
        row = await self._conn.fetchrow(
            "SELECT terminal_key, outcome, agent, txn_id FROM payments WHERE payment_id = $1",
            payment_id,
        )
        existing = None if row is None else (row[0], row[1])
        reason = classify_unapplied_result(payment_id, tk, existing, kind=kind)
        return DuplicateRow(
            seq,
            kind,
            payment_id,
            None if row is None else row[2],
            None if row is None else row[3],
            reason,
            None if row is None else payment_id,
        )

    async def quarantine(
        self,
        terminal_key: int,
        *,
        reason: str,
        alarm_kind: str,
        detail: Mapping[str, Any],
        now_ms: int,
    ) -> None:
        async with _mapped_errors():
            terminal_id = await self._conn.fetchval(
                "UPDATE terminals SET state = 'quarantined', state_reason = $1 WHERE key = $2"
                " RETURNING terminal_id",
                reason,
                terminal_key,
            )
            await self._conn.execute(
                "INSERT INTO alarms (ts_ms, terminal_id, kind, detail) VALUES ($1, $2, $3, $4)",
                now_ms,
                terminal_id,
                alarm_kind,
                json.dumps(detail, sort_keys=True),
            )
            await _audit(
                self._conn,
                now_ms,
                "central",
                "quarantine",
                terminal_id,
                {"reason": reason, **detail},
            )

    async def log_batch(
        self,
        terminal_key: int,
        *,
        from_seq: int,
        to_seq: int,
        applied: int,
        outcome: str,
        wire_bytes: int,
        now_ms: int,
    ) -> None:
        async with _mapped_errors():
            await self._conn.execute(
                "INSERT INTO batches (terminal_key, from_seq, to_seq, applied, outcome,"
                " wire_bytes, received_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                terminal_key,
                from_seq,
                to_seq,
                applied,
                outcome,
                wire_bytes,
                now_ms,
            )


class PostgresStorage(Storage):
    """The ledger in PostgreSQL (see the module docstring)."""

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

    async def _run(self, fn: Callable[[asyncpg.Connection], Any], *, write: bool = False) -> Any:
        async with _mapped_errors(), self.pool.acquire() as conn:
            if not write:
                return await fn(conn)
            async with conn.transaction():
                return await fn(conn)

    # -- migrations ---------------------------------------------------------------

    async def applied_migrations(self) -> list[str]:
        async def run(conn: asyncpg.Connection) -> list[str]:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (name TEXT PRIMARY KEY, applied_ms BIGINT NOT NULL)"
            )
            rows = await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")
            return [row[0] for row in rows]

        async def locked(conn: asyncpg.Connection) -> list[str]:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)
            return await run(conn)

        result: list[str] = await self._run(locked, write=True)
        return result

    async def migrate(self) -> list[str]:
        known = [name for name, _ in MIGRATIONS]

        async def run(conn: asyncpg.Connection) -> list[str]:
            # One transaction, under an advisory lock: two workers starting together
            # never both migrate, and a failing migration leaves nothing behind.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (name TEXT PRIMARY KEY, applied_ms BIGINT NOT NULL)"
            )
            applied = [r[0] for r in await conn.fetch("SELECT name FROM schema_migrations")]
            unknown = [name for name in applied if name not in known]
            if unknown:
                raise MigrationError(
                    f"database has migrations this software does not know: {unknown}"
                )
            done = []
            for name, script in MIGRATIONS:
                if name in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(script)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, applied_ms) VALUES ($1, $2)",
                        name,
                        int(time.time() * 1000),
                    )
                done.append(name)
            return done

        result: list[str] = await self._run(run, write=True)
        return result

    # -- ingest ---------------------------------------------------------------------

    @asynccontextmanager
    async def ledger_transaction(self) -> AsyncIterator[LedgerTransaction]:
        async with _mapped_errors(), self.pool.acquire() as conn, conn.transaction():
            yield _PostgresLedgerTransaction(conn)

    # -- terminals ------------------------------------------------------------------

    async def add_registration_code(
        self,
        *,
        code_hash: str,
        location: str,
        label: str | None,
        created_ms: int,
        expires_ms: int,
        actor: str,
    ) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO registration_codes (code_hash, location, label, created_ms,"
                        " expires_ms) VALUES ($1, $2, $3, $4, $5)",
                        code_hash,
                        location,
                        label,
                        created_ms,
                        expires_ms,
                    )
            except asyncpg.exceptions.UniqueViolationError:
                raise ConflictError("that registration code exists already") from None
            await _audit(
                conn,
                created_ms,
                actor,
                "registration-code",
                location,
                {"expires_ms": expires_ms, "label": label},
            )

        await self._run(run, write=True)

    async def enroll(
        self,
        *,
        terminal_id: str,
        public_key: bytes,
        code_hash: str,
        location: str,
        label: str,
        now_ms: int,
    ) -> TerminalRecord:
        async def run(conn: asyncpg.Connection) -> TerminalRecord:
            code = await conn.fetchrow(
                "SELECT location, expires_ms, used_by FROM registration_codes"
                " WHERE code_hash = $1 FOR UPDATE",
                code_hash,
            )
            existing = await _get_terminal(conn, terminal_id)
            if code is None:
                raise RegistrationCodeError("unknown registration code")
            code_location, expires_ms, used_by = code
            if used_by is not None:
                if (
                    used_by == terminal_id
                    and existing is not None
                    and existing.public_key == public_key
                ):
                    return existing
                raise RegistrationCodeError("registration code already used")
            if expires_ms <= now_ms:
                raise RegistrationCodeError("registration code expired")
            if code_location != location:
                raise RegistrationCodeError("registration code is for another location")
            if existing is not None:
                raise ConflictError(
                    f"terminal {terminal_id} is already enrolled ({existing.state})"
                )
            await conn.execute(
                "UPDATE registration_codes SET used_ms = $1, used_by = $2 WHERE code_hash = $3",
                now_ms,
                terminal_id,
                code_hash,
            )
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO terminals (terminal_id, public_key, label, location, state,"
                        " head_seq, head_hash, enrolled_ms)"
                        " VALUES ($1, $2, $3, $4, 'enrolled', 0, $5, $6)",
                        terminal_id,
                        public_key,
                        label,
                        location,
                        GENESIS_HASH,
                        now_ms,
                    )
            except asyncpg.exceptions.UniqueViolationError:
                raise ConflictError(f"terminal {terminal_id} is already enrolled") from None
            await _audit(
                conn,
                now_ms,
                "terminal",
                "enroll",
                terminal_id,
                {"location": location, "label": label},
            )
            record = await _get_terminal(conn, terminal_id)
            assert record is not None
            return record

        result: TerminalRecord = await self._run(run, write=True)
        return result

    async def get_terminal(self, terminal_id: str) -> TerminalRecord | None:
        async def run(conn: asyncpg.Connection) -> TerminalRecord | None:
            return await _get_terminal(conn, terminal_id)

        result: TerminalRecord | None = await self._run(run)
        return result

    async def list_terminals(self) -> list[TerminalRecord]:
        async def run(conn: asyncpg.Connection) -> list[TerminalRecord]:
            rows = await conn.fetch(_SELECT_TERMINAL + " ORDER BY terminal_id")
            return [_terminal(row) for row in rows]

        result: list[TerminalRecord] = await self._run(run)
        return result

    async def set_terminal_state(
        self, terminal_id: str, state: TerminalState, *, reason: str, actor: str, now_ms: int
    ) -> TerminalRecord:
        async def run(conn: asyncpg.Connection) -> TerminalRecord:
            status = await conn.execute(
                "UPDATE terminals SET state = $1, state_reason = $2 WHERE terminal_id = $3",
                state.value,
                reason,
                terminal_id,
            )
            if status != "UPDATE 1":
                raise NotFoundError(f"no terminal {terminal_id}")
            await _audit(
                conn, now_ms, actor, f"state:{state.value}", terminal_id, {"reason": reason}
            )
            record = await _get_terminal(conn, terminal_id)
            assert record is not None
            return record

        result: TerminalRecord = await self._run(run, write=True)
        return result

    async def record_heartbeat(
        self,
        terminal_id: str,
        *,
        now_ms: int,
        queue_depth: int,
        oldest_pending_age_s: int | None,
        software_version: str,
        catalog_version: int | None,
        config_version: int | None,
        health: Mapping[str, Any],
    ) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "UPDATE terminals SET last_seen_ms = $1, queue_depth = $2,"
                " oldest_pending_age_s = $3, software_version = $4, catalog_version = $5,"
                " config_version = $6, health = $7 WHERE terminal_id = $8",
                now_ms,
                queue_depth,
                oldest_pending_age_s,
                software_version,
                catalog_version,
                config_version,
                json.dumps(dict(health), sort_keys=True),
                terminal_id,
            )

        await self._run(run, write=True)

    # -- publications ------------------------------------------------------------------

    async def put_publication(
        self, *, kind: str, scope: str, version: int, data: bytes, now_ms: int
    ) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO publications (kind, scope, version, data, created_ms)"
                        " VALUES ($1, $2, $3, $4, $5)",
                        kind,
                        scope,
                        version,
                        data,
                        now_ms,
                    )
            except asyncpg.exceptions.UniqueViolationError:
                raise ConflictError(f"{kind} {scope} version {version} exists already") from None
            await _audit(conn, now_ms, "central", f"publish:{kind}", scope, {"version": version})

        await self._run(run, write=True)

    async def latest_publication(self, *, kind: str, scope: str) -> tuple[int, bytes] | None:
        async def run(conn: asyncpg.Connection) -> tuple[int, bytes] | None:
            row = await conn.fetchrow(
                "SELECT version, data FROM publications WHERE kind = $1 AND scope = $2"
                " ORDER BY version DESC LIMIT 1",
                kind,
                scope,
            )
            return None if row is None else (row[0], bytes(row[1]))

        result: tuple[int, bytes] | None = await self._run(run)
        return result

    async def put_catalog_release(
        self, *, version: int, kind: str, base_version: int | None, data: bytes, now_ms: int
    ) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO catalog_releases (version, kind, base_version, data,"
                        " created_ms) VALUES ($1, $2, $3, $4, $5)",
                        version,
                        kind,
                        base_version,
                        data,
                        now_ms,
                    )
            except asyncpg.exceptions.UniqueViolationError:
                raise ConflictError(f"catalog {kind} version {version} exists already") from None
            await _audit(
                conn,
                now_ms,
                "central",
                f"catalog:{kind}",
                str(version),
                {"base_version": base_version, "bytes": len(data)},
            )

        await self._run(run, write=True)

    async def catalog_release_for(self, since: int) -> tuple[int, str, bytes] | None:
        async def run(conn: asyncpg.Connection) -> tuple[int, str, bytes] | None:
            latest = await conn.fetchval("SELECT MAX(version) FROM catalog_releases")
            if latest is None or latest <= since:
                return None
            row = await conn.fetchrow(
                "SELECT version, kind, data FROM catalog_releases"
                " WHERE kind = 'delta' AND base_version = $1 ORDER BY version DESC LIMIT 1",
                since,
            )
            if row is None:
                row = await conn.fetchrow(
                    "SELECT version, kind, data FROM catalog_releases WHERE kind = 'snapshot'"
                    " ORDER BY version DESC LIMIT 1"
                )
            return None if row is None else (row[0], row[1], bytes(row[2]))

        result: tuple[int, str, bytes] | None = await self._run(run)
        return result

    async def latest_catalog_version(self) -> int:
        async def run(conn: asyncpg.Connection) -> int:
            value = await conn.fetchval("SELECT MAX(version) FROM catalog_releases")
            return 0 if value is None else int(value)

        result: int = await self._run(run)
        return result

    # -- reading ------------------------------------------------------------------------

    async def export_rows(self, kind: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
        if kind == "payments":
            sql = (
                "SELECT p.payment_id, t.terminal_id, p.seq, p.ts_ms, p.amount_minor, p.currency,"
                " p.account, p.channel, p.agent, p.txn_id, p.surcharge_minor, e.data AS services,"
                " p.outcome, p.auth_code, p.rrn, p.masked_pan, p.card_brand, p.offline,"
                " p.reversed_seq IS NOT NULL AS reversed, p.reversal_reason"
                " FROM payments p JOIN terminals t ON t.key = p.terminal_key"
                " JOIN entries e ON e.terminal_key = p.terminal_key AND e.seq = p.seq"
                " WHERE p.ts_ms >= $1 AND p.ts_ms < $2 ORDER BY p.ts_ms, p.payment_id"
            )
        elif kind == "meter-readings":
            sql = (
                "SELECT t.terminal_id, m.seq, m.ts_ms, m.account, m.meter_id, m.value,"
                " m.reading_ts_ms FROM meter_readings m JOIN terminals t ON t.key = m.terminal_key"
                " WHERE m.ts_ms >= $1 AND m.ts_ms < $2 ORDER BY m.ts_ms, t.terminal_id, m.seq"
            )
        else:
            raise BadRequestError(f"unknown export kind {kind!r}")

        async def run(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            return [dict(row) for row in await conn.fetch(sql, from_ms, to_ms)]

        rows: list[dict[str, Any]] = await self._run(run)
        for row in rows:
            if "services" in row:
                row["services"] = json.loads(bytes(row["services"]))["body"].get("services") or []
        return rows

    async def alarms(self) -> list[Alarm]:
        async def run(conn: asyncpg.Connection) -> list[Alarm]:
            rows = await conn.fetch(
                "SELECT id, ts_ms, terminal_id, kind, detail, resolved_ms FROM alarms"
                " ORDER BY id DESC"
            )
            return [
                Alarm(
                    alarm_id=r[0],
                    ts_ms=r[1],
                    terminal_id=r[2],
                    kind=r[3],
                    detail=json.loads(r[4]),
                    resolved_ms=r[5],
                )
                for r in rows
            ]

        result: list[Alarm] = await self._run(run)
        return result

    async def audit_records(self) -> list[AuditRecord]:
        async def run(conn: asyncpg.Connection) -> list[AuditRecord]:
            rows = await conn.fetch(
                "SELECT ts_ms, actor, action, subject, detail FROM audit ORDER BY id"
            )
            return [
                AuditRecord(
                    ts_ms=r[0], actor=r[1], action=r[2], subject=r[3], detail=json.loads(r[4])
                )
                for r in rows
            ]

        result: list[AuditRecord] = await self._run(run)
        return result

    async def duplicates(self) -> list[dict[str, Any]]:
        async def run(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            rows = await conn.fetch(
                "SELECT t.terminal_id, d.seq, d.kind, d.payment_id, d.agent, d.txn_id, d.reason,"
                " d.existing_payment_id, d.received_ms FROM duplicates d"
                " JOIN terminals t ON t.key = d.terminal_key ORDER BY d.id"
            )
            return [dict(row) for row in rows]

        result: list[dict[str, Any]] = await self._run(run)
        return result

    async def counts(self) -> LedgerCounts:
        async def run(conn: asyncpg.Connection) -> LedgerCounts:
            row = await conn.fetchrow(
                "SELECT (SELECT COUNT(*) FROM terminals), (SELECT COUNT(*) FROM entries),"
                " (SELECT COUNT(*) FROM payments), (SELECT COUNT(*) FROM duplicates),"
                " (SELECT COUNT(*) FROM meter_readings), (SELECT COUNT(*) FROM alarms),"
                " (SELECT COUNT(*) FROM batches)"
            )
            assert row is not None
            return LedgerCounts(
                terminals=row[0],
                entries=row[1],
                payments=row[2],
                duplicates=row[3],
                meter_readings=row[4],
                alarms=row[5],
                batches=row[6],
            )

        result: LedgerCounts = await self._run(run)
        return result

    async def entry_hashes(self, terminal_id: str) -> list[tuple[int, bytes, bytes]]:
        async def run(conn: asyncpg.Connection) -> list[tuple[int, bytes, bytes]]:
            rows = await conn.fetch(
                "SELECT e.seq, e.hash, e.data FROM entries e JOIN terminals t"
                " ON t.key = e.terminal_key WHERE t.terminal_id = $1 ORDER BY e.seq",
                terminal_id,
            )
            return [(r[0], bytes(r[1]), bytes(r[2])) for r in rows]

        result: list[tuple[int, bytes, bytes]] = await self._run(run)
        return result

    async def audit(
        self, *, actor: str, action: str, subject: str, detail: Mapping[str, Any], now_ms: int
    ) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            await _audit(conn, now_ms, actor, action, subject, detail)

        await self._run(run, write=True)

    async def drop_schema(self) -> None:
        """Drop this storage's schema and everything in it (tests only)."""
        if not self.schema:
            raise StorageError("refusing to drop: this storage has no schema of its own")

        async def run(conn: asyncpg.Connection) -> None:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

        await self._run(run)
