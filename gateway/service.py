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
2. Look it up in the index. If it was accepted before, answer from the record:
   the same prv_txn, whatever the catalog or the limits say today. If the
   account, amount or currency differ, it is a conflict: refused, alarmed (a log
   line and a ``device-event`` in the journal, which reaches central), never a
   second payment.
3. Otherwise check the agent (may it pay?), the catalog (present? fresh enough
   to vouch for the account?), the account and the amount.
4. Append the ``payment-intent`` and its ``payment-result`` (approved) to the
   journal together: they usually share one group commit. Both are durable when
   ``append`` returns. Should the index lag behind the journal, the journal's
   own dedup still returns the stored entry for an identical repeat, and a
   conflict for a different one.
5. Add the row to the index, then answer.

The agent's money moved before it called us (cash in the ATM, a card debit at
its bank), so there is no outcome to wait for: once the intent is durable the
payment is accepted. An intent left without its result by a crash is completed
at start-up (:meth:`PaymentService.start`); the agent's retry would get result
0 for it anyway.

Catalog and index reads run on one dedicated thread, one hop per request, so
the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    JournalError,
    JournalUnavailableError,
    JournalWriteError,
    OfflineLimitError,
    PaymentIntent,
    PaymentResult,
)
from gateway.agents import Agent
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

__all__ = ["AccountInfo", "CatalogState", "PaymentService", "ServiceInfo"]

logger = logging.getLogger(__name__)
audit = logging.getLogger("lobbypay.gateway.audit")

CATALOG_STATUS_TTL_S: Final = 1.0
"""The catalog changes only when the sync agent applies a release; re-read its state this often."""
CATALOG_REOPEN_INTERVAL_S: Final = 5.0
JOURNAL_RECOVER_INTERVAL_S: Final = 10.0
CURRENCY: Final = "RUB"

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogState:
    """The local catalog as the gateway judges it."""

    available: bool
    version: int
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
    """The read-only catalog store, reopened when it appears, with a cached state."""

    def __init__(self, path: Path, age_max_s: int, clock_ms: Callable[[], int]) -> None:
        self.path = path
        self.age_max_s = age_max_s
        self.clock_ms = clock_ms
        self.store: CatalogStore | None = None
        self._state: CatalogState | None = None
        self._state_at = -1e9
        self._open_tried_at = -1e9

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

    def state(self) -> CatalogState:
        now = time.monotonic()
        if self._state is not None and now - self._state_at < CATALOG_STATUS_TTL_S:
            return self._state
        store = self._open()
        state = CatalogState(available=False, version=0, published_at_ms=0, age_s=0.0, stale=True)
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
                        published_at_ms=status.published_at_ms,
                        age_s=status.age_s,
                        stale=status.stale or status.age_s > self.age_max_s,
                    )
        self._state, self._state_at = state, now
        return state

    def account(self, account: str) -> tuple[CatalogState, cm.AccountView | None]:
        state = self.state()
        if not state.available or self.store is None:
            raise CatalogUnavailableError("no local catalog: the account cannot be checked")
        try:
            return state, self.store.account(account)
        except CatalogError as exc:
            logger.error("gateway_catalog_read_failed reason=%s", exc.reason)
            raise CatalogUnavailableError("the local catalog cannot be read") from None


def _account_info(account: str, view: cm.AccountView, state: CatalogState) -> AccountInfo:
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
    return AccountInfo(
        account=account,
        holder_ru=a.holder_name("ru"),
        holder_en=a.holder_name("en"),
        address_ru=a.address.format("ru"),
        address_en=a.address.format("en"),
        services=services,
        debt_total_minor=a.debt_total_minor,
        catalog=state,
    )


def _check_amount(agent: Agent, view: cm.AccountView, amount_minor: int) -> None:
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
    low = min(s.limits.payment_min_minor for s in view.services)
    high = sum(s.limits.payment_max_minor for s in view.services)
    allowed = sum(
        max(s.service.debt_minor, 0) + s.limits.overpayment_max_minor for s in view.services
    )
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
        self._lookups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-lookup")
        self._in_flight: dict[str, asyncio.Task[tuple[PaymentRecord, bool]]] = {}
        self.pays_started = 0
        self.conflicts = 0
        self._recover_tried_at = -1e9
        self._recovering: asyncio.Task[None] | None = None

    async def _lookup(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._lookups, fn)

    # -- life cycle --

    async def start(self) -> None:
        """Bring the index up to the journal; complete gateway intents left without a result."""
        await self.index.catch_up(self.journal)
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
        return len(self._in_flight)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no payment is in flight (graceful shutdown); False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._in_flight:
                    await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        except TimeoutError:
            return False
        return True

    async def advance_watermark(self) -> bool:
        """Move the index watermark to the journal head if no payment is between the two.

        Rigorous without a lock: a payment counts as started before its journal
        append and leaves ``_in_flight`` only after its index row is written, so
        if nothing is in flight and nothing started while we read the head,
        every gateway intent up to the head is in the index.
        """
        if self._in_flight or self.index.write_failed:
            return False
        started = self.pays_started
        head_seq, head_hash = await self.journal.head()
        if self._in_flight or self.pays_started != started or self.index.write_failed:
            return False
        await self.index.set_watermark(head_seq, head_hash)
        return True

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._lookups, self._catalog.close)
        self._lookups.shutdown(wait=True)
        if self._recovering is not None:
            with contextlib.suppress(Exception):
                await self._recovering

    # -- queries --

    async def catalog_state(self) -> CatalogState:
        return await self._lookup(self._catalog.state)

    async def check(self, agent: Agent, account: str, amount_minor: int | None) -> AccountInfo:
        """The account's services and debts; with a positive amount, whether it could be paid."""
        state, view = await self._lookup(lambda: self._catalog.account(account))
        if view is None:
            raise AccountNotFoundError("account not found")
        if not view.services:
            raise AccountInactiveError("account has no service that takes payments")
        if amount_minor:
            _check_amount(agent, view, amount_minor)
        return _account_info(account, view, state)

    async def get_payment(self, agent: Agent, payment_id: str) -> PaymentRecord:
        record = await self._lookup(lambda: self.index.get(payment_id))
        if record is None or record.agent != agent.id:
            raise PaymentNotFoundError("no such payment for this agent")
        return record

    async def registry(self, agent: Agent, day: str) -> list[PaymentRecord]:
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
        self.pays_started += 1
        # The payment runs as its own task, shielded from the request: a client
        # that hangs up, a request timeout or a shutdown cancelling handlers
        # must not cut it between its journal append and its index row.
        task = asyncio.get_running_loop().create_task(
            self._pay(
                agent,
                payment_id=payment_id,
                txn_id=txn_id,
                account=account,
                amount_minor=amount_minor,
                protocol=protocol,
                txn_date=txn_date,
            ),
            name=f"pay-{payment_id}",
        )
        self._in_flight[payment_id] = task

        def finished(t: asyncio.Task[tuple[PaymentRecord, bool]]) -> None:
            self._in_flight.pop(payment_id, None)
            if not t.cancelled():
                t.exception()  # retrieved here when the request itself was cancelled

        task.add_done_callback(finished)
        return await asyncio.shield(task)

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
        catalog = self._catalog

        def lookup() -> tuple[PaymentRecord | None, CatalogState | None, cm.AccountView | None]:
            existing = self.index.get(payment_id)
            if existing is not None or not agent.allow_pay:
                return existing, None, None
            state, view = catalog.account(account)
            return None, state, view

        existing, state, view = await self._lookup(lookup)
        if existing is not None:
            if not self._same(existing, account, amount_minor):
                raise await self._conflict(agent, payment_id, txn_id)
            return existing, True
        if not agent.allow_pay:
            raise PaymentForbiddenError("this agent may check accounts but not pay")
        assert state is not None
        if state.stale:
            raise CatalogStaleError(
                "the local catalog is too old to accept payments; retry later",
                reason="catalog-stale",
            )
        if view is None:
            raise AccountNotFoundError("account not found")
        if not view.services:
            raise AccountInactiveError("account has no service that takes payments")
        _check_amount(agent, view, amount_minor)

        extra: dict[str, Any] = {"agent": agent.id, "txn_id": txn_id, "protocol": protocol}
        if txn_date is not None:
            extra["txn_date"] = txn_date
        intent = PaymentIntent(
            payment_id=payment_id,
            amount_minor=amount_minor,
            currency=CURRENCY,
            account=account,
            channel="gateway",
            extra=extra,
        )
        result = PaymentResult(payment_id=payment_id, outcome="approved")
        outcomes = await asyncio.gather(
            self.journal.record_payment_intent(intent),
            self.journal.record_payment_result(result),
            return_exceptions=True,
        )
        intent_outcome, result_outcome = outcomes
        if isinstance(intent_outcome, JournalConflictError):
            return await self._after_journal_conflict(
                agent, payment_id, txn_id, account, amount_minor
            )
        if isinstance(intent_outcome, BaseException):
            raise self._journal_refusal(intent_outcome) from None
        if isinstance(result_outcome, BaseException) and not isinstance(
            result_outcome, JournalConflictError
        ):
            # The intent is durable, its result is not: the payment is accepted
            # (start() completes it after a crash), but say so only once both are.
            raise self._journal_refusal(result_outcome) from None
        record = record_from_entry(intent_outcome, self.index.tz)
        assert record is not None
        if not await self.index.add(record):
            logger.error("gateway_index_lagging payment_id=%s seq=%d", payment_id, record.seq)
        # A repeat the index had not seen yet comes back as the stored entry; it
        # is answered like a first acceptance, which is what it looks like here.
        return record, False

    async def _after_journal_conflict(
        self, agent: Agent, payment_id: str, txn_id: str, account: str, amount_minor: int
    ) -> tuple[PaymentRecord, bool]:
        """The journal holds this payment_id with another body (index lagging or archived)."""
        entries = await self.journal.find_payment(payment_id)
        intent = entries.get("payment-intent")
        record = None if intent is None else record_from_entry(intent, self.index.tz)
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
            self._schedule_recover()
            return OutcomeUnknownError(
                "the payment may not have been stored; repeat the same request"
            )
        if isinstance(exc, JournalUnavailableError):
            self._schedule_recover()
            return TechnicalRefusalError(
                "the journal refuses writes after a storage fault", reason="journal-fault"
            )
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

        self._recovering = asyncio.get_running_loop().create_task(recover())
