"""The asyncio ZVT client: ``ZvtTerminal``.

One command runs at a time (an :class:`asyncio.Lock`); :meth:`ZvtTerminal.abort`
may be called while a payment runs. Every wait has a timeout (see
:class:`~drivers.zvt.session.ZvtTimeouts`); the event loop never blocks.

Errors and what the caller does with them:

* :class:`ZvtCommandRejected` — the terminal refused before starting (``84 xx``,
  e.g. busy). Nothing was booked; retry later if ``is_temporary``.
* any :class:`ZvtError` with ``outcome_unknown=True`` — a payment or reversal
  was sent and its answer was lost (timeout, unplugged cable, broken TCP,
  contradictory answer). Do not retry: call :meth:`ZvtTerminal.last_transaction`
  and compare with the journal, then record the result or reverse by receipt
  number.
* other temporary errors — the connection is marked broken and the next call
  reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Final, Self

from drivers.zvt import codes
from drivers.zvt.apdu import _NeedData
from drivers.zvt.errors import (
    ZvtCommandRejected,
    ZvtError,
    ZvtProtocolError,
    ZvtTemporaryDeviceError,
    ZvtTimeout,
    ZvtUsageError,
)
from drivers.zvt.fields import FULL_PAN_RUN
from drivers.zvt.framing import FRAME_BYTES_MAX_DEFAULT
from drivers.zvt.link import RETRIES_MAX_DEFAULT
from drivers.zvt.messages import (
    DEFAULT_CONFIG_BYTE,
    AbortRequest,
    Ack,
    Authorization,
    Completion,
    EcrCommand,
    EndOfDay,
    EndOfDayTotals,
    IntermediateStatus,
    Nack,
    PrintLine,
    PrintTextBlock,
    Registration,
    RepeatReceipt,
    Reversal,
    StatusEnquiry,
    StatusInformation,
    TerminalAbort,
)
from drivers.zvt.session import Framing, SessionState, ZvtConnection, ZvtTimeouts
from drivers.zvt.transport import ByteTransport, default_framing, make_transport

logger = logging.getLogger(__name__)

_READ_SLICE_S: Final = 0.2  # re-check timers at least this often
PROTOCOL_ERRORS_MAX: Final = 8  # per command, before we give up
RECEIPT_LINES_MAX: Final = 500
STATUS_QUEUE_MAX: Final = 64
_BUSY_TERMINAL_STATUS: Final = frozenset({0x9C})

StatusCallback = Callable[[IntermediateStatus], object]


class PaymentStatus(StrEnum):
    """How a payment or reversal ended."""

    APPROVED = "approved"
    DECLINED = "declined"
    ABORTED = "aborted"


class Operation(StrEnum):
    """What a :class:`PaymentOutcome` describes."""

    PAYMENT = "payment"
    REVERSAL = "reversal"


def _check_no_pan(**texts: str | None) -> None:
    for name, text in texts.items():
        if text is not None and FULL_PAN_RUN.search(text):
            raise ZvtUsageError(f"{name} looks like a full card number")


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentOutcome:
    """The answer of the terminal to a payment (Authorization) or a reversal.

    ``approved_offline`` is true when the terminal approved without the bank
    (see :attr:`StatusInformation.approved_offline`). ``masked_pan`` is at most
    BIN + last 4.
    """

    operation: Operation
    status: PaymentStatus
    result_code: int
    amount_minor: int | None
    currency: str
    approved_offline: bool = False
    receipt_no: int | None = None
    trace_no: int | None = None
    masked_pan: str | None = None
    card_type: int | None = None
    card_name: str | None = None
    auth_code: str | None = None
    terminal_id: str | None = None
    date_mmdd: str | None = None
    time_hhmmss: str | None = None
    receipt_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.status is PaymentStatus.APPROVED) != (self.result_code == codes.RESULT_OK):
            raise ZvtUsageError("approved exactly when the result code is 00")
        if self.approved_offline and self.status is not PaymentStatus.APPROVED:
            raise ZvtUsageError("only an approved payment can be approved offline")
        if self.status is PaymentStatus.APPROVED and self.amount_minor is None:
            raise ZvtUsageError("an approved outcome has an amount")
        if self.amount_minor is not None and self.amount_minor < 0:
            raise ZvtUsageError("amount must not be negative")
        _check_no_pan(masked_pan=self.masked_pan, card_name=self.card_name)

    @property
    def approved(self) -> bool:
        """True when the money moved (or, for a reversal, moved back)."""
        return self.status is PaymentStatus.APPROVED

    def message(self, lang: codes.Lang = "en") -> str:
        """Text of the result code for the resident or technician."""
        return codes.result_text(self.result_code, lang)


@dataclass(frozen=True, slots=True, kw_only=True)
class LastTransaction:
    """What the terminal says about its last transaction (for recovery)."""

    result_code: int
    amount_minor: int | None
    currency: str | None
    receipt_no: int | None
    trace_no: int | None
    approved_offline: bool = False
    masked_pan: str | None = None
    card_name: str | None = None
    auth_code: str | None = None
    terminal_id: str | None = None
    date_mmdd: str | None = None
    time_hhmmss: str | None = None

    def __post_init__(self) -> None:
        _check_no_pan(masked_pan=self.masked_pan, card_name=self.card_name)

    @property
    def approved(self) -> bool:
        """Result code 00."""
        return self.result_code == codes.RESULT_OK

    @classmethod
    def from_status(cls, info: StatusInformation) -> LastTransaction:
        """Build from the Status-Information of Repeat Receipt."""
        return cls(
            result_code=info.result_code,
            amount_minor=info.amount_minor,
            currency=info.currency,
            receipt_no=info.receipt_no,
            trace_no=info.trace_no,
            approved_offline=info.approved_offline,
            masked_pan=info.masked_pan,
            card_name=info.card_name,
            auth_code=info.auth_code,
            terminal_id=info.terminal_id,
            date_mmdd=info.date_mmdd,
            time_hhmmss=info.time_hhmmss,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RepeatedReceipt:
    """Answer to Repeat Receipt: the last transaction and its receipt text."""

    transaction: LastTransaction | None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalStatus:
    """Answer to Status Enquiry (terminal status code, chapter 11)."""

    terminal_status: int
    sw_version: str | None = None
    terminal_id: str | None = None

    @property
    def ready(self) -> bool:
        """Terminal status 00."""
        return self.terminal_status == 0x00

    def message(self, lang: codes.Lang = "en") -> str:
        """Text of the terminal status code."""
        return codes.terminal_status_text(self.terminal_status, lang)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationResult:
    """Answer to Registration."""

    terminal_id: str | None
    status_byte: int | None
    currency: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfDayResult:
    """Answer to End-of-Day: result and totals (BMP 60)."""

    result_code: int
    total_minor: int | None
    currency: str | None
    trace_no: int | None = None
    totals: EndOfDayTotals | None = None
    date_mmdd: str | None = None
    time_hhmmss: str | None = None
    receipt_lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Result code 00."""
        return self.result_code == codes.RESULT_OK

    def message(self, lang: codes.Lang = "en") -> str:
        """Text of the result code."""
        return codes.result_text(self.result_code, lang)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkCounters:
    """Link health since the last (re)connect, for diagnostics."""

    frames_sent: int
    frames_rejected: int
    garbage_bytes: int


@dataclass(slots=True)
class _CommandRun:
    """What the terminal sent during one command."""

    status_infos: list[StatusInformation] = field(default_factory=list)
    statuses: int = 0
    lines: list[str] = field(default_factory=list)
    completion: Completion | None = None
    abort: TerminalAbort | None = None
    protocol_errors: int = 0

    @property
    def finished(self) -> bool:
        return self.completion is not None or self.abort is not None

    def add_lines(self, lines: tuple[str, ...] | list[str]) -> None:
        room = RECEIPT_LINES_MAX - len(self.lines)
        if room > 0:
            self.lines.extend(lines[:room])


class PaymentSession:
    """A running payment: iterate it for intermediate statuses, await ``outcome()``.

    Statuses are display hints; when nobody reads them the oldest are dropped
    (the queue holds at most ``STATUS_QUEUE_MAX``).
    """

    def __init__(self, terminal: ZvtTerminal, amount_minor: int, currency: str) -> None:
        self._queue: asyncio.Queue[IntermediateStatus | None] = asyncio.Queue(
            maxsize=STATUS_QUEUE_MAX
        )
        self._task = asyncio.create_task(
            terminal.pay(amount_minor, currency=currency, on_status=self._push)
        )
        self._task.add_done_callback(lambda _t: self._push(None))

    def _push(self, item: IntermediateStatus | None) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(item)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> IntermediateStatus:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def outcome(self) -> PaymentOutcome:
        """The outcome (or the error) of the payment."""
        return await self._task


class ZvtTerminal:
    """A payment terminal speaking ZVT over serial or TCP/IP.

    ``url`` is a device path, a pyserial URL (``socket://host:port``) or
    ``tcp://host[:20007]`` for the ZVT TCP/IP transport; ``framing`` overrides
    the default derived from the URL.
    """

    def __init__(
        self,
        url: str,
        *,
        framing: Framing | None = None,
        password: int = 0,
        currency: str = "RUB",
        config_byte: int = DEFAULT_CONFIG_BYTE,
        timeouts: ZvtTimeouts | None = None,
        text_encoding: str = "cp437",
        frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
        retries_max: int = RETRIES_MAX_DEFAULT,
        baudrate: int = 9600,
        card_timeout_s: int | None = None,
    ) -> None:
        self.url = url
        self.framing: Framing = framing or ("tcp" if default_framing(url) == "tcp" else "serial")
        self.timeouts = timeouts or ZvtTimeouts()
        self.currency = currency
        self.config_byte = config_byte
        self.card_timeout_s = card_timeout_s
        self._password = password
        self._conn_args = {
            "frame_bytes_max": frame_bytes_max,
            "retries_max": retries_max,
        }
        self._text_encoding = text_encoding
        self._transport: ByteTransport = make_transport(
            url,
            connect_timeout_s=self.timeouts.connect_timeout_s,
            write_timeout_s=self.timeouts.write_timeout_s,
            baudrate=baudrate,
        )
        self._conn = self._new_connection()
        self._lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._broken = False
        self._frames_seen = 0
        self._ack_deadline = math.inf
        # Validate arguments now rather than at the first payment.
        Registration(password=password, config_byte=config_byte, currency=currency)

    def _new_connection(self) -> ZvtConnection:
        return ZvtConnection(
            framing=self.framing,
            frame_bytes_max=self._conn_args["frame_bytes_max"],
            retries_max=self._conn_args["retries_max"],
            text_encoding=self._text_encoding,
        )

    # ------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """True while the transport is open and not known to be broken."""
        return self._transport.is_open and not self._broken

    @property
    def link_counters(self) -> LinkCounters:
        """Frames sent, frames we NAKed, garbage bytes dropped (serial framing)."""
        link = self._conn.link
        return LinkCounters(
            frames_sent=link.frames_sent,
            frames_rejected=getattr(link, "frames_rejected", 0),
            garbage_bytes=getattr(link, "garbage_bytes", 0),
        )

    async def connect(self) -> None:
        """Open (or reopen) the connection to the terminal."""
        await self._transport.close()
        await self._transport.open()
        dropped = self._transport.discard_pending()
        if dropped:
            logger.info("zvt_discarded_stale_bytes count=%d", dropped)
        self._conn = self._new_connection()
        self._frames_seen = 0
        self._ack_deadline = math.inf
        self._broken = False

    async def close(self) -> None:
        """Close the connection."""
        await self._transport.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _ensure_connected(self) -> None:
        if self._broken or not self._transport.is_open:
            logger.info("zvt_reconnect url_scheme=%s", self.url.split(":", 1)[0])
            await self.connect()

    # ------------------------------------------------------------- commands

    async def register(self) -> RegistrationResult:
        """Registration 06 00: configure the terminal for this ECR."""
        run = await self._run(
            Registration(
                password=self._password, config_byte=self.config_byte, currency=self.currency
            )
        )
        if run.abort is not None:
            raise ZvtCommandRejected(
                f"registration refused: {run.abort.message()}", result_code=run.abort.result_code
            )
        completion = run.completion
        assert completion is not None
        return RegistrationResult(
            terminal_id=completion.terminal_id,
            status_byte=completion.status_byte,
            currency=completion.currency,
        )

    async def pay(
        self,
        amount_minor: int,
        *,
        currency: str = "RUB",
        on_status: StatusCallback | None = None,
    ) -> PaymentOutcome:
        """Authorization 06 01: take ``amount_minor`` from the card.

        ``on_status`` is called with every Intermediate Status ("insert card",
        "enter PIN" ...). See the module docstring for the errors.
        """
        command = Authorization(
            amount_minor=amount_minor, currency=currency, timeout_s=self.card_timeout_s
        )
        run = await self._run(command, on_status=on_status, money=True)
        outcome = _money_outcome(run, Operation.PAYMENT, amount_minor, currency)
        logger.info(
            "zvt_payment_done status=%s result=%02X offline=%s receipt_no=%s",
            outcome.status.value,
            outcome.result_code,
            outcome.approved_offline,
            outcome.receipt_no,
        )
        return outcome

    def payment(self, amount_minor: int, *, currency: str = "RUB") -> PaymentSession:
        """Start a payment; iterate the result for statuses, ``await .outcome()`` for the end."""
        return PaymentSession(self, amount_minor, currency)

    async def abort(self) -> bool:
        """Ask the terminal to abort the running payment (06 B0).

        Returns False when no command runs. The payment then ends with
        ``ABORTED`` if the terminal could still abort, or normally if not.
        """
        if self._conn.state is SessionState.IDLE or not self._lock.locked():
            return False
        if not self._conn.abort_pending:
            await self._flush(self._conn.send(AbortRequest()))
            logger.info("zvt_abort_requested")
        return True

    async def reverse(self, receipt_no: int, *, amount_minor: int | None = None) -> PaymentOutcome:
        """Reversal 06 30 of the payment with ``receipt_no``."""
        command = Reversal(
            receipt_no=receipt_no, password=self._password, amount_minor=amount_minor
        )
        run = await self._run(command, money=True)
        outcome = _money_outcome(run, Operation.REVERSAL, amount_minor, self.currency)
        logger.info(
            "zvt_reversal_done status=%s result=%02X receipt_no=%d",
            outcome.status.value,
            outcome.result_code,
            receipt_no,
        )
        return outcome

    async def status(self) -> TerminalStatus:
        """Status Enquiry 05 01."""
        run = await self._run(StatusEnquiry(password=self._password))
        if run.abort is not None:
            return TerminalStatus(terminal_status=run.abort.result_code)
        completion = run.completion
        assert completion is not None
        code = completion.terminal_status
        if code is None:
            code = run.status_infos[-1].result_code if run.status_infos else 0x00
        return TerminalStatus(
            terminal_status=code,
            sw_version=completion.sw_version,
            terminal_id=completion.terminal_id,
        )

    async def repeat_receipt(self) -> RepeatedReceipt:
        """Repeat Receipt 06 20: the last transaction and its receipt text."""
        run = await self._run(RepeatReceipt(password=self._password))
        info = _last_result(run)
        transaction = LastTransaction.from_status(info) if info is not None else None
        return RepeatedReceipt(transaction=transaction, lines=tuple(run.lines))

    async def end_of_day(self) -> EndOfDayResult:
        """End-of-Day 06 50: settle and report the totals."""
        run = await self._run(EndOfDay(password=self._password))
        info = _last_result(run)
        if info is None:
            code = run.abort.result_code if run.abort is not None else codes.RESULT_SYSTEM_ERROR
            return EndOfDayResult(
                result_code=code, total_minor=None, currency=None, receipt_lines=tuple(run.lines)
            )
        result = info.result_code
        if run.abort is not None and result == codes.RESULT_OK:
            result = run.abort.result_code or codes.RESULT_SYSTEM_ERROR
        return EndOfDayResult(
            result_code=result,
            total_minor=info.amount_minor,
            currency=info.currency,
            trace_no=info.trace_no,
            totals=info.totals,
            date_mmdd=info.date_mmdd,
            time_hhmmss=info.time_hhmmss,
            receipt_lines=tuple(run.lines),
        )

    async def last_transaction(self) -> LastTransaction | None:
        """Recovery: what happened to the last transaction of the terminal?

        Asks Status Enquiry first (a terminal still busy with the lost
        transaction answers "please wait": a temporary error, ask again later),
        then Repeat Receipt, whose Status-Information describes the last
        transaction. None when the terminal has no transaction to report.
        """
        status = await self.status()
        if status.terminal_status in _BUSY_TERMINAL_STATUS:
            raise ZvtTemporaryDeviceError(f"terminal busy: {status.message()}")
        return (await self.repeat_receipt()).transaction

    # ---------------------------------------------------------------- engine

    async def _run(
        self,
        command: EcrCommand,
        *,
        on_status: StatusCallback | None = None,
        money: bool = False,
    ) -> _CommandRun:
        async with self._lock:
            await self._ensure_connected()
            sent = False
            try:
                first = self._conn.send(command)
                sent = True
                await self._flush(first)
                return await self._drive(on_status)
            except ZvtCommandRejected:
                raise
            except ZvtError as exc:
                self._broken = True
                if money and sent:
                    exc.outcome_unknown = True
                logger.warning(
                    "zvt_command_failed error=%s state=%s outcome_unknown=%s",
                    type(exc).__name__,
                    self._conn.state.value,
                    exc.outcome_unknown,
                )
                raise
            except asyncio.CancelledError:
                self._broken = True
                raise

    async def _flush(self, pending: bytes = b"") -> None:
        data = pending + self._conn.data_to_send()
        if data:
            async with self._write_lock:
                await self._transport.write(data)
        if self._conn.frames_sent != self._frames_seen:
            self._frames_seen = self._conn.frames_sent
            loop = asyncio.get_running_loop()
            self._ack_deadline = loop.time() + self.timeouts.link_ack_timeout_s

    async def _drive(self, on_status: StatusCallback | None) -> _CommandRun:
        loop = asyncio.get_running_loop()
        t = self.timeouts
        conn = self._conn
        now = loop.time()
        txn_deadline = now + t.transaction_timeout_s
        app_timeout = conn.timeout_s(t)
        app_deadline = math.inf if app_timeout is None else now + app_timeout
        byte_deadline = math.inf
        run = _CommandRun()
        while True:
            try:
                event = conn.next_event()
            except ZvtProtocolError as exc:
                # Already answered with 84 xx / 80 00 by the connection; the
                # terminal decides what comes next.
                await self._flush()
                run.protocol_errors += 1
                logger.warning("zvt_protocol_error error=%s", exc)
                if run.protocol_errors > PROTOCOL_ERRORS_MAX:
                    raise
                continue
            except ZvtError:
                if run.finished:
                    # The answer is complete; only the link failed afterwards.
                    self._broken = True
                    return run
                raise
            await self._flush()
            if not isinstance(event, _NeedData):
                self._handle(event, run, on_status)
                now = loop.time()
                app_timeout = conn.timeout_s(t)
                app_deadline = math.inf if app_timeout is None else now + app_timeout
                continue
            if conn.state is SessionState.IDLE and run.finished and not conn.awaiting_link_ack:
                return run
            now = loop.time()
            deadline = min(txn_deadline, app_deadline)
            if conn.awaiting_link_ack:
                deadline = min(deadline, self._ack_deadline)
            if conn.receiving_frame:
                deadline = min(deadline, byte_deadline)
            data = await self._transport.read(min(max(deadline - now, 0.0), _READ_SLICE_S))
            now = loop.time()
            if data:
                conn.receive_data(data)
                byte_deadline = now + t.byte_timeout_s
                continue
            try:
                if conn.awaiting_link_ack and now >= self._ack_deadline:
                    conn.link_ack_timeout()
                    self._ack_deadline = math.inf
                    continue
                if conn.receiving_frame and now >= byte_deadline:
                    conn.receive_timeout()
                    byte_deadline = math.inf
                    continue
            except ZvtError:
                if run.finished:
                    self._broken = True
                    return run
                raise
            if now >= app_deadline or now >= txn_deadline:
                if run.finished:
                    self._broken = True
                    return run
                raise ZvtTimeout(
                    f"no answer from the terminal in state {conn.state.value}",
                    stage=conn.state.value,
                )

    def _handle(
        self,
        event: object,
        run: _CommandRun,
        on_status: StatusCallback | None,
    ) -> None:
        if isinstance(event, Nack):
            if self._conn.state is SessionState.IDLE and not run.finished:
                raise ZvtCommandRejected(
                    f"terminal refused the command: {event.message()}",
                    result_code=event.error_code,
                )
            logger.info("zvt_abort_refused code=%02X", event.error_code)
        elif isinstance(event, Ack):
            return
        elif isinstance(event, IntermediateStatus):
            run.statuses += 1
            if on_status is not None:
                try:
                    on_status(event)
                except Exception:  # a display callback must never break a payment
                    logger.exception("zvt_status_callback_failed")
        elif isinstance(event, StatusInformation):
            run.status_infos.append(event)
        elif isinstance(event, PrintLine):
            run.add_lines([event.text])
        elif isinstance(event, PrintTextBlock):
            run.add_lines(list(event.lines))
        elif isinstance(event, Completion):
            run.completion = event
        elif isinstance(event, TerminalAbort):
            run.abort = event


def _last_result(run: _CommandRun) -> StatusInformation | None:
    return run.status_infos[-1] if run.status_infos else None


def _money_outcome(
    run: _CommandRun, operation: Operation, amount_minor: int | None, currency: str
) -> PaymentOutcome:
    """Turn what the terminal sent into an outcome, or raise when it is contradictory."""
    info = _last_result(run)
    if run.completion is not None:
        if info is None:
            raise ZvtProtocolError("Completion without Status-Information", outcome_unknown=True)
        code = info.result_code
    else:
        assert run.abort is not None
        if info is not None and info.approved:
            raise ZvtProtocolError("terminal approved, then aborted", outcome_unknown=True)
        code = run.abort.result_code or codes.RESULT_SYSTEM_ERROR
    if code == codes.RESULT_OK:
        status = PaymentStatus.APPROVED
    elif code == codes.RESULT_ABORT:
        status = PaymentStatus.ABORTED
    else:
        status = PaymentStatus.DECLINED
    reported = info.amount_minor if info is not None else None
    if status is PaymentStatus.APPROVED:
        if amount_minor is not None and reported is not None and reported != amount_minor:
            raise ZvtProtocolError(
                "terminal approved a different amount than requested", outcome_unknown=True
            )
        if info is not None and info.currency is not None and info.currency != currency:
            raise ZvtProtocolError(
                "terminal approved in a different currency", outcome_unknown=True
            )
    amount = reported if reported is not None else amount_minor
    if status is PaymentStatus.APPROVED and amount is None:
        raise ZvtProtocolError("approved without an amount", outcome_unknown=True)
    return PaymentOutcome(
        operation=operation,
        status=status,
        result_code=code,
        amount_minor=amount,
        currency=currency,
        approved_offline=info.approved_offline if info is not None else False,
        receipt_no=info.receipt_no if info is not None else None,
        trace_no=info.trace_no if info is not None else None,
        masked_pan=info.masked_pan if info is not None else None,
        card_type=info.card_type if info is not None else None,
        card_name=info.card_name if info is not None else None,
        auth_code=info.auth_code if info is not None else None,
        terminal_id=info.terminal_id if info is not None else None,
        date_mmdd=info.date_mmdd if info is not None else None,
        time_hhmmss=info.time_hhmmss if info is not None else None,
        receipt_lines=tuple(run.lines),
    )
