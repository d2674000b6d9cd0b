"""``KioskServices``: every piece of I/O the kiosk does — journal, catalog, devices, central.

Theory of operation
-------------------
CONVENTIONS rule 7: the Textual screens do no I/O. They post messages; the
app's controller runs these coroutines in workers and posts the answers back.
This module knows nothing of Textual; it is plain asyncio and is used the same
way by the app, the tests and the crash-test harness.

Start-up (:meth:`KioskServices.start`), in this order, because payments depend
on each step:

1. open the journal and rebuild :class:`~kiosk.history.KioskHistory` from its tail;
2. open the catalog (read-only; reopened on demand if it was missing);
3. open the devices chosen by name (:mod:`kiosk.devices`) and the
   identification hub;
4. **recover**: finish reversals that were asked for but not recorded, then
   resolve every outcome-unknown payment with the terminal
   (:func:`kiosk.payment.decide_recovery`); while one is unresolved, new
   payments are paused and a background task keeps asking;
5. learn the terminal's last receipt number (what the next intent records).

A card payment (:meth:`KioskServices.pay`) is write-ahead: intent (fsync'd) →
terminal → result → receipt. Every step reports to ``probe`` (the crash tests
kill the process there) and every failure has one defined outcome; see
:mod:`kiosk.payment` for the phases and why a crash at any point neither loses
an approved payment nor charges twice.

Staff status (online/offline, stored payments, alarms) is pushed to the
listener whenever it changes and on a timer. "Online" means central's address
answered a TCP connect within ``kiosk.online_check_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from central_sync import journal as jmod
from central_sync.catalog.errors import CatalogError
from central_sync.catalog.store import CatalogStore
from central_sync.journal import (
    Journal,
    JournalError,
    OfflineLimitError,
    PaymentIntent,
    PaymentResult,
)
from drivers.identification import (
    AccountIdentified,
    CardHashRef,
    CheckDigitScheme,
    IdentificationEvent,
    IdentificationFailed,
    IdentificationHub,
    QrRef,
    VirtualNumberPolicy,
    VirtualNumberRef,
)
from kiosk.devices import (
    CardReaderDevice,
    DeviceChoice,
    PrinterDevice,
    ScannerDevice,
    open_card_reader,
    open_payment_terminal,
    open_printer,
    open_scanner,
)
from kiosk.history import (
    EVENT_CANCEL_REQUESTED,
    EVENT_RECEIPT_PRINTED,
    EVENT_REVERSAL_REQUESTED,
    KioskHistory,
    PaymentRecord,
)
from kiosk.model import AccountSession, Order, ReadingPoint, new_payment_id, reading_history
from kiosk.model import reading_problem as _reading_problem
from kiosk.payment import (
    PaymentEvent,
    PaymentMachine,
    PaymentPhase,
    RecoveryAction,
    decide_recovery,
)
from kiosk.pin import PinCheck, PinGate, PinHashError, verify_pin

if TYPE_CHECKING:
    from drivers.escpos.document import Document
    from drivers.escpos.receipt import Receipt
    from drivers.escpos.simulator import SimulatedPrinter
    from drivers.zvt import LastTransaction, PaymentOutcome, ZvtTerminal
    from drivers.zvt.backend import TerminalHandle
    from drivers.zvt.session import ZvtTimeouts
    from drivers.zvt.simulator import TerminalSimulator
    from firmware_config.settings import Settings

__all__ = [
    "KioskListener",
    "KioskServices",
    "LookupResult",
    "PaymentReport",
    "PaymentUpdate",
    "PrintOutcome",
    "ReadingOutcome",
    "ServiceReport",
    "StaffStatus",
    "catalog_path",
]

logger = logging.getLogger(__name__)

HISTORY_ENTRIES_MAX: Final = 200_000
"""Journal entries read at start-up to rebuild the history (newest first)."""
HISTORY_READ_CHUNK: Final = 2_000
STATUS_REFRESH_S: Final = 15.0
RECOVERY_RETRY_S: Final = 30.0
RECOVERY_BACKOFF_MIN_S: Final = 0.5
RECOVERY_BACKOFF_MAX_S: Final = 5.0
TERMINAL_REOPEN_S: Final = 10.0
CLOSE_TIMEOUT_S: Final = 5.0
RESULT_ALREADY_REVERSED: Final = 0xB4
PROBE_STEPS: Final = (
    "intent-written",
    "terminal-asked",
    "terminal-status",
    "terminal-answered",
    "result-recorded",
    "receipt-printed",
)

Probe = Callable[[str, str], None]
"""Called with (step, payment_id) at each step of a payment; see :data:`PROBE_STEPS`."""


def catalog_path(settings: Settings) -> Path:
    """The catalog file the kiosk reads (``kiosk.catalog_path`` or ``<data_dir>/catalog.db``)."""
    return settings.kiosk.catalog_path or settings.terminal.data_dir / "catalog.db"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffStatus:
    """The staff line: what a passing technician needs, nothing a resident should see."""

    ready: bool
    online: bool | None
    stored_payments: int
    alarms: tuple[str, ...]
    payments_paused: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupResult:
    """An account found, or why not (``unknown`` / ``unavailable``)."""

    session: AccountSession | None
    failure: Literal["unknown", "unavailable"] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentUpdate:
    """A live status of the running payment, for the payment screen."""

    phase: PaymentPhase
    status_key: str
    """An i18n key (``payment.insert_card`` ...)."""
    terminal_text: Mapping[str, str] = field(default_factory=dict)
    """The terminal's own wording, by language, when it has no key of ours."""
    cancellable: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentReport:
    """How a payment ended, with what the screen needs to say so."""

    payment_id: str
    phase: PaymentPhase
    message_key: str | None = None
    reason: Mapping[str, str] = field(default_factory=dict)
    """Placeholder text by language ("reason" of the message)."""
    intent: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None
    paid_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PrintOutcome:
    """Whether a document printed; if not, the fault and its text by language."""

    ok: bool
    fault: Literal["paper_out", "cover_open", "fault", "absent"] | None = None
    reason: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingOutcome:
    """A meter reading accepted (with its consumption) or refused (with the problem)."""

    ok: bool
    problem: str | None = None
    previous_milli: int = 0
    consumption_milli: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceReport:
    """Everything service mode shows."""

    terminal: tuple[str, Mapping[str, str]]
    printer: tuple[str, Mapping[str, str]]
    card_reader: tuple[str, Mapping[str, str]]
    scanner: tuple[str, Mapping[str, str]]
    unsent_entries: int
    oldest_pending_age_s: float | None
    stored_payments: int
    stored_amount_minor: int
    outcome_unknown: int
    catalog_version: int
    catalog_accounts: int
    catalog_age_s: float | None
    catalog_stale: bool
    catalog_applied_at_ms: int
    acknowledged_through: int
    last_ack_ms: int | None
    online: bool | None
    alarms: tuple[str, ...]


class KioskListener(Protocol):
    """What the services tell the app without being asked."""

    def identification(self, event: IdentificationEvent) -> None: ...

    def staff_status(self, status: StaffStatus) -> None: ...


class _NullListener:
    def identification(self, event: IdentificationEvent) -> None:
        del event

    def staff_status(self, status: StaffStatus) -> None:
        del status


def _both(ru: str, en: str) -> dict[str, str]:
    return {"ru": ru, "en": en}


def _error_text(exc: BaseException) -> dict[str, str]:
    title, step = getattr(exc, "title", None), getattr(exc, "next_step", None)
    if isinstance(title, dict) and isinstance(step, dict):
        return _both(f"{title['ru']}. {step['ru']}", f"{title['en']}. {step['en']}")
    if callable(title) and callable(step):
        with contextlib.suppress(Exception):
            return _both(f"{title('ru')}. {step('ru')}", f"{title('en')}. {step('en')}")
    name = type(exc).__name__
    return _both(name, name)


_STATUS_KEYS: Final = {
    0x0A: "payment.insert_card",
    0x01: "payment.enter_pin",
    0x04: "payment.processing",
    0x0B: "payment.remove_card",
    0x17: "payment.wait",
}
# The terminal still lets the resident cancel while it waits for the card or PIN.
_CANCELLABLE_STATUSES: Final = frozenset({0x0A, 0x01})


def _masked_pan(value: str | None) -> str | None:
    """The terminal's masked PAN, normalised to what the journal accepts (never more digits)."""
    if not value:
        return None
    compact = "".join(ch for ch in value if ch.isdigit() or ch in "*Xx")
    if jmod.MASKED_PAN_PATTERN.match(compact) and sum(c.isdigit() for c in compact) <= 10:
        return compact
    digits = [c for c in compact if c.isdigit()]
    return "****" + "".join(digits[-4:]) if len(digits) >= 4 else None


def _transaction_fields(tx: PaymentOutcome | LastTransaction) -> dict[str, Any]:
    """The terminal's answer as journal fields, named as central's ledger reads them.

    ZVT has no ISO 8583 RRN; the terminal's trace number is what identifies the
    transaction at the acquirer, so it is the ``rrn`` (six digits) the bank's
    settlement registry is reconciled against.
    """
    fields: dict[str, Any] = {"result_code": tx.result_code}
    for name in ("receipt_no", "trace_no", "auth_code", "terminal_id"):
        value = getattr(tx, name, None)
        if value is not None:
            fields[name] = value
    if tx.trace_no is not None:
        fields["rrn"] = f"{tx.trace_no:06d}"
    if tx.card_name:
        fields["card_brand"] = tx.card_name
    pan = _masked_pan(tx.masked_pan)
    if pan is not None:
        fields["masked_pan"] = pan
    fields["offline"] = bool(tx.approved_offline)
    return fields


# --------------------------------------------------------------------------- services


class KioskServices:
    """The kiosk's I/O (see the module docstring). Build, then ``await start()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        devices: DeviceChoice | None = None,
        listener: KioskListener | None = None,
        probe: Probe | None = None,
        clock: Callable[[], float] = time.time,
        terminal_timeouts: ZvtTimeouts | None = None,
    ) -> None:
        self.settings = settings
        self.terminal_timeouts = terminal_timeouts
        self.devices = devices or DeviceChoice.from_settings(settings)
        self.listener: KioskListener = listener or _NullListener()
        self.probe = probe
        self.clock = clock
        self.history = KioskHistory()
        self.journal: Journal | None = None
        self.catalog: CatalogStore | None = None
        self.terminal_handle: TerminalHandle | None = None
        self.printer: PrinterDevice | None = None
        self.card_reader: CardReaderDevice | None = None
        self.scanner: ScannerDevice | None = None
        self.hub: IdentificationHub | None = None
        self.alarms: set[str] = set()
        self.ready = False
        """Start-up recovery is done: card payments may be taken."""
        self.identification_ready = False
        """Residents can be identified (journal, catalog and inputs are open)."""
        self.online: bool | None = None
        self.stored_payments = 0
        self.pin_gate = PinGate(
            attempts_max=settings.kiosk.pin_attempts_max, lockout_s=settings.kiosk.pin_lockout_s
        )
        self._terminal_lock = asyncio.Lock()
        self._terminal_error: BaseException | None = None
        self._terminal_opened_at = 0.0
        self._receipt_before_known = False
        self._current: PaymentMachine | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._card_key_ok = False

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Open everything and recover (see the module docstring); never raises for a device."""
        await self.start_identification()
        await self.start_payments()

    async def start_identification(self) -> None:
        """Steps 1-3 for residents: journal and history, catalog, card reader, scanner, hub.

        After this a resident can be identified and shown their services; card
        payments wait for :meth:`start_payments` (``payments_paused``).
        """
        await self._open_journal()
        self._open_catalog()
        self._open_inputs()
        self._spawn(self._identification_pump(), "kiosk-identification")
        self.identification_ready = True
        self.listener.staff_status(self.staff_status())

    async def start_payments(self) -> None:
        """Open the terminal and the printer, then recover; only then are payments taken."""
        await asyncio.gather(self._open_terminal(), self._open_printer())
        await self.recover()
        self.ready = True
        self._spawn(self._status_loop(), "kiosk-status")
        self._spawn(self._online_loop(), "kiosk-online")
        logger.info(
            "kiosk_started unresolved=%d alarms=%s",
            len(self.history.unresolved()),
            ",".join(sorted(self.alarms)) or "-",
        )
        await self.refresh_status()

    async def close(self) -> None:
        """Stop background tasks and close every device and file."""
        if self._closing:
            return
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, CLOSE_TIMEOUT_S)
        if self.hub is not None:
            await self.hub.aclose()
        for device in (self.card_reader, self.scanner, self.printer):
            if device is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(device.aclose(), CLOSE_TIMEOUT_S)
        if self.terminal_handle is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.terminal_handle.aclose(), CLOSE_TIMEOUT_S)
        if self.catalog is not None:
            self.catalog.close()
        if self.journal is not None:
            with contextlib.suppress(JournalError):
                await self.journal.close()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_journal(self) -> None:
        try:
            self.journal = await jmod.open_from_settings(self.settings)
        except (JournalError, OSError) as exc:
            logger.error("kiosk_journal_unavailable error=%s", type(exc).__name__)
            self.alarms.add("journal")
            return
        await self._load_history()

    async def _load_history(self) -> None:
        assert self.journal is not None
        head, _ = await self.journal.head()
        start = max(1, head - HISTORY_ENTRIES_MAX + 1)
        seq = start
        while seq <= head:
            try:
                entries = await self.journal.read(seq, HISTORY_READ_CHUNK)
            except JournalError:
                # Entries up to the anchor were pruned (acknowledged long ago);
                # what remains starts later.
                seq += HISTORY_READ_CHUNK
                continue
            if not entries:
                break
            self.history.add_all(entries)
            seq = entries[-1].seq + 1

    def _open_catalog(self) -> None:
        if self.catalog is not None:
            return
        try:
            self.catalog = CatalogStore.open(catalog_path(self.settings), readonly=True)
        except CatalogError as exc:
            logger.warning("kiosk_catalog_unavailable error=%s", type(exc).__name__)

    def _card_hash_key(self) -> bytes:
        path = self.settings.card_hash_key_path
        try:
            key = path.read_bytes()
        except OSError:
            key = b""
        if len(key) >= 16:
            self._card_key_ok = True
            return key
        # Without the deployment's key no card can be matched; a random key
        # keeps the hub working for typed numbers and QR codes.
        logger.warning("kiosk_card_hash_key_missing")
        return os.urandom(32)

    async def _open_printer(self) -> None:
        try:
            self.printer = await open_printer(self.devices.printer, self.settings)
        except Exception as exc:
            logger.error("kiosk_printer_unavailable error=%s", type(exc).__name__)
            self.alarms.add("printer_fault")

    def _open_inputs(self) -> None:
        deployment = self.settings.deployment
        policy = VirtualNumberPolicy(
            digits_min=deployment.virtual_number_length_min,
            digits_max=deployment.virtual_number_length_max,
            check_digit=CheckDigitScheme(deployment.virtual_number_check),
        )
        self.hub = IdentificationHub(card_hash_key=self._card_hash_key(), virtual_numbers=policy)
        try:
            self.card_reader = open_card_reader(self.devices.card_reader, self.settings)
        except Exception as exc:
            logger.error("kiosk_card_reader_unavailable error=%s", type(exc).__name__)
        if self.card_reader is not None and self._card_key_ok:
            self.hub.add_card_source(self.card_reader.monitor)
        try:
            self.scanner = open_scanner(self.devices.scanner, self.settings)
        except Exception as exc:
            logger.error("kiosk_scanner_unavailable error=%s", type(exc).__name__)
        if self.scanner is not None:
            self.hub.add_scanner(self.scanner.scanner)
        self.hub.start()

    async def _open_terminal(self) -> bool:
        if self.terminal_handle is not None:
            return True
        self._terminal_opened_at = time.monotonic()
        try:
            self.terminal_handle = await open_payment_terminal(
                self.devices.payment_terminal, self.settings, timeouts=self.terminal_timeouts
            )
        except Exception as exc:
            self._terminal_error = exc
            logger.error("kiosk_terminal_unavailable error=%s", type(exc).__name__)
            self.alarms.add("terminal_down")
            return False
        self._terminal_error = None
        self.alarms.discard("terminal_down")
        return True

    @property
    def terminal(self) -> ZvtTerminal | None:
        return None if self.terminal_handle is None else self.terminal_handle.terminal

    @property
    def terminal_simulator(self) -> TerminalSimulator | None:
        return None if self.terminal_handle is None else self.terminal_handle.simulator

    @property
    def printer_simulator(self) -> SimulatedPrinter | None:
        return None if self.printer is None else self.printer.simulator

    # ------------------------------------------------------------------ status

    @property
    def payments_paused(self) -> bool:
        """New payments wait while a payment's outcome is unknown or the journal is down."""
        return (
            not self.ready
            or bool(self.history.unresolved())
            or self.journal is None
            or "journal" in self.alarms
        )

    def staff_status(self) -> StaffStatus:
        return StaffStatus(
            ready=self.ready,
            online=self.online,
            stored_payments=self.stored_payments,
            alarms=tuple(sorted(self.alarms)),
            payments_paused=self.payments_paused,
        )

    async def refresh_status(self) -> StaffStatus:
        """Recount stored payments, look at the catalog's expiry, and tell the listener."""
        if self.journal is not None:
            with contextlib.suppress(JournalError):
                self.stored_payments = (await self.journal.stats()).stored_payments
        self._open_catalog()
        if self.catalog is not None:
            # An expired catalog (TUF freeze protection) still identifies residents,
            # but its debts may be out of date: staff should find out why it is not
            # being renewed.
            try:
                stale = await asyncio.to_thread(self.catalog.is_stale, int(time.time() * 1000))
            except CatalogError:
                stale = True
            if stale:
                self.alarms.add("catalog_stale")
            else:
                self.alarms.discard("catalog_stale")
        status = self.staff_status()
        self.listener.staff_status(status)
        return status

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_REFRESH_S)
            await self.refresh_status()

    def agent_state(self) -> Any:
        """The sync agent's status file (``central_sync.agent.state``), or None.

        The agent is a separate process; its status file says when central last
        acknowledged a batch or a heartbeat and whether its last attempts failed.
        """
        from central_sync.agent.errors import StateFileError
        from central_sync.agent.state import STATE_FILE_NAME, load_state

        try:
            return load_state(self.settings.terminal.data_dir / STATE_FILE_NAME)
        except StateFileError:
            return None

    async def check_online(self) -> bool | None:
        """Whether central is reachable: from the sync agent's status, else a TCP connect.

        The agent's word is taken while its status file is fresh (written within
        three heartbeat intervals): online when its last contact with central was
        an answer, not a failure. Without a fresh file (no agent running) the
        kiosk tries a TCP connect to central itself. None: central not configured.
        """
        url = self.settings.central.url
        if not url:
            return None
        state = await asyncio.to_thread(self.agent_state)
        now_ms = int(time.time() * 1000)
        fresh_ms = int(3 * self.settings.sync.heartbeat_interval_s * 1000)
        if state is not None and now_ms - state.updated_ms <= fresh_ms:
            last_ok = max(state.last_ack_ms or 0, state.last_heartbeat_ms or 0)
            return (
                state.final_refusal is None
                and state.consecutive_failures == 0
                and now_ms - last_ok <= fresh_ms
            )
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(self.settings.kiosk.online_check_timeout_s):
                _reader, writer = await asyncio.open_connection(parts.hostname, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def _online_loop(self) -> None:
        while True:
            online = await self.check_online()
            if online != self.online:
                self.online = online
                self.listener.staff_status(self.staff_status())
            await asyncio.sleep(self.settings.kiosk.online_check_interval_s)

    def _alarm(self, key: str) -> None:
        if key not in self.alarms:
            self.alarms.add(key)
            logger.warning("kiosk_alarm alarm=%s", key)
            self.listener.staff_status(self.staff_status())

    def clear_alarms(self) -> None:
        """Service mode: the technician has seen the alarms (device faults come back if real)."""
        keep = {"journal"} if self.journal is None else set()
        if self.history.unresolved():
            keep.add("payment_unknown")
        if self.terminal_handle is None:
            keep.add("terminal_down")
        self.alarms = self.alarms & keep
        self.listener.staff_status(self.staff_status())

    # ------------------------------------------------------------------ identification

    async def _identification_pump(self) -> None:
        assert self.hub is not None
        async for event in self.hub.events():
            self.listener.identification(event)

    def submit_virtual_number(self, text: str) -> None:
        """A number typed on the keypad; its event arrives through the listener."""
        if self.hub is not None:
            self.hub.submit_virtual_number(text)

    def simulate_card(self, uid_hex: str) -> bool:
        """Demo and tests: present a contactless card with ``uid_hex`` on the simulated reader."""
        if self.card_reader is None or self.card_reader.simulator is None:
            return False
        from drivers.pcsc.simulator import SimulatedUidCard

        sim = self.card_reader.simulator
        sim.present(SimulatedUidCard(bytes.fromhex(uid_hex)))
        sim.remove()
        return True

    async def simulate_scan(self, payload: bytes) -> bool:
        """Demo and tests: "scan" ``payload`` with the simulated scanner."""
        if self.scanner is None or self.scanner.simulator is None:
            return False
        with contextlib.suppress(TimeoutError):
            await self.scanner.scanner.wait_open(2.0)
        self.scanner.simulator.scan(payload)
        return True

    async def lookup(self, event: AccountIdentified) -> LookupResult:
        """The account an identification names, with this kiosk's payments since the catalog."""
        self._open_catalog()
        catalog = self.catalog
        if catalog is None:
            return LookupResult(session=None, failure="unavailable")
        ref = event.reference
        bill_sum: int | None = None
        try:
            if isinstance(ref, VirtualNumberRef):
                view = await asyncio.to_thread(catalog.account, ref.number)
            elif isinstance(ref, CardHashRef):
                view = await asyncio.to_thread(catalog.account_by_card_hash, ref.card_hash)
            elif isinstance(ref, QrRef):
                number = "".join(ch for ch in (ref.payment.account_reference or "") if ch.isdigit())
                view = await asyncio.to_thread(catalog.account, number) if number else None
                bill_sum = ref.payment.sum_kopecks
            else:  # pragma: no cover - the union is exhaustive
                view = None
            published_ms = await asyncio.to_thread(catalog.published_at_ms)
        except CatalogError as exc:
            logger.error("kiosk_catalog_read_failed error=%s", type(exc).__name__)
            return LookupResult(session=None, failure="unavailable")
        if view is None:
            logger.info("kiosk_account_unknown source=%s", event.source)
            return LookupResult(session=None, failure="unknown")
        paid = self.history.paid_since(view.virtual_number, published_ms)
        session = AccountSession.of(
            view,
            event.source,
            paid_here=paid,
            bill_sum_minor=bill_sum,
            today=self.today().isoformat(),
        )
        logger.info("kiosk_account_found source=%s services=%d", event.source, len(view.services))
        return LookupResult(session=session)

    @staticmethod
    def failure_text(event: IdentificationFailed) -> dict[str, str]:
        return _both(event.message_ru, event.message_en)

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock()).date()

    # ------------------------------------------------------------------ payments

    def _step(self, step: str, payment_id: str) -> None:
        logger.info("kiosk_payment_step step=%s payment_id=%s", step, payment_id)
        if self.probe is not None:
            self.probe(step, payment_id)

    async def _append(self, kind: str, body: Mapping[str, Any]) -> jmod.Entry:
        assert self.journal is not None
        entry = await self.journal.append(kind, body)
        self.history.add(entry)
        return entry

    async def _append_durably(self, kind: str, body: Mapping[str, Any]) -> jmod.Entry | None:
        """Append, and after a write failure recover the journal and try once more.

        The same body is appended again: for payment kinds the journal returns
        the stored entry if the first attempt had reached the disk after all.
        """
        try:
            return await self._append(kind, body)
        except (jmod.JournalWriteError, jmod.JournalUnavailableError):
            logger.error("kiosk_journal_write_failed kind=%s", kind)
        assert self.journal is not None
        try:
            await self.journal.recover()
            return await self._append(kind, body)
        except JournalError:
            self._alarm("journal")
            return None

    async def _learn_last_receipt(self) -> bool:
        """Ask the terminal which transaction it booked last (start-up, after an unknown)."""
        terminal = self.terminal
        if terminal is None:
            return False
        from drivers.zvt import ZvtError

        try:
            async with self._terminal_lock:
                last = await terminal.last_transaction()
        except ZvtError as exc:
            logger.warning("kiosk_terminal_last_failed error=%s", type(exc).__name__)
            return False
        self.history.last_receipt_no = None if last is None else last.receipt_no
        self.history.last_receipt_known = True
        self._receipt_before_known = True
        return True

    async def _ensure_terminal(self) -> bool:
        if self.terminal_handle is None and not await self._open_terminal():
            return False
        if not self._receipt_before_known:
            return await self._learn_last_receipt()
        return True

    async def pay(
        self,
        order: Order,
        *,
        lang: str,
        on_update: Callable[[PaymentUpdate], None],
    ) -> PaymentReport:
        """Take ``order``'s total by card, write-ahead (see :mod:`kiosk.payment`)."""
        payment_id = new_payment_id()
        machine = PaymentMachine(payment_id)
        if self._current is not None and not self._current.phase.final:
            raise RuntimeError("one payment at a time")
        self._current = machine

        def refuse(key: str, reason: Mapping[str, str] | None = None) -> PaymentReport:
            machine.fire(PaymentEvent.REFUSED)
            logger.info("kiosk_payment_refused payment_id=%s key=%s", payment_id, key)
            return PaymentReport(
                payment_id=payment_id, phase=machine.phase, message_key=key, reason=reason or {}
            )

        if not self.ready:
            return refuse("payment.starting_up")
        if self.journal is None or "journal" in self.alarms:
            return refuse("payment.journal_down")
        if self.history.unresolved():
            return refuse("payment.unknown", _both(payment_id, payment_id))
        on_update(PaymentUpdate(phase=machine.phase, status_key="payment.starting"))
        if not await self._ensure_terminal():
            return refuse("payment.terminal_down")
        intent = PaymentIntent(
            payment_id=payment_id,
            amount_minor=order.total_minor,
            currency=order.currency,
            account=order.account,
            channel="kiosk-card",
            extra={
                "items": [
                    {
                        "service": i.code,
                        "name_ru": i.name_ru,
                        "name_en": i.name_en,
                        "provider": i.provider_id,
                        "period": i.period,
                        "amount_minor": i.amount_minor,
                        "debt_minor": i.debt_minor,
                    }
                    for i in order.items
                ],
                "surcharge_minor": order.surcharge_minor,
                "identified_by": order.source,
                "catalog_version": order.catalog_version,
                "lang": lang,
                "terminal_receipt_before": self.history.last_receipt_no,
            },
        )
        try:
            intent_entry = await self._append(jmod.KIND_PAYMENT_INTENT, intent.to_body())
        except OfflineLimitError as exc:
            key = f"limit.{exc.limit}"
            from kiosk.i18n import t

            return refuse("payment.offline_limit", _both(t("ru", key), t("en", key)))
        except JournalError as exc:
            # A failed write may still have reached the disk; start-up recovery
            # finds such an intent "not booked", because the terminal was never asked.
            logger.error("kiosk_intent_write_failed error=%s", type(exc).__name__)
            self._alarm("journal")
            return refuse("payment.journal_down")
        machine.fire(PaymentEvent.INTENT_WRITTEN)
        self._step("intent-written", payment_id)
        await self.refresh_status()
        return await self._at_terminal(machine, intent_entry.body, order, on_update)

    async def _at_terminal(
        self,
        machine: PaymentMachine,
        intent: Mapping[str, Any],
        order: Order,
        on_update: Callable[[PaymentUpdate], None],
    ) -> PaymentReport:
        from drivers.zvt import PaymentStatus, ZvtCommandRejected, ZvtError, codes

        terminal = self.terminal
        assert terminal is not None
        payment_id = machine.payment_id

        def status(update: Any) -> None:
            key = _STATUS_KEYS.get(update.code)
            self._step("terminal-status", payment_id)
            on_update(
                PaymentUpdate(
                    phase=machine.phase,
                    status_key=key or "payment.wait",
                    terminal_text={} if key else _both(update.message("ru"), update.message("en")),
                    cancellable=machine.phase is PaymentPhase.AT_TERMINAL
                    and update.code in _CANCELLABLE_STATUSES,
                )
            )

        async with self._terminal_lock:
            machine.fire(PaymentEvent.TERMINAL_ASKED)
            self._step("terminal-asked", payment_id)
            on_update(
                PaymentUpdate(
                    phase=machine.phase, status_key="payment.insert_card", cancellable=True
                )
            )
            try:
                outcome = await terminal.pay(
                    order.total_minor, currency=order.currency, on_status=status
                )
            except ZvtCommandRejected as exc:
                # Refused before it started: nothing was booked.
                body = {"reason": "terminal-rejected", "result_code": exc.result_code}
                return await self._finish(machine, PaymentEvent.FAILED, "failed", intent, body,
                                          "payment.busy")  # fmt: skip
            except ZvtError as exc:
                if not exc.outcome_unknown:
                    body = {"reason": "terminal-error", "error": type(exc).__name__}
                    return await self._finish(
                        machine, PaymentEvent.FAILED, "failed", intent, body,
                        "payment.terminal_down",
                    )  # fmt: skip
                logger.warning("kiosk_payment_outcome_unknown payment_id=%s", payment_id)
                machine.fire(PaymentEvent.UNKNOWN)
            else:
                self._step("terminal-answered", payment_id)
                fields = _transaction_fields(outcome)
                self.history.last_receipt_no = outcome.receipt_no
                if outcome.status is PaymentStatus.APPROVED:
                    report = await self._finish(
                        machine, PaymentEvent.APPROVED, "approved", intent, fields, None
                    )
                    record = self.history.payment(payment_id)
                    if record is not None and record.cancel_requested:
                        return await self._reverse(machine, record, report)
                    return report
                if outcome.status is PaymentStatus.ABORTED:
                    return await self._finish(
                        machine, PaymentEvent.ABORTED, "cancelled", intent, fields,
                        "payment.cancelled",
                    )  # fmt: skip
                reason = _both(
                    codes.result_text(outcome.result_code, "ru"),
                    codes.result_text(outcome.result_code, "en"),
                )
                return await self._finish(
                    machine, PaymentEvent.DECLINED, "declined", intent, fields,
                    "payment.declined", reason,
                )  # fmt: skip
        # The answer was lost: ask the terminal what happened, as start-up would.
        on_update(PaymentUpdate(phase=machine.phase, status_key="payment.checking"))
        self._receipt_before_known = False
        deadline = time.monotonic() + self.settings.kiosk.recovery_timeout_s
        record = self.history.payment(payment_id)
        assert record is not None
        resolved = await self._resolve(record, deadline=deadline, machine=machine, live=True)
        if resolved is None:
            machine.fire(PaymentEvent.GAVE_UP)
            self._alarm("payment_unknown")
            self._spawn(self._recovery_loop(), "kiosk-recovery")
            return PaymentReport(
                payment_id=payment_id,
                phase=machine.phase,
                message_key="payment.unknown",
                reason=_both(payment_id, payment_id),
                intent=intent,
            )
        return resolved

    async def _finish(
        self,
        machine: PaymentMachine,
        event: PaymentEvent,
        outcome: str,
        intent: Mapping[str, Any],
        fields: Mapping[str, Any],
        message_key: str | None,
        reason: Mapping[str, str] | None = None,
        *,
        resolved_by: str = "terminal",
    ) -> PaymentReport:
        payment_id = machine.payment_id
        body = PaymentResult(
            payment_id=payment_id,
            outcome=outcome,
            extra={**fields, "resolved_by": resolved_by},
        ).to_body()
        entry = await self._append_durably(jmod.KIND_PAYMENT_RESULT, body)
        machine.fire(event)
        if entry is None:
            # The terminal's answer stands but is not on disk: payments pause
            # and start-up recovery asks the terminal again.
            logger.error("kiosk_result_not_recorded payment_id=%s outcome=%s", payment_id, outcome)
        else:
            self._step("result-recorded", payment_id)
        logger.info("kiosk_payment_done payment_id=%s outcome=%s", payment_id, outcome)
        await self.refresh_status()
        return PaymentReport(
            payment_id=payment_id,
            phase=machine.phase,
            message_key=message_key,
            reason=reason or {},
            intent=intent,
            result=body,
            paid_at=dt.datetime.fromtimestamp(
                (entry.ts_ms / 1000) if entry is not None else self.clock()
            ),
        )

    async def cancel_payment(self) -> bool:
        """The resident pressed Cancel: journal the request, then ask the terminal to abort."""
        machine = self._current
        terminal = self.terminal
        if machine is None or machine.phase is not PaymentPhase.AT_TERMINAL or terminal is None:
            return False
        machine.fire(PaymentEvent.CANCEL_REQUESTED)
        # Journaled first: if the kiosk dies now and the terminal approves anyway,
        # recovery knows the resident had cancelled and reverses.
        with contextlib.suppress(JournalError):
            await self._append(
                jmod.KIND_DEVICE_EVENT,
                {"event": EVENT_CANCEL_REQUESTED, "payment_id": machine.payment_id},
            )
        from drivers.zvt import ZvtError

        try:
            return await terminal.abort()
        except ZvtError as exc:
            logger.warning("kiosk_abort_failed error=%s", type(exc).__name__)
            return False

    # ------------------------------------------------------------------ recovery

    async def recover(self) -> int:
        """Finish pending reversals, resolve outcome-unknown payments; return how many are left."""
        if self.journal is None:
            return 0
        pending = self.history.reversals_pending()
        unresolved = self.history.unresolved()
        if not pending and not unresolved:
            if self.terminal_handle is not None and not self._receipt_before_known:
                await self._learn_last_receipt()
            return 0
        logger.warning(
            "kiosk_recovery_start unresolved=%d reversals=%d", len(unresolved), len(pending)
        )
        if not await self._open_terminal():
            self._alarm("payment_unknown")
            self._spawn(self._recovery_loop(), "kiosk-recovery")
            return len(unresolved) + len(pending)
        for record in pending:
            await self._retry_reversal(record)
        deadline = time.monotonic() + self.settings.kiosk.recovery_timeout_s
        for record in self.history.unresolved():
            report = await self._resolve(record, deadline=deadline, machine=None, live=False)
            if report is None:
                self._alarm("payment_unknown")
                self._spawn(self._recovery_loop(), "kiosk-recovery")
                break
        left = len(self.history.unresolved())
        if left == 0:
            self.alarms.discard("payment_unknown")
            await self._learn_last_receipt()
        await self.refresh_status()
        return left

    async def _recovery_loop(self) -> None:
        while self.history.unresolved() or self.history.reversals_pending():
            await asyncio.sleep(RECOVERY_RETRY_S)
            await self.recover()

    async def _resolve(
        self,
        record: PaymentRecord,
        *,
        deadline: float,
        machine: PaymentMachine | None,
        live: bool,
    ) -> PaymentReport | None:
        """Ask the terminal until ``deadline`` and record what it says; None if it never answers."""
        from drivers.zvt import ZvtError

        terminal = self.terminal
        if terminal is None:
            return None
        intent = self._intent_body(record)
        backoff = RECOVERY_BACKOFF_MIN_S
        while True:
            try:
                async with self._terminal_lock:
                    last = await terminal.last_transaction()
                break
            except ZvtError as exc:
                logger.warning(
                    "kiosk_recovery_ask_failed payment_id=%s error=%s",
                    record.payment_id,
                    type(exc).__name__,
                )
            if time.monotonic() + backoff > deadline:
                return None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECOVERY_BACKOFF_MAX_S)
        decision = decide_recovery(
            amount_minor=record.amount_minor,
            currency=record.currency,
            receipt_no_before=record.receipt_no_before,
            last=last,
            cancel_requested=record.cancel_requested,
        )
        logger.warning(
            "kiosk_recovery_decision payment_id=%s action=%s reason=%s",
            record.payment_id,
            decision.action.value,
            decision.reason,
        )
        if decision.alarm:
            # The terminal's last transaction could not be attributed: staff
            # reconcile it with the bank's registry (kept until cleared).
            self._alarm("unattributed")
        if machine is None:
            machine = PaymentMachine(record.payment_id)
            for event in (PaymentEvent.INTENT_WRITTEN, PaymentEvent.TERMINAL_ASKED):
                machine.fire(event)
            machine.fire(PaymentEvent.UNKNOWN)
        fields: dict[str, Any] = {"reason": decision.reason}
        if last is not None and decision.action is not RecoveryAction.RECORD_NOT_BOOKED:
            fields.update(_transaction_fields(last))
            self.history.last_receipt_no = last.receipt_no
        if decision.action is RecoveryAction.RECORD_NOT_BOOKED:
            report = await self._finish(
                machine, PaymentEvent.FAILED, "failed", intent, fields, "payment.failed",
                _both("терминал не провёл платёж", "the terminal did not book it"),
                resolved_by="recovery",
            )  # fmt: skip
        elif decision.action is RecoveryAction.RECORD_DECLINED:
            from drivers.zvt import codes

            code = last.result_code if last is not None else 0xFF
            report = await self._finish(
                machine, PaymentEvent.DECLINED, "declined", intent, fields, "payment.declined",
                _both(codes.result_text(code, "ru"), codes.result_text(code, "en")),
                resolved_by="recovery",
            )  # fmt: skip
        else:
            report = await self._finish(
                machine, PaymentEvent.APPROVED, "approved", intent, fields, None,
                resolved_by="recovery",
            )  # fmt: skip
            if not live:
                # Approved while the kiosk was down: the payment stands, but the
                # resident never saw a receipt. Staff can reprint it.
                self._alarm("recovered")
            if decision.action is RecoveryAction.REVERSE:
                fresh = self.history.payment(record.payment_id)
                assert fresh is not None
                report = await self._reverse(machine, fresh, report)
        self._receipt_before_known = True
        return report

    def _intent_body(self, record: PaymentRecord) -> dict[str, Any]:
        return {
            "payment_id": record.payment_id,
            "account": record.account,
            "amount_minor": record.amount_minor,
            "currency": record.currency,
        }

    async def _reverse(
        self, machine: PaymentMachine, record: PaymentRecord, report: PaymentReport
    ) -> PaymentReport:
        """Reverse an approved payment the resident had cancelled; journal before and after."""
        receipt_no = record.receipt_no
        if receipt_no is None:
            self._alarm("reversal_failed")
            return report
        await self._append_durably(
            jmod.KIND_DEVICE_EVENT,
            {"event": EVENT_REVERSAL_REQUESTED, "payment_id": record.payment_id},
        )
        if await self._send_reversal(record, receipt_no):
            machine.fire(PaymentEvent.REVERSED)
            return PaymentReport(
                payment_id=record.payment_id,
                phase=machine.phase,
                message_key="payment.reversed",
                intent=report.intent,
                result=report.result,
            )
        return report

    async def _retry_reversal(self, record: PaymentRecord) -> None:
        receipt_no = record.receipt_no
        if receipt_no is not None:
            await self._send_reversal(record, receipt_no)

    async def _send_reversal(self, record: PaymentRecord, receipt_no: int) -> bool:
        from drivers.zvt import ZvtError

        terminal = self.terminal
        if terminal is None:
            self._alarm("reversal_failed")
            return False
        try:
            async with self._terminal_lock:
                outcome = await terminal.reverse(receipt_no)
        except ZvtError as exc:
            logger.error("kiosk_reversal_failed error=%s", type(exc).__name__)
            self._alarm("reversal_failed")
            return False
        if not outcome.approved and outcome.result_code != RESULT_ALREADY_REVERSED:
            logger.error("kiosk_reversal_refused result=%02X", outcome.result_code)
            self._alarm("reversal_failed")
            return False
        if outcome.receipt_no is not None:
            self.history.last_receipt_no = outcome.receipt_no
        body = {
            "payment_id": record.payment_id,
            "original_receipt_no": receipt_no,
            "amount_minor": record.amount_minor,
            "currency": record.currency,
            "result_code": outcome.result_code,
            "reason": "cancelled-by-resident",
        }
        if outcome.receipt_no is not None:
            body["receipt_no"] = outcome.receipt_no
        await self._append_durably(jmod.KIND_REVERSAL, body)
        logger.warning("kiosk_payment_reversed payment_id=%s", record.payment_id)
        return True

    # ------------------------------------------------------------------ receipts

    def receipt(self, report_or_record: PaymentReport | PaymentRecord, lang: str) -> Receipt:
        """The receipt of an approved payment, from its journal bodies."""
        if isinstance(report_or_record, PaymentReport):
            record = self.history.payment(report_or_record.payment_id)
        else:
            record = report_or_record
        if record is None or record.outcome != "approved":
            raise ValueError("only an approved payment has a receipt")
        from kiosk import documents

        intent = self._full_intent(record)
        ts = record.result_ts_ms or record.intent_ts_ms
        return documents.build_receipt(
            intent,
            record.result_body,
            paid_at=dt.datetime.fromtimestamp(ts / 1000),
            header=self.settings.kiosk.receipt_header,
            terminal_label=self.settings.terminal.label or "kiosk",
            lang=lang,
        )

    def _full_intent(self, record: PaymentRecord) -> dict[str, Any]:
        body = self._intent_body(record)
        body["surcharge_minor"] = record.surcharge_minor
        body["items"] = list(record.item_bodies)
        return body

    async def print_receipt(self, receipt: Receipt, *, lang: str, payment_id: str) -> PrintOutcome:
        """Print a receipt; on a fault the payment stands and staff get an alarm."""
        outcome = await self._print(lambda p: p.print_receipt(receipt, lang=lang))
        if outcome.ok:
            with contextlib.suppress(JournalError):
                await self._append(
                    jmod.KIND_DEVICE_EVENT,
                    {"event": EVENT_RECEIPT_PRINTED, "payment_id": payment_id},
                )
            self._step("receipt-printed", payment_id)
        return outcome

    async def print_document(self, document: Document) -> PrintOutcome:
        return await self._print(lambda p: p.print_document(document))

    async def _print(self, action: Callable[[Any], Any]) -> PrintOutcome:
        from drivers.escpos.errors import CoverOpenError, PaperOutError, PrinterError

        if self.printer is None and not await self._reopen_printer():
            return PrintOutcome(
                ok=False, fault="absent", reason=_both("нет принтера", "no printer")
            )
        assert self.printer is not None
        try:
            report = await action(self.printer.printer)
        except PaperOutError as exc:
            await self._device_event("printer-paper-out")
            self._alarm("paper_out")
            return PrintOutcome(ok=False, fault="paper_out", reason=_error_text(exc))
        except CoverOpenError as exc:
            await self._device_event("printer-cover-open")
            self._alarm("printer_fault")
            return PrintOutcome(ok=False, fault="cover_open", reason=_error_text(exc))
        except PrinterError as exc:
            await self._device_event("printer-fault")
            self._alarm("printer_fault")
            return PrintOutcome(ok=False, fault="fault", reason=_error_text(exc))
        if getattr(report, "paper_near_end", False):
            await self._device_event("printer-paper-low")
        self.alarms.discard("paper_out")
        self.alarms.discard("printer_fault")
        return PrintOutcome(ok=True)

    async def _reopen_printer(self) -> bool:
        try:
            self.printer = await open_printer(self.devices.printer, self.settings)
        except Exception:
            return False
        return True

    async def _device_event(self, event: str) -> None:
        if self.journal is not None:
            with contextlib.suppress(JournalError):
                await self._append(jmod.KIND_DEVICE_EVENT, {"event": event})

    # ------------------------------------------------------------------ meters and statements

    def reading_points(
        self, session: AccountSession, code: str, meter_id: str
    ) -> tuple[ReadingPoint, ...]:
        meter = self._meter(session, code, meter_id)
        submitted = [
            (r.date, r.value_milli) for r in self.history.readings(session.virtual_number, meter_id)
        ]
        return reading_history(meter.last_reading_milli, meter.last_read_on, submitted)

    @staticmethod
    def _meter(session: AccountSession, code: str, meter_id: str) -> Any:
        for meter in session.line(code).view.service.meters:
            if meter.meter_id == meter_id:
                return meter
        raise KeyError(meter_id)

    async def submit_reading(
        self, session: AccountSession, code: str, meter_id: str, value_milli: int
    ) -> ReadingOutcome:
        """Validate a reading against the previous one and journal it."""
        meter = self._meter(session, code, meter_id)
        points = self.reading_points(session, code, meter_id)
        previous = points[-1].value_milli
        problem = _reading_problem(previous, value_milli, meter.unit)
        if problem is not None:
            return ReadingOutcome(ok=False, problem=problem, previous_milli=previous)
        if self.journal is None:
            return ReadingOutcome(ok=False, problem="journal", previous_milli=previous)
        line = session.line(code)
        body = {
            "account": session.virtual_number,
            "service": code,
            "provider": line.view.service.provider.id,
            "meter_id": meter_id,
            "unit": meter.unit,
            "reading_milli": value_milli,
            "previous_milli": previous,
            "date": self.today().isoformat(),
        }
        try:
            await self._append(jmod.KIND_METER_READING, body)
        except JournalError as exc:
            logger.error("kiosk_reading_write_failed error=%s", type(exc).__name__)
            return ReadingOutcome(ok=False, problem="journal", previous_milli=previous)
        return ReadingOutcome(
            ok=True, previous_milli=previous, consumption_milli=value_milli - previous
        )

    def payments_between(self, account: str, start: dt.date, end: dt.date) -> list[PaymentRecord]:
        start_ms = int(dt.datetime.combine(start, dt.time()).timestamp() * 1000)
        end_ms = int(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()).timestamp() * 1000)
        return self.history.payments(account, start_ms, end_ms)

    # ------------------------------------------------------------------ service mode

    async def check_pin(self, pin: str) -> PinCheck:
        """Check a technician PIN (PBKDF2 off the event loop) with lockout."""
        stored = self.settings.kiosk.service_pin_hash.get_secret_value()
        if not stored:
            return PinCheck(ok=False, attempts_left=0, disabled=True)
        locked = self.pin_gate.locked_s()
        if locked:
            return PinCheck(ok=False, attempts_left=0, locked_s=locked)
        try:
            ok = await asyncio.to_thread(verify_pin, pin, stored)
        except PinHashError:
            logger.error("kiosk_pin_hash_malformed")
            return PinCheck(ok=False, attempts_left=0, disabled=True)
        result = self.pin_gate.record(ok)
        logger.info("kiosk_service_pin ok=%s", ok)
        return result

    async def service_report(self) -> ServiceReport:
        """Devices, journal queue, catalog and sync state for service mode."""
        from drivers.zvt import ZvtError

        terminal: tuple[str, Mapping[str, str]] = ("absent", {})
        if self.terminal is not None:
            try:
                async with asyncio.timeout(10):
                    async with self._terminal_lock:
                        status = await self.terminal.status()
                terminal = ("ok", {}) if status.ready else (
                    "fault", _both(status.message("ru"), status.message("en"))
                )  # fmt: skip
            except (ZvtError, TimeoutError) as exc:
                terminal = ("fault", _error_text(exc))
        printer = await self._printer_state()
        reader: tuple[str, Mapping[str, str]] = ("absent", {})
        if self.card_reader is not None:
            readers = self.card_reader.readers
            reader = ("ok", _both(", ".join(readers), ", ".join(readers))) if readers else (
                "fault", _both("нет считывателя", "no reader found")
            )  # fmt: skip
        scanner: tuple[str, Mapping[str, str]] = ("absent", {})
        if self.scanner is not None:
            scanner = ("ok", {}) if self.scanner.is_open else (
                "fault", _both("порт закрыт", "port not open")
            )  # fmt: skip
        stats = None
        if self.journal is not None:
            with contextlib.suppress(JournalError):
                stats = await self.journal.stats()
        agent = await asyncio.to_thread(self.agent_state)
        now_ms = int(self.clock() * 1000)
        version = accounts = applied = 0
        age: float | None = None
        stale = True
        self._open_catalog()
        if self.catalog is not None:
            with contextlib.suppress(CatalogError):
                cs = await asyncio.to_thread(self.catalog.status, now_ms)
                version, accounts, applied, stale = (
                    cs.version,
                    cs.accounts,
                    cs.applied_at_ms,
                    cs.stale,
                )
                age = cs.age_s if cs.published_at_ms else None
        return ServiceReport(
            terminal=terminal,
            printer=printer,
            card_reader=reader,
            scanner=scanner,
            unsent_entries=0 if stats is None else stats.head_seq - stats.acknowledged_through,
            oldest_pending_age_s=None if stats is None else stats.oldest_pending_age_s,
            stored_payments=0 if stats is None else stats.stored_payments,
            stored_amount_minor=0
            if stats is None
            else sum(stats.pending_amount_minor_by_currency.values()),
            outcome_unknown=0 if stats is None else stats.outcome_unknown,
            catalog_version=version,
            catalog_accounts=accounts,
            catalog_age_s=age,
            catalog_stale=stale,
            catalog_applied_at_ms=applied,
            acknowledged_through=0 if stats is None else stats.acknowledged_through,
            last_ack_ms=None if agent is None else agent.last_ack_ms,
            online=self.online,
            alarms=tuple(sorted(self.alarms)),
        )

    async def _printer_state(self) -> tuple[str, Mapping[str, str]]:
        from drivers.escpos.errors import PrinterError

        if self.printer is None:
            return ("absent", {})
        try:
            status = await self.printer.printer.status()
        except PrinterError as exc:
            return ("fault", _error_text(exc))
        if status.paper_out:
            return ("paper_out", {})
        if status.cover_open or status.error:
            return ("fault", _both("крышка открыта или ошибка", "cover open or error"))
        if status.paper_near_end:
            return ("paper_low", {})
        return ("ok", {})

    async def print_test_receipt(self, lang: str) -> PrintOutcome:
        from drivers.escpos.receipt import sample_receipt

        return await self._print(
            lambda p: p.print_receipt(sample_receipt(lang=lang, test=True), lang=lang)
        )

    async def reprint_last(self, lang: str) -> PrintOutcome:
        record = self.history.last_payment()
        if record is None:
            return PrintOutcome(
                ok=False, fault="absent", reason=_both("платежей нет", "no payments")
            )
        return await self._print(lambda p: p.print_receipt(self.receipt(record, lang), lang=lang))

    async def end_of_day(self) -> tuple[bool, int | None, Mapping[str, str]]:
        """Run End-of-Day on the terminal and journal its totals."""
        from drivers.zvt import ZvtError

        if self.terminal is None or self.history.unresolved():
            return False, None, _both("терминал недоступен", "terminal not available")
        try:
            async with self._terminal_lock:
                result = await self.terminal.end_of_day()
        except ZvtError as exc:
            return False, None, _error_text(exc)
        body: dict[str, Any] = {
            "result_code": result.result_code,
            "currency": result.currency or self.settings.deployment.currency,
            "total_minor": result.total_minor or 0,
        }
        if result.totals is not None:
            body["count"] = result.totals.count
        if self.journal is not None:
            with contextlib.suppress(JournalError):
                await self._append(jmod.KIND_END_OF_DAY, body)
        # The terminal's last transaction is now the end-of-day (no receipt number).
        self.history.last_receipt_no = None
        return result.ok, result.total_minor, _both(result.message("ru"), result.message("en"))
