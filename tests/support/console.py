"""Seeding a central ledger for the operator console's tests and bench, and a form-filling client.

:func:`seed_ledger` enrolls synthetic terminals, ingests their synthetic journals
through the real :class:`Ingestor` (signed batches, the same path an upload
takes), records heartbeats and adds one console user per role. Everything is
deterministic for a seed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import ClientResponse, ClientSession

from central_sync import protocol
from central_sync.central.ingest import Ingestor
from central_sync.central.storage import Storage
from central_sync.central.synthetic import synthetic_entries
from central_sync.console.accounts import Role, add_user
from firmware_config.identity import Identity
from tests.central_sync.central_support import NOW_MS, Key, batches, enroll

PASSWORD = "correct horse battery staple"
USERS: dict[Role, str] = {
    Role.OPERATOR: "olga.operator",
    Role.SUPERVISOR: "sergei.super",
    Role.AUDITOR: "anna.audit",
}
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
BATCH_ENTRIES = 2_000


@dataclass(frozen=True, slots=True)
class Seeded:
    keys: Sequence[Key]
    payments: int


async def add_console_users(storage: Storage) -> None:
    for role, name in USERS.items():
        await add_user(storage, name, role, PASSWORD, actor="test", now_ms=NOW_MS)


async def seed_ledger(
    storage: Storage,
    identity: Identity,
    *,
    terminals: int = 3,
    payments: int = 40,
    gateway_share: float = 0.3,
    labels: Sequence[str] = (),
    users: bool = True,
) -> Seeded:
    """Terminals with ``payments`` payments each (a share taken by an agent), and users."""
    ingestor = Ingestor(
        storage,
        signer=identity,
        limits=protocol.BatchLimits(entries_max=BATCH_ENTRIES * 2),
    )
    keys = []
    for n in range(terminals):
        key = Key()
        label = labels[n] if n < len(labels) else f"Подъезд {n + 1}"
        await enroll(storage, key, location=f"msk-{n + 1}", label=label)
        entries = synthetic_entries(1000 + n, payments, gateway_share=gateway_share)
        for data in batches(entries, key, BATCH_ENTRIES):
            result = await ingestor.ingest(data)
            assert result.ack is not None, result.refusal
        await storage.record_heartbeat(
            key.terminal_id,
            now_ms=NOW_MS,
            queue_depth=n,
            oldest_pending_age_s=n * 90 or None,
            software_version="0.1.0",
            catalog_version=7,
            config_version=2,
            health={},
        )
        keys.append(key)
    if users:
        await add_console_users(storage)
    return Seeded(keys=keys, payments=terminals * payments)


def csrf_of(page: str) -> str:
    found = CSRF_FIELD.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


class ConsoleClient:
    """Logs in and fills the console's forms the way a browser does (origin, token)."""

    def __init__(self, http: ClientSession, base_url: str) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.last_page = ""

    async def get(self, path: str, **params: str) -> ClientResponse:
        resp = await self.http.get(self.base + path, params=params, allow_redirects=True)
        if resp.content_type == "text/html":
            self.last_page = await resp.text()
        return resp

    async def post(
        self, path: str, data: dict[str, str], *, csrf: str | None = None, origin: str | None = None
    ) -> ClientResponse:
        form = {"csrf": csrf_of(self.last_page) if csrf is None else csrf, **data}
        headers = {"Origin": self.base if origin is None else origin}
        resp = await self.http.post(self.base + path, data=form, headers=headers)
        if resp.content_type == "text/html":
            self.last_page = await resp.text()
        return resp

    async def login(self, user: str, password: str = PASSWORD) -> ClientResponse:
        await self.get("/console/login")
        return await self.post("/console/login", {"user": user, "password": password})


def pdf_text(path: Path) -> str:
    """The text of a PDF as poppler's pdftotext reads it (poppler-utils is in SYSTEM_PACKAGES)."""
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, timeout=30, check=True
    )
    return done.stdout.decode("utf-8")
