"""The SQL both ledger backends share (DESIGN.md, "The central ledger service").

Theory of operation
-------------------
SQLite (``sqlite.py``) and PostgreSQL (``postgres.py``) hold the same tables and
answer the same questions. What differs is the dialect (column types, the
placeholder style, row locks, the fastest bulk insert) and how a connection, a
transaction and a lock are had. So everything else is written once, here:

* :func:`ledger_migrations` renders the one schema for a backend's :class:`Dialect`;
  :func:`pending_migrations` decides what a database still needs.
* A backend wraps its connection in a :class:`SqlConnection`: run a statement,
  fetch rows, and the few bulk operations whose best form differs by dialect
  (``executemany`` against ``COPY`` and ``unnest``). Statements here use ``?``
  placeholders; the PostgreSQL connection numbers them.
* :class:`SqlStorage` implements every :class:`Storage` method as an operation
  on a connection; the backend runs it with :meth:`SqlStorage._write` (one write
  transaction) or :meth:`SqlStorage._read`.
* :class:`SqlLedgerTransaction` implements the ingest steps, and
  :func:`apply_plan` makes every deduplication decision: new payments go in
  under the unique constraints on ``payment_id`` and ``(agent, txn_id)``
  (:meth:`SqlConnection.insert_payments` reports which a constraint refused, so
  two workers racing on one payment are decided by the database), and whatever
  was refused — or a result or reversal that updated nothing — is classified
  (:func:`classify_refused_payments`, :func:`classify_unapplied`) and recorded
  in ``duplicates`` instead of being applied.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from central_sync.central.errors import (
    BadRequestError,
    ConflictError,
    MigrationError,
    NotFoundError,
    RegistrationCodeError,
    TerminalStateError,
)
from central_sync.central.storage import (
    Alarm,
    ApplyPlan,
    AuditRecord,
    DuplicateRow,
    EntryRow,
    LedgerCounts,
    LedgerTransaction,
    MeterRow,
    PaymentRow,
    ResultRow,
    RetiredKey,
    ReversalRow,
    Storage,
    TerminalRecord,
    TerminalState,
)

T = TypeVar("T")

GENESIS_HASH = bytes(32)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialect:
    """What the two backends spell differently in the schema and in row locking."""

    name: str
    serial_key: str
    """An auto-numbered integer primary key."""
    integer: str
    """A 64-bit integer column."""
    blob: str
    boolean: str
    clustered: str
    """Table option for tables kept in primary-key order ('' where that is the only way)."""
    row_lock: str
    """Suffix of a SELECT that locks the rows it reads until commit ('' if the
    transaction already holds the whole database)."""


# The ledger's schema in both dialects. Later changes are NEW named migrations
# appended to the tuple in ledger_migrations(), never edits of an applied one.
_LEDGER_0001 = """
        CREATE TABLE terminals (
            key {serial_key},
            terminal_id TEXT NOT NULL UNIQUE,
            public_key {blob} NOT NULL,
            label TEXT NOT NULL,
            location TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('enrolled', 'revoked', 'quarantined')),
            state_reason TEXT,
            head_seq {integer} NOT NULL DEFAULT 0 CHECK (head_seq >= 0),
            head_hash {blob} NOT NULL,
            enrolled_ms {integer} NOT NULL,
            last_seen_ms {integer},
            queue_depth {integer},
            oldest_pending_age_s {integer},
            software_version TEXT,
            catalog_version {integer},
            config_version {integer},
            health TEXT NOT NULL DEFAULT '{{}}'
        );
        CREATE TABLE registration_codes (
            code_hash TEXT PRIMARY KEY,
            location TEXT NOT NULL,
            label TEXT,
            created_ms {integer} NOT NULL,
            expires_ms {integer} NOT NULL,
            used_ms {integer},
            used_by TEXT
        );
        CREATE TABLE entries (
            terminal_key {integer} NOT NULL REFERENCES terminals(key),
            seq {integer} NOT NULL,
            kind TEXT NOT NULL,
            ts_ms {integer} NOT NULL,
            hash {blob} NOT NULL,
            data {blob} NOT NULL,
            PRIMARY KEY (terminal_key, seq)
        ){clustered};
        CREATE TABLE payments (
            id {serial_key},
            payment_id TEXT NOT NULL UNIQUE,
            terminal_key {integer} NOT NULL REFERENCES terminals(key),
            seq {integer} NOT NULL,
            ts_ms {integer} NOT NULL,
            amount_minor {integer} NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            account TEXT NOT NULL,
            channel TEXT NOT NULL,
            agent TEXT,
            txn_id TEXT,
            surcharge_minor {integer} NOT NULL DEFAULT 0,
            outcome TEXT,
            result_seq {integer},
            result_ts_ms {integer},
            auth_code TEXT,
            rrn TEXT,
            masked_pan TEXT,
            card_brand TEXT,
            offline {boolean},
            reversed_seq {integer},
            reversal_reason TEXT
        );
        CREATE UNIQUE INDEX payments_agent_txn ON payments (agent, txn_id) WHERE agent IS NOT NULL;
        CREATE INDEX payments_ts ON payments (ts_ms);
        CREATE TABLE duplicates (
            id {serial_key},
            terminal_key {integer} NOT NULL,
            seq {integer} NOT NULL,
            kind TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            agent TEXT,
            txn_id TEXT,
            reason TEXT NOT NULL,
            existing_payment_id TEXT,
            received_ms {integer} NOT NULL
        );
        CREATE TABLE meter_readings (
            terminal_key {integer} NOT NULL,
            seq {integer} NOT NULL,
            ts_ms {integer} NOT NULL,
            account TEXT NOT NULL,
            meter_id TEXT NOT NULL,
            value {integer} NOT NULL,
            reading_ts_ms {integer} NOT NULL,
            PRIMARY KEY (terminal_key, seq)
        ){clustered};
        CREATE INDEX meter_readings_ts ON meter_readings (ts_ms);
        CREATE TABLE batches (
            id {serial_key},
            terminal_key {integer} NOT NULL,
            from_seq {integer} NOT NULL,
            to_seq {integer} NOT NULL,
            applied {integer} NOT NULL,
            outcome TEXT NOT NULL,
            wire_bytes {integer} NOT NULL,
            received_ms {integer} NOT NULL
        );
        CREATE TABLE alarms (
            id {serial_key},
            ts_ms {integer} NOT NULL,
            terminal_id TEXT,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            resolved_ms {integer}
        );
        CREATE TABLE audit (
            id {serial_key},
            ts_ms {integer} NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE TABLE publications (
            kind TEXT NOT NULL,
            scope TEXT NOT NULL,
            version {integer} NOT NULL,
            data {blob} NOT NULL,
            created_ms {integer} NOT NULL,
            PRIMARY KEY (kind, scope, version)
        );
        CREATE TABLE catalog_releases (
            version {integer} NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('snapshot', 'delta')),
            base_version {integer},
            data {blob} NOT NULL,
            created_ms {integer} NOT NULL,
            PRIMARY KEY (version, kind)
        );
        """

# The operator console's users, sessions and login attempts (central_sync/console/).
# Only a password's scrypt hash and a session id's SHA-256 are stored.
_CONSOLE_0002 = """
        CREATE TABLE console_users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'auditor')),
            password_hash TEXT NOT NULL,
            created_ms {integer} NOT NULL,
            password_changed_ms {integer} NOT NULL,
            disabled_ms {integer}
        );
        CREATE TABLE console_sessions (
            id_hash TEXT PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES console_users(name),
            csrf_token TEXT NOT NULL,
            created_ms {integer} NOT NULL,
            last_seen_ms {integer} NOT NULL,
            expires_ms {integer} NOT NULL
        );
        CREATE INDEX console_sessions_user ON console_sessions (user_name);
        CREATE TABLE console_login_attempts (
            id {serial_key},
            ts_ms {integer} NOT NULL,
            user_name TEXT NOT NULL,
            remote TEXT NOT NULL,
            ok {boolean} NOT NULL
        );
        CREATE INDEX console_login_attempts_user ON console_login_attempts (user_name, ts_ms);
        CREATE INDEX console_login_attempts_remote ON console_login_attempts (remote, ts_ms);
        CREATE INDEX batches_terminal ON batches (terminal_key, id);
        """

# Keys replaced by `lobbypay rekey`: the terminal's record keeps its key (row id),
# chain and payments under the new id; the old id can never be enrolled again.
_TERMINAL_KEYS_0003 = """
        CREATE TABLE terminal_keys (
            terminal_id TEXT PRIMARY KEY,
            terminal_key {integer} NOT NULL REFERENCES terminals(key),
            public_key {blob} NOT NULL,
            retired_ms {integer} NOT NULL,
            successor_id TEXT NOT NULL
        );
        CREATE INDEX terminal_keys_terminal ON terminal_keys (terminal_key);
        """

_SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (name TEXT PRIMARY KEY, applied_ms {integer} NOT NULL)"
)


def ledger_migrations(dialect: Dialect) -> tuple[tuple[str, str], ...]:
    """The named migrations of the ledger, in order, as ``dialect`` spells them."""
    types = {
        "serial_key": dialect.serial_key,
        "integer": dialect.integer,
        "blob": dialect.blob,
        "boolean": dialect.boolean,
        "clustered": dialect.clustered,
    }
    return (
        ("0001_ledger", _LEDGER_0001.format(**types)),
        ("0002_console", _CONSOLE_0002.format(**types)),
        ("0003_terminal_keys", _TERMINAL_KEYS_0003.format(**types)),
    )


def pending_migrations(
    applied: Sequence[str], migrations: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The migrations not yet applied, in order; MigrationError if the database is newer."""
    known = {name for name, _ in migrations}
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise MigrationError(f"database has migrations this software does not know: {unknown}")
    return [(name, script) for name, script in migrations if name not in applied]


# --- rows and records ------------------------------------------------------------------

# Column names of the tables the ingest writes: the rows' fields, in table order.
ENTRY_COLUMNS: tuple[str, ...] = EntryRow._fields
PAYMENT_COLUMNS: tuple[str, ...] = PaymentRow._fields
METER_COLUMNS: tuple[str, ...] = MeterRow._fields
DUPLICATE_COLUMNS: tuple[str, ...] = ("terminal_key", *DuplicateRow._fields, "received_ms")

_TERMINAL_COLUMNS = (
    "key, terminal_id, public_key, label, location, state, state_reason, head_seq,"
    " head_hash, enrolled_ms, last_seen_ms, queue_depth, oldest_pending_age_s,"
    " software_version, catalog_version, config_version, health"
)

_EXPORTS: Mapping[str, tuple[tuple[tuple[str, str], ...], str]] = {
    # kind: ((column name, SQL expression), ...), FROM ... WHERE ... ORDER BY
    "payments": (
        (
            ("payment_id", "p.payment_id"),
            ("terminal_id", "t.terminal_id"),
            ("seq", "p.seq"),
            ("ts_ms", "p.ts_ms"),
            ("amount_minor", "p.amount_minor"),
            ("currency", "p.currency"),
            ("account", "p.account"),
            ("channel", "p.channel"),
            ("agent", "p.agent"),
            ("txn_id", "p.txn_id"),
            ("surcharge_minor", "p.surcharge_minor"),
            # Central does not copy services into payments on the ingest path;
            # they are read from the intent entry's stored bytes.
            ("services", "e.data"),
            ("outcome", "p.outcome"),
            ("auth_code", "p.auth_code"),
            ("rrn", "p.rrn"),
            ("masked_pan", "p.masked_pan"),
            ("card_brand", "p.card_brand"),
            ("offline", "p.offline"),
            ("reversed", "p.reversed_seq IS NOT NULL"),
            ("reversal_reason", "p.reversal_reason"),
        ),
        " FROM payments p JOIN terminals t ON t.key = p.terminal_key"
        " JOIN entries e ON e.terminal_key = p.terminal_key AND e.seq = p.seq"
        " WHERE p.ts_ms >= ? AND p.ts_ms < ? ORDER BY p.ts_ms, p.payment_id",
    ),
    "meter-readings": (
        (
            ("terminal_id", "t.terminal_id"),
            ("seq", "m.seq"),
            ("ts_ms", "m.ts_ms"),
            ("account", "m.account"),
            ("meter_id", "m.meter_id"),
            ("value", "m.value"),
            ("reading_ts_ms", "m.reading_ts_ms"),
        ),
        " FROM meter_readings m JOIN terminals t ON t.key = m.terminal_key"
        " WHERE m.ts_ms >= ? AND m.ts_ms < ? ORDER BY m.ts_ms, t.terminal_id, m.seq",
    ),
}

# LedgerCounts' fields are the tables it counts.
_COUNTED = tuple(LedgerCounts.__dataclass_fields__)
_SELECT_COUNTS = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in _COUNTED)  # noqa: S608

_SELECT_RETIRED = "SELECT retired_ms FROM terminal_keys WHERE terminal_id = ?"

_SELECT_CODE = "SELECT location, expires_ms, used_by FROM registration_codes WHERE code_hash = ?"

# duplicates() answers the terminal's id where the table holds its key.
_DUPLICATE_EXPORT = ("terminal_id", *DUPLICATE_COLUMNS[1:])
_SELECT_DUPLICATES = (
    "SELECT t.terminal_id, "  # noqa: S608 (only our own column names are formatted)
    + ", ".join(f"d.{name}" for name in DUPLICATE_COLUMNS[1:])
    + " FROM duplicates d JOIN terminals t ON t.key = d.terminal_key ORDER BY d.id"
)


def terminal_record(row: Sequence[Any]) -> TerminalRecord:
    """A terminals row (selected as in :func:`select_terminal`) as a record."""
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


def _json(detail: Mapping[str, Any]) -> str:
    return json.dumps(dict(detail), sort_keys=True)


def _export_row(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(names, row, strict=True))
    if "services" in out:
        # SQLite keeps booleans as 0/1; both backends answer bool or None.
        out["offline"] = None if out["offline"] is None else bool(out["offline"])
        out["reversed"] = bool(out["reversed"])
        out["services"] = json.loads(bytes(out["services"]))["body"].get("services") or []
    return out


# --- what a backend provides --------------------------------------------------------------


class StoredPayment(NamedTuple):
    """What dedup decisions need to know of a payment already in the ledger."""

    payment_id: str
    terminal_key: int
    seq: int
    agent: str | None
    txn_id: str | None


class SqlConnection(abc.ABC):
    """One connection of a backend, inside the transaction its storage opened.

    Statements take ``?`` placeholders. Reads answer sequences of rows indexable
    by column position.
    """

    dialect: Dialect

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it inserted, updated or deleted."""

    @abc.abstractmethod
    async def execute_script(self, script: str) -> None:
        """Run several ``;``-separated statements without parameters (a migration)."""

    @abc.abstractmethod
    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        """Every row of a query."""

    async def fetchrow(self, sql: str, *args: Any) -> Sequence[Any] | None:
        """The first row of a query, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    @abc.abstractmethod
    async def lock_schema(self) -> None:
        """Keep other workers from migrating until this transaction ends."""

    @abc.abstractmethod
    async def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows (tuples in ``columns`` order) that no constraint refuses."""

    @abc.abstractmethod
    async def insert_payments(self, rows: Sequence[PaymentRow]) -> set[str]:
        """Insert the payments no unique constraint refuses; the payment ids refused."""

    @abc.abstractmethod
    async def update_results(self, terminal_key: int, results: Sequence[ResultRow]) -> set[str]:
        """Set each result on its payment of this terminal that has none yet.

        The payment ids are distinct. Returns the payment ids updated.
        """

    @abc.abstractmethod
    async def update_reversals(
        self, terminal_key: int, reversals: Sequence[ReversalRow]
    ) -> set[str]:
        """Mark each payment of this terminal reversed unless it is already; ids distinct.

        Returns the payment ids updated.
        """

    @abc.abstractmethod
    async def payments_by_id(self, payment_ids: Sequence[str]) -> list[StoredPayment]:
        """The stored payments with these ids (in no particular order)."""

    @abc.abstractmethod
    async def payment_ids_by_pair(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """(agent, txn_id) -> payment_id of the stored payments with these pairs."""


Operation = Callable[[SqlConnection], Coroutine[Any, Any, T]]


# --- operations on a connection -----------------------------------------------------------


async def select_terminal(
    conn: SqlConnection, terminal_id: str, *, lock: bool = False
) -> TerminalRecord | None:
    """The terminal's record; with ``lock``, its row is held until commit."""
    sql = f"SELECT {_TERMINAL_COLUMNS} FROM terminals WHERE terminal_id = ?"  # noqa: S608
    row = await conn.fetchrow(sql + (conn.dialect.row_lock if lock else ""), terminal_id)
    return None if row is None else terminal_record(row)


async def insert_audit(
    conn: SqlConnection,
    now_ms: int,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO audit (ts_ms, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        now_ms,
        actor,
        action,
        subject,
        _json(detail),
    )


_INSERT_BATCH = (
    "INSERT INTO batches (terminal_key, from_seq, to_seq, applied, outcome, wire_bytes,"
    " received_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


async def insert_new(conn: SqlConnection, sql: str, *args: Any, conflict: str) -> None:
    """Run an INSERT that must add its row; ConflictError(``conflict``) if a key holds it.

    ``ON CONFLICT DO NOTHING`` rather than catching the error: in PostgreSQL a
    failed statement would abort the whole transaction.
    """
    if not await conn.execute(sql + " ON CONFLICT DO NOTHING", *args):
        raise ConflictError(conflict)


def classify_refused_payments(
    refused: Sequence[PaymentRow],
    stored: Sequence[StoredPayment],
    pairs: Mapping[tuple[str, str], str],
) -> list[DuplicateRow]:
    """Why each refused payment was a duplicate, with its merged result, in seq order.

    ``stored`` are the payments already held with a refused payment's id;
    ``pairs`` the payment ids already held for the refused (agent, txn_id)s.
    A refused payment whose id is not held was refused by the (agent, txn_id)
    constraint.
    """
    held_ids = {payment.payment_id for payment in stored}
    out: list[DuplicateRow] = []
    for row in sorted(refused, key=lambda r: r.seq):
        existing: str | None
        if row.payment_id in held_ids:
            reason, existing = "payment_id", row.payment_id
        else:
            pair = None if row.agent is None or row.txn_id is None else (row.agent, row.txn_id)
            reason, existing = "agent_txn_id", None if pair is None else pairs.get(pair)
        out.append(
            DuplicateRow(
                row.seq, "payment-intent", row.payment_id, row.agent, row.txn_id, reason, existing
            )
        )
        if row.result_seq is not None:
            out.append(
                DuplicateRow(
                    row.result_seq,
                    "payment-result",
                    row.payment_id,
                    row.agent,
                    row.txn_id,
                    reason,
                    existing,
                )
            )
    return out


def classify_unapplied(
    terminal_key: int, kind: str, seq: int, payment_id: str, stored: StoredPayment | None
) -> DuplicateRow:
    """A result or reversal that updated no payment, and why.

    No such payment: 'no-intent' (its intent was itself a duplicate, or never
    sent); a payment of another terminal: 'foreign-payment'; this terminal's
    payment that already has its result or reversal: 'result-exists' or
    'reversal-exists'.
    """
    if stored is None:
        return DuplicateRow(seq, kind, payment_id, None, None, "no-intent", None)
    if stored.terminal_key != terminal_key:
        reason = "foreign-payment"
    else:
        reason = "reversal-exists" if kind == "reversal" else "result-exists"
    return DuplicateRow(seq, kind, payment_id, stored.agent, stored.txn_id, reason, payment_id)


def split_first_per_payment(
    rows: Sequence[ResultRow] | Sequence[ReversalRow],
) -> list[Any]:
    """The first row for each payment id, in order (a later one cannot apply after it)."""
    seen: set[str] = set()
    first = []
    for row in rows:
        if row.payment_id not in seen:
            seen.add(row.payment_id)
            first.append(row)
    return first


def _unapplied(
    rows: Sequence[ResultRow] | Sequence[ReversalRow], updated: set[str]
) -> list[tuple[int, str]]:
    """(seq, payment_id) of the rows that did not update their payment, in order."""
    applied: set[str] = set()
    out: list[tuple[int, str]] = []
    for row in rows:
        if row.payment_id in updated and row.payment_id not in applied:
            applied.add(row.payment_id)  # the first row for the payment is the one applied
        else:
            out.append((row.seq, row.payment_id))
    return out


async def apply_plan(conn: SqlConnection, plan: ApplyPlan) -> list[DuplicateRow]:
    """Insert one batch's rows and move the head (inside the caller's transaction).

    Returns every duplicate: the plan's own (evident inside the batch), then
    payments a unique constraint refused (with their merged results), then
    results and then reversals that updated no payment.
    """
    tk = plan.terminal_key
    await conn.insert_many("entries", ENTRY_COLUMNS, plan.entries)
    duplicates = list(plan.duplicates)
    if plan.payments:
        refused_ids = await conn.insert_payments(plan.payments)
        if refused_ids:
            refused = [row for row in plan.payments if row.payment_id in refused_ids]
            pairs = [
                (r.agent, r.txn_id) for r in refused if r.agent is not None and r.txn_id is not None
            ]
            duplicates += classify_refused_payments(
                refused,
                await conn.payments_by_id(sorted(refused_ids)),
                await conn.payment_ids_by_pair(pairs) if pairs else {},
            )
    unapplied: list[tuple[str, tuple[int, str]]] = []
    for kind, rows, update in (
        ("payment-result", plan.results, conn.update_results),
        ("reversal", plan.reversals, conn.update_reversals),
    ):
        if rows:
            updated = await update(tk, split_first_per_payment(rows))
            unapplied += [(kind, item) for item in _unapplied(rows, updated)]
    if unapplied:
        ids = sorted({payment_id for _, (_, payment_id) in unapplied})
        stored = {payment.payment_id: payment for payment in await conn.payments_by_id(ids)}
        duplicates += [
            classify_unapplied(tk, kind, seq, payment_id, stored.get(payment_id))
            for kind, (seq, payment_id) in unapplied
        ]
    if plan.meter_readings:
        await conn.insert_many("meter_readings", METER_COLUMNS, plan.meter_readings)
    if duplicates:
        await conn.insert_many(
            "duplicates", DUPLICATE_COLUMNS, [(tk, *row, plan.now_ms) for row in duplicates]
        )
    await conn.execute(
        "UPDATE terminals SET head_seq = ?, head_hash = ?, last_seen_ms = ? WHERE key = ?",
        plan.head_seq,
        plan.head_hash,
        plan.now_ms,
        tk,
    )
    await conn.execute(
        _INSERT_BATCH,
        tk,
        plan.from_seq,
        plan.head_seq,
        len(plan.entries),
        "applied",
        plan.wire_bytes,
        plan.now_ms,
    )
    return duplicates


# --- the ingest transaction and the storage -------------------------------------------------


class SqlLedgerTransaction(LedgerTransaction):
    """The ingest steps of one transaction; the backend runs each on its connection."""

    @abc.abstractmethod
    async def _run(self, operation: Operation[T]) -> T:
        """Run ``operation`` on this transaction's connection."""

    async def lock_terminal(self, terminal_id: str) -> TerminalRecord | None:
        async def op(conn: SqlConnection) -> TerminalRecord | None:
            return await select_terminal(conn, terminal_id, lock=True)

        return await self._run(op)

    async def stored_hashes(
        self, terminal_key: int, from_seq: int, to_seq: int
    ) -> dict[int, bytes]:
        async def op(conn: SqlConnection) -> dict[int, bytes]:
            rows = await conn.fetch(
                "SELECT seq, hash FROM entries WHERE terminal_key = ? AND seq BETWEEN ? AND ?",
                terminal_key,
                from_seq,
                to_seq,
            )
            return {row[0]: bytes(row[1]) for row in rows}

        return await self._run(op)

    async def apply(self, plan: ApplyPlan) -> list[DuplicateRow]:
        async def op(conn: SqlConnection) -> list[DuplicateRow]:
            return await apply_plan(conn, plan)

        return await self._run(op)

    async def quarantine(
        self,
        terminal_key: int,
        *,
        reason: str,
        alarm_kind: str,
        detail: Mapping[str, Any],
        now_ms: int,
    ) -> None:
        async def op(conn: SqlConnection) -> None:
            terminal_id = await conn.fetchval(
                "SELECT terminal_id FROM terminals WHERE key = ?", terminal_key
            )
            await conn.execute(
                "UPDATE terminals SET state = 'quarantined', state_reason = ? WHERE key = ?",
                reason,
                terminal_key,
            )
            await conn.execute(
                "INSERT INTO alarms (ts_ms, terminal_id, kind, detail) VALUES (?, ?, ?, ?)",
                now_ms,
                terminal_id,
                alarm_kind,
                _json(detail),
            )
            await insert_audit(
                conn, now_ms, "central", "quarantine", terminal_id, {"reason": reason, **detail}
            )

        await self._run(op)

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
        async def op(conn: SqlConnection) -> None:
            await conn.execute(
                _INSERT_BATCH, terminal_key, from_seq, to_seq, applied, outcome, wire_bytes, now_ms
            )

        await self._run(op)


class SqlStorage(Storage):
    """Every :class:`Storage` method, once, for the SQL backends (see the module docstring)."""

    migrations: tuple[tuple[str, str], ...]
    dialect: Dialect

    @abc.abstractmethod
    async def _write(self, operation: Operation[T]) -> T:
        """Run ``operation`` in one write transaction: all of it commits, or none."""

    @abc.abstractmethod
    async def _read(self, operation: Operation[T]) -> T:
        """Run ``operation`` that only reads."""

    # -- migrations ---------------------------------------------------------------

    async def _applied(self, conn: SqlConnection) -> list[str]:
        await conn.lock_schema()
        await conn.execute(_SCHEMA_MIGRATIONS.format(integer=self.dialect.integer))
        rows = await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")
        return [row[0] for row in rows]

    async def applied_migrations(self) -> list[str]:
        return await self._write(self._applied)

    async def migrate(self) -> list[str]:
        done: list[str] = []
        # Each migration in its own transaction, deciding again under the schema
        # lock what is pending: two workers starting together never both apply one.
        while True:

            async def step(conn: SqlConnection) -> str | None:
                pending = pending_migrations(await self._applied(conn), self.migrations)
                if not pending:
                    return None
                name, script = pending[0]
                await conn.execute_script(script)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, applied_ms) VALUES (?, ?)",
                    name,
                    time.time_ns() // 1_000_000,
                )
                return name

            name = await self._write(step)
            if name is None:
                return done
            done.append(name)

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
        async def op(conn: SqlConnection) -> None:
            await insert_new(
                conn,
                "INSERT INTO registration_codes (code_hash, location, label, created_ms,"
                " expires_ms) VALUES (?, ?, ?, ?, ?)",
                code_hash,
                location,
                label,
                created_ms,
                expires_ms,
                conflict="that registration code exists already",
            )
            await insert_audit(
                conn,
                created_ms,
                actor,
                "registration-code",
                location,
                {"expires_ms": expires_ms, "label": label},
            )

        await self._write(op)

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
        async def op(conn: SqlConnection) -> TerminalRecord:
            code = await conn.fetchrow(_SELECT_CODE + conn.dialect.row_lock, code_hash)
            existing = await select_terminal(conn, terminal_id)
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
            if await conn.fetchval(_SELECT_RETIRED, terminal_id) is not None:
                raise ConflictError(f"the key of {terminal_id} was retired and cannot enroll")
            await conn.execute(
                "UPDATE registration_codes SET used_ms = ?, used_by = ? WHERE code_hash = ?",
                now_ms,
                terminal_id,
                code_hash,
            )
            # Enrolled by another worker since the read above: a conflict too.
            await insert_new(
                conn,
                "INSERT INTO terminals (terminal_id, public_key, label, location, state, head_seq,"
                " head_hash, enrolled_ms) VALUES (?, ?, ?, ?, 'enrolled', 0, ?, ?)",
                terminal_id,
                public_key,
                label,
                location,
                GENESIS_HASH,
                now_ms,
                conflict=f"terminal {terminal_id} is already enrolled",
            )
            detail = {"location": location, "label": label}
            await insert_audit(conn, now_ms, "terminal", "enroll", terminal_id, detail)
            record = await select_terminal(conn, terminal_id)
            assert record is not None
            return record

        return await self._write(op)

    async def get_terminal(self, terminal_id: str) -> TerminalRecord | None:
        async def op(conn: SqlConnection) -> TerminalRecord | None:
            return await select_terminal(conn, terminal_id)

        return await self._read(op)

    async def list_terminals(self) -> list[TerminalRecord]:
        async def op(conn: SqlConnection) -> list[TerminalRecord]:
            sql = f"SELECT {_TERMINAL_COLUMNS} FROM terminals ORDER BY terminal_id"  # noqa: S608
            return [terminal_record(row) for row in await conn.fetch(sql)]

        return await self._read(op)

    async def set_terminal_state(
        self, terminal_id: str, state: TerminalState, *, reason: str, actor: str, now_ms: int
    ) -> TerminalRecord:
        async def op(conn: SqlConnection) -> TerminalRecord:
            changed = await conn.execute(
                "UPDATE terminals SET state = ?, state_reason = ? WHERE terminal_id = ?",
                state.value,
                reason,
                terminal_id,
            )
            if changed != 1:
                raise NotFoundError(f"no terminal {terminal_id}")
            await insert_audit(
                conn, now_ms, actor, f"state:{state.value}", terminal_id, {"reason": reason}
            )
            record = await select_terminal(conn, terminal_id)
            assert record is not None
            return record

        return await self._write(op)

    async def rekey_terminal(
        self,
        *,
        terminal_id: str,
        public_key: bytes,
        new_terminal_id: str,
        new_public_key: bytes,
        now_ms: int,
    ) -> TerminalRecord:
        async def op(conn: SqlConnection) -> TerminalRecord:
            current = await select_terminal(conn, terminal_id, lock=True)
            if current is None:
                done = await conn.fetchrow(
                    "SELECT public_key, successor_id FROM terminal_keys WHERE terminal_id = ?",
                    terminal_id,
                )
                if done is not None and bytes(done[0]) == public_key:
                    if done[1] != new_terminal_id:
                        raise ConflictError(f"{terminal_id} was re-keyed to another key")
                    again = await select_terminal(conn, new_terminal_id)
                    if again is not None and again.public_key == new_public_key:
                        return again  # the same re-key again: already done
                raise NotFoundError(f"no terminal {terminal_id}")
            if current.public_key != public_key:
                raise ConflictError(f"{terminal_id} is enrolled with another key")
            if current.state is not TerminalState.ENROLLED:
                raise TerminalStateError(f"terminal {terminal_id} is {current.state.value}")
            if new_terminal_id == terminal_id:
                raise BadRequestError("the new key is the enrolled key")
            used = await select_terminal(conn, new_terminal_id)
            if used is not None or (
                await conn.fetchval(_SELECT_RETIRED, new_terminal_id) is not None
            ):
                raise ConflictError(f"the new key ({new_terminal_id}) was used before")
            await conn.execute(
                "UPDATE terminals SET terminal_id = ?, public_key = ? WHERE key = ?",
                new_terminal_id,
                new_public_key,
                current.key,
            )
            await conn.execute(
                "INSERT INTO terminal_keys (terminal_id, terminal_key, public_key, retired_ms,"
                " successor_id) VALUES (?, ?, ?, ?, ?)",
                terminal_id,
                current.key,
                public_key,
                now_ms,
                new_terminal_id,
            )
            await insert_audit(
                conn, now_ms, "terminal", "rekey", terminal_id, {"new_terminal_id": new_terminal_id}
            )
            record = await select_terminal(conn, new_terminal_id)
            assert record is not None
            return record

        return await self._write(op)

    async def retired_keys(self) -> list[RetiredKey]:
        async def op(conn: SqlConnection) -> list[RetiredKey]:
            rows = await conn.fetch(
                "SELECT k.terminal_id, k.public_key, k.retired_ms, k.successor_id, t.terminal_id"
                " FROM terminal_keys k JOIN terminals t ON t.key = k.terminal_key"
                " ORDER BY k.retired_ms, k.terminal_id"
            )
            return [
                RetiredKey(
                    terminal_id=r[0],
                    public_key=bytes(r[1]),
                    retired_ms=r[2],
                    successor_id=r[3],
                    current_id=r[4],
                )
                for r in rows
            ]

        return await self._read(op)

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
        async def op(conn: SqlConnection) -> None:
            await conn.execute(
                "UPDATE terminals SET last_seen_ms = ?, queue_depth = ?, oldest_pending_age_s = ?,"
                " software_version = ?, catalog_version = ?, config_version = ?, health = ?"
                " WHERE terminal_id = ?",
                now_ms,
                queue_depth,
                oldest_pending_age_s,
                software_version,
                catalog_version,
                config_version,
                _json(health),
                terminal_id,
            )

        await self._write(op)

    # -- publications ---------------------------------------------------------------

    async def put_publication(
        self, *, kind: str, scope: str, version: int, data: bytes, now_ms: int
    ) -> None:
        async def op(conn: SqlConnection) -> None:
            await insert_new(
                conn,
                "INSERT INTO publications (kind, scope, version, data, created_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                kind,
                scope,
                version,
                data,
                now_ms,
                conflict=f"{kind} {scope} version {version} exists already",
            )
            detail = {"version": version}
            await insert_audit(conn, now_ms, "central", f"publish:{kind}", scope, detail)

        await self._write(op)

    async def latest_publication(self, *, kind: str, scope: str) -> tuple[int, bytes] | None:
        async def op(conn: SqlConnection) -> tuple[int, bytes] | None:
            row = await conn.fetchrow(
                "SELECT version, data FROM publications WHERE kind = ? AND scope = ?"
                " ORDER BY version DESC LIMIT 1",
                kind,
                scope,
            )
            return None if row is None else (row[0], bytes(row[1]))

        return await self._read(op)

    async def put_catalog_release(
        self, *, version: int, kind: str, base_version: int | None, data: bytes, now_ms: int
    ) -> None:
        async def op(conn: SqlConnection) -> None:
            await insert_new(
                conn,
                "INSERT INTO catalog_releases (version, kind, base_version, data, created_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                version,
                kind,
                base_version,
                data,
                now_ms,
                conflict=f"catalog {kind} version {version} exists already",
            )
            await insert_audit(
                conn,
                now_ms,
                "central",
                f"catalog:{kind}",
                str(version),
                {"base_version": base_version, "bytes": len(data)},
            )

        await self._write(op)

    async def catalog_release_for(self, since: int) -> tuple[int, str, bytes] | None:
        async def op(conn: SqlConnection) -> tuple[int, str, bytes] | None:
            latest = await conn.fetchval("SELECT MAX(version) FROM catalog_releases")
            if latest is None or latest <= since:
                return None
            row = await conn.fetchrow(
                "SELECT version, kind, data FROM catalog_releases"
                " WHERE kind = 'delta' AND base_version = ? ORDER BY version DESC LIMIT 1",
                since,
            )
            if row is None:
                row = await conn.fetchrow(
                    "SELECT version, kind, data FROM catalog_releases WHERE kind = 'snapshot'"
                    " ORDER BY version DESC LIMIT 1"
                )
            return None if row is None else (row[0], row[1], bytes(row[2]))

        return await self._read(op)

    async def latest_catalog_version(self) -> int:
        async def op(conn: SqlConnection) -> int:
            value = await conn.fetchval("SELECT MAX(version) FROM catalog_releases")
            return 0 if value is None else int(value)

        return await self._read(op)

    # -- reading the ledger -----------------------------------------------------------

    async def export_rows(self, kind: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
        if kind not in _EXPORTS:
            raise BadRequestError(f"unknown export kind {kind!r}")
        columns, rest = _EXPORTS[kind]
        names = [name for name, _ in columns]
        sql = "SELECT " + ", ".join(expr for _, expr in columns) + rest

        async def op(conn: SqlConnection) -> list[dict[str, Any]]:
            return [_export_row(names, row) for row in await conn.fetch(sql, from_ms, to_ms)]

        return await self._read(op)

    async def alarms(self) -> list[Alarm]:
        async def op(conn: SqlConnection) -> list[Alarm]:
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

        return await self._read(op)

    async def audit_records(self) -> list[AuditRecord]:
        async def op(conn: SqlConnection) -> list[AuditRecord]:
            rows = await conn.fetch(
                "SELECT ts_ms, actor, action, subject, detail FROM audit ORDER BY id"
            )
            return [
                AuditRecord(
                    ts_ms=r[0], actor=r[1], action=r[2], subject=r[3], detail=json.loads(r[4])
                )
                for r in rows
            ]

        return await self._read(op)

    async def duplicates(self) -> list[dict[str, Any]]:
        async def op(conn: SqlConnection) -> list[dict[str, Any]]:
            rows = await conn.fetch(_SELECT_DUPLICATES)
            return [dict(zip(_DUPLICATE_EXPORT, row, strict=True)) for row in rows]

        return await self._read(op)

    async def counts(self) -> LedgerCounts:
        async def op(conn: SqlConnection) -> LedgerCounts:
            row = await conn.fetchrow(_SELECT_COUNTS)
            assert row is not None
            return LedgerCounts(**dict(zip(_COUNTED, row, strict=True)))

        return await self._read(op)

    async def entry_hashes(self, terminal_id: str) -> list[tuple[int, bytes, bytes]]:
        async def op(conn: SqlConnection) -> list[tuple[int, bytes, bytes]]:
            rows = await conn.fetch(
                "SELECT e.seq, e.hash, e.data FROM entries e JOIN terminals t"
                " ON t.key = e.terminal_key WHERE t.terminal_id = ? ORDER BY e.seq",
                terminal_id,
            )
            return [(r[0], bytes(r[1]), bytes(r[2])) for r in rows]

        return await self._read(op)

    async def audit(
        self, *, actor: str, action: str, subject: str, detail: Mapping[str, Any], now_ms: int
    ) -> None:
        async def op(conn: SqlConnection) -> None:
            await insert_audit(conn, now_ms, actor, action, subject, detail)

        await self._write(op)
