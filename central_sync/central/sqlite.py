"""SQLite storage for the central ledger: the embedded default (one process).

Theory of operation: one connection lives in one dedicated thread (the standard
``sqlite3`` module; every call hops to that thread through a one-worker
executor). An asyncio lock admits one operation or ledger transaction at a time,
and each write transaction starts with ``BEGIN IMMEDIATE``, so there is exactly one
writer — also against another process opening the same file (it waits up to
``busy_timeout_s`` and then gets :class:`StorageUnavailableError`, retryable).
WAL mode with ``synchronous=FULL``: an ack promises the entries are durable, so
a commit must survive power loss before the ack is signed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

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
IN_CHUNK_MAX = 500  # host parameters per IN (...) list, well under SQLite's limit

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_ledger",
        """
        CREATE TABLE terminals (
            key INTEGER PRIMARY KEY,
            terminal_id TEXT NOT NULL UNIQUE,
            public_key BLOB NOT NULL,
            label TEXT NOT NULL,
            location TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('enrolled', 'revoked', 'quarantined')),
            state_reason TEXT,
            head_seq INTEGER NOT NULL DEFAULT 0 CHECK (head_seq >= 0),
            head_hash BLOB NOT NULL,
            enrolled_ms INTEGER NOT NULL,
            last_seen_ms INTEGER,
            queue_depth INTEGER,
            oldest_pending_age_s INTEGER,
            software_version TEXT,
            catalog_version INTEGER,
            config_version INTEGER,
            health TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE registration_codes (
            code_hash TEXT PRIMARY KEY,
            location TEXT NOT NULL,
            label TEXT,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            used_ms INTEGER,
            used_by TEXT
        );
        CREATE TABLE entries (
            terminal_key INTEGER NOT NULL REFERENCES terminals(key),
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            hash BLOB NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (terminal_key, seq)
        ) WITHOUT ROWID;
        CREATE TABLE payments (
            id INTEGER PRIMARY KEY,
            payment_id TEXT NOT NULL UNIQUE,
            terminal_key INTEGER NOT NULL REFERENCES terminals(key),
            seq INTEGER NOT NULL,
            ts_ms INTEGER NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            account TEXT NOT NULL,
            channel TEXT NOT NULL,
            agent TEXT,
            txn_id TEXT,
            surcharge_minor INTEGER NOT NULL DEFAULT 0,
            outcome TEXT,
            result_seq INTEGER,
            result_ts_ms INTEGER,
            auth_code TEXT,
            rrn TEXT,
            masked_pan TEXT,
            card_brand TEXT,
            offline INTEGER,
            reversed_seq INTEGER,
            reversal_reason TEXT
        );
        CREATE UNIQUE INDEX payments_agent_txn ON payments (agent, txn_id) WHERE agent IS NOT NULL;
        CREATE INDEX payments_ts ON payments (ts_ms);
        CREATE TABLE duplicates (
            id INTEGER PRIMARY KEY,
            terminal_key INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            agent TEXT,
            txn_id TEXT,
            reason TEXT NOT NULL,
            existing_payment_id TEXT,
            received_ms INTEGER NOT NULL
        );
        CREATE TABLE meter_readings (
            terminal_key INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            ts_ms INTEGER NOT NULL,
            account TEXT NOT NULL,
            meter_id TEXT NOT NULL,
            value INTEGER NOT NULL,
            reading_ts_ms INTEGER NOT NULL,
            PRIMARY KEY (terminal_key, seq)
        ) WITHOUT ROWID;
        CREATE INDEX meter_readings_ts ON meter_readings (ts_ms);
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY,
            terminal_key INTEGER NOT NULL,
            from_seq INTEGER NOT NULL,
            to_seq INTEGER NOT NULL,
            applied INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            wire_bytes INTEGER NOT NULL,
            received_ms INTEGER NOT NULL
        );
        CREATE TABLE alarms (
            id INTEGER PRIMARY KEY,
            ts_ms INTEGER NOT NULL,
            terminal_id TEXT,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            resolved_ms INTEGER
        );
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            ts_ms INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE TABLE publications (
            kind TEXT NOT NULL,
            scope TEXT NOT NULL,
            version INTEGER NOT NULL,
            data BLOB NOT NULL,
            created_ms INTEGER NOT NULL,
            PRIMARY KEY (kind, scope, version)
        );
        CREATE TABLE catalog_releases (
            version INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('snapshot', 'delta')),
            base_version INTEGER,
            data BLOB NOT NULL,
            created_ms INTEGER NOT NULL,
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


_SELECT_PAIRS = (
    "SELECT agent, txn_id, payment_id FROM payments WHERE (agent, txn_id) IN (VALUES {marks})"
)


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


def _chunks(items: Sequence[T], size: int = IN_CHUNK_MAX) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _audit(
    conn: sqlite3.Connection,
    now_ms: int,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO audit (ts_ms, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        (now_ms, actor, action, subject, json.dumps(detail, sort_keys=True)),
    )


class _SqliteLedgerTransaction(LedgerTransaction):
    def __init__(self, storage: SqliteStorage) -> None:
        self._storage = storage

    async def lock_terminal(self, terminal_id: str) -> TerminalRecord | None:
        # BEGIN IMMEDIATE already holds the database's write lock.
        return await self._storage._call(_get_terminal, terminal_id)

    async def stored_hashes(
        self, terminal_key: int, from_seq: int, to_seq: int
    ) -> dict[int, bytes]:
        def run(conn: sqlite3.Connection) -> dict[int, bytes]:
            rows = conn.execute(
                "SELECT seq, hash FROM entries WHERE terminal_key = ? AND seq BETWEEN ? AND ?",
                (terminal_key, from_seq, to_seq),
            )
            return {seq: bytes(digest) for seq, digest in rows}

        return await self._storage._call(run)

    async def apply(self, plan: ApplyPlan) -> list[DuplicateRow]:
        return await self._storage._call(_apply_plan, plan)

    async def quarantine(
        self,
        terminal_key: int,
        *,
        reason: str,
        alarm_kind: str,
        detail: Mapping[str, Any],
        now_ms: int,
    ) -> None:
        def run(conn: sqlite3.Connection) -> None:
            (terminal_id,) = conn.execute(
                "SELECT terminal_id FROM terminals WHERE key = ?", (terminal_key,)
            ).fetchone()
            conn.execute(
                "UPDATE terminals SET state = 'quarantined', state_reason = ? WHERE key = ?",
                (reason, terminal_key),
            )
            conn.execute(
                "INSERT INTO alarms (ts_ms, terminal_id, kind, detail) VALUES (?, ?, ?, ?)",
                (now_ms, terminal_id, alarm_kind, json.dumps(detail, sort_keys=True)),
            )
            _audit(conn, now_ms, "central", "quarantine", terminal_id, {"reason": reason, **detail})

        await self._storage._call(run)

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
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO batches (terminal_key, from_seq, to_seq, applied, outcome, wire_bytes,"
                " received_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (terminal_key, from_seq, to_seq, applied, outcome, wire_bytes, now_ms),
            )

        await self._storage._call(run)


def _get_terminal(conn: sqlite3.Connection, terminal_id: str) -> TerminalRecord | None:
    row = conn.execute(_SELECT_TERMINAL + " WHERE terminal_id = ?", (terminal_id,)).fetchone()
    return None if row is None else _terminal(row)


def _apply_plan(conn: sqlite3.Connection, plan: ApplyPlan) -> list[DuplicateRow]:
    """Insert one batch's rows (inside the caller's BEGIN IMMEDIATE transaction)."""
    tk = plan.terminal_key
    conn.executemany(
        "INSERT INTO entries (terminal_key, seq, kind, ts_ms, hash, data)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(tk, *row) for row in plan.entries],
    )
    duplicates = list(plan.duplicates)
    if plan.intents:
        ids = [intent.payment_id for intent in plan.intents]
        existing_ids: set[str] = set()
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            existing_ids.update(
                pid
                for (pid,) in conn.execute(
                    # Only "?" placeholders are formatted into the statement.
                    f"SELECT payment_id FROM payments WHERE payment_id IN ({marks})",  # noqa: S608
                    chunk,
                )
            )
        pairs: list[tuple[str, str | None]] = [
            (i.agent, i.txn_id) for i in plan.intents if i.agent is not None
        ]
        existing_pairs: dict[tuple[str, str], str] = {}
        for pair_chunk in _chunks(pairs, IN_CHUNK_MAX // 2):
            marks = ",".join("(?, ?)" for _ in pair_chunk)
            flat = [value for pair in pair_chunk for value in pair]
            for agent, txn_id, pid in conn.execute(
                _SELECT_PAIRS.format(marks=marks),
                flat,
            ):
                existing_pairs[(agent, txn_id)] = pid
        rows = []
        for intent in plan.intents:
            reason = existing = None
            if intent.payment_id in existing_ids:
                reason, existing = "payment_id", intent.payment_id
            elif intent.agent is not None and (intent.agent, intent.txn_id) in existing_pairs:
                reason = "agent_txn_id"
                existing = existing_pairs[(intent.agent, intent.txn_id)]  # type: ignore[index]
            if reason is not None:
                duplicates.append(
                    DuplicateRow(
                        intent.seq,
                        "payment-intent",
                        intent.payment_id,
                        intent.agent,
                        intent.txn_id,
                        reason,
                        existing,
                    )
                )
                if intent.result is not None:
                    duplicates.append(
                        DuplicateRow(
                            intent.result.seq,
                            "payment-result",
                            intent.payment_id,
                            intent.agent,
                            intent.txn_id,
                            reason,
                            existing,
                        )
                    )
                continue
            r = intent.result
            rows.append(
                (
                    intent.payment_id,
                    tk,
                    intent.seq,
                    intent.ts_ms,
                    intent.amount_minor,
                    intent.currency,
                    intent.account,
                    intent.channel,
                    intent.agent,
                    intent.txn_id,
                    intent.surcharge_minor,
                    None if r is None else r.outcome,
                    None if r is None else r.seq,
                    None if r is None else r.ts_ms,
                    None if r is None else r.auth_code,
                    None if r is None else r.rrn,
                    None if r is None else r.masked_pan,
                    None if r is None else r.card_brand,
                    None if r is None else int(r.offline),
                )
            )
        conn.executemany(
            "INSERT INTO payments (payment_id, terminal_key, seq, ts_ms, amount_minor, currency,"
            " account, channel, agent, txn_id, surcharge_minor, outcome, result_seq,"
            " result_ts_ms, auth_code, rrn, masked_pan, card_brand, offline)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    for result in plan.results:
        cursor = conn.execute(
            "UPDATE payments SET outcome = ?, result_seq = ?, result_ts_ms = ?, auth_code = ?,"
            " rrn = ?, masked_pan = ?, card_brand = ?, offline = ?"
            " WHERE payment_id = ? AND terminal_key = ? AND outcome IS NULL",
            (
                result.outcome,
                result.seq,
                result.ts_ms,
                result.auth_code,
                result.rrn,
                result.masked_pan,
                result.card_brand,
                int(result.offline),
                result.payment_id,
                tk,
            ),
        )
        if cursor.rowcount != 1:
            duplicates.append(_orphan(conn, tk, result.seq, "payment-result", result.payment_id))
    for reversal in plan.reversals:
        cursor = conn.execute(
            "UPDATE payments SET reversed_seq = ?, reversal_reason = ?"
            " WHERE payment_id = ? AND terminal_key = ? AND reversed_seq IS NULL",
            (reversal.seq, reversal.reason, reversal.payment_id, tk),
        )
        if cursor.rowcount != 1:
            duplicates.append(_orphan(conn, tk, reversal.seq, "reversal", reversal.payment_id))
    if plan.meter_readings:
        conn.executemany(
            "INSERT INTO meter_readings (terminal_key, seq, ts_ms, account, meter_id, value,"
            " reading_ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(tk, *row) for row in plan.meter_readings],
        )
    if duplicates:
        conn.executemany(
            "INSERT INTO duplicates (terminal_key, seq, kind, payment_id, agent, txn_id, reason,"
            " existing_payment_id, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(tk, *row, plan.now_ms) for row in duplicates],
        )
    conn.execute(
        "UPDATE terminals SET head_seq = ?, head_hash = ?, last_seen_ms = ? WHERE key = ?",
        (plan.head_seq, plan.head_hash, plan.now_ms, tk),
    )
    conn.execute(
        "INSERT INTO batches (terminal_key, from_seq, to_seq, applied, outcome, wire_bytes,"
        " received_ms) VALUES (?, ?, ?, ?, 'applied', ?, ?)",
        (tk, plan.from_seq, plan.head_seq, len(plan.entries), plan.wire_bytes, plan.now_ms),
    )
    return duplicates


def _orphan(
    conn: sqlite3.Connection, tk: int, seq: int, kind: str, payment_id: str
) -> DuplicateRow:
    row = conn.execute(
        "SELECT terminal_key, outcome, agent, txn_id FROM payments WHERE payment_id = ?",
        (payment_id,),
    ).fetchone()
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


class SqliteStorage(Storage):
    """The ledger in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = str(path)
        self.url = "sqlite://:memory:" if self.path == ":memory:" else f"sqlite:///{self.path}"
        self.busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    # -- plumbing ----------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in the database thread, mapping sqlite errors."""
        if self._executor is None or self._conn is None:
            raise StorageError("the storage is not open")
        conn = self._conn
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, conn, *args))
        except sqlite3.OperationalError as exc:
            raise StorageUnavailableError(f"sqlite: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"sqlite: {exc}") from exc

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in one write transaction (BEGIN IMMEDIATE ... COMMIT)."""

        def run(conn: sqlite3.Connection, *inner: Any) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *inner)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        async with self._lock:
            return await self._call(run, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            return await self._call(fn, *args)

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

    # -- migrations ----------------------------------------------------------------

    async def applied_migrations(self) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (name TEXT PRIMARY KEY, applied_ms INTEGER NOT NULL)"
            )
            return [
                name for (name,) in conn.execute("SELECT name FROM schema_migrations ORDER BY name")
            ]

        return await self._read(run)

    async def migrate(self) -> list[str]:
        applied = await self.applied_migrations()
        known = [name for name, _ in MIGRATIONS]
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise MigrationError(f"database has migrations this software does not know: {unknown}")
        done: list[str] = []
        for name, script in MIGRATIONS:
            if name in applied:
                continue

            def run(conn: sqlite3.Connection, name: str = name, script: str = script) -> None:
                # executescript would COMMIT first; run statement by statement instead,
                # inside our own transaction, so a migration applies whole or not at all.
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (name, applied_ms) VALUES (?, ?)",
                    (name, int(time.time() * 1000)),
                )

            await self._write(run)
            done.append(name)
        return done

    # -- ingest --------------------------------------------------------------------

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

    # -- terminals -----------------------------------------------------------------

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
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO registration_codes (code_hash, location, label, created_ms,"
                    " expires_ms) VALUES (?, ?, ?, ?, ?)",
                    (code_hash, location, label, created_ms, expires_ms),
                )
            except sqlite3.IntegrityError:
                raise ConflictError("that registration code exists already") from None
            _audit(
                conn,
                created_ms,
                actor,
                "registration-code",
                location,
                {"expires_ms": expires_ms, "label": label},
            )

        await self._write(run)

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
        def run(conn: sqlite3.Connection) -> TerminalRecord:
            code = conn.execute(
                "SELECT location, expires_ms, used_by FROM registration_codes WHERE code_hash = ?",
                (code_hash,),
            ).fetchone()
            existing = _get_terminal(conn, terminal_id)
            if code is None:
                raise RegistrationCodeError("unknown registration code")
            code_location, expires_ms, used_by = code
            if used_by is not None:
                if (
                    used_by == terminal_id
                    and existing is not None
                    and existing.public_key == public_key
                ):
                    return existing  # the same request again: already done
                raise RegistrationCodeError("registration code already used")
            if expires_ms <= now_ms:
                raise RegistrationCodeError("registration code expired")
            if code_location != location:
                raise RegistrationCodeError("registration code is for another location")
            if existing is not None:
                raise ConflictError(
                    f"terminal {terminal_id} is already enrolled ({existing.state})"
                )
            conn.execute(
                "UPDATE registration_codes SET used_ms = ?, used_by = ? WHERE code_hash = ?",
                (now_ms, terminal_id, code_hash),
            )
            conn.execute(
                "INSERT INTO terminals (terminal_id, public_key, label, location, state, head_seq,"
                " head_hash, enrolled_ms) VALUES (?, ?, ?, ?, 'enrolled', 0, ?, ?)",
                (terminal_id, public_key, label, location, GENESIS_HASH, now_ms),
            )
            _audit(
                conn,
                now_ms,
                "terminal",
                "enroll",
                terminal_id,
                {"location": location, "label": label},
            )
            record = _get_terminal(conn, terminal_id)
            assert record is not None
            return record

        return await self._write(run)

    async def get_terminal(self, terminal_id: str) -> TerminalRecord | None:
        return await self._read(_get_terminal, terminal_id)

    async def list_terminals(self) -> list[TerminalRecord]:
        def run(conn: sqlite3.Connection) -> list[TerminalRecord]:
            rows = conn.execute(_SELECT_TERMINAL + " ORDER BY terminal_id")
            return [_terminal(row) for row in rows]

        return await self._read(run)

    async def set_terminal_state(
        self, terminal_id: str, state: TerminalState, *, reason: str, actor: str, now_ms: int
    ) -> TerminalRecord:
        def run(conn: sqlite3.Connection) -> TerminalRecord:
            cursor = conn.execute(
                "UPDATE terminals SET state = ?, state_reason = ? WHERE terminal_id = ?",
                (state.value, reason, terminal_id),
            )
            if cursor.rowcount != 1:
                raise NotFoundError(f"no terminal {terminal_id}")
            _audit(conn, now_ms, actor, f"state:{state.value}", terminal_id, {"reason": reason})
            record = _get_terminal(conn, terminal_id)
            assert record is not None
            return record

        return await self._write(run)

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
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE terminals SET last_seen_ms = ?, queue_depth = ?, oldest_pending_age_s = ?,"
                " software_version = ?, catalog_version = ?, config_version = ?, health = ?"
                " WHERE terminal_id = ?",
                (
                    now_ms,
                    queue_depth,
                    oldest_pending_age_s,
                    software_version,
                    catalog_version,
                    config_version,
                    json.dumps(dict(health), sort_keys=True),
                    terminal_id,
                ),
            )

        await self._write(run)

    # -- publications ----------------------------------------------------------------

    async def put_publication(
        self, *, kind: str, scope: str, version: int, data: bytes, now_ms: int
    ) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO publications (kind, scope, version, data, created_ms)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (kind, scope, version, data, now_ms),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"{kind} {scope} version {version} exists already") from None
            _audit(conn, now_ms, "central", f"publish:{kind}", scope, {"version": version})

        await self._write(run)

    async def latest_publication(self, *, kind: str, scope: str) -> tuple[int, bytes] | None:
        def run(conn: sqlite3.Connection) -> tuple[int, bytes] | None:
            row = conn.execute(
                "SELECT version, data FROM publications WHERE kind = ? AND scope = ?"
                " ORDER BY version DESC LIMIT 1",
                (kind, scope),
            ).fetchone()
            return None if row is None else (row[0], bytes(row[1]))

        return await self._read(run)

    async def put_catalog_release(
        self, *, version: int, kind: str, base_version: int | None, data: bytes, now_ms: int
    ) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO catalog_releases (version, kind, base_version, data, created_ms)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (version, kind, base_version, data, now_ms),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"catalog {kind} version {version} exists already") from None
            _audit(
                conn,
                now_ms,
                "central",
                f"catalog:{kind}",
                str(version),
                {"base_version": base_version, "bytes": len(data)},
            )

        await self._write(run)

    async def catalog_release_for(self, since: int) -> tuple[int, str, bytes] | None:
        def run(conn: sqlite3.Connection) -> tuple[int, str, bytes] | None:
            latest = conn.execute("SELECT MAX(version) FROM catalog_releases").fetchone()[0]
            if latest is None or latest <= since:
                return None
            row = conn.execute(
                "SELECT version, kind, data FROM catalog_releases"
                " WHERE kind = 'delta' AND base_version = ? ORDER BY version DESC LIMIT 1",
                (since,),
            ).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT version, kind, data FROM catalog_releases WHERE kind = 'snapshot'"
                    " ORDER BY version DESC LIMIT 1"
                ).fetchone()
            return None if row is None else (row[0], row[1], bytes(row[2]))

        return await self._read(run)

    async def latest_catalog_version(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            value = conn.execute("SELECT MAX(version) FROM catalog_releases").fetchone()[0]
            return 0 if value is None else int(value)

        return await self._read(run)

    # -- reading -----------------------------------------------------------------------

    async def export_rows(self, kind: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
        if kind == "payments":
            sql = (
                "SELECT p.payment_id, t.terminal_id, p.seq, p.ts_ms, p.amount_minor, p.currency,"
                " p.account, p.channel, p.agent, p.txn_id, p.surcharge_minor, e.data AS services,"
                " p.outcome, p.auth_code, p.rrn, p.masked_pan, p.card_brand, p.offline,"
                " p.reversed_seq IS NOT NULL AS reversed, p.reversal_reason"
                " FROM payments p JOIN terminals t ON t.key = p.terminal_key"
                " JOIN entries e ON e.terminal_key = p.terminal_key AND e.seq = p.seq"
                " WHERE p.ts_ms >= ? AND p.ts_ms < ? ORDER BY p.ts_ms, p.payment_id"
            )
        elif kind == "meter-readings":
            sql = (
                "SELECT t.terminal_id, m.seq, m.ts_ms, m.account, m.meter_id, m.value,"
                " m.reading_ts_ms FROM meter_readings m JOIN terminals t ON t.key = m.terminal_key"
                " WHERE m.ts_ms >= ? AND m.ts_ms < ? ORDER BY m.ts_ms, t.terminal_id, m.seq"
            )
        else:
            raise BadRequestError(f"unknown export kind {kind!r}")

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cursor = conn.execute(sql, (from_ms, to_ms))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

        rows = await self._read(run)
        for row in rows:
            if "offline" in row:
                row["offline"] = None if row["offline"] is None else bool(row["offline"])
                row["reversed"] = bool(row["reversed"])
                row["services"] = json.loads(row["services"])["body"].get("services") or []
        return rows

    async def alarms(self) -> list[Alarm]:
        def run(conn: sqlite3.Connection) -> list[Alarm]:
            rows = conn.execute(
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

        return await self._read(run)

    async def audit_records(self) -> list[AuditRecord]:
        def run(conn: sqlite3.Connection) -> list[AuditRecord]:
            rows = conn.execute(
                "SELECT ts_ms, actor, action, subject, detail FROM audit ORDER BY id"
            )
            return [
                AuditRecord(
                    ts_ms=r[0], actor=r[1], action=r[2], subject=r[3], detail=json.loads(r[4])
                )
                for r in rows
            ]

        return await self._read(run)

    async def duplicates(self) -> list[dict[str, Any]]:
        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cursor = conn.execute(
                "SELECT t.terminal_id, d.seq, d.kind, d.payment_id, d.agent, d.txn_id, d.reason,"
                " d.existing_payment_id, d.received_ms FROM duplicates d"
                " JOIN terminals t ON t.key = d.terminal_key ORDER BY d.id"
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

        return await self._read(run)

    async def counts(self) -> LedgerCounts:
        def run(conn: sqlite3.Connection) -> LedgerCounts:
            def n(table: str) -> int:
                return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

            return LedgerCounts(
                terminals=n("terminals"),
                entries=n("entries"),
                payments=n("payments"),
                duplicates=n("duplicates"),
                meter_readings=n("meter_readings"),
                alarms=n("alarms"),
                batches=n("batches"),
            )

        return await self._read(run)

    async def entry_hashes(self, terminal_id: str) -> list[tuple[int, bytes, bytes]]:
        def run(conn: sqlite3.Connection) -> list[tuple[int, bytes, bytes]]:
            rows = conn.execute(
                "SELECT e.seq, e.hash, e.data FROM entries e JOIN terminals t"
                " ON t.key = e.terminal_key WHERE t.terminal_id = ? ORDER BY e.seq",
                (terminal_id,),
            )
            return [(seq, bytes(h), bytes(d)) for seq, h, d in rows]

        return await self._read(run)

    async def audit(
        self, *, actor: str, action: str, subject: str, detail: Mapping[str, Any], now_ms: int
    ) -> None:
        await self._write(_audit, now_ms, actor, action, subject, detail)
