"""The local catalog store: one SQLite file, read by the kiosk and gateway, written by the agent.

DESIGN.md, "The local catalog".

Theory of operation
-------------------
Tables (schema version 1)::

    state    one row: version, published_at_ms, expires_at_ms, accounts (count),
             header (canonical JSON of the catalog header), release_sha256,
             applied_at_ms
    accounts (vn TEXT PRIMARY KEY, body BLOB)  body = the account's record line
             (catalog.wire), exactly the bytes central signed for a snapshot
    cards    (vn, hash BLOB(32)) WITHOUT ROWID, PRIMARY KEY (vn, hash), and a
             UNIQUE index on hash, which also covers vn: a card lookup is one probe

A lookup is one read transaction: read ``state`` (to pick the header of the
same version), then the account row, so a reader never pairs an account with
another version's surcharge rules. Headers are parsed once per version and cached.

Atomic updates. Every release (snapshot or delta) is applied in **one write
transaction** on this file in WAL mode; readers in other processes keep reading
the old catalog until the commit and then see the new one, never a mix. We also
considered building each snapshot into a new file and switching a symlink. We
measured both at 500,000 accounts on the 2-core target: 3.1 s for the new file,
4.0 s for an in-place transaction (DELETE of the old rows is cheap: SQLite frees
whole b-tree pages; the extra cost is the WAL copy, checkpointed right after the
commit). The 30% is affordable inside the 60 s budget (bench/catalog.py), and the
in-place transaction keeps what the file switch would lose: readers need no
"has the file changed?" check per lookup and no reopen; there is no window where
a reader opens a file being deleted; a WAL file never has to be paired with the
right database after a rename (renaming over a live WAL database is a documented
way to corrupt it); and a crash mid-apply is rolled back by SQLite itself. For a
snapshot the transaction drops the card-hash index, bulk-inserts in virtual-number
order (the publisher sorts) and rebuilds the index with one sort, which is faster
than a million random index inserts.

Durability: ``synchronous=NORMAL`` in WAL. A power cut may lose the last applied
release, never corrupt the file; the agent then simply pulls it again.

Readers open with ``readonly=True`` (SQLite ``mode=ro`` and ``query_only``). A
read-only reader of a WAL database needs the ``-wal`` and ``-shm`` files to exist
or its directory to be writable; the sync agent keeps its connection open, and
deployments give the kiosk and gateway group write access to the catalog
directory (see systemd/).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from central_sync.catalog import model as m
from central_sync.catalog import wire
from central_sync.catalog.errors import (
    CatalogStoreError,
    CatalogUnavailableError,
    MalformedReleaseError,
    RollbackError,
)

__all__ = [
    "CATALOG_FILE_NAME",
    "SCHEMA_VERSION",
    "ApplyTransaction",
    "CatalogStatus",
    "CatalogStore",
    "ReleaseState",
]

SCHEMA_VERSION = 1
CATALOG_FILE_NAME = "catalog.db"
"""The catalog's file name under ``terminal.data_dir`` (the sync agent writes it there)."""
BUSY_TIMEOUT_MS = 5_000
WRITER_CACHE_KIB = 65_536
WAL_BYTES_MAX = 64 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    version INTEGER NOT NULL,
    published_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    accounts INTEGER NOT NULL,
    header BLOB NOT NULL,
    release_sha256 TEXT NOT NULL,
    applied_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (vn TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    vn TEXT NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (vn, hash)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS cards_by_hash ON cards(hash);
"""

_VN_RE = re.compile(m.VIRTUAL_NUMBER_PATTERN)
_CARD_RE = re.compile(m.CARD_HASH_PATTERN)
_EMPTY_HEADER = m.CatalogHeader()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseState:
    """What a release sets in the store when it is applied."""

    version: int
    published_at_ms: int
    expires_at_ms: int
    accounts: int
    header: bytes
    release_sha256: str

    def __post_init__(self) -> None:
        assert self.version >= 1
        assert 0 <= self.published_at_ms < self.expires_at_ms
        assert self.accounts >= 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogStatus:
    """The catalog's state for status bars, heartbeats and ``doctor``."""

    version: int
    accounts: int
    published_at_ms: int
    expires_at_ms: int
    applied_at_ms: int
    release_sha256: str
    stale: bool
    age_s: float


class CatalogStore:
    """The local catalog (see the module docstring). Use :meth:`open`.

    Thread-safe: one connection, guarded by a lock (lookups take tens of µs).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
        self._conn = conn
        self._path = path
        self._readonly = readonly
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._header_key: tuple[int, str] = (-1, "")
        self._header: m.CatalogHeader = _EMPTY_HEADER

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False) -> CatalogStore:
        """Open the catalog at ``path``; a writer creates an empty one (version 0).

        Raises :class:`CatalogUnavailableError` when a reader finds no file and
        :class:`CatalogStoreError` when the file is not a catalog we can read.
        """
        p = Path(path)
        if readonly and not p.exists():
            raise CatalogUnavailableError(f"no catalog at {p}")
        conn: sqlite3.Connection | None = None
        try:
            if readonly:
                uri = f"file:{urllib.parse.quote(str(p.absolute()))}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA query_only = 1")
            else:
                conn = sqlite3.connect(str(p), isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                tables = {
                    name
                    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                if tables and "state" not in tables:
                    # Never touch someone else's database (a mistyped path that
                    # points at the journal, say): not even its journal mode.
                    conn.close()
                    raise CatalogStoreError(f"{p} is an SQLite file but not a catalog")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(f"PRAGMA journal_size_limit = {WAL_BYTES_MAX}")
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO state VALUES (1, ?, 0, 0, 0, 0, X'', '', 0)",
                    (SCHEMA_VERSION,),
                )
                conn.execute("COMMIT")
            row = conn.execute("SELECT schema_version FROM state WHERE id = 1").fetchone()
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise CatalogStoreError(f"cannot open catalog {p}: {exc}") from None
        if row is None or row[0] != SCHEMA_VERSION:
            conn.close()
            raise CatalogStoreError(
                f"catalog {p} has schema {row and row[0]}, not {SCHEMA_VERSION}"
            )
        return cls(conn, p, readonly=readonly)

    def close(self) -> None:
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._lock:
            self._conn.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    # ----------------------------------------------------------------- reading

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN")
                try:
                    yield self._conn
                finally:
                    self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise CatalogStoreError(f"catalog read failed: {exc}") from None

    def _header_in(self, conn: sqlite3.Connection) -> tuple[int, m.CatalogHeader]:
        # Called inside a read transaction, so the header and the row read next
        # belong to the same catalog version.
        version, sha = conn.execute(
            "SELECT version, release_sha256 FROM state WHERE id = 1"
        ).fetchone()
        if (version, sha) != self._header_key:
            blob = conn.execute("SELECT header FROM state WHERE id = 1").fetchone()[0]
            self._header = self._parse_header(blob)
            self._header_key = (version, sha)
        return version, self._header

    @staticmethod
    def _parse_header(blob: bytes) -> m.CatalogHeader:
        if not blob:
            return _EMPTY_HEADER
        try:
            return wire.header_from_wire(wire.decode_json(blob))
        except (ValueError, MalformedReleaseError) as exc:
            raise CatalogStoreError(f"stored catalog header is corrupt: {exc}") from None

    def _view(self, body: bytes, header: m.CatalogHeader, version: int) -> m.AccountView:
        try:
            account = wire.account_from_record(wire.decode_json(body), header)
        except (ValueError, KeyError, TypeError) as exc:
            raise CatalogStoreError(f"stored account record is corrupt: {exc}") from None
        services = tuple(
            m.ServiceView(
                service=s,
                surcharge=header.surcharge_for(s.provider.id, s.code),
                limits=header.limits_for(s.provider.id, s.code),
                tariff=header.tariff_for(s.provider.id, s.code, s.period),
            )
            for s in account.services
        )
        return m.AccountView(account=account, services=services, catalog_version=version)

    def account(self, virtual_number: str) -> m.AccountView | None:
        """The account with this virtual number, or None (also for a malformed number)."""
        if not isinstance(virtual_number, str) or not _VN_RE.fullmatch(virtual_number):
            return None
        with self._read() as conn:
            version, header = self._header_in(conn)
            row = conn.execute(
                "SELECT body FROM accounts WHERE vn = ?", (virtual_number,)
            ).fetchone()
        return None if row is None else self._view(row[0], header, version)

    def account_by_card_hash(self, card_hash: str) -> m.AccountView | None:
        """The account a resident card belongs to, by the card's keyed hash (hex)."""
        if not isinstance(card_hash, str):
            return None
        card_hash = card_hash.lower()
        if not _CARD_RE.fullmatch(card_hash):
            return None
        with self._read() as conn:
            version, header = self._header_in(conn)
            row = conn.execute(
                "SELECT a.body FROM cards AS c JOIN accounts AS a ON a.vn = c.vn WHERE c.hash = ?",
                (bytes.fromhex(card_hash),),
            ).fetchone()
        return None if row is None else self._view(row[0], header, version)

    def header(self) -> m.CatalogHeader:
        """Providers, service types, tariffs, surcharge rules and limits of this catalog."""
        with self._read() as conn:
            return self._header_in(conn)[1]

    def _state(self) -> tuple[Any, ...]:
        with self._read() as conn:
            row: tuple[Any, ...] = conn.execute(
                "SELECT version, published_at_ms, expires_at_ms, accounts, applied_at_ms,"
                " release_sha256 FROM state WHERE id = 1"
            ).fetchone()
        return row

    def version(self) -> int:
        """The catalog version; 0 before the first snapshot was applied."""
        return int(self._state()[0])

    def published_at_ms(self) -> int:
        return int(self._state()[1])

    def expires_at_ms(self) -> int:
        return int(self._state()[2])

    def accounts_count(self) -> int:
        return int(self._state()[3])

    def is_stale(self, now_ms: int) -> bool:
        """True when the catalog has expired (TUF freeze protection) or was never applied."""
        return now_ms >= self.expires_at_ms()

    def age_s(self, now_ms: int | None = None) -> float:
        """Seconds since central published this catalog (``now_ms`` defaults to the clock)."""
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        published = self.published_at_ms()
        return 0.0 if published == 0 else (now - published) / 1000

    def status(self, now_ms: int) -> CatalogStatus:
        version, published, expires, accounts, applied, sha = self._state()
        return CatalogStatus(
            version=version,
            accounts=accounts,
            published_at_ms=published,
            expires_at_ms=expires,
            applied_at_ms=applied,
            release_sha256=sha,
            stale=now_ms >= expires,
            age_s=0.0 if published == 0 else (now_ms - published) / 1000,
        )

    # ----------------------------------------------------------------- writing

    @contextlib.contextmanager
    def begin_apply(
        self, kind: Literal["snapshot", "delta"], *, expected_version: int
    ) -> Iterator[ApplyTransaction]:
        """One write transaction applying a release; rolled back on any exception.

        Only :mod:`central_sync.catalog.publish` calls this (after verifying the
        release); it refuses if the store's version moved since it was checked.
        """
        if self._readonly:
            raise CatalogStoreError("catalog opened read-only cannot apply releases")
        # A connection of its own, so lookups through this store keep answering
        # from the old catalog while a large snapshot is being applied.
        with self._write_lock:
            try:
                if self._writer is None:
                    self._writer = sqlite3.connect(
                        str(self._path), isolation_level=None, check_same_thread=False
                    )
                    self._writer.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                    self._writer.execute("PRAGMA synchronous = NORMAL")
                    self._writer.execute(f"PRAGMA journal_size_limit = {WAL_BYTES_MAX}")
                    self._writer.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
                conn = self._writer
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise CatalogStoreError(f"cannot start catalog update: {exc}") from None
            try:
                current = conn.execute("SELECT version FROM state WHERE id = 1").fetchone()[0]
                if current != expected_version:
                    raise RollbackError(
                        f"catalog changed while applying (now {current}, expected"
                        f" {expected_version})"
                    )
                txn = ApplyTransaction(conn, kind)
                yield txn
                if not txn.finished:
                    raise CatalogStoreError("apply transaction ended without finish()")
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise CatalogStoreError(f"catalog update failed: {exc}") from None
                raise
            # Copy the WAL back now, while we know it is large, rather than letting
            # the next small delta's commit pay for it. PASSIVE never waits for a
            # reader; journal_size_limit trims the file at the next write.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


class ApplyTransaction:
    """Writes of one release inside the open transaction (see CatalogStore.begin_apply)."""

    def __init__(self, conn: sqlite3.Connection, kind: Literal["snapshot", "delta"]) -> None:
        self._conn = conn
        self.kind = kind
        self.finished = False
        self._accounts = 0
        self._touched: set[str] = set()
        self._new_cards: list[tuple[str, bytes]] = []
        if kind == "snapshot":
            conn.execute("DROP INDEX IF EXISTS cards_by_hash")
            conn.execute("DELETE FROM cards")
            conn.execute("DELETE FROM accounts")
        else:
            self._accounts = conn.execute("SELECT accounts FROM state WHERE id = 1").fetchone()[0]

    def add_snapshot_rows(
        self, rows: Sequence[tuple[str, bytes]], cards: Sequence[tuple[str, bytes]]
    ) -> None:
        """Insert accounts (vn, record line) and their cards (vn, 32-byte hash)."""
        assert self.kind == "snapshot"
        assert not self.finished
        try:
            self._conn.executemany("INSERT INTO accounts (vn, body) VALUES (?, ?)", rows)
            self._conn.executemany("INSERT INTO cards (vn, hash) VALUES (?, ?)", cards)
        except sqlite3.IntegrityError:
            raise MalformedReleaseError("snapshot lists one account or card twice") from None
        self._accounts += len(rows)

    def _once(self, vn: str) -> None:
        if vn in self._touched:
            raise MalformedReleaseError(f"delta touches account {vn} twice")
        self._touched.add(vn)

    def put(self, vn: str, body: bytes, card_hashes: Sequence[bytes]) -> None:
        """Insert or replace one account (delta)."""
        assert self.kind == "delta"
        assert not self.finished
        self._once(vn)
        conn = self._conn
        existed = conn.execute("DELETE FROM accounts WHERE vn = ?", (vn,)).rowcount
        conn.execute("DELETE FROM cards WHERE vn = ?", (vn,))
        conn.execute("INSERT INTO accounts (vn, body) VALUES (?, ?)", (vn, body))
        # Cards go in after every account of the delta has shed its old cards,
        # so a card moving from one account to another works in either order.
        self._new_cards.extend((vn, h) for h in card_hashes)
        self._accounts += 0 if existed else 1

    def delete(self, vn: str) -> None:
        """Delete one account (delta); deleting an unknown account is malformed."""
        assert self.kind == "delta"
        assert not self.finished
        self._once(vn)
        if not self._conn.execute("DELETE FROM accounts WHERE vn = ?", (vn,)).rowcount:
            raise MalformedReleaseError(f"delta deletes account {vn}, which does not exist")
        self._conn.execute("DELETE FROM cards WHERE vn = ?", (vn,))
        self._accounts -= 1

    def finish(self, state: ReleaseState, *, applied_at_ms: int) -> None:
        """Check the result against the manifest and write the new state."""
        assert not self.finished
        conn = self._conn
        try:
            if self.kind == "snapshot":
                conn.execute("CREATE UNIQUE INDEX cards_by_hash ON cards(hash)")
            else:
                conn.executemany("INSERT INTO cards (vn, hash) VALUES (?, ?)", self._new_cards)
        except sqlite3.IntegrityError:
            raise MalformedReleaseError("one card hash belongs to two accounts") from None
        if self._accounts != state.accounts:
            raise MalformedReleaseError(
                f"release says {state.accounts} accounts, applying it gives {self._accounts}"
            )
        conn.execute(
            "UPDATE state SET version = ?, published_at_ms = ?, expires_at_ms = ?,"
            " accounts = ?, header = ?, release_sha256 = ?, applied_at_ms = ? WHERE id = 1",
            (
                state.version,
                state.published_at_ms,
                state.expires_at_ms,
                state.accounts,
                state.header,
                state.release_sha256,
                applied_at_ms,
            ),
        )
        self.finished = True
