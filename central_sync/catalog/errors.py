"""The catalog's error taxonomy (CONVENTIONS.md, "A deliberate error taxonomy").

Every error raised by :mod:`central_sync.catalog` is a :class:`CatalogError`. Each
carries a stable ``reason`` code for logs, heartbeats and metrics. A refused
release (:class:`ReleaseRefusedError`) always means *nothing was changed* in the
local store: the old catalog is still there, whole.

The two refusals that the signed envelope itself detects also subclass the
matching :mod:`central_sync.signing` errors, so code that already catches
``signing.UnknownVersionError`` or ``signing.BadSignatureError`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, NamedTuple

from central_sync import signing

__all__ = [
    "BaseVersionMismatchError",
    "BillingImportError",
    "BillingProblem",
    "CatalogError",
    "CatalogStoreError",
    "CatalogUnavailableError",
    "CatalogValueError",
    "ExpiredReleaseError",
    "MalformedReleaseError",
    "ReleaseBuildError",
    "ReleaseHashMismatchError",
    "ReleaseRefusedError",
    "ReleaseSignatureError",
    "ReleaseTooLargeError",
    "RollbackError",
    "UnknownReleaseVersionError",
]


class CatalogError(Exception):
    """Base of every catalog error. ``reason`` is a short stable code."""

    reason: ClassVar[str] = "catalog-error"


class CatalogValueError(CatalogError, ValueError):
    """A catalog value (account, service, rule) breaks an invariant of the model."""

    reason = "invalid-value"


class CatalogStoreError(CatalogError):
    """The local catalog store cannot be read or written (I/O, corrupt file)."""

    reason = "store-error"


class CatalogUnavailableError(CatalogStoreError):
    """There is no local catalog at that path yet (a reader cannot create one)."""

    reason = "unavailable"


class ReleaseBuildError(CatalogError, ValueError):
    """Central was asked to publish something that cannot be a valid release."""

    reason = "build-error"


class ReleaseRefusedError(CatalogError):
    """A catalog release was refused; the local store is unchanged."""

    reason = "refused"


class MalformedReleaseError(ReleaseRefusedError):
    """The release is not well formed: framing, manifest or a record is wrong."""

    reason = "malformed"


class UnknownReleaseVersionError(ReleaseRefusedError, signing.UnknownVersionError):
    """The release speaks a protocol or catalog format version we do not."""

    reason = "unknown-version"


class ReleaseSignatureError(ReleaseRefusedError, signing.BadSignatureError):
    """The release is not signed by central's pinned key."""

    reason = "bad-signature"


class ReleaseHashMismatchError(ReleaseRefusedError):
    """A chunk or the payload does not hash to what the signed manifest says."""

    reason = "hash-mismatch"


class ReleaseTooLargeError(ReleaseRefusedError):
    """The release exceeds a bound (manifest bytes, chunk bytes, records, ...)."""

    reason = "too-large"


class RollbackError(ReleaseRefusedError):
    """The release is not newer than the catalog we have (TUF rollback attack)."""

    reason = "rollback"


class ExpiredReleaseError(ReleaseRefusedError):
    """The release has already expired (TUF freeze attack or a stale mirror)."""

    reason = "expired"


class BaseVersionMismatchError(ReleaseRefusedError):
    """A delta was built on a base version other than the one we hold."""

    reason = "wrong-base"


class BillingProblem(NamedTuple):
    """One problem in a billing-center file: where, which field, what is wrong.

    A named tuple, so ``line, field, message = problem`` works. ``line`` is the
    1-based line of the file where the bad row starts (0: the file as a whole).
    """

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.field}: {self.message}"


class BillingImportError(CatalogError, ValueError):
    """A billing-center file has problems; nothing was imported.

    ``problems`` lists every problem found, in line order, not just the first.
    """

    reason = "billing-import"

    def __init__(self, problems: Iterable[BillingProblem]) -> None:
        self.problems: tuple[BillingProblem, ...] = tuple(
            sorted(problems, key=lambda p: (p.line, p.field))
        )
        assert self.problems, "a BillingImportError needs at least one problem"
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = len(self.problems) - 5
        suffix = f"; and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.problems)} problem(s) in billing file: {shown}{suffix}")
