"""Track 2: the resident card layout, and bank cards refused without keeping a digit."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanner.errors import BankCardSwiped, Track2Error
from drivers.scanner.track2 import (
    ResidentTrack2,
    Track2Profile,
    encode_resident_track2,
    looks_like_track,
    luhn_valid,
    pan_like,
    parse_track2,
    track2_lrc,
    wipe,
)

# Public test card numbers of the networks (never real cards).
TEST_PANS = [
    "4111111111111111",  # Visa
    "4000000000000002",  # Visa
    "5555555555554444",  # Mastercard
    "2221000000000009",  # Mastercard 2-series
    "2200000000000004",  # Mir
    "378282246310005",  # Amex (15)
    "36000000000008",  # Diners (14)
    "6011000000000004",  # Discover
    "6200000000000000000",  # UnionPay (19)
    "4222222222222",  # Visa (13)
]


def _parse(data: bytes, **profile: object) -> ResidentTrack2:
    return parse_track2(bytearray(data), Track2Profile(**profile))  # type: ignore[arg-type]


# --- Resident cards --------------------------------------------------------------


def test_parse_resident_card_with_serial() -> None:
    card = _parse(b";123456782=00017?")
    assert (card.account, card.deployment_id, card.card_serial) == ("123456782", "0001", "7")


def test_parse_resident_card_without_serial_with_valid_lrc() -> None:
    track = b";123456=4242?"
    card = _parse(track + bytes([track2_lrc(track)]))
    assert (card.account, card.deployment_id, card.card_serial) == ("123456", "4242", None)


def test_parse_resident_card_without_sentinels() -> None:
    assert _parse(b"123456=00011234").card_serial == "1234"


def test_parse_resident_after_non_financial_track1_and_with_track3() -> None:
    assert _parse(b"%ALOBBYPAY?;123456=0001?;999?").account == "123456"


def test_parse_resident_card_surrounded_by_whitespace() -> None:
    assert _parse(b"  ;123456=0001?\r\n").account == "123456"


def test_parse_wrong_lrc_raises_bad_lrc() -> None:
    track = b";123456=4242?"
    wrong = bytes([(track2_lrc(track) - 0x30 + 1) % 16 + 0x30])
    if wrong in (b";", b"?"):
        wrong = b"0"
    with pytest.raises(Track2Error) as info:
        _parse(track + wrong)
    assert info.value.reason == "bad_lrc"


def test_parse_missing_lrc_refused_when_required() -> None:
    with pytest.raises(Track2Error) as info:
        _parse(b";123456=4242?", require_lrc=True)
    assert info.value.reason == "bad_lrc"


def test_parse_card_of_other_deployment_refused() -> None:
    with pytest.raises(Track2Error) as info:
        _parse(b";123456=00021?", deployment_id="0001")
    assert info.value.reason == "other_deployment"
    assert _parse(b";123456=00011?", deployment_id="0001").deployment_id == "0001"


@pytest.mark.parametrize(
    ("track", "reason"),
    [
        (b";E?", "read_error"),
        (b"%E?;E?+E?", "read_error"),
        (b";123456=0001", "malformed_track"),  # no end sentinel
        (b"x;123456=0001?", "malformed_track"),
        (b"%ABC?", "malformed_track"),  # no track 2
        (b";123456?", "not_resident_card"),  # no separator
        (b";12A456=0001?", "not_resident_card"),
        (b";123=0001?", "not_resident_card"),  # account shorter than 4
        (b";1234567890123=0001?", "not_resident_card"),  # 13 digits, not a card
        (b";123456=001?", "not_resident_card"),  # deployment too short
        (b";123456=000112345?", "not_resident_card"),  # serial too long
        (b";123456=0001=1?", "not_resident_card"),
        (b";" + b"1" * 12 + b"=" + b"0" * 8 + b"?" + b"0" * 30, "malformed_track"),
    ],
)
def test_parse_bad_track_raises_track2_error(track: bytes, reason: str) -> None:
    with pytest.raises(Track2Error) as info:
        _parse(track)
    assert info.value.reason == reason
    assert not isinstance(info.value, BankCardSwiped)


def test_parse_account_length_bounds_from_profile() -> None:
    profile = {"account_digits_min": 6, "account_digits_max": 8}
    assert _parse(b";123456=0001?", **profile).account == "123456"
    assert _parse(b";12345678=0001?", **profile).account == "12345678"
    for account in (b"12345", b"123456789"):
        with pytest.raises(Track2Error):
            _parse(b";" + account + b"=0001?", **profile)


def test_profile_refuses_accounts_as_long_as_card_numbers() -> None:
    with pytest.raises(ValueError, match="<= 12"):
        Track2Profile(account_digits_max=13)
    with pytest.raises(ValueError, match="4 ASCII digits"):
        Track2Profile(deployment_id="12")


def test_resident_repr_masks_account() -> None:
    card = _parse(b";987654321=0001?")
    assert "987654321" not in repr(card)


# --- Bank cards --------------------------------------------------------------------


def _assert_bank_card_refused(data: bytes) -> None:
    buf = bytearray(data)
    with pytest.raises(BankCardSwiped) as info:
        parse_track2(buf, Track2Profile())
    error = info.value
    assert buf == bytearray()  # wiped and emptied
    assert error.reason == "bank_card"
    assert error.__cause__ is None
    assert error.__suppress_context__
    text = str(error) + repr(error) + repr(error.args) + error.message_en + error.message_ru
    assert not any(ch.isdigit() for ch in text)


@pytest.mark.parametrize("pan", TEST_PANS)
def test_bank_card_track2_refused(pan: str) -> None:
    _assert_bank_card_refused(f";{pan}=29121010000000000?".encode())


@pytest.mark.parametrize("pan", TEST_PANS[:3])
def test_bank_card_track1_and_track2_refused(pan: str) -> None:
    _assert_bank_card_refused(f"%B{pan}^IVANOV/IVAN^2912101000?;{pan}=2912101?".encode())


def test_bank_card_track1_alone_refused() -> None:
    _assert_bank_card_refused(b"%B4111111111111111^IVANOV/IVAN^2912101000?")


def test_bank_card_without_sentinels_refused() -> None:
    _assert_bank_card_refused(b"5555555555554444=2912101")


def test_bank_card_truncated_read_refused() -> None:
    _assert_bank_card_refused(b";4111111111111111=2912")


def test_bank_card_failing_luhn_but_with_expiry_and_service_code_refused() -> None:
    # A misread digit breaks Luhn; the expiry and service code still say "card".
    _assert_bank_card_refused(b";4111111111111112=2912201?")


def test_bank_card_with_lrc_and_track3_refused() -> None:
    track = b";4111111111111111=2912101?"
    _assert_bank_card_refused(track + bytes([track2_lrc(track)]) + b";0123?")


def test_bank_card_refused_even_when_buffer_is_pinned_by_a_view() -> None:
    buf = bytearray(b";4111111111111111=2912101?")
    view = memoryview(buf)
    with pytest.raises(BankCardSwiped):
        parse_track2(buf)
    assert bytes(view) == bytes(len(view))  # zeroed in place
    view.release()


def test_number_13_to_19_digits_without_card_traits_is_not_resident_and_wiped() -> None:
    buf = bytearray(b";4111111111111112=99999?")
    with pytest.raises(Track2Error) as info:
        parse_track2(buf)
    assert info.value.reason == "not_resident_card"
    assert buf == bytearray()


# --- Luhn, PAN likeness, helpers ------------------------------------------------------


def _luhn_reference(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.digits, min_size=2, max_size=30))
def test_luhn_matches_reference(number: str) -> None:
    assert luhn_valid(number) is _luhn_reference(number)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TEST_PANS), st.data())
def test_luhn_catches_every_single_digit_error(pan: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(pan) - 1))
    delta = data.draw(st.integers(min_value=1, max_value=9))
    changed = pan[:position] + str((int(pan[position]) + delta) % 10) + pan[position + 1 :]
    assert luhn_valid(pan)
    assert not luhn_valid(changed)


def test_pan_like() -> None:
    assert all(pan_like(p) for p in TEST_PANS)
    assert not pan_like("4111111111111112")  # Luhn fails
    assert not pan_like("9000000000000001")  # Luhn-valid, but no card network's IIN
    assert not pan_like("7000000000000005")
    assert not pan_like("411111111111")  # 12 digits
    assert not pan_like("٤١١١١١١١١١١١١١١١")
    assert pan_like(bytearray(b"4111111111111111"))


def test_looks_like_track() -> None:
    assert looks_like_track(b";1=2?")
    assert looks_like_track(b" %B1^x?")
    assert looks_like_track(bytearray(b"123=456"))
    assert not looks_like_track(b"123456")
    assert not looks_like_track(b"ST00012|")
    assert not looks_like_track(b"   ")


def test_wipe_zeroes_and_empties() -> None:
    buf = bytearray(b"secret")
    wipe(buf)
    assert buf == bytearray()


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=string.digits, min_size=4, max_size=12),
    st.text(alphabet=string.digits, min_size=4, max_size=4),
    st.one_of(st.none(), st.text(alphabet=string.digits, min_size=1, max_size=4)),
    st.booleans(),
)
def test_resident_encode_parse_round_trip(
    account: str, deployment: str, serial: str | None, with_lrc: bool
) -> None:
    card = ResidentTrack2(account=account, deployment_id=deployment, card_serial=serial)
    assert parse_track2(bytearray(encode_resident_track2(card, with_lrc=with_lrc))) == card


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_parse_random_bytes_raises_only_track2_errors_and_wipes(data: bytes) -> None:
    buf = bytearray(data)
    with contextlib.suppress(Track2Error):
        parse_track2(buf)
    assert buf == bytearray()


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=";%+?=^E0123456789AB :<>", max_size=60))
def test_parse_track_like_noise_raises_only_track2_errors(text: str) -> None:
    with contextlib.suppress(Track2Error):
        parse_track2(bytearray(text.encode("ascii")))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TEST_PANS), st.text(alphabet=string.digits, min_size=0, max_size=12))
def test_any_luhn_card_number_in_track2_is_refused_as_bank_card(pan: str, tail: str) -> None:
    with pytest.raises(BankCardSwiped):
        parse_track2(bytearray(f";{pan}={tail}?".encode()))
