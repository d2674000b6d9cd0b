"""Hypothesis fuzz and property tests for every PC/SC parser of card bytes.

Whatever a card sends, the parsers give a value or a typed CardError -- never
another exception, never a hang. Bigger runs: ``--run-slow``.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.pcsc.apdu import SHORT_LE_MAX, CommandApdu, parse_response
from drivers.pcsc.atr import ATR_BYTES_MAX, parse_atr
from drivers.pcsc.errors import CardError, CardNotRecognised, CardProtocolError, TlvError
from drivers.pcsc.identity import CardIdentity, parse_resident_record
from drivers.pcsc.session import COMMANDS_MAX, ResidentCardSession
from drivers.pcsc.tlv import Tlv, parse_ber_tlv
from tests.drivers.vcard.cards import (
    ATR_CONTACT_T0,
    ATR_CONTACT_T1,
    ATR_MIFARE_1K,
    ProfileCard,
    resident_record,
    tlv,
)

QUICK = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(st.binary(max_size=300))
def test_parse_response_gives_response_or_protocol_error(raw: bytes) -> None:
    try:
        response = parse_response(raw)
    except CardProtocolError:
        return
    assert response.data + bytes([response.sw1, response.sw2]) == raw


@QUICK
@given(st.binary(max_size=600))
def test_parse_ber_tlv_gives_objects_or_tlv_error(data: bytes) -> None:
    try:
        objects = parse_ber_tlv(data)
    except TlvError:
        return
    assert sum(len(o.value) for o in objects) <= len(data)


def _encode(obj: Tlv) -> bytes:
    tag = obj.tag.to_bytes((obj.tag.bit_length() + 7) // 8, "big")
    size = len(obj.value)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return tag + length + obj.value


_single_tags = st.integers(0x01, 0xFE).filter(lambda t: t & 0x1F != 0x1F)
_double_tags = st.builds(
    lambda first, second: (first << 8) | second,
    st.integers(0, 6).map(lambda c: (c << 5) | 0x1F),  # FF is padding, never a tag
    st.integers(0x01, 0x7F),
)
_tlv_objects = st.builds(
    lambda tag, value: Tlv(
        tag=tag, value=value, constructed=bool((tag >> (8 * ((tag.bit_length() - 1) // 8))) & 0x20)
    ),
    st.one_of(_single_tags, _double_tags),
    st.binary(max_size=300),
)


@QUICK
@given(st.lists(_tlv_objects, max_size=8))
def test_parse_ber_tlv_round_trips_encoded_objects(objects: list[Tlv]) -> None:
    data = b"".join(_encode(o) for o in objects)
    assert parse_ber_tlv(data) == objects


@QUICK
@given(st.binary(max_size=300))
def test_parse_resident_record_gives_record_or_typed_error(data: bytes) -> None:
    try:
        record = parse_resident_record(data)
    except CardNotRecognised:
        return
    assert record.account.isdigit()
    assert isinstance(record.to_identity(), CardIdentity)


@QUICK
@given(
    st.from_regex(r"[0-9]{4,32}", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[ -~]{1,64}", fullmatch=True)),
    st.one_of(st.none(), st.from_regex(r"[ -~]{1,64}", fullmatch=True)),
)
def test_parse_resident_record_round_trips_valid_records(
    account: str, serial: str | None, deployment: str | None
) -> None:
    record = parse_resident_record(resident_record(account, serial, deployment))
    assert (record.account, record.card_serial, record.deployment_id) == (
        account,
        serial,
        deployment,
    )


@QUICK
@given(st.binary(max_size=40))
def test_parse_atr_gives_info_or_not_recognised(atr: bytes) -> None:
    try:
        info = parse_atr(atr)
    except CardNotRecognised:
        return
    assert 2 <= len(info.raw) <= ATR_BYTES_MAX
    assert len(info.historical) == atr[1] & 0x0F


@QUICK
@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=255),
    st.one_of(st.none(), st.integers(1, SHORT_LE_MAX)),
)
def test_command_apdu_length_matches_its_case(
    ins: int, p1: int, data: bytes, le: int | None
) -> None:
    command = CommandApdu(cla=0x00, ins=ins, p1=p1, p2=0, data=data, le=le)
    wire = command.to_bytes()
    expected = 4 + (1 + len(data) if data else 0) + (1 if le is not None else 0)
    assert len(wire) == expected
    assert wire[:4] == bytes([0x00, ins, p1, 0])


_responses = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [b"\x90\x00", b"\x6a\x82", b"\x61\x05", b"\x6c\x03", b"\x62\x82", b"\x6b\x00"]
        ),
        st.builds(
            lambda d, s: d + s, st.binary(max_size=20), st.sampled_from([b"\x90\x00", b"\x61\x10"])
        ),
    ),
    max_size=COMMANDS_MAX + 8,
)


def _drive(atr: bytes, responses: list[bytes]) -> None:
    session = ResidentCardSession(atr, record_bytes_max=256, read_chunk_bytes=16)
    try:
        session.start()
        for raw in responses:
            step = session.receive(raw)
            if isinstance(step, CardIdentity):
                return
    except CardError:
        return


@QUICK
@given(st.sampled_from([ATR_MIFARE_1K, ATR_CONTACT_T0, ATR_CONTACT_T1]), _responses)
def test_session_on_arbitrary_answers_ends_in_identity_or_typed_error(
    atr: bytes, responses: list[bytes]
) -> None:
    _drive(atr, responses)


_mutations = st.lists(
    st.one_of(
        st.none(),
        st.tuples(st.just("truncate"), st.integers(0, 300)),
        st.tuples(st.just("flip"), st.integers(0, 300), st.integers(1, 255)),
        st.tuples(st.just("replace"), st.binary(max_size=24)),
    ),
    max_size=24,
)


def _mutate(answer: bytes, mutation: tuple[object, ...] | None) -> bytes:
    if mutation is None:
        return answer
    if mutation[0] == "truncate":
        return answer[: int(mutation[1]) % (len(answer) + 1)]  # type: ignore[call-overload]
    if mutation[0] == "flip" and answer:
        index = int(mutation[1]) % len(answer)  # type: ignore[call-overload]
        flipped = bytearray(answer)
        flipped[index] ^= int(mutation[2])  # type: ignore[call-overload]
        return bytes(flipped)
    if mutation[0] == "replace":
        return bytes(mutation[1])  # type: ignore[call-overload]
    return answer


@QUICK
@given(
    st.sampled_from([ATR_CONTACT_T0, ATR_CONTACT_T1, ATR_MIFARE_1K]),
    st.booleans(),
    st.booleans(),
    _mutations,
)
def test_session_against_mutated_profile_card_ends_in_identity_or_typed_error(
    atr: bytes, t0_style: bool, strict_le: bool, mutations: list[tuple[object, ...] | None]
) -> None:
    card = ProfileCard(
        resident_record(extra=tlv(0xC1, bytes(40))),
        atr=atr,
        get_response_chunk=7 if t0_style else None,
        strict_le=strict_le,
    )
    session = ResidentCardSession(atr, record_bytes_max=256, read_chunk_bytes=16)
    try:
        step: CommandApdu | CardIdentity = session.start()
        for index in range(COMMANDS_MAX + 1):
            assert isinstance(step, CommandApdu), index
            answer = card.respond(step.to_bytes())
            assert isinstance(answer, bytes)
            mutation = mutations[index] if index < len(mutations) else None
            step = session.receive(_mutate(answer, mutation))
            if isinstance(step, CardIdentity):
                if not any(mutations):
                    assert step.account == "1234567890"
                return
    except CardError:
        assert any(mutations), "an unmutated card must be read"
        return
    raise AssertionError("session did not end within COMMANDS_MAX commands")


@pytest.mark.slow
@SLOW
@given(st.binary(max_size=600))
def test_slow_parse_ber_tlv_and_record_fuzz(data: bytes) -> None:
    with contextlib.suppress(CardNotRecognised):
        parse_resident_record(data)
