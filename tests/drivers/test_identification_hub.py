"""The identification hub: keypad, serial scanner (real pty), card sources, one stream."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.identification import (
    AccountIdentified,
    CardHashRef,
    IdentificationEvent,
    IdentificationFailed,
    IdentificationHub,
    QrRef,
    VirtualNumberRef,
    track2_card_hash,
)
from drivers.identification.card_hash import canonical_track2
from drivers.identification.virtual_number import CheckDigitScheme, with_check_digit
from drivers.pcsc.errors import CardNotRecognised, CardRemovedError
from drivers.pcsc.events import CardInserted, CardReadFailed, CardRemoved, ReaderAdded
from drivers.pcsc.identity import CardIdentity, card_hash
from drivers.scanner.gost_qr import QrEncoding, encode_payment_qr
from drivers.scanner.samples import sample_bill
from drivers.scanner.serial_scanner import ScannerConfig, SerialScanner
from drivers.scanner.simulator import ScannerSimulator
from drivers.scanner.track2 import ResidentTrack2

KEY = b"k" * 32
WAIT_S = 8.0
VALID = "123456782"  # Luhn
ATR = "3B8F8001804F0CA000000306030001000000006A"


async def take(stream: AsyncIterator[IdentificationEvent], count: int) -> list[Any]:
    got = []
    async with asyncio.timeout(WAIT_S):
        for _ in range(count):
            got.append(await anext(stream))
    return got


# --- Keypad ------------------------------------------------------------------------


async def test_keypad_entry_is_returned_and_streamed() -> None:
    async with IdentificationHub(card_hash_key=KEY) as hub:
        stream = hub.events()
        event = hub.submit_virtual_number(" 1234 5678 2 ")
        assert event == AccountIdentified(source="keypad", reference=VirtualNumberRef(number=VALID))
        assert await take(stream, 1) == [event]


async def test_keypad_typo_gives_failure_with_both_messages() -> None:
    async with IdentificationHub(card_hash_key=KEY) as hub:
        event = hub.submit_virtual_number("123456783")
        assert isinstance(event, IdentificationFailed)
        assert (event.source, event.reason) == ("keypad", "bad_check_digit")
        assert event.message("ru") != event.message("en")
        assert await take(hub.events(), 1) == [event]


# --- Serial scanner over a real pty ---------------------------------------------------


@pytest.fixture
def sim() -> Any:
    with ScannerSimulator() as simulator:
        yield simulator


def _scanner(sim: ScannerSimulator) -> SerialScanner:
    return SerialScanner(ScannerConfig(url=sim.port_path, read_timeout_s=0.02))


async def test_scanner_reads_become_identification_events(sim: ScannerSimulator) -> None:
    scanner = _scanner(sim)
    async with IdentificationHub(card_hash_key=KEY) as hub:
        hub.add_scanner(scanner)
        stream = hub.events()
        await scanner.wait_open(WAIT_S)
        bill = sample_bill(QrEncoding.KOI8_R)
        await sim.scan_async(encode_payment_qr(bill), chunk_bytes=40, delay_s=0.002)
        await sim.scan_async(b";123456782=00013?")
        await sim.scan_async(b"1234 5678 2")
        await sim.scan_async(b"123456783")
        await sim.scan_async(b";4111111111111111=2912101?")
        await sim.scan_async(encode_payment_qr(bill).replace(b"Sum=345678", b"Sum=3456.78"))
        qr, card, printed, typo, bank, bad_qr = await take(stream, 6)

    assert qr == AccountIdentified(source="qr", reference=QrRef(payment=bill))
    assert qr.reference.payment.account_reference == VALID
    resident = ResidentTrack2(account=VALID, deployment_id="0001", card_serial="3")
    assert card == AccountIdentified(
        source="scanner", reference=CardHashRef(card_hash=track2_card_hash(resident, KEY))
    )
    assert printed == AccountIdentified(source="scanner", reference=VirtualNumberRef(number=VALID))
    assert isinstance(typo, IdentificationFailed)
    assert (typo.source, typo.reason) == ("scanner", "bad_check_digit")
    assert isinstance(bank, IdentificationFailed)
    assert (bank.source, bank.reason) == ("scanner", "bank_card")
    assert isinstance(bad_qr, IdentificationFailed)
    assert (bad_qr.source, bad_qr.reason) == ("qr", "bad_value")


# --- Card sources ----------------------------------------------------------------------


async def _pcsc_events(*events: object) -> AsyncIterator[object]:
    for event in events:
        await asyncio.sleep(0)
        yield event
    await asyncio.Event().wait()  # a monitor runs until closed


class ScriptedCardSource:
    """Stands in for CardReaderMonitor: yields the pcsc driver's own event classes."""

    def __init__(self, *events: object) -> None:
        self._events = events

    def events(self) -> AsyncIterator[object]:
        return _pcsc_events(*self._events)


async def test_card_events_from_the_pcsc_driver_become_card_hashes() -> None:
    uid = CardIdentity(kind="uid", uid_hex="04A1B2C3D4E5F6")
    record = CardIdentity(
        kind="resident_record", account=VALID, card_serial="SN-1", deployment_id="0001"
    )
    source = ScriptedCardSource(
        ReaderAdded(reader="R0"),
        CardInserted(reader="R0", atr_hex=ATR, identity=uid),
        CardRemoved(reader="R0"),
        CardReadFailed(reader="R0", error=CardRemovedError("early")),
        CardReadFailed(reader="R0", error=CardNotRecognised("no app")),
        CardInserted(reader="R0", atr_hex=ATR, identity=record),
    )
    async with IdentificationHub(card_hash_key=KEY) as hub:
        hub.add_card_source(source)
        first, early, unknown, second = await take(hub.events(), 4)

    assert first == AccountIdentified(
        source="card", reference=CardHashRef(card_hash=card_hash(uid, KEY))
    )
    assert second == AccountIdentified(
        source="card", reference=CardHashRef(card_hash=card_hash(record, KEY))
    )
    assert isinstance(early, IdentificationFailed)
    assert (early.source, early.reason) == ("card", "card_read_failed")
    assert early.message_en.startswith("Card removed too early")
    assert isinstance(unknown, IdentificationFailed)
    assert unknown.reason == "card_not_recognised"


@dataclass(frozen=True)
class OtherCardInserted:
    reader: str
    identity: str


async def test_any_card_source_shaped_like_the_protocol_works_with_a_custom_hasher() -> None:
    source = ScriptedCardSource(OtherCardInserted(reader="x", identity="card-7"))
    hub = IdentificationHub(card_hash_key=KEY, card_hasher=lambda identity: "ab" * 32)
    hub.add_card_source(source)  # added before start: starts with the hub
    async with hub:
        (event,) = await take(hub.events(), 1)
    assert event == AccountIdentified(source="card", reference=CardHashRef(card_hash="ab" * 32))


async def test_unhashable_identity_becomes_card_not_recognised() -> None:
    def refuse(identity: object) -> str:
        raise ValueError("not a card identity")

    source = ScriptedCardSource(OtherCardInserted(reader="x", identity="?"))
    async with IdentificationHub(card_hash_key=KEY, card_hasher=refuse) as hub:
        hub.add_card_source(source)
        (event,) = await take(hub.events(), 1)
    assert isinstance(event, IdentificationFailed)
    assert event.reason == "card_not_recognised"


async def test_failing_source_is_logged_and_others_keep_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        async def events(self) -> AsyncIterator[object]:
            yield OtherCardInserted(reader="x", identity="1")
            raise RuntimeError("driver bug")

    async with IdentificationHub(card_hash_key=KEY, card_hasher=lambda _: "cd" * 32) as hub:
        hub.add_card_source(Broken())
        stream = hub.events()
        assert len(await take(stream, 1)) == 1
        await asyncio.sleep(0.05)
        hub.submit_virtual_number(VALID)
        (event,) = await take(stream, 1)
        assert isinstance(event, AccountIdentified)
    assert "identification_source_failed kind=card error=RuntimeError" in caplog.text


# --- Every source at once, through the real PC/SC stack --------------------------------


async def test_hub_delivers_from_pcscd_card_reader_pty_scanner_and_keypad(
    vcards: Any, sim: ScannerSimulator
) -> None:
    from drivers.pcsc.reader import CardReaderMonitor
    from tests.drivers.vcard.cards import UidCard

    monitor = CardReaderMonitor(poll_timeout_s=0.2, backoff_initial_s=0.05, backoff_max_s=0.4)
    monitor.start()
    scanner = _scanner(sim)
    try:
        async with IdentificationHub(card_hash_key=KEY) as hub:
            hub.add_card_source(monitor)
            hub.add_scanner(scanner)
            stream = hub.events()
            await scanner.wait_open(WAIT_S)

            await asyncio.to_thread(
                vcards.insert, UidCard(bytes.fromhex("04A1B2C3D4E5F6")), 0, wait_present=False
            )
            (from_card,) = await take(stream, 1)
            await sim.scan_async(encode_payment_qr(sample_bill(QrEncoding.WINDOWS_1251)))
            (from_qr,) = await take(stream, 1)
            hub.submit_virtual_number(VALID)
            (from_keypad,) = await take(stream, 1)
    finally:
        await monitor.close()

    uid = CardIdentity(kind="uid", uid_hex="04A1B2C3D4E5F6")
    assert from_card == AccountIdentified(
        source="card", reference=CardHashRef(card_hash=card_hash(uid, KEY))
    )
    assert isinstance(from_qr, AccountIdentified)
    assert from_qr.source == "qr"
    assert from_keypad == AccountIdentified(
        source="keypad", reference=VirtualNumberRef(number=VALID)
    )


# --- Bounds, closing, invariants ---------------------------------------------------------


async def test_queue_bound_drops_oldest_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    numbers = [with_check_digit(str(n) * 8, CheckDigitScheme.LUHN) for n in range(1, 6)]
    async with IdentificationHub(card_hash_key=KEY, queue_events_max=3) as hub:
        for number in numbers:
            hub.submit_virtual_number(number)
        assert hub.dropped_events == 2
        got = await take(hub.events(), 3)
    assert [e.reference.number for e in got] == numbers[2:]
    assert "identification_event_dropped" in caplog.text


async def test_close_ends_the_stream_and_refuses_new_input() -> None:
    hub = IdentificationHub(card_hash_key=KEY, queue_events_max=1)
    hub.start()
    stream = hub.events()
    queued = hub.submit_virtual_number(VALID)
    await hub.aclose()
    await hub.aclose()  # idempotent
    async with asyncio.timeout(WAIT_S):
        remaining = [event async for event in stream]
    assert remaining == [queued]  # what was queued is delivered, then the stream ends
    assert [e async for e in hub.events()] == []
    with pytest.raises(RuntimeError, match="closed"):
        hub.submit_virtual_number(VALID)
    with pytest.raises(RuntimeError, match="closed"):
        hub.add_scanner(ScriptedCardSource())


async def test_closing_the_hub_closes_the_scanner_port(sim: ScannerSimulator) -> None:
    scanner = _scanner(sim)
    hub = IdentificationHub(card_hash_key=KEY)
    hub.start()
    hub.add_scanner(scanner)  # added after start
    await scanner.wait_open(WAIT_S)
    await hub.aclose()
    assert not scanner.is_open


def test_hub_validation() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        IdentificationHub(card_hash_key=b"short")
    with pytest.raises(ValueError, match="queue_events_max"):
        IdentificationHub(card_hash_key=KEY, queue_events_max=0)
    assert "sources=0" in repr(IdentificationHub(card_hash_key=KEY))


def test_events_check_source_and_reference_invariants() -> None:
    with pytest.raises(TypeError):
        AccountIdentified(source="keypad", reference=CardHashRef(card_hash="ab" * 32))
    with pytest.raises(TypeError):
        AccountIdentified(source="qr", reference=VirtualNumberRef(number="1"))
    with pytest.raises(ValueError, match="source"):
        AccountIdentified(source="nfc", reference=VirtualNumberRef(number="1"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lower-case hex"):
        CardHashRef(card_hash="AB" * 32)
    with pytest.raises(ValueError, match="digits"):
        VirtualNumberRef(number="12a")
    with pytest.raises(ValueError, match="snake_case"):
        IdentificationFailed(source="card", reason="Bad Reason", message_ru="a", message_en="b")
    with pytest.raises(ValueError, match="both messages"):
        IdentificationFailed(source="card", reason="x", message_ru=" ", message_en="b")
    with pytest.raises(TypeError):
        QrRef(payment="ST00012")  # type: ignore[arg-type]


def test_track2_card_hash_is_hmac_over_the_documented_string() -> None:
    card = ResidentTrack2(account=VALID, deployment_id="0001", card_serial="3")
    expected = hmac.new(
        KEY, f"lobbypay-card-v1\x1ftrack2\x1f0001\x1f3\x1f{VALID}".encode(), hashlib.sha256
    ).hexdigest()
    assert canonical_track2(card) == f"lobbypay-card-v1\x1ftrack2\x1f0001\x1f3\x1f{VALID}"
    assert track2_card_hash(card, KEY) == expected
    same_data_on_a_chip = CardIdentity(
        kind="resident_record", account=VALID, card_serial="3", deployment_id="0001"
    )
    assert card_hash(same_data_on_a_chip, KEY) != expected  # kinds are separated
    assert track2_card_hash(card, b"j" * 32) != expected
    with pytest.raises(ValueError, match="16 bytes"):
        track2_card_hash(card, b"short")
