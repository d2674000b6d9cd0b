"""The simulated reader: same events and the same protocol code as the PC/SC monitor."""

from __future__ import annotations

import pytest

from drivers.pcsc.errors import CardNotRecognised
from drivers.pcsc.events import (
    CardInserted,
    CardReadFailed,
    CardRemoved,
    ReaderAdded,
    ReaderRemoved,
)
from drivers.pcsc.simulator import (
    SIMULATED_READER,
    SimulatedCardReaderMonitor,
    SimulatedResidentCard,
    SimulatedUidCard,
)
from drivers.pcsc.stream import CardEventSource
from tests.drivers.vcard.cards import ProfileCard, UidCard, resident_record


async def drain(monitor: SimulatedCardReaderMonitor) -> list[object]:
    await monitor.close()
    return [event async for event in monitor.events()]


async def test_simulated_uid_card_is_read_into_card_inserted() -> None:
    monitor = SimulatedCardReaderMonitor()
    monitor.start()
    event = monitor.present(SimulatedUidCard(bytes.fromhex("04A1B2C3D4E5F6")))
    monitor.remove()
    assert isinstance(event, CardInserted)
    assert event.identity.uid_hex == "04A1B2C3D4E5F6"
    assert await drain(monitor) == [
        ReaderAdded(reader=SIMULATED_READER),
        event,
        CardRemoved(reader=SIMULATED_READER),
    ]


async def test_simulated_resident_card_is_read_through_the_session() -> None:
    async with SimulatedCardReaderMonitor() as monitor:
        card = SimulatedResidentCard("1234567890", card_serial="SN-9", deployment_id="demo")
        event = monitor.present(card)
    assert isinstance(event, CardInserted)
    assert (event.identity.account, event.identity.card_serial, event.identity.deployment_id) == (
        "1234567890",
        "SN-9",
        "demo",
    )


def test_simulated_resident_card_answers_like_the_test_profile_card() -> None:
    simulated = SimulatedResidentCard("1234567890", card_serial="SN-0001", deployment_id="kazan-01")
    reference = ProfileCard(resident_record())
    for hex_apdu in [
        "FFCA000000",
        "00A404000AF04C4F4242595041590100",
        "00A4020C020101",
        "00B0000080",
        "00B0000010",
        "00B0001F10",
        "00A404000AF04C4F4242595041590200",
        "00B0000010",
        "00CA000000",
    ]:
        apdu = bytes.fromhex(hex_apdu)
        assert simulated.transmit(apdu) == reference.respond(apdu), hex_apdu


def test_simulated_uid_card_answers_like_the_test_uid_card() -> None:
    uid = bytes.fromhex("04A1B2C3D4E5F6")
    simulated, reference = SimulatedUidCard(uid), UidCard(uid)
    for hex_apdu in ["FFCA000000", "FFCA000004", "FFCA000007", "00A404000AF04C4F4242595041590100"]:
        apdu = bytes.fromhex(hex_apdu)
        assert simulated.transmit(apdu) == reference.respond(apdu), hex_apdu


async def test_unknown_simulated_card_gives_card_read_failed() -> None:
    async with SimulatedCardReaderMonitor() as monitor:
        event = monitor.present(SimulatedUidCard(bytes(4), atr=bytes.fromhex("3B044C4F4259")))
    # A contact ATR: SELECT is refused, then GET DATA answers the UID (the fallback).
    assert isinstance(event, CardInserted)
    async with SimulatedCardReaderMonitor() as monitor:
        event = monitor.present(SimulatedUidCard(bytes(4), atr=bytes.fromhex("0011")))
    assert isinstance(event, CardReadFailed)
    assert isinstance(event.error, CardNotRecognised)


async def test_unplug_reports_card_then_reader_removed_and_plug_adds_it_back() -> None:
    monitor = SimulatedCardReaderMonitor(("A", "B"))
    monitor.start()
    monitor.present(SimulatedUidCard(bytes(4)), "B")
    monitor.unplug("B")
    monitor.plug("B")
    events = await drain(monitor)
    assert [type(e) for e in events] == [
        ReaderAdded,
        ReaderAdded,
        CardInserted,
        CardRemoved,
        ReaderRemoved,
        ReaderAdded,
    ]
    assert monitor.readers == ["A", "B"]


async def test_presenting_a_second_card_removes_the_first() -> None:
    async with SimulatedCardReaderMonitor() as monitor:
        monitor.present(SimulatedUidCard(bytes.fromhex("04000001")))
        monitor.present(SimulatedUidCard(bytes.fromhex("04000002")))
    kinds = [type(e) for e in await drain(monitor)]
    assert kinds == [ReaderAdded, CardInserted, CardRemoved, CardInserted]


async def test_simulator_queue_bound_drops_the_oldest() -> None:
    monitor = SimulatedCardReaderMonitor(queue_events_max=2)
    monitor.start()
    for _ in range(3):
        monitor.present(SimulatedUidCard(bytes(4)))
        monitor.remove()
    assert monitor.dropped_events == 5
    events = await drain(monitor)
    assert [type(e) for e in events] == [CardInserted, CardRemoved]


def test_simulator_and_monitor_satisfy_the_event_source_protocol() -> None:
    from drivers.pcsc.reader import CardReaderMonitor

    sources: list[CardEventSource] = [SimulatedCardReaderMonitor(), CardReaderMonitor()]
    assert all(callable(s.events) for s in sources)


def test_simulated_cards_validate_their_fields() -> None:
    with pytest.raises(ValueError, match="UID"):
        SimulatedUidCard(b"\x01")
    with pytest.raises(ValueError, match="account"):
        SimulatedResidentCard("12ab")


def test_unknown_reader_raises_key_error() -> None:
    monitor = SimulatedCardReaderMonitor()
    monitor.start()
    with pytest.raises(KeyError):
        monitor.remove("nope")
