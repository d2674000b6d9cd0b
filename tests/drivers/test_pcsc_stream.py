"""The bounded card event queue: drop-oldest at the bound, closable, timeout-safe streams."""

from __future__ import annotations

import asyncio

import pytest

from drivers.pcsc.events import CardRemoved, ReaderAdded
from drivers.pcsc.stream import CardEventQueue


def added(index: int) -> ReaderAdded:
    return ReaderAdded(reader=f"R{index}")


async def test_queue_at_bound_keeps_everything() -> None:
    queue = CardEventQueue(3)
    for i in range(3):
        queue.put(added(i))
    assert len(queue) == 3
    assert queue.dropped_events == 0


async def test_queue_over_bound_drops_the_oldest_and_counts() -> None:
    queue = CardEventQueue(3)
    for i in range(5):
        queue.put(added(i))
    assert queue.dropped_events == 2
    queue.close()
    assert [e async for e in queue.stream()] == [added(2), added(3), added(4)]


async def test_close_drains_then_ends_every_stream() -> None:
    queue = CardEventQueue(4)
    queue.put(added(1))
    queue.close()
    queue.put(added(2))  # ignored after close
    assert [e async for e in queue.stream()] == [added(1)]
    assert [e async for e in queue.stream()] == []


async def test_waiting_consumer_is_woken_by_put_and_by_close() -> None:
    queue = CardEventQueue(4)
    stream = queue.stream()
    waiter = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.01)
    queue.put(CardRemoved(reader="R"))
    assert await asyncio.wait_for(waiter, 1) == CardRemoved(reader="R")
    ender = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.01)
    queue.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(ender, 1)


async def test_timed_out_wait_loses_nothing_and_keeps_the_stream() -> None:
    queue = CardEventQueue(4)
    stream = queue.stream()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(stream), 0.05)
    queue.put(added(7))
    assert await asyncio.wait_for(anext(stream), 1) == added(7)


def test_queue_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CardEventQueue(0)
