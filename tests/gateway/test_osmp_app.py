"""OSMP check/pay through the app: every result code in its situation, bad input, auth."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.osmp import OsmpResult
from tests.gateway.conftest import MakeGateway
from tests.gateway.support import (
    ACCOUNT,
    ACCOUNT_INACTIVE,
    ACCOUNT_MISSING,
    ACCOUNT_NO_OVERPAY,
    DAY_MS,
    OTHER_PASSWORD,
    Gateway,
    basic,
)

R = OsmpResult


async def _nothing_recorded(gw: Gateway) -> None:
    assert await gw.intents() == []


# -- result 0 -----------------------------------------------------------------------------


async def test_check_known_account_returns_ok_with_holder_balance_and_debts(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    r = await gw.osmp({"command": "check", "txn_id": "77", "account": ACCOUNT, "sum": "10.45"})
    assert r.result is R.OK
    assert r.osmp_txn_id == "77"
    assert r.sum_minor == 1045
    fields = dict(r.fields)
    assert fields["holder"] == "Ivanova A. P."  # agent "bank" speaks English
    assert fields["balance"] == "-16878.52"
    assert fields["debt:MGMT"] == "3124.50"
    assert "catalog_stale" not in fields
    await _nothing_recorded(gw)


async def test_pay_returns_ok_with_prv_txn_after_the_journal_entry_is_durable(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    r = await gw.osmp(gw.pay_params(txn_id="5001", sum_="123.40"))
    assert r.result is R.OK
    assert r.osmp_txn_id == "5001"
    assert r.sum_minor == 12340
    assert r.prv_txn is not None
    entries = await gw.journal.find_payment("gw-bank-5001")
    intent = entries["payment-intent"]
    assert intent.seq == r.prv_txn
    assert intent.body["amount_minor"] == 12340
    assert intent.body["channel"] == "gateway"
    assert intent.body["agent"] == "bank"
    assert intent.body["txn_id"] == "5001"
    assert intent.body["txn_date"] == "2025-06-01T12:00:00"
    assert entries["payment-result"].body["outcome"] == "approved"


async def test_pay_by_post_form_body_is_accepted(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    r = await gw.osmp(gw.pay_params(txn_id="5002"), method="POST")
    assert r.result is R.OK
    assert r.prv_txn is not None


async def test_repeated_pay_returns_the_same_prv_txn_and_records_once(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    params = gw.pay_params(txn_id="6001")
    first = await gw.osmp(params)
    again = await gw.osmp(params, method="POST")
    padded = await gw.osmp({**params, "txn_id": "0006001"})
    assert first.result is again.result is padded.result is R.OK
    assert first.prv_txn == again.prv_txn == padded.prv_txn
    assert len(await gw.intents()) == 1


# -- result 1 -----------------------------------------------------------------------------


async def test_stale_catalog_check_answers_with_flag_but_pay_answers_retry_later(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(clock_ms=lambda: time.time_ns() // 1_000_000 + 2 * DAY_MS)
    check = await gw.osmp({"command": "check", "account": ACCOUNT, "sum": "10.00"})
    assert check.result is R.OK
    assert dict(check.fields)["catalog_stale"] == "1"
    resp = await gw.osmp_raw(gw.pay_params())
    assert resp.headers["Retry-After"] == "2"
    from gateway.osmp import parse_response

    assert parse_response(await resp.read()).result is R.TEMPORARY_ERROR
    await _nothing_recorded(gw)


async def test_pay_is_accepted_again_for_a_repeat_even_when_the_catalog_went_stale(
    make_gateway: MakeGateway,
) -> None:
    offset = [0]
    gw = await make_gateway(clock_ms=lambda: time.time_ns() // 1_000_000 + offset[0])
    params = gw.pay_params(txn_id="6100")
    first = await gw.osmp(params)
    offset[0] = 2 * DAY_MS
    await asyncio.sleep(1.1)  # the catalog state is cached for a second
    again = await gw.osmp(params)
    assert again.result is R.OK
    assert again.prv_txn == first.prv_txn
    assert (await gw.osmp(gw.pay_params())).result is R.TEMPORARY_ERROR


async def test_rate_limited_agent_gets_result_1_with_retry_after(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    headers = basic("limited", OTHER_PASSWORD)
    params = {"command": "check", "account": ACCOUNT, "sum": "0"}
    results = [(await gw.osmp(params, headers=headers)).result for _ in range(3)]
    assert results == [R.OK, R.OK, R.OK]
    resp = await gw.osmp_raw(params, headers=headers)
    from gateway.osmp import parse_response

    assert parse_response(await resp.read()).result is R.TEMPORARY_ERROR
    assert int(resp.headers["Retry-After"]) >= 1


# -- results 4, 5, 7, 8, 79, 241, 242, 243 --------------------------------------------------


@pytest.mark.parametrize("account", ["12345", "1000000009", "10000000O8", "4111111111111111"])
async def test_malformed_account_returns_4(make_gateway: MakeGateway, account: str) -> None:
    gw = await make_gateway()
    assert (
        await gw.osmp({"command": "check", "account": account, "sum": "1.00"})
    ).result is R.BAD_ACCOUNT_FORMAT
    assert (await gw.osmp(gw.pay_params(account=account))).result is R.BAD_ACCOUNT_FORMAT
    await _nothing_recorded(gw)


async def test_unknown_account_returns_5(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    r = await gw.osmp({"command": "check", "account": ACCOUNT_MISSING, "sum": "1.00"})
    assert r.result is R.ACCOUNT_NOT_FOUND
    assert (await gw.osmp(gw.pay_params(account=ACCOUNT_MISSING))).result is R.ACCOUNT_NOT_FOUND
    await _nothing_recorded(gw)


async def test_agent_without_pay_permission_gets_7(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    headers = basic("checker", OTHER_PASSWORD)
    check = await gw.osmp({"command": "check", "account": ACCOUNT, "sum": "1.00"}, headers=headers)
    assert check.result is R.OK
    r = await gw.osmp(gw.pay_params(), headers=headers)
    assert r.result is R.FORBIDDEN_BY_PROVIDER
    await _nothing_recorded(gw)


async def test_overpayment_beyond_the_providers_rule_gets_7(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    r = await gw.osmp(gw.pay_params(account=ACCOUNT_NO_OVERPAY, sum_="1.00"))
    assert r.result is R.FORBIDDEN_BY_PROVIDER
    await _nothing_recorded(gw)


async def test_offline_limit_reached_gets_8(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(
        journal={"offline_payment_amount_max_minor": 5_000, "offline_amount_total_max_minor": 8_000}
    )
    assert (await gw.osmp(gw.pay_params(sum_="60.00"))).result is R.FORBIDDEN_TECHNICAL
    assert (await gw.osmp(gw.pay_params(sum_="50.00"))).result is R.OK
    assert (await gw.osmp(gw.pay_params(sum_="40.00"))).result is R.FORBIDDEN_TECHNICAL
    assert len(await gw.intents()) == 1


async def test_account_without_services_gets_79(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    r = await gw.osmp({"command": "check", "account": ACCOUNT_INACTIVE, "sum": "1.00"})
    assert r.result is R.ACCOUNT_INACTIVE
    assert (await gw.osmp(gw.pay_params(account=ACCOUNT_INACTIVE))).result is R.ACCOUNT_INACTIVE
    await _nothing_recorded(gw)


async def test_sum_below_the_agents_minimum_gets_241(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    assert (
        await gw.osmp({"command": "check", "account": ACCOUNT, "sum": "0.99"})
    ).result is R.SUM_TOO_SMALL
    assert (await gw.osmp(gw.pay_params(sum_="0.50"))).result is R.SUM_TOO_SMALL
    assert (await gw.osmp(gw.pay_params(sum_="0"))).result is R.SUM_TOO_SMALL
    await _nothing_recorded(gw)


async def test_sum_above_the_agents_maximum_gets_242(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    assert (await gw.osmp(gw.pay_params(sum_="15000.01"))).result is R.SUM_TOO_LARGE
    assert (await gw.osmp(gw.pay_params(sum_="15000.00"))).result is R.OK
    assert len(await gw.intents()) == 1


async def test_missing_catalog_gets_243(make_gateway: MakeGateway, data_dir: Path) -> None:
    for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm"):
        (data_dir / name).unlink(missing_ok=True)
    gw = await make_gateway()
    r = await gw.osmp({"command": "check", "account": ACCOUNT, "sum": "1.00"})
    assert r.result is R.CANNOT_CHECK_ACCOUNT
    assert (await gw.osmp(gw.pay_params())).result is R.CANNOT_CHECK_ACCOUNT
    await _nothing_recorded(gw)


# -- result 300 and the bad-input list ------------------------------------------------------


async def test_repeat_with_another_sum_or_account_is_refused_with_300_and_alarmed(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    params = gw.pay_params(txn_id="7001")
    assert (await gw.osmp(params)).result is R.OK
    other_sum = await gw.osmp({**params, "sum": "100.01"})
    other_account = await gw.osmp({**params, "account": "1000000016"})
    assert other_sum.result is other_account.result is R.OTHER_ERROR
    assert "another account or amount" in other_sum.comment
    intents = await gw.intents()
    assert len(intents) == 1
    assert intents[0]["amount_minor"] == 10000
    head, _ = await gw.journal.head()
    events = [e.body for e in await gw.journal.read(1, head) if e.kind == "device-event"]
    assert [e["event"] for e in events] == ["gateway-txn-conflict"] * 2
    assert gw.service.conflicts == 2


BAD_PAY_PARAMS = [
    ("missing txn_id", {"txn_id": None}),
    ("missing txn_date", {"txn_date": None}),
    ("missing account", {"account": None}),
    ("missing sum", {"sum": None}),
    ("missing command", {"command": None}),
    ("empty sum", {"sum": ""}),
    ("non-digit txn_id", {"txn_id": "12a4"}),
    ("negative txn_id", {"txn_id": "-5"}),
    ("over-long txn_id", {"txn_id": "1" * 21}),
    ("zero txn_id", {"txn_id": "000"}),
    ("impossible date", {"txn_date": "20250230120000"}),
    ("short date", {"txn_date": "2025060112000"}),
    ("bad hour", {"txn_date": "20250601250000"}),
    ("iso date", {"txn_date": "2025-06-01T12:00"}),
    ("three decimals", {"sum": "10.455"}),
    ("negative sum", {"sum": "-10.00"}),
    ("plus sign", {"sum": "+10.00"}),
    ("exponent", {"sum": "1e3"}),
    ("comma", {"sum": "10,00"}),
    ("space", {"sum": " 10.00"}),
    ("leading zero", {"sum": "010.00"}),
    ("bare point", {"sum": "10."}),
    ("no integer part", {"sum": ".50"}),
    ("nan", {"sum": "NaN"}),
    ("arabic digits", {"sum": "١٠"}),
    ("oversized value", {"account": "1" * 65}),
    ("unknown command", {"command": "refund"}),
]


@pytest.mark.parametrize(("label", "change"), BAD_PAY_PARAMS, ids=[b[0] for b in BAD_PAY_PARAMS])
async def test_bad_pay_parameters_get_300_and_nothing_is_recorded(
    make_gateway: MakeGateway, label: str, change: dict[str, str | None]
) -> None:
    gw = await make_gateway()
    params = {k: v for k, v in {**gw.pay_params(), **change}.items() if v is not None}
    r = await gw.osmp(params)
    assert r.result is R.OTHER_ERROR, label
    await _nothing_recorded(gw)


@pytest.mark.parametrize(
    "query",
    [
        "command=pay&txn_id=1&txn_id=2&txn_date=20250601120000&account=1000000008&sum=1.00",
        "command=pay&txn_id=1&txn_date=20250601120000&account=1000000008&sum=1.00&sum=2.00",
        "command=pay&txn_id=1&txn_date=20250601120000&account=1000000008&sum=1.00&&x=1",
        "command=pay&txn_id=1&txn_date=20250601120000&account=1000000008&sum",
        "command=pay&txn_id=1&txn_date=20250601120000&account=1000000008&sum=%FF",
        "&".join(f"p{i}=1" for i in range(20)) + "&command=check&account=1000000008&sum=1",
    ],
    ids=["dup-txn", "dup-sum", "empty-pair", "no-equals", "bad-utf8", "too-many"],
)
async def test_duplicated_or_malformed_parameters_get_300(
    make_gateway: MakeGateway, query: str
) -> None:
    gw = await make_gateway()
    assert (await gw.osmp(query)).result is R.OTHER_ERROR
    await _nothing_recorded(gw)


async def test_parameter_duplicated_between_query_and_post_body_gets_300(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    resp = await gw.osmp_raw(
        "sum=1.00",
        method="POST",
        body=b"command=pay&txn_id=9&txn_date=20250601120000&account=1000000008&sum=2.00",
        headers={**basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    from gateway.osmp import parse_response

    assert parse_response(await resp.read()).result is R.OTHER_ERROR
    await _nothing_recorded(gw)


async def test_unknown_parameters_are_ignored(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    r = await gw.osmp({**gw.pay_params(), "prv_id": "42", "trm_id": "7"})
    assert r.result is R.OK


async def test_huge_body_gets_413_and_nothing_is_recorded(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    body = b"command=check&account=1000000008&sum=1.00&pad=" + b"x" * 100_000
    resp = await gw.osmp_raw(
        "",
        method="POST",
        body=body,
        headers={**basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 413
    await _nothing_recorded(gw)


async def test_slow_client_body_gets_408_and_nothing_is_recorded(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(body_read_timeout_s=0.3)
    host, port = gw.client.server.host, gw.client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    body = b"command=pay&txn_id=1&txn_date=20250601120000&account=1000000008&sum=1.00"
    head = (
        f"POST /osmp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Authorization: {basic()['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body[:10])
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    assert b" 408 " in status_line
    writer.close()
    await _nothing_recorded(gw)


async def test_post_with_a_json_body_gets_300(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    resp = await gw.osmp_raw(
        "",
        method="POST",
        body=b'{"command": "check"}',
        headers={**basic(), "Content-Type": "application/json"},
    )
    from gateway.osmp import parse_response

    assert parse_response(await resp.read()).result is R.OTHER_ERROR


# -- authentication and access ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("bank", "wrong"),
        basic("nobody", "whatever"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic " + "QQ==" * 200},
    ],
    ids=["none", "wrong-password", "unknown-agent", "malformed", "bearer", "oversized"],
)
async def test_bad_credentials_get_401_with_a_basic_challenge(
    make_gateway: MakeGateway, headers: dict[str, str]
) -> None:
    gw = await make_gateway()
    resp = await gw.osmp_raw(gw.pay_params(), headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    from gateway.osmp import parse_response

    assert parse_response(await resp.read()).result is R.OTHER_ERROR
    await _nothing_recorded(gw)


@pytest.mark.parametrize("agent", ["off", "remote"], ids=["disabled", "ip-not-allowed"])
async def test_disabled_agent_or_source_outside_allow_list_gets_403(
    make_gateway: MakeGateway, agent: str
) -> None:
    gw = await make_gateway()
    r = await gw.osmp(gw.pay_params(), headers=basic(agent, OTHER_PASSWORD), status=403)
    assert r.result is R.OTHER_ERROR
    await _nothing_recorded(gw)


async def test_audit_log_has_one_line_per_request_and_no_secret(
    make_gateway: MakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await make_gateway()
    caplog.set_level("INFO", logger="lobbypay.gateway.audit")
    await gw.osmp(gw.pay_params(txn_id="8001"))
    await gw.osmp(gw.pay_params(), headers=basic("bank", "wrong-password-xyz"), status=401)
    lines = [r.getMessage() for r in caplog.records if r.name == "lobbypay.gateway.audit"]
    assert len(lines) == 2
    assert "agent=bank action=pay txn_id=8001" in lines[0]
    assert "outcome=accepted status=200" in lines[0]
    assert "outcome=unauthenticated status=401" in lines[1]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "wrong-password-xyz" not in text
    assert "bank-secret-password" not in text


async def test_pay_with_a_txn_date_whose_digits_pass_luhn_is_accepted(
    make_gateway: MakeGateway,
) -> None:
    # 20250601120006 is 14 digits passing the Luhn check: it must not be taken
    # for a card number anywhere on its way into the journal.
    gw = await make_gateway()
    r = await gw.osmp({**gw.pay_params(txn_id="8101"), "txn_date": "20250601120006"})
    assert r.result is R.OK
    registry_day = (
        await gw.service.get_payment(gw.runtime.agents.agents["bank"], "gw-bank-8101")
    ).day
    records = await gw.service.registry(gw.runtime.agents.agents["bank"], registry_day)
    assert [rec.txn_date for rec in records] == ["20250601120006"]
