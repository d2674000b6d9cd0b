"""BER-TLV (ISO 7816-4 §5.2.2) and the resident record, with hex fixtures."""

from __future__ import annotations

import pytest

from drivers.pcsc.errors import CardNotRecognised, CardProtocolError, TlvError
from drivers.pcsc.identity import parse_resident_record
from drivers.pcsc.tlv import TLV_OBJECTS_MAX, Tlv, parse_ber_tlv


def test_parse_single_byte_tags_in_order() -> None:
    objects = parse_ber_tlv(bytes.fromhex("8003313233 8100 820141"))
    assert objects == [
        Tlv(tag=0x80, value=b"123", constructed=False),
        Tlv(tag=0x81, value=b"", constructed=False),
        Tlv(tag=0x82, value=b"A", constructed=False),
    ]


def test_parse_multi_byte_tags() -> None:
    # 5F20 (two bytes) and 9F8101 (three bytes: 9F, 81 with b8 set, 01).
    objects = parse_ber_tlv(bytes.fromhex("5F200141 9F810102AABB"))
    assert [o.tag for o in objects] == [0x5F20, 0x9F8101]
    assert objects[1].value == b"\xaa\xbb"


def test_parse_constructed_flag_and_nested_value() -> None:
    (outer,) = parse_ber_tlv(bytes.fromhex("7005 8003313233"))
    assert outer.constructed
    assert parse_ber_tlv(outer.value) == [Tlv(tag=0x80, value=b"123", constructed=False)]


@pytest.mark.parametrize(
    ("length_field", "size"),
    [("7F", 0x7F), ("8180", 0x80), ("81FF", 0xFF), ("820100", 0x100), ("83000101", 0x101)],
)
def test_parse_long_form_lengths(length_field: str, size: int) -> None:
    (obj,) = parse_ber_tlv(bytes.fromhex("80" + length_field) + bytes(size))
    assert len(obj.value) == size


def test_parse_skips_00_and_ff_padding_between_and_after_objects() -> None:
    data = bytes.fromhex("00 FF 800131 0000 810132 FFFFFFFF")
    assert [o.tag for o in parse_ber_tlv(data)] == [0x80, 0x81]


def test_parse_empty_and_all_padding_gives_no_objects() -> None:
    assert parse_ber_tlv(b"") == []
    assert parse_ber_tlv(b"\xff" * 64) == []


@pytest.mark.parametrize(
    ("hex_data", "message"),
    [
        ("80", "length field missing"),
        ("8005313233", "runs past the end"),
        ("5F", "tag field runs past"),
        ("9F81", "tag field runs past"),
        ("9F80", "leading zero"),
        ("9F81818101", "longer than 4"),
        ("8080", "indefinite"),
        ("8085000000000001", "not allowed"),
        ("8182", "length field runs past"),
        ("808400FFFFFF", "runs past the end"),
    ],
)
def test_parse_malformed_raises_tlv_error(hex_data: str, message: str) -> None:
    with pytest.raises(TlvError, match=message):
        parse_ber_tlv(bytes.fromhex(hex_data))


def test_parse_object_count_at_bound_passes_and_over_raises() -> None:
    at_bound = b"\x80\x00" * TLV_OBJECTS_MAX
    assert len(parse_ber_tlv(at_bound)) == TLV_OBJECTS_MAX
    with pytest.raises(TlvError, match="more than"):
        parse_ber_tlv(at_bound + b"\x80\x00")


def test_tlv_error_is_a_protocol_error() -> None:
    assert issubclass(TlvError, CardProtocolError)


def _record(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


ACCOUNT = "800A" + b"1234567890".hex()
SERIAL = "8107" + b"SN-0001".hex()
DEPLOYMENT = "8208" + b"kazan-01".hex()


def test_resident_record_with_all_fields() -> None:
    record = parse_resident_record(_record(ACCOUNT, SERIAL, DEPLOYMENT))
    assert record.account == "1234567890"
    assert record.card_serial == "SN-0001"
    assert record.deployment_id == "kazan-01"
    identity = record.to_identity()
    assert identity.kind == "resident_record"
    assert identity.account == "1234567890"


def test_resident_record_skips_unknown_tags_in_any_order() -> None:
    record = parse_resident_record(_record("C0020102", DEPLOYMENT, "5F2001FF", ACCOUNT, "A100"))
    assert record.account == "1234567890"
    assert record.deployment_id == "kazan-01"
    assert record.card_serial is None


def test_resident_record_without_account_raises_not_recognised() -> None:
    with pytest.raises(CardNotRecognised, match="no account"):
        parse_resident_record(_record(SERIAL, DEPLOYMENT))


@pytest.mark.parametrize(
    "account_hex",
    [
        "8005" + b"12a45".hex(),
        "8003" + b"123".hex(),
        "8021" + b"1".hex() * 33,
        "8004" + "31323334"[:6] + "B1",
        "8000",
    ],
)
def test_resident_record_bad_account_raises_not_recognised(account_hex: str) -> None:
    with pytest.raises(CardNotRecognised, match="account"):
        parse_resident_record(bytes.fromhex(account_hex))


def test_resident_record_duplicate_account_raises_protocol_error() -> None:
    with pytest.raises(CardProtocolError, match="twice"):
        parse_resident_record(_record(ACCOUNT, "8004" + b"9999".hex()))


@pytest.mark.parametrize("serial_hex", ["8102C3A9", "8101" + "07", "8100", "8141" + "41" * 65])
def test_resident_record_bad_serial_raises_not_recognised(serial_hex: str) -> None:
    with pytest.raises(CardNotRecognised, match="card serial"):
        parse_resident_record(_record(ACCOUNT, serial_hex))


def test_resident_record_truncated_raises_tlv_error() -> None:
    with pytest.raises(TlvError):
        parse_resident_record(_record(ACCOUNT, "8207" + b"kaz".hex()))
