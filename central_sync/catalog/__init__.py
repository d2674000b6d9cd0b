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

Importing this package is cheap: the names below are loaded from their modules
on first use (PEP 562), so ``lobbypay --help`` does not pay for pydantic when it
imports :mod:`central_sync.catalog.cli`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from central_sync.catalog.billing_import import (
        CatalogPolicy,
        parse_billing_bytes,
        parse_billing_file,
    )
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

_MODULES = {
    "Account": "central_sync.catalog.model",
    "AccountView": "central_sync.catalog.model",
    "Address": "central_sync.catalog.model",
    "AmountLimits": "central_sync.catalog.model",
    "ApplyResult": "central_sync.catalog.publish",
    "BaseVersionMismatchError": "central_sync.catalog.errors",
    "BillingImportError": "central_sync.catalog.errors",
    "BillingProblem": "central_sync.catalog.errors",
    "Catalog": "central_sync.catalog.model",
    "CatalogPolicy": "central_sync.catalog.billing_import",
    "CatalogStatus": "central_sync.catalog.store",
    "CatalogStore": "central_sync.catalog.store",
    "CatalogError": "central_sync.catalog.errors",
    "CatalogHeader": "central_sync.catalog.model",
    "CatalogStoreError": "central_sync.catalog.errors",
    "CatalogUnavailableError": "central_sync.catalog.errors",
    "CatalogValueError": "central_sync.catalog.errors",
    "DELTA_TYPE": "central_sync.catalog.publish",
    "ExpiredReleaseError": "central_sync.catalog.errors",
    "Instalment": "central_sync.catalog.model",
    "LimitProblem": "central_sync.catalog.model",
    "MalformedReleaseError": "central_sync.catalog.errors",
    "Meter": "central_sync.catalog.model",
    "Provider": "central_sync.catalog.model",
    "ReleaseBuildError": "central_sync.catalog.errors",
    "ReleaseHashMismatchError": "central_sync.catalog.errors",
    "ReleaseInfo": "central_sync.catalog.publish",
    "ReleaseLimits": "central_sync.catalog.publish",
    "ReleaseRefusedError": "central_sync.catalog.errors",
    "ReleaseSignatureError": "central_sync.catalog.errors",
    "ReleaseTooLargeError": "central_sync.catalog.errors",
    "RollbackError": "central_sync.catalog.errors",
    "SNAPSHOT_TYPE": "central_sync.catalog.publish",
    "Service": "central_sync.catalog.model",
    "ServiceType": "central_sync.catalog.model",
    "ServiceView": "central_sync.catalog.model",
    "SurchargeRule": "central_sync.catalog.model",
    "Tariff": "central_sync.catalog.model",
    "UnknownReleaseVersionError": "central_sync.catalog.errors",
    "apply_release": "central_sync.catalog.publish",
    "build_delta": "central_sync.catalog.publish",
    "build_snapshot": "central_sync.catalog.publish",
    "luhn_valid": "central_sync.catalog.model",
    "mask_holder_name": "central_sync.catalog.model",
    "parse_billing_bytes": "central_sync.catalog.billing_import",
    "parse_billing_file": "central_sync.catalog.billing_import",
    "read_release_info": "central_sync.catalog.publish",
    "transliterate": "central_sync.catalog.model",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
    "CatalogPolicy",
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
    "parse_billing_bytes",
    "parse_billing_file",
    "read_release_info",
    "transliterate",
]
