"""The central ledger's aiohttp application (DESIGN.md, "The central ledger service").

``create_app(settings)`` builds the app; the storage, central's key and the
ingestor are opened in ``app.cleanup_ctx`` and kept under ``web.AppKey``s; the
routes are in ``routes.py``, the handlers in ``handlers.py``; one middleware maps
domain errors to HTTP statuses and JSON bodies (the only place that knows HTTP
codes), and bounds every request's time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import ValidationError

from central_sync import protocol
from central_sync.central.errors import (
    BadRequestError,
    CentralError,
    ConflictError,
    MigrationError,
    NotFoundError,
    RegistrationCodeError,
    StorageUnavailableError,
    TerminalStateError,
    UnauthorizedError,
)
from central_sync.central.ingest import Ingestor
from central_sync.central.publish import load_central_key
from central_sync.central.settings import CentralServiceSettings
from central_sync.central.storage import Storage, open_storage
from firmware_config.identity import Identity

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5


@dataclass(slots=True)
class IngestGate:
    """Counts uploads in flight; beyond the bound central answers retry-later."""

    limit: int
    in_flight: int = 0


settings_key = web.AppKey("settings", CentralServiceSettings)
storage_key = web.AppKey("storage", Storage)
identity_key = web.AppKey("identity", Identity)
ingestor_key = web.AppKey("ingestor", Ingestor)
gate_key = web.AppKey("ingest_gate", IngestGate)

_STATUS: tuple[tuple[type[CentralError], int], ...] = (
    (BadRequestError, 400),
    (UnauthorizedError, 401),
    (RegistrationCodeError, 403),
    (TerminalStateError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (StorageUnavailableError, 503),
    (MigrationError, 500),
)


def error_response(code: str, message: str, status: int, *, retryable: bool) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if retryable else None
    return web.json_response(
        {"error": code, "retryable": retryable, "message": message},
        status=status,
        headers=headers,
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Map domain errors to HTTP; bound the request's time; never leak internals."""
    timeout_s = request.app[settings_key].request_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            return await handler(request)
    except CentralError as exc:
        status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 500)
        if status >= 500:
            logger.warning("request_failed path=%s code=%s", request.path, exc.code)
        return error_response(exc.code, str(exc), status, retryable=exc.retryable)
    except protocol.SyncProtocolError as exc:
        return error_response("rejected", f"{exc.reason}: {exc}", 400, retryable=False)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        return error_response("bad-request", problems, 400, retryable=False)
    except TimeoutError:
        logger.warning("request_timeout path=%s timeout_s=%s", request.path, timeout_s)
        return error_response("timeout", "the request took too long", 503, retryable=True)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error_response(
                exc.reason.lower().replace(" ", "-"),
                exc.text or exc.reason,
                exc.status,
                retryable=exc.status in (429, 503),
            )
        raise


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    identity = load_central_key(settings.resolved_key_path)
    storage = open_storage(
        settings.resolved_database_url,
        **(
            {"pool_size_max": settings.pg_pool_size_max}
            if settings.resolved_database_url.startswith("postgres")
            else {}
        ),
    )
    await storage.open()
    try:
        if settings.migrate_on_start:
            applied = await storage.migrate()
            if applied:
                logger.info("migrations_applied names=%s", ",".join(applied))
        app[identity_key] = identity
        app[storage_key] = storage
        app[ingestor_key] = Ingestor(
            storage,
            signer=identity,
            limits=protocol.BatchLimits(
                wire_bytes_max=settings.batch_wire_bytes_max,
                decompressed_bytes_max=settings.batch_decompressed_bytes_max,
                entries_max=settings.batch_entries_max,
            ),
        )
        logger.info(
            "central_started database=%s terminal_key_fp=%s",
            storage.url.split("@")[-1],
            identity.fingerprint,
        )
        yield
    finally:
        await storage.close()


def create_app(settings: CentralServiceSettings) -> web.Application:
    """The central ledger service for ``settings`` (resources open on startup)."""
    from central_sync.central.routes import setup_routes

    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=max(settings.batch_wire_bytes_max, settings.small_request_bytes_max),
    )
    app[settings_key] = settings
    app[gate_key] = IngestGate(limit=settings.ingest_concurrency_max)
    app.cleanup_ctx.append(_resources)
    setup_routes(app)
    from central_sync.console.app import setup_console

    setup_console(app)  # the operator console under /console/
    return app
