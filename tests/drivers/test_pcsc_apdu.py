"""ISO 7816-4 command/response APDUs (drivers.pcsc.apdu), with hex fixtures."""

from __future__ import annotations

import pytest

from drivers.pcsc.apdu import (
    CommandApdu,
    StatusKind,
    classify_status,
    describe_status,
    get_response,
    get_uid,
    parse_response,
    read_binary,
    select_aid,
    select_ef,
)
from drivers.pcsc.errors import CardNotRecognised, CardProtocolError


@pytest.mark.parametrize(
    ("command", "case", "wire"),
    [
        (CommandApdu(cla=0x00, ins=0x44, p1=0, p2=0), 1, "00440000"),
        (CommandApdu(cla=0x00, ins=0xB0, p1=0, p2=0x10, le=0x20), 2, "00B0001020"),
        (CommandApdu(cla=0x00, ins=0xB0, p1=0, p2=0, le=256), 2, "00B0000000"),
        (CommandApdu(cla=0x00, ins=0xA4, p1=2, p2=0x0C, data=b"\x01\x01"), 3, "00A4020C020101"),
        (
            CommandApdu(cla=0x00, ins=0xA4, p1=4, p2=0, data=b"\xa0" * 5, le=256),
            4,
            "00A4040005A0A0A0A0A000",
        ),
    ],
)
def test_command_encodes_short_cases_1_to_4(command: CommandApdu, case: int, wire: str) -> None:
    assert command.case == case
    assert command.to_bytes() == bytes.fromhex(wire)


def test_command_with_255_data_bytes_encodes_lc_ff() -> None:
    command = CommandApdu(cla=0x80, ins=0xD6, p1=0, p2=0, data=bytes(255))
    assert command.to_bytes()[4] == 0xFF
    assert len(command.to_bytes()) == 4 + 1 + 255


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cla": 0x100, "ins": 0, "p1": 0, "p2": 0},
        {"cla": 0, "ins": -1, "p1": 0, "p2": 0},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "data": bytes(256)},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "le": 0},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "le": 257},
    ],
)
def test_command_outside_short_form_raises_value_error(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"."):
        CommandApdu(**kwargs)  # type: ignore[arg-type]


def test_profile_commands_match_the_resident_card_profile() -> None:
    assert get_uid().to_bytes() == bytes.fromhex("FFCA000000")
    aid = bytes.fromhex("F04C4F42425950415901")
    assert select_aid(aid).to_bytes() == bytes.fromhex("00A404000A" + aid.hex() + "00")
    assert select_ef(b"\x01\x01").to_bytes() == bytes.fromhex("00A4020C020101")
    assert read_binary(0x0180, 0x80).to_bytes() == bytes.fromhex("00B0018080")
    assert get_response(0x10).to_bytes() == bytes.fromhex("00C0000010")


def test_read_binary_offset_beyond_15_bits_raises_value_error() -> None:
    with pytest.raises(ValueError, match="offset"):
        read_binary(0x8000, 1)


def test_with_le_keeps_the_command_and_changes_le() -> None:
    command = read_binary(0x10, 0x80).with_le(0x25)
    assert command.to_bytes() == bytes.fromhex("00B0001025")


def test_parse_response_splits_data_and_status_word() -> None:
    response = parse_response(bytes.fromhex("04A1B2C39000"))
    assert response.data == bytes.fromhex("04A1B2C3")
    assert response.sw == 0x9000
    assert response.kind is StatusKind.OK


def test_parse_response_status_only() -> None:
    response = parse_response(bytes.fromhex("6A82"))
    assert response.data == b""
    assert response.sw == 0x6A82
    assert response.kind is StatusKind.ERROR


@pytest.mark.parametrize("raw", ["", "90"])
def test_parse_response_shorter_than_status_word_raises_protocol_error(raw: str) -> None:
    with pytest.raises(CardProtocolError, match="no status word"):
        parse_response(bytes.fromhex(raw))


def test_parse_response_longer_than_short_response_raises_protocol_error() -> None:
    with pytest.raises(CardProtocolError, match="exceeds"):
        parse_response(bytes(257) + b"\x90\x00")


@pytest.mark.parametrize("trailer", ["0000", "1234", "6000", "9001", "FFFF"])
def test_parse_response_invalid_trailer_raises_protocol_error(trailer: str) -> None:
    with pytest.raises(CardProtocolError, match="not a status word") as info:
        parse_response(bytes.fromhex("AA" + trailer))
    assert info.value.sw == int(trailer, 16)


def test_protocol_error_is_a_card_not_recognised_for_the_kiosk() -> None:
    assert issubclass(CardProtocolError, CardNotRecognised)


@pytest.mark.parametrize(
    ("sw", "kind"),
    [
        (0x9000, StatusKind.OK),
        (0x6110, StatusKind.MORE_DATA),
        (0x6100, StatusKind.MORE_DATA),
        (0x6C25, StatusKind.WRONG_LE),
        (0x6282, StatusKind.WARNING),
        (0x6300, StatusKind.WARNING),
        (0x6A82, StatusKind.ERROR),
        (0x6A86, StatusKind.ERROR),
        (0x6D00, StatusKind.ERROR),
        (0x6E00, StatusKind.ERROR),
        (0x6700, StatusKind.ERROR),
        (0x6982, StatusKind.ERROR),
        (0x6985, StatusKind.ERROR),
        (0x6F00, StatusKind.ERROR),
        (0x6000, StatusKind.INVALID),
        (0x9100, StatusKind.INVALID),
    ],
)
def test_classify_status_follows_iso_7816_4_table(sw: int, kind: StatusKind) -> None:
    assert classify_status(sw) is kind


def test_describe_status_names_known_and_parametrised_words() -> None:
    assert describe_status(0x6A82) == "6A82 file or application not found"
    assert describe_status(0x6110) == "6110 16 more bytes available"
    assert describe_status(0x6100) == "6100 256 more bytes available"
    assert describe_status(0x6C25) == "6C25 wrong Le, exact length is 37"
    assert describe_status(0x6A99).startswith("6A99 ")
