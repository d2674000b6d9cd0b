"""The local catalog of accounts and debts and its signed releases (DESIGN.md, "The local catalog").

* :mod:`~central_sync.catalog.model` — accounts, services, providers, tariffs,
  surcharge rules and amount limits (frozen dataclasses; money in kopecks).
* :mod:`~central_sync.catalog.store` — :class:`CatalogStore`, the SQLite file the
  kiosk and gateway read and only the sync agent writes.
* :mod:`~central_sync.catalog.publish` — signed snapshots and deltas: central
  builds them (:func:`build_snapshot`, :func:`build_delta`), terminals verify and
  apply them atomically (:func:`apply_release`).
* :mod:`~central_sync.catalog.billing_import` — the billing center's CSV / JSON
  files into a :class:`Catalog` (:func:`parse_billing_file`).
* :mod:`~central_sync.catalog.generator` — deterministic synthetic catalogs.

Errors are :class:`~central_sync.catalog.errors.CatalogError` subclasses.
"""

from central_sync.catalog.errors import (
    BaseVersionMismatchError,
    BillingImportError,
    BillingProblem,
    CatalogError,
    CatalogStoreError,
    CatalogUnavailableError,
    CatalogValueError,
    ExpiredReleaseError,
    MalformedReleaseError,
    ReleaseBuildError,
    ReleaseHashMismatchError,
    ReleaseRefusedError,
    ReleaseSignatureError,
    ReleaseTooLargeError,
    RollbackError,
    UnknownReleaseVersionError,
)
from central_sync.catalog.model import (
    Account,
    AccountView,
    Address,
    AmountLimits,
    Catalog,
    CatalogHeader,
    Instalment,
    LimitProblem,
    Meter,
    Provider,
    Service,
    ServiceType,
    ServiceView,
    SurchargeRule,
    Tariff,
    luhn_valid,
    mask_holder_name,
    transliterate,
)
from central_sync.catalog.publish import (
    DELTA_TYPE,
    SNAPSHOT_TYPE,
    ApplyResult,
    ReleaseInfo,
    ReleaseLimits,
    apply_release,
    build_delta,
    build_snapshot,
    read_release_info,
)
from central_sync.catalog.store import CatalogStatus, CatalogStore

__all__ = [
    "DELTA_TYPE",
    "SNAPSHOT_TYPE",
    "Account",
    "AccountView",
    "Address",
    "AmountLimits",
    "ApplyResult",
    "BaseVersionMismatchError",
    "BillingImportError",
    "BillingProblem",
    "Catalog",
    "CatalogError",
    "CatalogHeader",
    "CatalogStatus",
    "CatalogStore",
    "CatalogStoreError",
    "CatalogUnavailableError",
    "CatalogValueError",
    "ExpiredReleaseError",
    "Instalment",
    "LimitProblem",
    "MalformedReleaseError",
    "Meter",
    "Provider",
    "ReleaseBuildError",
    "ReleaseHashMismatchError",
    "ReleaseInfo",
    "ReleaseLimits",
    "ReleaseRefusedError",
    "ReleaseSignatureError",
    "ReleaseTooLargeError",
    "RollbackError",
    "Service",
    "ServiceType",
    "ServiceView",
    "SurchargeRule",
    "Tariff",
    "UnknownReleaseVersionError",
    "apply_release",
    "build_delta",
    "build_snapshot",
    "luhn_valid",
    "mask_holder_name",
    "read_release_info",
    "transliterate",
]
