"""CardReaderMonitor through the real PC/SC stack: events, faults, unplug, pcscd restarts."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable

import pytest

from drivers.pcsc.errors import CardNotRecognised, CardProtocolError, CardRemovedError
from drivers.pcsc.events import (
    CardEvent,
    CardInserted,
    CardReadFailed,
    CardRemoved,
    ReaderAdded,
    ReaderRemoved,
)
from drivers.pcsc.reader import CardReaderMonitor
from tests.drivers.vcard.cards import (
    DISCONNECT,
    MisbehavingCard,
    ProfileCard,
    UidCard,
    always,
    on_ins,
    resident_record,
    stall_on_ins,
    sw,
)
from tests.drivers.vcard.fixtures import VirtualCards
from tests.drivers.vcard.pcscd import PcscDaemon

EVENT_TIMEOUT_S = 8.0


def fast_monitor(**overrides: float) -> CardReaderMonitor:
    options: dict[str, float] = {
        "poll_timeout_s": 0.2,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.4,
    }
    options.update(overrides)
    return CardReaderMonitor(**options)  # type: ignore[arg-type]


class Events:
    """Reads a monitor's event stream with a timeout on every wait."""

    def __init__(self, monitor: CardReaderMonitor) -> None:
        self.stream: AsyncIterator[CardEvent] = monitor.events()
        self.seen: list[CardEvent] = []

    async def next(self) -> CardEvent:
        event = await asyncio.wait_for(anext(self.stream), EVENT_TIMEOUT_S)
        self.seen.append(event)
        return event

    async def until(self, predicate: Callable[[CardEvent], bool]) -> list[CardEvent]:
        """Events up to and including the first one matching ``predicate``."""
        got: list[CardEvent] = []
        while True:
            event = await self.next()
            got.append(event)
            if predicate(event):
                return got

    async def readers_added(self, count: int = 2) -> None:
        for _ in range(count):
            assert isinstance(await self.next(), ReaderAdded)


@pytest.fixture
async def monitor(pcscd: PcscDaemon) -> AsyncIterator[CardReaderMonitor]:
    mon = fast_monitor()
    mon.start()
    try:
        yield mon
    finally:
        await mon.close()


async def insert(vcards: VirtualCards, card: object, slot: int = 0, **kw: bool) -> object:
    return await asyncio.to_thread(vcards.insert, card, slot, wait_present=False, **kw)


async def remove(vcards: VirtualCards, connection: object) -> None:
    await asyncio.to_thread(vcards.remove, connection, wait_empty=False)


async def test_monitor_reports_readers_then_insert_and_remove(
    monitor: CardReaderMonitor, vcards: VirtualCards
) -> None:
    events = Events(monitor)
    first = [await events.next(), await events.next()]
    assert first == [ReaderAdded(reader=name) for name in vcards.daemon.reader_names]
    connection = await insert(vcards, UidCard(bytes.fromhex("04A1B2C3D4E5F6")))
    inserted = await events.next()
    assert isinstance(inserted, CardInserted)
    assert inserted.reader == vcards.reader(0)
    assert inserted.identity.uid_hex == "04A1B2C3D4E5F6"
    assert inserted.atr_hex.startswith("3B8F8001")
    await remove(vcards, connection)
    assert await events.next() == CardRemoved(reader=vcards.reader(0))
    assert monitor.readers == vcards.daemon.reader_names


async def test_monitor_reports_a_card_already_present_at_start(
    pcscd: PcscDaemon, vcards: VirtualCards
) -> None:
    await asyncio.to_thread(vcards.insert, ProfileCard(resident_record()), 1)
    async with fast_monitor() as mon:
        events = Events(mon)
        got = await events.until(lambda e: isinstance(e, CardInserted))
        assert isinstance(got[-1], CardInserted)
        assert got[-1].reader == vcards.reader(1)
        assert got[-1].identity.account == "1234567890"


async def test_monitor_reports_both_readers_independently(
    monitor: CardReaderMonitor, vcards: VirtualCards
) -> None:
    events = Events(monitor)
    await events.readers_added()
    await insert(vcards, UidCard(bytes.fromhex("04000001")), 0)
    await insert(vcards, ProfileCard(resident_record(account="5555")), 1)
    got = [await events.next(), await events.next()]
    by_reader = {e.reader: e for e in got if isinstance(e, CardInserted)}
    assert by_reader[vcards.reader(0)].identity.uid_hex == "04000001"
    assert by_reader[vcards.reader(1)].identity.account == "5555"


@pytest.mark.parametrize(
    ("card", "error"),
    [
        pytest.param(
            MisbehavingCard(ProfileCard(resident_record()), always(b"\x01\x02\x03")),
            CardNotRecognised,
            id="garbage",
        ),
        pytest.param(
            MisbehavingCard(ProfileCard(resident_record()), on_ins(0xB0, sw(0x6F00))),
            CardProtocolError,
            id="wrong-status-word",
        ),
        pytest.param(
            MisbehavingCard(ProfileCard(resident_record()), on_ins(0xB0, DISCONNECT)),
            CardRemovedError,
            id="removed-mid-read",
        ),
    ],
)
async def test_monitor_reports_a_failed_read_and_keeps_going(
    monitor: CardReaderMonitor,
    vcards: VirtualCards,
    card: MisbehavingCard,
    error: type[Exception],
) -> None:
    events = Events(monitor)
    await events.readers_added()
    connection = await insert(vcards, card)
    failed = await events.next()
    assert isinstance(failed, CardReadFailed)
    assert isinstance(failed.error, error)
    assert failed.atr_hex == card.atr.hex().upper()
    await remove(vcards, connection)
    assert await events.next() == CardRemoved(reader=vcards.reader(0))
    # The monitor is still alive: the next, good card is read.
    await insert(vcards, UidCard(bytes.fromhex("04CAFE01")))
    good = await events.next()
    assert isinstance(good, CardInserted)
    assert good.identity.uid_hex == "04CAFE01"


async def test_card_that_never_answers_does_not_freeze_the_monitor(
    pcscd: PcscDaemon, vcards: VirtualCards
) -> None:
    release = threading.Event()
    stuck = MisbehavingCard(ProfileCard(resident_record()), stall_on_ins(0xB0, release))
    try:
        async with fast_monitor(read_timeout_s=1.0) as mon:
            events = Events(mon)
            await events.readers_added()
            await insert(vcards, stuck, 0)
            failed = await events.next()
            assert isinstance(failed, CardReadFailed)
            assert isinstance(failed.error, CardProtocolError)
            assert "did not answer" in str(failed.error)
            # The other reader still works while the stuck read is blocked in pcscd.
            await insert(vcards, UidCard(bytes.fromhex("04F00D01")), 1)
            good = await events.next()
            assert isinstance(good, CardInserted)
            assert good.reader == vcards.reader(1)
    finally:
        release.set()


async def test_reader_unplug_with_card_reports_card_then_reader_removed_and_replug_rereads(
    monitor: CardReaderMonitor, vcards: VirtualCards, pcscd: PcscDaemon
) -> None:
    events = Events(monitor)
    await events.readers_added()
    # A card left in the reader: it comes back with the reader.
    await insert(vcards, UidCard(bytes.fromhex("04BEEF0001")), reconnect=True)
    assert isinstance(await events.next(), CardInserted)
    # vpcd's readers exist as long as pcscd does: stopping it is the unplug.
    await asyncio.to_thread(pcscd.stop)
    unplugged = [await events.next(), await events.next(), await events.next()]
    assert unplugged == [
        CardRemoved(reader=vcards.reader(0)),
        ReaderRemoved(reader=vcards.reader(0)),
        ReaderRemoved(reader=vcards.reader(1)),
    ]
    await asyncio.to_thread(pcscd.start)
    replugged = await events.until(lambda e: isinstance(e, CardInserted))
    assert replugged[:2] == [ReaderAdded(reader=name) for name in pcscd.reader_names]
    assert isinstance(replugged[-1], CardInserted)
    assert replugged[-1].identity.uid_hex == "04BEEF0001"
    assert monitor.context_losses == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_pcscd_restart_while_monitoring_recovers_and_sees_the_next_card(
    monitor: CardReaderMonitor, vcards: VirtualCards, pcscd: PcscDaemon, sig: int
) -> None:
    events = Events(monitor)
    await events.readers_added()
    await asyncio.to_thread(pcscd.restart, sig=sig, down_s=0.5)
    got = await events.until(lambda e: isinstance(e, ReaderAdded))
    assert [type(e) for e in got] == [ReaderRemoved, ReaderRemoved, ReaderAdded]
    assert isinstance(await events.next(), ReaderAdded)
    await insert(vcards, ProfileCard(resident_record(account="77778888")))
    inserted = await events.next()
    assert isinstance(inserted, CardInserted)
    assert inserted.identity.account == "77778888"
    assert monitor.context_losses == 1


async def test_monitor_started_while_pcscd_is_down_picks_it_up(
    pcscd: PcscDaemon, vcards: VirtualCards
) -> None:
    await asyncio.to_thread(pcscd.stop)
    async with fast_monitor() as mon:
        events = Events(mon)
        await asyncio.sleep(0.5)
        assert mon.readers == []
        await asyncio.to_thread(pcscd.start)
        await events.readers_added()
        await insert(vcards, UidCard(bytes.fromhex("04D00D01")))
        assert isinstance(await events.next(), CardInserted)


async def wait_for_drops(mon: CardReaderMonitor, count: int) -> None:
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while mon.dropped_events < count:
        assert time.monotonic() < deadline, f"only {mon.dropped_events} events dropped"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    assert mon.dropped_events == count


async def test_queue_bound_drops_the_oldest_events_and_counts_them(
    pcscd: PcscDaemon, vcards: VirtualCards
) -> None:
    async with fast_monitor(queue_events_max=2) as mon:
        # Nobody consumes: ReaderAdded x2, CardInserted, CardRemoved arrive.
        connection = await insert(vcards, UidCard(bytes.fromhex("04B0B0B0")))
        await wait_for_drops(mon, 1)
        await remove(vcards, connection)
        await wait_for_drops(mon, 2)
        events = Events(mon)
        kept = [await events.next(), await events.next()]
        assert isinstance(kept[0], CardInserted)
        assert kept[1] == CardRemoved(reader=vcards.reader(0))


async def test_close_ends_the_event_stream_promptly_and_is_idempotent(pcscd: PcscDaemon) -> None:
    mon = fast_monitor(poll_timeout_s=30)
    mon.start()
    events = Events(mon)
    await events.readers_added()
    started = time.monotonic()
    await mon.close()
    assert time.monotonic() - started < 1.0
    with pytest.raises(StopAsyncIteration):
        await events.next()
    await mon.close()
    with pytest.raises(StopAsyncIteration):
        await anext(mon.events())


async def test_a_consumer_timeout_does_not_break_the_event_stream(
    monitor: CardReaderMonitor, vcards: VirtualCards
) -> None:
    stream = monitor.events()
    await asyncio.wait_for(anext(stream), EVENT_TIMEOUT_S)
    await asyncio.wait_for(anext(stream), EVENT_TIMEOUT_S)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(stream), 0.3)
    await insert(vcards, UidCard(bytes.fromhex("04ABCDEF")))
    assert isinstance(await asyncio.wait_for(anext(stream), EVENT_TIMEOUT_S), CardInserted)


async def test_events_before_start_raises(pcscd: PcscDaemon) -> None:
    mon = fast_monitor()
    with pytest.raises(RuntimeError, match="start"):
        await anext(mon.events())


def test_monitor_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="queue_events_max"):
        CardReaderMonitor(queue_events_max=0)
    with pytest.raises(ValueError, match="poll_timeout_s"):
        CardReaderMonitor(poll_timeout_s=0)
    with pytest.raises(ValueError, match="backoff"):
        CardReaderMonitor(backoff_initial_s=2, backoff_max_s=1)
