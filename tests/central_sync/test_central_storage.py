"""The storage interface itself, the same on SQLite and PostgreSQL.

These pin what every backend must return (records, exports, alarms, audit,
publications, catalog releases) and how results and reversals that cannot
update a payment are classified, so the shared code behind both backends has
one behaviour to keep.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from central_sync.central.errors import BadRequestError, ConflictError, NotFoundError
from central_sync.central.ingest import Ingestor
from central_sync.central.sql import SqlConnection
from central_sync.central.sqlite import SqliteStorage
from central_sync.central.storage import Storage, TerminalState, open_storage
from central_sync.central.synthetic import chain
from tests.central_sync.central_support import NOW_MS, Key, batch, code_hash, enroll

CENTRAL = Key()


def ingestor(storage: Storage) -> Ingestor:
    return Ingestor(storage, signer=CENTRAL, clock_ms=lambda: NOW_MS)


def intent(payment_id: str, amount_minor: int = 5_000, **extra: Any) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {
        "payment_id": payment_id,
        "amount_minor": amount_minor,
        "currency": "RUB",
        "account": "1000200030",
        "channel": "kiosk",
        "services": [{"code": "HW", "provider": "Vodokanal", "amount_minor": amount_minor}],
        **extra,
    }
    return ("payment-intent", body)


def result(payment_id: str, outcome: str = "approved", **extra: Any) -> tuple[str, dict[str, Any]]:
    return ("payment-result", {"payment_id": payment_id, "outcome": outcome, **extra})


def reversal(payment_id: str, reason: str) -> tuple[str, dict[str, Any]]:
    return ("reversal", {"payment_id": payment_id, "reason": reason})


# --- terminals ---------------------------------------------------------------------------


async def test_enrolled_terminal_record_round_trips(ledger_storage: Storage) -> None:
    key = Key()
    record = await enroll(ledger_storage, key, location="spb-nevsky-1", label="lobby")
    assert record == await ledger_storage.get_terminal(key.terminal_id)
    assert (record.terminal_id, record.public_key, record.location, record.label) == (
        key.terminal_id,
        key.public,
        "spb-nevsky-1",
        "lobby",
    )
    assert (record.state, record.head_seq, record.head_hash) == (
        TerminalState.ENROLLED,
        0,
        bytes(32),
    )
    assert (record.enrolled_ms, record.last_seen_ms, dict(record.health)) == (NOW_MS, None, {})
    assert await ledger_storage.get_terminal("NO-SUCH") is None


async def test_terminals_are_listed_by_terminal_id(ledger_storage: Storage) -> None:
    keys = [Key() for _ in range(3)]
    for key in keys:
        await enroll(ledger_storage, key)
    listed = [t.terminal_id for t in await ledger_storage.list_terminals()]
    assert listed == sorted(k.terminal_id for k in keys)


async def test_registration_code_twice_conflicts(ledger_storage: Storage) -> None:
    code: dict[str, Any] = {
        "code_hash": code_hash("TWICE"),
        "location": "loc",
        "label": None,
        "created_ms": NOW_MS,
        "expires_ms": NOW_MS + 1,
        "actor": "op",
    }
    await ledger_storage.add_registration_code(**code)
    with pytest.raises(ConflictError, match="exists already"):
        await ledger_storage.add_registration_code(**code)
    audit = [(r.actor, r.action, r.subject) for r in await ledger_storage.audit_records()]
    assert audit == [("op", "registration-code", "loc")]


async def test_state_change_is_audited_and_unknown_terminal_is_not_found(
    ledger_storage: Storage,
) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    record = await ledger_storage.set_terminal_state(
        key.terminal_id, TerminalState.REVOKED, reason="stolen", actor="op", now_ms=NOW_MS + 5
    )
    assert (record.state, record.state_reason) == (TerminalState.REVOKED, "stolen")
    last = (await ledger_storage.audit_records())[-1]
    assert (last.ts_ms, last.actor, last.action, last.subject, dict(last.detail)) == (
        NOW_MS + 5,
        "op",
        "state:revoked",
        key.terminal_id,
        {"reason": "stolen"},
    )
    with pytest.raises(NotFoundError):
        await ledger_storage.set_terminal_state(
            "NO-SUCH", TerminalState.REVOKED, reason="x", actor="op", now_ms=NOW_MS
        )


async def test_heartbeat_is_stored_on_the_terminal(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    await ledger_storage.record_heartbeat(
        key.terminal_id,
        now_ms=NOW_MS + 9,
        queue_depth=3,
        oldest_pending_age_s=None,
        software_version="1.2.3",
        catalog_version=7,
        config_version=None,
        health={"printer": "ok", "disk_free_mb": 812},
    )
    record = await ledger_storage.get_terminal(key.terminal_id)
    assert record is not None
    assert (
        record.last_seen_ms,
        record.queue_depth,
        record.oldest_pending_age_s,
        record.software_version,
        record.catalog_version,
        record.config_version,
        dict(record.health),
    ) == (NOW_MS + 9, 3, None, "1.2.3", 7, None, {"printer": "ok", "disk_free_mb": 812})


# --- publications and catalog releases ------------------------------------------------------


async def test_publications_keep_every_version_and_serve_the_newest(
    ledger_storage: Storage,
) -> None:
    assert await ledger_storage.latest_publication(kind="config", scope="*") is None
    for version in (1, 3, 2):
        await ledger_storage.put_publication(
            kind="config", scope="*", version=version, data=b"v%d" % version, now_ms=NOW_MS
        )
    assert await ledger_storage.latest_publication(kind="config", scope="*") == (3, b"v3")
    assert await ledger_storage.latest_publication(kind="config", scope="location:x") is None
    with pytest.raises(ConflictError, match="version 3 exists already"):
        await ledger_storage.put_publication(
            kind="config", scope="*", version=3, data=b"again", now_ms=NOW_MS
        )


async def test_catalog_release_for_prefers_a_delta_from_the_held_version(
    ledger_storage: Storage,
) -> None:
    assert await ledger_storage.latest_catalog_version() == 0
    assert await ledger_storage.catalog_release_for(0) is None
    await ledger_storage.put_catalog_release(
        version=1, kind="snapshot", base_version=None, data=b"s1", now_ms=NOW_MS
    )
    await ledger_storage.put_catalog_release(
        version=2, kind="snapshot", base_version=None, data=b"s2", now_ms=NOW_MS
    )
    await ledger_storage.put_catalog_release(
        version=2, kind="delta", base_version=1, data=b"d1-2", now_ms=NOW_MS
    )
    assert await ledger_storage.latest_catalog_version() == 2
    assert await ledger_storage.catalog_release_for(1) == (2, "delta", b"d1-2")
    assert await ledger_storage.catalog_release_for(0) == (2, "snapshot", b"s2")
    assert await ledger_storage.catalog_release_for(2) is None
    with pytest.raises(ConflictError, match="catalog delta version 2 exists already"):
        await ledger_storage.put_catalog_release(
            version=2, kind="delta", base_version=1, data=b"x", now_ms=NOW_MS
        )
    actions = [r.action for r in await ledger_storage.audit_records()]
    assert actions == ["catalog:snapshot", "catalog:snapshot", "catalog:delta"]


# --- reading the ledger -------------------------------------------------------------------


async def test_export_rows_have_the_same_shape_on_every_backend(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    bodies = [
        intent("pay-00000101", 700, agent="sber-atm", txn_id="900001"),
        result("pay-00000101", rrn="000000000101", masked_pan="220220******0101", offline=True),
        intent("pay-00000102", 900),
        reversal("pay-00000102", "printer jam"),
        (
            "meter-reading",
            {"account": "1000200030", "meter_id": "HW-1", "value": 1234, "reading_ts_ms": 77},
        ),
    ]
    entries = chain(iter(bodies), ts_ms=1_000, step_ms=10)
    assert (await ingestor(ledger_storage).ingest(batch(entries, key))).ack is not None
    payments = await ledger_storage.export_rows("payments", 0, 2**62)
    assert payments == [
        {
            "payment_id": "pay-00000101",
            "terminal_id": key.terminal_id,
            "seq": 1,
            "ts_ms": 1_000,
            "amount_minor": 700,
            "currency": "RUB",
            "account": "1000200030",
            "channel": "kiosk",
            "agent": "sber-atm",
            "txn_id": "900001",
            "surcharge_minor": 0,
            "services": [{"code": "HW", "provider": "Vodokanal", "amount_minor": 700}],
            "outcome": "approved",
            "auth_code": None,
            "rrn": "000000000101",
            "masked_pan": "220220******0101",
            "card_brand": None,
            "offline": True,
            "reversed": False,
            "reversal_reason": None,
        },
        {
            "payment_id": "pay-00000102",
            "terminal_id": key.terminal_id,
            "seq": 3,
            "ts_ms": 1_020,
            "amount_minor": 900,
            "currency": "RUB",
            "account": "1000200030",
            "channel": "kiosk",
            "agent": None,
            "txn_id": None,
            "surcharge_minor": 0,
            "services": [{"code": "HW", "provider": "Vodokanal", "amount_minor": 900}],
            "outcome": None,
            "auth_code": None,
            "rrn": None,
            "masked_pan": None,
            "card_brand": None,
            "offline": None,
            "reversed": True,
            "reversal_reason": "printer jam",
        },
    ]
    assert [
        p["payment_id"] for p in await ledger_storage.export_rows("payments", 1_001, 1_021)
    ] == ["pay-00000102"]
    meters = await ledger_storage.export_rows("meter-readings", 0, 2**62)
    assert meters == [
        {
            "terminal_id": key.terminal_id,
            "seq": 5,
            "ts_ms": 1_040,
            "account": "1000200030",
            "meter_id": "HW-1",
            "value": 1234,
            "reading_ts_ms": 77,
        }
    ]
    with pytest.raises(BadRequestError, match="unknown export kind"):
        await ledger_storage.export_rows("receipts", 0, 1)


async def test_fork_alarm_and_audit_carry_the_detail(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    ing = ingestor(ledger_storage)
    entries = chain(iter([intent("pay-00000201"), result("pay-00000201")]))
    await ing.ingest(batch(entries, key))
    other = chain(iter([intent("pay-00000202"), result("pay-00000202")]))
    await ing.ingest(batch(other, key))
    (alarm,) = await ledger_storage.alarms()
    assert (alarm.ts_ms, alarm.terminal_id, alarm.kind, alarm.resolved_ms) == (
        NOW_MS,
        key.terminal_id,
        "fork",
        None,
    )
    assert dict(alarm.detail) == {
        "seq": 1,
        "stored_hash": entries[0].hash.hex(),
        "received_hash": other[0].hash.hex(),
        "batch_from_seq": 1,
        "batch_to_seq": 2,
    }
    last = (await ledger_storage.audit_records())[-1]
    assert (last.actor, last.action, last.subject) == ("central", "quarantine", key.terminal_id)
    assert dict(last.detail) == {"reason": "fork", **alarm.detail}
    record = await ledger_storage.get_terminal(key.terminal_id)
    assert record is not None
    assert (record.state, record.state_reason) == (TerminalState.QUARANTINED, "fork")


# --- results and reversals that cannot update a payment --------------------------------------


async def test_unapplied_results_and_reversals_are_classified(ledger_storage: Storage) -> None:
    a, b = Key(), Key()
    await enroll(ledger_storage, a)
    await enroll(ledger_storage, b)
    ing = ingestor(ledger_storage)
    first = chain(iter([intent("pay-00000301"), intent("pay-00000302")]))
    assert (await ing.ingest(batch(first, a))).ack is not None
    later = chain(
        iter(
            [
                result("pay-00000301"),
                reversal("pay-00000302", "first"),
                reversal("pay-00000302", "second"),
                result("pay-00000301", "declined"),
                result("pay-00000399"),
            ]
        ),
        start_seq=3,
        prev_hash=first[-1].hash,
    )
    answer = await ing.ingest(batch(later, a))
    assert answer.ack is not None
    assert [(d.seq, d.kind, d.reason, d.existing_payment_id) for d in answer.duplicates] == [
        (6, "payment-result", "result-exists", "pay-00000301"),
        (7, "payment-result", "no-intent", None),
        (5, "reversal", "reversal-exists", "pay-00000302"),
    ]
    # The other terminal reporting a result for a's payment changes nothing.
    foreign = chain(iter([result("pay-00000301", "declined")]))
    answer = await ing.ingest(batch(foreign, b))
    assert [(d.reason, d.existing_payment_id) for d in answer.duplicates] == [
        ("foreign-payment", "pay-00000301")
    ]
    rows = {r["payment_id"]: r for r in await ledger_storage.export_rows("payments", 0, 2**62)}
    assert rows["pay-00000301"]["outcome"] == "approved"
    assert rows["pay-00000302"]["reversal_reason"] == "first"
    stored = await ledger_storage.duplicates()
    assert [(d["terminal_id"], d["seq"], d["reason"]) for d in stored] == [
        (a.terminal_id, 6, "result-exists"),
        (a.terminal_id, 7, "no-intent"),
        (a.terminal_id, 5, "reversal-exists"),
        (b.terminal_id, 1, "foreign-payment"),
    ]
    assert stored[0] == {
        "terminal_id": a.terminal_id,
        "seq": 6,
        "kind": "payment-result",
        "payment_id": "pay-00000301",
        "agent": None,
        "txn_id": None,
        "reason": "result-exists",
        "existing_payment_id": "pay-00000301",
        "received_ms": NOW_MS,
    }
    counts = await ledger_storage.counts()
    assert (counts.terminals, counts.entries, counts.payments, counts.duplicates) == (2, 8, 2, 4)
    assert (counts.meter_readings, counts.alarms, counts.batches) == (0, 0, 3)


async def test_result_for_an_intent_refused_as_duplicate_is_a_duplicate_too(
    ledger_storage: Storage,
) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    ing = ingestor(ledger_storage)
    first = chain(iter([intent("pay-00000401", agent="vtb", txn_id="5")]))
    await ing.ingest(batch(first, key))
    # A new payment id for the same (agent, txn_id), with its result in a later batch.
    second = chain(
        iter([intent("pay-00000402", agent="vtb", txn_id="5")]),
        start_seq=2,
        prev_hash=first[-1].hash,
    )
    answer = await ing.ingest(batch(second, key))
    assert [(d.kind, d.reason, d.existing_payment_id) for d in answer.duplicates] == [
        ("payment-intent", "agent_txn_id", "pay-00000401")
    ]
    third = chain(iter([result("pay-00000402")]), start_seq=3, prev_hash=second[-1].hash)
    answer = await ing.ingest(batch(third, key))
    assert [(d.kind, d.reason) for d in answer.duplicates] == [("payment-result", "no-intent")]


async def test_entry_hashes_hold_the_received_bytes(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = chain(iter([intent("pay-00000501"), result("pay-00000501")]))
    await ingestor(ledger_storage).ingest(batch(entries, key))
    stored = await ledger_storage.entry_hashes(key.terminal_id)
    assert [(seq, digest) for seq, digest, _ in stored] == [
        (1, entries[0].hash),
        (2, entries[1].hash),
    ]
    assert await ledger_storage.entry_hashes("NO-SUCH") == []


async def test_open_storage_refuses_an_unknown_scheme() -> None:
    with pytest.raises(BadRequestError, match="unsupported database URL scheme"):
        open_storage("mysql://x")


# --- the shared SQL and its backends ----------------------------------------------------------


def test_applied_migrations_are_never_edited() -> None:
    # A schema change is a NEW named migration; one a database may hold renders
    # the same, byte for byte, in both dialects forever.
    from central_sync.central import postgres, sqlite

    rendered = {
        dialect: [(name, hashlib.sha256(script.encode()).hexdigest()[:16]) for name, script in m]
        for dialect, m in (("sqlite", sqlite.MIGRATIONS), ("postgres", postgres.MIGRATIONS))
    }
    assert rendered["sqlite"][:1] == [("0001_ledger", "e9815261012fdf3c")]
    assert rendered["postgres"][:1] == [("0001_ledger", "3848485a78dfe42b")]
    assert [n for n, _ in rendered["sqlite"]] == [n for n, _ in rendered["postgres"]]


def test_postgres_numbers_placeholders_in_order() -> None:
    from central_sync.central.postgres import numbered

    assert numbered("UPDATE t SET a = ? WHERE b = ? AND c IN (?, ?)") == (
        "UPDATE t SET a = $1 WHERE b = $2 AND c IN ($3, $4)"
    )
    assert numbered("SELECT 1") == "SELECT 1"


async def test_sqlite_operation_that_suspends_is_refused_and_rolled_back(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "central.db")
    await storage.open()
    try:
        await storage.migrate()

        async def suspends(conn: SqlConnection) -> None:
            await conn.execute(
                "INSERT INTO audit (ts_ms, actor, action, subject, detail)"
                " VALUES (1, 'a', 'b', 'c', '{}')"
            )
            await asyncio.sleep(0)

        with pytest.raises(AssertionError, match="suspended"):
            await storage._write(suspends)
        assert await storage.audit_records() == []
    finally:
        await storage.close()


async def test_two_terminals_racing_on_the_same_payments_store_each_once(
    ledger_storage: Storage,
) -> None:
    # On PostgreSQL the two batches are applied in concurrent transactions: the
    # unique constraints, not the order of arrival, decide the duplicates.
    keys = [Key(), Key()]
    for key in keys:
        await enroll(ledger_storage, key)
    bodies = [
        body
        for n in range(50)
        for body in (intent(f"pay-{n:08d}-race"), result(f"pay-{n:08d}-race"))
    ]
    ing = ingestor(ledger_storage)
    answers = await asyncio.gather(*(ing.ingest(batch(chain(iter(bodies)), k)) for k in keys))
    assert all(answer.ack is not None for answer in answers)
    assert sorted(len(answer.duplicates) for answer in answers) == [0, 100]
    counts = await ledger_storage.counts()
    assert (counts.entries, counts.payments, counts.duplicates) == (200, 50, 100)
    winners = {row["terminal_id"] for row in await ledger_storage.export_rows("payments", 0, 2**62)}
    assert len(winners) == 1
