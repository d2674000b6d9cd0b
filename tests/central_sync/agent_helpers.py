"""Helpers for the sync agent tests: a real central on 127.0.0.1, journals, fault injection."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from central_sync import protocol
from central_sync.agent import AgentConfig, AiohttpTransport, Response, SyncAgent, Transport
from central_sync.agent.timing import SYSTEM_CLOCK, Clock
from central_sync.central.app import create_app, storage_key
from central_sync.central.settings import CentralServiceSettings
from central_sync.central.storage import Storage
from central_sync.central.synthetic import payment_bodies
from central_sync.journal import KIND_PAYMENT_INTENT, KIND_PAYMENT_RESULT, Journal
from firmware_config.identity import Identity, generate_identity

TOKEN = "operator-token-for-agent-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class Central:
    """A central ledger service listening on a real port of 127.0.0.1."""

    server: TestServer
    identity: Identity
    url: str

    @property
    def app(self) -> web.Application:
        return self.server.app

    @property
    def storage(self) -> Storage:
        return self.app[storage_key]

    @property
    def public_key(self) -> bytes:
        return self.identity.public_key_bytes

    async def admin(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, json=body or {}, headers=ADMIN) as resp,
        ):
            assert resp.status < 300, await resp.text()
            return await resp.json()

    async def enroll(self, terminal: Identity, location: str = "msk-lenina-5") -> None:
        code = (await self.admin("POST", "/v1/admin/registration-codes", {"location": location}))[
            "code"
        ]
        request = protocol.EnrollRequest(
            terminal_id=terminal.terminal_id,
            public_key=terminal.public_key_bytes,
            registration_code=code,
            location=location,
            label="Подъезд 2",
            created_ms=int(time.time() * 1000),
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.url + "/v1/enroll", data=protocol.build_enroll_request(request, terminal)
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()

    async def terminal(self, terminal_id: str) -> dict[str, Any]:
        listing = await self.admin("GET", "/v1/admin/terminals")
        found: dict[str, Any] = next(
            t for t in listing["terminals"] if t["terminal_id"] == terminal_id
        )
        return found


async def start_central(aiohttp_server: ServerFactory, directory: Path, **settings: Any) -> Central:
    identity = generate_identity(directory / "central.key")  # (makes the directory)
    app = create_app(CentralServiceSettings(data_dir=directory, operator_token=TOKEN, **settings))
    server = await aiohttp_server(app, host="127.0.0.1")
    return Central(server=server, identity=identity, url=str(server.make_url("")).rstrip("/"))


async def append_payments(journal: Journal, payments: int, *, seed: int = 1) -> None:
    """``payments`` payments (intent and result, two entries each)."""
    rng = random.Random(seed)
    for n in range(payments):
        intent, result = payment_bodies(rng, n + 1, gateway=n % 3 == 0)
        await journal.append(KIND_PAYMENT_INTENT, intent)
        await journal.append(KIND_PAYMENT_RESULT, result)


_OPEN: list[AiohttpTransport] = []


async def close_transports() -> None:
    """Close the transports :func:`make_agent` made (teardown, even after a failure)."""
    while _OPEN:
        await _OPEN.pop().close()


def make_agent(
    journal: Journal,
    terminal: Identity,
    central: Central,
    *,
    transport: Transport | None = None,
    clock: Clock = SYSTEM_CLOCK,
    central_key: bytes | None = None,
    catalog_path: Path | None = None,
    state_path: Path | None = None,
    health: Callable[[], Mapping[str, str | int | bool]] | None = None,
    **config: Any,
) -> SyncAgent:
    defaults: dict[str, Any] = {
        "response_timeout_s": 10.0,
        "request_timeout_s": 10.0,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.5,
        "idle_poll_interval_s": 0.05,
    }
    defaults.update(config)
    if transport is None:
        transport = AiohttpTransport(central.url)
        _OPEN.append(transport)
    return SyncAgent(
        journal=journal,
        signer=terminal,
        central_public_key=central_key or central.public_key,
        transport=transport,
        config=AgentConfig(**defaults),
        clock=clock,
        rng=random.Random(7),
        catalog_path=catalog_path,
        state_path=state_path,
        software_version="1.2.3-test",
        health=health,
    )


Rewrite = Callable[[str, str, Response], Response]


class RewritingTransport:
    """Fault injection: a real transport whose answers pass through ``rewrite``.

    ``before`` runs before each request is forwarded (to look at the journal
    at the moment of sending).
    """

    def __init__(
        self,
        inner: Transport,
        rewrite: Rewrite | None = None,
        before: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.inner = inner
        self.rewrite = rewrite
        self.before = before
        self.calls: list[tuple[str, str]] = []

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float,
        body_bytes_max: int,
    ) -> Response:
        self.calls.append((method, path))
        if self.before is not None:
            await self.before(method, path)
        response = await self.inner.request(
            method, path, body, headers=headers, timeout_s=timeout_s, body_bytes_max=body_bytes_max
        )
        return response if self.rewrite is None else self.rewrite(method, path, response)

    async def download(
        self, path: str, target: Path, *, timeout_s: float, bytes_max: int
    ) -> Response:
        self.calls.append(("GET", path))
        if self.rewrite is None:
            return await self.inner.download(path, target, timeout_s=timeout_s, bytes_max=bytes_max)
        response = await self.inner.request(
            "GET", path, timeout_s=timeout_s, body_bytes_max=bytes_max
        )
        response = self.rewrite("GET", path, response)
        if response.status == 200:
            await asyncio.to_thread(target.write_bytes, response.body)
            return Response(status=200, headers=response.headers)
        return response

    async def close(self) -> None:
        await self.inner.close()


class FakeClock:
    """A clock that never sleeps: ``wait`` records the timeout and jumps ahead."""

    def __init__(self, *, on_wait: Callable[[float], None] | None = None) -> None:
        self.now_s = 1000.0
        self.waits: list[float] = []
        self.on_wait = on_wait

    def monotonic(self) -> float:
        return self.now_s

    def time_ms(self) -> int:
        return int(time.time() * 1000) + int(self.now_s * 1000)

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        self.waits.append(timeout_s)
        self.now_s += max(0.0, timeout_s)
        if self.on_wait is not None:
            self.on_wait(timeout_s)
        await asyncio.sleep(0)
        return event.is_set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connections are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
