"""The bounded event queue behind every card event source (asyncio side, no pyscard).

Theory of operation: a source (the PC/SC monitor's thread, or the simulator)
calls :meth:`CardEventQueue.put` on the event loop; consumers iterate
:meth:`CardEventQueue.stream`. The queue holds at most ``queue_events_max``
events. Drop policy: when it is full the *oldest* event is dropped -- the
newest card is what the person at the kiosk is holding -- counted in
:attr:`CardEventQueue.dropped_events` and logged as ``card_event_dropped``.
:meth:`close` ends every stream after the events already queued.

The stream is an iterator class rather than an async generator on purpose: a
consumer that waits with a timeout (``asyncio.wait_for(anext(stream), t)``)
cancels one ``__anext__`` without closing the stream or losing an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

from drivers.pcsc.events import CardEvent

__all__ = ["CardEventQueue", "CardEventSource"]

logger = logging.getLogger(__name__)


class CardEventSource(Protocol):
    """What the identification layer needs from a card reader, real or simulated."""

    def start(self) -> None:
        """Begin producing events (inside a running event loop)."""

    def events(self) -> AsyncIterator[CardEvent]:
        """The event stream; it ends after :meth:`close`."""

    async def close(self) -> None:
        """Stop producing events and end the stream."""


class CardEventQueue:
    """A bounded, drop-oldest queue of card events with closable streams (loop-side only)."""

    def __init__(self, queue_events_max: int) -> None:
        if queue_events_max < 1:
            raise ValueError("queue_events_max must be at least 1")
        self.queue_events_max = queue_events_max
        self.dropped_events = 0
        self._items: deque[CardEvent] = deque()
        self._closed = False
        self._changed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: CardEvent) -> None:
        """Enqueue ``event``, dropping the oldest one when full; ignored after close."""
        if self._closed:
            return
        while len(self._items) >= self.queue_events_max:
            dropped = self._items.popleft()
            self.dropped_events += 1
            logger.warning(
                "card_event_dropped event=%s dropped_total=%d",
                type(dropped).__name__,
                self.dropped_events,
            )
        self._items.append(event)
        self._changed.set()

    def close(self) -> None:
        """End the streams once the queued events are consumed."""
        self._closed = True
        self._changed.set()

    async def get(self) -> CardEvent | None:
        """The next event, or ``None`` once closed and drained."""
        while not self._items:
            if self._closed:
                return None
            self._changed.clear()
            await self._changed.wait()
        return self._items.popleft()

    def stream(self) -> AsyncIterator[CardEvent]:
        """An async iterator over the events (see the module docstring)."""
        return _Stream(self)


class _Stream:
    def __init__(self, queue: CardEventQueue) -> None:
        self._queue = queue

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> CardEvent:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event
