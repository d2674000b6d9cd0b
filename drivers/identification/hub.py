"""One stream of identification events from every source at the kiosk.

Theory of operation
-------------------
The kiosk reads one async iterator, :meth:`IdentificationHub.events`, and
never learns which device a resident used. The hub merges:

* keypad entries, pushed by the UI with :meth:`IdentificationHub.submit_virtual_number`
  (which also returns the event, so the keypad can show a typo at once);
* serial scanners -- anything with ``events()`` yielding
  :mod:`drivers.scanner.classify` events, such as
  :class:`~drivers.scanner.serial_scanner.SerialScanner`;
* card readers -- anything with ``events()`` yielding card events shaped like
  :mod:`drivers.pcsc.events` (``CardInserted(reader, atr_hex, identity)``,
  ``CardReadFailed(reader, error)``; others are ignored), such as
  :class:`drivers.pcsc.reader.CardReaderMonitor`. Identities become card
  hashes through ``card_hasher`` (default: :func:`pcsc_card_hasher`).

Each source runs in its own task and feeds one bounded queue
(``queue_events_max``). When the kiosk does not keep up -- it is on the
payment screen and nobody reads identifications -- the *oldest* event is
dropped and counted (:attr:`IdentificationHub.dropped_events`): the latest
card or scan is the one the resident is waiting for, and the sources never
block (a blocked serial reader would turn the next scan into stale noise).

A source that ends or fails is logged and not restarted here: the serial
scanner and the PC/SC monitor already survive unplugging and daemon restarts
themselves. Nothing from a card, a track or a bill is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Literal, Protocol, runtime_checkable

from drivers.identification.card_hash import CARD_HASH_KEY_BYTES_MIN, track2_card_hash
from drivers.identification.events import (
    AccountIdentified,
    CardHashRef,
    IdentificationEvent,
    IdentificationFailed,
    IdentificationSource,
    QrRef,
    VirtualNumberRef,
)
from drivers.identification.virtual_number import (
    DEFAULT_POLICY,
    VirtualNumberError,
    VirtualNumberPolicy,
    normalize_virtual_number,
)
from drivers.scanner.classify import (
    DigitsScanned,
    QrScanned,
    ResidentCardSwiped,
    ScanRejected,
)

__all__ = [
    "CardEventSource",
    "CardInsertedLike",
    "CardReadFailedLike",
    "IdentificationHub",
    "ScanEventSource",
    "pcsc_card_hasher",
]

logger = logging.getLogger(__name__)

QUEUE_EVENTS_MAX_LIMIT: Final = 1024


class CardEventSource(Protocol):
    """An async source of card events (e.g. ``drivers.pcsc.reader.CardReaderMonitor``)."""

    def events(self) -> AsyncIterator[Any]:
        """Card events until the source closes."""
        ...


class ScanEventSource(Protocol):
    """An async source of scan events (e.g. ``drivers.scanner.serial_scanner.SerialScanner``)."""

    def events(self) -> AsyncIterator[Any]:
        """Scan events (and faults) until the source closes."""
        ...


@runtime_checkable
class CardInsertedLike(Protocol):
    """What the hub needs of a "card inserted and read" event."""

    @property
    def reader(self) -> str:
        """The reader's name."""
        ...

    @property
    def identity(self) -> Any:
        """The card's identity, for ``card_hasher``."""
        ...


@runtime_checkable
class CardReadFailedLike(Protocol):
    """What the hub needs of a "card presented but not read" event."""

    @property
    def reader(self) -> str:
        """The reader's name."""
        ...

    @property
    def error(self) -> Any:
        """The typed error (``temporary``, ``title(lang)``, ``next_step(lang)`` if it has them)."""
        ...


def pcsc_card_hasher(key: bytes) -> Callable[[Any], str]:
    """The card hash of a PC/SC identity: :func:`drivers.pcsc.identity.card_hash` under ``key``."""
    from drivers.pcsc.identity import card_hash

    def hasher(identity: Any) -> str:
        return card_hash(identity, key)

    return hasher


_CARD_NOT_RECOGNISED: Final = (
    "Карта не распознана. Приложите карту жителя ещё раз.",
    "Card not recognised. Present your resident card again.",
)
_CARD_TRY_AGAIN: Final = (
    "Карта не прочитана. Приложите её ещё раз и держите до сигнала.",
    "The card could not be read. Present it again and hold it until the beep.",
)


def _card_failure(error: Any) -> IdentificationFailed:
    temporary = bool(getattr(error, "temporary", False))
    reason = "card_read_failed" if temporary else "card_not_recognised"
    ru, en = _CARD_TRY_AGAIN if temporary else _CARD_NOT_RECOGNISED
    title = getattr(error, "title", None)
    next_step = getattr(error, "next_step", None)
    if callable(title) and callable(next_step):
        # The card driver's own wording is more precise (card removed early,
        # reader unavailable...); take it when it is there.
        with contextlib.suppress(Exception):
            ru = f"{title('ru')}. {next_step('ru')}"
            en = f"{title('en')}. {next_step('en')}"
    return IdentificationFailed(source="card", reason=reason, message_ru=ru, message_en=en)


class _Closed:
    """Queue marker: the hub was closed."""


_CLOSED: Final = _Closed()


class IdentificationHub:
    """Merges keypad, scanners and card readers into one stream of identification events.

    Usage::

        async with IdentificationHub(card_hash_key=key) as hub:
            hub.add_scanner(SerialScanner(scanner_config))
            hub.add_card_source(monitor)
            async for event in hub.events():
                ...

    ``card_hash_key`` is the per-deployment key (at least 16 bytes); it hashes
    magstripe cards and, through the default ``card_hasher``, smart cards.
    """

    def __init__(
        self,
        *,
        card_hash_key: bytes,
        virtual_numbers: VirtualNumberPolicy = DEFAULT_POLICY,
        card_hasher: Callable[[Any], str] | None = None,
        queue_events_max: int = 16,
    ) -> None:
        if len(card_hash_key) < CARD_HASH_KEY_BYTES_MIN:
            raise ValueError(f"card_hash_key must be at least {CARD_HASH_KEY_BYTES_MIN} bytes")
        if not 1 <= queue_events_max <= QUEUE_EVENTS_MAX_LIMIT:
            raise ValueError(f"queue_events_max must be in 1..{QUEUE_EVENTS_MAX_LIMIT}")
        self._key = card_hash_key
        self._policy = virtual_numbers
        self._card_hasher = card_hasher
        self._queue_events_max = queue_events_max
        self._queue: asyncio.Queue[IdentificationEvent | _Closed] | None = None
        self._pending: list[tuple[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self.dropped_events = 0
        """Events dropped because the queue was full (oldest first)."""

    def __repr__(self) -> str:
        return f"IdentificationHub(sources={len(self._tasks) + len(self._pending)})"

    async def __aenter__(self) -> IdentificationHub:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- sources ---------------------------------------------------------------

    def add_scanner(self, source: ScanEventSource) -> None:
        """Add a serial scanner (or anything yielding scan events)."""
        self._add("scanner", source)

    def add_card_source(self, source: CardEventSource) -> None:
        """Add a card reader monitor (or anything yielding card events)."""
        self._add("card", source)

    def _add(self, kind: str, source: Any) -> None:
        if self._closed:
            raise RuntimeError("the identification hub is closed")
        if self._started:
            self._spawn(kind, source)
        else:
            self._pending.append((kind, source))

    def start(self) -> None:
        """Start reading every source (needs a running event loop; idempotent)."""
        if self._closed:
            raise RuntimeError("the identification hub is closed")
        if self._started:
            return
        self._queue = asyncio.Queue(maxsize=self._queue_events_max + 1)
        self._started = True
        pending, self._pending = self._pending, []
        for kind, source in pending:
            self._spawn(kind, source)

    def _spawn(self, kind: str, source: Any) -> None:
        pump = self._pump_scanner if kind == "scanner" else self._pump_cards
        task = asyncio.get_running_loop().create_task(pump(source), name=f"identify-{kind}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop every source; :meth:`events` delivers what is queued, then ends."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._queue is not None:
            self._put_marker()

    # --- the stream ------------------------------------------------------------

    async def events(self) -> AsyncIterator[IdentificationEvent]:
        """Identification events from every source, until :meth:`aclose`."""
        if not self._closed:
            self.start()
        queue = self._queue
        if queue is None:
            return
        while True:
            item = await queue.get()
            if isinstance(item, _Closed):
                queue.put_nowait(item)  # later callers end at once too
                return
            yield item

    def submit_virtual_number(
        self, text: str, *, source: Literal["keypad", "scanner"] = "keypad"
    ) -> IdentificationEvent:
        """Validate a typed number, queue the event and return it (for the keypad screen)."""
        event = self._from_virtual_number(text, source)
        self._put(event)
        return event

    def _put(self, event: IdentificationEvent) -> None:
        if self._closed:
            raise RuntimeError("the identification hub is closed")
        if self._queue is None:
            self.start()
        queue = self._queue
        assert queue is not None
        # One slot is reserved for the close marker, so events never fill it.
        while queue.qsize() >= self._queue_events_max:
            queue.get_nowait()
            self.dropped_events += 1
            logger.warning("identification_event_dropped total=%d", self.dropped_events)
        queue.put_nowait(event)

    def _put_marker(self) -> None:
        queue = self._queue
        assert queue is not None
        # _put leaves one slot free, so the marker always fits.
        assert not queue.full()
        queue.put_nowait(_CLOSED)

    # --- translation -------------------------------------------------------------

    def _from_virtual_number(
        self, text: str, source: Literal["keypad", "scanner"]
    ) -> IdentificationEvent:
        try:
            number = normalize_virtual_number(text, self._policy)
        except VirtualNumberError as exc:
            logger.info("identification_failed source=%s reason=%s", source, exc.reason)
            return IdentificationFailed(
                source=source,
                reason=exc.reason,
                message_ru=exc.message_ru,
                message_en=exc.message_en,
            )
        return AccountIdentified(source=source, reference=VirtualNumberRef(number=number))

    def _from_scan(self, event: Any) -> IdentificationEvent | None:
        if isinstance(event, QrScanned):
            return AccountIdentified(source="qr", reference=QrRef(payment=event.payment))
        if isinstance(event, ResidentCardSwiped):
            card_hash = track2_card_hash(event.card, self._key)
            return AccountIdentified(source="scanner", reference=CardHashRef(card_hash=card_hash))
        if isinstance(event, DigitsScanned):
            return self._from_virtual_number(event.digits, "scanner")
        if isinstance(event, ScanRejected):
            source: IdentificationSource = "qr" if event.kind == "qr" else "scanner"
            return IdentificationFailed(
                source=source,
                reason=event.reason,
                message_ru=event.message_ru,
                message_en=event.message_en,
            )
        # Scanner faults are for staff (logged by the scanner), not for residents.
        logger.debug("identification_scan_event_ignored type=%s", type(event).__name__)
        return None

    def _from_card(self, event: Any) -> IdentificationEvent | None:
        if isinstance(event, CardInsertedLike):
            hasher = self._card_hasher
            if hasher is None:
                hasher = self._card_hasher = pcsc_card_hasher(self._key)
            try:
                card_hash = hasher(event.identity)
                reference = CardHashRef(card_hash=card_hash)
            except (ValueError, TypeError) as exc:
                logger.warning("identification_card_unhashable error=%s", type(exc).__name__)
                ru, en = _CARD_NOT_RECOGNISED
                return IdentificationFailed(
                    source="card", reason="card_not_recognised", message_ru=ru, message_en=en
                )
            return AccountIdentified(source="card", reference=reference)
        if isinstance(event, CardReadFailedLike):
            logger.info("identification_failed source=card error=%s", type(event.error).__name__)
            return _card_failure(event.error)
        return None  # reader added/removed, card removed: nothing to identify

    # --- pumps ---------------------------------------------------------------------

    async def _pump(self, kind: str, source: Any, translate: Callable[[Any], Any]) -> None:
        iterator = source.events()
        try:
            async for event in iterator:
                translated = translate(event)
                if translated is not None:
                    self._put(translated)
            logger.warning("identification_source_ended kind=%s", kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.error("identification_source_failed kind=%s error=%s", kind, type(exc).__name__)
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _pump_scanner(self, source: Any) -> None:
        await self._pump("scanner", source, self._from_scan)

    async def _pump_cards(self, source: Any) -> None:
        await self._pump("card", source, self._from_card)
