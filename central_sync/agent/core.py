"""The sync agent: forwards the journal to central and pulls the catalog down.

DESIGN.md, "The journal" (pending -> sent -> acknowledged), "The signed sync
protocol" (upload, download, "The agent") and issue 3, item 2.

Theory of operation
-------------------
Upload. The agent reads the journal from ``acknowledged_through() + 1`` (or
from the seq central asked for after a gap), signs the longest run that fits
``batch_entries_max`` and ``batch_bytes_max`` (:func:`protocol.build_batch`),
marks it *sent* in the journal, and posts it. Central's answer goes through the
pure decision table in :mod:`central_sync.agent.decide`; the table below is how
the agent acts on each row:

==========  ===============================================  =====================
decision    journal                                          next upload
==========  ===============================================  =====================
ACK         mark acknowledged through the ack's seq, only    at once (the next
            after the journal confirms the ack's head hash   batch was built while
            is its own entry's hash                          central answered)
RESEND      unchanged                                        at once, from the
                                                             expected seq
SHRINK      unchanged                                        at once, half as many
                                                             entries
BACK_OFF,   unchanged (entries stay *sent*; they are sent    after an exponential
network     again and central skips what it already holds)   backoff with full
error                                                        jitter (>= Retry-After)
STOP        unchanged                                        never (until restart):
                                                             reported loudly
==========  ===============================================  =====================

Immediate resends (RESEND, SHRINK) are bounded: after ``immediate_retries_max``
in a row the agent backs off as for a failure, so a confused central cannot
make it spin. A signed ack that acknowledges nothing new also counts as a
failure.

Download. Every ``catalog_poll_interval_s`` (sooner when a heartbeat says
central has a newer version) the agent asks ``/v1/catalog?since=<version>``,
streams the release into a file and applies it with the catalog package's
:func:`~central_sync.catalog.publish.apply_release`, which verifies central's
signature, refuses rollbacks, expired releases and anything that does not match
its signed hashes, and applies the whole release in one transaction or not at
all. A refused release is reported (log, status file, heartbeat) and the old
catalog stays.

Configuration. With the catalog (and sooner when a heartbeat says central has
a newer bundle) the agent asks ``/v1/config`` and hands the signed bundle to
:class:`~central_sync.agent.config_bundle.ConfigBundleApplier`, which verifies
it, writes it as the ``central.d/bundle.toml`` layer and rolls it back if the
configuration then fails validation or the start-up check.

Heartbeat. Every ``heartbeat_interval_s``: queue depth, oldest pending age,
software, catalog and configuration versions and device health, signed by the
terminal.

Time and network come only through a :class:`~central_sync.agent.timing.Clock`
and a :class:`~central_sync.agent.transport.Transport`, so the deterministic
simulation runs this very code in virtual time. Every wait has a timeout;
:meth:`SyncAgent.stop` ends :meth:`SyncAgent.run` after the step in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from central_sync import canonical, protocol
from central_sync.agent.decide import Action, decide
from central_sync.agent.errors import (
    AgentConfigError,
    StateFileError,
    SyncAgentError,
    TransportError,
)
from central_sync.agent.state import AgentState, Problem, load_state, save_state
from central_sync.agent.timing import SYSTEM_CLOCK, Backoff, Clock
from central_sync.agent.transport import Transport
from central_sync.journal import (
    Journal,
    JournalBusyError,
    JournalClosedError,
    JournalError,
    JournalUnavailableError,
    JournalWriteError,
)
from central_sync.protocol import Ack, OutgoingBatch, Refusal

if TYPE_CHECKING:
    from central_sync.agent.config_bundle import BundleOutcome, ConfigBundleApplier
    from central_sync.catalog.store import CatalogStore
    from firmware_config.settings import Settings

logger = logging.getLogger(__name__)

TERMINAL_HEADER = "X-Lobbypay-Terminal"
BATCHES_PATH = "/v1/batches"
HEARTBEAT_PATH = "/v1/heartbeat"
CATALOG_PATH = "/v1/catalog"
CONFIG_PATH = "/v1/config"
CONFIG_BYTES_MAX = 1024 * 1024
ANSWER_BYTES_MAX = 64 * 1024
HEALTH_KEYS_MAX = 48
HEALTH_TEXT_CHARS_MAX = 200
SOFTWARE_VERSION_CHARS_MAX = 64
# Batches this small are signed on the event loop; larger ones in a worker
# thread, so a 10,000-entry batch does not stall the loop (and its timeouts).
INLINE_BUILD_ENTRIES_MAX = 256

HealthHook = Callable[[], Mapping[str, str | int | bool]]
"""Returns device health for heartbeats, e.g. ``{"printer": "ok", "paper_low": True}``."""

# Final outcomes the agent decides itself (central's own come with
# protocol.REFUSAL_MESSAGES). Shown to technicians in both languages.
LOCAL_FINAL_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "ack-mismatch": {
        "en": "Central acknowledged entries this terminal's journal does not have "
        "(the journal and central disagree). Call the service desk.",
        "ru": "Центр подтвердил записи, которых нет в журнале терминала "
        "(журнал расходится с центром). Обратитесь в службу поддержки.",
    },
    "entries-unavailable": {
        "en": "Central needs journal entries this terminal no longer has. Call the service desk.",
        "ru": "Центру нужны записи журнала, которых на терминале уже нет. "
        "Обратитесь в службу поддержки.",
    },
    "entry-too-large": {
        "en": "A journal entry is larger than central accepts. Call the service desk.",
        "ru": "Запись журнала больше, чем принимает центр. Обратитесь в службу поддержки.",
    },
    "journal-corrupt": {
        "en": "The journal does not match its hashes. Run lobbypay journal verify "
        "and call the service desk.",
        "ru": "Журнал не совпадает со своими хешами. Запустите lobbypay journal verify "
        "и обратитесь в службу поддержки.",
    },
}


class TerminalSigner(Protocol):
    """The terminal's identity as the agent needs it (``firmware_config.identity.Identity``)."""

    @property
    def terminal_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class UploadKind(enum.Enum):
    """What one upload step came to."""

    IDLE = "idle"
    """Nothing pending."""
    ACKED = "acked"
    """Central's verified ack moved the journal forward."""
    RESEND = "resend"
    """Central asked for other entries (gap) or fewer (too large): go again at once."""
    RETRY = "retry"
    """A retryable failure: try again after a backoff."""
    FINAL = "final"
    """A final refusal: stop uploading and report it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadResult:
    """The outcome of :meth:`SyncAgent.upload_step`."""

    kind: UploadKind
    reason: str = ""
    message: str = ""
    acked_seq: int | None = None
    entries: int = 0
    """Entries newly acknowledged by this step."""
    retry_after_s: float | None = None
    refusal: Refusal | None = None
    messages: Mapping[str, str] = field(default_factory=dict)
    """For FINAL: what to tell a technician, by language (``ru``, ``en``)."""

    def __post_init__(self) -> None:
        assert (self.acked_seq is not None) == (self.kind is UploadKind.ACKED)
        assert self.kind is not UploadKind.FINAL or set(self.messages) >= {"ru", "en"}


@dataclass(frozen=True, slots=True, kw_only=True)
class FlushReport:
    """The outcome of :meth:`SyncAgent.flush`."""

    acknowledged_through: int
    head_seq: int
    entries_acknowledged: int
    batches: int
    last: UploadResult

    @property
    def complete(self) -> bool:
        return self.acknowledged_through >= self.head_seq


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogPull:
    """The outcome of :meth:`SyncAgent.pull_catalog`."""

    version: int
    applied: tuple[int, ...] = ()
    refused: Problem | None = None
    """A release central served that failed verification (signature, rollback, expiry)."""
    error: str | None = None
    """A retryable failure (network, central unavailable, local disk)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatResult:
    """The outcome of :meth:`SyncAgent.send_heartbeat`."""

    heartbeat: protocol.Heartbeat
    delivered: bool
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """Why :meth:`SyncAgent.run` returned."""

    stopped: bool
    """True when :meth:`SyncAgent.stop` ended it."""
    final: UploadResult | None = None
    """The final refusal that ended it, if any."""


@dataclass(slots=True)
class AgentCounters:
    """Running totals, for benches, tests and logs."""

    batches_sent: int = 0
    bytes_sent: int = 0
    entries_acknowledged: int = 0
    failures: int = 0
    resends: int = 0
    heartbeats: int = 0
    catalogs_applied: int = 0
    mark_sent_s: float = 0.0
    """Real seconds spent in ``Journal.mark_sent`` (measurement only, never behaviour)."""
    mark_acknowledged_s: float = 0.0
    """Real seconds spent in ``Journal.mark_acknowledged``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """The agent's bounds and intervals (``[sync]`` and ``[central]`` settings)."""

    batch_entries_max: int = 10_000
    batch_bytes_max: int = 4 * 1024 * 1024
    response_timeout_s: float = 60.0
    request_timeout_s: float = 10.0
    """Heartbeats and the catalog check."""
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    idle_poll_interval_s: float = 1.0
    heartbeat_interval_s: float = 60.0
    catalog_poll_interval_s: float = 300.0
    catalog_download_timeout_s: float = 600.0
    catalog_bytes_max: int = 1024**3
    immediate_retries_max: int = 8
    """Gap resends and shrinks in a row before the agent backs off instead."""
    catalog_releases_per_poll_max: int = 16
    prefetch: bool = True
    """Build the next batch while central answers the current one."""

    def __post_init__(self) -> None:
        for name in ("batch_entries_max", "batch_bytes_max", "catalog_bytes_max"):
            if getattr(self, name) < 1:
                raise AgentConfigError(f"{name} must be positive")
        for name in (
            "response_timeout_s",
            "request_timeout_s",
            "backoff_initial_s",
            "idle_poll_interval_s",
            "heartbeat_interval_s",
            "catalog_poll_interval_s",
            "catalog_download_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise AgentConfigError(f"{name} must be positive")
        if self.backoff_max_s < self.backoff_initial_s:
            raise AgentConfigError("backoff_max_s must not be less than backoff_initial_s")
        if self.immediate_retries_max < 0 or self.catalog_releases_per_poll_max < 1:
            raise AgentConfigError("retry and release bounds must be non-negative / positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentConfig:
        s = settings.sync
        return cls(
            batch_entries_max=s.batch_entries_max,
            batch_bytes_max=s.batch_bytes_max,
            response_timeout_s=s.response_timeout_s,
            request_timeout_s=settings.central.request_timeout_s,
            backoff_initial_s=s.backoff_initial_s,
            backoff_max_s=s.backoff_max_s,
            idle_poll_interval_s=s.idle_poll_interval_s,
            heartbeat_interval_s=s.heartbeat_interval_s,
            catalog_poll_interval_s=s.catalog_poll_interval_s,
            catalog_download_timeout_s=s.catalog_download_timeout_s,
            catalog_bytes_max=s.catalog_bytes_max,
        )


class _Miss(enum.Enum):
    MISS = 0


def _consume_result(task: asyncio.Task[OutgoingBatch | None]) -> None:
    # A discarded prefetch may have failed; its error is met again when the
    # batch is built for real, so it is only retrieved here (no warning).
    if not task.cancelled():
        task.exception()


class SyncAgent:
    """Uploads the journal, pulls the catalog, sends heartbeats (see the module docstring)."""

    def __init__(
        self,
        *,
        journal: Journal,
        signer: TerminalSigner,
        central_public_key: bytes,
        transport: Transport,
        config: AgentConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        catalog_path: Path | None = None,
        state_path: Path | None = None,
        software_version: str = "unknown",
        health: HealthHook | None = None,
        config_bundles: ConfigBundleApplier | None = None,
    ) -> None:
        if len(central_public_key) != 32:
            raise AgentConfigError("central's pinned public key must be 32 bytes")
        self.journal = journal
        self.signer = signer
        self.terminal_id = signer.terminal_id
        self.central_public_key = central_public_key
        self.transport = transport
        self.config = config or AgentConfig()
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self.catalog_path = catalog_path
        self.state_path = state_path
        self.software_version = software_version[:SOFTWARE_VERSION_CHARS_MAX] or "unknown"
        self.health_hook = health
        self.backoff = Backoff(
            initial_s=self.config.backoff_initial_s, max_s=self.config.backoff_max_s
        )
        self.counters = AgentCounters()
        self.final: UploadResult | None = None
        self.failures = 0
        """Failed attempts in a row (resets on every verified ack)."""
        self._entries_max_now = self.config.batch_entries_max
        self._resend_from: int | None = None
        self._last_batch: OutgoingBatch | None = None
        self._acked: int | None = None
        self._marked_sent_through = 0
        self._immediate = 0
        self._prefetch: asyncio.Task[OutgoingBatch | None] | None = None
        self._prefetch_start = 0
        self._wake = asyncio.Event()
        self._stop = False
        self._catalog_store: CatalogStore | None = None
        self._catalog_hint = False
        self.config_bundles = config_bundles
        self._config_hint = False
        self._state = self._initial_state()

    # -- life cycle ----------------------------------------------------------------

    def wake(self) -> None:
        """New entries were appended: upload them without waiting for the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the step in progress."""
        self._stop = True
        self._wake.set()

    async def close(self) -> None:
        """Drop the speculative batch and close the catalog store (not the journal)."""
        self._cancel_prefetch()
        if self._catalog_store is not None:
            self._catalog_store.close()
            self._catalog_store = None

    @property
    def state(self) -> AgentState:
        """What the status file holds (also kept when there is no status file)."""
        return self._state

    def _initial_state(self) -> AgentState:
        fresh = AgentState(terminal_id=self.terminal_id)
        if self.state_path is None:
            return fresh
        try:
            loaded = load_state(self.state_path)
        except StateFileError as exc:
            logger.warning("sync_state_unreadable error=%s", exc)
            return fresh
        if loaded is None or loaded.terminal_id != self.terminal_id:
            return fresh
        # A final refusal is re-evaluated by central on the next upload.
        return loaded.with_(final_refusal=None, consecutive_failures=0)

    def _update_state(self, **changes: object) -> None:
        self._state = self._state.with_(updated_ms=self.clock.time_ms(), **changes)
        if self.state_path is None:
            return
        try:
            save_state(self.state_path, self._state)
        except StateFileError as exc:
            logger.warning("sync_state_not_saved error=%s", exc)

    # -- upload --------------------------------------------------------------------

    async def upload_step(self) -> UploadResult:
        """Send one batch (if anything is pending) and act on central's answer."""
        self._wake.clear()
        acked = await self._acknowledged_through()
        start = self._resend_from if self._resend_from is not None else acked + 1
        try:
            taken = await self._take_prefetch(start)
            if taken is not _Miss.MISS:
                batch: OutgoingBatch | None = taken
            else:
                batch = self._reusable(start) or await self._prepare(start, None)
        except JournalError as exc:
            if isinstance(exc, JournalWriteError | JournalUnavailableError | JournalBusyError):
                return self._retry("journal", str(exc))
            if isinstance(exc, JournalClosedError):
                raise
            return self._final_local("entries-unavailable", str(exc))
        except protocol.BuildError as exc:
            return self._final_local("journal-corrupt", str(exc))
        if batch is None:
            self._resend_from = None
            return UploadResult(kind=UploadKind.IDLE)
        self._last_batch = batch
        if batch.to_seq > self._marked_sent_through:
            started = time.perf_counter()
            try:
                await self.journal.mark_sent(batch.to_seq)
            except (JournalWriteError, JournalUnavailableError, JournalBusyError) as exc:
                return self._retry("journal", str(exc))
            self.counters.mark_sent_s += time.perf_counter() - started
            self._marked_sent_through = batch.to_seq
        if self.config.prefetch:
            head_seq, _ = await self.journal.head()
            self._start_prefetch(batch.to_seq + 1, head_seq)
        try:
            response = await self.transport.request(
                "POST",
                BATCHES_PATH,
                batch.data,
                headers={TERMINAL_HEADER: self.terminal_id},
                timeout_s=self.config.response_timeout_s,
                body_bytes_max=ANSWER_BYTES_MAX,
            )
        except TransportError as exc:
            self._cancel_prefetch()
            return self._retry(exc.reason, str(exc))
        finally:
            self.counters.batches_sent += 1
            self.counters.bytes_sent += len(batch.data)
        decision = decide(
            response.status,
            response.body,
            sent=batch,
            central_public_key=self.central_public_key,
            terminal_id=self.terminal_id,
            retry_after=response.header("Retry-After"),
        )
        if decision.action is not Action.ACK:
            self._cancel_prefetch()
        if decision.action is Action.ACK:
            assert decision.ack is not None
            return await self._on_ack(batch, decision.ack, acked)
        if decision.action is Action.RESEND:
            assert decision.resend_from is not None
            if decision.resend_from >= batch.from_seq:
                return self._retry("inconsistent-gap", decision.message)
            logger.warning(
                "sync_gap expected_seq=%d sent_from=%d", decision.resend_from, batch.from_seq
            )
            self._resend_from = decision.resend_from
            return self._immediate_or_retry("gap", decision.message)
        if decision.action is Action.SHRINK:
            if batch.entry_count == 1:
                if decision.refusal is None:  # unverified: not enough to stop on
                    return self._retry(decision.reason, decision.message)
                return self._final_local("entry-too-large", decision.message)
            self._entries_max_now = max(1, batch.entry_count // 2)
            return self._immediate_or_retry("too-large", decision.message)
        if decision.action is Action.BACK_OFF:
            return self._retry(decision.reason, decision.message, decision.retry_after_s)
        assert decision.refusal is not None
        return self._final(decision.refusal)

    async def _acknowledged_through(self) -> int:
        # Only this agent moves the mark, so it is read from the journal once.
        if self._acked is None:
            self._acked = await self.journal.acknowledged_through()
        return self._acked

    def _reusable(self, start: int) -> OutgoingBatch | None:
        """The batch sent last, if the next one would start at the same seq.

        A retry resends the very bytes (central treats them idempotently), so
        a long outage does not cost a re-read and a re-signature per attempt.
        """
        last = self._last_batch
        if last is None or last.from_seq != start or last.entry_count > self._entries_max_now:
            return None
        return last

    async def _on_ack(self, batch: OutgoingBatch, ack: Ack, acked_before: int) -> UploadResult:
        self._last_batch = None
        if ack.acked_seq > acked_before:
            problem = await self._mark_acknowledged(ack)
            if problem is not None:
                self._cancel_prefetch()
                return problem
        if ack.acked_seq < batch.to_seq:
            # Central signed that it holds less than it was just sent: an old ack
            # replayed on the way, or a confused central. Nothing more is trusted.
            self._cancel_prefetch()
            return self._retry("short-ack", f"ack for {ack.acked_seq}, sent up to {batch.to_seq}")
        if ack.acked_seq != batch.to_seq:
            self._cancel_prefetch()  # central holds more; the next batch starts elsewhere
        acked_now = max(acked_before, ack.acked_seq)
        # After a gap, central may still be behind what the journal already
        # counts as acknowledged; keep feeding it from where it stands.
        self._resend_from = None if ack.acked_seq >= acked_now else ack.acked_seq + 1
        newly = max(0, ack.acked_seq - acked_before)
        self.failures = 0
        self._immediate = 0
        self._entries_max_now = min(self.config.batch_entries_max, self._entries_max_now * 2)
        self.counters.entries_acknowledged += newly
        self._update_state(
            last_ack_seq=ack.acked_seq,
            last_ack_central_time_ms=ack.central_time_ms,
            last_ack_ms=self.clock.time_ms(),
            consecutive_failures=0,
            final_refusal=None,
        )
        logger.debug(
            "sync_acked from_seq=%d to_seq=%d acked_seq=%d",
            batch.from_seq,
            batch.to_seq,
            ack.acked_seq,
        )
        return UploadResult(
            kind=UploadKind.ACKED, reason="ack", acked_seq=ack.acked_seq, entries=newly
        )

    async def _mark_acknowledged(self, ack: Ack) -> UploadResult | None:
        """Mark the journal; None when done, else the failure to report."""
        started = time.perf_counter()
        try:
            await self.journal.mark_acknowledged(ack.acked_seq, ack.head_hash)
        except (JournalWriteError, JournalUnavailableError, JournalBusyError) as exc:
            return self._retry("journal", str(exc))
        except JournalClosedError:
            raise
        except JournalError as exc:
            # The journal reads its head from the file, so entries another process
            # appended are seen: a refusal here is a real disagreement with central
            # (an ack beyond the journal, or for another hash).
            return self._final_local(
                "ack-mismatch", f"ack for seq {ack.acked_seq} refused by the journal: {exc}"
            )
        self.counters.mark_acknowledged_s += time.perf_counter() - started
        self._acked = max(self._acked or 0, ack.acked_seq)
        return None

    async def _disk_head(self) -> int:
        """The journal's head seq (read from the file: appends by the kiosk count)."""
        head_seq, _ = await self.journal.head()
        return head_seq

    async def _prepare(self, start: int, upto: int | None) -> OutgoingBatch | None:
        """Read and sign the batch starting at ``start`` (None when nothing is pending)."""
        limit = self._entries_max_now
        if upto is not None:
            limit = min(limit, upto - start + 1)
            if limit <= 0:
                return None
        entries = await self.journal.read(start, limit)
        if not entries:
            return None
        if entries[0].seq != start:
            raise protocol.BuildError(f"the journal has no entry {start}")
        build = functools.partial(
            protocol.build_batch,
            entries,
            terminal_id=self.terminal_id,
            signer=self.signer,
            entries_max=limit,
            bytes_max=self.config.batch_bytes_max,
        )
        if len(entries) <= INLINE_BUILD_ENTRIES_MAX:
            return build()
        return await asyncio.to_thread(build)

    def _start_prefetch(self, start: int, upto: int) -> None:
        self._cancel_prefetch()
        if start > upto:
            return
        self._prefetch_start = start
        # Bounded by the head seen now, so what it reads can no longer change.
        task = asyncio.get_running_loop().create_task(
            self._prepare(start, upto), name=f"sync-prefetch-{start}"
        )
        task.add_done_callback(_consume_result)
        self._prefetch = task

    async def _take_prefetch(self, start: int) -> OutgoingBatch | _Miss | None:
        task, self._prefetch = self._prefetch, None
        if task is None:
            return _Miss.MISS
        if self._prefetch_start != start:
            task.cancel()
            return _Miss.MISS
        batch = await task
        return _Miss.MISS if batch is None else batch

    def _cancel_prefetch(self) -> None:
        task, self._prefetch = self._prefetch, None
        if task is not None:
            task.cancel()

    def _immediate_or_retry(self, reason: str, message: str) -> UploadResult:
        self._immediate += 1
        self.counters.resends += 1
        if self._immediate > self.config.immediate_retries_max:
            self._immediate = 0
            return self._retry(reason, f"{message} (again and again; backing off)")
        return UploadResult(kind=UploadKind.RESEND, reason=reason, message=message)

    def _retry(self, reason: str, message: str, retry_after_s: float | None = None) -> UploadResult:
        self.failures += 1
        self.counters.failures += 1
        logger.warning(
            "sync_upload_failed reason=%s failures=%d message=%s", reason, self.failures, message
        )
        self._update_state(
            consecutive_failures=self.failures,
            last_error=Problem(reason=reason, message=message[:500], at_ms=self.clock.time_ms()),
        )
        return UploadResult(
            kind=UploadKind.RETRY, reason=reason, message=message, retry_after_s=retry_after_s
        )

    def _final(self, refusal: Refusal) -> UploadResult:
        messages = protocol.REFUSAL_MESSAGES[refusal.kind]
        return self._record_final(
            UploadResult(
                kind=UploadKind.FINAL,
                reason=refusal.kind.value,
                message=f"{refusal.reason}: {refusal.message}",
                refusal=refusal,
                messages=messages,
            )
        )

    def _final_local(self, reason: str, message: str) -> UploadResult:
        return self._record_final(
            UploadResult(
                kind=UploadKind.FINAL,
                reason=reason,
                message=message,
                messages=LOCAL_FINAL_MESSAGES[reason],
            )
        )

    def _record_final(self, result: UploadResult) -> UploadResult:
        self.final = result
        logger.error(
            "sync_stopped_final reason=%s message=%s advice=%s",
            result.reason,
            result.message,
            result.messages["en"],
        )
        self._update_state(
            final_refusal=Problem(
                reason=result.reason,
                message=f"{result.message} | {result.messages['en']} | {result.messages['ru']}",
                at_ms=self.clock.time_ms(),
                final=True,
            )
        )
        return result

    def retry_delay_s(self, result: UploadResult) -> float:
        """How long to wait after the failed step ``result`` (full-jitter backoff)."""
        return self.backoff.delay_s(
            max(1, self.failures), self.rng, retry_after_s=result.retry_after_s
        )

    async def flush(self) -> FlushReport:
        """Upload until everything pending now is acknowledged, or the first failure.

        No backoff waits: a retryable failure ends the flush (``last.kind`` is
        RETRY), so `lobbypay sync once` answers promptly.
        """
        head_seq = await self._disk_head()
        acked_start = await self.journal.acknowledged_through()
        batches = 0
        last = UploadResult(kind=UploadKind.IDLE)
        # Every ACK moves at least one entry; every other outcome but RESEND ends
        # the loop, and RESENDs in a row are bounded: so is the loop.
        for _ in range(head_seq - acked_start + self.config.immediate_retries_max + 2):
            acked = await self.journal.acknowledged_through()
            if acked >= head_seq and self._resend_from is None:
                break
            last = await self.upload_step()
            if last.kind is UploadKind.ACKED:
                batches += 1
                continue
            if last.kind is not UploadKind.RESEND:
                break
        acked = await self.journal.acknowledged_through()
        return FlushReport(
            acknowledged_through=acked,
            head_seq=max(head_seq, acked),
            entries_acknowledged=acked - acked_start,
            batches=batches,
            last=last,
        )

    # -- heartbeat -----------------------------------------------------------------

    async def queue_state(self) -> tuple[int, int | None]:
        """(entries not yet acknowledged, age in seconds of the oldest of them or None)."""
        acked = await self.journal.acknowledged_through()
        head_seq = await self._disk_head()
        depth = max(0, head_seq - acked)
        if depth == 0:
            return 0, None
        first = await self.journal.read(acked + 1, 1)
        if not first:
            return depth, None
        return depth, max(0, (self.clock.time_ms() - first[0].ts_ms) // 1000)

    def _health(self) -> dict[str, str | int | bool]:
        values: Mapping[str, object] = {}
        if self.health_hook is not None:
            try:
                values = self.health_hook()
            except Exception as exc:  # a broken hook must not stop heartbeats
                logger.warning("sync_health_hook_failed error=%s", type(exc).__name__)
                values = {"health_hook": "failed"}
        health: dict[str, str | int | bool] = {}
        for key, value in list(values.items())[:HEALTH_KEYS_MAX]:
            if not isinstance(key, str) or not 0 < len(key) <= 64:
                continue
            if isinstance(value, bool):
                health[key] = value
            elif isinstance(value, int):
                health[key] = max(-canonical.INT_ABS_MAX, min(canonical.INT_ABS_MAX, value))
            elif isinstance(value, str):
                health[key] = value[:HEALTH_TEXT_CHARS_MAX]
        health["sync_state"] = (
            "stopped" if self.final is not None else "retrying" if self.failures else "ok"
        )
        health["sync_failures"] = self.failures
        if self._state.catalog_error is not None:
            health["catalog_error"] = self._state.catalog_error.reason[:HEALTH_TEXT_CHARS_MAX]
        if self._state.config_error is not None:
            health["config_error"] = self._state.config_error.reason[:HEALTH_TEXT_CHARS_MAX]
        return health

    def config_version(self) -> int:
        """The configuration bundle in force (0: none, or no bundles on this terminal)."""
        return 0 if self.config_bundles is None else self.config_bundles.current_version()

    async def send_heartbeat(self) -> HeartbeatResult:
        """Report queue depth, oldest pending age, versions and health to central."""
        depth, oldest = await self.queue_state()
        version = self.catalog_version()
        beat = protocol.Heartbeat(
            terminal_id=self.terminal_id,
            ts_ms=self.clock.time_ms(),
            queue_depth=depth,
            oldest_pending_age_s=oldest,
            software_version=self.software_version,
            catalog_version=version or None,
            config_version=self.config_version() or None,
            health=self._health(),
        )
        data = protocol.build_heartbeat(beat, self.signer)
        try:
            response = await self.transport.request(
                "POST",
                HEARTBEAT_PATH,
                data,
                headers={TERMINAL_HEADER: self.terminal_id},
                timeout_s=self.config.request_timeout_s,
                body_bytes_max=ANSWER_BYTES_MAX,
            )
        except TransportError as exc:
            logger.info("sync_heartbeat_failed reason=%s", exc.reason)
            return HeartbeatResult(heartbeat=beat, delivered=False, error=str(exc))
        if response.status != 200:
            logger.info("sync_heartbeat_refused status=%d", response.status)
            return HeartbeatResult(
                heartbeat=beat, delivered=False, error=f"central answered HTTP {response.status}"
            )
        self.counters.heartbeats += 1
        self._update_state(last_heartbeat_ms=self.clock.time_ms())
        # The answer is not signed: it may only make the agent ask for the catalog
        # sooner (which is itself verified), never change anything on its own.
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            answer = json.loads(response.body)
            latest = answer.get("catalog_version") if isinstance(answer, dict) else None
            if isinstance(latest, int) and latest > version:
                self._catalog_hint = True
            latest = answer.get("config_version") if isinstance(answer, dict) else None
            if isinstance(latest, int) and latest > self.config_version():
                self._config_hint = True
        return HeartbeatResult(heartbeat=beat, delivered=True)

    # -- configuration bundles ---------------------------------------------------

    async def pull_config(self) -> BundleOutcome | None:
        """Fetch central's bundle for this terminal and apply it (None: no bundles here)."""
        from central_sync.agent.config_bundle import BundleOutcome

        self._config_hint = False
        applier = self.config_bundles
        if applier is None:
            return None
        current = applier.current_version()
        try:
            response = await self.transport.request(
                "GET",
                f"{CONFIG_PATH}?terminal={self.terminal_id}",
                headers={TERMINAL_HEADER: self.terminal_id},
                timeout_s=self.config.request_timeout_s,
                body_bytes_max=CONFIG_BYTES_MAX,
            )
        except TransportError as exc:
            logger.info("sync_config_failed reason=%s", exc.reason)
            return BundleOutcome(
                kind="failed", version=current, reason=exc.reason, message=str(exc)
            )
        if response.status == 404:
            return BundleOutcome(kind="none", version=current)
        if response.status != 200:
            return BundleOutcome(
                kind="failed",
                version=current,
                reason="http",
                message=f"central answered HTTP {response.status}",
            )
        outcome = await asyncio.to_thread(applier.apply, response.body, now_ms=self.clock.time_ms())
        now = self.clock.time_ms()
        if outcome.problem:
            self._update_state(
                config_version=outcome.version or None,
                config_error=Problem(
                    reason=outcome.reason or outcome.kind,
                    message=f"{outcome.kind}: {outcome.message}"[:500],
                    at_ms=now,
                ),
            )
        else:
            self._update_state(config_version=outcome.version or None, config_error=None)
        return outcome

    # -- catalog -------------------------------------------------------------------

    def _store(self) -> CatalogStore | None:
        if self.catalog_path is None:
            return None
        if self._catalog_store is None:
            from central_sync.catalog.store import CatalogStore

            self._catalog_store = CatalogStore.open(self.catalog_path)
        return self._catalog_store

    def catalog_version(self) -> int:
        """The local catalog's version (0: none yet, or no catalog configured)."""
        from central_sync.catalog.errors import CatalogError

        try:
            store = self._store()
        except CatalogError:
            return 0
        return 0 if store is None else store.version()

    async def pull_catalog(self) -> CatalogPull:
        """Fetch and apply every newer catalog release central has (bounded per call)."""
        from central_sync.catalog.errors import CatalogError

        self._catalog_hint = False
        try:
            store = self._store()
            if store is None:
                return CatalogPull(version=0)
            return await self._pull(store)
        except CatalogError as exc:
            # The local store itself failed (disk full, damaged file): retry later.
            return self._catalog_failed(0, f"local catalog unusable: {exc}")

    async def _pull(self, store: CatalogStore) -> CatalogPull:
        from central_sync.catalog.errors import CatalogError, ReleaseRefusedError
        from central_sync.catalog.publish import apply_release

        assert self.catalog_path is not None
        applied: list[int] = []
        target = self.catalog_path.with_name(self.catalog_path.name + ".download")
        for _ in range(self.config.catalog_releases_per_poll_max):
            since = store.version()
            try:
                response = await self.transport.download(
                    f"{CATALOG_PATH}?since={since}",
                    target,
                    timeout_s=self.config.catalog_download_timeout_s,
                    bytes_max=self.config.catalog_bytes_max,
                )
            except TransportError as exc:
                return self._catalog_failed(since, str(exc), applied)
            if response.status == 204:
                break
            if response.status != 200:
                return self._catalog_failed(
                    since, f"central answered HTTP {response.status}", applied
                )
            try:
                result = await asyncio.to_thread(
                    apply_release,
                    store,
                    target,
                    central_public_key=self.central_public_key,
                    now_ms=self.clock.time_ms(),
                )
            except ReleaseRefusedError as exc:
                problem = Problem(
                    reason=exc.reason, message=str(exc)[:500], at_ms=self.clock.time_ms()
                )
                logger.error(
                    "sync_catalog_refused reason=%s version_kept=%d message=%s",
                    exc.reason,
                    since,
                    exc,
                )
                self._update_state(
                    catalog_version=since,
                    catalog_pulled_ms=self.clock.time_ms(),
                    catalog_error=problem,
                )
                return CatalogPull(version=since, applied=tuple(applied), refused=problem)
            except CatalogError as exc:
                return self._catalog_failed(since, f"catalog not applied: {exc}", applied)
            finally:
                with contextlib.suppress(OSError):
                    target.unlink()
            applied.append(result.version)
            self.counters.catalogs_applied += 1
            logger.info(
                "sync_catalog_applied version=%d kind=%s accounts=%d",
                result.version,
                result.kind,
                result.accounts,
            )
        version = store.version()
        self._update_state(
            catalog_version=version, catalog_pulled_ms=self.clock.time_ms(), catalog_error=None
        )
        return CatalogPull(version=version, applied=tuple(applied))

    def _catalog_failed(
        self, version: int, message: str, applied: list[int] | None = None
    ) -> CatalogPull:
        logger.warning("sync_catalog_failed version=%d message=%s", version, message)
        return CatalogPull(version=version, applied=tuple(applied or ()), error=message)

    # -- the daemon loop -----------------------------------------------------------------

    @contextlib.contextmanager
    def _survive(self, duty: str) -> Iterator[None]:
        """A failed heartbeat or catalog pull (local disk, journal) must not stop uploads."""
        try:
            yield
        except (JournalClosedError, AssertionError):
            raise
        except (JournalError, SyncAgentError, OSError) as exc:
            logger.warning("sync_duty_failed duty=%s error=%s", duty, exc)

    async def run(self) -> RunReport:
        """Upload, heartbeat and pull the catalog until :meth:`stop` or a final refusal."""
        clock = self.clock
        now = clock.monotonic()
        upload_due = heartbeat_due = catalog_due = config_due = now
        backing_off = False
        try:
            while not self._stop:
                now = clock.monotonic()
                if now >= heartbeat_due:
                    with self._survive("heartbeat"):
                        await self.send_heartbeat()
                    heartbeat_due = clock.monotonic() + self.config.heartbeat_interval_s
                if now >= catalog_due or self._catalog_hint:
                    interval = min(self.config.catalog_poll_interval_s, self.config.backoff_max_s)
                    with self._survive("catalog"):
                        if (await self.pull_catalog()).error is None:
                            interval = self.config.catalog_poll_interval_s
                    catalog_due = clock.monotonic() + interval
                if self.config_bundles is not None and (now >= config_due or self._config_hint):
                    with self._survive("config"):
                        await self.pull_config()
                    config_due = clock.monotonic() + self.config.catalog_poll_interval_s
                if self._stop:
                    break
                if now >= upload_due:
                    result = await self.upload_step()
                    backing_off = False
                    if result.kind is UploadKind.FINAL:
                        return RunReport(stopped=False, final=result)
                    if result.kind in (UploadKind.ACKED, UploadKind.RESEND):
                        upload_due = clock.monotonic()
                        continue
                    if result.kind is UploadKind.RETRY:
                        backing_off = True
                        upload_due = clock.monotonic() + self.retry_delay_s(result)
                    else:
                        upload_due = clock.monotonic() + self.config.idle_poll_interval_s
                due = min(upload_due, heartbeat_due, catalog_due)
                if self.config_bundles is not None:
                    due = min(due, config_due)
                timeout_s = due - clock.monotonic()
                if timeout_s > 0 and not self._stop:
                    woken = await clock.wait(self._wake, timeout_s)
                    # New entries end an idle wait at once, but never a backoff:
                    # a terminal hammering a central that is down helps no one.
                    if woken and not backing_off:
                        upload_due = min(upload_due, clock.monotonic())
                    self._wake.clear()
            return RunReport(stopped=True)
        finally:
            self._cancel_prefetch()
