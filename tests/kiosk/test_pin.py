"""The service-mode PIN hash and the wrong-PIN lockout."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.pin import PinGate, PinHashError, hash_pin, verify_pin


def test_hash_and_verify() -> None:
    stored = hash_pin("2468", iterations=1_000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert verify_pin("2468", stored)
    assert not verify_pin("2469", stored)
    assert not verify_pin("24a8", stored)
    assert "2468" not in stored


@pytest.mark.parametrize("pin", ["", "123", "1234567890123", "12 4", "١٢٣٤"])
def test_bad_pins_cannot_be_hashed(pin: str) -> None:
    with pytest.raises(ValueError, match=r"a PIN is 4\.\.12 digits"):
        hash_pin(pin)


@pytest.mark.parametrize(
    "stored",
    ["", "pbkdf2$aa55aa55", "pbkdf2_sha256$x$00$00", "pbkdf2_sha256$10$00$" + "00" * 32],
)
def test_malformed_hash_is_a_typed_error(stored: str) -> None:
    with pytest.raises(PinHashError):
        verify_pin("1234", stored)


def test_lockout_after_attempts_and_expiry() -> None:
    now = [0.0]
    gate = PinGate(attempts_max=3, lockout_s=60, clock=lambda: now[0])
    assert gate.record(False).attempts_left == 2
    assert gate.record(False).attempts_left == 1
    locked = gate.record(False)
    assert locked.locked_s == 60
    assert gate.locked_s() == 60
    now[0] = 59.5
    assert gate.locked_s() == 1
    now[0] = 60.0
    assert gate.locked_s() == 0
    assert gate.record(True).ok
    assert gate.record(False).attempts_left == 2  # a right PIN resets the count


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=120), st.text(max_size=14))
def test_any_stored_text_gives_a_typed_error_or_an_answer(stored: str, pin: str) -> None:
    try:
        answer = verify_pin(pin, stored)
    except PinHashError:
        return
    assert isinstance(answer, bool)
