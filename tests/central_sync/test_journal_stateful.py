"""A Hypothesis stateful model of the journal.

Rules: append (alone and concurrently), payment intents and results with
reused payment_ids, crash (abandon the process state without closing), reopen,
mark sent, acknowledge, prune. Invariants: nothing returned is lost, the chain
verifies, seqs are contiguous and unique, a payment_id is stored once.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from central_sync.journal import (
    EntryState,
    Journal,
    JournalConflictError,
    PaymentIntent,
    PaymentResult,
)


class JournalModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="journal-model-"))
        self.path = self.dir / "journal.db"
        self.loop = asyncio.new_event_loop()
        self.now_ms = 1_700_000_000_000
        self.journal = self._open()
        self.returned: dict[int, bytes] = {}  # seq -> hash of every append that returned
        self.payments: dict[str, int] = {}  # payment_id -> amount of its stored intent
        self.intent_seq: dict[str, int] = {}
        self.results: set[str] = set()
        self.acked = 0
        self.anchor = 0

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def _open(self) -> Journal:
        return self._run(Journal.open(self.path, clock_ms=lambda: self.now_ms))

    def teardown(self) -> None:
        self._run(self.journal.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _remember(self, entries: list[Any]) -> None:
        for entry in entries:
            assert self.returned.setdefault(entry.seq, entry.hash) == entry.hash

    @rule(n=st.integers(min_value=1, max_value=12))
    def append_concurrently(self, n: int) -> None:
        self.now_ms += 1000

        async def appends() -> list[Any]:
            return await asyncio.gather(
                *(self.journal.append("device-event", {"i": i}) for i in range(n))
            )

        entries = self._run(appends())
        assert len({e.seq for e in entries}) == n
        self._remember(entries)

    @rule(pid=st.integers(min_value=0, max_value=20), amount=st.integers(1, 3))
    def pay(self, pid: int, amount: int) -> None:
        payment_id = f"pay-{pid:08d}"
        intent = PaymentIntent(
            payment_id=payment_id,
            amount_minor=amount,
            currency="RUB",
            account="1000000017",
            channel="kiosk",
        )
        try:
            entry = self._run(self.journal.record_payment_intent(intent))
        except JournalConflictError:
            # A different body, or a payment archived after central acknowledged it.
            assert self.payments[payment_id] != amount or self._archived(payment_id)
            return
        assert not self._archived(payment_id)
        assert self.payments.setdefault(payment_id, amount) == amount
        assert self.intent_seq.setdefault(payment_id, entry.seq) == entry.seq
        self._remember([entry])

    def _archived(self, payment_id: str) -> bool:
        return self.intent_seq.get(payment_id, self.anchor + 1) <= self.anchor

    def _open_payments(self) -> list[str]:
        return sorted(p for p in set(self.payments) - self.results if not self._archived(p))

    @precondition(lambda self: bool(self._open_payments()))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        payment_id = data.draw(st.sampled_from(self._open_payments()))
        outcome = data.draw(st.sampled_from(["approved", "declined"]))
        entry = self._run(
            self.journal.record_payment_result(
                PaymentResult(payment_id=payment_id, outcome=outcome)
            )
        )
        self.results.add(payment_id)
        self._remember([entry])

    @rule()
    def crash_and_reopen(self) -> None:
        # Drop the journal without its orderly close: the writer task is
        # cancelled and the file handle dropped. (A real SIGKILL is in
        # test_journal_crash.py.)
        old = self.journal
        old._closed = True
        assert old._writer is not None
        old._writer.cancel()
        self._run(asyncio.gather(old._writer, return_exceptions=True))
        old._executor.submit(old._close_sync).result()
        old._executor.shutdown(wait=True)
        self.journal = self._open()

    @rule()
    def reopen(self) -> None:
        self._run(self.journal.close())
        self.journal = self._open()

    @precondition(lambda self: bool(self.returned))
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        head = max(self.returned)
        seq = data.draw(st.integers(min_value=max(1, self.anchor + 1), max_value=head))
        self._run(self.journal.mark_sent(head))
        self._run(self.journal.mark_acknowledged(seq, self.returned[seq]))
        self.acked = max(self.acked, seq)

    @rule()
    def prune(self) -> None:
        self.now_ms += 1000
        self._run(self.journal.prune(self.now_ms))
        report = self._run(self.journal.verify())
        self.anchor = report.anchor_seq
        assert self.anchor <= self.acked

    @invariant()
    def nothing_returned_is_lost_and_chain_verifies(self) -> None:
        report = self._run(self.journal.verify())
        assert report.ok, report
        head, head_hash = self._run(self.journal.head())
        assert head == (max(self.returned) if self.returned else 0)
        if self.returned:
            assert head_hash == self.returned[head]
        entries = self._run(self.journal.read(self.anchor + 1, 10_000)) if head else []
        assert [e.seq for e in entries] == list(range(self.anchor + 1, head + 1))
        for entry in entries:
            assert self.returned[entry.seq] == entry.hash
            expected = EntryState.ACKNOWLEDGED if entry.seq <= self.acked else None
            if expected is not None:
                assert entry.state is expected
        ids = [e.body["payment_id"] for e in entries if e.kind == "payment-intent"]
        assert len(ids) == len(set(ids))
        assert self._run(self.journal.acknowledged_through()) == self.acked
        # The money at risk kept incrementally equals a recount from disk.
        stats = self._run(self.journal.stats())
        kept = self.journal._exposure
        assert kept.count == stats.stored_payments
        assert {c: a for c, a in kept.amount_by_currency.items() if a} == {
            c: a for c, a in stats.pending_amount_minor_by_currency.items() if a
        }


JournalModel.TestCase.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)
test_journal_model = JournalModel.TestCase
