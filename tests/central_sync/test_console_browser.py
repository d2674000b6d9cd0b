"""The operator console in a real headless Chromium, against a real `lobbypay central serve`.

The central service runs as its own process on a free port over a seeded SQLite
ledger (terminals, their payments, one console user per role). Chromium, driven
over the DevTools protocol, logs in through the form, reads the terminals page,
and downloads the payout exports (CSV and PDF) by pressing the buttons; a second
browser context (its own cookies) stands for a second person.
On CI (CI=true) a missing Chromium fails the test.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from central_sync.central.sqlite import SqliteStorage
from central_sync.console.accounts import Role
from firmware_config.identity import generate_identity
from tests.central_sync.central_support import start_server, stop_server
from tests.support.cdp import Cdp, chromium, requires_chromium
from tests.support.console import PASSWORD, USERS, Seeded, pdf_text, seed_ledger

pytestmark = requires_chromium

DOWNLOAD_TIMEOUT_S = 30.0


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Seeded]]:
    """`lobbypay central serve` on a seeded ledger: (its base URL, what was seeded)."""
    data_dir = tmp_path / "central"
    identity = generate_identity(data_dir / "central.key")
    async with SqliteStorage(data_dir / "central.db") as storage:
        await storage.migrate()
        seeded = await seed_ledger(
            storage, identity, terminals=3, payments=25, labels=("Подъезд 1", "<b>Холл</b>")
        )
    process, url = await asyncio.to_thread(start_server, data_dir)
    try:
        yield url, seeded
    finally:
        await asyncio.to_thread(stop_server, process)


async def js(cdp: Cdp, expression: str) -> object:
    return await cdp.evaluate(expression)


async def submit(cdp: Cdp, button: str) -> None:
    """Press a form's button and wait for the page it leads to."""
    mark = len(cdp.events)
    await js(cdp, f"document.querySelector({json.dumps(button)}).click()")
    await cdp.wait_event("Page.loadEventFired", after=mark)


async def login(cdp: Cdp, base: str, user: str) -> None:
    await cdp.navigate(f"{base}/console/terminals")
    assert await js(cdp, "location.pathname") == "/console/login"
    await js(
        cdp,
        f"document.querySelector('input[name=user]').value = {json.dumps(user)};"
        f"document.querySelector('input[name=password]').value = {json.dumps(PASSWORD)};",
    )
    await submit(cdp, "form.login button")
    assert await js(cdp, "location.pathname") == "/console/terminals"


def _files(directory: Path, suffix: str) -> list[Path]:
    # Chromium writes a partial download under another name and renames it when done.
    return [p for p in directory.iterdir() if p.name.endswith(suffix)]


async def downloaded(directory: Path, suffix: str) -> Path:
    deadline = time.monotonic() + DOWNLOAD_TIMEOUT_S
    while True:
        done = await asyncio.to_thread(_files, directory, suffix)
        if done:
            return done[0]
        assert time.monotonic() < deadline, f"no {suffix} download in {directory}"
        await asyncio.sleep(0.1)


async def test_operator_logs_in_views_terminals_and_exports_csv_and_pdf(
    served: tuple[str, Seeded], tmp_path: Path
) -> None:
    base, seeded = served
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    async with (
        chromium(tmp_path / "profile") as browser,
        browser.page(downloads=downloads) as cdp,
    ):
        await login(cdp, base, USERS[Role.OPERATOR])
        rows = await js(
            cdp,
            "Array.from(document.querySelectorAll('#terminals tbody tr'))"
            ".map(r => r.dataset.terminal)",
        )
        assert isinstance(rows, list)
        assert sorted(rows) == sorted(k.terminal_id for k in seeded.keys)
        # The label with markup is shown as text, not parsed as HTML.
        assert await js(cdp, "document.querySelector('#terminals b') === null")
        assert "<b>Холл</b>" in str(await js(cdp, "document.body.innerText"))
        cookies = (await cdp.call("Network.getCookies"))["cookies"]
        session = next(c for c in cookies if c["name"] == "lp_console_session")
        assert session["httpOnly"]
        assert session["sameSite"] == "Strict"
        assert await js(cdp, "document.cookie.includes('lp_console_session')") is False

        await cdp.navigate(f"{base}/console/exports")
        await js(cdp, "document.querySelector('select[name=by]').value = 'provider'")
        await js(cdp, "document.querySelector('button[formaction$=\"payouts.csv\"]').click()")
        csv_file = await downloaded(downloads, ".csv")
        lines = csv_file.read_text(encoding="utf-8-sig").splitlines()
        assert lines[0].startswith("provider,currency,payments,amount_minor")
        assert any(line.startswith("Vodokanal,RUB,") for line in lines)

        await js(cdp, "document.querySelector('button[formaction$=\"payouts.pdf\"]').click()")
        pdf_file = await downloaded(downloads, ".pdf")
        text = await asyncio.to_thread(pdf_text, pdf_file)
        assert "Перечисления в разрезе поставщика услуг" in text
        assert "Vodokanal" in text


async def test_auditor_in_another_browser_sees_its_own_session_and_no_changes(
    served: tuple[str, Seeded], tmp_path: Path
) -> None:
    base, _ = served
    async with (
        chromium(tmp_path / "profile") as browser,
        browser.page() as operator,
        browser.page() as auditor,
    ):
        await login(operator, base, USERS[Role.OPERATOR])
        await login(auditor, base, USERS[Role.AUDITOR])
        assert USERS[Role.OPERATOR] in str(await js(operator, "document.body.innerText"))
        assert USERS[Role.AUDITOR] in str(await js(auditor, "document.body.innerText"))
        # Switching the auditor's language leaves the operator's pages Russian.
        await submit(auditor, "a[hreflang=en]")
        assert "Terminals" in str(await js(auditor, "document.querySelector('h1').innerText"))
        await operator.navigate(f"{base}/console/batches")
        assert "Полученные пакеты" in str(await js(operator, "document.body.innerText"))
