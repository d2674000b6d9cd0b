"""Central's side of re-keying and decommissioning a terminal (issue 8).

``POST /v1/rekey`` and ``POST /v1/decommission`` take the signed requests of
:mod:`central_sync.provision.messages` and answer with a signed
``lifecycle-answer``. Both are idempotent, so a technician whose connection
dropped after central acted simply runs the command again:

* Re-key: the request is verified with the terminal's enrolled key (and the new
  key's proof of possession); the terminal's record is renamed to the new key's
  id and gets the new key, keeping its chain head, entries and payments, so the
  next batch (signed by the new key) continues the chain exactly. The old id and
  key are retired for good (``terminal_keys``; enrollment refuses them). A
  request whose old id is already retired in favour of the same new key gets
  the same answer again.
* Decommission: the terminal is revoked with the reason
  ``decommissioned: ...`` (its batches are refused from now on, the revocation
  list is re-signed) and the request is audited, including how many unsent
  entries the technician chose to discard with ``--force``.
"""

from __future__ import annotations

import time

from aiohttp import web

from central_sync import protocol
from central_sync.central.app import identity_key, settings_key, storage_key
from central_sync.central.errors import NotFoundError, TerminalStateError
from central_sync.central.handlers import SIGNED_CONTENT_TYPE, _small_body
from central_sync.central.publish import publish_revocations
from central_sync.central.storage import Storage, TerminalRecord, TerminalState
from central_sync.provision import messages

DECOMMISSIONED_PREFIX = "decommissioned"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def is_decommissioned(record: TerminalRecord) -> bool:
    """Whether ``record`` was revoked by its own decommission request."""
    return record.state is TerminalState.REVOKED and (record.state_reason or "").startswith(
        DECOMMISSIONED_PREFIX
    )


async def rekey(
    storage: Storage, signer: protocol.Signer, data: bytes, *, now_ms: int
) -> tuple[TerminalRecord, bytes]:
    """Verify a re-key request and apply it: (the renamed record, signed answer)."""
    terminal_id = messages.peek_terminal_id(data, expected_type=messages.REKEY_REQUEST_TYPE)
    record = await storage.get_terminal(terminal_id)
    if record is not None:
        enrolled_key = record.public_key
    else:
        # Already re-keyed? The retired key still verifies its own request.
        retired = next(
            (k for k in await storage.retired_keys() if k.terminal_id == terminal_id), None
        )
        if retired is None:
            raise NotFoundError(f"no terminal {terminal_id} is enrolled")
        enrolled_key = retired.public_key
    request = messages.verify_rekey_request(data, public_key=enrolled_key)
    renamed = await storage.rekey_terminal(
        terminal_id=request.terminal_id,
        public_key=enrolled_key,
        new_terminal_id=request.new_terminal_id,
        new_public_key=request.new_public_key,
        now_ms=now_ms,
    )
    answer = messages.build_lifecycle_answer(
        messages.LifecycleAnswer(
            action="rekey",
            terminal_id=request.terminal_id,
            new_terminal_id=renamed.terminal_id,
            central_time_ms=now_ms,
        ),
        signer,
    )
    return renamed, answer


async def decommission(
    storage: Storage, signer: protocol.Signer, data: bytes, *, now_ms: int, revocations_valid_s: int
) -> tuple[TerminalRecord, bytes]:
    """Verify a decommission request and revoke the terminal: (record, signed answer)."""
    terminal_id = messages.peek_terminal_id(data, expected_type=messages.DECOMMISSION_REQUEST_TYPE)
    record = await storage.get_terminal(terminal_id)
    if record is None:
        raise NotFoundError(f"no terminal {terminal_id} is enrolled")
    request = messages.verify_decommission_request(data, public_key=record.public_key)
    if record.state is TerminalState.REVOKED and not is_decommissioned(record):
        raise TerminalStateError(f"terminal {terminal_id} is revoked")
    if not is_decommissioned(record):
        note = request.reason.strip() or "by technician"
        if request.forced and request.unsent_entries:
            note += f"; {request.unsent_entries} unsent entries discarded (--force)"
        record = await storage.set_terminal_state(
            terminal_id,
            TerminalState.REVOKED,
            reason=f"{DECOMMISSIONED_PREFIX}: {note}",
            actor="terminal",
            now_ms=now_ms,
        )
        await publish_revocations(storage, signer, now_ms=now_ms, valid_s=revocations_valid_s)
    answer = messages.build_lifecycle_answer(
        messages.LifecycleAnswer(
            action="decommission",
            terminal_id=terminal_id,
            new_terminal_id=None,
            central_time_ms=now_ms,
        ),
        signer,
    )
    return record, answer


# --- HTTP handlers (URLs in routes.py) ---------------------------------------------


async def rekey_handler(request: web.Request) -> web.Response:
    """POST /v1/rekey: a signed re-key request in, central's signed answer out."""
    body = await _small_body(request)
    _record, answer = await rekey(
        request.app[storage_key], request.app[identity_key], body, now_ms=_now_ms()
    )
    return web.Response(body=answer, status=200, content_type=SIGNED_CONTENT_TYPE)


async def decommission_handler(request: web.Request) -> web.Response:
    """POST /v1/decommission: a signed decommission request in, signed answer out."""
    body = await _small_body(request)
    _record, answer = await decommission(
        request.app[storage_key],
        request.app[identity_key],
        body,
        now_ms=_now_ms(),
        revocations_valid_s=request.app[settings_key].revocations_valid_s,
    )
    return web.Response(body=answer, status=200, content_type=SIGNED_CONTENT_TYPE)
