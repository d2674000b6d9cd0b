"""Schemathesis against the OpenAPI document: every operation, generated requests, signed.

The gateway runs for real (its own event loop in a thread, a loopback socket);
each generated request is signed like an agent would sign it (the requests
auth hook sees the final body), so the generated data reaches the handlers
instead of stopping at 401. The checks are schemathesis' defaults: no server
error, documented status codes, content types, headers and bodies, and invalid
data rejected. Examples are limited to keep the run short.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")

from aiohttp import web  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.openapi import openapi_document  # noqa: E402
from gateway.security import sign_request  # noqa: E402
from tests.gateway.conftest import make_settings  # noqa: E402
from tests.gateway.support import (  # noqa: E402
    BANK_KEY_ID,
    BANK_SECRET,
    agents_toml,
    build_release,
    install_catalog,
)

# Schema-valid requests may still be refused for what a schema cannot say: a
# wrong check digit in the account, the agent's amount limits, a reused
# Idempotency-Key. The API documents those as 422 (docs/gateway.md), so 422 is
# an accepted answer to positive data; everything else is schemathesis' default.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429", "503"]
            }
        }
    }
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


SIGNATURE_HEADERS = ("X-LP-Key-Id", "X-LP-Timestamp", "X-LP-Nonce", "X-LP-Signature")
# The test passes these as its explicit credentials; the auth hook below turns
# them into a real signature once the request's bytes are final.
SIGN_ME = "sign-me"
CREDENTIALS = {
    "X-LP-Key-Id": BANK_KEY_ID,
    "X-LP-Timestamp": "0",
    "X-LP-Nonce": "placeholder-nonce-0",
    "X-LP-Signature": SIGN_ME,
}


class HmacAuth(requests.auth.AuthBase):  # type: ignore[misc]
    """Signs a prepared request exactly as sent (path, query, Idempotency-Key, body)."""

    def __init__(self) -> None:
        self.signed = 0
        self.unsigned = 0

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if r.headers.get("X-LP-Signature") != SIGN_ME or not all(
            name in r.headers for name in SIGNATURE_HEADERS
        ):
            # Schemathesis removed or replaced our credentials on purpose (its
            # ignored-auth and missing-header checks): send it as it is.
            self.unsigned += 1
            return r
        self.signed += 1
        url = urllib.parse.urlsplit(r.url)
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        key = r.headers.get("Idempotency-Key", "")
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        r.headers.update(
            sign_request(
                BANK_KEY_ID,
                BANK_SECRET,
                method=r.method or "GET",
                path=url.path,
                query=url.query,
                body=body,
                timestamp=int(time.time()),
                idempotency_key=key,
            )
        )
        return r


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    data = root / "data"
    data.mkdir()
    install_catalog(data / "catalog.db", build_release(time.time_ns() // 1_000_000 - 60_000))
    agents = root / "agents.toml"
    agents.write_text(agents_toml())
    os.chmod(agents, 0o600)
    settings_ = make_settings(data)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(create_app(settings_), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        state["port"] = runner.addresses[0][1]
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "gateway did not start"
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        runner = state["runner"]
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


STATUSES: collections.Counter[int] = collections.Counter()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    s = requests.Session()
    s.auth = HmacAuth()
    s.hooks["response"].append(lambda r, *args, **kwargs: STATUSES.update([r.status_code]))
    yield s
    s.close()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_json_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, base_url: str, session: requests.Session
) -> None:
    case.call_and_validate(base_url=base_url, session=session, headers=CREDENTIALS, timeout=10)


def test_generated_requests_were_signed_and_reached_the_handlers(session: requests.Session) -> None:
    """Runs after the schemathesis test: it must not have stopped at authentication."""
    auth = session.auth
    assert isinstance(auth, HmacAuth)
    if auth.signed == 0:
        pytest.skip("only meaningful after test_json_api_conforms_to_its_openapi_document")
    assert auth.signed >= 50
    assert auth.unsigned >= 1  # schemathesis' own auth probes
    assert STATUSES[201] + STATUSES[200] >= 10
    assert STATUSES[401] >= 1
