"""The central ledger's error taxonomy (CONVENTIONS.md, "A deliberate error taxonomy").

One base, :class:`CentralError`. Each error says whether the caller may retry
(``retryable``) and carries a stable ``code``; the HTTP status lives only in the
service's error middleware (``app.py``), never here.
"""

from __future__ import annotations

from typing import ClassVar


class CentralError(Exception):
    """Base of every error the central ledger raises on purpose."""

    code: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False


class BadRequestError(CentralError):
    """The request from outside is malformed or fails its checks."""

    code = "bad-request"


class UnauthorizedError(CentralError):
    """The operator token is missing or wrong, or admin access is disabled."""

    code = "unauthorized"


class NotFoundError(CentralError):
    """The named terminal, code or release does not exist."""

    code = "not-found"


class ConflictError(CentralError):
    """The request contradicts what central already holds."""

    code = "conflict"


class RegistrationCodeError(CentralError):
    """A registration code is unknown, already used, expired, or for another location."""

    code = "registration-code"


class TerminalStateError(CentralError):
    """The terminal is revoked or quarantined, so the request is refused."""

    code = "terminal-state"


class StorageError(CentralError):
    """The database refused an operation for a reason that retrying will not fix."""

    code = "storage"


class StorageUnavailableError(StorageError):
    """The database is busy, locked or unreachable: retry later."""

    code = "storage-unavailable"
    retryable = True


class MigrationError(StorageError):
    """The database schema is newer than this software, or a migration failed."""

    code = "migration"
