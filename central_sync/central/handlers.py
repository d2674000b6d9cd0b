"""HTTP handlers of the central ledger service (URLs in ``routes.py``).

Handlers parse the request, call the domain code and shape the answer; every
error is a domain exception that the middleware in ``app.py`` turns into HTTP.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from central_sync import protocol
from central_sync.central import admin
from central_sync.central.app import (
    gate_key,
    identity_key,
    ingestor_key,
    settings_key,
    storage_key,
)
from central_sync.central.errors import (
    BadRequestError,
    NotFoundError,
    TerminalStateError,
    UnauthorizedError,
)
from central_sync.central.publish import config_for_terminal, current_revocations, publish_config
from central_sync.central.storage import TerminalRecord, TerminalState
from central_sync.protocol import RefusalKind

SIGNED_CONTENT_TYPE = "application/json"
TERMINAL_HEADER = "X-Lobbypay-Terminal"

# HTTP status of each refusal of a batch (the body is always the signed refusal).
REFUSAL_STATUS: dict[RefusalKind, int] = {
    RefusalKind.GAP: 409,
    RefusalKind.RETRY_LATER: 503,
    RefusalKind.TOO_LARGE: 413,
    RefusalKind.REVOKED: 403,
    RefusalKind.QUARANTINED: 403,
    RefusalKind.UNKNOWN_TERMINAL: 404,
    RefusalKind.REJECTED: 400,
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body, or its first ``limit + 1`` bytes if it is longer.

    ``content.read(n)`` answers what is buffered (one network read, ~64 KiB),
    not ``n`` bytes, so a body is read until its end or the bound.
    """
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


async def _small_body(request: web.Request) -> bytes:
    limit = request.app[settings_key].small_request_bytes_max
    if request.content_length is not None and request.content_length > limit:
        raise BadRequestError(f"request body larger than {limit} bytes")
    body = await _read_body(request, limit)
    if len(body) > limit:
        raise BadRequestError(f"request body larger than {limit} bytes")
    return body


def _terminal_json(t: TerminalRecord) -> dict[str, Any]:
    return {
        "terminal_id": t.terminal_id,
        "label": t.label,
        "location": t.location,
        "state": t.state.value,
        "state_reason": t.state_reason,
        "head_seq": t.head_seq,
        "head_hash": t.head_hash.hex(),
        "enrolled_ms": t.enrolled_ms,
        "last_seen_ms": t.last_seen_ms,
        "queue_depth": t.queue_depth,
        "oldest_pending_age_s": t.oldest_pending_age_s,
        "software_version": t.software_version,
        "catalog_version": t.catalog_version,
        "config_version": t.config_version,
        "health": dict(t.health),
    }


def _require_operator(request: web.Request) -> str:
    token = request.app[settings_key].operator_token
    if token is None:
        raise UnauthorizedError("admin endpoints are disabled (no operator token configured)")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    expected = token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise UnauthorizedError("missing or wrong operator token")
    return "operator"


# --- terminals -------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "central_time_ms": _now_ms()})


async def enroll(request: web.Request) -> web.Response:
    body = await _small_body(request)
    _record, answer = await admin.enroll_terminal(
        request.app[storage_key], request.app[identity_key], body, now_ms=_now_ms()
    )
    return web.Response(body=answer, status=200, content_type=SIGNED_CONTENT_TYPE)


async def upload_batch(request: web.Request) -> web.Response:
    """POST /v1/batches: the compressed signed batch in, a signed ack or refusal out."""
    gate = request.app[gate_key]
    ingestor = request.app[ingestor_key]
    claimed = request.headers.get(TERMINAL_HEADER)
    limit = request.app[settings_key].batch_wire_bytes_max
    if gate.in_flight >= gate.limit:
        # Back-pressure instead of collapse: the agent retries with backoff.
        result = ingestor.refuse(
            RefusalKind.RETRY_LATER, claimed, "busy", "central is busy; retry later", b""
        )
    elif request.content_length is not None and request.content_length > limit:
        result = ingestor.refuse(
            RefusalKind.TOO_LARGE,
            claimed,
            "too-large",
            f"batch larger than {limit} bytes on the wire",
            b"",
        )
    else:
        gate.in_flight += 1
        try:
            # Over the bound: limit + 1 bytes, which ingest refuses as too large.
            data = await _read_body(request, limit)
            result = await ingestor.ingest(data, claimed_terminal_id=claimed)
        finally:
            gate.in_flight -= 1
    if result.refusal is None:
        return web.Response(body=result.answer, status=200, content_type=SIGNED_CONTENT_TYPE)
    status = REFUSAL_STATUS[result.refusal.kind]
    headers = {"Retry-After": "5"} if result.refusal.kind is RefusalKind.RETRY_LATER else None
    return web.Response(
        body=result.answer, status=status, content_type=SIGNED_CONTENT_TYPE, headers=headers
    )


async def heartbeat(request: web.Request) -> web.Response:
    body = await _small_body(request)
    storage = request.app[storage_key]
    terminal_id = protocol.peek_signer_id(body, expected_type=protocol.HEARTBEAT_TYPE)
    terminal = await storage.get_terminal(terminal_id)
    if terminal is None:
        raise NotFoundError(f"no terminal {terminal_id} is enrolled")
    beat = protocol.verify_heartbeat(body, terminal.public_key)
    if terminal.state is TerminalState.REVOKED:
        raise TerminalStateError(f"terminal {terminal_id} is revoked")
    now = _now_ms()
    await storage.record_heartbeat(
        terminal_id,
        now_ms=now,
        queue_depth=beat.queue_depth,
        oldest_pending_age_s=beat.oldest_pending_age_s,
        software_version=beat.software_version,
        catalog_version=beat.catalog_version,
        config_version=beat.config_version,
        health=beat.health,
    )
    config = await config_for_terminal(storage, terminal.location)
    return web.json_response(
        {
            "ok": True,
            "central_time_ms": now,
            "state": terminal.state.value,
            "head_seq": terminal.head_seq,
            "catalog_version": await storage.latest_catalog_version(),
            "config_version": None if config is None else config[0],
        }
    )


async def catalog(request: web.Request) -> web.Response:
    """GET /v1/catalog?since=N: the next signed catalog release, 204 when current."""
    try:
        since = int(request.query.get("since", "0"))
    except ValueError:
        raise BadRequestError("since must be an integer catalog version") from None
    if since < 0:
        raise BadRequestError("since must not be negative")
    release = await request.app[storage_key].catalog_release_for(since)
    if release is None:
        return web.Response(status=204)
    version, kind, data = release
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"X-Lobbypay-Catalog-Version": str(version), "X-Lobbypay-Catalog-Kind": kind},
    )


async def config(request: web.Request) -> web.Response:
    """GET /v1/config?terminal=ID: the signed bundle for its location (or for all)."""
    storage = request.app[storage_key]
    location = None
    terminal_id = request.query.get("terminal") or request.headers.get(TERMINAL_HEADER)
    if terminal_id:
        terminal = await storage.get_terminal(terminal_id)
        if terminal is None:
            raise NotFoundError(f"no terminal {terminal_id}")
        location = terminal.location
    found = await config_for_terminal(storage, location)
    if found is None:
        raise NotFoundError("no configuration bundle has been published")
    return web.Response(
        body=found[1],
        content_type=SIGNED_CONTENT_TYPE,
        headers={"X-Lobbypay-Config-Version": str(found[0])},
    )


async def revocations(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    data = await current_revocations(
        request.app[storage_key],
        request.app[identity_key],
        now_ms=_now_ms(),
        valid_s=settings.revocations_valid_s,
    )
    return web.Response(body=data, content_type=SIGNED_CONTENT_TYPE)


# --- operators ---------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RegistrationCodeRequest(_Model):
    location: str = Field(min_length=1, max_length=admin.LOCATION_CHARS_MAX)
    label: str | None = Field(default=None, max_length=200)
    valid_s: int | None = Field(default=None, gt=0, le=90 * 24 * 3600)


class ReasonRequest(_Model):
    reason: str = Field(default="", max_length=admin.REASON_CHARS_MAX)


class ConfigRequest(_Model):
    scope: str = Field(default="*", max_length=140)
    limits: dict[str, Any]
    surcharge_rules: list[Any]
    timeouts: dict[str, Any]
    offline_policy: dict[str, Any]
    valid_s: int | None = Field(default=None, gt=0, le=366 * 24 * 3600)


async def _json_body(request: web.Request) -> bytes:
    body = await _small_body(request)
    return body or b"{}"


async def admin_registration_code(request: web.Request) -> web.Response:
    actor = _require_operator(request)
    req = RegistrationCodeRequest.model_validate_json(await _json_body(request))
    settings = request.app[settings_key]
    code, expires_ms = await admin.create_registration_code(
        request.app[storage_key],
        location=req.location,
        label=req.label,
        valid_s=req.valid_s or settings.registration_code_valid_s,
        now_ms=_now_ms(),
        actor=actor,
    )
    return web.json_response(
        {"code": code, "location": req.location.strip(), "expires_ms": expires_ms}, status=201
    )


async def admin_revoke(request: web.Request) -> web.Response:
    actor = _require_operator(request)
    req = ReasonRequest.model_validate_json(await _json_body(request))
    record = await admin.revoke_terminal(
        request.app[storage_key],
        request.app[identity_key],
        request.match_info["terminal_id"],
        reason=req.reason,
        actor=actor,
        now_ms=_now_ms(),
        revocations_valid_s=request.app[settings_key].revocations_valid_s,
    )
    return web.json_response(_terminal_json(record))


async def admin_reinstate(request: web.Request) -> web.Response:
    actor = _require_operator(request)
    req = ReasonRequest.model_validate_json(await _json_body(request))
    record = await admin.reinstate_terminal(
        request.app[storage_key],
        request.match_info["terminal_id"],
        reason=req.reason,
        actor=actor,
        now_ms=_now_ms(),
    )
    return web.json_response(_terminal_json(record))


async def admin_terminals(request: web.Request) -> web.Response:
    _require_operator(request)
    terminals = await request.app[storage_key].list_terminals()
    return web.json_response({"terminals": [_terminal_json(t) for t in terminals]})


async def admin_alarms(request: web.Request) -> web.Response:
    _require_operator(request)
    alarms = await request.app[storage_key].alarms()
    return web.json_response(
        {
            "alarms": [
                {
                    "alarm_id": a.alarm_id,
                    "ts_ms": a.ts_ms,
                    "terminal_id": a.terminal_id,
                    "kind": a.kind,
                    "detail": dict(a.detail),
                    "resolved_ms": a.resolved_ms,
                }
                for a in alarms
            ]
        }
    )


async def admin_config(request: web.Request) -> web.Response:
    _require_operator(request)
    req = ConfigRequest.model_validate_json(await _json_body(request))
    settings = request.app[settings_key]
    version, _data = await publish_config(
        request.app[storage_key],
        request.app[identity_key],
        scope=req.scope,
        limits=req.limits,
        surcharge_rules=req.surcharge_rules,
        timeouts=req.timeouts,
        offline_policy=req.offline_policy,
        now_ms=_now_ms(),
        valid_s=req.valid_s or settings.config_valid_s,
    )
    return web.json_response({"scope": req.scope, "version": version}, status=201)
