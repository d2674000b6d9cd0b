"""Reading cards through the real PC/SC stack: pcscd + vpcd + virtual cards.

Every test here talks to a private pcscd (``tests/drivers/vcard``): the bytes go
pyscard -> libpcsclite -> pcscd -> vpcd -> TCP -> the virtual card and back.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from drivers.pcsc.errors import (
    CardError,
    CardNotRecognised,
    CardProtocolError,
    CardRemovedError,
    NoCardError,
    ReaderUnavailable,
    TlvError,
)
from drivers.pcsc.reader import list_readers, read_card, read_card_details
from tests.drivers.vcard.cards import (
    ATR_CONTACT_T0,
    ATR_ISO14443_4,
    DISCONNECT,
    MisbehavingCard,
    ProfileCard,
    UidCard,
    VirtualCard,
    always,
    on_ins,
    resident_record,
    stall_on_ins,
    sw,
    tlv,
)
from tests.drivers.vcard.fixtures import VirtualCards
from tests.drivers.vcard.pcscd import PcscDaemon

UID = bytes.fromhex("04A1B2C3D4E5F6")


def test_list_readers_sees_both_vpcd_slots(pcscd: PcscDaemon) -> None:
    assert list_readers() == pcscd.reader_names


async def test_read_contactless_card_returns_its_uid(vcards: VirtualCards) -> None:
    card = UidCard(UID)
    vcards.insert(card)
    result = await read_card_details(timeout_s=5)
    assert result.reader == vcards.reader(0)
    assert result.atr_hex == card.atr.hex().upper()
    assert result.identity.kind == "uid"
    assert result.identity.uid_hex == UID.hex().upper()
    assert card.commands == [bytes.fromhex("FFCA000000")]


async def test_read_iso14443_4_card_returns_its_uid(vcards: VirtualCards) -> None:
    vcards.insert(UidCard(bytes.fromhex("08B1C2D3"), atr=ATR_ISO14443_4))
    assert (await read_card(timeout_s=5)).uid_hex == "08B1C2D3"


async def test_read_profile_card_returns_the_resident_record(vcards: VirtualCards) -> None:
    card = ProfileCard(resident_record(extra=tlv(0xC1, bytes(300))))
    vcards.insert(card)
    identity = await read_card(timeout_s=5)
    assert identity.kind == "resident_record"
    assert (identity.account, identity.card_serial, identity.deployment_id) == (
        "1234567890",
        "SN-0001",
        "kazan-01",
    )
    assert card.instructions().count(0xB0) == 3


async def test_read_t0_profile_card_follows_61xx_with_get_response(vcards: VirtualCards) -> None:
    card = ProfileCard(
        resident_record(), atr=ATR_CONTACT_T0, get_response_chunk=8, eof_status=0x9000
    )
    vcards.insert(card)
    assert (await read_card(timeout_s=5)).account == "1234567890"
    assert card.instructions().count(0xC0) == 4


async def test_read_card_resends_with_le_from_6cxx(vcards: VirtualCards) -> None:
    card = ProfileCard(resident_record(), strict_le=True)
    vcards.insert(card)
    assert (await read_card(timeout_s=5)).account == "1234567890"
    reads = [c for c in card.commands if c[1] == 0xB0]
    assert [r[4] for r in reads] == [0x80, len(resident_record())]


async def test_read_named_reader_reads_only_that_slot(vcards: VirtualCards) -> None:
    vcards.insert(UidCard(UID), slot=1)
    result = await read_card_details(vcards.reader(1), timeout_s=5)
    assert result.reader == vcards.reader(1)
    with pytest.raises(NoCardError):
        await read_card(vcards.reader(0), timeout_s=0.5)


async def test_read_first_reader_with_a_card_wins(vcards: VirtualCards) -> None:
    vcards.insert(UidCard(UID), slot=1)
    assert (await read_card_details(timeout_s=5)).reader == vcards.reader(1)


async def test_read_waits_for_a_card_presented_later(vcards: VirtualCards) -> None:
    task = asyncio.create_task(read_card(timeout_s=5))
    await asyncio.sleep(0.3)
    assert not task.done()
    await asyncio.to_thread(vcards.insert, UidCard(UID), 0, wait_present=False)
    assert (await task).uid_hex == UID.hex().upper()


@pytest.mark.parametrize(
    ("card", "error", "message"),
    [
        pytest.param(
            MisbehavingCard(ProfileCard(resident_record()), on_ins(0xB0, sw(0x6F00))),
            CardProtocolError,
            "6F00",
            id="wrong-status-word",
        ),
        pytest.param(
            MisbehavingCard(ProfileCard(resident_record()), on_ins(0xB0, b"\x90")),
            CardProtocolError,
            "no status word",
            id="truncated-answer",
        ),
        pytest.param(
            MisbehavingCard(
                ProfileCard(resident_record()), on_ins(0xB0, b"\x80\x0a\x31\x32" + sw(0x9000))
            ),
            TlvError,
            "runs past",
            id="truncated-record",
        ),
        pytest.param(
            MisbehavingCard(ProfileCard(resident_record()), always(b"\xde\xad\xbe\xef\x00")),
            CardNotRecognised,
            "not a status word",
            id="garbage-answers",
        ),
        pytest.param(VirtualCard(ATR_CONTACT_T0), CardNotRecognised, "neither", id="unknown-card"),
        pytest.param(
            ProfileCard(resident_record(account="12AB5678")),
            CardNotRecognised,
            "account",
            id="record-bad-account",
        ),
        pytest.param(
            MisbehavingCard(ProfileCard(resident_record()), on_ins(0xB0, DISCONNECT)),
            CardRemovedError,
            "removed",
            id="removed-mid-read",
        ),
    ],
)
async def test_misbehaving_card_raises_typed_error(
    vcards: VirtualCards, card: VirtualCard, error: type[CardError], message: str
) -> None:
    vcards.insert(card)
    with pytest.raises(error, match=message):
        await read_card(timeout_s=5)


async def test_endless_61xx_card_is_cut_at_the_bound(vcards: VirtualCards) -> None:
    inner = ProfileCard(resident_record(), get_response_chunk=4, eof_status=0x9000)
    card = MisbehavingCard(inner, on_ins(0xC0, b"\x00" * 4 + sw(0x6104)))
    vcards.insert(card)
    with pytest.raises(CardProtocolError, match="GET RESPONSE rounds"):
        await read_card(timeout_s=5)
    assert card.instructions().count(0xC0) == 16


async def test_card_removed_mid_read_reports_removal_not_garbage(vcards: VirtualCards) -> None:
    card = MisbehavingCard(ProfileCard(resident_record()), on_ins(0xB0, DISCONNECT))
    connection = vcards.insert(card)
    started = time.monotonic()
    with pytest.raises(CardRemovedError) as info:
        await read_card(timeout_s=5)
    assert info.value.temporary
    assert connection.dropped_mid_command.is_set()
    assert time.monotonic() - started < 3


async def test_garbage_atr_raises_not_recognised(vcards: VirtualCards) -> None:
    vcards.insert(UidCard(UID, atr=bytes.fromhex("3B0F01020304")))
    with pytest.raises(CardNotRecognised):
        await read_card(timeout_s=3)


async def test_no_card_raises_no_card_error_after_the_timeout(pcscd: PcscDaemon) -> None:
    started = time.monotonic()
    with pytest.raises(NoCardError):
        await read_card(timeout_s=0.6)
    assert 0.5 <= time.monotonic() - started < 2.5


async def test_unknown_reader_name_raises_reader_unavailable(pcscd: PcscDaemon) -> None:
    with pytest.raises(ReaderUnavailable, match="reader not found"):
        await read_card("No Such Reader 00 00", timeout_s=0.5)


async def test_pcscd_down_raises_reader_unavailable(pcscd: PcscDaemon) -> None:
    pcscd.stop()
    with pytest.raises(ReaderUnavailable, match="PC/SC service"):
        await read_card(timeout_s=0.5)


async def test_read_survives_pcscd_starting_while_it_waits(
    pcscd: PcscDaemon, vcards: VirtualCards
) -> None:
    pcscd.stop()
    task = asyncio.create_task(read_card(timeout_s=8))
    await asyncio.sleep(0.4)
    await asyncio.to_thread(pcscd.start)
    await asyncio.to_thread(vcards.insert, UidCard(UID), 0, wait_present=False)
    assert (await task).uid_hex == UID.hex().upper()


async def test_cancelled_read_returns_promptly(pcscd: PcscDaemon) -> None:
    task = asyncio.create_task(read_card(timeout_s=30))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.5


async def test_card_that_never_answers_is_given_up_within_the_read_timeout(
    vcards: VirtualCards,
) -> None:
    release = threading.Event()
    card = MisbehavingCard(ProfileCard(resident_record()), stall_on_ins(0xB0, release))
    vcards.insert(card)
    try:
        started = time.monotonic()
        with pytest.raises(CardProtocolError, match="did not answer within 1 s"):
            await read_card_details(timeout_s=2, read_timeout_s=1)
        assert 0.9 <= time.monotonic() - started < 2.5
    finally:
        release.set()
