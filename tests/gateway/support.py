"""Test support for the gateway: a real catalog, an agents file, a client that signs.

Everything here is the real thing: a catalog release signed with Ed25519 and
applied to a SQLite store, the real journal (optionally with a connection whose
COMMIT waits on a gate, to hold payments in flight), the app from
``create_app`` served by aiohttp's test server over a real loopback socket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, encode_basic_auth, web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.catalog import generator, publish
from central_sync.catalog import model as m
from central_sync.catalog.store import CatalogStore
from central_sync.journal import Journal, limits_from_settings
from firmware_config.settings import Settings
from gateway.agents import hash_password
from gateway.osmp import OsmpResponse, parse_response
from gateway.security import sign_request
from gateway.service import PaymentService
from gateway.state import Runtime, runtime_key

DAY_MS = 24 * 3600 * 1000

# Accounts of the demo catalog (central_sync.catalog.generator.demo_catalog).
ACCOUNT = "1000000008"  # five services with debts
ACCOUNT_PAID_UP = "1000000024"
# Accounts this module adds to the demo catalog.
ACCOUNT_INACTIVE = generator.virtual_number(generator.DEMO_SEED, 900)  # no services
ACCOUNT_NO_OVERPAY = generator.virtual_number(generator.DEMO_SEED, 901)  # owes 0, no overpay
ACCOUNT_MISSING = generator.virtual_number(generator.DEMO_SEED, 902)  # well formed, absent

BANK_PASSWORD = "bank-secret-password"
BANK_KEY_ID = "bank-k1"
BANK_SECRET = bytes(range(32))
LIMITED_KEY_ID = "limited-k1"
LIMITED_SECRET = bytes(range(1, 33))
OTHER_PASSWORD = "other-password"

TEST_SCRYPT_N = 2**10  # cheap for tests; production hashes use 2**14


def test_catalog() -> m.Catalog:
    """The demo catalog plus an inactive account and one that may not be overpaid."""
    demo = generator.demo_catalog()
    base = demo.accounts[ACCOUNT_PAID_UP]
    waste = next(s for s in base.services if s.code == "WASTE")
    extra = [
        dataclasses.replace(base, virtual_number=ACCOUNT_INACTIVE, card_hashes=(), services=()),
        dataclasses.replace(
            base, virtual_number=ACCOUNT_NO_OVERPAY, card_hashes=(), services=(waste,)
        ),
    ]
    return m.Catalog.of(demo.header, [*demo.accounts.values(), *extra])


@dataclass(frozen=True)
class Release:
    data: bytes
    public_key: bytes
    published_at_ms: int


def build_release(published_at_ms: int) -> Release:
    key = Ed25519PrivateKey.generate()
    data = publish.build_snapshot(
        test_catalog(),
        1,
        key,
        published_at_ms=published_at_ms,
        expires_at_ms=published_at_ms + 30 * DAY_MS,
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return Release(data, public, published_at_ms)


def install_catalog(path: Path, release: Release) -> None:
    store = CatalogStore.open(path)
    try:
        publish.apply_release(
            store,
            release.data,
            central_public_key=release.public_key,
            now_ms=release.published_at_ms,
        )
    finally:
        store.close()


def agents_toml() -> str:
    def pw(password: str) -> str:
        return hash_password(password, n=TEST_SCRYPT_N)

    local = '["127.0.0.0/8", "::1/128"]'
    return f"""
[agents.bank]
name = "Test bank"
protocols = ["osmp", "json"]
ip_allow = {local}
amount_min_minor = 100
amount_max_minor = 1_500_000
rate_per_s = 100000
rate_burst = 100000
lang = "en"
basic_password_hash = "{pw(BANK_PASSWORD)}"
[[agents.bank.hmac_keys]]
key_id = "{BANK_KEY_ID}"
secret_hex = "{BANK_SECRET.hex()}"

[agents.limited]
protocols = ["osmp", "json"]
ip_allow = {local}
rate_per_s = 1
rate_burst = 3
basic_password_hash = "{pw(OTHER_PASSWORD)}"
[[agents.limited.hmac_keys]]
key_id = "{LIMITED_KEY_ID}"
secret_hex = "{LIMITED_SECRET.hex()}"

[agents.checker]
protocols = ["osmp"]
allow_pay = false
ip_allow = {local}
basic_password_hash = "{pw(OTHER_PASSWORD)}"

[agents.remote]
protocols = ["osmp"]
ip_allow = ["10.0.0.0/8"]
basic_password_hash = "{pw(OTHER_PASSWORD)}"

[agents.off]
enabled = false
protocols = ["osmp"]
ip_allow = {local}
basic_password_hash = "{pw(OTHER_PASSWORD)}"
"""


def basic(user: str = "bank", password: str = BANK_PASSWORD) -> dict[str, str]:
    return {"Authorization": encode_basic_auth(user, password)}


# -- a journal whose commits can be held -----------------------------------------------


class CommitGate:
    """Holds every journal COMMIT while closed (fault injection through the connect hook)."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.fail_next_commits = 0
        self.commits_waiting = 0

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def connect(self, path: str) -> sqlite3.Connection:
        gate = self

        class GatedConnection(sqlite3.Connection):
            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
                if sql == "COMMIT":
                    gate.commits_waiting += 1
                    try:
                        if not gate._open.wait(timeout=30):
                            raise sqlite3.OperationalError("test gate never opened")
                    finally:
                        gate.commits_waiting -= 1
                    if gate.fail_next_commits > 0:
                        gate.fail_next_commits -= 1
                        super().execute("ROLLBACK")
                        raise sqlite3.OperationalError("disk I/O error (injected)")
                return super().execute(sql, *args)

        return sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,
            timeout=5.0,
            factory=GatedConnection,
        )

    def opener(self) -> Callable[[Settings], Awaitable[Journal]]:
        async def open_journal(settings: Settings) -> Journal:
            return await Journal.open(
                settings.journal_path,
                limits=limits_from_settings(settings),
                group_commit_entries_max=settings.journal.group_commit_entries_max,
                append_queue_max=settings.journal.append_queue_max,
                connect=self.connect,
            )

        return open_journal


# -- the client ------------------------------------------------------------------------------


@dataclass
class Gateway:
    """A running gateway and a client for it."""

    client: TestClient[web.Request, web.Application]
    settings: Settings
    clock_ms: Callable[[], int]
    data_dir: Path
    txn_counter: list[int] = field(default_factory=lambda: [1000])

    @property
    def app(self) -> web.Application:
        return self.client.server.app  # type: ignore[return-value]

    @property
    def runtime(self) -> Runtime:
        return self.app[runtime_key]

    @property
    def service(self) -> PaymentService:
        service = self.runtime.service
        assert service is not None
        return service

    @property
    def journal(self) -> Journal:
        return self.service.journal

    def next_txn(self) -> str:
        self.txn_counter[0] += 1
        return str(self.txn_counter[0])

    async def osmp_raw(
        self,
        params: Mapping[str, str] | str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> ClientResponse:
        query = params if isinstance(params, str) else urllib.parse.urlencode(params)
        h = dict(basic() if headers is None else headers)
        if method == "GET":
            return await self.client.get(f"/osmp?{query}", headers=h)
        if body is None:
            body = query.encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
            return await self.client.post("/osmp", data=body, headers=h)
        return await self.client.post(f"/osmp?{query}" if query else "/osmp", data=body, headers=h)

    async def osmp(
        self,
        params: Mapping[str, str] | str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> OsmpResponse:
        resp = await self.osmp_raw(params, method=method, headers=headers)
        body = await resp.read()
        assert resp.status == status, (resp.status, body)
        assert resp.content_type == "text/xml"
        return parse_response(body)

    def pay_params(
        self, *, txn_id: str | None = None, account: str = ACCOUNT, sum_: str = "100.00"
    ) -> dict[str, str]:
        return {
            "command": "pay",
            "txn_id": txn_id or self.next_txn(),
            "txn_date": "20250601120000",
            "account": account,
            "sum": sum_,
        }

    async def signed(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        query: str = "",
        key_id: str = BANK_KEY_ID,
        secret: bytes = BANK_SECRET,
        idempotency_key: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ClientResponse:
        ts = timestamp if timestamp is not None else self.clock_ms() // 1000
        headers = sign_request(
            key_id,
            secret,
            method=method,
            path=path,
            query=query,
            body=body,
            timestamp=ts,
            nonce=nonce,
            idempotency_key=idempotency_key or "",
        )
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if body:
            headers["Content-Type"] = "application/json"
        headers.update(extra_headers or {})
        url = f"{path}?{query}" if query else path
        return await self.client.request(method, url, data=body or None, headers=headers)

    async def intents(self) -> list[dict[str, Any]]:
        """Every payment-intent body in the journal."""
        head, _ = await self.journal.head()
        entries = await self.journal.read(1, max(head, 1)) if head else []
        return [dict(e.body) for e in entries if e.kind == "payment-intent"]

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.005)
