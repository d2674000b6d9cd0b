"""The operator console over HTTP (aiohttp test client): login, sessions, CSRF, roles, pages.

Against SQLite and PostgreSQL, on a ledger seeded through the real ingest path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from central_sync.central.app import create_app, identity_key, storage_key
from central_sync.central.postgres import PostgresStorage
from central_sync.central.settings import CentralServiceSettings
from central_sync.central.sql import SqlConnection
from central_sync.central.storage import Storage, TerminalState
from central_sync.console import db
from central_sync.console.accounts import Role
from firmware_config.identity import generate_identity
from tests.central_sync.central_support import pg_url_with_schema
from tests.central_sync.conftest import require_pg
from tests.support.console import (
    PASSWORD,
    USERS,
    ConsoleClient,
    Seeded,
    pdf_text,
    seed_ledger,
)

Client = TestClient[web.Request, web.Application]

XSS = '<script>alert("x")</script>'


@pytest.fixture(params=["sqlite", "postgres"])
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> AsyncIterator[tuple[Client, Seeded]]:
    """A central service with the console, on a seeded ledger."""
    url = ""
    if request.param == "postgres":
        await require_pg()
        url = pg_url_with_schema()
    monkeypatch.setenv("LOBBYPAY_CONSOLE_LOGIN_FAILURES_MAX", "3")
    monkeypatch.setenv("LOBBYPAY_CONSOLE_PAGE_ROWS_MAX", "2")
    generate_identity(tmp_path / "central.key")
    settings = CentralServiceSettings(data_dir=tmp_path, database_url=url, pg_pool_size_max=3)
    client = await aiohttp_client(create_app(settings))
    seeded = await seed_ledger(
        client.app[storage_key],
        client.app[identity_key],
        terminals=3,
        payments=30,
        labels=("Подъезд 1", XSS),
    )
    try:
        yield client, seeded
    finally:
        storage = client.app[storage_key]
        if isinstance(storage, PostgresStorage):
            await storage.drop_schema()


@pytest.fixture
def central(env: tuple[Client, Seeded]) -> Client:
    return env[0]


@pytest.fixture
def seeded(env: tuple[Client, Seeded]) -> Seeded:
    return env[1]


def browser(client: Client) -> ConsoleClient:
    return ConsoleClient(client.session, str(client.make_url("")))


async def second_browser(client: Client) -> ConsoleClient:
    """Another browser (its own cookies) on the same server."""
    other = Client(client.server)
    await other.start_server()
    return ConsoleClient(other.session, str(other.make_url("")))


def storage_of(client: Client) -> Storage:
    return client.app[storage_key]


async def sessions_of(client: Client) -> int:
    async def op(conn: SqlConnection) -> int:
        return int(await conn.fetchval("SELECT COUNT(*) FROM console_sessions"))

    return await db.read(storage_of(client), op)


# --- login, sessions ---------------------------------------------------------------


async def test_console_page_without_session_redirects_to_login(central: Client) -> None:
    resp = await central.get("/console/terminals", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/console/login?next=/console/terminals")


async def test_login_with_right_password_opens_terminals_with_strict_cookie(
    central: Client,
) -> None:
    b = browser(central)
    resp = await b.login(USERS[Role.OPERATOR])
    assert resp.status == 200
    assert resp.url.path == "/console/terminals"
    cookie = resp.history[0].headers["Set-Cookie"]
    assert "lp_console_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/console/" in cookie
    assert "Secure" not in cookie  # plain HTTP in the test; Secure under TLS
    assert USERS[Role.OPERATOR] in b.last_page
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert await sessions_of(central) == 1


async def test_login_with_wrong_password_is_refused_without_session(central: Client) -> None:
    b = browser(central)
    resp = await b.login(USERS[Role.OPERATOR], "not the password at all")
    assert resp.status == 401
    assert "Неверное имя пользователя или пароль" in b.last_page
    assert await sessions_of(central) == 0
    unknown = await b.login("nobody.here", PASSWORD)
    assert unknown.status == 401  # same answer: names are not revealed


async def test_login_is_throttled_after_failures_even_with_right_password(
    central: Client,
) -> None:
    b = browser(central)
    for _ in range(3):
        assert (await b.login(USERS[Role.AUDITOR], "wrong password here")).status == 401
    resp = await b.login(USERS[Role.AUDITOR])
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert await sessions_of(central) == 0
    # Another user from elsewhere is not affected by this name's failures.
    assert (await browser(central).login(USERS[Role.OPERATOR])).status == 200


async def test_logout_ends_the_session_on_the_server(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    resp = await b.post("/console/logout", {})
    assert resp.url.path == "/console/login"
    assert await sessions_of(central) == 0
    again = await central.get("/console/terminals", allow_redirects=False)
    assert again.status == 302


@pytest.mark.parametrize("column", ["last_seen_ms", "expires_ms"])
async def test_idle_or_absolute_expiry_ends_the_session(central: Client, column: str) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])

    async def age(conn: SqlConnection) -> None:
        # Push the session back in time past its idle (or absolute) limit.
        await conn.execute(f"UPDATE console_sessions SET {column} = {column} - 86400000")

    await db.write(storage_of(central), age)
    resp = await b.get("/console/terminals")
    assert resp.url.path == "/console/login"
    assert "Сеанс завершён" in b.last_page
    assert await sessions_of(central) == 0


async def test_login_form_next_parameter_cannot_leave_the_console(central: Client) -> None:
    b = browser(central)
    await b.get("/console/login", next="https://evil.example/")
    resp = await b.post("/console/login", {"user": USERS[Role.OPERATOR], "password": PASSWORD})
    assert resp.url.host == central.make_url("").host
    assert resp.url.path == "/console/terminals"


# --- CSRF -------------------------------------------------------------------------------------


async def test_post_without_csrf_token_is_refused_and_changes_nothing(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    resp = await b.post("/console/logout", {}, csrf="")
    assert resp.status == 403
    assert await sessions_of(central) == 1
    resp = await b.post("/console/logout", {}, csrf="forged-token")
    assert resp.status == 403
    assert await sessions_of(central) == 1


async def test_post_from_another_origin_is_refused_even_with_token(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    resp = await b.post("/console/logout", {}, origin="https://evil.example")
    assert resp.status == 403
    assert "другого сайта" in await resp.text()
    assert await sessions_of(central) == 1


async def test_login_post_without_login_token_is_refused(central: Client) -> None:
    b = browser(central)
    await b.get("/console/login")
    resp = await b.post(
        "/console/login", {"user": USERS[Role.OPERATOR], "password": PASSWORD}, csrf="x"
    )
    assert resp.status == 403
    assert await sessions_of(central) == 0


# --- pages ------------------------------------------------------------------------------------


async def test_terminals_page_lists_every_terminal_with_heartbeat_figures(
    central: Client, seeded: Seeded
) -> None:
    b = browser(central)
    await b.login(USERS[Role.AUDITOR])
    page = b.last_page
    for key in seeded.keys:
        assert key.terminal_id in page
    assert "0.1.0" in page  # software version from the heartbeat
    assert "Терминалов: 3" in page


async def test_terminal_label_is_escaped_on_the_page(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    assert XSS not in b.last_page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in b.last_page


async def test_quarantined_terminal_is_marked(central: Client, seeded: Seeded) -> None:
    await storage_of(central).set_terminal_state(
        seeded.keys[0].terminal_id,
        TerminalState.QUARANTINED,
        reason="fork at seq 7",
        actor="test",
        now_ms=1,
    )
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    assert "карантин: fork at seq 7" in b.last_page
    assert f'class="bad" data-terminal="{seeded.keys[0].terminal_id}"' in b.last_page


async def test_batches_page_pages_and_filters_by_terminal(central: Client, seeded: Seeded) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    await b.get("/console/batches")
    assert "Строк: 3" in b.last_page
    assert "Страница 1 из 2" in b.last_page
    await b.get("/console/batches", page="2")
    assert "Страница 2 из 2" in b.last_page
    one = seeded.keys[1].terminal_id
    await b.get("/console/batches", terminal=one)
    assert "Строк: 1" in b.last_page
    resp = await b.get("/console/batches", page="-1")
    assert resp.status == 400


async def test_volume_chart_is_inline_svg_with_the_days_payments(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    await b.get("/console/volume")
    page = b.last_page
    assert '<svg class="chart"' in page
    assert "<rect" in page
    # 3 terminals x 30 payments, all on 2025-01-01 (synthetic journals start there).
    assert "2025-01-01: 90 ·" in page


async def test_language_switch_renders_english_and_returns(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    resp = await b.get("/console/lang", set="en", next="/console/batches")
    assert resp.url.path == "/console/batches"
    assert "Batches received" in b.last_page
    assert '<html lang="en">' in b.last_page
    await b.get("/console/lang", set="ru", next="https://evil.example/")
    assert "Терминалы" in b.last_page


async def test_unknown_console_path_is_a_404_page(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    resp = await b.get("/console/nothing-here")
    assert resp.status == 404
    assert "Не найдено" in b.last_page


# --- exports ---------------------------------------------------------------------------------


async def test_payouts_csv_per_terminal_sums_to_the_ledger(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.AUDITOR])
    resp = await b.get(
        "/console/exports/payouts.csv", by="terminal", **{"from": "2025-01-01", "to": "2025-01-01"}
    )
    assert resp.status == 200
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    text = (await resp.read()).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0] == "terminal,currency,payments,amount_minor,amount,from,to"
    assert len(lines) == 4
    rows = await storage_of(central).export_rows("payments", 0, 2**62)
    assert sum(int(line.split(",")[3]) for line in lines[1:]) == sum(
        r["amount_minor"] for r in rows
    )


async def test_payouts_per_provider_split_services(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    resp = await b.get(
        "/console/exports/payouts.csv", by="provider", **{"from": "2025-01-01", "to": "2025-01-01"}
    )
    text = (await resp.read()).decode("utf-8-sig")
    rows = await storage_of(central).export_rows("payments", 0, 2**62)
    expected: dict[str, int] = {}
    for row in rows:
        for service in row["services"]:
            expected[service["provider"]] = (
                expected.get(service["provider"], 0) + service["amount_minor"]
            )
    got = {line.split(",")[0]: int(line.split(",")[3]) for line in text.splitlines()[1:]}
    assert got == expected


async def test_payouts_csv_neutralizes_formula_cells() -> None:
    from central_sync.console.ledger import PayoutLine
    from central_sync.console.reports import PayoutReport, payouts_csv

    report = PayoutReport(
        by="agent",
        first_day="2025-01-01",
        last_day="2025-01-01",
        lines=[PayoutLine(key="=HYPERLINK(1)", currency="RUB", payments=1, amount_minor=-5)],
        generated="now",
        user="u",
    )
    text = payouts_csv(report).decode("utf-8-sig")
    assert "'=HYPERLINK(1),RUB,1,-5,-0.05" in text


async def test_payouts_pdf_opens_with_cyrillic_text(central: Client, tmp_path: Path) -> None:
    b = browser(central)
    await b.login(USERS[Role.SUPERVISOR])
    resp = await b.get(
        "/console/exports/payouts.pdf", by="provider", **{"from": "2025-01-01", "to": "2025-01-01"}
    )
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    data = await resp.read()
    assert data.startswith(b"%PDF-")
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    text = await asyncio.to_thread(pdf_text, path)
    assert "Перечисления в разрезе поставщика услуг" in text
    assert "Vodokanal" in text
    assert "Итого" in text


async def test_export_with_reversed_dates_is_a_400_page(central: Client) -> None:
    b = browser(central)
    await b.login(USERS[Role.OPERATOR])
    resp = await b.get(
        "/console/exports/payouts.csv", by="terminal", **{"from": "2025-01-02", "to": "2025-01-01"}
    )
    assert resp.status == 400
    assert "before the start date" in b.last_page


# --- escaping, unit ---------------------------------------------------------------------------


def test_html_escapes_values_and_keeps_markup() -> None:
    from central_sync.console.html import Markup, html

    out = html("<td>{a}</td><td>{b}</td>", a="<b>&\"'", b=Markup("<i>ok</i>"))
    assert out == "<td>&lt;b&gt;&amp;&quot;&#x27;</td><td><i>ok</i></td>"


def test_both_languages_have_every_message_with_the_same_placeholders() -> None:
    from central_sync.console.i18n import MESSAGES, placeholders

    for key, (en, ru) in MESSAGES.items():
        assert en, key
        assert ru, key
        assert placeholders(en) == placeholders(ru), key


def test_every_message_key_used_in_the_console_exists() -> None:
    import re

    from central_sync.console import i18n

    used: set[str] = set()
    for path in Path(i18n.__file__).parent.glob("*.py"):
        used.update(re.findall(r"""\bt\(\s*[\w.]+,\s*"([a-z_]+\.[a-z_.]+)\"""", path.read_text()))
    assert used
    assert used <= set(i18n.MESSAGES)


def test_money_is_formatted_exactly_from_minor_units() -> None:
    from central_sync.console.i18n import money

    assert money(123456789, "ru") == "1\u00a0234\u00a0567,89"
    assert money(123456789, "en") == "1,234,567.89"
    assert money(-5, "en") == "−0.05"
    with pytest.raises(TypeError):
        money(1.5, "en")  # type: ignore[arg-type]


def test_chart_escapes_labels_and_titles() -> None:
    from central_sync.console.chart import Bar, bar_chart

    svg = bar_chart([Bar(label="<x>", value=3, title='"t"&')], caption="<c>", value_label="n")
    assert "<x>" not in svg
    assert "&lt;x&gt;" in svg
    assert "&quot;t&quot;&amp;" in svg
    assert "&lt;c&gt;" in svg


async def test_session_cookie_is_secure_when_served_over_tls(tmp_path: Path) -> None:
    import ssl

    from aiohttp.test_utils import TestServer

    from tests.central_sync.test_agent_transport import self_signed

    (tmp_path / "tls").mkdir()
    cert_path, key_path = self_signed(tmp_path / "tls")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_path, key_path)
    client_ctx = ssl.create_default_context(cafile=str(cert_path))

    generate_identity(tmp_path / "central.key")
    app = create_app(CentralServiceSettings(data_dir=tmp_path))
    server = TestServer(app, scheme="https")
    await server.start_server(ssl=server_ctx)
    try:
        await seed_ledger(app[storage_key], app[identity_key], terminals=1, payments=1)
        connector = aiohttp.TCPConnector(ssl=client_ctx)
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:
            b = ConsoleClient(http, str(server.make_url("")))
            resp = await b.login(USERS[Role.OPERATOR])
            assert resp.status == 200
            cookie = resp.history[0].headers["Set-Cookie"]
            assert "lp_console_session=" in cookie
            assert "Secure" in cookie
    finally:
        await server.close()
