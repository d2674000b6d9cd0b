"""The JSON API (``/v1``): accounts, payments with Idempotency-Key, registries.

Every request except ``GET /v1/openapi.json`` and ``GET /health`` is signed with
HMAC-SHA256 (:mod:`gateway.security`). Bodies are parsed strictly: duplicate
keys, NaN/Infinity, floats where integers belong and unknown fields are 400s.
Errors are RFC 9457 problem details (``application/problem+json``) with a
stable ``code``; the HTTP status of each comes from ``app.HTTP_STATUS``.

Idempotency (draft-ietf-httpapi-idempotency-key-header): ``POST /v1/payments``
needs an ``Idempotency-Key``. The key is the agent's transaction id, in the
same namespace as OSMP's ``txn_id``, so its payment_id is fixed. The same key
with the same body gets the same answer (201 and the same JSON, plus
``Idempotent-Replayed: true``), from what was stored; the same key with another
body is refused with 422 (and alarmed); while the first request with that key
is still being processed, 409.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway import errors
from gateway.agents import Agent
from gateway.errors import GatewayError
from gateway.handler_common import read_body
from gateway.identifiers import check_account, check_idempotency_key
from gateway.registry import payment_json, registry_csv, registry_json_bytes
from gateway.security import SignedRequest, check_agent_access
from gateway.state import Runtime, audit_key, runtime_key

__all__ = ["account", "create_payment", "get_payment", "health", "openapi", "problem", "registry"]

PROBLEM_TYPE: Final = "application/problem+json"
_SIGNED_HEADERS: Final = ("X-LP-Key-Id", "X-LP-Timestamp", "X-LP-Nonce", "X-LP-Signature")


def problem(exc: GatewayError, status: int, headers: Mapping[str, str] | None) -> web.Response:
    """RFC 9457 problem details for a refused request."""
    body: dict[str, Any] = {
        "type": f"urn:lobbypay:gateway:{exc.code}",
        "title": exc.code.replace("-", " "),
        "status": status,
        "detail": str(exc),
        "code": exc.code,
        "retryable": exc.retryable,
    }
    for name in ("param", "limit_minor"):
        value = getattr(exc, name, None)
        if value is not None:
            body[name] = value
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status=status,
        content_type=PROBLEM_TYPE,
        charset="utf-8",
        headers=headers,
    )


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


async def _authenticated(request: web.Request, rt: Runtime) -> tuple[Agent, bytes]:
    body = await read_body(request)
    headers = {name: request.headers.get(name, "") for name in _SIGNED_HEADERS}
    agent = rt.hmac.verify(
        SignedRequest(
            method=request.method,
            path=request.rel_url.raw_path,
            query=request.rel_url.raw_query_string,
            headers=headers,
            body=body,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
    )
    entry = request[audit_key]
    entry.agent = agent.id
    check_agent_access(agent, protocol="json", remote=request.remote)
    rt.limiter.check(agent)
    return agent, body


# -- bodies ---------------------------------------------------------------------------


class PaymentCreate(BaseModel):
    """``POST /v1/payments`` body."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True)

    account: str = Field(min_length=1, max_length=32)
    amount_minor: int = Field(ge=1, le=10**12)
    currency: Literal["RUB"] = "RUB"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice")
        result[key] = value
    return result


_WHOLE_ABS_MAX = Decimal(10**15)


def _number(text: str) -> int | Decimal:
    """A JSON number with a fraction or exponent, read exactly (never as a float).

    JSON has one number type, and JSON Schema calls 100.0 and 1e2 integers, so
    they are the integer 100; 100.5 stays a Decimal, which the models refuse
    where an integer is required: money is whole kopecks.
    """
    value = Decimal(text)
    if abs(value) <= _WHOLE_ABS_MAX and value == value.to_integral_value():
        return int(value)
    return value


def parse_json_body(body: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, no floats; else BadRequestError."""
    try:
        return json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_refuse_constant,
            parse_float=_number,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        message = "body is not valid JSON" if not isinstance(exc, ValueError) else str(exc)
        raise errors.BadRequestError(f"body: {message}"[:200]) from None


def _validation_problem(exc: ValidationError) -> errors.BadRequestError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return errors.BadRequestError(f"{where}: {first['msg']}", param=where)


# -- handlers ----------------------------------------------------------------------------


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 document of this API (no authentication)."""
    return web.Response(
        body=request.app[runtime_key].openapi_json,
        content_type="application/json",
        charset="utf-8",
    )


async def health(request: web.Request) -> web.Response:
    """Liveness for load balancers and systemd checks: no details, no authentication."""
    rt = request.app[runtime_key]
    ready = rt.service is not None and not rt.draining
    return _json({"status": "ok" if ready else "starting"}, 200 if ready else 503)


async def account(request: web.Request) -> web.Response:
    """``GET /v1/accounts/{account}``: services and debts, with the catalog's freshness."""
    rt = request.app[runtime_key]
    agent, _ = await _authenticated(request, rt)
    entry = request[audit_key]
    entry.action = "account"
    number = check_account(request.match_info["account"], rt.policy)
    entry.account = number
    info = await rt.svc().check(agent, number, None)
    entry.outcome = "ok"
    return _json(
        {
            "account": info.account,
            "holder": {"ru": info.holder_ru, "en": info.holder_en},
            "address": {"ru": info.address_ru, "en": info.address_en},
            "currency": "RUB",
            "debt_total_minor": info.debt_total_minor,
            "services": [
                {
                    "code": s.code,
                    "name": {"ru": s.name_ru, "en": s.name_en},
                    "provider": {
                        "id": s.provider_id,
                        "name": {"ru": s.provider_name_ru, "en": s.provider_name_en},
                    },
                    "debt_minor": s.debt_minor,
                    "period": s.period,
                }
                for s in info.services
            ],
            "catalog": {
                "version": info.catalog.version,
                "age_s": int(info.catalog.age_s),
                "stale": info.catalog.stale,
            },
        }
    )


async def create_payment(request: web.Request) -> web.Response:
    """``POST /v1/payments`` with ``Idempotency-Key``: accept a payment, durably."""
    rt = request.app[runtime_key]
    agent, body = await _authenticated(request, rt)
    entry = request[audit_key]
    entry.action = "pay"
    key_header = request.headers.get("Idempotency-Key")
    if key_header is None:
        raise errors.BadRequestError("Idempotency-Key header is required", param="Idempotency-Key")
    key = check_idempotency_key(key_header)
    entry.txn_id = key
    if request.content_type != "application/json":
        raise errors.BadRequestError("body must be application/json")
    try:
        payload = PaymentCreate.model_validate(parse_json_body(body))
    except ValidationError as exc:
        raise _validation_problem(exc) from None
    number = check_account(payload.account, rt.policy)
    entry.account, entry.amount_minor = number, payload.amount_minor
    entry.pay_started = True
    record, repeat = await rt.svc().pay(
        agent, txn_id=key, account=number, amount_minor=payload.amount_minor, protocol="json"
    )
    entry.payment_id = record.payment_id
    entry.outcome = "repeat" if repeat else "accepted"
    headers = {"Location": f"/v1/payments/{record.payment_id}"}
    if repeat:
        headers["Idempotent-Replayed"] = "true"
    return _json(payment_json(record), 201, headers)


async def get_payment(request: web.Request) -> web.Response:
    """``GET /v1/payments/{payment_id}``: one of this agent's payments."""
    rt = request.app[runtime_key]
    agent, _ = await _authenticated(request, rt)
    entry = request[audit_key]
    entry.action = "get-payment"
    payment_id = request.match_info["payment_id"]
    if len(payment_id) > 64 or not payment_id.isascii():
        raise errors.PaymentNotFoundError("no such payment for this agent")
    record = await rt.svc().get_payment(agent, payment_id)
    entry.payment_id, entry.outcome = record.payment_id, "ok"
    return _json(payment_json(record))


def _registry_date(text: str) -> str:
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise errors.BadRequestError("date must be YYYY-MM-DD", param="date") from None


async def registry(request: web.Request) -> web.Response:
    """``GET /v1/registry/{date}?format=json|csv``: this agent's payments of one day."""
    rt = request.app[runtime_key]
    agent, _ = await _authenticated(request, rt)
    entry = request[audit_key]
    entry.action = "registry"
    day = _registry_date(request.match_info["date"])
    formats = request.query.getall("format", [])
    if len(formats) > 1 or (formats and formats[0] not in ("json", "csv")):
        raise errors.BadRequestError("format must be json or csv", param="format")
    fmt = formats[0] if formats else "json"
    records = await rt.svc().registry(agent, day)
    entry.outcome = "ok"
    disposition = {"Content-Disposition": f'attachment; filename="registry-{agent.id}-{day}.{fmt}"'}
    if fmt == "csv":
        return web.Response(
            body=registry_csv(records).encode("utf-8"),
            content_type="text/csv",
            charset="utf-8",
            headers=disposition,
        )
    return web.Response(
        body=registry_json_bytes(agent.id, day, rt.settings.gateway.registry_timezone, records),
        content_type="application/json",
        charset="utf-8",
        headers=disposition,
    )
