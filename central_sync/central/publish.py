"""Central's signed downloads: configuration bundles and revocation lists.

Each publication is signed with central's key (see ``protocol``), stored with a
version that only grows, and served as the exact signed bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from central_sync import protocol, signing
from central_sync.central.errors import BadRequestError, CentralError
from central_sync.central.storage import Storage, TerminalState
from firmware_config.identity import Identity, IdentityError, generate_identity, load_identity

CONFIG_KIND = "config"
REVOCATIONS_KIND = "revocations"
REVOCATIONS_SCOPE = "*"


class CentralKeyError(CentralError):
    """Central's own key is missing, unreadable or unsafe."""

    code = "central-key"


def load_central_key(path: Path) -> Identity:
    """Central's signing identity (the same key file format as a terminal's)."""
    try:
        return load_identity(path)
    except IdentityError as exc:
        raise CentralKeyError(f"{exc} ({exc.next_step})" if exc.next_step else str(exc)) from None


def create_central_key(path: Path) -> tuple[Identity, bool]:
    """Load the key at ``path``, or make it if there is none: (identity, created)."""
    if path.exists():
        return load_central_key(path), False
    try:
        return generate_identity(path), True
    except IdentityError as exc:
        raise CentralKeyError(str(exc)) from None


async def publish_config(
    storage: Storage,
    signer: protocol.Signer,
    *,
    scope: str,
    limits: Mapping[str, Any],
    surcharge_rules: Sequence[Any],
    timeouts: Mapping[str, Any],
    offline_policy: Mapping[str, Any],
    now_ms: int,
    valid_s: int,
) -> tuple[int, bytes]:
    """Sign and store the next configuration bundle for ``scope``: (version, bytes)."""
    latest = await storage.latest_publication(kind=CONFIG_KIND, scope=scope)
    version = 1 if latest is None else latest[0] + 1
    try:
        bundle = protocol.ConfigBundle(
            version=version,
            scope=scope,
            issued_ms=now_ms,
            expires_ms=now_ms + valid_s * 1000,
            limits=limits,
            surcharge_rules=surcharge_rules,
            timeouts=timeouts,
            offline_policy=offline_policy,
        )
        data = protocol.build_config_bundle(bundle, signer)
    except (ValueError, protocol.BuildError) as exc:
        raise BadRequestError(f"bad configuration bundle: {exc}") from None
    await storage.put_publication(
        kind=CONFIG_KIND, scope=scope, version=version, data=data, now_ms=now_ms
    )
    return version, data


async def config_for_terminal(storage: Storage, location: str | None) -> tuple[int, bytes] | None:
    """The bundle for a terminal's location, else the one for every terminal ("*")."""
    if location:
        found = await storage.latest_publication(kind=CONFIG_KIND, scope=f"location:{location}")
        if found is not None:
            return found
    return await storage.latest_publication(kind=CONFIG_KIND, scope="*")


async def publish_revocations(
    storage: Storage, signer: protocol.Signer, *, now_ms: int, valid_s: int
) -> tuple[int, bytes]:
    """Sign and store a new revocation list of every revoked terminal."""
    revoked = sorted(
        t.terminal_id for t in await storage.list_terminals() if t.state is TerminalState.REVOKED
    )
    latest = await storage.latest_publication(kind=REVOCATIONS_KIND, scope=REVOCATIONS_SCOPE)
    version = 1 if latest is None else latest[0] + 1
    data = protocol.build_revocation_list(
        protocol.RevocationList(
            version=version,
            issued_ms=now_ms,
            expires_ms=now_ms + valid_s * 1000,
            revoked=tuple(revoked),
        ),
        signer,
    )
    await storage.put_publication(
        kind=REVOCATIONS_KIND, scope=REVOCATIONS_SCOPE, version=version, data=data, now_ms=now_ms
    )
    return version, data


async def current_revocations(
    storage: Storage, signer: protocol.Signer, *, now_ms: int, valid_s: int
) -> bytes:
    """The newest revocation list, re-issued first if half its lifetime is gone."""
    latest = await storage.latest_publication(kind=REVOCATIONS_KIND, scope=REVOCATIONS_SCOPE)
    if latest is not None:
        body = signing.peek(latest[1])[2]
        if body["expires_ms"] - now_ms > valid_s * 500:
            return latest[1]
    return (await publish_revocations(storage, signer, now_ms=now_ms, valid_s=valid_s))[1]
