"""Publishing the catalog from a billing-center file (``lobbypay central import-billing``).

The catalog package parses the file and signs releases; this module versions
them in central's storage. Each import publishes a snapshot and, when the
previous import is known, a delta from it. To build that delta central keeps
the previous source file (compressed) beside the release and re-parses it, so
no second copy of the catalog model is needed.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from central_sync import protocol
from central_sync.central.errors import BadRequestError
from central_sync.central.storage import Storage

logger = logging.getLogger(__name__)

SOURCE_KIND = "billing-source"
CATALOG_VALID_S_DEFAULT = 35 * 24 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """What an import published."""

    version: int
    accounts: int
    snapshot_bytes: int
    delta_bytes: int | None
    """None when no delta could be built (first import, or providers removed)."""


async def import_billing_file(
    storage: Storage,
    signer: protocol.Signer,
    path: Path,
    *,
    now_ms: int,
    valid_s: int = CATALOG_VALID_S_DEFAULT,
    deployment: str = "default",
) -> Published:
    """Parse ``path`` and publish it as the next catalog version.

    Raises the catalog package's ``BillingImportError`` (every bad row, by line)
    before anything is stored.
    """
    from central_sync.catalog.billing_import import parse_billing_bytes, parse_billing_file
    from central_sync.catalog.errors import ReleaseBuildError
    from central_sync.catalog.publish import build_delta, build_snapshot

    suffix = path.suffix.lower().lstrip(".")
    # Parsing and signing a large catalog is CPU and file work: off the event loop.
    catalog = await asyncio.to_thread(parse_billing_file, path, deployment=deployment)
    source = await asyncio.to_thread(path.read_bytes)
    previous = await storage.latest_catalog_version()
    version = previous + 1
    expires_ms = now_ms + valid_s * 1000
    try:
        snapshot = await asyncio.to_thread(
            build_snapshot,
            catalog,
            version,
            signer,
            published_at_ms=now_ms,
            expires_at_ms=expires_ms,
        )
    except ReleaseBuildError as exc:
        raise BadRequestError(f"cannot build the catalog: {exc}") from None
    delta: bytes | None = None
    old_source = await storage.latest_publication(kind=SOURCE_KIND, scope="catalog")
    if previous > 0 and old_source is not None and old_source[0] == previous:
        old_kind, _, old_data = zlib.decompress(old_source[1]).partition(b"\n")
        try:
            old = parse_billing_bytes(
                old_data, kind="json" if old_kind == b"json" else "csv", deployment=deployment
            )
            delta = build_delta(
                old,
                catalog,
                version,
                signer,
                base_version=previous,
                published_at_ms=now_ms,
                expires_at_ms=expires_ms,
            )
        except (ReleaseBuildError, ValueError) as exc:
            logger.info("catalog_delta_skipped version=%d reason=%s", version, exc)
    await storage.put_catalog_release(
        version=version, kind="snapshot", base_version=None, data=snapshot, now_ms=now_ms
    )
    if delta is not None:
        await storage.put_catalog_release(
            version=version, kind="delta", base_version=previous, data=delta, now_ms=now_ms
        )
    await storage.put_publication(
        kind=SOURCE_KIND,
        scope="catalog",
        version=version,
        data=zlib.compress(suffix.encode() + b"\n" + source, 6),
        now_ms=now_ms,
    )
    return Published(
        version=version,
        accounts=len(catalog.accounts),
        snapshot_bytes=len(snapshot),
        delta_bytes=None if delta is None else len(delta),
    )
