"""Accounts, txn ids and payment ids."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central_sync.journal import PAYMENT_ID_PATTERN
from gateway.errors import AccountFormatError, BadRequestError
from gateway.identifiers import (
    IDEMPOTENCY_KEY_PATTERN,
    AccountPolicy,
    check_account,
    check_idempotency_key,
    looks_like_pan,
    normalize_txn_id,
    payment_id_for,
)


def test_payment_id_is_readable_for_digit_txn_ids_and_hashed_otherwise() -> None:
    assert payment_id_for("bank", "123") == "gw-bank-123"
    hashed = payment_id_for("bank", "4c7e9a1e-5b0f")
    assert re.fullmatch(r"gw-bank-k[0-9a-f]{32}", hashed)
    assert payment_id_for("bank", "0123") != payment_id_for("bank", "123")
    assert payment_id_for("a", "1") == "gw-a-001"  # the journal's 8-character minimum
    assert payment_id_for("a", "001") != payment_id_for("a", "1")


@given(
    st.from_regex(r"[a-z][a-z0-9_]{0,23}", fullmatch=True),
    st.from_regex(IDEMPOTENCY_KEY_PATTERN, fullmatch=True),
)
def test_payment_id_is_deterministic_and_a_valid_journal_payment_id(agent: str, txn: str) -> None:
    pid = payment_id_for(agent, txn)
    assert pid == payment_id_for(agent, txn)
    assert PAYMENT_ID_PATTERN.fullmatch(pid)


@given(
    st.from_regex(r"[a-z][a-z0-9_]{0,23}", fullmatch=True),
    st.from_regex(IDEMPOTENCY_KEY_PATTERN, fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9_]{0,23}", fullmatch=True),
    st.from_regex(IDEMPOTENCY_KEY_PATTERN, fullmatch=True),
)
def test_different_pairs_give_different_payment_ids(a1: str, t1: str, a2: str, t2: str) -> None:
    if (a1, t1) != (a2, t2):
        assert payment_id_for(a1, t1) != payment_id_for(a2, t2)


def test_txn_id_normalisation() -> None:
    assert normalize_txn_id("000123") == "123"
    assert normalize_txn_id("9" * 20) == "9" * 20
    for bad in ("", "0", "00", "1" * 21, "12a", "-1", "١٢"):
        with pytest.raises(BadRequestError):
            normalize_txn_id(bad)


def test_idempotency_key_format() -> None:
    assert check_idempotency_key("4c7e9a1e-5b0f-4f3e-9d52-1a2b3c4d5e6f")
    for bad in ("", "-x", "=SUM(A1)", "a b", "k" * 129):
        with pytest.raises(BadRequestError):
            check_idempotency_key(bad)


@pytest.mark.parametrize(
    ("policy", "good", "bad"),
    [
        (AccountPolicy(check="luhn"), "1000000008", "1000000009"),
        (AccountPolicy(check="mod11"), "1234567892", "1234567893"),
        (AccountPolicy(check="none", length_min=3, length_max=5), "123", "123456"),
    ],
)
def test_account_policy_schemes(policy: AccountPolicy, good: str, bad: str) -> None:
    assert check_account(good, policy) == good
    with pytest.raises(AccountFormatError):
        check_account(bad, policy)


def test_card_numbers_are_refused_whatever_the_policy_and_never_echoed() -> None:
    policy = AccountPolicy(check="none", length_min=6, length_max=32)
    assert looks_like_pan("4111111111111111")
    with pytest.raises(AccountFormatError) as info:
        check_account("4111111111111111", policy)
    assert "4111" not in str(info.value)
    assert check_account("4111111111111112", policy) == "4111111111111112"
