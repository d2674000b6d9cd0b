"""Durability and overload: journal first, bounded in-flight, faults, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from central_sync.journal import Journal
from gateway.app import create_app
from gateway.osmp import OsmpResult, parse_response
from gateway.server import make_runner
from tests.gateway.conftest import MakeGateway, make_settings
from tests.gateway.support import ACCOUNT, BANK_KEY_ID, BANK_SECRET, CommitGate, basic

R = OsmpResult


async def test_concurrent_duplicate_pays_make_one_journal_entry(make_gateway: MakeGateway) -> None:
    gate = CommitGate()
    gw = await make_gateway(open_journal=gate.opener())
    params = gw.pay_params(txn_id="9100")
    gate.close()
    first = asyncio.create_task(gw.osmp(params))
    await gw.wait_for(lambda: gate.commits_waiting > 0)
    duplicates = await asyncio.gather(*(gw.osmp(params) for _ in range(8)))
    assert {d.result for d in duplicates} == {R.NOT_COMPLETED}
    gate.open()
    answer = await first
    assert answer.result is R.OK
    again = await gw.osmp(params)
    assert again.result is R.OK
    assert again.prv_txn == answer.prv_txn
    assert len(await gw.intents()) == 1


async def test_concurrent_duplicate_json_payments_get_409_then_the_same_answer(
    make_gateway: MakeGateway,
) -> None:
    gate = CommitGate()
    gw = await make_gateway(open_journal=gate.opener())
    body = json.dumps({"account": ACCOUNT, "amount_minor": 5000}).encode()
    gate.close()
    first = asyncio.create_task(
        gw.signed("POST", "/v1/payments", body=body, idempotency_key="dup-key-1")
    )
    await gw.wait_for(lambda: gate.commits_waiting > 0)
    second = await gw.signed("POST", "/v1/payments", body=body, idempotency_key="dup-key-1")
    assert second.status == 409
    assert (await second.json())["code"] == "payment-in-flight"
    gate.open()
    resp = await first
    assert resp.status == 201
    replay = await gw.signed("POST", "/v1/payments", body=body, idempotency_key="dup-key-1")
    assert replay.status == 201
    assert await replay.read() == await resp.read()
    assert len(await gw.intents()) == 1


async def test_overload_answers_retry_later_at_once_and_loses_nothing(
    make_gateway: MakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="lobbypay.gateway.audit")
    gate = CommitGate()
    gw = await make_gateway(open_journal=gate.opener(), requests_in_flight_max=4)
    gate.close()
    held = [asyncio.create_task(gw.osmp(gw.pay_params())) for _ in range(4)]
    await gw.wait_for(lambda: gw.runtime.in_flight == 4)
    started = time.monotonic()
    over = [await gw.osmp_raw(gw.pay_params()) for _ in range(6)]
    body = json.dumps({"account": ACCOUNT, "amount_minor": 5000}).encode()
    over_json = await gw.signed("POST", "/v1/payments", body=body, idempotency_key="over-1")
    assert time.monotonic() - started < 2.0  # refused at once, not queued
    for resp in over:
        assert resp.status == 200
        assert resp.headers["Retry-After"] == "2"
        assert parse_response(await resp.read()).result is R.TEMPORARY_ERROR
    assert over_json.status == 503
    assert over_json.headers["Retry-After"] == "2"
    assert (await over_json.json())["code"] == "overloaded"
    # Refusals are summed up, not logged one by one.
    summaries = [r.getMessage() for r in caplog.records if "gateway_overload" in r.getMessage()]
    assert summaries == ["gateway_overload refused=1 in_flight_max=4"]
    assert not any("outcome=overloaded" in r.getMessage() for r in caplog.records)
    gate.open()
    answers = await asyncio.gather(*held)
    assert [a.result for a in answers] == [R.OK] * 4
    assert len(await gw.intents()) == 4  # exactly the pays answered 0


async def test_journal_write_fault_gives_90_then_the_repeat_is_recorded_once(
    make_gateway: MakeGateway,
) -> None:
    gate = CommitGate()
    gw = await make_gateway(open_journal=gate.opener())
    params = gw.pay_params(txn_id="9300")
    gate.fail_next_commits = 1
    assert (await gw.osmp(params)).result is R.NOT_COMPLETED
    # The journal refuses writes until it has recovered (in the background).
    for _ in range(200):
        r = await gw.osmp(params)
        if r.result is R.OK:
            break
        assert r.result in (R.FORBIDDEN_TECHNICAL, R.NOT_COMPLETED)
        await asyncio.sleep(0.02)
    assert r.result is R.OK
    assert len(await gw.intents()) == 1


async def test_client_hanging_up_mid_pay_still_records_and_indexes_the_payment(
    make_gateway: MakeGateway,
) -> None:
    gate = CommitGate()
    gw = await make_gateway(open_journal=gate.opener())
    params = gw.pay_params(txn_id="9400")
    gate.close()
    task = asyncio.create_task(gw.osmp(params))
    await gw.wait_for(lambda: gate.commits_waiting > 0)
    task.cancel()
    await asyncio.sleep(0.05)
    gate.open()
    await gw.wait_for(lambda: gw.service.pays_in_flight == 0)
    assert gw.service.index.get("gw-bank-9400") is not None
    again = await gw.osmp(params)
    assert again.result is R.OK
    assert len(await gw.intents()) == 1


async def test_request_timeout_during_a_pay_answers_90_and_the_repeat_gets_0(
    make_gateway: MakeGateway,
) -> None:
    gate = CommitGate()
    gw = await make_gateway(open_journal=gate.opener(), request_timeout_s=0.3)
    params = gw.pay_params(txn_id="9500")
    gate.close()
    r = await gw.osmp(params)
    assert r.result is R.NOT_COMPLETED
    gate.open()
    await gw.wait_for(lambda: gw.service.pays_in_flight == 0)
    again = await gw.osmp(params)
    assert again.result is R.OK
    assert len(await gw.intents()) == 1


async def test_graceful_shutdown_finishes_in_flight_payments(data_dir: Path) -> None:
    gate = CommitGate()
    settings = make_settings(data_dir, shutdown_timeout_s=10.0)
    app = create_app(settings, open_journal=gate.opener())
    runner = make_runner(app, settings.gateway)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"

    def pay_url(txn: int) -> str:
        query = urllib.parse.urlencode(
            {
                "command": "pay",
                "txn_id": str(txn),
                "txn_date": "20250601120000",
                "account": ACCOUNT,
                "sum": "10.00",
            }
        )
        return f"{base}/osmp?{query}"

    async with aiohttp.ClientSession() as session:

        async def pay(txn: int) -> tuple[int, bytes]:
            async with session.get(pay_url(txn), headers=basic()) as resp:
                return resp.status, await resp.read()

        gate.close()
        in_flight = [asyncio.create_task(pay(t)) for t in range(1, 6)]
        await asyncio.sleep(0.3)
        assert gate.commits_waiting > 0
        stopping = asyncio.create_task(runner.cleanup())
        await asyncio.sleep(0.3)
        # The listening socket is closed: new clients cannot connect.
        try:
            async with session.get(f"{base}/health") as resp:
                refused = resp.status == 503
        except aiohttp.ClientConnectionError:
            refused = True
        assert refused
        gate.open()
        answers = await asyncio.gather(*in_flight)
        await stopping
    results = [parse_response(body).result for status, body in answers]
    assert [status for status, _ in answers] == [200] * 5
    assert results == [R.OK] * 5
    journal = await Journal.open(settings.journal_path)
    try:
        head, _ = await journal.head()
        kinds = [e.kind for e in await journal.read(1, head)]
    finally:
        await journal.close()
    assert kinds.count("payment-intent") == 5
    assert kinds.count("payment-result") == 5


async def test_json_payment_answers_after_the_journal_commit_not_before(
    make_gateway: MakeGateway,
) -> None:
    gate = CommitGate()
    gw = await make_gateway(open_journal=gate.opener())
    body = json.dumps({"account": ACCOUNT, "amount_minor": 700}).encode()
    gate.close()
    task = asyncio.create_task(
        gw.signed(
            "POST",
            "/v1/payments",
            body=body,
            idempotency_key="durable-1",
            key_id=BANK_KEY_ID,
            secret=BANK_SECRET,
        )
    )
    await gw.wait_for(lambda: gate.commits_waiting > 0)
    await asyncio.sleep(0.2)
    assert not task.done()
    gate.open()
    resp = await task
    assert resp.status == 201


async def test_client_that_never_finishes_its_headers_is_disconnected(data_dir: Path) -> None:
    settings = make_settings(data_dir, keepalive_timeout_s=0.5)
    runner = make_runner(create_app(settings), settings.gateway)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /osmp?command=check HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        started = time.monotonic()
        data = await asyncio.wait_for(reader.read(), timeout=10)  # EOF when the server closes
        assert data == b""
        assert time.monotonic() - started < 5
        writer.close()
    finally:
        await runner.cleanup()


async def test_journal_written_by_another_process_refuses_pays_with_8_and_stays_stopped(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    assert (await gw.osmp(gw.pay_params())).result is R.OK
    other = await Journal.open(gw.settings.journal_path)
    try:
        await other.append("device-event", {"event": "someone-else"})
    finally:
        await other.close()
    for _ in range(3):
        assert (await gw.osmp(gw.pay_params())).result is R.FORBIDDEN_TECHNICAL
        await asyncio.sleep(0.05)
    assert gw.service._recovering is None  # no automatic recovery from a second writer
