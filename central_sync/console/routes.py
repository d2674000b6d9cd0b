"""URL table of the operator console (paths are under ``/console/``).

Who may use each handler is declared on the handler (``web.policy``).
"""

from __future__ import annotations

from aiohttp import web

from central_sync.console import auth_pages, ledger_pages, recon_pages


def setup_console_routes(console: web.Application) -> None:
    add_get, add_post = console.router.add_get, console.router.add_post
    add_get("/", auth_pages.home)
    add_get("/login", auth_pages.login_page)
    add_post("/login", auth_pages.login_submit)
    add_post("/logout", auth_pages.logout)
    add_get("/lang", auth_pages.set_language)
    add_get("/static/console.css", auth_pages.stylesheet)
    add_get("/static/console.js", auth_pages.script)
    add_get("/terminals", ledger_pages.terminals)
    add_get("/batches", ledger_pages.batches)
    add_get("/volume", ledger_pages.volume)
    add_get("/exports", ledger_pages.exports)
    add_get("/exports/payouts.csv", ledger_pages.payouts_csv_download)
    add_get("/exports/payouts.pdf", ledger_pages.payouts_pdf_download)
    recon_pages.setup_routes(console)
