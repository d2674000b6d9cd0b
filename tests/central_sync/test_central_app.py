"""The central service over HTTP (aiohttp_client), against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from central_sync import protocol
from central_sync.central.app import create_app, gate_key, storage_key
from central_sync.central.postgres import PostgresStorage
from central_sync.central.settings import CentralServiceSettings
from central_sync.central.synthetic import synthetic_entries
from central_sync.protocol import RefusalKind
from firmware_config.identity import generate_identity
from tests.central_sync.central_support import Key, batch, pg_url_with_schema
from tests.central_sync.conftest import require_pg

TOKEN = "operator-secret-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}

Client = TestClient[web.Request, web.Application]


@pytest.fixture(params=["sqlite", "postgres"])
async def central(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> AsyncIterator[tuple[Client, bytes]]:
    """A running central service and its public key."""
    url = ""
    if request.param == "postgres":
        await require_pg()
        url = pg_url_with_schema()
    identity = generate_identity(tmp_path / "central.key")
    settings = CentralServiceSettings(
        data_dir=tmp_path,
        database_url=url,
        operator_token=TOKEN,
        batch_wire_bytes_max=200_000,
        pg_pool_size_max=3,
    )
    client = await aiohttp_client(create_app(settings))
    try:
        yield client, identity.public_key_bytes
    finally:
        storage = client.app[storage_key]
        if isinstance(storage, PostgresStorage):
            await storage.drop_schema()


async def enroll_over_http(
    client: Client, central_key: bytes, key: Key, location: str = "msk-1"
) -> None:
    resp = await client.post(
        "/v1/admin/registration-codes", json={"location": location}, headers=ADMIN
    )
    assert resp.status == 201, await resp.text()
    code = (await resp.json())["code"]
    request = protocol.EnrollRequest(
        terminal_id=key.terminal_id,
        public_key=key.public,
        registration_code=code,
        location=location,
        label="Подъезд 2",
        created_ms=int(time.time() * 1000),
    )
    resp = await client.post("/v1/enroll", data=protocol.build_enroll_request(request, key))
    assert resp.status == 200, await resp.text()
    answer = protocol.verify_enrollment(await resp.read(), central_key, key.terminal_id)
    assert answer.location == location


async def upload(client: Client, data: bytes, key: Key | None = None) -> Any:
    headers = {"X-Lobbypay-Terminal": key.terminal_id} if key else {}
    return await client.post("/v1/batches", data=data, headers=headers)


async def test_health_answers_ok(central: tuple[Client, bytes]) -> None:
    client, _ = central
    resp = await client.get("/v1/health")
    assert resp.status == 200
    assert (await resp.json())["ok"] is True


async def test_enrolled_terminal_uploads_and_gets_a_verified_ack(
    central: tuple[Client, bytes],
) -> None:
    client, central_key = central
    key = Key()
    await enroll_over_http(client, central_key, key)
    entries = synthetic_entries(1, 10)
    data = batch(entries, key)
    for _ in range(2):  # the second time is a re-send: same ack
        resp = await upload(client, data, key)
        assert resp.status == 200
        answer = protocol.parse_answer(
            await resp.read(), central_public_key=central_key, terminal_id=key.terminal_id
        )
        assert isinstance(answer, protocol.Ack)
        assert (answer.acked_seq, answer.head_hash) == (20, entries[-1].hash)
    assert (await client.app[storage_key].counts()).payments == 10


async def test_batch_arriving_in_many_network_reads_is_read_whole(
    central: tuple[Client, bytes],
) -> None:
    client, central_key = central
    key = Key()
    await enroll_over_http(client, central_key, key)
    entries = synthetic_entries(21, 1500)
    data = batch(entries, key)
    assert 100_000 < len(data) < 200_000  # several reads, under batch_wire_bytes_max

    async def in_pieces() -> AsyncIterator[bytes]:
        # A pause after each piece: the server sees the body in several reads.
        for start in range(0, len(data), 16_384):
            yield data[start : start + 16_384]
            await asyncio.sleep(0.005)

    resp = await client.post(
        "/v1/batches", data=in_pieces(), headers={"X-Lobbypay-Terminal": key.terminal_id}
    )
    assert resp.status == 200, await resp.text()
    answer = protocol.parse_answer(
        await resp.read(), central_public_key=central_key, terminal_id=key.terminal_id
    )
    assert isinstance(answer, protocol.Ack)
    assert answer.acked_seq == 3000


async def test_gap_answers_409_with_the_expected_seq(central: tuple[Client, bytes]) -> None:
    client, central_key = central
    key = Key()
    await enroll_over_http(client, central_key, key)
    data = batch(synthetic_entries(2, 5)[4:], key)
    resp = await upload(client, data, key)
    assert resp.status == 409
    answer = protocol.parse_answer(
        await resp.read(), central_public_key=central_key, terminal_id=key.terminal_id, request=data
    )
    assert isinstance(answer, protocol.Refusal)
    assert (answer.kind, answer.expected_seq, answer.retryable) == (RefusalKind.GAP, 1, True)
    assert json.loads(await resp.read())["body"]["retryable"] is True


async def test_unknown_terminal_answers_404(central: tuple[Client, bytes]) -> None:
    client, central_key = central
    key = Key()
    resp = await upload(client, batch(synthetic_entries(3, 1), key))
    assert resp.status == 404
    answer = protocol.parse_answer(
        await resp.read(), central_public_key=central_key, terminal_id=key.terminal_id
    )
    assert isinstance(answer, protocol.Refusal)
    assert answer.kind is RefusalKind.UNKNOWN_TERMINAL


async def test_batch_sent_as_another_terminal_answers_400(central: tuple[Client, bytes]) -> None:
    client, central_key = central
    a, b = Key(), Key()
    await enroll_over_http(client, central_key, a)
    await enroll_over_http(client, central_key, b)
    resp = await upload(client, batch(synthetic_entries(4, 1), a), b)
    assert resp.status == 400
    assert (await client.app[storage_key].counts()).entries == 0


async def test_oversized_upload_answers_413_and_garbage_400(
    central: tuple[Client, bytes],
) -> None:
    client, _ = central
    resp = await upload(client, b"\x78" * 200_001)
    assert resp.status == 413
    resp = await upload(client, b"not a batch")
    assert resp.status == 400
    body = json.loads(await resp.read())["body"]
    assert (body["error"], body["retryable"]) == ("rejected", False)


async def test_revoked_terminal_answers_403_and_is_on_the_revocation_list(
    central: tuple[Client, bytes],
) -> None:
    client, central_key = central
    key = Key()
    await enroll_over_http(client, central_key, key)
    resp = await client.post(
        f"/v1/admin/terminals/{key.terminal_id}/revoke", json={"reason": "stolen"}, headers=ADMIN
    )
    assert resp.status == 200
    assert (await resp.json())["state"] == "revoked"
    resp = await upload(client, batch(synthetic_entries(5, 1), key), key)
    assert resp.status == 403
    answer = protocol.parse_answer(
        await resp.read(), central_public_key=central_key, terminal_id=key.terminal_id
    )
    assert isinstance(answer, protocol.Refusal)
    assert (answer.kind, answer.retryable) == (RefusalKind.REVOKED, False)
    resp = await client.get("/v1/revocations")
    revoked = protocol.verify_revocation_list(
        await resp.read(), central_public_key=central_key, now_ms=int(time.time() * 1000)
    )
    assert revoked.revoked == (key.terminal_id,)
    resp = await client.post(
        f"/v1/admin/terminals/{key.terminal_id}/revoke", json={}, headers=ADMIN
    )
    assert resp.status == 409


async def test_registration_code_cannot_be_used_twice(central: tuple[Client, bytes]) -> None:
    client, _ = central
    resp = await client.post("/v1/admin/registration-codes", json={"location": "x"}, headers=ADMIN)
    code = (await resp.json())["code"]
    for attempt, key in enumerate((Key(), Key())):
        request = protocol.EnrollRequest(
            terminal_id=key.terminal_id,
            public_key=key.public,
            registration_code=code,
            location="x",
            label="k",
            created_ms=0,
        )
        resp = await client.post("/v1/enroll", data=protocol.build_enroll_request(request, key))
        assert resp.status == (200 if attempt == 0 else 403)
    assert (await resp.json())["error"] == "registration-code"


async def test_enroll_request_signed_by_another_key_answers_400(
    central: tuple[Client, bytes],
) -> None:
    client, _ = central
    key = Key()
    request = protocol.EnrollRequest(
        terminal_id=key.terminal_id,
        public_key=key.public,
        registration_code="ABCD-EFGH",
        location="x",
        label="k",
        created_ms=0,
    )
    resp = await client.post("/v1/enroll", data=protocol.build_enroll_request(request, Key()))
    assert resp.status == 400
    assert "bad-signature" in (await resp.json())["message"]


async def test_heartbeat_updates_the_terminal_record(central: tuple[Client, bytes]) -> None:
    client, central_key = central
    key = Key()
    await enroll_over_http(client, central_key, key)
    beat = protocol.Heartbeat(
        terminal_id=key.terminal_id,
        ts_ms=1,
        queue_depth=42,
        oldest_pending_age_s=17,
        software_version="0.1.0",
        catalog_version=3,
        config_version=None,
        health={"printer": "paper-low"},
    )
    resp = await client.post("/v1/heartbeat", data=protocol.build_heartbeat(beat, key))
    assert resp.status == 200, await resp.text()
    resp = await client.get("/v1/admin/terminals", headers=ADMIN)
    (terminal,) = (await resp.json())["terminals"]
    assert (terminal["queue_depth"], terminal["software_version"], terminal["health"]) == (
        42,
        "0.1.0",
        {"printer": "paper-low"},
    )
    resp = await client.post("/v1/heartbeat", data=protocol.build_heartbeat(beat, Key()))
    assert resp.status == 400


async def test_admin_endpoints_need_the_operator_token(central: tuple[Client, bytes]) -> None:
    client, _ = central
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        resp = await client.get("/v1/admin/terminals", headers=headers)
        assert resp.status == 401
        assert TOKEN not in await resp.text()


async def test_config_bundle_is_published_and_served_per_location(
    central: tuple[Client, bytes],
) -> None:
    client, central_key = central
    key = Key()
    await enroll_over_http(client, central_key, key, location="spb-7")
    resp = await client.get("/v1/config")
    assert resp.status == 404
    bundle = {
        "limits": {"payment_amount_max_minor": 1_500_000},
        "surcharge_rules": [],
        "timeouts": {"payment_s": 90},
        "offline_policy": {"offline_amount_total_max_minor": 500_000},
    }
    for scope in ("*", "location:spb-7", "location:spb-7"):
        resp = await client.post("/v1/admin/config", json={**bundle, "scope": scope}, headers=ADMIN)
        assert resp.status == 201
    resp = await client.get("/v1/config", params={"terminal": key.terminal_id})
    got = protocol.verify_config_bundle(
        await resp.read(), central_public_key=central_key, now_ms=int(time.time() * 1000)
    )
    assert (got.scope, got.version) == ("location:spb-7", 2)
    resp = await client.post("/v1/admin/config", json={**bundle, "valid_s": 1.5}, headers=ADMIN)
    assert resp.status == 400


async def test_catalog_release_is_served_by_version(central: tuple[Client, bytes]) -> None:
    client, _ = central
    storage = client.app[storage_key]
    await storage.put_catalog_release(
        version=1, kind="snapshot", base_version=None, data=b"S1", now_ms=1
    )
    await storage.put_catalog_release(
        version=2, kind="snapshot", base_version=None, data=b"S2", now_ms=2
    )
    await storage.put_catalog_release(
        version=2, kind="delta", base_version=1, data=b"D12", now_ms=2
    )
    expectations = {"0": (200, b"S2"), "1": (200, b"D12"), "2": (204, b"")}
    for since, (status, body) in expectations.items():
        resp = await client.get("/v1/catalog", params={"since": since})
        assert resp.status == status
        assert await resp.read() == body
    resp = await client.get("/v1/catalog", params={"since": "x"})
    assert resp.status == 400


async def test_too_many_uploads_in_flight_answer_503_retry_later(
    central: tuple[Client, bytes],
) -> None:
    client, _ = central
    gate = client.app[gate_key]
    gate.in_flight = gate.limit  # as if that many uploads were being applied
    try:
        resp = await upload(client, b"anything")
    finally:
        gate.in_flight = 0
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    body = json.loads(await resp.read())["body"]
    assert (body["error"], body["retryable"]) == ("retry-later", True)
