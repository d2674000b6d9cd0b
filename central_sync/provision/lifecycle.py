"""The terminal side of `lobbypay rekey` and `lobbypay decommission`.

Re-key, crash-safe in this order:

1. The new key is made at ``<key>.next`` (mode 0600) — or, if an earlier re-key
   was interrupted, the key already there is used again, so the request is the
   same one central may already have applied.
2. The ``rekey-request`` (signed by the old key, with the new key's proof of
   possession) goes to ``POST /v1/rekey``; central's signed answer is verified
   with the pinned central key.
3. Only then does the new key replace the old one (an atomic rename: the old
   private key is gone), and the enrollment record gains central's answer.
4. The sync agent is restarted (``systemctl try-restart``) so it signs with the
   new key; an agent that kept running would be refused as an unknown terminal
   and, under systemd, restarted anyway.

The journal holds no terminal id, and central keeps the terminal's record,
chain head and payments under the new id, so the next batch continues the
chain exactly where the old key left it.

Decommission: count the journal entries central has not acknowledged; refuse if
there are any, unless ``--force`` (they will never reach central: the warning
says so, and central records how many were discarded). Then the signed request
goes to ``POST /v1/decommission``; after central's verified answer the units are
disabled and removed, and the key and enrollment record are deleted. The
journal stays on disk for audit.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central_sync.agent.files import fsync_directory, remove_file
from central_sync.provision import messages
from central_sync.provision.enrollment import (
    EnrollmentRecordError,
    load_record,
    record_path,
    save_record,
)
from central_sync.provision.provision import ProvisionError
from central_sync.provision.units import SYNC_UNIT, UnitReport, remove_units, restart_units

REKEY_PATH = "/v1/rekey"
DECOMMISSION_PATH = "/v1/decommission"
ANSWER_BYTES_MAX = 64 * 1024
NEXT_KEY_SUFFIX = ".next"


@dataclass(frozen=True, slots=True, kw_only=True)
class RekeyReport:
    old_terminal_id: str
    new_terminal_id: str
    fingerprint: str
    resumed: bool
    """True when an interrupted re-key's key was used again."""
    restart: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DecommissionReport:
    terminal_id: str
    unsent_entries: int
    forced: bool
    units: UnitReport
    removed: tuple[str, ...]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _post(settings: Any, path: str, data: bytes, timeout_s: float) -> bytes:
    """POST a signed request to central; its 200 body, or a ProvisionError."""
    import json

    from central_sync.agent.errors import SyncAgentError, TransportError
    from central_sync.agent.transport import AiohttpTransport

    transport = AiohttpTransport(
        settings.central.url, ca_file=settings.sync.tls_ca_file, user_agent="lobbypay-provision"
    )
    try:
        response = await transport.request(
            "POST", path, data, timeout_s=timeout_s, body_bytes_max=ANSWER_BYTES_MAX
        )
    except TransportError as exc:
        raise ProvisionError(
            f"central cannot be reached: {exc}",
            next_step="check the network, then run the command again (it is safe to repeat)",
            retryable=True,
        ) from None
    except SyncAgentError as exc:
        raise ProvisionError(str(exc)) from None
    finally:
        await transport.close()
    if response.status != 200:
        message = f"central answered HTTP {response.status}"
        try:
            answer = json.loads(response.body)
            if isinstance(answer, dict) and isinstance(answer.get("message"), str):
                message += f": {answer['message'][:300]}"
        except (ValueError, UnicodeDecodeError):
            pass
        raise ProvisionError(message, retryable=response.status >= 500)
    return response.body


async def _ask_central(
    settings: Any,
    path: str,
    request: bytes,
    *,
    action: messages.Action,
    terminal_id: str,
    timeout_s: float,
    unchanged: str,
) -> tuple[bytes, messages.LifecycleAnswer]:
    """Send a signed request; central's answer, verified with the pinned key."""
    from central_sync import protocol

    answer = await _post(settings, path, request, timeout_s)
    try:
        confirmed = messages.verify_lifecycle_answer(
            answer,
            central_public_key=_central_key(settings),
            action=action,
            terminal_id=terminal_id,
        )
    except protocol.SyncProtocolError as exc:
        raise ProvisionError(
            f"central's answer did not verify against the pinned key ({exc.reason}); {unchanged}",
            retryable=True,
        ) from None
    return answer, confirmed


def _identity(key_path: Path) -> Any:
    from firmware_config.identity import IdentityError, load_identity

    try:
        return load_identity(key_path)
    except IdentityError as exc:
        raise ProvisionError(str(exc), next_step=exc.next_step) from None


def _central_key(settings: Any) -> bytes:
    key = settings.central.public_key_bytes
    if not settings.central.url or key is None:
        raise ProvisionError(
            "central is not configured (central.url, central.public_key)",
            next_step="run `lobbypay provision` first",
        )
    assert isinstance(key, bytes)
    return key


async def rekey(settings: Any, *, restart: bool = True, timeout_s: float = 30.0) -> RekeyReport:
    """Replace the terminal's key with central's agreement (see the module docstring)."""
    from firmware_config.identity import IdentityError, generate_identity, load_identity

    central_key = _central_key(settings)
    key_path: Path = settings.identity_key_path
    old = _identity(key_path)
    record_file = record_path(key_path)
    try:
        record = load_record(record_file, central_public_key=central_key)
    except EnrollmentRecordError as exc:
        raise ProvisionError(str(exc)) from None
    if record is None or record.terminal_id != old.terminal_id:
        raise ProvisionError(
            "this key is not enrolled (no verified enrollment record beside it)",
            next_step="run `lobbypay provision` to enroll it",
        )
    next_path = key_path.with_name(key_path.name + NEXT_KEY_SUFFIX)
    resumed = next_path.exists()
    try:
        new = load_identity(next_path) if resumed else generate_identity(next_path)
    except IdentityError as exc:
        raise ProvisionError(str(exc), next_step=exc.next_step) from None
    request = messages.build_rekey_request(
        messages.RekeyRequest(
            terminal_id=old.terminal_id, new_public_key=new.public_key_bytes, created_ms=_now_ms()
        ),
        old_signer=old,
        new_signer=new,
    )
    answer, confirmed = await _ask_central(
        settings,
        REKEY_PATH,
        request,
        action="rekey",
        terminal_id=old.terminal_id,
        timeout_s=timeout_s,
        unchanged="the old key stays in use",
    )
    if confirmed.new_terminal_id != new.terminal_id:
        raise ProvisionError("central confirmed another key than the one sent; nothing changed")
    # Central holds the new key now: make it ours, atomically (the old key is gone).
    os.replace(next_path, key_path)
    fsync_directory(key_path.parent)
    save_record(record_file, record.with_rekey(new.terminal_id, answer))
    restarted = restart_units([SYNC_UNIT]) if restart else "not restarted (--no-restart)"
    return RekeyReport(
        old_terminal_id=old.terminal_id,
        new_terminal_id=new.terminal_id,
        fingerprint=new.fingerprint,
        resumed=resumed,
        restart=restarted,
    )


async def unsent_entries(settings: Any) -> int:
    """Journal entries central has not acknowledged (0 when there is no journal)."""
    from central_sync.journal import open_from_settings

    # A stat of a local file; not worth a thread hop.
    if not os.path.exists(settings.journal_path):  # noqa: ASYNC240
        return 0
    journal = await open_from_settings(settings)
    try:
        head_seq, _ = await journal.head()
        acked = await journal.acknowledged_through()
    finally:
        await journal.close()
    return max(0, head_seq - acked)


async def decommission(
    settings: Any,
    *,
    force: bool,
    reason: str,
    unit_dir: Path,
    disable_units: bool = True,
    timeout_s: float = 30.0,
) -> DecommissionReport:
    """Tell central, disable the units, delete the key (see the module docstring)."""
    _central_key(settings)  # configured, or nothing to tell
    key_path: Path = settings.identity_key_path
    identity = _identity(key_path)
    unsent = await unsent_entries(settings)
    if unsent and not force:
        raise ProvisionError(
            f"the journal holds {unsent} entries central has not acknowledged",
            next_step="run `lobbypay sync once` until they are sent; only if they can never be "
            "sent, run decommission with --force (those payments will never reach central)",
        )
    request = messages.build_decommission_request(
        messages.DecommissionRequest(
            terminal_id=identity.terminal_id,
            created_ms=_now_ms(),
            reason=reason,
            unsent_entries=unsent,
            forced=force,
        ),
        identity,
    )
    await _ask_central(
        settings,
        DECOMMISSION_PATH,
        request,
        action="decommission",
        terminal_id=identity.terminal_id,
        timeout_s=timeout_s,
        unchanged="nothing was removed",
    )
    units = remove_units(unit_dir=unit_dir, disable=disable_units)
    removed = tuple(
        str(path)
        for path in (
            key_path,
            key_path.with_name(key_path.name + NEXT_KEY_SUFFIX),
            record_path(key_path),
        )
        if remove_file(path)
    )
    return DecommissionReport(
        terminal_id=identity.terminal_id,
        unsent_entries=unsent,
        forced=force,
        units=units,
        removed=removed,
    )
