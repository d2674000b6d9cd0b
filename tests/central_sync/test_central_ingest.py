"""Batch ingest against both storages: apply, idempotence, gaps, forks, dedup, security."""

from __future__ import annotations

import asyncio
import random
import zlib
from pathlib import Path
from typing import Any

import pytest

from central_sync import canonical, protocol, signing
from central_sync.central.errors import ConflictError, RegistrationCodeError
from central_sync.central.ingest import Ingestor, IngestResult
from central_sync.central.storage import LedgerCounts, Storage, TerminalState
from central_sync.central.synthetic import chain, payment_bodies, synthetic_entries
from central_sync.journal import Entry
from central_sync.protocol import RefusalKind
from tests.central_sync.central_support import NOW_MS, Key, batch, code_hash, enroll

CENTRAL = Key()


def ingestor(storage: Storage, **kw: Any) -> Ingestor:
    return Ingestor(storage, signer=CENTRAL, clock_ms=lambda: NOW_MS, **kw)


def assert_ack(result: IngestResult, key: Key, seq: int, entries: list[Entry]) -> None:
    assert result.refusal is None, result.refusal
    ack = protocol.verify_ack(result.answer, CENTRAL.public, key.terminal_id)
    assert ack.acked_seq == seq
    assert ack.head_hash == entries[seq - 1].hash


def assert_refused(
    result: IngestResult, kind: RefusalKind, key: Key | None = None, data: bytes | None = None
) -> protocol.Refusal:
    assert result.ack is None
    answer = protocol.parse_answer(
        result.answer,
        central_public_key=CENTRAL.public,
        terminal_id=key.terminal_id if key else (result.terminal_id or "T"),
        request=data,
    )
    assert isinstance(answer, protocol.Refusal)
    assert answer.kind is kind, answer
    return answer


async def counts(storage: Storage) -> LedgerCounts:
    return await storage.counts()


async def test_batch_is_applied_and_acked(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(1, 10, meter_every=5)
    result = await ingestor(ledger_storage).ingest(batch(entries, key))
    assert_ack(result, key, len(entries), entries)
    assert result.applied == len(entries)
    c = await counts(ledger_storage)
    assert (c.entries, c.payments, c.meter_readings, c.duplicates) == (22, 10, 2, 0)
    terminal = await ledger_storage.get_terminal(key.terminal_id)
    assert terminal is not None
    assert (terminal.head_seq, terminal.head_hash) == (22, entries[-1].hash)
    stored = await ledger_storage.entry_hashes(key.terminal_id)
    assert [(seq, h) for seq, h, _ in stored] == [(e.seq, e.hash) for e in entries]
    assert stored[0][2] == canonical.encode(
        {"seq": 1, "kind": entries[0].kind, "ts_ms": entries[0].ts_ms, "body": entries[0].body}
    )


async def test_consecutive_batches_continue_the_chain(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(2, 30)
    ing = ingestor(ledger_storage)
    for start in range(0, 60, 7):
        chunk = entries[start : start + 7]
        assert_ack(await ing.ingest(batch(chunk, key)), key, chunk[-1].seq, entries)
    assert (await counts(ledger_storage)).entries == 60


async def test_resent_batch_is_an_idempotent_no_op(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(3, 5)
    ing = ingestor(ledger_storage)
    data = batch(entries, key)
    await ing.ingest(data)
    before = await counts(ledger_storage)
    again = await ing.ingest(data)
    assert_ack(again, key, 10, entries)
    assert again.applied == 0
    after = await counts(ledger_storage)
    assert (after.entries, after.payments, after.duplicates) == (
        before.entries,
        before.payments,
        0,
    )


async def test_old_batch_after_newer_ones_acks_the_current_head(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(4, 10)
    ing = ingestor(ledger_storage)
    first = batch(entries[:4], key)
    await ing.ingest(first)
    await ing.ingest(batch(entries[4:], key))
    result = await ing.ingest(first)
    assert_ack(result, key, 20, entries)
    assert result.applied == 0


async def test_overlapping_batch_applies_only_the_new_entries(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(5, 10)
    ing = ingestor(ledger_storage)
    await ing.ingest(batch(entries[:8], key))
    result = await ing.ingest(batch(entries[3:15], key))
    assert_ack(result, key, 15, entries)
    assert result.applied == 7
    c = await counts(ledger_storage)
    assert (c.entries, c.duplicates) == (15, 0)
    # Payment 5's intent (seq 9) was in the first batch, its result (seq 10) in
    # the second: the result must have updated the payment, not duplicated it.
    rows = await ledger_storage.export_rows("payments", 0, 2**62)
    assert all(row["outcome"] == "approved" for row in rows[:7])


async def test_gap_is_refused_with_the_expected_seq(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(6, 10)
    ing = ingestor(ledger_storage)
    await ing.ingest(batch(entries[:4], key))
    data = batch(entries[6:], key)
    refusal = assert_refused(await ing.ingest(data), RefusalKind.GAP, key, data)
    assert refusal.expected_seq == 5
    assert refusal.retryable
    assert (await counts(ledger_storage)).entries == 4


async def test_first_batch_not_starting_at_one_is_a_gap(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(7, 5)
    refusal = assert_refused(
        await ingestor(ledger_storage).ingest(batch(entries[2:], key)), RefusalKind.GAP, key
    )
    assert refusal.expected_seq == 1


def forked(entries: list[Entry], at: int) -> list[Entry]:
    """The same chain up to seq ``at - 1``, then different entries from ``at`` on."""
    prefix = entries[: at - 1]
    prev = prefix[-1].hash if prefix else bytes(32)
    bodies = [(e.kind, dict(e.body)) for e in entries[at - 1 :]]
    kind, body = bodies[0]
    bodies[0] = (kind, {**body, "amount_minor": body.get("amount_minor", 1) + 1})
    return prefix + chain(iter(bodies), start_seq=at, prev_hash=prev, ts_ms=entries[at - 1].ts_ms)


async def test_fork_in_the_overlap_quarantines_and_applies_nothing(
    ledger_storage: Storage,
) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(8, 10)
    ing = ingestor(ledger_storage)
    await ing.ingest(batch(entries[:10], key))
    other = forked(entries, 5)
    data = batch(other[2:14], key)
    refusal = assert_refused(await ing.ingest(data), RefusalKind.QUARANTINED, key, data)
    assert refusal.reason == "fork"
    assert not refusal.retryable
    c = await counts(ledger_storage)
    assert (c.entries, c.alarms) == (10, 1)
    alarm = (await ledger_storage.alarms())[0]
    assert (alarm.kind, alarm.terminal_id, alarm.detail["seq"]) == ("fork", key.terminal_id, 5)
    terminal = await ledger_storage.get_terminal(key.terminal_id)
    assert terminal is not None
    assert terminal.state is TerminalState.QUARANTINED
    assert terminal.head_seq == 10
    # Even the genuine continuation is now refused until an operator acts.
    later = await ing.ingest(batch(entries[10:], key))
    assert_refused(later, RefusalKind.QUARANTINED, key)
    assert (await counts(ledger_storage)).entries == 10
    assert any(r.action == "quarantine" for r in await ledger_storage.audit_records())


async def test_fork_at_the_head_boundary_is_detected_by_prev_hash(
    ledger_storage: Storage,
) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(9, 5)
    ing = ingestor(ledger_storage)
    await ing.ingest(batch(entries[:6], key))
    other = forked(entries, 6)  # a different seq 6, then a continuation from it
    data = batch(other[6:], key)  # starts at 7: prev_hash is the other seq 6
    assert_refused(await ing.ingest(data), RefusalKind.QUARANTINED, key, data)
    assert (await counts(ledger_storage)).entries == 6


async def test_unknown_terminal_is_refused(ledger_storage: Storage) -> None:
    key = Key()
    data = batch(synthetic_entries(10, 1), key)
    refusal = assert_refused(
        await ingestor(ledger_storage).ingest(data), RefusalKind.UNKNOWN_TERMINAL, key, data
    )
    assert not refusal.retryable


async def test_revoked_terminal_is_refused_and_nothing_applied(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    await ledger_storage.set_terminal_state(
        key.terminal_id, TerminalState.REVOKED, reason="stolen", actor="op", now_ms=NOW_MS
    )
    data = batch(synthetic_entries(11, 2), key)
    assert_refused(await ingestor(ledger_storage).ingest(data), RefusalKind.REVOKED, key, data)
    assert (await counts(ledger_storage)).entries == 0


async def test_batch_signed_with_a_wrong_key_is_rejected(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    impostor = Key()
    data = protocol.build_batch(
        synthetic_entries(12, 2),
        terminal_id=key.terminal_id,
        signer=impostor,
        entries_max=100,
        bytes_max=1 << 20,
    ).data
    refusal = assert_refused(
        await ingestor(ledger_storage).ingest(data), RefusalKind.REJECTED, key, data
    )
    assert refusal.reason == "bad-signature"
    assert (await counts(ledger_storage)).entries == 0


async def test_replay_of_another_terminals_batch_is_rejected(ledger_storage: Storage) -> None:
    a, b = Key(), Key()
    await enroll(ledger_storage, a)
    await enroll(ledger_storage, b)
    ing = ingestor(ledger_storage)
    data = batch(synthetic_entries(13, 3), a)
    # Sent over b's connection: refused, nothing applied.
    refusal = assert_refused(
        await ing.ingest(data, claimed_terminal_id=b.terminal_id), RefusalKind.REJECTED, b, data
    )
    assert refusal.reason == "wrong-terminal"
    # Rewritten to name b: a's signature no longer verifies under b's key.
    message = zlib.decompress(data).replace(a.terminal_id.encode(), b.terminal_id.encode())
    forged = zlib.compress(message)
    refusal = assert_refused(await ing.ingest(forged), RefusalKind.REJECTED, b, forged)
    assert refusal.reason == "bad-signature"
    assert (await counts(ledger_storage)).entries == 0


async def test_every_single_byte_change_is_rejected_and_nothing_applied(
    ledger_storage: Storage,
) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    ing = ingestor(ledger_storage)
    message = zlib.decompress(batch(synthetic_entries(14, 1), key))
    for position in range(len(message)):
        changed = bytearray(message)
        changed[position] ^= 0x01
        result = await ing.ingest(zlib.compress(bytes(changed)))
        assert result.ack is None, position
        assert result.refusal is not None
        assert result.refusal.kind in (RefusalKind.REJECTED, RefusalKind.UNKNOWN_TERMINAL)
    assert (await counts(ledger_storage)).entries == 0
    # The unmodified batch still applies afterwards.
    assert (await ing.ingest(zlib.compress(message))).ack is not None


async def test_unknown_protocol_version_is_rejected(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    message = zlib.decompress(batch(synthetic_entries(15, 1), key))
    data = zlib.compress(message[: -len(b"1}")] + b"9}")
    refusal = assert_refused(
        await ingestor(ledger_storage).ingest(data), RefusalKind.REJECTED, None, data
    )
    assert refusal.reason == "unknown-version"
    assert (await counts(ledger_storage)).entries == 0


async def test_oversized_and_bomb_batches_are_refused_too_large(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    limits = protocol.BatchLimits(
        wire_bytes_max=50_000, decompressed_bytes_max=200_000, entries_max=50
    )
    ing = ingestor(ledger_storage, limits=limits)
    entries = synthetic_entries(16, 40)
    for data in (
        batch(entries, key),  # 80 entries > entries_max
        b"\x78" * 50_001,  # over the wire bound
        zlib.compress(b" " * 5_000_000, 9),  # inflates far past the bound
    ):
        assert_refused(await ing.ingest(data), RefusalKind.TOO_LARGE, None, data)
    assert (await counts(ledger_storage)).entries == 0


async def test_malformed_upload_is_rejected(ledger_storage: Storage) -> None:
    ing = ingestor(ledger_storage)
    for data in (b"", b"hello", zlib.compress(b"{}"), zlib.compress(b"\xff")):
        assert_refused(await ing.ingest(data), RefusalKind.REJECTED, None, data)


async def test_inconsistent_summary_signed_by_the_terminal_is_rejected(
    ledger_storage: Storage,
) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    body = canonical.decode(zlib.decompress(batch(synthetic_entries(17, 2), key)))["body"]
    body["summary"]["currency_totals"]["RUB"] += 1
    data = zlib.compress(signing.seal("batch", body, key))
    refusal = assert_refused(
        await ingestor(ledger_storage).ingest(data), RefusalKind.REJECTED, key, data
    )
    assert refusal.reason == "summary-mismatch"


# --- permanent deduplication ---------------------------------------------------------


def payment(
    payment_id: str, *, agent: str | None = None, txn_id: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    intent: dict[str, Any] = {
        "payment_id": payment_id,
        "amount_minor": 12_345,
        "currency": "RUB",
        "account": "1000200030",
        "channel": "gateway" if agent else "kiosk",
    }
    if agent:
        intent.update(agent=agent, txn_id=txn_id)
    return [
        ("payment-intent", intent),
        ("payment-result", {"payment_id": payment_id, "outcome": "approved", "rrn": "123"}),
    ]


async def test_same_payment_id_from_two_terminals_is_one_payment(ledger_storage: Storage) -> None:
    a, b = Key(), Key()
    await enroll(ledger_storage, a)
    await enroll(ledger_storage, b)
    ing = ingestor(ledger_storage)
    await ing.ingest(batch(chain(iter(payment("pay-00000001"))), a))
    result = await ing.ingest(batch(chain(iter(payment("pay-00000001"))), b))
    assert result.ack is not None
    assert [(d.kind, d.reason) for d in result.duplicates] == [
        ("payment-intent", "payment_id"),
        ("payment-result", "payment_id"),
    ]
    c = await counts(ledger_storage)
    assert (c.payments, c.entries, c.duplicates) == (1, 4, 2)
    rows = await ledger_storage.export_rows("payments", 0, 2**62)
    assert [r["terminal_id"] for r in rows] == [a.terminal_id]


async def test_same_agent_txn_id_with_a_new_payment_id_is_a_duplicate(
    ledger_storage: Storage,
) -> None:
    a, b = Key(), Key()
    await enroll(ledger_storage, a)
    await enroll(ledger_storage, b)
    ing = ingestor(ledger_storage)
    # Another agent may reuse the txn id: that is a different payment.
    entries = chain(
        iter(
            payment("pay-00000002", agent="sber", txn_id="77")
            + payment("pay-00000003", agent="vtb", txn_id="77")
            + payment("pay-00000002", agent="sber", txn_id="77")
        )
    )
    assert not (await ing.ingest(batch(entries[:4], a))).duplicates
    result = await ing.ingest(batch(entries[4:], a))
    assert result.ack is not None
    assert {d.reason for d in result.duplicates} == {"payment_id"}
    result = await ing.ingest(
        batch(chain(iter(payment("pay-00000004", agent="sber", txn_id="77"))), b)
    )
    assert [(d.kind, d.reason, d.existing_payment_id) for d in result.duplicates] == [
        ("payment-intent", "agent_txn_id", "pay-00000002"),
        ("payment-result", "agent_txn_id", "pay-00000002"),
    ]
    assert (await counts(ledger_storage)).payments == 2


async def test_duplicates_inside_one_batch_are_recorded_once(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    bodies = payment("pay-00000005", agent="sber", txn_id="1") + payment(
        "pay-00000006", agent="sber", txn_id="1"
    )
    result = await ingestor(ledger_storage).ingest(batch(chain(iter(bodies)), key))
    assert [(d.seq, d.reason) for d in result.duplicates] == [
        (3, "agent_txn_id"),
        (4, "agent_txn_id"),
    ]
    assert (await counts(ledger_storage)).payments == 1


async def test_result_and_reversal_in_later_batches_update_the_payment(
    ledger_storage: Storage,
) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    bodies = [
        *payment("pay-00000007"),
        ("reversal", {"payment_id": "pay-00000007", "reason": "printer jam"}),
        ("reversal", {"payment_id": "pay-00000007", "reason": "again"}),
        ("payment-result", {"payment_id": "pay-00000099", "outcome": "declined"}),
    ]
    entries = chain(iter(bodies))
    ing = ingestor(ledger_storage)
    for entry in entries:
        assert (await ing.ingest(batch([entry], key))).ack is not None
    rows = await ledger_storage.export_rows("payments", 0, 2**62)
    assert len(rows) == 1
    assert (rows[0]["outcome"], rows[0]["rrn"], rows[0]["reversed"]) == ("approved", "123", True)
    assert rows[0]["reversal_reason"] == "printer jam"
    reasons = [(d["kind"], d["reason"]) for d in await ledger_storage.duplicates()]
    assert reasons == [("reversal", "reversal-exists"), ("payment-result", "no-intent")]


async def test_concurrent_uploads_of_one_terminal_apply_each_entry_once(
    ledger_storage: Storage,
) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    entries = synthetic_entries(18, 60)
    datas = [batch(entries[i : i + 20], key) for i in range(0, 120, 20)]
    ing = ingestor(ledger_storage)
    # Every batch sent three times, all at once, in scrambled order; the agent
    # would resend gaps, so loop until the head is reached.
    for _ in range(10):
        results = await asyncio.gather(*(ing.ingest(d) for d in datas[::-1] * 3))
        if any(r.ack is not None and r.ack.acked_seq == 120 for r in results):
            break
    c = await counts(ledger_storage)
    assert (c.entries, c.payments, c.duplicates) == (120, 60, 0)


# --- enrollment -----------------------------------------------------------------------


async def test_registration_code_is_single_use(ledger_storage: Storage) -> None:
    key = Key()
    record = await enroll(ledger_storage, key)
    assert (record.state, record.head_seq) == (TerminalState.ENROLLED, 0)
    await ledger_storage.add_registration_code(
        code_hash=code_hash("ONCE-ONLY"),
        location="loc",
        label=None,
        created_ms=NOW_MS,
        expires_ms=NOW_MS + 10,
        actor="op",
    )
    await ledger_storage.enroll(
        terminal_id="TX1",
        public_key=b"\x01" * 32,
        code_hash=code_hash("ONCE-ONLY"),
        location="loc",
        label="x",
        now_ms=NOW_MS,
    )
    again = await ledger_storage.enroll(
        terminal_id="TX1",
        public_key=b"\x01" * 32,
        code_hash=code_hash("ONCE-ONLY"),
        location="loc",
        label="x",
        now_ms=NOW_MS,
    )
    assert again.terminal_id == "TX1"  # the same request re-sent: same answer
    with pytest.raises(RegistrationCodeError, match="already used"):
        await ledger_storage.enroll(
            terminal_id="TX2",
            public_key=b"\x02" * 32,
            code_hash=code_hash("ONCE-ONLY"),
            location="loc",
            label="x",
            now_ms=NOW_MS,
        )


async def test_registration_code_expired_unknown_or_other_location_is_refused(
    ledger_storage: Storage,
) -> None:
    await ledger_storage.add_registration_code(
        code_hash=code_hash("SHORT-LIVED"),
        location="loc",
        label=None,
        created_ms=NOW_MS,
        expires_ms=NOW_MS + 10,
        actor="op",
    )
    common: dict[str, Any] = {"terminal_id": "TX3", "public_key": b"\x03" * 32, "label": "x"}
    with pytest.raises(RegistrationCodeError, match="expired"):
        await ledger_storage.enroll(
            code_hash=code_hash("SHORT-LIVED"), location="loc", now_ms=NOW_MS + 10, **common
        )
    with pytest.raises(RegistrationCodeError, match="another location"):
        await ledger_storage.enroll(
            code_hash=code_hash("SHORT-LIVED"), location="elsewhere", now_ms=NOW_MS, **common
        )
    with pytest.raises(RegistrationCodeError, match="unknown"):
        await ledger_storage.enroll(
            code_hash=code_hash("NO-SUCH-CODE"), location="loc", now_ms=NOW_MS, **common
        )
    assert await ledger_storage.get_terminal("TX3") is None


async def test_enrolling_an_enrolled_terminal_again_conflicts(ledger_storage: Storage) -> None:
    key = Key()
    await enroll(ledger_storage, key)
    with pytest.raises(ConflictError, match="already enrolled"):
        await enroll(ledger_storage, key)


async def test_migrate_twice_applies_nothing_new(ledger_storage: Storage) -> None:
    assert await ledger_storage.migrate() == []
    from central_sync.central.sqlite import MIGRATIONS

    # Every named migration the software knows is applied, in name order.
    assert await ledger_storage.applied_migrations() == sorted(name for name, _ in MIGRATIONS)


# --- with the real terminal journal ----------------------------------------------


async def test_real_journal_entries_sync_and_are_acknowledged(
    ledger_storage: Storage, tmp_path: Path
) -> None:
    from central_sync.journal import Journal

    key = Key()
    await enroll(ledger_storage, key)
    journal = await Journal.open(tmp_path / "journal.db")
    try:
        rng = random.Random(5)
        for n in range(30):
            intent, result = payment_bodies(rng, n + 1, gateway=n % 3 == 0)
            await journal.append("payment-intent", intent)
            await journal.append("payment-result", result)
        await journal.append(
            "meter-reading",
            {"account": "1000200030", "meter_id": "M1", "value": 12345, "reading_ts_ms": 1},
        )
        ing = ingestor(ledger_storage)
        sent = 0
        while True:
            pending = await journal.read(sent + 1, 25)
            if not pending:
                break
            out = protocol.build_batch(
                pending, terminal_id=key.terminal_id, signer=key, entries_max=25, bytes_max=1 << 20
            )
            await journal.mark_sent(out.to_seq)
            answer = await ing.ingest(out.data)
            ack = protocol.verify_ack(answer.answer, CENTRAL.public, key.terminal_id)
            await journal.mark_acknowledged(ack.acked_seq, ack.head_hash)
            sent = ack.acked_seq
        assert await journal.acknowledged_through() == 61
        head_seq, head_hash = await journal.head()
    finally:
        await journal.close()
    terminal = await ledger_storage.get_terminal(key.terminal_id)
    assert terminal is not None
    assert (terminal.head_seq, terminal.head_hash) == (head_seq, head_hash)
    c = await counts(ledger_storage)
    assert (c.entries, c.payments, c.meter_readings, c.duplicates) == (61, 30, 1, 0)
