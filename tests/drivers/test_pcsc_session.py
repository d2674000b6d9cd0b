"""The resident card read state machine, driven against in-process virtual cards.

A two-peer harness: the sans-I/O session on one side, a virtual card (the same
objects the vpcd tests put into pcscd) on the other, bytes in between.
"""

from __future__ import annotations

import pytest

from drivers.pcsc.apdu import CommandApdu
from drivers.pcsc.errors import CardNotRecognised, CardProtocolError, TlvError
from drivers.pcsc.identity import CardIdentity
from drivers.pcsc.session import (
    COMMANDS_MAX,
    TRANSITIONS,
    Outcome,
    ResidentCardSession,
    State,
)
from tests.drivers.vcard.cards import (
    ATR_CONTACT_T0,
    ATR_ISO14443_4,
    ATR_MIFARE_1K,
    DISCONNECT,
    MisbehavingCard,
    ProfileCard,
    UidCard,
    VirtualCard,
    always,
    on_ins,
    resident_record,
    sw,
    tlv,
)

UID = bytes.fromhex("04A1B2C3D4E5F6")


def run(card: VirtualCard, **options: int) -> CardIdentity:
    """Drive a session against ``card``; a dropped connection answers b"" like vpcd."""
    session = ResidentCardSession(card.atr, **options)
    step: CommandApdu | CardIdentity = session.start()
    while isinstance(step, CommandApdu):
        answer = card.handle(step.to_bytes())
        step = session.receive(b"" if answer is DISCONNECT else answer)  # type: ignore[arg-type]
    return step


def test_contactless_card_is_read_by_get_data_uid() -> None:
    card = UidCard(UID)
    identity = run(card)
    assert identity == CardIdentity(kind="uid", uid_hex=UID.hex().upper())
    assert card.commands == [bytes.fromhex("FFCA000000")]


def test_iso14443_4_card_is_identified_by_uid_too() -> None:
    identity = run(UidCard(bytes.fromhex("08123456"), atr=ATR_ISO14443_4))
    assert identity.uid_hex == "08123456"


def test_contact_profile_card_reads_the_resident_record() -> None:
    card = ProfileCard(resident_record())
    identity = run(card)
    assert identity.kind == "resident_record"
    assert identity.account == "1234567890"
    assert identity.card_serial == "SN-0001"
    assert identity.deployment_id == "kazan-01"
    assert card.commands[0] == bytes.fromhex("00A404000AF04C4F4242595041590100")
    assert card.commands[1] == bytes.fromhex("00A4020C020101")
    assert card.commands[2] == bytes.fromhex("00B0000080")


def test_record_longer_than_a_chunk_is_read_in_several_read_binary() -> None:
    record = resident_record(extra=tlv(0xC1, bytes(300)))
    card = ProfileCard(record)
    identity = run(card, read_chunk_bytes=64)
    assert identity.account == "1234567890"
    reads = [c for c in card.commands if c[1] == 0xB0]
    offsets = [(c[2] << 8) | c[3] for c in reads]
    assert offsets == list(range(0, len(record) + 1, 64))[: len(reads)]
    assert len(reads) == len(record) // 64 + 1


def test_record_ending_exactly_on_a_chunk_boundary_stops_at_6b00() -> None:
    record = resident_record()
    record += tlv(0xC1, bytes(64 - len(record) - 2))
    assert len(record) == 64
    card = ProfileCard(record)
    assert run(card, read_chunk_bytes=32).account == "1234567890"
    assert [c[3] for c in card.commands if c[1] == 0xB0] == [0, 32, 64]


def test_short_read_with_9000_ends_the_file() -> None:
    card = ProfileCard(resident_record(), eof_status=0x9000)
    assert run(card).account == "1234567890"
    assert card.instructions().count(0xB0) == 1


def test_t0_card_61xx_is_answered_with_get_response_chain() -> None:
    card = ProfileCard(
        resident_record(),
        atr=ATR_CONTACT_T0,
        get_response_chunk=5,
        fci=bytes(12),
        eof_status=0x9000,
    )
    identity = run(card)
    assert identity.account == "1234567890"
    # FCI: 12 bytes in 3 GET RESPONSE; record: 31 bytes in 7.
    assert card.instructions() == [0xA4] + [0xC0] * 3 + [0xA4, 0xB0] + [0xC0] * 7


def test_6cxx_resends_the_same_command_with_the_exact_le() -> None:
    card = ProfileCard(resident_record(), strict_le=True)
    assert run(card).deployment_id == "kazan-01"
    reads = [c for c in card.commands if c[1] == 0xB0]
    assert reads[0][4] == 0x80
    assert reads[1][:4] == reads[0][:4]
    assert reads[1][4] == len(resident_record())


def test_uid_6cxx_resends_get_data_with_the_uid_length() -> None:
    card = MisbehavingCard(UidCard(UID), on_ins(0xCA, sw(0x6C07), times=1))
    assert run(card).uid_hex == UID.hex().upper()
    assert card.commands == [bytes.fromhex("FFCA000000"), bytes.fromhex("FFCA000007")]


def test_repeated_6cxx_raises_protocol_error() -> None:
    card = MisbehavingCard(UidCard(UID), on_ins(0xCA, sw(0x6C07)))
    with pytest.raises(CardProtocolError, match="Le twice"):
        run(card)


def test_contactless_atr_without_uid_falls_back_to_the_profile() -> None:
    card = ProfileCard(resident_record(), atr=ATR_MIFARE_1K)
    assert run(card).account == "1234567890"
    assert card.instructions()[:2] == [0xCA, 0xA4]


def test_contact_card_without_application_falls_back_to_uid() -> None:
    card = UidCard(UID, atr=ATR_CONTACT_T0)
    assert run(card).uid_hex == UID.hex().upper()
    assert card.instructions() == [0xA4, 0xCA]


def test_unknown_card_raises_not_recognised_after_both_probes() -> None:
    card = VirtualCard(ATR_CONTACT_T0)
    with pytest.raises(CardNotRecognised, match="neither a UID nor the resident application"):
        run(card)
    assert card.instructions() == [0xA4, 0xCA]


def test_garbage_atr_raises_not_recognised_and_sends_nothing() -> None:
    session = ResidentCardSession(bytes.fromhex("0102030405"))
    with pytest.raises(CardNotRecognised):
        session.start()
    assert session.state is State.FAILED


@pytest.mark.parametrize(
    ("rule", "error", "message"),
    [
        (on_ins(0xB0, sw(0x6F00)), CardProtocolError, "READ BINARY failed"),
        (on_ins(0xB0, sw(0x6700)), CardProtocolError, "6700"),
        (on_ins(0xB0, sw(0x6281)), CardProtocolError, "warning"),
        (on_ins(0xB0, b"\x90"), CardProtocolError, "no status word"),
        (on_ins(0xB0, b""), CardProtocolError, "no status word"),
        (on_ins(0xB0, bytes(200) + sw(0x9000)), CardProtocolError, "200 bytes for Le 128"),
        (on_ins(0xB0, b"\x01" + sw(0x6A82)), CardProtocolError, "error status word came with data"),
        (on_ins(0xB0, sw(0x6982)), CardNotRecognised, "neither"),
        (on_ins(0xB0, sw(0x6B00)), CardNotRecognised, "neither"),
        (on_ins(0xA4, sw(0x6A82), after=1), CardNotRecognised, "neither"),
        (on_ins(0xA4, sw(0x9001)), CardProtocolError, "not a status word"),
        (on_ins(0xA4, b"\x12\x34\x56"), CardProtocolError, "not a status word"),
        (on_ins(0xB0, sw(0x6110)), CardNotRecognised, "neither"),
        (on_ins(0xB0, b"\x80\x05\x31\x32" + sw(0x9000)), TlvError, "runs past"),
        (on_ins(0xB0, b"\x81\x01\x41" + sw(0x9000)), CardNotRecognised, "no account"),
        (on_ins(0xB0, sw(0x6C00)), CardProtocolError, "Le twice"),
        (on_ins(0xB0, b"\x01" + sw(0x6C10)), CardProtocolError, "6Cxx came with data"),
    ],
)
def test_misbehaving_profile_card_raises_typed_error(
    rule: object, error: type[Exception], message: str
) -> None:
    card = MisbehavingCard(ProfileCard(resident_record()), rule)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        run(card)


def test_endless_61xx_is_cut_at_the_get_response_bound() -> None:
    inner = ProfileCard(resident_record(), get_response_chunk=16, eof_status=0x9000)
    card = MisbehavingCard(inner, on_ins(0xC0, b"\x00" * 16 + sw(0x6110)))
    with pytest.raises(CardProtocolError, match="GET RESPONSE rounds"):
        run(card, get_response_rounds_max=4)
    assert card.instructions().count(0xC0) == 4


def test_record_over_the_size_bound_raises_protocol_error() -> None:
    card = ProfileCard(resident_record(extra=tlv(0xC1, bytes(600))))
    with pytest.raises(CardProtocolError, match="longer than 512"):
        run(card, record_bytes_max=512)


def test_record_at_the_size_bound_is_read() -> None:
    record = resident_record() + tlv(0xC1, bytes(477))
    assert len(record) == 512
    card = ProfileCard(record)
    assert run(card, record_bytes_max=512).account == "1234567890"


def test_command_count_is_bounded_whatever_the_card_says() -> None:
    # 61xx with 1 data byte each round forever, with a huge GET RESPONSE allowance.
    card = MisbehavingCard(ProfileCard(resident_record()), always(b"\x00" + sw(0x6101)))
    with pytest.raises(CardProtocolError, match=f"more than {COMMANDS_MAX} commands"):
        run(card, get_response_rounds_max=10_000)
    assert len(card.commands) == COMMANDS_MAX


def test_finished_session_refuses_more_input() -> None:
    card = UidCard(UID)
    session = ResidentCardSession(card.atr)
    command = session.start()
    assert isinstance(session.receive(card.respond(command.to_bytes())), CardIdentity)  # type: ignore[arg-type]
    assert session.state is State.DONE
    with pytest.raises(RuntimeError, match="cannot receive"):
        session.receive(b"\x90\x00")


def test_failed_session_keeps_its_error_and_refuses_more_input() -> None:
    session = ResidentCardSession(ATR_CONTACT_T0)
    session.start()
    with pytest.raises(CardProtocolError):
        session.receive(b"\x01")
    assert session.state is State.FAILED
    assert isinstance(session.error, CardProtocolError)
    with pytest.raises(RuntimeError):
        session.receive(b"\x90\x00")


def test_transition_table_reaches_a_terminal_state_from_every_state() -> None:
    terminal = {State.DONE, State.NOT_RECOGNISED}
    graph: dict[State, set[State]] = {}
    for (source, _outcome), target in TRANSITIONS.items():
        graph.setdefault(source, set()).add(target)
    for start in graph:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in graph.get(frontier.pop(), set()):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & terminal, start
    # Each probe is tried at most once: the fallbacks never lead back to a first probe.
    assert (State.GET_UID_FALLBACK, Outcome.ABSENT) in TRANSITIONS
    assert TRANSITIONS[(State.GET_UID_FALLBACK, Outcome.ABSENT)] is State.NOT_RECOGNISED
    assert TRANSITIONS[(State.SELECT_APP_FALLBACK, Outcome.ABSENT)] is State.NOT_RECOGNISED
