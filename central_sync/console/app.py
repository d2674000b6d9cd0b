"""Mounting the operator console into the central service under ``/console/``.

The console is an aiohttp sub-application: its own middleware (``web.py``)
does sessions, roles, CSRF and HTML error pages, and the central app's storage
is reached through ``request.config_dict``. Central's own middleware still wraps
it (request timeouts); redirects pass through it untouched.
"""

from __future__ import annotations

from aiohttp import web

from central_sync.console.layout import PREFIX
from central_sync.console.routes import setup_console_routes
from central_sync.console.settings import ConsoleSettings
from central_sync.console.web import console_middleware, console_settings_key


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX + "/")


def setup_console(app: web.Application, settings: ConsoleSettings | None = None) -> None:
    """Add the console to the central ``app`` (settings from the environment by default)."""
    console = web.Application(middlewares=[console_middleware])
    console[console_settings_key] = settings or ConsoleSettings()
    setup_console_routes(console)
    app.add_subapp(PREFIX + "/", console)
    app.router.add_get(PREFIX, _to_console)
