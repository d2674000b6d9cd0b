"""PC/SC transport (pyscard) and the card reader monitor; the only module importing pyscard.

Theory of operation
-------------------
Everything here uses pyscard's low-level ``smartcard.scard`` API with contexts
of our own. pyscard's high-level helpers share one global context
(``smartcard.System.readers()``) that goes stale for good when pcscd restarts,
and its observers stop after a reader is unplugged; we avoid both.

* :class:`PcscContext` wraps one ``SCardEstablishContext``. When a call answers
  ``SCARD_E_NO_SERVICE``, ``SCARD_E_SERVICE_STOPPED``, ``SCARD_E_INVALID_HANDLE``
  or ``SCARD_F_COMM_ERROR`` (pcscd stopped or restarted under us), the context
  is dead: it raises ``_ContextLost`` and the owner establishes a new one.
* :func:`read_identity` connects to the card in one reader, takes its ATR and
  drives the sans-I/O :class:`~drivers.pcsc.session.ResidentCardSession` with
  ``SCardTransmit``. An empty answer or a failed transmit is how a card pulled
  out mid-read shows up, so before calling that a protocol error we ask
  pcscd (for at most ``removal_confirm_s``) whether the card is still there;
  if not, it is :class:`CardRemovedError`.
* :class:`CardReaderMonitor` runs one thread that loops: list readers, report
  added/removed ones, then block in ``SCardGetStatusChange`` for at most
  ``poll_timeout_s`` on every reader plus the ``\\\\?PnP?\\Notification``
  pseudo-reader (so a plugged reader wakes it). A card newly present (or a new
  pcsc-lite event count, i.e. removed and re-presented between two polls) is
  read at once and reported as ``CardInserted`` or ``CardReadFailed``. Each
  read runs on a context of its own in a daemon thread and is given up after
  ``read_timeout_s`` (:func:`read_identity_bounded`): a card that never
  answers cannot freeze the monitor. When
  the context dies, every known card and reader is reported removed and a new
  context is tried with exponential backoff (``backoff_initial_s`` ..
  ``backoff_max_s``); the readers then come back as ``ReaderAdded``.
* Events cross to asyncio with ``loop.call_soon_threadsafe`` into a
  :class:`~drivers.pcsc.stream.CardEventQueue` of at most ``queue_events_max``.
  Drop policy: when the consumer falls behind and the queue is full, the
  *oldest* event is dropped (the newest card is what the person at the kiosk
  is holding), counted in :attr:`CardReaderMonitor.dropped_events` and logged
  as ``card_event_dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from smartcard import scard

from drivers.pcsc.apdu import CommandApdu
from drivers.pcsc.errors import (
    CardError,
    CardNotRecognised,
    CardProtocolError,
    CardRemovedError,
    NoCardError,
    ReaderUnavailable,
)
from drivers.pcsc.events import (
    CardEvent,
    CardInserted,
    CardReadFailed,
    CardRemoved,
    ReaderAdded,
    ReaderRemoved,
    describe_event,
)
from drivers.pcsc.identity import CardIdentity
from drivers.pcsc.session import RECORD_BYTES_MAX, ResidentCardSession
from drivers.pcsc.stream import CardEventQueue

__all__ = [
    "PNP_NOTIFICATION",
    "CardRead",
    "CardReaderMonitor",
    "PcscContext",
    "list_readers",
    "read_card",
    "read_card_details",
    "read_identity",
    "read_identity_bounded",
]

logger = logging.getLogger(__name__)

PNP_NOTIFICATION: Final = "\\\\?PnP?\\Notification"
"""The pcsc-lite pseudo-reader whose state changes when readers come and go."""


def _code(hr: Any) -> int:
    # pyscard returns PC/SC codes as signed or unsigned ints depending on the
    # platform; compare them as unsigned 32-bit values.
    return int(hr) & 0xFFFFFFFF


_S_SUCCESS: Final = 0
_E_TIMEOUT: Final = _code(scard.SCARD_E_TIMEOUT)
_E_CANCELLED: Final = _code(scard.SCARD_E_CANCELLED)
_E_NO_READERS: Final = _code(scard.SCARD_E_NO_READERS_AVAILABLE)
_CONTEXT_LOST: Final = frozenset(
    _code(c)
    for c in (
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_INVALID_HANDLE,
        scard.SCARD_F_COMM_ERROR,
    )
)
_READER_GONE: Final = frozenset(
    _code(c) for c in (scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE)
)
_CARD_GONE: Final = frozenset(
    _code(c) for c in (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD)
)
_CARD_UNUSABLE: Final = frozenset(
    _code(c)
    for c in (
        scard.SCARD_W_UNRESPONSIVE_CARD,
        scard.SCARD_W_UNSUPPORTED_CARD,
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_E_PROTO_MISMATCH,
    )
)
_SHARING_VIOLATION: Final = _code(scard.SCARD_E_SHARING_VIOLATION)

_STATE_UNAWARE: Final = int(scard.SCARD_STATE_UNAWARE)
_STATE_CHANGED: Final = int(scard.SCARD_STATE_CHANGED)
_STATE_PRESENT: Final = int(scard.SCARD_STATE_PRESENT)
_STATE_MUTE: Final = int(scard.SCARD_STATE_MUTE)
_STATE_GONE: Final = int(
    scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE | scard.SCARD_STATE_IGNORE
)

READERS_MAX = 16
"""Readers watched at once; more are ignored (and logged)."""
LOOP_INTERVAL_MIN_S = 0.01
"""Shortest monitor loop iteration, so a misbehaving stack cannot make it spin."""


def _describe(hr: int) -> str:
    try:
        message = str(scard.SCardGetErrorMessage(hr)).strip()
    except Exception:  # pyscard's message table is advisory only
        message = "PC/SC error"
    return f"{hr:08X} {message}"


class _ContextLost(ReaderUnavailable):
    """The PC/SC context is dead (pcscd stopped or restarted): establish a new one."""


class _ReadFailed(Exception):
    """Internal: a card read failed; carries the typed error and the ATR if known."""

    def __init__(self, error: CardError, atr_hex: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.atr_hex = atr_hex


StateList = list[tuple[str, int, bytes]]


class PcscContext:
    """One PC/SC context (``SCardEstablishContext``), used by one thread.

    Only :meth:`cancel` may be called from another thread (pcsc-lite allows
    ``SCardCancel`` to interrupt a blocked ``SCardGetStatusChange``).
    """

    def __init__(self) -> None:
        hr, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        code = _code(hr)
        if code != _S_SUCCESS:
            raise _ContextLost(f"PC/SC service unavailable: {_describe(code)}")
        self.handle: Any = handle
        self._released = False

    def _check(self, code: int, what: str) -> None:
        if code in _CONTEXT_LOST:
            raise _ContextLost(f"{what}: {_describe(code)}")
        raise ReaderUnavailable(f"{what}: {_describe(code)}")

    def readers(self) -> list[str]:
        """The readers pcscd knows now (``SCardListReaders``); empty when none."""
        hr, names = scard.SCardListReaders(self.handle, [])
        code = _code(hr)
        if code == _E_NO_READERS:
            return []
        if code != _S_SUCCESS:
            self._check(code, "SCardListReaders")
        return [str(name) for name in names]

    def status_change(self, states: list[tuple[str, int]], timeout_ms: int) -> StateList | None:
        """``SCardGetStatusChange``; ``None`` on timeout, cancel or a vanished reader."""
        hr, result = scard.SCardGetStatusChange(self.handle, max(0, timeout_ms), states)
        code = _code(hr)
        if code in (_E_TIMEOUT, _E_CANCELLED) or code in _READER_GONE:
            return None
        if code != _S_SUCCESS:
            self._check(code, "SCardGetStatusChange")
        return [(str(name), int(state), bytes(atr)) for name, state, atr in result]

    def cancel(self) -> None:
        """Interrupt a blocked :meth:`status_change` (from any thread)."""
        if not self._released:
            scard.SCardCancel(self.handle)

    def release(self) -> None:
        """``SCardReleaseContext``; errors ignored (the daemon may be gone)."""
        if not self._released:
            self._released = True
            scard.SCardReleaseContext(self.handle)

    def card_gone(self, reader: str, wait_s: float) -> bool:
        """Whether the card in ``reader`` is absent now or leaves within ``wait_s``."""
        deadline = time.monotonic() + wait_s
        query = [(reader, _STATE_UNAWARE)]
        timeout_ms = 0
        # Bounded by the deadline: each round either returns or waits for a change.
        while True:
            states = self.status_change(query, timeout_ms)
            if states is None:
                # Timed out (still there) -- or the reader itself vanished.
                return reader not in self.readers()
            state = states[0][1]
            if not state & _STATE_PRESENT or state & _STATE_GONE:
                return True
            timeout_ms = int((deadline - time.monotonic()) * 1000)
            if timeout_ms <= 0:
                return False
            query = [(reader, state & ~_STATE_CHANGED)]


def list_readers() -> list[str]:
    """The readers pcscd knows, with a short-lived context of its own."""
    context = PcscContext()
    try:
        return context.readers()
    finally:
        context.release()


def read_identity(
    context: PcscContext,
    reader: str,
    *,
    removal_confirm_s: float = 1.0,
    record_bytes_max: int = RECORD_BYTES_MAX,
) -> tuple[str, CardIdentity]:
    """Connect to the card in ``reader`` and read it; returns ``(atr_hex, identity)``.

    Raises ``_ReadFailed`` (internal) wrapping the typed :class:`CardError`.
    """
    hr, hcard, protocol = scard.SCardConnect(
        context.handle,
        reader,
        scard.SCARD_SHARE_SHARED,
        scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
    )
    code = _code(hr)
    if code != _S_SUCCESS:
        raise _ReadFailed(_connect_error(code), None)
    atr_hex: str | None = None
    try:
        hr, _name, _state, _protocol, atr_list = scard.SCardStatus(hcard)
        code = _code(hr)
        if code != _S_SUCCESS:
            raise _connect_error(code)
        atr = bytes(atr_list)
        session = ResidentCardSession(atr, record_bytes_max=record_bytes_max)
        step: CommandApdu | CardIdentity = session.start()
        atr_hex = atr.hex().upper()
        while isinstance(step, CommandApdu):
            raw = _transmit(context, reader, hcard, protocol, step, removal_confirm_s)
            try:
                step = session.receive(raw)
            except CardProtocolError as exc:
                if len(raw) < 2 and context.card_gone(reader, removal_confirm_s):
                    raise CardRemovedError("card removed during the read") from exc
                raise
        return atr_hex, step
    except CardError as exc:
        raise _ReadFailed(exc, atr_hex) from exc
    finally:
        scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)


READ_TIMEOUT_S = 10.0
"""Longest a whole card read may take (connect, ATR, every APDU) before it is given up."""
READ_THREADS_MAX = 4
"""Card reads running at once in this process, including given-up ones still blocked."""

_read_slots = threading.BoundedSemaphore(READ_THREADS_MAX)


def read_identity_bounded(
    reader: str,
    *,
    read_timeout_s: float = READ_TIMEOUT_S,
    removal_confirm_s: float = 1.0,
    record_bytes_max: int = RECORD_BYTES_MAX,
    stop: threading.Event | None = None,
) -> tuple[str, CardIdentity]:
    """:func:`read_identity` with its own context, in a daemon thread, within ``read_timeout_s``.

    No PC/SC call can interrupt an ``SCardConnect`` or ``SCardTransmit`` that a
    card (or a driver) never answers; such a read is given up -- the thread is
    left to finish on its own, holding only its own context -- and reported as
    :class:`CardProtocolError`. At most ``READ_THREADS_MAX`` reads run at once,
    given-up ones included; beyond that a read fails at once with
    :class:`ReaderUnavailable`, so a stuck reader cannot pile up threads.
    Raises ``_ReadFailed`` (internal) wrapping the typed error.
    """
    if not _read_slots.acquire(blocking=False):
        raise _ReadFailed(ReaderUnavailable("reader is not answering (reads still blocked)"), None)
    outcome: list[tuple[str, CardIdentity] | BaseException] = []
    finished = threading.Event()

    def work() -> None:
        try:
            context = PcscContext()
            try:
                outcome.append(
                    read_identity(
                        context,
                        reader,
                        removal_confirm_s=removal_confirm_s,
                        record_bytes_max=record_bytes_max,
                    )
                )
            finally:
                context.release()
        except BaseException as exc:  # handed to the waiting thread below
            outcome.append(exc)
        finally:
            _read_slots.release()
            finished.set()

    threading.Thread(target=work, name="pcsc-read", daemon=True).start()
    deadline = time.monotonic() + read_timeout_s
    while not finished.wait(0.05):
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            logger.warning("card_read_given_up reader=%r timeout_s=%s", reader, read_timeout_s)
            error = CardProtocolError(f"card did not answer within {read_timeout_s:g} s")
            raise _ReadFailed(error, None)
    result = outcome[0]
    if isinstance(result, _ReadFailed):
        raise result
    if isinstance(result, CardError):
        raise _ReadFailed(result, None)
    if isinstance(result, BaseException):
        raise result
    return result


def _connect_error(code: int) -> CardError:
    if code in _CARD_GONE:
        return CardRemovedError(f"card removed: {_describe(code)}")
    if code in _CARD_UNUSABLE:
        return CardNotRecognised(f"card does not answer: {_describe(code)}")
    if code in _CONTEXT_LOST:
        return _ContextLost(f"PC/SC service lost: {_describe(code)}")
    if code == _SHARING_VIOLATION:
        return ReaderUnavailable("reader is in use by another program")
    return ReaderUnavailable(f"cannot connect to the card: {_describe(code)}")


def _transmit(
    context: PcscContext,
    reader: str,
    hcard: Any,
    protocol: Any,
    command: CommandApdu,
    removal_confirm_s: float,
) -> bytes:
    hr, response = scard.SCardTransmit(hcard, protocol, list(command.to_bytes()))
    code = _code(hr)
    if code == _S_SUCCESS:
        return bytes(response)
    if code in _CARD_GONE:
        raise CardRemovedError(f"card removed: {_describe(code)}")
    if code in _CONTEXT_LOST:
        raise _ContextLost(f"PC/SC service lost: {_describe(code)}")
    if context.card_gone(reader, removal_confirm_s):
        raise CardRemovedError(f"card removed: {_describe(code)}")
    raise CardProtocolError(f"transmit failed: {_describe(code)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CardRead:
    """The result of :func:`read_card_details`."""

    reader: str
    atr_hex: str
    identity: CardIdentity


def _read_card_blocking(
    reader: str | None,
    timeout_s: float,
    poll_timeout_s: float,
    removal_confirm_s: float,
    read_timeout_s: float,
    cancel: threading.Event,
    contexts: list[PcscContext],
) -> CardRead:
    deadline = time.monotonic() + timeout_s
    context: PcscContext | None = None
    reader_seen = False
    last_problem = "PC/SC service unavailable"
    try:
        while not cancel.is_set():
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                break
            wait_ms = int(min(remaining_s, poll_timeout_s) * 1000)
            if context is None:
                try:
                    context = PcscContext()
                except ReaderUnavailable as exc:
                    last_problem = str(exc)
                    cancel.wait(wait_ms / 1000)
                    continue
                contexts.append(context)
            try:
                names = context.readers()
                candidates = [n for n in names if reader is None or n == reader]
                if not candidates:
                    last_problem = "no card reader" if reader is None else "reader not found"
                    context.status_change([(PNP_NOTIFICATION, 0)], wait_ms)
                    continue
                reader_seen = True
                states = context.status_change([(n, _STATE_UNAWARE) for n in candidates], 0) or []
                for name, state, _atr in states:
                    if state & _STATE_PRESENT and not state & _STATE_GONE:
                        if state & _STATE_MUTE:
                            raise CardNotRecognised("card does not answer (mute)")
                        try:
                            atr_hex, identity = read_identity_bounded(
                                name,
                                read_timeout_s=read_timeout_s,
                                removal_confirm_s=removal_confirm_s,
                                stop=cancel,
                            )
                        except _ReadFailed as failed:
                            raise failed.error from None
                        return CardRead(reader=name, atr_hex=atr_hex, identity=identity)
                waits = [(n, s & ~_STATE_CHANGED) for n, s, _ in states]
                context.status_change([*waits, (PNP_NOTIFICATION, 0)], wait_ms)
            except _ContextLost as exc:
                last_problem = str(exc)
                context.release()
                context = None
                cancel.wait(wait_ms / 1000)
        if reader_seen:
            raise NoCardError(f"no card presented within {timeout_s:g} s")
        raise ReaderUnavailable(f"{last_problem} (waited {timeout_s:g} s)")
    finally:
        if context is not None:
            context.release()


async def read_card_details(
    reader: str | None = None,
    *,
    timeout_s: float,
    poll_timeout_s: float = 0.25,
    removal_confirm_s: float = 1.0,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> CardRead:
    """Wait up to ``timeout_s`` for a card and read it, with a PC/SC context of its own.

    ``reader=None`` takes the first reader (in pcscd's order) holding a card.
    Raises :class:`ReaderUnavailable` when no (such) reader or no pcscd appeared
    in time, :class:`NoCardError` when no card did, or the card's typed error.
    The read itself is bounded by ``read_timeout_s`` (see
    :func:`read_identity_bounded`), so the whole call ends within
    ``timeout_s + read_timeout_s``.
    """
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    cancel = threading.Event()
    contexts: list[PcscContext] = []
    try:
        return await asyncio.to_thread(
            _read_card_blocking,
            reader,
            timeout_s,
            poll_timeout_s,
            removal_confirm_s,
            read_timeout_s,
            cancel,
            contexts,
        )
    finally:
        # On cancellation the worker thread may still be blocked in pcscd; wake it.
        cancel.set()
        for context in contexts:
            with contextlib.suppress(Exception):
                context.cancel()


async def read_card(reader: str | None = None, *, timeout_s: float) -> CardIdentity:
    """Read the card in ``reader`` (or the first reader with a card) within ``timeout_s``."""
    return (await read_card_details(reader, timeout_s=timeout_s)).identity


@dataclass(slots=True)
class _ReaderState:
    event_state: int = _STATE_UNAWARE
    present: bool = False
    counter: int = -1


class CardReaderMonitor:
    """Watch every PC/SC reader and deliver :data:`~drivers.pcsc.events.CardEvent` to asyncio.

    Usage::

        monitor = CardReaderMonitor()
        monitor.start()                 # inside a running event loop
        async for event in monitor.events():
            ...
        await monitor.close()

    or ``async with CardReaderMonitor() as monitor:``. One consumer of
    :meth:`events` at a time. Survives reader unplug/replug and pcscd restarts
    (see the module docstring for the theory of operation and the drop policy).
    """

    def __init__(
        self,
        *,
        poll_timeout_s: float = 0.5,
        queue_events_max: int = 64,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        removal_confirm_s: float = 1.0,
        read_timeout_s: float = READ_TIMEOUT_S,
        close_timeout_s: float = 5.0,
        record_bytes_max: int = RECORD_BYTES_MAX,
    ) -> None:
        if queue_events_max < 1:
            raise ValueError("queue_events_max must be at least 1")
        if not 0 < poll_timeout_s <= 60:
            raise ValueError("poll_timeout_s must be in (0, 60]")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self._poll_timeout_s = poll_timeout_s
        self._queue_events_max = queue_events_max
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._removal_confirm_s = removal_confirm_s
        self._read_timeout_s = read_timeout_s
        self._close_timeout_s = close_timeout_s
        self._record_bytes_max = record_bytes_max
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: CardEventQueue | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._context: PcscContext | None = None
        self._pnp_state = 0
        # Owned by the monitor thread; others read the tuple snapshot and counters.
        self._states: dict[str, _ReaderState] = {}
        self._reader_names: tuple[str, ...] = ()
        self._context_losses = 0
        self._outage_logged = False
        self._closed = False

    # --- asyncio side -------------------------------------------------------

    @property
    def dropped_events(self) -> int:
        """Events dropped because the queue was full (oldest first)."""
        return 0 if self._queue is None else self._queue.dropped_events

    @property
    def context_losses(self) -> int:
        """How many times the PC/SC context died and had to be re-established."""
        return self._context_losses

    @property
    def readers(self) -> list[str]:
        """The readers currently known to the monitor."""
        return list(self._reader_names)

    def start(self) -> None:
        """Start the monitor thread; call from inside a running event loop."""
        if self._thread is not None:
            raise RuntimeError("monitor already started")
        self._loop = asyncio.get_running_loop()
        self._queue = CardEventQueue(self._queue_events_max)
        self._thread = threading.Thread(target=self._run, name="pcsc-monitor", daemon=True)
        self._thread.start()

    def events(self) -> AsyncIterator[CardEvent]:
        """The event stream: ``async for event in monitor.events()``; ends after :meth:`close`.

        One consumer at a time. Waiting on it with a timeout is safe: a
        cancelled ``__anext__`` loses no event and leaves the stream usable.
        """
        if self._queue is None:
            raise RuntimeError("start() the monitor first")
        return self._queue.stream()

    async def close(self) -> None:
        """Stop the thread (within ``close_timeout_s``) and end :meth:`events`."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        context = self._context
        if context is not None:
            with contextlib.suppress(Exception):
                context.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, self._close_timeout_s)
            if self._thread.is_alive():
                logger.warning("pcsc_monitor_stop_timeout timeout_s=%s", self._close_timeout_s)
        if self._queue is not None:
            # Events the thread handed over just before stopping come first.
            await asyncio.sleep(0)
            self._queue.close()

    async def __aenter__(self) -> CardReaderMonitor:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- monitor thread -----------------------------------------------------

    def _emit(self, event: CardEvent) -> None:
        loop = self._loop
        logger.info("card_event %s", describe_event(event))
        queue = self._queue
        assert loop is not None
        assert queue is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            loop.call_soon_threadsafe(queue.put, event)

    def _run(self) -> None:
        backoff_s = self._backoff_initial_s
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    if self._context is None:
                        self._context = PcscContext()
                        logger.info("pcsc_context_established")
                        self._outage_logged = False
                        backoff_s = self._backoff_initial_s
                    self._poll_once(self._context)
                except ReaderUnavailable as exc:
                    self._lose_context(exc)
                    self._stop.wait(backoff_s)
                    backoff_s = min(backoff_s * 2, self._backoff_max_s)
                    continue
                except Exception:
                    # The thread must outlive any surprise from the PC/SC stack:
                    # log it, start over with a fresh context after a pause.
                    logger.exception("pcsc_monitor_error")
                    self._lose_context(None)
                    self._stop.wait(backoff_s)
                    backoff_s = min(backoff_s * 2, self._backoff_max_s)
                    continue
                elapsed_s = time.monotonic() - started
                if elapsed_s < LOOP_INTERVAL_MIN_S:
                    self._stop.wait(LOOP_INTERVAL_MIN_S - elapsed_s)
        finally:
            if self._context is not None:
                with contextlib.suppress(Exception):
                    self._context.release()
                self._context = None

    def _lose_context(self, exc: Exception | None) -> None:
        if self._context is not None:
            self._context_losses += 1
            with contextlib.suppress(Exception):
                self._context.release()
            self._context = None
            logger.warning("pcsc_context_lost reason=%s", exc)
        elif not self._outage_logged:
            logger.warning("pcsc_unavailable reason=%s", exc)
        self._outage_logged = True
        for name in list(self._states):
            self._forget_reader(name)
        self._pnp_state = 0

    def _forget_reader(self, name: str) -> None:
        state = self._states.pop(name)
        self._reader_names = tuple(self._states)
        if state.present:
            self._emit(CardRemoved(reader=name))
        self._emit(ReaderRemoved(reader=name))

    def _poll_once(self, context: PcscContext) -> None:
        names = context.readers()
        if len(names) > READERS_MAX:
            logger.warning("pcsc_too_many_readers count=%d max=%d", len(names), READERS_MAX)
            names = names[:READERS_MAX]
        readers = self._states
        for gone in [n for n in readers if n not in names]:
            self._forget_reader(gone)
        for name in names:
            if name not in readers:
                readers[name] = _ReaderState()
                self._reader_names = tuple(readers)
                self._emit(ReaderAdded(reader=name))
        query = [(n, readers[n].event_state) for n in names]
        query.append((PNP_NOTIFICATION, self._pnp_state))
        result = context.status_change(query, int(self._poll_timeout_s * 1000))
        if result is None or self._stop.is_set():
            return
        for name, event_state, _atr in result:
            if name == PNP_NOTIFICATION:
                self._pnp_state = event_state & ~_STATE_CHANGED
            elif name in readers:
                self._apply(name, readers[name], event_state)

    def _apply(self, name: str, state: _ReaderState, event: int) -> None:
        if not event & _STATE_CHANGED:
            return
        state.event_state = event & ~_STATE_CHANGED
        present = bool(event & _STATE_PRESENT) and not event & _STATE_GONE
        # pcsc-lite keeps a per-reader count of card events in the upper 16
        # bits: a new count while present means removed and presented again.
        counter = (event >> 16) & 0xFFFF
        if state.present and (not present or counter != state.counter):
            state.present = False
            self._emit(CardRemoved(reader=name))
        if present and not state.present:
            state.present = True
            state.counter = counter
            if event & _STATE_MUTE:
                error = CardNotRecognised("card does not answer (mute)")
                self._emit(CardReadFailed(reader=name, error=error))
                return
            self._read(name)

    def _read(self, name: str) -> None:
        try:
            atr_hex, identity = read_identity_bounded(
                name,
                read_timeout_s=self._read_timeout_s,
                removal_confirm_s=self._removal_confirm_s,
                record_bytes_max=self._record_bytes_max,
                stop=self._stop,
            )
        except _ReadFailed as failed:
            if isinstance(failed.error, _ContextLost):
                raise failed.error from None
            self._emit(CardReadFailed(reader=name, error=failed.error, atr_hex=failed.atr_hex))
            return
        self._emit(CardInserted(reader=name, atr_hex=atr_hex, identity=identity))
