"""Batch ingest: the central ledger's side of the upload (DESIGN.md, "The signed sync protocol").

Theory of operation
-------------------
For each uploaded batch, storage-agnostic:

1. :func:`protocol.open_batch` decompresses (bomb-bounded) and decodes; anything
   unacceptable becomes a ``rejected`` / ``too-large`` refusal.
2. The claimed terminal's record gives its enrolled key; unknown -> ``unknown-terminal``.
3. The batch is verified against that key (signature, chain, summary).
4. Inside one ledger transaction, with the terminal's row locked
   (``SELECT ... FOR UPDATE`` in PostgreSQL, the single writer in SQLite):

   ==========================================  ================================
   condition (head = central's stored head)    outcome
   ==========================================  ================================
   terminal revoked / quarantined              refusal, nothing applied
   from_seq > head + 1                         ``gap``, expected_seq = head + 1
   a hash in the overlap differs from stored   fork: quarantine + alarm, refusal
   to_seq <= head (all already applied)        ack of head, nothing applied
   otherwise                                   apply seqs head+1..to_seq, ack
   ==========================================  ================================

   The overlap is every seq of the batch that central already holds, plus
   ``from_seq - 1`` (the batch's ``prev_hash``); so a re-sent or overlapping batch
   is idempotent, and one that disagrees with history is a fork.
5. After the commit, the ack is signed. A refusal is signed too, and names the
   SHA-256 of the request it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from central_sync import protocol
from central_sync.central.errors import StorageError
from central_sync.central.storage import (
    ApplyPlan,
    DuplicateRow,
    EntryRow,
    LedgerTransaction,
    MeterRow,
    PaymentRow,
    ResultRow,
    ReversalRow,
    Storage,
    TerminalRecord,
    TerminalState,
)
from central_sync.journal import (
    KIND_METER_READING,
    KIND_PAYMENT_INTENT,
    KIND_PAYMENT_RESULT,
    KIND_REVERSAL,
)
from central_sync.protocol import Refusal, RefusalKind, Signer, VerifiedBatch, VerifiedEntry

logger = logging.getLogger(__name__)

# Batches bigger than this are verified in a worker thread, so one large upload
# does not stall the event loop (heartbeats, other terminals) for its whole check.
VERIFY_INLINE_BYTES_MAX = 64 * 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """What central answered to one upload."""

    answer: bytes
    """The signed ack or refusal, the HTTP response body."""
    ack: protocol.Ack | None
    refusal: Refusal | None
    terminal_id: str | None
    applied: int
    """Entries newly applied by this upload."""
    duplicates: tuple[DuplicateRow, ...] = ()

    def __post_init__(self) -> None:
        assert (self.ack is None) != (self.refusal is None)


def build_plan(
    terminal: TerminalRecord, batch: VerifiedBatch, new: Sequence[VerifiedEntry], now_ms: int
) -> ApplyPlan:
    """Turn the not-yet-applied entries of a verified batch into rows (pure).

    Within the batch, a second intent with a payment_id or (agent, txn_id) seen
    earlier in it is a duplicate; a result whose intent is in the batch is merged
    into the payment row. Duplicates against what is already stored are found by
    the storage, under its unique constraints. Optional text fields of a result
    that are not strings are stored as NULL.

    Runs once per entry of every upload: rows are built with ``tuple.__new__``
    (a NamedTuple's own ``__new__`` is a Python function, several times slower).
    """
    tk = terminal.key
    new_row = tuple.__new__
    entries: list[EntryRow] = []
    add_entry = entries.append
    payments: dict[str, PaymentRow] = {}
    pairs: dict[tuple[str, str], str] = {}
    duplicate_intents: dict[str, tuple[str, str]] = {}
    results: list[ResultRow] = []
    reversals: list[ReversalRow] = []
    meters: list[MeterRow] = []
    duplicates: list[DuplicateRow] = []
    for seq, kind, ts_ms, body, digest, encoded in new:
        add_entry(new_row(EntryRow, (tk, seq, kind, ts_ms, digest, encoded)))
        if kind == KIND_PAYMENT_INTENT:
            payment_id = body["payment_id"]
            agent = body.get("agent")
            txn_id = body.get("txn_id")
            pair: tuple[str, str] | None = None if agent is None else (agent, body["txn_id"])
            if payment_id in payments or payment_id in duplicate_intents:
                reason, existing = "payment_id", payment_id
            elif pair is not None and pair in pairs:
                reason, existing = "agent_txn_id", pairs[pair]
            else:
                payments[payment_id] = new_row(
                    PaymentRow,
                    (
                        payment_id,
                        tk,
                        seq,
                        ts_ms,
                        body["amount_minor"],
                        body["currency"],
                        body["account"],
                        body.get("channel") or "",
                        agent,
                        txn_id,
                        body.get("surcharge_minor") or 0,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                    ),
                )
                if pair is not None:
                    pairs[pair] = payment_id
                continue
            duplicate_intents.setdefault(payment_id, (reason, existing))
            duplicates.append(DuplicateRow(seq, kind, payment_id, agent, txn_id, reason, existing))
        elif kind == KIND_PAYMENT_RESULT:
            payment_id = body["payment_id"]
            auth_code, rrn = body.get("auth_code"), body.get("rrn")
            masked_pan, card_brand = body.get("masked_pan"), body.get("card_brand")
            fields = (
                auth_code if type(auth_code) is str else None,
                rrn if type(rrn) is str else None,
                masked_pan if type(masked_pan) is str else None,
                card_brand if type(card_brand) is str else None,
                body.get("offline") is True,
            )
            payment = payments.get(payment_id)
            if payment is not None:
                if payment.result_seq is None:
                    # The intent's 11 columns, then outcome, result_seq,
                    # result_ts_ms and the result's fields, in table order.
                    payments[payment_id] = new_row(
                        PaymentRow, (*payment[:11], body["outcome"], seq, ts_ms, *fields)
                    )
                else:
                    duplicates.append(
                        DuplicateRow(
                            seq,
                            kind,
                            payment_id,
                            payment.agent,
                            payment.txn_id,
                            "result-exists",
                            payment_id,
                        )
                    )
            elif payment_id in duplicate_intents:
                reason, existing = duplicate_intents[payment_id]
                duplicates.append(DuplicateRow(seq, kind, payment_id, None, None, reason, existing))
            else:
                results.append(ResultRow(payment_id, seq, ts_ms, body["outcome"], *fields))
        elif kind == KIND_REVERSAL:
            reversals.append(
                ReversalRow(body["payment_id"], seq, ts_ms, str(body.get("reason") or ""))
            )
        elif kind == KIND_METER_READING:
            meters.append(
                MeterRow(
                    tk,
                    seq,
                    ts_ms,
                    body["account"],
                    body["meter_id"],
                    body["value"],
                    body["reading_ts_ms"],
                )
            )
    return ApplyPlan(
        terminal_key=tk,
        terminal_id=terminal.terminal_id,
        from_seq=new[0].seq,
        entries=entries,
        payments=list(payments.values()),
        results=results,
        reversals=reversals,
        meter_readings=meters,
        duplicates=duplicates,
        head_seq=batch.to_seq,
        head_hash=batch.head_hash,
        now_ms=now_ms,
        wire_bytes=batch.wire_bytes,
    )


def find_fork(
    terminal: TerminalRecord, batch: VerifiedBatch, stored: dict[int, bytes]
) -> tuple[int, bytes, bytes] | None:
    """The first seq where the batch disagrees with stored history: (seq, stored, received)."""
    low = batch.from_seq - 1
    high = min(batch.to_seq, terminal.head_seq)
    for seq in range(max(low, 1), high + 1):
        received = batch.prev_hash if seq == low else batch.entries[seq - batch.from_seq].hash
        held = terminal.head_hash if seq == terminal.head_seq else stored.get(seq)
        if held is None:
            # Central never prunes entries; a hole is our own bug, not the terminal's.
            raise StorageError(f"central lacks stored entry {seq} of {terminal.terminal_id}")
        if held != received:
            return seq, held, received
    return None


class Ingestor:
    """Applies uploaded batches to a :class:`Storage` and signs the answers."""

    def __init__(
        self,
        storage: Storage,
        *,
        signer: Signer,
        limits: protocol.BatchLimits = protocol.DEFAULT_LIMITS,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.storage = storage
        self.signer = signer
        self.limits = limits
        self.clock_ms = clock_ms

    def refuse(
        self,
        kind: RefusalKind,
        terminal_id: str | None,
        reason: str,
        message: str,
        request: bytes,
        *,
        expected_seq: int | None = None,
    ) -> IngestResult:
        refusal = Refusal(
            kind=kind,
            terminal_id=terminal_id,
            reason=reason,
            message=message[:2000],
            central_time_ms=self.clock_ms(),
            expected_seq=expected_seq,
            request_sha256=protocol.request_digest(request),
        )
        logger.info(
            "batch_refused terminal_id=%s kind=%s reason=%s", terminal_id, kind.value, reason
        )
        return IngestResult(
            answer=protocol.build_refusal(refusal, self.signer),
            ack=None,
            refusal=refusal,
            terminal_id=terminal_id,
            applied=0,
        )

    def _ack(
        self,
        terminal_id: str,
        seq: int,
        head_hash: bytes,
        applied: int,
        duplicates: Sequence[DuplicateRow],
    ) -> IngestResult:
        now = self.clock_ms()
        answer = protocol.build_ack(terminal_id, seq, head_hash, now, self.signer)
        ack = protocol.Ack(
            terminal_id=terminal_id, acked_seq=seq, head_hash=head_hash, central_time_ms=now
        )
        return IngestResult(
            answer=answer,
            ack=ack,
            refusal=None,
            terminal_id=terminal_id,
            applied=applied,
            duplicates=tuple(duplicates),
        )

    async def ingest(self, data: bytes, *, claimed_terminal_id: str | None = None) -> IngestResult:
        """Verify and apply one uploaded batch; never raises for bad input.

        ``claimed_terminal_id`` is who the transport says is sending (a header);
        a batch signed for another terminal is then refused, so one terminal
        cannot replay another's batches through its own connection.
        """
        try:
            envelope = protocol.open_batch(data, limits=self.limits)
        except protocol.TooLargeError as exc:
            return self.refuse(
                RefusalKind.TOO_LARGE, claimed_terminal_id, exc.reason, str(exc), data
            )
        except protocol.SyncProtocolError as exc:
            return self.refuse(
                RefusalKind.REJECTED, claimed_terminal_id, exc.reason, str(exc), data
            )
        terminal_id = envelope.terminal_id
        if claimed_terminal_id is not None and claimed_terminal_id != terminal_id:
            return self.refuse(
                RefusalKind.REJECTED,
                claimed_terminal_id,
                "wrong-terminal",
                "the batch is signed for another terminal",
                data,
            )
        try:
            return await self._ingest(envelope, data)
        except StorageError as exc:
            logger.warning("batch_storage_error terminal_id=%s error=%s", terminal_id, exc)
            return self.refuse(
                RefusalKind.RETRY_LATER,
                terminal_id,
                exc.code,
                "central storage is unavailable",
                data,
            )

    async def _ingest(self, envelope: protocol.BatchEnvelope, data: bytes) -> IngestResult:
        terminal_id = envelope.terminal_id
        terminal = await self.storage.get_terminal(terminal_id)
        if terminal is None:
            return self.refuse(
                RefusalKind.UNKNOWN_TERMINAL,
                terminal_id,
                "unknown-terminal",
                "no terminal of that id is enrolled",
                data,
            )
        try:
            if len(data) > VERIFY_INLINE_BYTES_MAX:
                batch = await asyncio.to_thread(envelope.verify, terminal.public_key)
            else:
                batch = envelope.verify(terminal.public_key)
        except protocol.TooLargeError as exc:
            return self.refuse(RefusalKind.TOO_LARGE, terminal_id, exc.reason, str(exc), data)
        except protocol.SyncProtocolError as exc:
            return self.refuse(RefusalKind.REJECTED, terminal_id, exc.reason, str(exc), data)
        refusal = self._state_refusal(terminal, data)
        if refusal is not None:
            return refusal
        async with self.storage.ledger_transaction() as tx:
            outcome = await self._apply_locked(tx, batch, data)
        if isinstance(outcome, IngestResult):
            return outcome
        # Signed only now, after the commit: an ack never promises uncommitted entries.
        return self._ack(batch.terminal_id, *outcome)

    def _state_refusal(self, terminal: TerminalRecord, data: bytes) -> IngestResult | None:
        if terminal.state is TerminalState.REVOKED:
            return self.refuse(
                RefusalKind.REVOKED,
                terminal.terminal_id,
                "revoked",
                "the terminal is revoked",
                data,
            )
        if terminal.state is TerminalState.QUARANTINED:
            return self.refuse(
                RefusalKind.QUARANTINED,
                terminal.terminal_id,
                terminal.state_reason or "quarantined",
                "the terminal is quarantined",
                data,
            )
        return None

    async def _apply_locked(
        self, tx: LedgerTransaction, batch: VerifiedBatch, data: bytes
    ) -> IngestResult | tuple[int, bytes, int, Sequence[DuplicateRow]]:
        """A refusal, or (acked seq, head hash, entries applied, duplicates) to ack."""
        terminal = await tx.lock_terminal(batch.terminal_id)
        if terminal is None:  # deleted between the read and the lock: treat as unknown
            return self.refuse(
                RefusalKind.UNKNOWN_TERMINAL,
                batch.terminal_id,
                "unknown-terminal",
                "no terminal of that id is enrolled",
                data,
            )
        refusal = self._state_refusal(terminal, data)
        if refusal is not None:
            return refusal
        head = terminal.head_seq
        if batch.from_seq > head + 1:
            return self.refuse(
                RefusalKind.GAP,
                terminal.terminal_id,
                "gap",
                f"central holds entries through {head}; send from {head + 1}",
                data,
                expected_seq=head + 1,
            )
        low = max(batch.from_seq - 1, 1)
        high = min(batch.to_seq, head - 1)  # the head's hash is in the terminal row
        stored = await tx.stored_hashes(terminal.key, low, high) if low <= high else {}
        fork = find_fork(terminal, batch, stored)
        now = self.clock_ms()
        if fork is not None:
            seq, held, received = fork
            detail = {
                "seq": seq,
                "stored_hash": held.hex(),
                "received_hash": received.hex(),
                "batch_from_seq": batch.from_seq,
                "batch_to_seq": batch.to_seq,
            }
            await tx.quarantine(
                terminal.key, reason="fork", alarm_kind="fork", detail=detail, now_ms=now
            )
            logger.error("terminal_fork terminal_id=%s seq=%d", terminal.terminal_id, seq)
            return self.refuse(
                RefusalKind.QUARANTINED,
                terminal.terminal_id,
                "fork",
                f"entry {seq} differs from the one central holds; terminal quarantined",
                data,
            )
        if batch.to_seq <= head:
            await tx.log_batch(
                terminal.key,
                from_seq=batch.from_seq,
                to_seq=batch.to_seq,
                applied=0,
                outcome="already-applied",
                wire_bytes=batch.wire_bytes,
                now_ms=now,
            )
            return head, terminal.head_hash, 0, ()
        new = batch.entries[head + 1 - batch.from_seq :]
        plan = build_plan(terminal, batch, new, now)
        duplicates = await tx.apply(plan)
        if duplicates:
            logger.warning(
                "payment_duplicates terminal_id=%s count=%d", terminal.terminal_id, len(duplicates)
            )
        return batch.to_seq, batch.head_hash, len(new), duplicates
