"""Unit tests of the terminal journal (central_sync.journal)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from central_sync.journal import (
    GENESIS_HASH,
    EntryInvalidError,
    EntryState,
    Journal,
    JournalBusyError,
    JournalConflictError,
    JournalCorruptError,
    JournalError,
    JournalUnavailableError,
    JournalWriteError,
    OfflineLimitError,
    OfflineLimits,
    PaymentIntent,
    PaymentResult,
    entry_hash,
)

TEST_PAN = "4111111111111111"  # the well-known test card number; Luhn-valid


def intent(n: int, amount: int = 10_000, currency: str = "RUB") -> PaymentIntent:
    return PaymentIntent(
        payment_id=f"pay-{n:08d}",
        amount_minor=amount,
        currency=currency,
        account="1000000017",
        channel="kiosk",
    )


class CommitCounter:
    """Wraps a real sqlite3 connection; counts commits and can fail the Nth one.

    A failing COMMIT stands for a failed fsync; ``fail_writes`` makes the next
    INSERT fail as a failed write would (SQLITE_IOERR / SQLITE_FULL).
    """

    def __init__(self, conn: sqlite3.Connection, fail_on: set[int]) -> None:
        self._conn = conn
        self.commits = 0
        self.fail_on = fail_on
        self.fail_writes: Exception | None = None

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.strip().upper() == "COMMIT":
            self.commits += 1
            if self.commits in self.fail_on:
                raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        if self.fail_writes is not None and sql.lstrip().upper().startswith("INSERT"):
            exc, self.fail_writes = self.fail_writes, None
            raise exc
        return self._conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def counting_connect(fail_on: set[int] | None = None) -> tuple[Callable[[str], Any], list[Any]]:
    made: list[CommitCounter] = []

    def connect(path: str) -> Any:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        wrapper = CommitCounter(conn, fail_on or set())
        made.append(wrapper)
        return wrapper

    return connect, made


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "journal.db")
    yield j
    await j.close()


async def test_append_assigns_contiguous_seqs_and_chains_hashes(journal: Journal) -> None:
    first = await journal.append("device-event", {"event": "boot"})
    second = await journal.append("device-event", {"event": "printer-ok"})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert second.hash == entry_hash(
        first.hash, seq=2, kind="device-event", ts_ms=second.ts_ms, body={"event": "printer-ok"}
    )
    assert await journal.head() == (2, second.hash)


async def test_append_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with await Journal.open(path) as j:
        entry = await j.record_payment_intent(intent(1))
    async with await Journal.open(path) as j:
        [stored] = await j.read(1, 10)
        assert stored == entry
        assert await j.head() == (1, entry.hash)
        assert (await j.verify()).ok


async def test_concurrent_appends_share_one_commit(tmp_path: Path) -> None:
    connect, made = counting_connect()
    async with await Journal.open(tmp_path / "j.db", connect=connect) as j:
        before = made[0].commits
        entries = await asyncio.gather(*(j.append("device-event", {"n": i}) for i in range(200)))
        commits = made[0].commits - before
    assert sorted(e.seq for e in entries) == list(range(1, 201))
    assert commits < 20, f"200 concurrent appends took {commits} commits"


async def test_group_commit_respects_entries_max(tmp_path: Path) -> None:
    connect, made = counting_connect()
    async with await Journal.open(
        tmp_path / "j.db", connect=connect, group_commit_entries_max=3
    ) as j:
        before = made[0].commits
        await asyncio.gather(*(j.append("device-event", {"n": i}) for i in range(30)))
        assert made[0].commits - before >= 10


async def test_append_queue_full_raises_busy_and_writes_nothing_extra(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "j.db", append_queue_max=4) as j:
        results = await asyncio.gather(
            *(j.append("device-event", {"n": i}) for i in range(40)), return_exceptions=True
        )
        busy = [r for r in results if isinstance(r, JournalBusyError)]
        stored = [r for r in results if not isinstance(r, BaseException)]
        assert busy, "the bound was never hit"
        assert len(busy) + len(stored) == 40
        assert (await j.head())[0] == len(stored)


async def test_same_payment_intent_twice_returns_the_stored_entry(journal: Journal) -> None:
    first = await journal.record_payment_intent(intent(1))
    again = await journal.record_payment_intent(intent(1))
    assert again == first
    assert (await journal.head())[0] == 1


async def test_concurrent_duplicate_intents_store_one_entry(journal: Journal) -> None:
    entries = await asyncio.gather(*(journal.record_payment_intent(intent(7)) for _ in range(10)))
    assert {e.seq for e in entries} == {1}


async def test_payment_intent_with_different_body_raises_conflict(journal: Journal) -> None:
    await journal.record_payment_intent(intent(1, amount=100))
    with pytest.raises(JournalConflictError):
        await journal.record_payment_intent(intent(1, amount=101))
    assert (await journal.head())[0] == 1


async def test_result_without_intent_is_refused(journal: Journal) -> None:
    with pytest.raises(EntryInvalidError, match="no intent"):
        await journal.record_payment_result(
            PaymentResult(payment_id="pay-00000009", outcome="approved")
        )


async def test_outcome_unknown_lists_intents_without_results(journal: Journal) -> None:
    await journal.record_payment_intent(intent(1))
    await journal.record_payment_intent(intent(2))
    await journal.record_payment_result(
        PaymentResult(payment_id="pay-00000001", outcome="approved")
    )
    unknown = await journal.outcome_unknown()
    assert [e.body["payment_id"] for e in unknown] == ["pay-00000002"]
    found = await journal.find_payment("pay-00000001")
    assert set(found) == {"payment-intent", "payment-result"}


@pytest.mark.parametrize(
    ("kind", "body", "match"),
    [
        ("Bad Kind", {}, "kind"),
        ("device-event", {"amount": 1.5}, "floats"),
        ("device-event", {"pan": "x"}, "card data"),
        ("device-event", {"nested": [{"CVV": "123"}]}, "card data"),
        ("device-event", {"note": f"card {TEST_PAN} used"}, "full card number"),
        ("payment-result", {"payment_id": "pay-00000001", "outcome": "maybe"}, "outcome"),
        ("payment-intent", {"payment_id": "p", "amount_minor": 1, "currency": "RUB"}, "payment_id"),
        (
            "payment-intent",
            {"payment_id": "pay-00000001", "amount_minor": 0, "currency": "RUB", "account": "1"},
            "positive",
        ),
        (
            "payment-intent",
            {"payment_id": "pay-00000001", "amount_minor": "10", "currency": "RUB", "account": "1"},
            "integer",
        ),
        ("device-event", {"blob": "x" * 20_000}, "larger"),
        ("device-event\n", {}, "kind"),
        (
            "payment-intent",
            {"payment_id": "pay-00000001\n", "amount_minor": 1, "currency": "RUB", "account": "1"},
            "payment_id",
        ),
        (
            "payment-intent",
            {
                "payment_id": "pay-00000001",
                "amount_minor": 1,
                "currency": "RUB",
                "account": "1",
                "channel": ["kiosk"],
            },
            "channel",
        ),
        (
            "payment-intent",
            {
                "payment_id": "pay-00000001",
                "amount_minor": 1,
                "currency": "RUB",
                "account": "1",
                "surcharge_minor": "5",
            },
            "surcharge_minor",
        ),
    ],
)
async def test_invalid_entry_raises_typed_error_and_writes_nothing(
    journal: Journal, kind: str, body: dict[str, Any], match: str
) -> None:
    with pytest.raises(EntryInvalidError, match=match) as info:
        await journal.append(kind, body)
    assert TEST_PAN not in str(info.value)
    assert (await journal.head())[0] == 0


async def test_masked_pan_is_accepted_and_full_pan_in_masked_field_refused(
    journal: Journal,
) -> None:
    await journal.record_payment_intent(intent(1))
    await journal.record_payment_result(
        PaymentResult(
            payment_id="pay-00000001", outcome="approved", extra={"masked_pan": "411111******1111"}
        )
    )
    await journal.record_payment_intent(intent(2))
    with pytest.raises(EntryInvalidError) as info:
        await journal.record_payment_result(
            PaymentResult(
                payment_id="pay-00000002", outcome="approved", extra={"masked_pan": TEST_PAN}
            )
        )
    assert TEST_PAN not in str(info.value)


async def test_offline_per_payment_limit_refuses_large_payment(tmp_path: Path) -> None:
    limits = OfflineLimits(payment_amount_max_minor=5_000)
    async with await Journal.open(tmp_path / "j.db", limits=limits) as j:
        with pytest.raises(OfflineLimitError) as info:
            await j.record_payment_intent(intent(1, amount=5_001))
        assert info.value.limit == "payment_amount"
        await j.record_payment_intent(intent(2, amount=5_000))


async def test_offline_total_amount_limit_is_per_currency_and_exact(tmp_path: Path) -> None:
    limits = OfflineLimits(amount_total_max_minor=30_000)
    async with await Journal.open(tmp_path / "j.db", limits=limits) as j:
        await j.record_payment_intent(intent(1, amount=20_000))
        await j.record_payment_intent(intent(2, amount=10_000))
        with pytest.raises(OfflineLimitError) as info:
            await j.record_payment_intent(intent(3, amount=1))
        assert info.value.limit == "amount_total"
        await j.record_payment_intent(intent(4, amount=30_000, currency="EUR"))


async def test_concurrent_appends_cannot_jointly_exceed_the_count_limit(tmp_path: Path) -> None:
    limits = OfflineLimits(payments_max=5)
    async with await Journal.open(tmp_path / "j.db", limits=limits) as j:
        results = await asyncio.gather(
            *(j.record_payment_intent(intent(i)) for i in range(20)), return_exceptions=True
        )
        stored = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, OfflineLimitError)]
        assert len(stored) == 5
        assert len(refused) == 15
        assert all(r.limit == "payments_count" for r in refused)


async def test_declined_payment_releases_its_offline_amount(tmp_path: Path) -> None:
    limits = OfflineLimits(payments_max=1)
    async with await Journal.open(tmp_path / "j.db", limits=limits) as j:
        await j.record_payment_intent(intent(1))
        with pytest.raises(OfflineLimitError):
            await j.record_payment_intent(intent(2))
        await j.record_payment_result(PaymentResult(payment_id="pay-00000001", outcome="declined"))
        await j.record_payment_intent(intent(2))
    # The release is recomputed identically from disk.
    async with await Journal.open(tmp_path / "j.db", limits=limits) as j:
        stats = await j.stats()
        assert stats.stored_payments == 1
        with pytest.raises(OfflineLimitError):
            await j.record_payment_intent(intent(3))


async def test_reversal_after_decline_does_not_release_twice(tmp_path: Path) -> None:
    limits = OfflineLimits(payments_max=2)
    async with await Journal.open(tmp_path / "j.db", limits=limits) as j:
        await j.record_payment_intent(intent(1))
        await j.record_payment_intent(intent(2))
        await j.record_payment_result(PaymentResult(payment_id="pay-00000001", outcome="declined"))
        await j.append("reversal", {"payment_id": "pay-00000001", "reason": "operator"})
        assert (await j.stats()).stored_payments == 1
        await j.record_payment_intent(intent(3))
        with pytest.raises(OfflineLimitError):
            await j.record_payment_intent(intent(4))


async def test_offline_age_limit_refuses_when_oldest_payment_is_too_old(tmp_path: Path) -> None:
    now = [1_000_000_000_000]
    limits = OfflineLimits(age_max_s=3600)
    async with await Journal.open(tmp_path / "j.db", limits=limits, clock_ms=lambda: now[0]) as j:
        first = await j.record_payment_intent(intent(1))
        now[0] += 3600 * 1000
        await j.record_payment_intent(intent(2))
        now[0] += 1
        with pytest.raises(OfflineLimitError) as info:
            await j.record_payment_intent(intent(3))
        assert info.value.limit == "age"
        # Once central acknowledges, the old payments no longer count.
        await j.mark_acknowledged(2, (await j.head())[1])
        await j.record_payment_intent(intent(3))
        assert first.seq == 1


async def test_acknowledgement_with_wrong_hash_is_refused(journal: Journal) -> None:
    e1 = await journal.append("device-event", {"n": 1})
    await journal.append("device-event", {"n": 2})
    with pytest.raises(JournalError, match="does not match"):
        await journal.mark_acknowledged(2, e1.hash)
    with pytest.raises(JournalError, match="beyond"):
        await journal.mark_acknowledged(3, e1.hash)
    assert await journal.acknowledged_through() == 0


async def test_entry_states_move_pending_sent_acknowledged(journal: Journal) -> None:
    for i in range(4):
        await journal.append("device-event", {"n": i})
    await journal.mark_sent(3)
    e2 = (await journal.read(2, 1))[0]
    await journal.mark_acknowledged(2, e2.hash)
    await journal.mark_acknowledged(1, (await journal.read(1, 1))[0].hash)  # old ack: no-op
    states = [e.state for e in await journal.read(1, 10)]
    assert states == [
        EntryState.ACKNOWLEDGED,
        EntryState.ACKNOWLEDGED,
        EntryState.SENT,
        EntryState.PENDING,
    ]
    assert await journal.acknowledged_through() == 2


async def test_prune_keeps_anchor_and_chain_still_verifies(tmp_path: Path) -> None:
    now = [1_000_000]
    path = tmp_path / "j.db"
    async with await Journal.open(path, clock_ms=lambda: now[0]) as j:
        for i in range(10):
            await j.append("device-event", {"n": i})
            now[0] += 1000
        e8 = (await j.read(8, 1))[0]
        await j.mark_acknowledged(8, e8.hash)
        deleted = await j.prune(older_than_ms=now[0])
        assert deleted == 8
        with pytest.raises(JournalError, match="pruned"):
            await j.read(1, 5)
        assert [e.seq for e in await j.read(9, 5)] == [9, 10]
    async with await Journal.open(path) as j:
        report = await j.verify()
        assert report.ok
        assert (report.anchor_seq, report.entries_checked) == (8, 2)
        entry = await j.append("device-event", {"n": 10})
        assert entry.seq == 11


async def test_garbage_file_raises_corrupt_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalCorruptError):
        await Journal.open(path)


async def test_foreign_sqlite_database_is_not_taken_for_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(JournalCorruptError, match="not a lobbypay journal"):
        await Journal.open(path)


async def test_journal_from_newer_software_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with await Journal.open(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('9999_future', 0)")
    with pytest.raises(JournalCorruptError, match="newer software"):
        await Journal.open(path)


async def _journal_with(path: Path, n: int) -> None:
    async with await Journal.open(path) as j:
        for i in range(n):
            await j.append("device-event", {"n": i})


async def test_edited_entry_is_found_by_open_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    await _journal_with(path, 5)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE entries SET body = ? WHERE seq = 3", (b'{"n":99}',))
    with pytest.raises(JournalCorruptError, match="seq 3"):
        await Journal.open(path)
    j = await Journal.open(path, check_tail=False)
    try:
        report = await j.verify()
        assert (report.ok, report.first_bad_seq) == (False, 3)
        with pytest.raises(JournalUnavailableError):
            await j.append("device-event", {})
    finally:
        await j.close()


async def test_missing_entry_is_reported_as_the_first_bad_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    await _journal_with(path, 5)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM entries WHERE seq = 2")
    j = await Journal.open(path, check_tail=False)
    try:
        report = await j.verify()
    finally:
        await j.close()
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "missing" in (report.problem or "")


async def test_failed_commit_fails_its_group_then_refuses_until_recovered(tmp_path: Path) -> None:
    connect, made = counting_connect()
    path = tmp_path / "j.db"
    async with await Journal.open(path, connect=connect) as j:
        await j.record_payment_intent(intent(1))
        made[0].fail_on.add(made[0].commits + 1)
        results = await asyncio.gather(
            *(j.record_payment_intent(intent(i)) for i in range(2, 6)), return_exceptions=True
        )
        assert all(isinstance(r, JournalWriteError) for r in results)
        with pytest.raises(JournalUnavailableError):
            await j.record_payment_intent(intent(9))
        assert (await j.head())[0] == 1
        await j.recover()
        # The retried payment keeps its payment_id and is stored exactly once.
        retried = await j.record_payment_intent(intent(2))
        assert retried.seq == 2
        assert (await j.verify()).ok
    async with await Journal.open(path) as j:
        assert [e.body["payment_id"] for e in await j.read(1, 10)] == [
            "pay-00000001",
            "pay-00000002",
        ]


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("disk I/O error"),
        sqlite3.OperationalError("database or disk is full"),
    ],
)
async def test_failed_write_stores_nothing_and_refuses_until_recovered(
    tmp_path: Path, error: Exception
) -> None:
    connect, made = counting_connect()
    async with await Journal.open(tmp_path / "j.db", connect=connect) as j:
        first = await j.record_payment_intent(intent(1))
        made[0].fail_writes = error
        with pytest.raises(JournalWriteError):
            await j.record_payment_intent(intent(2))
        with pytest.raises(JournalUnavailableError):
            await j.append("device-event", {})
        await j.recover()
        assert await j.read(1, 10) == [first]
        assert (await j.record_payment_intent(intent(2))).seq == 2


async def test_acknowledgement_by_another_process_releases_offline_limits(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    kiosk = await Journal.open(path, limits=OfflineLimits(payments_max=1))
    agent = await Journal.open(path)  # the sync agent's own handle on the same file
    try:
        first = await kiosk.record_payment_intent(intent(1))
        with pytest.raises(OfflineLimitError):
            await kiosk.record_payment_intent(intent(2))
        await agent.mark_acknowledged(first.seq, first.hash)
        assert (await kiosk.record_payment_intent(intent(2))).seq == 2
    finally:
        await agent.close()
        await kiosk.close()


async def test_second_writer_process_is_refused_not_forked(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    one = await Journal.open(path)
    two = await Journal.open(path)
    try:
        await one.append("device-event", {"n": 1})
        with pytest.raises(JournalCorruptError, match="one writer"):
            await two.append("device-event", {"n": 2})
        with pytest.raises(JournalUnavailableError):
            await two.append("device-event", {"n": 3})
        assert (await one.append("device-event", {"n": 4})).seq == 2
        assert (await one.verify()).ok
    finally:
        await two.close()
        await one.close()
