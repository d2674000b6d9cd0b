"""The gateway's aiohttp application (DESIGN.md, "Gateway"; docs/gateway.md).

``create_app(settings)`` builds the app. The journal, the index and the payment
service are opened in ``app.cleanup_ctx`` (and closed there, after in-flight
payments finished); app state lives under ``web.AppKey``s; the URL table is in
``routes.py``, the handlers in ``osmp_handlers.py`` and ``json_handlers.py``.

One middleware, :func:`error_middleware`, does what every request needs, in
one layer because it is on every request's path:

* it bounds the requests in flight: beyond ``gateway.requests_in_flight_max``
  it answers retry-later at once (503 with Retry-After, or OSMP result 1)
  instead of queueing until everything is slow;
* it bounds the request's time;
* it maps every :class:`~gateway.errors.GatewayError` to the answer of the
  request's protocol (OSMP XML with a result code, or JSON problem details with
  an HTTP status: the only two tables that know those codes);
* it writes one audit line per request, without secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import web

from central_sync.journal import open_from_settings
from firmware_config.settings import Settings
from gateway import json_handlers, osmp_handlers
from gateway.agents import AgentRegistry, load_agents
from gateway.errors import (
    AccountFormatError,
    AccountInactiveError,
    AccountNotFoundError,
    AmountTooLargeError,
    AmountTooSmallError,
    AuthenticationError,
    BadRequestError,
    BodyTooLargeError,
    CatalogUnavailableError,
    ForbiddenError,
    GatewayError,
    MethodNotAllowedError,
    OutcomeUnknownError,
    OverloadedError,
    PaymentForbiddenError,
    PaymentInFlightError,
    PaymentNotFoundError,
    RateLimitedError,
    RetryLaterError,
    RouteNotFoundError,
    SlowClientError,
    TechnicalRefusalError,
    TransactionConflictError,
    UnknownCommandError,
)
from gateway.identifiers import AccountPolicy
from gateway.index import GatewayIndex
from gateway.security import BasicAuthenticator, HmacVerifier, RateLimiter
from gateway.service import PaymentService
from gateway.state import (
    Audit,
    ClockMs,
    JournalOpener,
    Runtime,
    audit_key,
    journal_opener_key,
    runtime_key,
    settings_key,
)

__all__ = ["HTTP_STATUS", "create_app", "http_status_of"]

logger = logging.getLogger(__name__)
audit_logger = logging.getLogger("lobbypay.gateway.audit")

WATERMARK_INTERVAL_S: Final = 30.0
DEFAULT_AGENTS_PATH: Final = Path("/etc/lobbypay/agents.toml")

# JSON API: domain error -> HTTP status. The first matching class wins, so
# subclasses come before their bases.
HTTP_STATUS: Final[tuple[tuple[type[GatewayError], int], ...]] = (
    (UnknownCommandError, 400),
    (BadRequestError, 400),
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (PaymentForbiddenError, 403),
    (AccountNotFoundError, 404),
    (PaymentNotFoundError, 404),
    (RouteNotFoundError, 404),
    (MethodNotAllowedError, 405),
    (SlowClientError, 408),
    (PaymentInFlightError, 409),
    (BodyTooLargeError, 413),
    (AccountFormatError, 422),
    (AccountInactiveError, 422),
    (AmountTooSmallError, 422),
    (AmountTooLargeError, 422),
    (TransactionConflictError, 422),
    (RateLimitedError, 429),
    (CatalogUnavailableError, 503),
    (RetryLaterError, 503),
    (TechnicalRefusalError, 503),
    (OutcomeUnknownError, 503),
)


def http_status_of(exc: GatewayError) -> int:
    return next((status for cls, status in HTTP_STATUS if isinstance(exc, cls)), 500)


def _retry_after_s(request: web.Request, exc: GatewayError) -> int | None:
    if not exc.retryable:
        return None
    value = getattr(exc, "retry_after_s", None)
    return (
        value if isinstance(value, int) else request.app[runtime_key].settings.gateway.retry_after_s
    )


def _error_response(request: web.Request, exc: GatewayError) -> web.Response:
    retry_after = _retry_after_s(request, exc)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if isinstance(exc, MethodNotAllowedError):
        headers["Allow"] = ", ".join(exc.allowed)
    if request[audit_key].protocol == "osmp":
        return osmp_handlers.error_response(request, exc, headers)
    status = http_status_of(exc)
    if status >= 500 and not exc.retryable:
        logger.error("gateway_request_failed path=%s code=%s", request.path, exc.code)
    return json_handlers.problem(exc, status, headers)


def _http_exception_error(exc: web.HTTPException) -> GatewayError | None:
    """aiohttp's own refusals (router, body size) as domain errors."""
    if exc.status == 413:
        return BodyTooLargeError("request body is too large")
    if exc.status == 404:
        return RouteNotFoundError("no such resource")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowedError(
            "method not allowed here", allowed=tuple(sorted(exc.allowed_methods))
        )
    return None


OVERLOAD_LOG_INTERVAL_S: Final = 1.0


def _overloaded(request: web.Request, rt: Runtime) -> web.Response:
    """The overload answer: the same bytes every time, one summary log line a second.

    A line per refused request would add to the overload it reports, so refusals
    are counted and summed up in ``gateway_overload refused=N`` once a second.
    """
    entry = request[audit_key]
    rt.count(OverloadedError.code)
    rt.overload_refused += 1
    now = time.monotonic()
    if now - rt.overload_logged_at >= OVERLOAD_LOG_INTERVAL_S:
        audit_logger.warning(
            "gateway_overload refused=%d in_flight_max=%d", rt.overload_refused, rt.in_flight_max
        )
        rt.overload_refused, rt.overload_logged_at = 0, now
    key = entry.protocol
    cached = rt.overload_answers.get(key)
    if cached is None:
        error = OverloadedError(
            f"more than {rt.in_flight_max} requests in flight; retry later", reason="overloaded"
        )
        response = _error_response(request, error)
        assert isinstance(response.body, bytes)
        cached = rt.overload_answers[key] = (
            response.status,
            response.body,
            response.content_type,
            dict(response.headers),
        )
    status, body, content_type, headers = cached
    return web.Response(
        status=status,
        body=body,
        headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
        content_type=content_type,
        charset="utf-8",
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bound the request's time, map domain errors to answers, write the audit line."""
    rt = request.app[runtime_key]
    entry = Audit(protocol="osmp" if request.path.startswith("/osmp") else "json")
    request[audit_key] = entry
    if rt.in_flight >= rt.in_flight_max:
        # The in-flight bound: refuse at once beyond it (back-pressure, not
        # collapse), as cheaply as possible, since under overload these refusals
        # compete for the CPU with the payments being served.
        return _overloaded(request, rt)
    started = time.perf_counter()
    response: web.StreamResponse | None = None
    error: GatewayError | None = None
    try:
        if rt.draining:
            raise RetryLaterError(
                "the gateway is shutting down; retry later", reason="shutting-down"
            )
        rt.in_flight += 1
        try:
            async with asyncio.timeout(rt.settings.gateway.request_timeout_s):
                response = await handler(request)
        finally:
            rt.in_flight -= 1
    except GatewayError as exc:
        error = exc
    except TimeoutError:
        error = (
            OutcomeUnknownError("the payment took too long; repeat the same request")
            if entry.pay_started
            else RetryLaterError("the request took too long", reason="timeout")
        )
    except web.HTTPException as exc:
        mapped = _http_exception_error(exc)
        if mapped is None:
            raise
        error = mapped
    if error is not None:
        entry.outcome = error.code
        rt.count(error.code)
        response = _error_response(request, error)
    assert response is not None
    if audit_logger.isEnabledFor(logging.INFO):
        amount = "-" if entry.amount_minor is None else str(entry.amount_minor)
        audit_logger.info(
            "gateway_request protocol=%s agent=%s action=%s txn_id=%s account=%s amount_minor=%s "
            "payment_id=%s outcome=%s status=%d remote=%s duration_ms=%.1f",
            entry.protocol,
            entry.agent,
            entry.action,
            entry.txn_id,
            entry.account,
            amount,
            entry.payment_id,
            entry.outcome,
            response.status,
            request.remote or "-",
            (time.perf_counter() - started) * 1000,
        )
    return response


async def _resources(app: web.Application) -> AsyncIterator[None]:
    rt = app[runtime_key]
    settings = rt.settings
    g = settings.gateway
    data_dir = settings.terminal.data_dir
    journal = await app[journal_opener_key](settings)
    try:
        index = await GatewayIndex.open(
            g.index_path or data_dir / "gateway-index.db", timezone=g.registry_timezone
        )
        try:
            service = PaymentService(
                journal=journal,
                index=index,
                catalog_path=g.catalog_path or data_dir / "catalog.db",
                catalog_age_max_s=g.catalog_age_max_s,
                clock_ms=rt.clock_ms,
            )
            try:
                await service.start()
                rt.service = service
                watermark = asyncio.get_running_loop().create_task(_watermark_loop(service))
                logger.info(
                    "gateway_started agents=%d journal=%s index_rows=%d",
                    len(rt.agents.agents),
                    journal.path,
                    index.count(),
                )
                try:
                    yield
                finally:
                    watermark.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watermark
                    rt.draining = True
                    if not await service.drain(g.shutdown_timeout_s):
                        logger.error(
                            "gateway_shutdown_pays_unfinished count=%d", service.pays_in_flight
                        )
                    await service.advance_watermark()
            finally:
                rt.service = None
                await service.close()
        finally:
            await index.close()
    finally:
        await journal.close()
        logger.info("gateway_stopped")


async def _watermark_loop(service: PaymentService) -> None:
    while True:
        await asyncio.sleep(WATERMARK_INTERVAL_S)
        try:
            await service.advance_watermark()
        except Exception as exc:  # a failed watermark only makes the next start re-read more
            logger.warning("gateway_watermark_failed error=%s", exc)


async def _on_shutdown(app: web.Application) -> None:
    app[runtime_key].draining = True


def _default_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def create_app(
    settings: Settings,
    *,
    agents_path: Path | None = None,
    agents: AgentRegistry | None = None,
    open_journal: JournalOpener | None = None,
    clock_ms: ClockMs | None = None,
) -> web.Application:
    """The gateway for ``settings``; the journal, index and catalog open on startup.

    ``agents`` (tests) or the agents file: ``agents_path``, else
    ``gateway.agents_path``, else ``/etc/lobbypay/agents.toml``. ``open_journal``
    defaults to :func:`central_sync.journal.open_from_settings`. ``clock_ms`` is
    the wall clock in Unix milliseconds (catalog age, signatures, registry days).
    Raises :class:`~gateway.errors.AgentsFileError` if the agents file is bad.
    """
    from gateway.openapi import openapi_document_bytes
    from gateway.routes import setup_routes

    g = settings.gateway
    if agents is None:
        agents = load_agents(agents_path or g.agents_path or DEFAULT_AGENTS_PATH)
    clock = clock_ms or _default_clock_ms
    d = settings.deployment
    app = web.Application(middlewares=[error_middleware], client_max_size=g.body_bytes_max)
    app[settings_key] = settings
    app[journal_opener_key] = open_journal or open_from_settings
    policy = AccountPolicy(
        length_min=d.virtual_number_length_min,
        length_max=min(d.virtual_number_length_max, 32),
        check=d.virtual_number_check,
    )
    app[runtime_key] = Runtime(
        settings=settings,
        agents=agents,
        policy=policy,
        clock_ms=clock,
        basic=BasicAuthenticator(
            agents, cache_entries_max=g.auth_cache_entries_max, checks_max=g.password_checks_max
        ),
        hmac=HmacVerifier(
            agents,
            window_s=g.hmac_replay_window_s,
            nonce_entries_max=g.nonce_cache_entries_max,
            clock_s=lambda: clock() / 1000,
        ),
        limiter=RateLimiter(lambda: time.monotonic()),
        in_flight_max=g.requests_in_flight_max,
        openapi_json=openapi_document_bytes(
            account_length_min=policy.length_min, account_length_max=policy.length_max
        ),
    )
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_on_shutdown)
    setup_routes(app)
    return app
