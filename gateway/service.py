"""What the gateway does, whatever protocol asked: check an account, take a payment.

Theory of operation
-------------------
:class:`PaymentService` knows nothing of HTTP, OSMP or JSON. Both front ends
call :meth:`~PaymentService.check` and :meth:`~PaymentService.pay` and map the
:mod:`gateway.errors` they raise to their own answers.

A **pay** for (agent, txn_id), whose payment_id is a pure function of the pair
(:func:`gateway.identifiers.payment_id_for`):

1. If the same payment_id is being processed right now, refuse at once with
   :class:`PaymentInFlightError` (OSMP 90, JSON 409): the first request will
   answer; the agent repeats and gets that answer.
2. Check the agent (may it pay?), the catalog (present? fresh enough to vouch
   for the account?), the account and the amount. If any of these refuses, look
   the payment up in the index first: a repeat of a payment accepted before is
   answered from its record, the same prv_txn, whatever the catalog or the
   limits say today (and a repeat with another account or amount is a
   conflict: refused, alarmed with a log line and a ``device-event`` in the
   journal, which reaches central; never a second payment).
3. Append the ``payment-intent`` and its ``payment-result`` (approved) to the
   journal together: they usually share one group commit. Both are durable when
   ``append`` returns. An identical repeat gets the stored entries back from
   the journal's own dedup (so an accepted request costs no index lookup); a
   different one gets a conflict, handled as in 2.
4. Answer; the index row is written right after (:meth:`_index_later`), and
   until it is, the record is kept in memory for repeats and lookups.

The agent's money moved before it called us (cash in the ATM, a card debit at
its bank), so there is no outcome to wait for: once the intent is durable the
payment is accepted. An intent left without its result by a crash is completed
at start-up (:meth:`PaymentService.start`); the agent's retry would get result
0 for it anyway.

Catalog and index reads run on one dedicated thread, batched like group commit
(:mod:`gateway.batching`), so the event loop never waits on the disk and a hop
is shared by every request that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from central_sync.catalog import model as cm
from central_sync.catalog.errors import CatalogError
from central_sync.catalog.store import CatalogStore
from central_sync.journal import (
    KIND_DEVICE_EVENT,
    EntryInvalidError,
    Journal,
    JournalBusyError,
    JournalClosedError,
    JournalConflictError,
    JournalCorruptError,
    JournalError,
    JournalUnavailableError,
    JournalWriteError,
    OfflineLimitError,
    PaymentIntent,
    PaymentResult,
)
from gateway.agents import Agent
from gateway.batching import BatchRunner
from gateway.errors import (
    AccountInactiveError,
    AccountNotFoundError,
    AmountTooLargeError,
    AmountTooSmallError,
    BadRequestError,
    CatalogStaleError,
    CatalogUnavailableError,
    OutcomeUnknownError,
    PaymentForbiddenError,
    PaymentInFlightError,
    PaymentNotFoundError,
    RetryLaterError,
    TechnicalRefusalError,
    TransactionConflictError,
)
from gateway.identifiers import payment_id_for
from gateway.index import GatewayIndex, PaymentRecord, record_from_entry
from gateway.osmp import txn_date_iso

__all__ = ["AccountInfo", "CatalogState", "PaymentService", "ServiceInfo"]

logger = logging.getLogger(__name__)
audit = logging.getLogger("lobbypay.gateway.audit")

CATALOG_STATUS_TTL_S: Final = 1.0
"""The catalog changes only when the sync agent applies a release; re-read its state this often."""
CATALOG_REOPEN_INTERVAL_S: Final = 5.0
ACCOUNT_CACHE_ENTRIES_MAX: Final = 4096
"""Accounts looked up recently (an ATM checks, then pays the same account), per catalog release."""
JOURNAL_RECOVER_INTERVAL_S: Final = 10.0
REGISTRY_WAIT_S: Final = 5.0
"""A registry waits this long at most for index rows of payments answered a moment ago."""
CURRENCY: Final = "RUB"

T = TypeVar("T")

# Refusals of a new payment that a repeat of an accepted one must not get.
_REFUSALS: Final = (
    PaymentForbiddenError,
    CatalogUnavailableError,
    CatalogStaleError,
    AccountNotFoundError,
    AccountInactiveError,
    AmountTooSmallError,
    AmountTooLargeError,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogState:
    """The local catalog as the gateway judges it."""

    available: bool
    version: int
    release_sha256: str
    published_at_ms: int
    age_s: float
    stale: bool
    """Older than ``gateway.catalog_age_max_s`` or past its expiry: no payments against it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceInfo:
    """One service of an account, as the agent may show it."""

    code: str
    name_ru: str
    name_en: str
    provider_id: str
    provider_name_ru: str
    provider_name_en: str
    debt_minor: int
    period: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInfo:
    """The answer to a check: the account with what is owed, and how fresh the data is."""

    account: str
    holder_ru: str
    holder_en: str
    address_ru: str
    address_en: str
    services: tuple[ServiceInfo, ...]
    debt_total_minor: int
    catalog: CatalogState


class _Catalog:
    """The read-only catalog store, reopened when it appears, with cached state and accounts.

    Only the lookup thread opens, reads and fills the caches. The event loop
    may read them (:meth:`cached_account`): plain dict reads, atomic under the
    GIL, so a recent account costs no thread hop at all.
    """

    def __init__(self, path: Path, age_max_s: int, clock_ms: Callable[[], int]) -> None:
        self.path = path
        self.age_max_s = age_max_s
        self.clock_ms = clock_ms
        self.store: CatalogStore | None = None
        self._state: CatalogState | None = None
        self._state_at = -1e9
        self._open_tried_at = -1e9
        # Keyed by release, so a new catalog never serves an old account.
        self._accounts: dict[tuple[str, str], AccountFacts | None] = {}

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def _open(self) -> CatalogStore | None:
        now = time.monotonic()
        if self.store is None and now - self._open_tried_at >= CATALOG_REOPEN_INTERVAL_S:
            self._open_tried_at = now
            try:
                self.store = CatalogStore.open(self.path, readonly=True)
            except CatalogError as exc:
                logger.warning(
                    "gateway_catalog_unavailable path=%s reason=%s", self.path, exc.reason
                )
        return self.store

    def fresh_state(self) -> CatalogState | None:
        """The cached state if it is recent enough to use (any thread), else None."""
        state = self._state
        if state is not None and time.monotonic() - self._state_at < CATALOG_STATUS_TTL_S:
            return state
        return None

    def state(self) -> CatalogState:
        """The catalog's state, re-read at most every CATALOG_STATUS_TTL_S (lookup thread)."""
        cached = self.fresh_state()
        if cached is not None:
            return cached
        store = self._open()
        state = CatalogState(
            available=False,
            version=0,
            release_sha256="",
            published_at_ms=0,
            age_s=0.0,
            stale=True,
        )
        if store is not None:
            try:
                status = store.status(self.clock_ms())
            except CatalogError as exc:
                logger.error("gateway_catalog_read_failed reason=%s", exc.reason)
            else:
                if status.version > 0:
                    state = CatalogState(
                        available=True,
                        version=status.version,
                        release_sha256=status.release_sha256,
                        published_at_ms=status.published_at_ms,
                        age_s=status.age_s,
                        stale=status.stale or status.age_s > self.age_max_s,
                    )
        self._state, self._state_at = state, time.monotonic()
        return state

    def cached_account(self, account: str) -> tuple[CatalogState, AccountFacts | None] | None:
        """A recent lookup of ``account`` if both it and the state are cached (any thread)."""
        state = self.fresh_state()
        if state is None or not state.available:
            return None
        key = (state.release_sha256, account)
        facts = self._accounts.get(key, _MISSING)
        if facts is _MISSING:
            return None
        return state, facts  # type: ignore[return-value]

    def account(self, account: str) -> tuple[CatalogState, AccountFacts | None]:
        """The account under the current catalog (lookup thread)."""
        state = self.state()
        if not state.available or self.store is None:
            raise CatalogUnavailableError("no local catalog: the account cannot be checked")
        key = (state.release_sha256, account)
        if key in self._accounts:
            return state, self._accounts[key]
        try:
            view = self.store.account(account)
        except CatalogError as exc:
            logger.error("gateway_catalog_read_failed reason=%s", exc.reason)
            raise CatalogUnavailableError("the local catalog cannot be read") from None
        facts = None if view is None else account_facts(view)
        # The release read here may be newer than ``state`` (applied in between);
        # only an account of the state's release is cached under its key.
        if view is None or view.catalog_version == state.version:
            if len(self._accounts) >= ACCOUNT_CACHE_ENTRIES_MAX:
                # Oldest first (dicts keep insertion order); only this thread writes.
                del self._accounts[next(iter(self._accounts))]
            self._accounts[key] = facts
        return state, facts


_MISSING: Final = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountFacts:
    """What the gateway needs of one account, computed once per catalog release."""

    account: str
    holder_ru: str
    holder_en: str
    address_ru: str
    address_en: str
    services: tuple[ServiceInfo, ...]
    debt_total_minor: int
    payment_min_minor: int
    """The smallest service minimum (a whole-account payment may go to that service)."""
    payment_max_minor: int
    """The sum of the services' maxima."""
    payable_max_minor: int
    """The sum over services of the debt plus the allowed overpayment."""

    def info(self, state: CatalogState) -> AccountInfo:
        return AccountInfo(
            account=self.account,
            holder_ru=self.holder_ru,
            holder_en=self.holder_en,
            address_ru=self.address_ru,
            address_en=self.address_en,
            services=self.services,
            debt_total_minor=self.debt_total_minor,
            catalog=state,
        )


def account_facts(view: cm.AccountView) -> AccountFacts:
    """The facts of an account view (see :func:`_check_amount` for the limits)."""
    a = view.account
    services = tuple(
        ServiceInfo(
            code=s.service.code,
            name_ru=s.service.name_ru,
            name_en=s.service.name_en,
            provider_id=s.service.provider.id,
            provider_name_ru=s.service.provider.name_ru,
            provider_name_en=s.service.provider.name_en,
            debt_minor=s.service.debt_minor,
            period=s.service.period,
        )
        for s in view.services
    )
    return AccountFacts(
        account=a.virtual_number,
        holder_ru=a.holder_name("ru"),
        holder_en=a.holder_name("en"),
        address_ru=a.address.format("ru"),
        address_en=a.address.format("en"),
        services=services,
        debt_total_minor=a.debt_total_minor,
        payment_min_minor=min((s.limits.payment_min_minor for s in view.services), default=0),
        payment_max_minor=sum(s.limits.payment_max_minor for s in view.services),
        payable_max_minor=sum(
            max(s.service.debt_minor, 0) + s.limits.overpayment_max_minor for s in view.services
        ),
    )


def _check_amount(agent: Agent, facts: AccountFacts, amount_minor: int) -> None:
    """Agent limits first, then the catalog's, for a payment to the whole account.

    A whole-account payment is split among its services by the billing center,
    so it is allowed when some split fits every service's limits: at least the
    smallest service minimum, at most the sum of the service maxima, and at most
    the sum of each service's debt plus its allowed overpayment.
    """
    if amount_minor < agent.amount_min_minor:
        raise AmountTooSmallError(
            f"amount is below the agent's minimum {agent.amount_min_minor}",
            limit_minor=agent.amount_min_minor,
        )
    if amount_minor > agent.amount_max_minor:
        raise AmountTooLargeError(
            f"amount is above the agent's maximum {agent.amount_max_minor}",
            limit_minor=agent.amount_max_minor,
        )
    low, high, allowed = facts.payment_min_minor, facts.payment_max_minor, facts.payable_max_minor
    if amount_minor < low:
        raise AmountTooSmallError(f"amount is below the service minimum {low}", limit_minor=low)
    if amount_minor > high:
        raise AmountTooLargeError(f"amount is above the service maximum {high}", limit_minor=high)
    if amount_minor > allowed:
        raise PaymentForbiddenError(
            f"the provider allows at most {allowed} (debt plus allowed overpayment)"
        )


class PaymentService:
    """Checks and payments against the catalog, the journal and the index."""

    def __init__(
        self,
        *,
        journal: Journal,
        index: GatewayIndex,
        catalog_path: Path,
        catalog_age_max_s: int,
        clock_ms: Callable[[], int],
    ) -> None:
        self.journal = journal
        self.index = index
        self.clock_ms = clock_ms
        self._catalog = _Catalog(catalog_path, catalog_age_max_s, clock_ms)
        self._lookups = BatchRunner("gateway-lookup")
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        # Payments whose request was cancelled after their journal append was
        # queued: finished in the background (see _complete_later).
        self._completing: dict[str, asyncio.Task[None]] = {}
        # Accepted (durable in the journal), index row not written yet.
        self._indexing: dict[str, PaymentRecord] = {}
        self._index_waiters: list[tuple[frozenset[str], asyncio.Future[None]]] = []
        self.pays_started = 0
        self.conflicts = 0
        self._seq_seen = 0
        self._recover_tried_at = -1e9
        self._recovering: asyncio.Task[None] | None = None
        self._write_fault = False

    async def _lookup(self, fn: Callable[[], T]) -> T:
        return await self._lookups.run(fn)

    # -- life cycle --

    async def start(self) -> None:
        """Bring the index up to the journal; complete gateway intents left without a result."""
        await self.index.catch_up(self.journal)
        self._seq_seen, _ = await self.journal.head()
        for entry in await self.journal.outcome_unknown():
            if entry.body.get("channel") != "gateway":
                continue
            payment_id = str(entry.body["payment_id"])
            await self.journal.record_payment_result(
                PaymentResult(payment_id=payment_id, outcome="approved")
            )
            logger.warning("gateway_intent_completed payment_id=%s seq=%d", payment_id, entry.seq)

    @property
    def pays_in_flight(self) -> int:
        """Payments between their first check and their index row."""
        return len(self._in_flight) + len(self._indexing)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no payment is in flight (graceful shutdown); False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._in_flight or self._indexing:
                    if self._in_flight:
                        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
                    else:
                        await self._indexed()
        except TimeoutError:
            return False
        return True

    async def _indexed(self) -> None:
        """Wait until the payments accepted so far have their index rows (not later ones)."""
        pending = frozenset(self._indexing)
        if not pending:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._index_waiters.append((pending, future))
        try:
            await future
        finally:
            self._index_waiters = [w for w in self._index_waiters if w[1] is not future]

    def _wake_index_waiters(self) -> None:
        for pending, future in self._index_waiters:
            if not future.done() and pending.isdisjoint(self._indexing):
                future.set_result(None)

    async def advance_watermark(self) -> bool:
        """Move the index watermark to the journal head if no payment is between the two.

        Rigorous without a lock: a payment counts as started before its journal
        append, and it is in ``_in_flight`` or ``_indexing`` until its index row
        is written, so if neither holds anything and nothing started while we
        read the head, every gateway intent up to the head is in the index.
        """
        if self.pays_in_flight or self.index.write_failed:
            return False
        started = self.pays_started
        head_seq, head_hash = await self.journal.head()
        if self.pays_in_flight or self.pays_started != started or self.index.write_failed:
            return False
        await self.index.set_watermark(head_seq, head_hash)
        return True

    async def close(self) -> None:
        await self._lookups.close(final=self._catalog.close)
        if self._recovering is not None:
            with contextlib.suppress(Exception):
                await self._recovering

    # -- queries --

    async def _account(self, account: str) -> tuple[CatalogState, AccountFacts | None]:
        cached = self._catalog.cached_account(account)
        if cached is not None:
            return cached
        return await self._lookup(lambda: self._catalog.account(account))

    async def check(self, agent: Agent, account: str, amount_minor: int | None) -> AccountInfo:
        """The account's services and debts; with a positive amount, whether it could be paid."""
        state, facts = await self._account(account)
        if facts is None:
            raise AccountNotFoundError("account not found")
        if not facts.services:
            raise AccountInactiveError("account has no service that takes payments")
        if amount_minor:
            _check_amount(agent, facts, amount_minor)
        return facts.info(state)

    async def get_payment(self, agent: Agent, payment_id: str) -> PaymentRecord:
        record = self._indexing.get(payment_id) or await self._lookup(
            lambda: self.index.get(payment_id)
        )
        if record is None or record.agent != agent.id:
            raise PaymentNotFoundError("no such payment for this agent")
        return record

    async def registry(self, agent: Agent, day: str) -> list[PaymentRecord]:
        """This agent's payments of one day, every payment answered so far included."""
        async with asyncio.timeout(REGISTRY_WAIT_S):
            await self._indexed()
        return await asyncio.to_thread(self.index.registry, agent.id, day)

    # -- payments --

    async def pay(
        self,
        agent: Agent,
        *,
        txn_id: str,
        account: str,
        amount_minor: int,
        protocol: str,
        txn_date: str | None = None,
    ) -> tuple[PaymentRecord, bool]:
        """Accept a payment, or return the one accepted before; (record, was_repeat)."""
        payment_id = payment_id_for(agent.id, txn_id)
        if payment_id in self._in_flight:
            raise PaymentInFlightError("a request with this transaction id is being processed")
        accepted = self._indexing.get(payment_id)
        if accepted is not None:  # answered a moment ago; its index row is on its way
            if not self._same(accepted, account, amount_minor):
                raise await self._conflict(agent, payment_id, txn_id)
            return accepted, True
        self.pays_started += 1
        flight: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[payment_id] = flight
        try:
            return await self._pay(
                agent,
                payment_id=payment_id,
                txn_id=txn_id,
                account=account,
                amount_minor=amount_minor,
                protocol=protocol,
                txn_date=txn_date,
            )
        finally:
            # A payment cancelled after its journal append was queued is finished
            # by _complete_later, which then ends its flight itself.
            if payment_id not in self._completing:
                self._land(payment_id, flight)

    def _land(self, payment_id: str, flight: asyncio.Future[None]) -> None:
        if self._in_flight.get(payment_id) is flight:
            del self._in_flight[payment_id]
        if not flight.done():
            flight.set_result(None)

    def _same(self, record: PaymentRecord, account: str, amount_minor: int) -> bool:
        return (record.account, record.amount_minor, record.currency) == (
            account,
            amount_minor,
            CURRENCY,
        )

    async def _conflict(
        self, agent: Agent, payment_id: str, txn_id: str
    ) -> TransactionConflictError:
        self.conflicts += 1
        audit.error(
            "gateway_alarm kind=txn-conflict agent=%s txn_id=%s payment_id=%s",
            agent.id,
            txn_id,
            payment_id,
        )
        try:
            await self.journal.append(
                KIND_DEVICE_EVENT,
                {
                    "event": "gateway-txn-conflict",
                    "agent": agent.id,
                    "txn_id": txn_id,
                    "payment_id": payment_id,
                    "ts_ms": self.clock_ms(),
                },
            )
        except JournalError as exc:
            logger.error("gateway_alarm_not_journaled payment_id=%s error=%s", payment_id, exc)
        return TransactionConflictError(
            "this transaction id was used before with another account or amount; refused"
        )

    async def _pay(
        self,
        agent: Agent,
        *,
        payment_id: str,
        txn_id: str,
        account: str,
        amount_minor: int,
        protocol: str,
        txn_date: str | None,
    ) -> tuple[PaymentRecord, bool]:
        try:
            if not agent.allow_pay:
                raise PaymentForbiddenError("this agent may check accounts but not pay")
            state, facts = await self._account(account)
            if state.stale:
                raise CatalogStaleError(
                    "the local catalog is too old to accept payments; retry later",
                    reason="catalog-stale",
                )
            if facts is None:
                raise AccountNotFoundError("account not found")
            if not facts.services:
                raise AccountInactiveError("account has no service that takes payments")
            _check_amount(agent, facts, amount_minor)
        except _REFUSALS:
            # A repeat of a payment accepted before is answered from what was
            # stored, whatever the catalog or the limits say today. Only a
            # refused request pays for this lookup: an accepted one finds its
            # earlier self through the journal's own dedup below.
            existing = await self._lookup(lambda: self.index.get(payment_id))
            if existing is None:
                raise
            if not self._same(existing, account, amount_minor):
                raise await self._conflict(agent, payment_id, txn_id) from None
            return existing, True
        seen_before = self._seq_seen

        extra: dict[str, Any] = {"agent": agent.id, "txn_id": txn_id, "protocol": protocol}
        if txn_date is not None:
            extra["txn_date"] = txn_date_iso(txn_date)
        intent = PaymentIntent(
            payment_id=payment_id,
            amount_minor=amount_minor,
            currency=CURRENCY,
            account=account,
            channel="gateway",
            extra=extra,
        )
        result = PaymentResult(payment_id=payment_id, outcome="approved")
        # The result's task starts on the next turn of the loop, while awaiting the
        # intent's append queues the intent at once: the intent is queued first
        # and the two usually share one group commit (one fsync).
        result_task = asyncio.get_running_loop().create_task(
            self.journal.record_payment_result(result)
        )
        try:
            intent_outcome = await self.journal.record_payment_intent(intent)
        except JournalConflictError:
            await asyncio.gather(result_task, return_exceptions=True)
            return await self._after_journal_conflict(
                agent, payment_id, txn_id, account, amount_minor
            )
        except JournalError as exc:
            await asyncio.gather(result_task, return_exceptions=True)
            raise self._journal_refusal(exc) from None
        except asyncio.CancelledError:
            self._complete_later(payment_id, intent, result)
            raise
        try:
            await result_task
        except JournalError as exc:
            # The intent is durable, its result is not: the payment is accepted
            # (start() completes it after a crash), but say so only once both are.
            raise self._journal_refusal(exc) from None
        except asyncio.CancelledError:
            self._complete_later(payment_id, intent, result)
            raise
        record = record_from_entry(intent_outcome, self.index.tz)
        assert record is not None
        self._seq_seen = max(self._seq_seen, record.seq)
        self._index_later(record)
        # The journal returns the stored intent for an identical repeat. It is
        # a repeat exactly when its seq is one we had seen before this request
        # began: an earlier acceptance of the same payment_id finished (it is
        # not in flight) after raising _seq_seen to its seq, or happened before
        # start(), which set _seq_seen to the journal's head.
        return record, record.seq <= seen_before

    def _complete_later(
        self, payment_id: str, intent: PaymentIntent, result: PaymentResult
    ) -> None:
        """Finish a payment whose request was cancelled (client gone, timeout, shutdown).

        Its appends were already queued, so the journal commits them whatever
        happens to the request; this task appends them again (the journal
        returns the stored entries: nothing is written twice), indexes the
        payment and only then ends its flight, so repeats keep getting 90
        until it is settled and the watermark rule holds. No task is spent on
        the common path, where the request is not cancelled.
        """
        flight = self._in_flight[payment_id]

        async def complete() -> None:
            try:
                entry = await self.journal.record_payment_intent(intent)
                await self.journal.record_payment_result(result)
            except JournalError as exc:
                logger.error("gateway_pay_not_completed payment_id=%s error=%s", payment_id, exc)
            else:
                record = record_from_entry(entry, self.index.tz)
                assert record is not None
                self._seq_seen = max(self._seq_seen, record.seq)
                self._index_later(record)
            finally:
                del self._completing[payment_id]
                self._land(payment_id, flight)

        self._completing[payment_id] = asyncio.get_running_loop().create_task(complete())

    def _index_later(self, record: PaymentRecord) -> None:
        """Write the index row after answering: the journal entry is what makes it durable.

        The payment moves from ``_in_flight`` to ``_indexing`` before its pay
        task ends, so the watermark rule still holds, and a repeat or a lookup
        in the meantime is answered from ``_indexing``.
        """
        self._indexing[record.payment_id] = record

        def written(ok: bool) -> None:
            if not ok:
                logger.error(
                    "gateway_index_lagging payment_id=%s seq=%d", record.payment_id, record.seq
                )
            self._indexing.pop(record.payment_id, None)
            if self._index_waiters:
                self._wake_index_waiters()

        self.index.add_later(record, written)

    async def _after_journal_conflict(
        self, agent: Agent, payment_id: str, txn_id: str, account: str, amount_minor: int
    ) -> tuple[PaymentRecord, bool]:
        """The journal holds this payment_id with another body, or archived it (pruned)."""
        entries = await self.journal.find_payment(payment_id)
        intent = entries.get("payment-intent")
        record = None if intent is None else record_from_entry(intent, self.index.tz)
        if record is None:
            # Pruned from the journal after central acknowledged it: the index remembers.
            record = await self._lookup(lambda: self.index.get(payment_id))
        if record is not None and self._same(record, account, amount_minor):
            await self.index.add(record)
            return record, True
        raise await self._conflict(agent, payment_id, txn_id)

    def _journal_refusal(self, exc: BaseException) -> Exception:
        if isinstance(exc, OfflineLimitError):
            return TechnicalRefusalError(
                f"offline limit reached ({exc.limit}); payments resume after the next sync",
                reason=f"offline-limit-{exc.limit}",
            )
        if isinstance(exc, JournalBusyError):
            return RetryLaterError("the journal is busy; retry later", reason="journal-busy")
        if isinstance(exc, JournalClosedError):
            return RetryLaterError("the gateway is shutting down; retry later", reason="closing")
        if isinstance(exc, JournalWriteError):
            self._write_fault = True
            self._schedule_recover()
            return OutcomeUnknownError(
                "the payment may not have been stored; repeat the same request"
            )
        if isinstance(exc, JournalUnavailableError):
            # Recover only from our own write failures (a full disk freed, an
            # I/O error gone). A journal that stopped because another process
            # wrote to it stays stopped until someone stops that process.
            if self._write_fault:
                self._schedule_recover()
            return TechnicalRefusalError(
                "the journal refuses writes after a storage fault", reason="journal-fault"
            )
        if isinstance(exc, JournalCorruptError):
            logger.error("gateway_journal_refused error=%s", exc)
            return TechnicalRefusalError(f"journal refused: {exc}", reason="journal-corrupt")
        if isinstance(exc, EntryInvalidError):
            return BadRequestError(f"the payment cannot be recorded: {exc}")
        if isinstance(exc, JournalError):
            return TechnicalRefusalError(f"journal error: {exc}", reason="journal")
        raise exc

    def _schedule_recover(self) -> None:
        """Try :meth:`Journal.recover` in the background, at most every few seconds."""
        now = time.monotonic()
        if self._recovering is not None and not self._recovering.done():
            return
        if now - self._recover_tried_at < JOURNAL_RECOVER_INTERVAL_S:
            return
        self._recover_tried_at = now

        async def recover() -> None:
            try:
                await self.journal.recover()
            except JournalError as exc:
                logger.error("gateway_journal_recover_failed error=%s", exc)
            else:
                self._write_fault = False

        self._recovering = asyncio.get_running_loop().create_task(recover())
