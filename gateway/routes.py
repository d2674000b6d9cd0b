"""URL table of the gateway (handlers in ``osmp_handlers.py`` and ``json_handlers.py``)."""

from __future__ import annotations

from aiohttp import web

from gateway import json_handlers, osmp_handlers


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/osmp", osmp_handlers.osmp)
    app.router.add_post("/osmp", osmp_handlers.osmp)
    app.router.add_get("/health", json_handlers.health)
    app.router.add_get("/v1/openapi.json", json_handlers.openapi)
    app.router.add_get("/v1/accounts/{account}", json_handlers.account)
    app.router.add_post("/v1/payments", json_handlers.create_payment)
    app.router.add_get("/v1/payments/{payment_id}", json_handlers.get_payment)
    app.router.add_get("/v1/registry/{date}", json_handlers.registry)
