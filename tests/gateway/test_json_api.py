"""The JSON API: signed requests, accounts, idempotent payments, registries, errors."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from tests.gateway.conftest import MakeGateway
from tests.gateway.support import (
    ACCOUNT,
    ACCOUNT_INACTIVE,
    ACCOUNT_MISSING,
    BANK_KEY_ID,
    BANK_SECRET,
    DAY_MS,
    LIMITED_KEY_ID,
    LIMITED_SECRET,
    Gateway,
    basic,
)


def _body(**fields: object) -> bytes:
    return json.dumps({"account": ACCOUNT, "amount_minor": 12345, **fields}).encode()


async def _pay(gw: Gateway, key: str, body: bytes | None = None) -> tuple[int, bytes]:
    resp = await gw.signed("POST", "/v1/payments", body=body or _body(), idempotency_key=key)
    return resp.status, await resp.read()


async def test_openapi_document_is_served_without_authentication(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    resp = await gw.client.get("/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/v1/accounts/{account}",
        "/v1/payments",
        "/v1/payments/{payment_id}",
        "/v1/registry/{date}",
    }


async def test_health_answers_ok_without_authentication(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    resp = await gw.client.get("/health")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_account_lookup_returns_services_debts_and_catalog_freshness(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    resp = await gw.signed("GET", f"/v1/accounts/{ACCOUNT}")
    assert resp.status == 200
    data = await resp.json()
    assert data["holder"] == {"ru": "Иванова А. П.", "en": "Ivanova A. P."}
    assert data["debt_total_minor"] == 1_687_852
    assert [s["code"] for s in data["services"]] == ["MGMT", "CW", "HW", "EL", "CAPR"]
    assert data["services"][0]["debt_minor"] == 312_450
    assert data["catalog"]["version"] == 1
    assert data["catalog"]["stale"] is False


async def test_account_lookup_on_a_stale_catalog_is_flagged_stale(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(clock_ms=lambda: time.time_ns() // 1_000_000 + 2 * DAY_MS)
    resp = await gw.signed("GET", f"/v1/accounts/{ACCOUNT}")
    assert resp.status == 200
    assert (await resp.json())["catalog"]["stale"] is True
    status, body = await _pay(gw, "stale-1")
    assert status == 503
    assert json.loads(body)["code"] == "catalog-stale"
    assert await gw.intents() == []


@pytest.mark.parametrize(
    ("account", "status", "code"),
    [
        (ACCOUNT_MISSING, 404, "account-not-found"),
        (ACCOUNT_INACTIVE, 422, "account-inactive"),
        ("1000000009", 422, "account-format"),
    ],
)
async def test_account_lookup_errors_are_problem_details(
    make_gateway: MakeGateway, account: str, status: int, code: str
) -> None:
    gw = await make_gateway()
    resp = await gw.signed("GET", f"/v1/accounts/{account}")
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"] == f"urn:lobbypay:gateway:{code}"


async def test_create_payment_then_same_key_and_body_gets_the_same_answer(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    status, first = await _pay(gw, "4c7e9a1e-5b0f-4f3e-9d52-1a2b3c4d5e6f")
    assert status == 201
    payment = json.loads(first)
    assert payment["amount_minor"] == 12345
    assert payment["status"] == "accepted"
    assert payment["protocol"] == "json"
    assert payment["payment_id"].startswith("gw-bank-k")
    resp = await gw.signed(
        "POST",
        "/v1/payments",
        body=json.dumps({"amount_minor": 12345, "account": ACCOUNT, "currency": "RUB"}).encode(),
        idempotency_key="4c7e9a1e-5b0f-4f3e-9d52-1a2b3c4d5e6f",
    )
    assert resp.status == 201
    assert resp.headers["Idempotent-Replayed"] == "true"
    assert await resp.read() == first
    assert len(await gw.intents()) == 1


async def test_same_key_with_a_different_body_gets_422_and_records_nothing_new(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    assert (await _pay(gw, "key-422"))[0] == 201
    status, body = await _pay(gw, "key-422", _body(amount_minor=12346))
    assert status == 422
    assert json.loads(body)["code"] == "transaction-conflict"
    assert len(await gw.intents()) == 1


async def test_json_key_and_osmp_txn_id_share_one_namespace(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    status, body = await _pay(gw, "424242", _body(amount_minor=10000))
    assert status == 201
    osmp = await gw.osmp(gw.pay_params(txn_id="424242", sum_="100.00"))
    assert osmp.prv_txn == json.loads(body)["prv_txn"]
    assert len(await gw.intents()) == 1


async def test_get_payment_returns_it_only_to_its_agent(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    _, body = await _pay(gw, "get-me-1")
    payment = json.loads(body)
    resp = await gw.signed("GET", f"/v1/payments/{payment['payment_id']}")
    assert resp.status == 200
    assert await resp.json() == payment
    other = await gw.signed(
        "GET",
        f"/v1/payments/{payment['payment_id']}",
        key_id=LIMITED_KEY_ID,
        secret=LIMITED_SECRET,
    )
    assert other.status == 404
    missing = await gw.signed("GET", "/v1/payments/gw-bank-123456")
    assert missing.status == 404


async def test_registry_lists_the_days_payments_as_json_and_csv(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    await _pay(gw, "reg-1", _body(amount_minor=1000))
    await gw.osmp(gw.pay_params(txn_id="777", sum_="20.00"))
    await _pay(gw, "reg-2", _body(amount_minor=3000))
    _, body = await _pay(gw, "reg-1", _body(amount_minor=1000))  # a repeat: not listed twice
    day = json.loads(body)["registry_date"]
    resp = await gw.signed("GET", f"/v1/registry/{day}")
    assert resp.status == 200
    registry = await resp.json()
    assert registry["count"] == 3
    assert registry["total_minor"] == {"RUB": 6000}
    assert [p["txn_id"] for p in registry["payments"]] == ["reg-1", "777", "reg-2"]
    resp = await gw.signed("GET", f"/v1/registry/{day}", query="format=csv")
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["amount"] for r in rows] == ["10.00", "20.00", "30.00"]
    assert rows[1]["txn_date"] == "20250601120000"
    other_day = await gw.signed("GET", "/v1/registry/2001-01-01")
    assert (await other_day.json())["count"] == 0
    limited = await gw.signed(
        "GET", f"/v1/registry/{day}", key_id=LIMITED_KEY_ID, secret=LIMITED_SECRET
    )
    assert (await limited.json())["count"] == 0


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/registry/2025-02-30", ""),
        ("/v1/registry/20250601", ""),
        ("/v1/registry/2025-06-01", "format=xml"),
    ],
)
async def test_registry_bad_date_or_format_is_400(
    make_gateway: MakeGateway, path: str, query: str
) -> None:
    gw = await make_gateway()
    resp = await gw.signed("GET", path, query=query)
    assert resp.status == 400


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"account": "1000000008", "amount_minor": 100.5}', "amount_minor"),
        (b'{"account": "1000000008", "amount_minor": 1e400}', "amount_minor"),
        (b'{"account": "1000000008", "amount_minor": "100"}', "amount_minor"),
        (b'{"account": "1000000008", "amount_minor": true}', "amount_minor"),
        (b'{"account": "1000000008", "amount_minor": 0}', "amount_minor"),
        (b'{"account": "1000000008", "amount_minor": -5}', "amount_minor"),
        (b'{"account": "1000000008", "amount_minor": 100, "tip": 1}', "tip"),
        (b'{"account": "1000000008", "amount_minor": 100, "currency": "USD"}', "currency"),
        (b'{"account": "1000000008"}', "amount_minor"),
        (b'{"account": "1000000008", "amount_minor": 1, "amount_minor": 2}', None),
        (b'{"account": "1000000008", "amount_minor": NaN}', None),
        (b"[1, 2]", None),
        (b"\xff\xfe", None),
        (b"{", None),
    ],
)
async def test_malformed_payment_bodies_are_400_and_record_nothing(
    make_gateway: MakeGateway, body: bytes, param: str | None
) -> None:
    gw = await make_gateway()
    status, answer = await _pay(gw, "bad-body-1", body)
    assert status == 400, answer
    problem = json.loads(answer)
    assert problem["code"] == "bad-request"
    if param is not None:
        assert problem["param"] == param
    assert await gw.intents() == []


@pytest.mark.parametrize("number", ["100.0", "1e2", "1.00E+2"])
async def test_whole_amount_in_any_json_notation_is_exact_integer_kopecks(
    make_gateway: MakeGateway, number: str
) -> None:
    gw = await make_gateway()
    body = b'{"account": "1000000008", "amount_minor": ' + number.encode() + b"}"
    status, answer = await _pay(gw, "notation-1", body)
    assert status == 201, answer
    assert json.loads(answer)["amount_minor"] == 100
    assert (await gw.intents())[0]["amount_minor"] == 100


async def test_payment_without_idempotency_key_is_400(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    resp = await gw.signed("POST", "/v1/payments", body=_body())
    assert resp.status == 400
    assert (await resp.json())["param"] == "Idempotency-Key"


@pytest.mark.parametrize("key", ["=cmd|x", "-1", "has space", "k" * 129, "ключ"])
async def test_malformed_idempotency_key_is_400(make_gateway: MakeGateway, key: str) -> None:
    gw = await make_gateway()
    resp = await gw.signed("POST", "/v1/payments", body=_body(), idempotency_key=key)
    assert resp.status == 400
    assert (await resp.json())["param"] == "Idempotency-Key"
    assert await gw.intents() == []


@pytest.mark.parametrize(
    ("amount", "status", "code"),
    [
        (99, 422, "amount-too-small"),
        (1_500_001, 422, "amount-too-large"),
    ],
)
async def test_amount_limits_are_422(
    make_gateway: MakeGateway, amount: int, status: int, code: str
) -> None:
    gw = await make_gateway()
    st, body = await _pay(gw, f"limit-{amount}", _body(amount_minor=amount))
    assert st == status
    problem = json.loads(body)
    assert problem["code"] == code
    assert problem["limit_minor"] in (100, 1_500_000)


# -- signatures --------------------------------------------------------------------------------


async def test_replayed_nonce_is_refused_with_401(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    ts = gw.clock_ms() // 1000
    first = await gw.signed(
        "GET", f"/v1/accounts/{ACCOUNT}", nonce="nonce-abcdef-123456", timestamp=ts
    )
    assert first.status == 200
    replay = await gw.signed(
        "GET", f"/v1/accounts/{ACCOUNT}", nonce="nonce-abcdef-123456", timestamp=ts
    )
    assert replay.status == 401
    assert "replay" in (await replay.json())["detail"]


async def test_replayed_payment_request_records_nothing_new(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    ts = gw.clock_ms() // 1000
    kwargs = {"body": _body(), "idempotency_key": "replay-1", "nonce": "n" * 20, "timestamp": ts}
    assert (await gw.signed("POST", "/v1/payments", **kwargs)).status == 201  # type: ignore[arg-type]
    assert (await gw.signed("POST", "/v1/payments", **kwargs)).status == 401  # type: ignore[arg-type]
    assert len(await gw.intents()) == 1


@pytest.mark.parametrize("skew_s", [-301, 301, 10**9])
async def test_timestamp_outside_the_replay_window_is_401(
    make_gateway: MakeGateway, skew_s: int
) -> None:
    gw = await make_gateway()
    resp = await gw.signed(
        "GET", f"/v1/accounts/{ACCOUNT}", timestamp=max(0, gw.clock_ms() // 1000 + skew_s)
    )
    assert resp.status == 401


async def test_wrong_secret_unknown_key_or_tampered_body_is_401(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    wrong = await gw.signed("GET", f"/v1/accounts/{ACCOUNT}", secret=b"x" * 32)
    unknown = await gw.signed("GET", f"/v1/accounts/{ACCOUNT}", key_id="nobody-1")
    assert wrong.status == unknown.status == 401
    from gateway.security import sign_request

    headers = sign_request(
        BANK_KEY_ID,
        BANK_SECRET,
        method="POST",
        path="/v1/payments",
        body=_body(amount_minor=100),
        timestamp=gw.clock_ms() // 1000,
        idempotency_key="tamper-1",
    )
    resp = await gw.client.post(
        "/v1/payments",
        data=_body(amount_minor=100_000),
        headers={**headers, "Idempotency-Key": "tamper-1", "Content-Type": "application/json"},
    )
    assert resp.status == 401
    swapped_key = await gw.client.post(
        "/v1/payments",
        data=_body(amount_minor=100),
        headers={**headers, "Idempotency-Key": "tamper-2", "Content-Type": "application/json"},
    )
    assert swapped_key.status == 401
    assert await gw.intents() == []


async def test_unsigned_request_is_401_and_basic_auth_does_not_open_the_json_api(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    resp = await gw.client.get(f"/v1/accounts/{ACCOUNT}", headers=basic())
    assert resp.status == 401
    assert (await resp.json())["code"] == "unauthenticated"


async def test_json_rate_limit_is_429_with_retry_after(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    statuses = []
    for _ in range(4):
        resp = await gw.signed(
            "GET", f"/v1/accounts/{ACCOUNT}", key_id=LIMITED_KEY_ID, secret=LIMITED_SECRET
        )
        statuses.append(resp.status)
    assert statuses == [200, 200, 200, 429]
    assert int(resp.headers["Retry-After"]) >= 1


async def test_unknown_path_and_method_are_problem_details(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    resp = await gw.client.get("/v1/nothing-here")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    resp = await gw.client.delete("/v1/payments")
    assert resp.status == 405
