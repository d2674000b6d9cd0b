"""Reconciliation pages (filled in on the reconciliation API)."""

from __future__ import annotations

from aiohttp import web


def setup_routes(console: web.Application) -> None:
    pass
