"""One storage interface for the central ledger, with SQLite and PostgreSQL behind it.

Theory of operation
-------------------
Everything the ledger keeps goes through :class:`Storage`. Batch ingest happens
inside :meth:`Storage.ledger_transaction`, which yields a :class:`LedgerTransaction`:
the ingest logic (``ingest.py``, storage-agnostic) first locks the terminal's row
(:meth:`LedgerTransaction.lock_terminal`), then reads stored hashes, then applies
one :class:`ApplyPlan` or quarantines the terminal. The lock is what serializes a
terminal's batches:

* SQLite (one process, the embedded default): one writer connection in one thread;
  a transaction is ``BEGIN IMMEDIATE`` under an asyncio lock, so there is exactly
  one writer at a time, across processes too.
* PostgreSQL (several stateless workers): ``SELECT ... FOR UPDATE`` on the
  terminal's row inside the transaction, so two workers never apply the same
  terminal's batches concurrently while other terminals proceed in parallel.

Payments are deduplicated permanently by unique constraints on ``payment_id`` and
on ``(agent, txn_id)``; :meth:`LedgerTransaction.apply` inserts the new ones and
records each duplicate in ``duplicates`` instead of as a second payment.

Both backends implement this interface with the same code (``sql.py``); each
keeps only its dialect and its connection, transaction and lock handling.

Rows on the ingest hot path are NamedTuples whose fields are the table's columns
in order, so a plan's rows go to the database as they are (cheap to build per
entry, nothing reshaped); records returned to callers are frozen dataclasses.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from central_sync.central.errors import BadRequestError

SCHEMA_NAME_CHARS_MAX = 63


class TerminalState(enum.StrEnum):
    """Where a terminal stands with central."""

    ENROLLED = "enrolled"
    REVOKED = "revoked"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalRecord:
    """A terminal as central knows it."""

    key: int
    """Central's internal row id (entries refer to it)."""
    terminal_id: str
    public_key: bytes
    label: str
    location: str
    state: TerminalState
    head_seq: int
    head_hash: bytes
    enrolled_ms: int
    last_seen_ms: int | None = None
    queue_depth: int | None = None
    oldest_pending_age_s: int | None = None
    software_version: str | None = None
    catalog_version: int | None = None
    config_version: int | None = None
    health: Mapping[str, Any] = field(default_factory=dict)
    state_reason: str | None = None

    def __post_init__(self) -> None:
        assert self.head_seq >= 0
        assert len(self.head_hash) == 32


@dataclass(frozen=True, slots=True, kw_only=True)
class RetiredKey:
    """A terminal key replaced by ``lobbypay rekey`` (its id may never be enrolled again)."""

    terminal_id: str
    """The id the retired key gave the terminal."""
    public_key: bytes
    retired_ms: int
    successor_id: str
    """The id of the key that replaced it."""
    current_id: str
    """The terminal's id now (after any later re-keys)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Alarm:
    """Something an operator must look at (a fork, a duplicate storm, ...)."""

    alarm_id: int
    ts_ms: int
    terminal_id: str | None
    kind: str
    detail: Mapping[str, Any]
    resolved_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """One operator or system action, kept forever."""

    ts_ms: int
    actor: str
    action: str
    subject: str
    detail: Mapping[str, Any]


class EntryRow(NamedTuple):
    """A row of ``entries``, its columns in table order."""

    terminal_key: int
    seq: int
    kind: str
    ts_ms: int
    hash: bytes
    data: bytes
    """The canonical bytes the terminal hashed."""


class PaymentRow(NamedTuple):
    """A new row of ``payments``, its columns in table order.

    Built from a payment-intent; the result columns are filled when the
    payment-result came in the same batch, else None (a later batch's result
    updates the row).
    """

    payment_id: str
    terminal_key: int
    seq: int
    ts_ms: int
    amount_minor: int
    currency: str
    account: str
    channel: str
    agent: str | None
    txn_id: str | None
    surcharge_minor: int
    outcome: str | None
    result_seq: int | None
    result_ts_ms: int | None
    auth_code: str | None
    rrn: str | None
    masked_pan: str | None
    card_brand: str | None
    offline: bool | None


class ResultRow(NamedTuple):
    """A payment-result whose intent is not in the same batch (it updates a stored payment)."""

    payment_id: str
    seq: int
    ts_ms: int
    outcome: str
    auth_code: str | None
    rrn: str | None
    masked_pan: str | None
    card_brand: str | None
    offline: bool


class ReversalRow(NamedTuple):
    payment_id: str
    seq: int
    ts_ms: int
    reason: str


class MeterRow(NamedTuple):
    """A row of ``meter_readings``, its columns in table order."""

    terminal_key: int
    seq: int
    ts_ms: int
    account: str
    meter_id: str
    value: int
    reading_ts_ms: int


class DuplicateRow(NamedTuple):
    """An entry that would have been a second payment (or a result for one)."""

    seq: int
    kind: str
    payment_id: str
    agent: str | None
    txn_id: str | None
    reason: str
    """'payment_id' | 'agent_txn_id' | 'foreign-payment' | 'no-intent' | 'result-exists'."""
    existing_payment_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyPlan:
    """What one batch adds to a terminal's ledger, in one transaction."""

    terminal_key: int
    terminal_id: str
    from_seq: int
    entries: Sequence[EntryRow]
    payments: Sequence[PaymentRow]
    results: Sequence[ResultRow]
    reversals: Sequence[ReversalRow]
    meter_readings: Sequence[MeterRow]
    duplicates: Sequence[DuplicateRow]
    """Duplicates already evident inside the batch (decided by ingest.py)."""
    head_seq: int
    head_hash: bytes
    now_ms: int
    wire_bytes: int

    def __post_init__(self) -> None:
        assert self.entries, "a plan applies at least one entry"
        assert self.entries[0].seq == self.from_seq
        assert self.entries[-1].seq == self.head_seq
        assert self.entries[-1].hash == self.head_hash
        assert self.entries[0].terminal_key == self.terminal_key


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerCounts:
    """Row counts, for tests, benches and the console."""

    terminals: int
    entries: int
    payments: int
    duplicates: int
    meter_readings: int
    alarms: int
    batches: int


class LedgerTransaction(abc.ABC):
    """The operations of one ingest transaction (see the module docstring)."""

    @abc.abstractmethod
    async def lock_terminal(self, terminal_id: str) -> TerminalRecord | None:
        """Read the terminal's row and hold it until commit (None if unknown)."""

    @abc.abstractmethod
    async def stored_hashes(
        self, terminal_key: int, from_seq: int, to_seq: int
    ) -> dict[int, bytes]:
        """Hashes of stored entries with from_seq <= seq <= to_seq."""

    @abc.abstractmethod
    async def apply(self, plan: ApplyPlan) -> list[DuplicateRow]:
        """Insert the plan's rows, move the head, log the batch; return the duplicates."""

    @abc.abstractmethod
    async def quarantine(
        self,
        terminal_key: int,
        *,
        reason: str,
        alarm_kind: str,
        detail: Mapping[str, Any],
        now_ms: int,
    ) -> None:
        """Mark the terminal quarantined and raise an alarm, with an audit record."""

    @abc.abstractmethod
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
        """Record a batch that changed nothing (a re-send), for the console."""


class Storage(abc.ABC):
    """The central ledger's storage. Open with :func:`open_storage`."""

    url: str

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect (and create the file or schema if needed); does not migrate."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads; idempotent."""

    async def __aenter__(self) -> Storage:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply the named migrations not yet applied, each in its own transaction."""

    @abc.abstractmethod
    async def applied_migrations(self) -> list[str]:
        """Names of the migrations applied, in order."""

    # -- ingest --------------------------------------------------------------

    @abc.abstractmethod
    def ledger_transaction(self) -> AbstractAsyncContextManager[LedgerTransaction]:
        """A transaction for one batch; commits on normal exit, rolls back on error."""

    # -- terminals -----------------------------------------------------------

    @abc.abstractmethod
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
        """Store a new single-use registration code (only its hash is kept)."""

    @abc.abstractmethod
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
        """Use a registration code and register the terminal, atomically.

        Raises RegistrationCodeError (unknown, used, expired, other location) or
        ConflictError (the terminal id is already enrolled). Re-sending the same
        request after success returns the same record (the code is used by it).
        """

    @abc.abstractmethod
    async def get_terminal(self, terminal_id: str) -> TerminalRecord | None:
        """The terminal's record, or None."""

    @abc.abstractmethod
    async def list_terminals(self) -> list[TerminalRecord]:
        """Every terminal, by terminal id."""

    @abc.abstractmethod
    async def set_terminal_state(
        self, terminal_id: str, state: TerminalState, *, reason: str, actor: str, now_ms: int
    ) -> TerminalRecord:
        """Revoke, quarantine or reinstate a terminal (audited). NotFoundError if unknown."""

    @abc.abstractmethod
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
        """Store the latest status a terminal reported."""

    @abc.abstractmethod
    async def rekey_terminal(
        self,
        *,
        terminal_id: str,
        public_key: bytes,
        new_terminal_id: str,
        new_public_key: bytes,
        now_ms: int,
    ) -> TerminalRecord:
        """Replace an enrolled terminal's key, keeping its record, chain and payments.

        The record is renamed to ``new_terminal_id`` (ids derive from keys) and the
        old id and key are retired for good (audited). Re-sending the same re-key
        after success returns the record again. Raises NotFoundError (unknown id),
        ConflictError (``public_key`` is not the enrolled key, or the new key was
        used before) or TerminalStateError (revoked or quarantined).
        """

    @abc.abstractmethod
    async def retired_keys(self) -> list[RetiredKey]:
        """Every retired key, oldest first."""

    # -- signed publications -------------------------------------------------

    @abc.abstractmethod
    async def put_publication(
        self, *, kind: str, scope: str, version: int, data: bytes, now_ms: int
    ) -> None:
        """Store a signed config bundle or revocation list (ConflictError if the version exists)."""

    @abc.abstractmethod
    async def latest_publication(self, *, kind: str, scope: str) -> tuple[int, bytes] | None:
        """(version, signed bytes) of the newest publication of kind and scope."""

    @abc.abstractmethod
    async def put_catalog_release(
        self, *, version: int, kind: str, base_version: int | None, data: bytes, now_ms: int
    ) -> None:
        """Store a signed catalog snapshot or delta produced by the catalog package."""

    @abc.abstractmethod
    async def catalog_release_for(self, since: int) -> tuple[int, str, bytes] | None:
        """What a terminal holding catalog ``since`` should fetch next.

        The delta whose base is ``since`` if there is one, else the newest snapshot
        newer than ``since``; None when ``since`` is current. (version, kind, data).
        """

    @abc.abstractmethod
    async def latest_catalog_version(self) -> int:
        """The newest catalog release version (0 if none)."""

    # -- reading the ledger ----------------------------------------------------

    @abc.abstractmethod
    async def export_rows(self, kind: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
        """Payments or meter readings with from_ms <= ts_ms < to_ms, for the billing center.

        A payment's ``services`` come from its intent entry's stored bytes (central
        does not copy them into the payments table on the ingest path).
        """

    @abc.abstractmethod
    async def alarms(self) -> list[Alarm]:
        """Every alarm, newest first."""

    @abc.abstractmethod
    async def audit_records(self) -> list[AuditRecord]:
        """Every audit record, oldest first."""

    @abc.abstractmethod
    async def duplicates(self) -> list[dict[str, Any]]:
        """Every duplicate seen, oldest first."""

    @abc.abstractmethod
    async def counts(self) -> LedgerCounts:
        """Row counts per table."""

    @abc.abstractmethod
    async def entry_hashes(self, terminal_id: str) -> list[tuple[int, bytes, bytes]]:
        """(seq, hash, data) of every stored entry of a terminal, ascending (for audits)."""

    @abc.abstractmethod
    async def audit(
        self, *, actor: str, action: str, subject: str, detail: Mapping[str, Any], now_ms: int
    ) -> None:
        """Append an audit record."""


def open_storage(url: str, **options: Any) -> Storage:
    """A storage for ``url``: ``sqlite:///path``, ``sqlite://:memory:`` or ``postgresql://...``.

    A PostgreSQL URL may carry ``?schema=NAME`` to keep the ledger in its own
    schema (tests use one per run). The storage is not yet open.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from central_sync.central.sqlite import SqliteStorage, sqlite_path

        return SqliteStorage(sqlite_path(url), **options)
    if scheme in ("postgresql", "postgres"):
        from central_sync.central.postgres import PostgresStorage

        return PostgresStorage(url, **options)
    raise BadRequestError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://"
    )
