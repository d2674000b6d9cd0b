"""Property and fuzz tests of the GOST R 56042 codec: round trips, typed errors only."""

from __future__ import annotations

import contextlib
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.scanner.errors import QrError, QrSizeError
from drivers.scanner.gost_qr import (
    FIELD_SPECS,
    PaymentQr,
    QrEncoding,
    QrPolicy,
    decode_payment_qr,
    decode_payment_qr_text,
    encode_payment_qr,
    inn_valid,
    with_account_key,
)
from drivers.scanner.samples import sample_bill

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters every one of the three encodings can carry (KOI8-R has no « » №).
CYRILLIC = "".join(chr(c) for c in range(0x410, 0x450)) + "Ёё"
SAFE_TEXT = string.ascii_letters + string.digits + " .,-/()\"'" + CYRILLIC

texts = st.text(alphabet=SAFE_TEXT, min_size=1, max_size=40).map(str.strip).filter(bool)
digits = st.text(alphabet=string.digits, min_size=1, max_size=1)


def _digit_strings(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=string.digits, min_size=n, max_size=n)


@st.composite
def inns(draw: st.DrawFn) -> str:
    length = draw(st.sampled_from([10, 12]))
    body = draw(_digit_strings(length - (1 if length == 10 else 2)))
    for tail in (f"{a}{b}" for a in range(10) for b in range(10)):
        candidate = body + (tail[1] if length == 10 else tail)
        if len(candidate) == length and inn_valid(candidate):
            return candidate
    raise AssertionError("an INN body always has check digits")  # pragma: no cover


@st.composite
def payments(draw: st.DrawFn) -> PaymentQr:
    bic = draw(_digit_strings(9))
    kwargs: dict[str, Any] = {
        "encoding": draw(st.sampled_from(list(QrEncoding))),
        "separator": draw(st.sampled_from("|#;~")),
        "name": draw(texts),
        "bank_name": draw(texts),
        "bic": bic,
        "personal_acc": with_account_key(bic, "4" + draw(_digit_strings(19))),
        "corresp_acc": draw(
            st.one_of(
                st.just("0"),
                _digit_strings(20).map(lambda a: with_account_key(bic, a, corresp=True)),
            )
        ),
    }
    if draw(st.booleans()):
        kwargs["sum_kopecks"] = draw(st.integers(min_value=0, max_value=10**18 - 1))
    if draw(st.booleans()):
        kwargs["add_amount_kopecks"] = draw(st.integers(min_value=0, max_value=10**9))
    if draw(st.booleans()):
        kwargs["payee_inn"] = draw(inns())
    if draw(st.booleans()):
        kwargs["kpp"] = draw(_digit_strings(9))
    if draw(st.booleans()):
        kwargs["oktmo"] = draw(st.sampled_from(["0"]) | _digit_strings(8) | _digit_strings(11))
    free_text = [s.attr for s in FIELD_SPECS if s.kind == "text" and s.chars_max is None]
    free_text = [a for a in free_text if a not in ("name", "bank_name")]
    for attr in draw(st.lists(st.sampled_from(free_text), unique=True, max_size=8)):
        kwargs[attr] = draw(texts)
    extra_keys = st.sampled_from(["OKATO", "MyRef", "ОКТМО", "X_1"])
    kwargs["extra"] = draw(st.dictionaries(extra_keys, texts, max_size=3))
    return PaymentQr(**kwargs)


@FUZZ
@given(payments())
def test_encode_then_decode_round_trips(qr: PaymentQr) -> None:
    assert decode_payment_qr(encode_payment_qr(qr)) == qr


@FUZZ
@given(payments())
def test_decode_text_agrees_with_decode_bytes(qr: PaymentQr) -> None:
    raw = encode_payment_qr(qr)
    assert decode_payment_qr_text(raw.decode(qr.encoding.codec)) == decode_payment_qr(raw)


@FUZZ
@given(st.binary(max_size=600))
def test_decode_random_bytes_raises_only_qr_errors(raw: bytes) -> None:
    with contextlib.suppress(QrError):
        decode_payment_qr(raw)


@FUZZ
@given(
    st.sampled_from([b"ST00011|", b"ST00012|", b"ST00013|", b"ST00012#"]),
    st.binary(max_size=400),
)
def test_decode_random_body_after_valid_header_raises_only_qr_errors(
    header: bytes, body: bytes
) -> None:
    with contextlib.suppress(QrError):
        decode_payment_qr(header + body)


SAMPLE = encode_payment_qr(sample_bill())


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(SAMPLE)),
            st.integers(min_value=0, max_value=8),
            st.binary(max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_decode_mutated_sample_gives_payment_or_qr_error(
    edits: list[tuple[int, int, bytes]],
) -> None:
    raw = bytearray(SAMPLE)
    for position, delete, insert in edits:
        raw[position : position + delete] = insert
    try:
        qr = decode_payment_qr(bytes(raw))
    except QrError:
        return
    # Whatever survived the mutation is a well-formed payment.
    assert len(qr.personal_acc) == 20
    assert len(qr.bic) == 9
    assert qr.sum_kopecks is None or isinstance(qr.sum_kopecks, int)


@FUZZ
@given(st.text(max_size=300))
def test_decode_text_random_raises_only_qr_errors(text: str) -> None:
    with contextlib.suppress(QrError):
        decode_payment_qr_text("ST00012|" + text)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=20, max_value=400))
def test_decode_limit_is_exact_at_the_bound(limit: int) -> None:
    raw = SAMPLE[:limit]
    policy = QrPolicy(payload_bytes_max=len(raw))
    reason = None
    try:
        decode_payment_qr(raw, policy)
    except QrError as exc:
        reason = exc.reason
    assert reason != "payload_too_large"
    with pytest.raises(QrSizeError):
        decode_payment_qr(raw + b" x", policy)
