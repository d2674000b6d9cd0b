"""Console users, their sessions and login throttling.

Theory of operation
-------------------
* A user has a name, one role (:class:`Role`) and a scrypt password hash.
* Logging in checks the throttle first (failed attempts for the name and from
  the address within ``login_window_s``), then the password (in a worker
  thread: scrypt is deliberately slow), records the attempt, and on success
  creates a session: a random 256-bit id given to the browser once, of which the
  server keeps only the SHA-256, with its own CSRF token, an idle expiry and an
  absolute one. Every login makes a new id (no session fixation).
* :func:`session_for` finds the session of a cookie, ends it when either expiry
  has passed, and writes its last-seen time at most every ``session_touch_s``.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from central_sync.central.errors import ConflictError, NotFoundError
from central_sync.central.sql import SqlConnection, insert_audit
from central_sync.central.storage import Storage
from central_sync.console import db
from central_sync.console.errors import (
    ConsoleInputError,
    LoginFailedError,
    LoginThrottledError,
)
from central_sync.console.passwords import DUMMY_HASH, hash_password, verify_password
from central_sync.console.settings import ConsoleSettings

USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
SESSION_ID_BYTES = 32
CSRF_TOKEN_BYTES = 32
REMOTE_CHARS_MAX = 64
ATTEMPTS_KEPT_S = 30 * 24 * 3600


class Role(enum.StrEnum):
    """What a console user may do."""

    OPERATOR = "operator"
    """Views everything, proposes resolutions of discrepancies."""
    SUPERVISOR = "supervisor"
    """What an operator may, and approves money-moving actions and closes days."""
    AUDITOR = "auditor"
    """Views and exports everything; changes nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    name: str
    role: Role
    created_ms: int
    disabled_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A logged-in user's session (the id itself is never stored)."""

    id_hash: str
    user: User
    csrf_token: str
    created_ms: int
    last_seen_ms: int
    expires_ms: int


def check_user_name(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise ConsoleInputError(
            "a user name is 2-32 characters: a lowercase letter, then lowercase letters,"
            " digits, '.', '_' or '-'"
        )
    return name


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ConsoleInputError(f"unknown role {text!r}: use one of {roles}") from None


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


# --- users ---------------------------------------------------------------------------


async def add_user(
    storage: Storage, name: str, role: Role, password: str, *, actor: str, now_ms: int
) -> User:
    """Create a user (ConflictError if the name exists); audited, password never kept."""
    check_user_name(name)
    password_hash = await asyncio.to_thread(hash_password, password)

    async def op(conn: SqlConnection) -> None:
        if await conn.fetchval("SELECT 1 FROM console_users WHERE name = ?", name):
            raise ConflictError(f"console user {name} exists already")
        await conn.execute(
            "INSERT INTO console_users (name, role, password_hash, created_ms,"
            " password_changed_ms) VALUES (?, ?, ?, ?, ?)",
            name,
            role.value,
            password_hash,
            now_ms,
            now_ms,
        )
        await insert_audit(conn, now_ms, actor, "console:user-add", name, {"role": role.value})

    await db.write(storage, op)
    return User(name=name, role=role, created_ms=now_ms)


async def set_user_disabled(
    storage: Storage, name: str, disabled: bool, *, actor: str, now_ms: int
) -> None:
    """Disable (ending every session) or re-enable a user; audited."""

    async def op(conn: SqlConnection) -> None:
        changed = await conn.execute(
            "UPDATE console_users SET disabled_ms = ? WHERE name = ?",
            now_ms if disabled else None,
            name,
        )
        if changed != 1:
            raise NotFoundError(f"no console user {name}")
        if disabled:
            await conn.execute("DELETE FROM console_sessions WHERE user_name = ?", name)
        action = "console:user-disable" if disabled else "console:user-enable"
        await insert_audit(conn, now_ms, actor, action, name, {})

    await db.write(storage, op)


async def list_users(storage: Storage) -> list[User]:
    async def op(conn: SqlConnection) -> list[User]:
        rows = await conn.fetch(
            "SELECT name, role, created_ms, disabled_ms FROM console_users ORDER BY name"
        )
        return [_user(row) for row in rows]

    return await db.read(storage, op)


def _user(row: Sequence[Any]) -> User:
    return User(name=row[0], role=Role(row[1]), created_ms=row[2], disabled_ms=row[3])


# --- login and sessions --------------------------------------------------------------------


async def _throttle(
    storage: Storage, name: str, remote: str, settings: ConsoleSettings, now_ms: int
) -> None:
    since = now_ms - settings.login_window_s * 1000

    async def op(conn: SqlConnection) -> tuple[int, int, int | None]:
        by_name = await conn.fetchval(
            "SELECT COUNT(*) FROM console_login_attempts WHERE user_name = ? AND ts_ms >= ?"
            " AND ok = ?",
            name,
            since,
            False,
        )
        by_remote = await conn.fetchval(
            "SELECT COUNT(*) FROM console_login_attempts WHERE remote = ? AND ts_ms >= ?"
            " AND ok = ?",
            remote,
            since,
            False,
        )
        oldest = await conn.fetchval(
            "SELECT MIN(ts_ms) FROM console_login_attempts WHERE (user_name = ? OR remote = ?)"
            " AND ts_ms >= ? AND ok = ?",
            name,
            remote,
            since,
            False,
        )
        return int(by_name), int(by_remote), oldest

    by_name, by_remote, oldest = await db.read(storage, op)
    if by_name >= settings.login_failures_max or by_remote >= settings.login_remote_failures_max:
        wait_ms = (oldest or now_ms) + settings.login_window_s * 1000 - now_ms
        raise LoginThrottledError(
            "too many failed logins; try again later", retry_after_s=max(1, wait_ms // 1000)
        )


async def login(
    storage: Storage,
    name: str,
    password: str,
    *,
    remote: str,
    settings: ConsoleSettings,
    now_ms: int,
) -> tuple[str, Session]:
    """Check the throttle and the password; a new session and its id (given out once).

    Raises LoginThrottledError or LoginFailedError (which does not say whether
    the name exists).
    """
    name = name.strip().lower()[:64]
    remote = remote[:REMOTE_CHARS_MAX]
    await _throttle(storage, name, remote, settings, now_ms)

    async def lookup(conn: SqlConnection) -> tuple[Sequence[Any], str] | None:
        row = await conn.fetchrow(
            "SELECT name, role, created_ms, disabled_ms, password_hash FROM console_users"
            " WHERE name = ?",
            name,
        )
        return None if row is None else (row[:4], row[4])

    found = await db.read(storage, lookup)
    stored = DUMMY_HASH if found is None else found[1]
    matches = await asyncio.to_thread(verify_password, password, stored)
    user = None if found is None else _user(found[0])
    ok = matches and user is not None and user.disabled_ms is None
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    session = None
    if ok:
        assert user is not None
        session = Session(
            id_hash=session_hash(session_id),
            user=user,
            csrf_token=secrets.token_urlsafe(CSRF_TOKEN_BYTES),
            created_ms=now_ms,
            last_seen_ms=now_ms,
            expires_ms=now_ms + settings.session_absolute_s * 1000,
        )

    async def record(conn: SqlConnection) -> None:
        await conn.execute(
            "INSERT INTO console_login_attempts (ts_ms, user_name, remote, ok) VALUES (?, ?, ?, ?)",
            now_ms,
            name,
            remote,
            ok,
        )
        # Old attempts are kept a while for the audit, then dropped (a bound).
        await conn.execute(
            "DELETE FROM console_login_attempts WHERE ts_ms < ?", now_ms - ATTEMPTS_KEPT_S * 1000
        )
        if session is None:
            return
        await conn.execute(
            "DELETE FROM console_sessions WHERE expires_ms < ? OR last_seen_ms < ?",
            now_ms,
            now_ms - settings.session_idle_s * 1000,
        )
        await conn.execute(
            "INSERT INTO console_sessions (id_hash, user_name, csrf_token, created_ms,"
            " last_seen_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)",
            session.id_hash,
            session.user.name,
            session.csrf_token,
            session.created_ms,
            session.last_seen_ms,
            session.expires_ms,
        )
        await insert_audit(conn, now_ms, name, "console:login", name, {"remote": remote})

    await db.write(storage, record)
    if session is None:
        raise LoginFailedError("wrong user name or password")
    return session_id, session


async def session_for(
    storage: Storage, session_id: str, *, settings: ConsoleSettings, now_ms: int
) -> Session | None:
    """The live session of a cookie's id, or None (an expired one is deleted)."""
    if not session_id or len(session_id) > 128:
        return None
    id_hash = session_hash(session_id)

    async def op(conn: SqlConnection) -> Sequence[Any] | None:
        return await conn.fetchrow(
            "SELECT u.name, u.role, u.created_ms, u.disabled_ms, s.csrf_token, s.created_ms,"
            " s.last_seen_ms, s.expires_ms FROM console_sessions s"
            " JOIN console_users u ON u.name = s.user_name WHERE s.id_hash = ?",
            id_hash,
        )

    row = await db.read(storage, op)
    if row is None:
        return None
    session = Session(
        id_hash=id_hash,
        user=_user(row[:4]),
        csrf_token=row[4],
        created_ms=row[5],
        last_seen_ms=row[6],
        expires_ms=row[7],
    )
    idle_end_ms = session.last_seen_ms + settings.session_idle_s * 1000
    if now_ms >= session.expires_ms or now_ms >= idle_end_ms or session.user.disabled_ms:
        await end_session(storage, id_hash)
        return None
    if now_ms - session.last_seen_ms >= settings.session_touch_s * 1000:

        async def touch(conn: SqlConnection) -> None:
            await conn.execute(
                "UPDATE console_sessions SET last_seen_ms = ? WHERE id_hash = ?", now_ms, id_hash
            )

        await db.write(storage, touch)
    return session


async def end_session(storage: Storage, id_hash: str) -> None:
    async def op(conn: SqlConnection) -> None:
        await conn.execute("DELETE FROM console_sessions WHERE id_hash = ?", id_hash)

    await db.write(storage, op)
