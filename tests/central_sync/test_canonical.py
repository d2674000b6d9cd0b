"""The canonical encoding: one encoding per value, refusal of everything else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central_sync.canonical import CanonicalError, decode, encode

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def test_encode_sorts_keys_and_drops_whitespace() -> None:
    assert encode({"b": 1, "a": [True, None, "ж"]}) == '{"a":[true,null,"ж"],"b":1}'.encode()


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": float("nan")}, {1: "x"}, {"a": b"bytes"}, 2**63, {"s": "\ud800"}],
)
def test_encode_non_canonical_value_raises_canonical_error(value: Any) -> None:
    with pytest.raises(CanonicalError):
        encode(value)


def test_encode_too_deep_raises_canonical_error() -> None:
    value: Any = 1
    for _ in range(40):
        value = [value]
    with pytest.raises(CanonicalError, match="deeper"):
        encode(value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}',
        b'{"b":1,"a":2}',
        b'{"a":1.0}',
        b'{"a":NaN}',
        b'{"a":1,"a":1}',
        b'"\\ud800"',
        b"\xff",
        b"[" * 5000,
        b'{"a":"\\u0436"}',
    ],
)
def test_decode_non_canonical_bytes_raises_canonical_error(data: bytes) -> None:
    with pytest.raises(CanonicalError):
        decode(data)


@settings(max_examples=200)
@given(json_values)
def test_decode_of_encode_round_trips(value: Any) -> None:
    assert decode(encode(value)) == value


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_decode_arbitrary_bytes_gives_value_or_canonical_error(data: bytes) -> None:
    try:
        value = decode(data)
    except CanonicalError:
        return
    assert encode(value) == data
