"""The OSMP endpoint: ``GET|POST /osmp?command=check|pay&...`` (docs/gateway.md).

The handler authenticates the agent (HTTP Basic or a TLS client certificate),
checks its access and rate, parses the parameters with the sans-I/O core
(:mod:`gateway.osmp`), calls :class:`~gateway.service.PaymentService` and
renders the XML answer. Every refusal is a :mod:`gateway.errors` error; the
table :data:`OSMP_RESULT` below is the one place that turns them into OSMP
result codes (the error middleware calls :func:`error_response`).

OSMP answers travel with HTTP 200 whatever the result code, because agents'
systems read the code from the XML; only a request that never reached the
protocol (no or wrong credentials, a forbidden source, an oversized or slow
body) gets a 4xx status, still with an XML body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiohttp import web

from gateway import errors
from gateway.agents import Agent
from gateway.errors import GatewayError
from gateway.handler_common import client_cert_sha256, read_body
from gateway.osmp import (
    RESULT_TEXT,
    CheckRequest,
    OsmpResponse,
    OsmpResult,
    osmp_txn_id_of,
    parse_params,
    parse_request,
    render_response,
)
from gateway.security import check_agent_access
from gateway.service import AccountInfo
from gateway.state import Runtime, audit_key, runtime_key

__all__ = ["OSMP_RESULT", "error_response", "osmp"]

CONTENT_TYPE: Final = "text/xml"
FORM_TYPES: Final = frozenset({"", "application/x-www-form-urlencoded"})

# Domain error -> OSMP result code. The first matching class wins (subclasses first).
OSMP_RESULT: Final[tuple[tuple[type[GatewayError], OsmpResult], ...]] = (
    (errors.AccountFormatError, OsmpResult.BAD_ACCOUNT_FORMAT),
    (errors.AccountNotFoundError, OsmpResult.ACCOUNT_NOT_FOUND),
    (errors.PaymentForbiddenError, OsmpResult.FORBIDDEN_BY_PROVIDER),
    (errors.TechnicalRefusalError, OsmpResult.FORBIDDEN_TECHNICAL),
    (errors.AccountInactiveError, OsmpResult.ACCOUNT_INACTIVE),
    (errors.PaymentInFlightError, OsmpResult.NOT_COMPLETED),
    (errors.OutcomeUnknownError, OsmpResult.NOT_COMPLETED),
    (errors.AmountTooSmallError, OsmpResult.SUM_TOO_SMALL),
    (errors.AmountTooLargeError, OsmpResult.SUM_TOO_LARGE),
    (errors.CatalogUnavailableError, OsmpResult.CANNOT_CHECK_ACCOUNT),
    (errors.RateLimitedError, OsmpResult.TEMPORARY_ERROR),
    (errors.RetryLaterError, OsmpResult.TEMPORARY_ERROR),
    (errors.TransactionConflictError, OsmpResult.OTHER_ERROR),
    (errors.BadRequestError, OsmpResult.OTHER_ERROR),
)

# Refusals before the protocol: an HTTP status besides the XML.
HTTP_STATUS: Final[tuple[tuple[type[GatewayError], int], ...]] = (
    (errors.AuthenticationError, 401),
    (errors.ForbiddenError, 403),
    (errors.RouteNotFoundError, 404),
    (errors.MethodNotAllowedError, 405),
    (errors.SlowClientError, 408),
    (errors.BodyTooLargeError, 413),
)
# Where the comment also says what exactly was wrong (for the agent's integrators).
_DETAILED: Final = (errors.BadRequestError, errors.TransactionConflictError)


def result_of(exc: GatewayError) -> OsmpResult:
    return next((r for cls, r in OSMP_RESULT if isinstance(exc, cls)), OsmpResult.OTHER_ERROR)


def error_response(
    request: web.Request, exc: GatewayError, headers: Mapping[str, str] | None
) -> web.Response:
    """The XML answer for a refused request."""
    entry = request[audit_key]
    result = result_of(exc)
    comment = RESULT_TEXT[result][entry.lang]
    if isinstance(exc, _DETAILED):
        comment = f"{comment}: {exc}"
    status = next((s for cls, s in HTTP_STATUS if isinstance(exc, cls)), 200)
    response_headers = dict(headers or {})
    if status == 401:
        response_headers["WWW-Authenticate"] = 'Basic realm="lobbypay-osmp", charset="UTF-8"'
    body = render_response(
        OsmpResponse(result=result, comment=comment, osmp_txn_id=entry.osmp_txn_id)
    )
    return web.Response(
        body=body,
        status=status,
        content_type=CONTENT_TYPE,
        charset="utf-8",
        headers=response_headers,
    )


async def _authenticate(request: web.Request, rt: Runtime) -> Agent:
    fingerprint = client_cert_sha256(request)
    by_cert = None if fingerprint is None else rt.agents.by_cert.get(fingerprint)
    header = request.headers.get("Authorization")
    if header is not None:
        agent = await rt.basic.authenticate(header)
        if by_cert is not None and by_cert.id != agent.id:
            raise errors.AuthenticationError(
                "client certificate and password name different agents", reason="mismatch"
            )
        return agent
    if by_cert is not None:
        return by_cert
    raise errors.AuthenticationError(
        "credentials required: HTTP Basic or a client certificate", reason="missing"
    )


def _fields(info: AccountInfo, lang: str) -> tuple[tuple[str, str], ...]:
    from gateway.money import format_minor

    fields = [
        ("holder", info.holder_ru if lang == "ru" else info.holder_en),
        ("balance", format_minor(-info.debt_total_minor)),
    ]
    fields += [(f"debt:{s.code}", format_minor(s.debt_minor)) for s in info.services]
    if info.catalog.stale:
        fields.append(("catalog_stale", "1"))
    return tuple(fields)


async def osmp(request: web.Request) -> web.Response:
    """``command=check`` and ``command=pay`` by GET or POST."""
    rt = request.app[runtime_key]
    entry = request[audit_key]
    agent = await _authenticate(request, rt)
    entry.agent, entry.lang = agent.id, agent.lang
    check_agent_access(agent, protocol="osmp", remote=request.remote)
    rt.limiter.check(agent)
    pairs = parse_params(request.rel_url.raw_query_string)
    if request.method == "POST":
        body = await read_body(request)
        if body:
            if request.content_type not in FORM_TYPES:
                raise errors.BadRequestError("POST body must be application/x-www-form-urlencoded")
            pairs += parse_params(body)
    entry.osmp_txn_id = osmp_txn_id_of(pairs)
    parsed = parse_request(pairs, rt.policy)
    entry.account = parsed.account
    entry.amount_minor = parsed.sum_minor
    service = rt.svc()
    if isinstance(parsed, CheckRequest):
        entry.action = "check"
        info = await service.check(agent, parsed.account, parsed.sum_minor)
        response = OsmpResponse(
            result=OsmpResult.OK,
            comment=RESULT_TEXT[OsmpResult.OK][agent.lang],
            osmp_txn_id=parsed.txn_id,
            sum_minor=parsed.sum_minor,
            fields=_fields(info, agent.lang),
        )
    else:
        entry.action, entry.txn_id = "pay", parsed.txn_id
        entry.pay_started = True
        record, repeat = await service.pay(
            agent,
            txn_id=parsed.txn_id,
            account=parsed.account,
            amount_minor=parsed.sum_minor,
            protocol="osmp",
            txn_date=parsed.txn_date,
        )
        entry.payment_id = record.payment_id
        entry.outcome = "repeat" if repeat else "accepted"
        response = OsmpResponse(
            result=OsmpResult.OK,
            comment=RESULT_TEXT[OsmpResult.OK][agent.lang],
            osmp_txn_id=parsed.txn_id,
            prv_txn=record.seq,
            sum_minor=record.amount_minor,
        )
    if entry.outcome == "-":
        entry.outcome = "ok"
    return web.Response(body=render_response(response), content_type=CONTENT_TYPE, charset="utf-8")
