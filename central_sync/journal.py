"""The terminal journal: an append-only, hash-chained, durable log in SQLite.

Theory of operation
-------------------
The journal is the single source of truth on a terminal. Every entry has a
``seq`` (1, 2, 3, ...), a ``kind``, a timestamp, a canonical JSON body, the
hash of the entry before it and its own hash::

    hash = SHA-256(prev_hash || canonical({"seq", "kind", "ts_ms", "body"}))

so a gap, a reordering or an edit anywhere breaks the chain (the same idea as
Secure Scuttlebutt feeds). The first entry's ``prev_hash`` is 32 zero bytes.

Durability: the file is in WAL mode with ``synchronous=FULL``, so a COMMIT
returns only after the WAL is fsync'd. :meth:`Journal.append` returns only after
the COMMIT that holds its entry has returned.

Group commit: appenders do not commit one by one. Each ``append()`` puts a
request in a bounded queue and waits; one writer task takes every request
waiting (up to ``group_commit_entries_max``), assigns seqs and hashes, inserts
them in one transaction and commits once, then wakes every appender of that
group. While one group is being fsync'd the next one gathers, so the cost of an
fsync is shared by as many appenders as arrive during it.

One writer: all SQLite work happens on one dedicated thread, which owns the
connection and the in-memory head and offline counters; the event loop never
blocks on the disk.

Faults: if a write or a commit fails (a full disk, an I/O error on write or
fsync, a corrupt page), the transaction is rolled back, every append in that
group gets :class:`JournalWriteError`, and the journal refuses further appends
with :class:`JournalUnavailableError` until :meth:`Journal.recover` has reopened
the file and re-read its head from disk. An append that raised may still have
reached the disk (an fsync can fail after the data was written); that is why
callers reuse their ``payment_id`` on retry: the journal returns the stored
entry instead of a second one.

Entry states: pending -> sent -> acknowledged (only by a verified central ack,
which the sync agent checks before calling :meth:`Journal.mark_acknowledged`).
Acknowledged entries older than the retention may be pruned; the last pruned
entry's seq and hash stay as the chain's anchor.

Offline limits (like a card terminal's floor limits) apply to payment intents
that central has not acknowledged and that have not been declined or failed:
a per-payment amount, a total amount per currency, a number of payments and
the age of the oldest one. Each is checked inside the writer, in order with
every other append, so concurrent appends cannot jointly exceed a limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import os
import re
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from central_sync import canonical

if TYPE_CHECKING:
    from firmware_config.settings import Settings

logger = logging.getLogger(__name__)

GENESIS_HASH = bytes(32)
HASH_BYTES = 32
APPLICATION_ID = 0x4C424A31  # "LBJ1": marks a file as a lobbypay journal.
BODY_BYTES_MAX = 16 * 1024
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
PAYMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
MASKED_PAN_PATTERN = re.compile(r"^[0-9]{0,6}[*Xx]{2,13}[0-9]{0,4}$")

KIND_PAYMENT_INTENT = "payment-intent"
KIND_PAYMENT_RESULT = "payment-result"
KIND_REVERSAL = "reversal"
KIND_METER_READING = "meter-reading"
KIND_DEVICE_EVENT = "device-event"
KIND_END_OF_DAY = "end-of-day"

PAYMENT_OUTCOMES = frozenset({"approved", "declined", "failed", "cancelled"})
# A payment with one of these results took no money, so it no longer counts
# against the offline limits.
OUTCOMES_WITHOUT_MONEY = frozenset({"declined", "failed", "cancelled"})
# Kinds that exist at most once per payment_id.
PAYMENT_KINDS = frozenset({KIND_PAYMENT_INTENT, KIND_PAYMENT_RESULT, KIND_REVERSAL})

# Card data the software must never hold. A body with any of these keys, at any
# depth, is refused.
FORBIDDEN_KEYS = frozenset(
    {"pan", "card_number", "track", "track1", "track2", "cvv", "cvv2", "cvc", "pin", "pin_block"}
)
# Numeric identifiers that may legitimately be long digit strings.
NUMERIC_ID_KEYS = frozenset(
    {"account", "payment_id", "txn_id", "rrn", "trace", "receipt_no", "meter_id", "inn"}
)
_DIGIT_RUN = re.compile(r"\d{13,19}")


class EntryState(enum.IntEnum):
    """Where an entry is on its way to central."""

    PENDING = 0
    SENT = 1
    ACKNOWLEDGED = 2


# -- errors -----------------------------------------------------------------


class JournalError(Exception):
    """Base of every journal error."""


class EntryInvalidError(JournalError):
    """The entry itself is unacceptable (bad kind, body, amount, card data)."""


class JournalConflictError(JournalError):
    """A payment entry with this payment_id exists with a different body."""


class OfflineLimitError(JournalError):
    """A payment would exceed an offline limit; ``limit`` names which one."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class JournalBusyError(JournalError):
    """Too many appends are waiting; retry later (back-pressure, nothing written)."""


class JournalCorruptError(JournalError):
    """The file is not a journal, is damaged, or its chain is broken."""


class JournalWriteError(JournalError):
    """Writing or fsyncing failed (full disk, I/O error); the entry may not be stored."""


class JournalUnavailableError(JournalError):
    """The journal refuses appends after a write failure until it is recovered."""


class JournalClosedError(JournalError):
    """The journal has been closed."""


# -- values -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflineLimits:
    """Bounds on payments stored on the terminal and not yet acknowledged by central."""

    payment_amount_max_minor: int = 1_500_000
    amount_total_max_minor: int = 50_000_000
    payments_max: int = 5_000
    age_max_s: int = 72 * 3600

    def __post_init__(self) -> None:
        for name in ("payment_amount_max_minor", "amount_total_max_minor", "payments_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer")
        if not isinstance(self.age_max_s, int) or self.age_max_s <= 0:
            raise ValueError("age_max_s must be a positive integer")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One journal entry as stored."""

    seq: int
    kind: str
    ts_ms: int
    body: Mapping[str, Any]
    prev_hash: bytes
    hash: bytes
    state: EntryState

    def __post_init__(self) -> None:
        assert self.seq >= 1
        assert len(self.prev_hash) == HASH_BYTES
        assert len(self.hash) == HASH_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentIntent:
    """A payment about to be attempted; written before any side effect."""

    payment_id: str
    amount_minor: int
    currency: str
    account: str
    channel: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        body = dict(self.extra)
        body.update(
            payment_id=self.payment_id,
            amount_minor=self.amount_minor,
            currency=self.currency,
            account=self.account,
            channel=self.channel,
        )
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentResult:
    """The outcome of a payment attempt."""

    payment_id: str
    outcome: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        body = dict(self.extra)
        body.update(payment_id=self.payment_id, outcome=self.outcome)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """The result of walking the chain."""

    ok: bool
    entries_checked: int
    anchor_seq: int
    head_seq: int
    first_bad_seq: int | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalStats:
    """Counts and amounts for `lobbypay journal stats`, heartbeats and `doctor`."""

    head_seq: int
    acknowledged_through: int
    entries_by_state: Mapping[str, int]
    entries_by_kind: Mapping[str, int]
    oldest_pending_age_s: float | None
    pending_amount_minor_by_currency: Mapping[str, int]
    stored_payments: int
    outcome_unknown: int
    schema_version: int
    file_bytes: int


# -- pure helpers -------------------------------------------------------------


def entry_hash(
    prev_hash: bytes, *, seq: int, kind: str, ts_ms: int, body: Mapping[str, Any]
) -> bytes:
    """SHA-256(prev_hash || canonical({"seq", "kind", "ts_ms", "body"}))."""
    return _hash_encoded(prev_hash, _entry_bytes(seq, kind, ts_ms, canonical.encode(body)))


def _entry_bytes(seq: int, kind: str, ts_ms: int, body_bytes: bytes) -> bytes:
    # Keys in sorted order ("body" < "kind" < "seq" < "ts_ms"), so this equals
    # canonical.encode of the whole entry without encoding the body twice.
    return b"".join(
        (
            b'{"body":',
            body_bytes,
            b',"kind":"',
            # KIND_PATTERN admits no character JSON would escape.
            kind.encode(),
            b'"',
            b',"seq":',
            str(seq).encode(),
            b',"ts_ms":',
            str(ts_ms).encode(),
            b"}",
        )
    )


def _hash_encoded(prev_hash: bytes, entry_bytes: bytes) -> bytes:
    h = hashlib.sha256(prev_hash)
    h.update(entry_bytes)
    return h.digest()


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _scan_body(value: Any, key: str | None, depth: int) -> None:
    """One walk over a body: canonical JSON types only, and no card data anywhere.

    Refuses floats and non-JSON types (as :func:`canonical.encode` would), keys
    that would hold card data, a ``masked_pan`` that shows more than the BIN and
    last 4 digits, and digit runs that pass the Luhn check outside the numeric
    identifier fields. Messages never repeat the digits.
    """
    if depth > canonical.DEPTH_MAX:
        raise EntryInvalidError(f"body nested deeper than {canonical.DEPTH_MAX}")
    items = value.items() if isinstance(value, dict) else ((key, v) for v in value)
    for k, v in items:
        if k is not key:
            if type(k) is not str:
                raise EntryInvalidError("body keys must be strings")
            if k.lower() in FORBIDDEN_KEYS:
                raise EntryInvalidError(f"field {k!r} would hold card data; it is never stored")
            if k == "masked_pan" and (
                type(v) is not str
                or not MASKED_PAN_PATTERN.fullmatch(v)
                or sum(c.isdigit() for c in v) > 10
            ):
                raise EntryInvalidError("masked_pan must show at most the BIN and last 4 digits")
        kind = type(v)
        if kind is str:
            if len(v) >= 13 and k not in NUMERIC_ID_KEYS:
                for match in _DIGIT_RUN.finditer(v):
                    if _luhn_ok(match.group()):
                        raise EntryInvalidError(
                            f"field {k!r} contains what looks like a full card number; refused"
                        )
        elif kind is int:
            if not -canonical.INT_ABS_MAX <= v <= canonical.INT_ABS_MAX:
                raise EntryInvalidError("integer out of the signed 64-bit range")
        elif kind is dict or kind is list:
            _scan_body(v, k, depth + 1)
        elif kind is float:
            raise EntryInvalidError("floats are not allowed; use integer minor units")
        elif not (kind is bool or v is None):
            raise EntryInvalidError(f"type {kind.__name__} is not allowed in a body")


def _require_int(body: Mapping[str, Any], name: str, *, positive: bool) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise EntryInvalidError(f"{name} must be an integer number of minor units")
    if positive and value <= 0:
        raise EntryInvalidError(f"{name} must be positive")
    return value


def _require_str(body: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise EntryInvalidError(f"{name} is missing or malformed")
    return value


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An entry checked and encoded, waiting for its seq."""

    kind: str
    body: Mapping[str, Any]
    body_bytes: bytes
    dedup_key: str | None
    payment_id: str | None
    amount_minor: int | None
    currency: str | None
    outcome: str | None


def prepare(kind: str, body: Mapping[str, Any]) -> _Prepared:
    """Check an entry's kind and body and encode it; raise EntryInvalidError if bad."""
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        raise EntryInvalidError("kind must be lowercase letters, digits and dashes")
    if not isinstance(body, Mapping):
        raise EntryInvalidError("body must be an object")
    body = dict(body)
    _scan_body(body, None, 0)
    body_bytes = canonical.encode(body, checked=True)
    if len(body_bytes) > BODY_BYTES_MAX:
        raise EntryInvalidError(f"body larger than {BODY_BYTES_MAX} bytes")
    payment_id = amount = currency = outcome = None
    if kind in PAYMENT_KINDS:
        payment_id = _require_str(body, "payment_id", PAYMENT_ID_PATTERN)
    if kind == KIND_PAYMENT_INTENT:
        amount = _require_int(body, "amount_minor", positive=True)
        currency = _require_str(body, "currency", CURRENCY_PATTERN)
        _require_str(body, "account", None)
        # Central stores these in typed columns; a wrong type must stop here,
        # not become a batch central can never apply.
        if "channel" in body:
            _require_str(body, "channel", KIND_PATTERN)
        if "surcharge_minor" in body:
            _require_int(body, "surcharge_minor", positive=False)
    elif kind == KIND_PAYMENT_RESULT:
        outcome = _require_str(body, "outcome", None)
        if outcome not in PAYMENT_OUTCOMES:
            raise EntryInvalidError(f"outcome must be one of {sorted(PAYMENT_OUTCOMES)}")
    dedup_key = f"{kind}:{payment_id}" if payment_id is not None else None
    return _Prepared(kind, body, body_bytes, dedup_key, payment_id, amount, currency, outcome)


# -- schema -------------------------------------------------------------------

# Named migrations, applied in order, each in its own transaction. The number
# applied is also kept in PRAGMA user_version, so the schema version is in the file.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_entries",
        """
        CREATE TABLE entries (
            seq INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            body BLOB NOT NULL,
            prev_hash BLOB NOT NULL,
            hash BLOB NOT NULL,
            state INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE TABLE journal_meta (key TEXT PRIMARY KEY, value ANY) STRICT;
        """,
    ),
    (
        # One row per payment entry ("<kind>:<payment_id>" -> seq). Its primary
        # key is what refuses a second intent, result or reversal for a payment,
        # and it is never pruned, so a very late retry of an archived payment is
        # still recognised.
        "0002_payment_keys",
        """
        CREATE TABLE payment_keys (
            dedup_key TEXT PRIMARY KEY,
            seq INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        """,
    ),
)


# -- the journal ----------------------------------------------------------------


@dataclass(slots=True)
class _Request:
    prepared: _Prepared
    future: asyncio.Future[Entry]


@dataclass(slots=True)
class _Exposure:
    """Money at risk: unacknowledged payments that were not declined, per currency."""

    count: int = 0
    amount_by_currency: dict[str, int] = field(default_factory=dict)
    oldest_ts_ms: int | None = None


class _DuplicateInGroup(Exception):
    """The fast path met a stored payment; redo the group with lookups."""


T = TypeVar("T")
ConnectFn = Callable[[str], sqlite3.Connection]


def _default_connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)


class Journal:
    """The durable, hash-chained journal. Open with :meth:`Journal.open`."""

    def __init__(
        self,
        path: Path,
        *,
        limits: OfflineLimits | None,
        group_commit_entries_max: int,
        append_queue_max: int,
        clock_ms: Callable[[], int],
        connect: ConnectFn,
    ) -> None:
        if group_commit_entries_max <= 0 or append_queue_max <= 0:
            raise ValueError("group_commit_entries_max and append_queue_max must be positive")
        self.path = path
        self.limits = limits
        self.group_commit_entries_max = group_commit_entries_max
        self.append_queue_max = append_queue_max
        self._clock_ms = clock_ms
        self._connect = connect
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
        self._waiting: deque[_Request] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._fault: JournalError | None = None
        # Owned by the writer thread only:
        self._conn: sqlite3.Connection | None = None
        self.checkpoint_rows = 4096
        self._rows_since_checkpoint = 0
        self._checkpoint_running = False
        self._acked_seen = 0
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-ckpt")
        self._head_seq = 0
        self._head_hash = GENESIS_HASH
        self._exposure = _Exposure()

    # -- life cycle --

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        limits: OfflineLimits | None = None,
        group_commit_entries_max: int = 1024,
        append_queue_max: int = 10_000,
        clock_ms: Callable[[], int] | None = None,
        connect: ConnectFn | None = None,
        check_tail: bool = True,
    ) -> Journal:
        """Open (creating if needed) the journal at ``path`` and check its tail.

        ``check_tail=False`` is for `lobbypay journal verify`, which must open a
        journal with a broken chain to say where it breaks; such a journal
        refuses appends.
        """
        journal = cls(
            Path(path),
            limits=limits,
            group_commit_entries_max=group_commit_entries_max,
            append_queue_max=append_queue_max,
            clock_ms=clock_ms or (lambda: time.time_ns() // 1_000_000),
            connect=connect or _default_connect,
        )
        try:
            await journal._run(lambda: journal._open_sync(check_tail=check_tail))
        except BaseException:
            journal._executor.shutdown(wait=False)
            journal._checkpointer.shutdown(wait=False)
            raise
        journal._writer = asyncio.get_running_loop().create_task(
            journal._writer_loop(), name="journal-writer"
        )
        return journal

    async def close(self) -> None:
        """Finish every append already queued, then close the file."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=True)
        self._checkpointer.shutdown(wait=True)

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def recover(self) -> None:
        """After a write failure: reopen the file, re-read the head from disk, accept appends."""
        self._check_open()
        await self._run(self._close_sync)
        await self._run(self._open_sync)
        self._fault = None
        logger.warning("journal_recovered head_seq=%d", self._head_seq)

    # -- appends --

    async def append(self, kind: str, body: Mapping[str, Any]) -> Entry:
        """Append one entry; return it once it is fsync'd.

        For payment kinds (intent, result, reversal) an entry with the same
        ``payment_id`` that already exists is returned as it is if its body is
        identical, and :class:`JournalConflictError` is raised otherwise.
        """
        self._check_open()
        if self._fault is not None:
            raise JournalUnavailableError(
                f"journal refuses appends after a write failure ({self._fault}); "
                "free disk space or fix the storage, then restart the service"
            )
        prepared = prepare(kind, body)
        if len(self._waiting) >= self.append_queue_max:
            raise JournalBusyError(f"{self.append_queue_max} appends already waiting; retry later")
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Request(prepared, future))
        self._wakeup.set()
        return await future

    async def record_payment_intent(self, intent: PaymentIntent) -> Entry:
        """Write a payment intent (before any external side effect)."""
        return await self.append(KIND_PAYMENT_INTENT, intent.to_body())

    async def record_payment_result(self, result: PaymentResult) -> Entry:
        """Write the outcome of a payment whose intent is in the journal."""
        return await self.append(KIND_PAYMENT_RESULT, result.to_body())

    async def _writer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            group: list[_Request] = []
            while self._waiting and len(group) < self.group_commit_entries_max:
                group.append(self._waiting.popleft())
            try:
                outcomes = await loop.run_in_executor(
                    self._executor, self._commit_group, [r.prepared for r in group]
                )
            except BaseException as exc:  # the writer must never die silently
                logger.exception("journal_writer_crashed")
                outcomes = [JournalWriteError(f"journal writer failed: {exc!r}")] * len(group)
            for request, outcome in zip(group, outcomes, strict=True):
                if request.future.done():  # the appender was cancelled
                    continue
                if isinstance(outcome, BaseException):
                    request.future.set_exception(outcome)
                else:
                    request.future.set_result(outcome)

    # -- reads and state changes --

    async def read(self, from_seq: int, limit: int) -> list[Entry]:
        """Entries with seq >= from_seq, ascending, at most ``limit``."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        return await self._run(lambda: self._read_sync(from_seq, limit))

    async def head(self) -> tuple[int, bytes]:
        """The last seq and its hash on disk; (0, GENESIS_HASH) for an empty journal.

        Read from the file, so a handle in another process (the sync agent's)
        sees what the writer has committed.
        """
        return await self._run(self._head_sync)

    async def acknowledged_through(self) -> int:
        """The highest seq central has acknowledged (0 if none)."""
        return await self._run(self._acked_through_sync)

    async def mark_sent(self, through_seq: int) -> None:
        """Mark pending entries up to ``through_seq`` as sent (in a batch not yet acked)."""
        await self._run(lambda: self._mark_sent_sync(through_seq))

    async def mark_acknowledged(self, through_seq: int, head_hash: bytes) -> None:
        """Mark entries up to ``through_seq`` acknowledged by a verified central ack.

        ``head_hash`` must be the hash of entry ``through_seq``: an ack for a
        chain this journal does not have is refused with :class:`JournalError`.
        """
        await self._run(lambda: self._mark_acked_sync(through_seq, head_hash))

    async def outcome_unknown(self) -> list[Entry]:
        """Payment intents with no payment result: outcome-unknown payments."""
        return await self._run(self._outcome_unknown_sync)

    async def find_payment(self, payment_id: str) -> dict[str, Entry]:
        """The entries of one payment, keyed by kind (intent, result, reversal)."""
        return await self._run(lambda: self._find_payment_sync(payment_id))

    async def prune(self, older_than_ms: int) -> int:
        """Delete acknowledged entries older than ``older_than_ms``; return how many."""
        return await self._run(lambda: self._prune_sync(older_than_ms))

    async def verify(self) -> VerifyReport:
        """Walk the whole chain from its anchor and report the first bad entry."""
        return await self._run(self._verify_sync)

    async def stats(self) -> JournalStats:
        """Counts, ages and amounts for operators."""
        return await self._run(self._stats_sync)

    # -- internals: event-loop side --

    def _check_open(self) -> None:
        if self._closed:
            raise JournalClosedError("journal is closed")

    async def _run(self, fn: Callable[[], T]) -> T:
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # -- internals: writer thread only --

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalUnavailableError("journal file is not open")
        return self._conn

    def _open_sync(self, *, check_tail: bool = True) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._connect(str(self.path))
        except sqlite3.Error as exc:
            raise JournalCorruptError(f"cannot open journal {self.path}: {exc}") from None
        try:
            self._conn = conn
            self._configure(conn)
            self._migrate(conn)
            self._load_head(conn)
            if check_tail:
                self._check_tail(conn)
            else:
                self._fault = JournalUnavailableError("opened for inspection only")
            self._exposure = self._compute_exposure(conn)
            self._acked_seen = int(self._meta(conn, "acked_through", 0))
        except sqlite3.DatabaseError as exc:
            self._close_sync()
            raise JournalCorruptError(f"journal {self.path} is damaged: {exc}") from None
        except JournalError:
            self._close_sync()
            raise

    def _close_sync(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
            raise JournalCorruptError("file is an SQLite database but not a lobbypay journal")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise JournalCorruptError(f"cannot put the journal in WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Checkpoints run on their own thread (see _request_checkpoint).
        conn.execute("PRAGMA wal_autocheckpoint=0")
        # Fail fast instead of waiting on a lock: there is one writer by design.
        conn.execute("PRAGMA busy_timeout=5000")

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name TEXT PRIMARY KEY, applied_at_ms INTEGER NOT NULL) STRICT"
        )
        applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        for index, (name, sql) in enumerate(MIGRATIONS, start=1):
            if name in applied:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?)", (name, time.time_ns() // 10**6)
                )
                conn.execute(f"PRAGMA user_version={index}")
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            logger.info("journal_migrated name=%s", name)
        unknown = applied - {name for name, _ in MIGRATIONS}
        if unknown:
            raise JournalCorruptError(
                f"journal was written by newer software (migrations {sorted(unknown)})"
            )

    def _meta(self, conn: sqlite3.Connection, key: str, default: Any) -> Any:
        row = conn.execute("SELECT value FROM journal_meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def _anchor(self, conn: sqlite3.Connection) -> tuple[int, bytes]:
        return (
            int(self._meta(conn, "anchor_seq", 0)),
            bytes(self._meta(conn, "anchor_hash", GENESIS_HASH)),
        )

    def _head_sync(self) -> tuple[int, bytes]:
        conn = self._db()
        row = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        return self._anchor(conn) if row is None else (int(row[0]), bytes(row[1]))

    def _load_head(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            self._head_seq, self._head_hash = self._anchor(conn)
        else:
            self._head_seq, self._head_hash = int(row[0]), bytes(row[1])

    def _check_tail(self, conn: sqlite3.Connection, tail_entries: int = 64) -> None:
        """Verify the last entries' hashes and links: cheap at start-up, catches torn tails."""
        start = max(self._anchor(conn)[0] + 1, self._head_seq - tail_entries + 1)
        report = self._walk(conn, start, self._head_seq)
        if not report.ok:
            raise JournalCorruptError(
                f"journal chain is broken at seq {report.first_bad_seq}: {report.problem}; "
                "run `lobbypay journal verify` and call a technician"
            )

    def _compute_exposure(
        self, conn: sqlite3.Connection, after_seq: int | None = None, through_seq: int | None = None
    ) -> _Exposure:
        """Money at risk in unacknowledged intents with seq in (after_seq, through_seq].

        By default: everything central has not acknowledged.
        """
        if after_seq is None:
            after_seq = int(self._meta(conn, "acked_through", 0))
        exposure = _Exposure()
        rows = conn.execute(
            """
            WITH intents AS (
                SELECT ts_ms, CAST(body AS TEXT) AS b FROM entries
                WHERE kind = 'payment-intent' AND seq > ? AND seq <= ?)
            SELECT json_extract(b, '$.currency'), count(*),
                   sum(json_extract(b, '$.amount_minor')), min(ts_ms)
            FROM intents
            WHERE NOT EXISTS (
                SELECT 1 FROM payment_keys AS k JOIN entries AS r ON r.seq = k.seq
                WHERE k.dedup_key = 'payment-result:' || json_extract(b, '$.payment_id')
                  AND json_extract(CAST(r.body AS TEXT), '$.outcome')
                      IN ('declined', 'failed', 'cancelled'))
              AND NOT EXISTS (
                SELECT 1 FROM payment_keys AS v
                WHERE v.dedup_key = 'reversal:' || json_extract(b, '$.payment_id'))
            GROUP BY 1
            """,
            (after_seq, canonical.INT_ABS_MAX if through_seq is None else through_seq),
        ).fetchall()
        for currency, count, amount, oldest in rows:
            exposure.count += count
            exposure.amount_by_currency[currency] = amount
            if exposure.oldest_ts_ms is None or oldest < exposure.oldest_ts_ms:
                exposure.oldest_ts_ms = oldest
        return exposure

    def _prefetch(
        self, conn: sqlite3.Connection, group: Sequence[_Prepared], *, with_intents: bool
    ) -> dict[str, Entry]:
        """Every stored payment entry the group's payments may touch, in one query per chunk."""
        keys: set[str] = set()
        for p in group:
            if p.kind == KIND_PAYMENT_INTENT:
                if with_intents:
                    keys.add(f"{p.kind}:{p.payment_id}")
            elif p.payment_id is not None:
                keys.update(f"{kind}:{p.payment_id}" for kind in PAYMENT_KINDS)
        ordered = sorted(keys)
        found: dict[str, Entry] = {}
        chunk = 300
        for i in range(0, len(ordered), chunk):
            part = ordered[i : i + chunk]
            placeholders = ",".join("?" * len(part))
            # The f-string adds only "?" placeholders; values are bound.
            rows = conn.execute(
                "SELECT e.seq, e.kind, e.ts_ms, e.body, e.prev_hash, e.hash, e.state, "  # noqa: S608
                "k.dedup_key FROM payment_keys AS k JOIN entries AS e ON e.seq = k.seq "
                f"WHERE k.dedup_key IN ({placeholders})",
                part,
            ).fetchall()
            for row in rows:
                found[str(row[7])] = self._row_to_entry(row)
        return found

    def _check_limits(self, prepared: _Prepared, exposure: _Exposure, now_ms: int) -> None:
        limits = self.limits
        if limits is None or prepared.kind != KIND_PAYMENT_INTENT:
            return
        assert prepared.amount_minor is not None
        assert prepared.currency is not None
        if prepared.amount_minor > limits.payment_amount_max_minor:
            raise OfflineLimitError(
                "payment_amount",
                f"amount {prepared.amount_minor} exceeds the offline per-payment limit "
                f"{limits.payment_amount_max_minor}",
            )
        stored = exposure.amount_by_currency.get(prepared.currency, 0)
        if stored + prepared.amount_minor > limits.amount_total_max_minor:
            raise OfflineLimitError(
                "amount_total",
                f"stored offline amount would exceed {limits.amount_total_max_minor} "
                f"{prepared.currency}",
            )
        if exposure.count + 1 > limits.payments_max:
            raise OfflineLimitError(
                "payments_count", f"already {exposure.count} payments stored offline"
            )
        if exposure.oldest_ts_ms is not None and (
            now_ms - exposure.oldest_ts_ms > limits.age_max_s * 1000
        ):
            raise OfflineLimitError(
                "age",
                f"the oldest stored payment is older than {limits.age_max_s} s; "
                "new payments wait until the terminal has synced",
            )

    def _commit_group(self, group: Sequence[_Prepared]) -> list[Entry | JournalError]:
        """Assign seqs and hashes to a group, insert it, commit once (one fsync).

        Fast path: new payment intents are not looked up first; the unique
        index and the archive trigger refuse a duplicate inside the same
        transaction, which is then rolled back and the group redone with every
        payment looked up (the slow path). Retries are rare, lookups are not.
        """
        if self._fault is not None:
            return [JournalUnavailableError(str(self._fault))] * len(group)
        conn = self._db()
        try:
            return self._stage_and_commit(conn, group, careful=False)
        except _DuplicateInGroup:
            return self._stage_and_commit(conn, group, careful=True)

    def _stage_and_commit(
        self, conn: sqlite3.Connection, group: Sequence[_Prepared], *, careful: bool
    ) -> list[Entry | JournalError]:
        # The write lock is taken first, so that what the group is checked
        # against (head, acknowledgements, stored payments) cannot change
        # before it commits.
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return self._write_failed([], str(exc), len(group))
        try:
            return self._stage_in_transaction(conn, group, careful=careful)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _release_acknowledged(self, conn: sqlite3.Connection, acked: int) -> None:
        """Stop counting payments central acknowledged up to ``acked``.

        Only the newly acknowledged range is read, so acknowledging batch
        after batch of a long backlog costs what the batches hold, not what is
        still pending.
        """
        if acked <= self._acked_seen:
            return
        gone = self._compute_exposure(conn, self._acked_seen, acked)
        exposure = self._exposure
        exposure.count = max(0, exposure.count - gone.count)
        for currency, amount in gone.amount_by_currency.items():
            exposure.amount_by_currency[currency] = (
                exposure.amount_by_currency.get(currency, 0) - amount
            )
        if exposure.count == 0:
            exposure.amount_by_currency.clear()
            exposure.oldest_ts_ms = None
        else:
            # The first intent after the acknowledged range: never later than
            # the oldest payment still at risk, so the age limit can only
            # refuse earlier, never later.
            row = conn.execute(
                "SELECT ts_ms FROM entries WHERE kind = 'payment-intent' AND seq > ? "
                "ORDER BY seq LIMIT 1",
                (acked,),
            ).fetchone()
            exposure.oldest_ts_ms = None if row is None else int(row[0])
        self._acked_seen = acked

    def _follow_disk(self, conn: sqlite3.Connection) -> None:
        """Notice what other processes changed: acknowledgements, or a second writer.

        The sync agent runs in its own process and marks entries acknowledged
        in the same file; the money at risk is recomputed when it has. Entries
        appended by another process would fork the chain, so that is refused.
        """
        disk_head, acked = conn.execute(
            "SELECT (SELECT max(seq) FROM entries), "
            "(SELECT value FROM journal_meta WHERE key = 'acked_through')"
        ).fetchone()
        if disk_head is not None and int(disk_head) != self._head_seq:
            raise JournalCorruptError(
                f"another process appended to this journal (head {disk_head}, expected "
                f"{self._head_seq}); a journal has one writer — stop the other service"
            )
        self._release_acknowledged(conn, int(acked or 0))

    def _stage_in_transaction(
        self, conn: sqlite3.Connection, group: Sequence[_Prepared], *, careful: bool
    ) -> list[Entry | JournalError]:
        try:
            self._follow_disk(conn)
        except JournalCorruptError as exc:
            conn.execute("ROLLBACK")
            self._fault = exc
            logger.error("journal_second_writer error=%s", exc)
            return [exc] * len(group)
        now_ms = self._clock_ms()
        seq, prev = self._head_seq, self._head_hash
        exposure = _Exposure(
            self._exposure.count,
            dict(self._exposure.amount_by_currency),
            self._exposure.oldest_ts_ms,
        )
        lookups = group if careful else [p for p in group if p.kind != KIND_PAYMENT_INTENT]
        stored = self._prefetch(conn, lookups, with_intents=careful)
        staged: dict[str, Entry] = {}
        rows: list[tuple[Any, ...]] = []
        keys: list[tuple[str, int]] = []
        outcomes: list[Entry | JournalError] = []
        for p in group:
            try:
                if p.dedup_key is not None:
                    existing = staged.get(p.dedup_key) or stored.get(p.dedup_key)
                    if existing is None and (careful or p.kind != KIND_PAYMENT_INTENT):
                        # A result or reversal whose intent is still here (or
                        # new in this group) cannot be archived: pruning takes
                        # entries in seq order and the intent comes first.
                        intent_key = f"{KIND_PAYMENT_INTENT}:{p.payment_id}"
                        if p.kind == KIND_PAYMENT_INTENT or (
                            intent_key not in staged and intent_key not in stored
                        ):
                            self._refuse_if_archived(conn, p.dedup_key, p)
                    if existing is not None:
                        if canonical.encode(existing.body) != p.body_bytes:
                            raise JournalConflictError(
                                f"{p.kind} for payment {p.payment_id} exists with a different body"
                            )
                        outcomes.append(existing)
                        continue
                if p.kind in (KIND_PAYMENT_RESULT, KIND_REVERSAL):
                    intent_key = f"{KIND_PAYMENT_INTENT}:{p.payment_id}"
                    if intent_key not in staged and intent_key not in stored:
                        self._refuse_if_archived(conn, intent_key, p)
                        raise EntryInvalidError(
                            f"{p.kind} for payment {p.payment_id}, which has no intent"
                        )
                self._check_limits(p, exposure, now_ms)
            except JournalError as exc:
                outcomes.append(exc)
                continue
            seq += 1
            digest = _hash_encoded(prev, _entry_bytes(seq, p.kind, now_ms, p.body_bytes))
            entry = Entry(
                seq=seq,
                kind=p.kind,
                ts_ms=now_ms,
                body=p.body,
                prev_hash=prev,
                hash=digest,
                state=EntryState.PENDING,
            )
            rows.append((seq, p.kind, now_ms, p.body_bytes, prev, digest))
            if p.dedup_key is not None:
                keys.append((p.dedup_key, seq))
            prev = digest
            self._update_exposure(exposure, p, now_ms, staged, stored)
            if p.dedup_key is not None:
                staged[p.dedup_key] = entry
            outcomes.append(entry)
        if not rows:
            conn.execute("ROLLBACK")
            return outcomes
        try:
            conn.executemany(
                "INSERT INTO entries (seq, kind, ts_ms, body, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            if keys:
                conn.executemany("INSERT INTO payment_keys (dedup_key, seq) VALUES (?, ?)", keys)
        except sqlite3.IntegrityError:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if careful:  # every payment was looked up; this is not a duplicate
                return self._write_failed(outcomes, "integrity check failed after lookups")
            raise _DuplicateInGroup from None
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return self._write_failed(outcomes, str(exc))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return self._write_failed(outcomes, str(exc))
        self._head_seq, self._head_hash = seq, prev
        self._exposure = exposure
        self._rows_since_checkpoint += len(rows)
        if self._rows_since_checkpoint >= self.checkpoint_rows:
            self._request_checkpoint()
        return outcomes

    def _write_failed(
        self, outcomes: list[Entry | JournalError], reason: str, group_size: int = 0
    ) -> list[Entry | JournalError]:
        fault = JournalWriteError(f"journal write failed: {reason}")
        self._fault = fault
        logger.error("journal_write_failed error=%s", reason)
        if not outcomes:
            return [fault] * group_size
        # Entries of this group are not stored; ones that existed before are.
        return [fault if isinstance(o, Entry) and o.seq > self._head_seq else o for o in outcomes]

    def _refuse_if_archived(self, conn: sqlite3.Connection, key: str, p: _Prepared) -> None:
        row = conn.execute("SELECT seq FROM payment_keys WHERE dedup_key = ?", (key,)).fetchone()
        if row is not None:
            raise JournalConflictError(
                f"payment {p.payment_id} was recorded at seq {row[0]}, acknowledged by "
                "central and archived; it cannot be recorded or changed again"
            )

    def _request_checkpoint(self) -> None:
        """Copy the WAL into the database on another thread, off the append path.

        SQLite's automatic checkpoint runs inside the COMMIT that crosses its
        threshold and fsyncs the database file there, which would put that
        cost on one unlucky group of appenders. A passive checkpoint from a
        second connection runs beside the writer instead.
        """
        if self._checkpoint_running:
            return
        self._checkpoint_running = True
        self._rows_since_checkpoint = 0
        self._checkpointer.submit(self._checkpoint_sync)

    def _checkpoint_sync(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=5.0)
            try:
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            # Not fatal: the WAL keeps the data; the next checkpoint retries.
            logger.warning("journal_checkpoint_failed error=%s", exc)
        finally:
            self._checkpoint_running = False

    @staticmethod
    def _update_exposure(
        exposure: _Exposure,
        p: _Prepared,
        now_ms: int,
        staged: Mapping[str, Entry],
        stored: Mapping[str, Entry],
    ) -> None:
        """Account for one new entry in the money at risk (writer thread)."""
        if p.kind == KIND_PAYMENT_INTENT:
            assert p.currency is not None
            assert p.amount_minor is not None
            exposure.count += 1
            exposure.amount_by_currency[p.currency] = (
                exposure.amount_by_currency.get(p.currency, 0) + p.amount_minor
            )
            if exposure.oldest_ts_ms is None:
                exposure.oldest_ts_ms = now_ms
            return
        if not (
            (p.kind == KIND_PAYMENT_RESULT and p.outcome in OUTCOMES_WITHOUT_MONEY)
            or p.kind == KIND_REVERSAL
        ):
            return
        assert p.payment_id is not None

        def lookup(kind: str) -> Entry | None:
            key = f"{kind}:{p.payment_id}"
            return staged.get(key) or stored.get(key)

        intent = lookup(KIND_PAYMENT_INTENT)
        if intent is None or intent.state is EntryState.ACKNOWLEDGED:
            return
        # Release the money once: a reversal after a decline (or a decline
        # after a reversal) must not release it again.
        result = lookup(KIND_PAYMENT_RESULT) if p.kind == KIND_REVERSAL else None
        reversal = lookup(KIND_REVERSAL) if p.kind == KIND_PAYMENT_RESULT else None
        if reversal is not None or (
            result is not None and result.body.get("outcome") in OUTCOMES_WITHOUT_MONEY
        ):
            return
        body = intent.body
        currency, amount = str(body["currency"]), int(body["amount_minor"])
        exposure.count -= 1
        exposure.amount_by_currency[currency] = (
            exposure.amount_by_currency.get(currency, 0) - amount
        )
        # The oldest timestamp may now be later; it is recomputed exactly at the
        # next acknowledgement. Keeping the older one can only refuse earlier.

    @staticmethod
    def _row_to_entry(row: Sequence[Any]) -> Entry:
        return Entry(
            seq=int(row[0]),
            kind=str(row[1]),
            ts_ms=int(row[2]),
            body=canonical.decode(bytes(row[3])),
            prev_hash=bytes(row[4]),
            hash=bytes(row[5]),
            state=EntryState(int(row[6])),
        )

    def _read_sync(self, from_seq: int, limit: int) -> list[Entry]:
        conn = self._db()
        anchor_seq, _ = self._anchor(conn)
        if from_seq <= anchor_seq:
            raise JournalError(f"entries up to seq {anchor_seq} have been pruned")
        rows = conn.execute(
            "SELECT seq, kind, ts_ms, body, prev_hash, hash, state FROM entries "
            "WHERE seq >= ? ORDER BY seq LIMIT ?",
            (from_seq, limit),
        ).fetchall()
        return [self._row_to_entry(row) for row in rows]

    def _acked_through_sync(self) -> int:
        return int(self._meta(self._db(), "acked_through", 0))

    def _write_tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = fn(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise JournalWriteError(f"journal write failed: {exc}") from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return result

    def _mark_sent_sync(self, through_seq: int) -> None:
        self._write_tx(
            lambda c: c.execute(
                "UPDATE entries SET state = 1 WHERE seq > ? AND seq <= ? AND state = 0",
                (self._acked_through_sync(), through_seq),
            )
        )

    def _mark_acked_sync(self, through_seq: int, head_hash: bytes) -> None:
        conn = self._db()
        head_seq, _ = self._head_sync()
        if through_seq > head_seq:
            raise JournalError(f"ack for seq {through_seq} beyond the journal head {head_seq}")
        if through_seq <= self._acked_through_sync():
            return  # an old or repeated ack changes nothing
        row = conn.execute("SELECT hash FROM entries WHERE seq = ?", (through_seq,)).fetchone()
        if row is None or bytes(row[0]) != head_hash:
            raise JournalError(f"ack head hash does not match entry {through_seq}; ack refused")

        def tx(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE entries SET state = 2 WHERE seq > ? AND seq <= ?",
                (self._acked_through_sync(), through_seq),
            )
            c.execute(
                "INSERT INTO journal_meta VALUES ('acked_through', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (through_seq,),
            )

        self._write_tx(tx)
        self._release_acknowledged(conn, through_seq)

    _INTENT_KEYS = (
        # Intent keys are "payment-intent:<id>"; ';' sorts right after ':'.
        "k.dedup_key >= 'payment-intent:' AND k.dedup_key < 'payment-intent;'"
    )

    def _outcome_unknown_sync(self) -> list[Entry]:
        rows = (
            self._db()
            .execute(
                f"""
                SELECT e.seq, e.kind, e.ts_ms, e.body, e.prev_hash, e.hash, e.state
                FROM payment_keys AS k JOIN entries AS e ON e.seq = k.seq
                WHERE {self._INTENT_KEYS} AND NOT EXISTS (
                    SELECT 1 FROM payment_keys AS r
                    WHERE r.dedup_key = 'payment-result:' || substr(k.dedup_key, 16))
                ORDER BY e.seq
                """  # noqa: S608 - a constant
            )
            .fetchall()
        )
        return [self._row_to_entry(row) for row in rows]

    def _find_payment_sync(self, payment_id: str) -> dict[str, Entry]:
        keys = [f"{kind}:{payment_id}" for kind in sorted(PAYMENT_KINDS)]
        rows = (
            self._db()
            .execute(
                "SELECT e.seq, e.kind, e.ts_ms, e.body, e.prev_hash, e.hash, e.state "
                "FROM payment_keys AS k JOIN entries AS e ON e.seq = k.seq "
                "WHERE k.dedup_key IN (?, ?, ?) ORDER BY e.seq",
                keys,
            )
            .fetchall()
        )
        return {str(row[1]): self._row_to_entry(row) for row in rows}

    def _prune_sync(self, older_than_ms: int) -> int:
        conn = self._db()
        acked = self._acked_through_sync()
        row = conn.execute(
            "SELECT max(seq) FROM entries WHERE seq <= ? AND ts_ms < ? AND state = 2",
            (acked, older_than_ms),
        ).fetchone()
        last = row[0]
        if last is None:
            return 0
        # Never prune the head: it anchors the next entry's prev_hash.
        last = min(int(last), self._head_sync()[0] - 1)
        if last <= self._anchor(conn)[0]:
            return 0
        anchor_hash = conn.execute("SELECT hash FROM entries WHERE seq = ?", (last,)).fetchone()[0]

        def tx(c: sqlite3.Connection) -> int:
            # payment_keys rows stay: they remember archived payments.
            deleted = c.execute("DELETE FROM entries WHERE seq <= ?", (last,)).rowcount
            for key, value in (("anchor_seq", last), ("anchor_hash", bytes(anchor_hash))):
                c.execute(
                    "INSERT INTO journal_meta VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            return int(deleted)

        deleted = self._write_tx(tx)
        logger.info("journal_pruned through_seq=%d entries=%d", last, deleted)
        return deleted

    def _walk(self, conn: sqlite3.Connection, first_seq: int, last_seq: int) -> VerifyReport:
        anchor_seq, anchor_hash = self._anchor(conn)
        if first_seq <= anchor_seq + 1:
            first_seq, expected_prev = anchor_seq + 1, anchor_hash
        else:
            row = conn.execute(
                "SELECT hash FROM entries WHERE seq = ?", (first_seq - 1,)
            ).fetchone()
            expected_prev = GENESIS_HASH if row is None else bytes(row[0])
        expected_seq, checked = first_seq, 0

        def bad(seq: int, problem: str) -> VerifyReport:
            return VerifyReport(
                ok=False,
                entries_checked=checked,
                anchor_seq=anchor_seq,
                head_seq=last_seq,
                first_bad_seq=seq,
                problem=problem,
            )

        cursor = conn.execute(
            "SELECT seq, kind, ts_ms, body, prev_hash, hash FROM entries "
            "WHERE seq >= ? AND seq <= ? ORDER BY seq",
            (first_seq, last_seq),
        )
        for seq, kind, ts_ms, body, prev_hash, digest in _iter_rows(cursor):
            if seq != expected_seq:
                return bad(expected_seq, f"entry {expected_seq} is missing")
            if bytes(prev_hash) != expected_prev:
                return bad(seq, "prev_hash does not match the entry before it")
            try:
                body_value = canonical.decode(bytes(body))
            except canonical.CanonicalError as exc:
                return bad(seq, f"body is not canonical: {exc}")
            if not isinstance(body_value, dict):
                return bad(seq, "body is not an object")
            if _hash_encoded(
                bytes(prev_hash), _entry_bytes(seq, kind, ts_ms, bytes(body))
            ) != bytes(digest):
                return bad(seq, "hash does not match the entry's content")
            expected_prev, expected_seq, checked = bytes(digest), seq + 1, checked + 1
        if expected_seq != last_seq + 1:
            return bad(expected_seq, f"entry {expected_seq} is missing")
        return VerifyReport(
            ok=True, entries_checked=checked, anchor_seq=anchor_seq, head_seq=last_seq
        )

    def _verify_sync(self) -> VerifyReport:
        conn = self._db()
        row = conn.execute("SELECT max(seq) FROM entries").fetchone()
        last = int(row[0]) if row[0] is not None else self._anchor(conn)[0]
        return self._walk(conn, 1, last)

    def _stats_sync(self) -> JournalStats:
        conn = self._db()
        by_state = {s.name.lower(): 0 for s in EntryState}
        for state, count in conn.execute("SELECT state, count(*) FROM entries GROUP BY state"):
            by_state[EntryState(state).name.lower()] = int(count)
        by_kind = {
            str(kind): int(count)
            for kind, count in conn.execute("SELECT kind, count(*) FROM entries GROUP BY kind")
        }
        oldest = conn.execute(
            "SELECT ts_ms FROM entries WHERE seq > ? ORDER BY seq LIMIT 1",
            (self._acked_through_sync(),),
        ).fetchone()
        oldest = None if oldest is None else oldest[0]
        now_ms = self._clock_ms()
        unknown = conn.execute(
            f"""
            SELECT count(*) FROM payment_keys AS k JOIN entries AS e ON e.seq = k.seq
            WHERE {self._INTENT_KEYS} AND NOT EXISTS (
                SELECT 1 FROM payment_keys AS r
                WHERE r.dedup_key = 'payment-result:' || substr(k.dedup_key, 16))
            """  # noqa: S608 - a constant
        ).fetchone()[0]
        exposure = self._compute_exposure(conn)
        try:
            size = self.path.stat().st_size
            wal = self.path.with_name(self.path.name + "-wal")
            size += wal.stat().st_size if wal.exists() else 0
        except OSError:
            size = 0
        return JournalStats(
            head_seq=self._head_sync()[0],
            acknowledged_through=self._acked_through_sync(),
            entries_by_state=by_state,
            entries_by_kind=by_kind,
            oldest_pending_age_s=None if oldest is None else max(0.0, (now_ms - oldest) / 1000),
            pending_amount_minor_by_currency=dict(exposure.amount_by_currency),
            stored_payments=exposure.count,
            outcome_unknown=int(unknown),
            schema_version=int(conn.execute("PRAGMA user_version").fetchone()[0]),
            file_bytes=size,
        )


def limits_from_settings(settings: Settings) -> OfflineLimits:
    """The offline limits configured in ``[journal]``."""
    j = settings.journal
    return OfflineLimits(
        payment_amount_max_minor=j.offline_payment_amount_max_minor,
        amount_total_max_minor=j.offline_amount_total_max_minor,
        payments_max=j.offline_payments_max,
        age_max_s=j.offline_age_max_s,
    )


async def open_from_settings(settings: Settings) -> Journal:
    """Open the journal configured in ``settings`` with its limits and bounds."""
    return await Journal.open(
        settings.journal_path,
        limits=limits_from_settings(settings),
        group_commit_entries_max=settings.journal.group_commit_entries_max,
        append_queue_max=settings.journal.append_queue_max,
    )


def schema_statements() -> list[str]:
    """Every statement of every migration, in order (for tools and baselines)."""
    return [statement for _, sql in MIGRATIONS for statement in _statements(sql)]


def _statements(sql: str) -> Iterator[str]:
    """Split a migration into complete statements (triggers contain semicolons)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:60]}")


def _iter_rows(cursor: sqlite3.Cursor, chunk: int = 1024) -> Iterator[Sequence[Any]]:
    while True:
        rows = cursor.fetchmany(chunk)
        if not rows:
            return
        yield from rows
