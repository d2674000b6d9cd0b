"""Line classification: QR, magstripe, printed digits, noise; card data never logged."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanner.classify import (
    ClassifierConfig,
    DigitsScanned,
    QrScanned,
    ResidentCardSwiped,
    ScanRejected,
    classify_line,
)
from drivers.scanner.gost_qr import QrEncoding, QrPolicy, encode_payment_qr
from drivers.scanner.samples import sample_bill
from drivers.scanner.track2 import Track2Profile


@pytest.mark.parametrize("encoding", list(QrEncoding))
def test_classify_bill_qr(encoding: QrEncoding) -> None:
    line = bytearray(encode_payment_qr(sample_bill(encoding)))
    event = classify_line(line)
    assert isinstance(event, QrScanned)
    assert event.payment.account_reference == "123456782"
    assert line == bytearray()


def test_classify_bad_qr_is_rejected_with_reason_and_messages() -> None:
    raw = encode_payment_qr(sample_bill()).replace(b"Sum=345678", b"Sum=3456.78")
    event = classify_line(bytearray(raw))
    assert isinstance(event, ScanRejected)
    assert (event.kind, event.reason) == ("qr", "bad_value")
    assert event.message_ru
    assert event.message_en


def test_classify_qr_policy_is_applied() -> None:
    raw = encode_payment_qr(sample_bill())
    config = ClassifierConfig(qr_policy=QrPolicy(payload_bytes_max=len(raw) - 1))
    event = classify_line(bytearray(raw), config)
    assert isinstance(event, ScanRejected)
    assert event.reason == "payload_too_large"


def test_classify_resident_magstripe() -> None:
    event = classify_line(bytearray(b";123456782=00011?"))
    assert isinstance(event, ResidentCardSwiped)
    assert event.card.account == "123456782"


def test_classify_other_deployment_card() -> None:
    config = ClassifierConfig(track2=Track2Profile(deployment_id="0002"))
    event = classify_line(bytearray(b";123456782=00011?"), config)
    assert isinstance(event, ScanRejected)
    assert (event.kind, event.reason) == ("track", "other_deployment")


def test_classify_bank_card_swipe_is_rejected_and_wiped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    line = bytearray(b"%B4111111111111111^IVANOV/I^2912101?;4111111111111111=2912101?")
    event = classify_line(line)
    assert isinstance(event, ScanRejected)
    assert (event.kind, event.reason) == ("track", "bank_card")
    assert line == bytearray()
    assert "4111" not in caplog.text
    assert "IVANOV" not in caplog.text
    assert "reason=bank_card" in caplog.text


def test_classify_card_number_printed_as_barcode_is_rejected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    event = classify_line(bytearray(b"5555 5555 5555 4444"))
    assert isinstance(event, ScanRejected)
    assert (event.kind, event.reason) == ("barcode", "bank_card")
    assert "5555" not in caplog.text
    assert "4444" not in caplog.text
    assert "5555" not in repr(event)


def test_classify_printed_account_number() -> None:
    event = classify_line(bytearray(b" 1234-5678 2 "))
    assert isinstance(event, DigitsScanned)
    assert event.digits == "123456782"
    assert "123456782" not in repr(event)


@pytest.mark.parametrize("line", [b"x", b"\xff\xfe", b"  ", b"12", b"\xff[0m"])
def test_classify_short_line_is_noise(line: bytes) -> None:
    assert classify_line(bytearray(line)) is None


@pytest.mark.parametrize("line", [b"hello world", b"\xd0\xa2\xd0\xa1\xd0\x96", b"123abc", b"-----"])
def test_classify_unknown_line_is_unrecognised(line: bytes) -> None:
    event = classify_line(bytearray(line))
    assert isinstance(event, ScanRejected)
    assert (event.kind, event.reason) == ("unknown", "unrecognised")


def test_classify_over_long_digits_is_unrecognised() -> None:
    event = classify_line(bytearray(b"1" * 40), ClassifierConfig(digits_max=32))
    assert isinstance(event, ScanRejected)
    assert event.reason == "unrecognised"


def test_scan_events_check_invariants() -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        DigitsScanned(digits="12a")
    with pytest.raises(ValueError, match="kind"):
        ScanRejected(kind="bogus", reason="x", message_ru="a", message_en="b")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        QrScanned(payment="ST00012")  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_classify_random_line_never_raises_and_wipes(data: bytes) -> None:
    line = bytearray(data)
    event = classify_line(line)
    assert event is None or isinstance(
        event, QrScanned | ResidentCardSwiped | DigitsScanned | ScanRejected
    )
    assert line == bytearray()
