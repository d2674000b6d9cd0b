"""Virtual numbers: format, length, check digit schemes, card numbers refused."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.identification.virtual_number import (
    CheckDigitScheme,
    VirtualNumberError,
    VirtualNumberPolicy,
    check_digit,
    check_digit_valid,
    normalize_virtual_number,
    with_check_digit,
)

LUHN = VirtualNumberPolicy(digits_min=6, digits_max=12, check_digit=CheckDigitScheme.LUHN)
MOD11 = VirtualNumberPolicy(digits_min=6, digits_max=12, check_digit=CheckDigitScheme.MOD11)
NONE = VirtualNumberPolicy(digits_min=4, digits_max=10, check_digit=CheckDigitScheme.NONE)


@pytest.mark.parametrize(
    "typed", ["123456782", " 1234 5678 2 ", "1234-5678-2", "123\u00a0456\u00a0782", "12345-67 82"]
)
def test_normalize_strips_spaces_and_dashes(typed: str) -> None:
    assert normalize_virtual_number(typed, LUHN) == "123456782"


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "empty"),
        (" - ", "empty"),
        ("12345a", "not_digits"),
        ("1234.5", "not_digits"),
        ("１２３４５６７", "not_digits"),  # fullwidth digits
        ("١٢٣٤٥٦٧", "not_digits"),  # Arabic-Indic digits: str.isdigit() says yes
        ("12345", "too_short"),
        ("1234567890123", "too_long"),
        ("1" * 65, "too_long"),
        ("123456783", "bad_check_digit"),
        ("123456728", "bad_check_digit"),  # transposition of the last two
        ("4111 1111 1111 1111", "card_number"),
        ("5555555555554444", "card_number"),
    ],
)
def test_normalize_refuses_with_reason(typed: str, reason: str) -> None:
    with pytest.raises(VirtualNumberError) as info:
        normalize_virtual_number(typed, LUHN)
    assert info.value.reason == reason
    assert info.value.message_ru
    assert info.value.message_en
    assert typed.strip() == "" or typed not in str(info.value)


def test_length_messages_name_the_configured_range() -> None:
    with pytest.raises(VirtualNumberError) as info:
        normalize_virtual_number("123", NONE)
    assert "4" in info.value.message_en
    assert "10" in info.value.message_en
    assert "4" in info.value.message_ru
    assert info.value.message("ru") == info.value.message_ru
    assert info.value.message("en") == info.value.message_en


def test_mod11_scheme_accepts_and_refuses() -> None:
    number = with_check_digit("1234567", CheckDigitScheme.MOD11)
    assert normalize_virtual_number(number, MOD11) == number
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    with pytest.raises(VirtualNumberError) as info:
        normalize_virtual_number(wrong, MOD11)
    assert info.value.reason == "bad_check_digit"


def test_mod11_body_with_check_value_ten_is_not_issuable() -> None:
    body = next(str(n) for n in range(100000, 200000) if _mod11_value(str(n)) == 10)
    with pytest.raises(ValueError, match="10"):
        check_digit(body, CheckDigitScheme.MOD11)


def _mod11_value(body: str) -> int:
    weights = (2, 3, 4, 5, 6, 7)
    total = sum(int(d) * weights[i % 6] for i, d in enumerate(reversed(body)))
    return (11 - total % 11) % 11


def test_none_scheme_takes_any_digits_in_range() -> None:
    assert normalize_virtual_number("0042", NONE) == "0042"
    assert with_check_digit("0042", CheckDigitScheme.NONE) == "0042"
    assert check_digit_valid("0042", CheckDigitScheme.NONE)
    with pytest.raises(ValueError, match="none"):
        check_digit("0042", CheckDigitScheme.NONE)


def test_card_numbers_pass_when_policy_allows_them() -> None:
    policy = VirtualNumberPolicy(
        digits_min=6, digits_max=19, check_digit=CheckDigitScheme.NONE, reject_card_numbers=False
    )
    assert normalize_virtual_number("4111111111111111", policy) == "4111111111111111"


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="digits_min"):
        VirtualNumberPolicy(digits_min=8, digits_max=6)
    with pytest.raises(ValueError, match="digits_min >= 2"):
        VirtualNumberPolicy(digits_min=1, digits_max=6)
    with pytest.raises(ValueError, match="card numbers"):
        VirtualNumberPolicy(digits_min=6, digits_max=16, check_digit=CheckDigitScheme.LUHN)
    assert VirtualNumberPolicy(check_digit="mod11").check_digit is CheckDigitScheme.MOD11  # type: ignore[arg-type]


def test_check_digit_helpers_refuse_non_digits() -> None:
    with pytest.raises(ValueError, match="digits"):
        check_digit("12a", CheckDigitScheme.LUHN)
    with pytest.raises(ValueError, match="digits"):
        with_check_digit("12a", CheckDigitScheme.NONE)
    assert not check_digit_valid("12a", CheckDigitScheme.LUHN)
    assert not check_digit_valid("7", CheckDigitScheme.MOD11)


bodies = st.text(alphabet=string.digits, min_size=5, max_size=10)


@settings(max_examples=300, deadline=None)
@given(bodies, st.sampled_from([CheckDigitScheme.LUHN, CheckDigitScheme.MOD11]))
def test_issued_numbers_validate(body: str, scheme: CheckDigitScheme) -> None:
    try:
        number = with_check_digit(body, scheme)
    except ValueError:
        assert scheme is CheckDigitScheme.MOD11  # a body not issued under mod 11
        return
    policy = LUHN if scheme is CheckDigitScheme.LUHN else MOD11
    assert normalize_virtual_number(number, policy) == number


@settings(max_examples=300, deadline=None)
@given(bodies, st.sampled_from([CheckDigitScheme.LUHN, CheckDigitScheme.MOD11]), st.data())
def test_every_single_digit_typo_is_caught(
    body: str, scheme: CheckDigitScheme, data: st.DataObject
) -> None:
    try:
        number = with_check_digit(body, scheme)
    except ValueError:
        return
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 1))
    delta = data.draw(st.integers(min_value=1, max_value=9))
    typo = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    assert not check_digit_valid(typo, scheme)


@settings(max_examples=300, deadline=None)
@given(bodies, st.data())
def test_mod11_catches_every_neighbour_transposition(body: str, data: st.DataObject) -> None:
    try:
        number = with_check_digit(body, CheckDigitScheme.MOD11)
    except ValueError:
        return
    i = data.draw(st.integers(min_value=0, max_value=len(number) - 2))
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    if swapped != number:
        assert not check_digit_valid(swapped, CheckDigitScheme.MOD11)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_normalize_random_text_raises_only_virtual_number_errors(text: str) -> None:
    reasons = {"empty", "not_digits", "too_short", "too_long", "bad_check_digit", "card_number"}
    number: str | None = None
    reason: str | None = None
    try:
        number = normalize_virtual_number(text, LUHN)
    except VirtualNumberError as exc:
        reason = exc.reason
    if number is None:
        assert reason in reasons
    else:
        assert number.isascii()
        assert number.isdigit()
        assert 6 <= len(number) <= 12
