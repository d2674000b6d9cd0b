"""URL table of the central ledger service (handlers are in ``handlers.py``)."""

from __future__ import annotations

from aiohttp import web

from central_sync.central import handlers, lifecycle


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/v1/health", handlers.health)
    app.router.add_post("/v1/enroll", handlers.enroll)
    app.router.add_post("/v1/batches", handlers.upload_batch)
    app.router.add_post("/v1/heartbeat", handlers.heartbeat)
    app.router.add_post("/v1/rekey", lifecycle.rekey_handler)
    app.router.add_post("/v1/decommission", lifecycle.decommission_handler)
    app.router.add_get("/v1/catalog", handlers.catalog)
    app.router.add_get("/v1/config", handlers.config)
    app.router.add_get("/v1/revocations", handlers.revocations)
    app.router.add_post("/v1/admin/registration-codes", handlers.admin_registration_code)
    app.router.add_post("/v1/admin/terminals/{terminal_id}/revoke", handlers.admin_revoke)
    app.router.add_post("/v1/admin/terminals/{terminal_id}/reinstate", handlers.admin_reinstate)
    app.router.add_get("/v1/admin/terminals", handlers.admin_terminals)
    app.router.add_get("/v1/admin/alarms", handlers.admin_alarms)
    app.router.add_post("/v1/admin/config", handlers.admin_config)
