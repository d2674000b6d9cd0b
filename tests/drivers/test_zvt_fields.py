"""BCD, LL/LLL variables, card-number masking, TLV container and BMP decoding (chapter 9)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.zvt.errors import ZvtApduError, ZvtError, ZvtUsageError
from drivers.zvt.fields import (
    FULL_PAN_RUN,
    TLV_DEPTH_MAX,
    TLV_ITEMS_MAX,
    TlvItem,
    decode_ber_length,
    decode_bmps,
    decode_pan,
    decode_tlv,
    decode_var_length,
    encode_bcd,
    encode_ber_length,
    encode_bmp,
    encode_pan,
    encode_tlv,
    encode_var_length,
    find_tlv,
    mask_pan,
    scrub_text,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_encode_bcd_amount_six_bytes() -> None:
    assert encode_bcd(11000, 6) == h("00 00 00 01 10 00")


def test_encode_bcd_too_large_raises_usage_error() -> None:
    with pytest.raises(ZvtUsageError):
        encode_bcd(1_000_000, 3)


def test_decode_bcd_with_hex_nibble_raises_apdu_error() -> None:
    fields = decode_bmps(h("04 00 00 00 00 1A 00"))
    with pytest.raises(ZvtApduError):
        fields.bcd(0x04)


def test_llvar_length_prefix_roundtrip() -> None:
    assert encode_var_length(17, 2) == h("F1 F7")
    assert decode_var_length(h("F1 F7"), 0, 2, what="x") == (17, 2)
    assert encode_var_length(14, 3) == h("F0 F1 F4")


@pytest.mark.parametrize("prefix", ["E1 F7", "F1 FA", "F1"])
def test_bad_llvar_prefix_raises_apdu_error(prefix: str) -> None:
    with pytest.raises(ZvtApduError):
        decode_var_length(h(prefix), 0, 2, what="x")


def test_mask_pan_keeps_bin_and_last_four() -> None:
    assert mask_pan("4111111111111111") == "411111******1111"


def test_mask_pan_short_number_keeps_only_last_four() -> None:
    assert mask_pan("123456789012") == "********9012"


def test_decode_pan_masks_a_full_number() -> None:
    assert decode_pan(h("41 11 11 11 11 11 11 11")) == "411111******1111"


def test_decode_pan_keeps_terminal_masking_and_strips_padding() -> None:
    # 19 digits, the terminal masked the middle with E, F pads the odd length.
    # Masking then keeps BIN + last 4 of the 19 digits.
    assert decode_pan(h("22 02 20 EE EE EE EE 00 14 5F")) == "220220*********0145"


def test_decode_pan_of_portalum_capture() -> None:
    assert decode_pan(h("EE EE EE EE EE EE 47 71")) == "************4771"


def test_encode_pan_masked_digits_become_e() -> None:
    assert encode_pan("220220******0014") == h("22 02 20 EE EE EE 00 14")
    assert encode_pan("12345") == h("12 34 5F")


def test_scrub_text_masks_card_numbers_in_free_text() -> None:
    assert scrub_text("CARD 4111 1111 1111 1111 OK") == "CARD 4111 11** **** 1111 OK"
    assert scrub_text("RRN 123456789012") == "RRN 123456789012"
    long_run = scrub_text("X" + "9" * 25)
    assert not FULL_PAN_RUN.search(long_run)
    assert long_run.endswith("9999")


def test_ber_length_forms() -> None:
    assert encode_ber_length(0x7F) == h("7F")
    assert encode_ber_length(0x80) == h("81 80")
    assert encode_ber_length(0x1234) == h("82 12 34")
    assert decode_ber_length(h("82 01 00"), 0) == (256, 3)
    with pytest.raises(ZvtApduError):
        decode_ber_length(h("83 00 00 01"), 0)


def test_tlv_multibyte_tag_and_nesting_roundtrip() -> None:
    items = (
        TlvItem(tag=0x25, children=(TlvItem(tag=0x07, value=b"line one"),)),
        TlvItem(tag=0x1F07, value=b"\x02"),
    )
    raw = encode_tlv(items)
    assert raw == h("25 0A 07 08") + b"line one" + h("1F 07 01 02")
    assert decode_tlv(raw) == items
    found = find_tlv(decode_tlv(raw), 0x07)
    assert found is not None
    assert found.value == b"line one"


def test_tlv_long_value_uses_81_length() -> None:
    items = (TlvItem(tag=0x07, value=b"a" * 200),)
    raw = encode_tlv(items)
    assert raw[:3] == h("07 81 C8")
    assert decode_tlv(raw) == items


def test_tlv_value_past_container_raises_apdu_error() -> None:
    with pytest.raises(ZvtApduError):
        decode_tlv(h("07 05 41 42"))


def test_tlv_nesting_beyond_depth_max_is_kept_opaque_not_recursed() -> None:
    raw = b""
    inner = h("07 01 41")
    for _ in range(TLV_DEPTH_MAX + 3):
        raw = bytes((0x25,)) + encode_ber_length(len(inner)) + inner
        inner = raw
    items = decode_tlv(raw)
    depth = 0
    item = items[0]
    while item.children:
        depth += 1
        item = item.children[0]
    assert depth <= TLV_DEPTH_MAX + 1


def test_tlv_more_items_than_items_max_raises_apdu_error() -> None:
    with pytest.raises(ZvtApduError):
        decode_tlv(h("09 00") * (TLV_ITEMS_MAX + 1))


def test_tlv_value_hiding_a_card_number_is_dropped() -> None:
    items = decode_tlv(h("5A 08 41 11 11 11 11 11 11 11") + h("07 13") + b"4111111111111111 ok")
    assert items[0].value == b""
    assert items[1].value == b"411111******1111 ok"


def test_decode_bmps_status_fields() -> None:
    f = decode_bmps(h("27 00 04 00 00 00 00 20 40 0B 00 04 70 87 04 70 29 28 00 48 69"))
    assert f.byte(0x27) == 0
    assert f.bcd(0x04) == 2040
    assert f.bcd(0x0B) == 470
    assert f.bcd(0x87) == 470
    assert f.digits(0x29) == "28004869"
    assert f.unknown_bmp is None


def test_decode_bmps_stops_at_unknown_bmp_like_the_dissector() -> None:
    f = decode_bmps(h("27 00 C5 01 02 03 04 00 00 00 00 01 00"))
    assert f.byte(0x27) == 0
    assert f.unknown_bmp == 0xC5
    assert not f.has(0x04)


def test_decode_bmps_truncated_fixed_field_raises() -> None:
    with pytest.raises(ZvtApduError):
        decode_bmps(h("04 00 00 01"))


def test_decode_bmps_repeated_bmp_raises() -> None:
    with pytest.raises(ZvtApduError):
        decode_bmps(h("27 00 27 05"))


def test_decode_bmps_drops_track_data_and_cvv() -> None:
    raw = encode_bmp(0x23, b"4111111111111111=2512") + encode_bmp(0x3A, h("12 34"))
    f = decode_bmps(raw + h("27 00"))
    assert f.redacted == frozenset({0x23, 0x3A})
    assert f.has(0x23)
    assert f.has(0x3A)
    assert 0x23 not in f.values
    assert 0x3A not in f.values
    assert f.byte(0x27) == 0


def test_decode_bmps_card_number_is_masked() -> None:
    f = decode_bmps(encode_bmp(0x22, h("41 11 11 11 11 11 11 11")))
    assert f.masked_pan == "411111******1111"


def test_encode_bmp_rejects_wrong_fixed_size() -> None:
    with pytest.raises(ZvtUsageError):
        encode_bmp(0x04, b"\x00")


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=120))
def test_decode_bmps_fuzz_raises_only_typed_errors_and_keeps_no_pan(data: bytes) -> None:
    try:
        f = decode_bmps(data)
    except ZvtError:
        return
    if f.masked_pan is not None:
        assert not FULL_PAN_RUN.search(f.masked_pan)
    for bmp in (0x23, 0x24, 0x2D, 0x3A, 0x0E):
        assert bmp not in f.values


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=120))
def test_decode_tlv_fuzz_raises_only_typed_errors(data: bytes) -> None:
    try:
        items = decode_tlv(data)
    except ZvtError:
        return
    assert encode_tlv(items) is not None
