"""The QR encoder (ISO/IEC 18004) against a reference symbol and its own reader."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.escpos.errors import QrCapacityError, QrDecodeError
from drivers.escpos.qr import ErrorLevel, capacity_bytes, encode_qr, read_matrix

# b"lobbypay-ESC/P" at version 1-M with mask 2, drawn by an independent QR
# encoder (segno 1.6); one hex number per row, most significant bit = column 0.
REFERENCE_1M_MASK2 = [
    "1fc27f",
    "104241",
    "17545d",
    "17535d",
    "17555d",
    "105541",
    "1fd57f",
    "001d00",
    "17c17c",
    "029759",
    "177f8a",
    "1a3e0c",
    "096e63",
    "0018f5",
    "1fcd82",
    "1052ad",
    "175523",
    "175594",
    "175380",
    "10428c",
    "1fd5ba",
]


def rows_of(hex_rows: list[str]) -> list[bytes]:
    return [bytes(int(b) for b in format(int(r, 16), "021b")) for r in hex_rows]


def test_matches_reference_symbol_module_for_module() -> None:
    matrix = encode_qr(b"lobbypay-ESC/P", ErrorLevel.M, mask=2)
    assert (matrix.version, matrix.size) == (1, 21)
    assert list(matrix.rows) == rows_of(REFERENCE_1M_MASK2)


def test_reader_reads_the_reference_symbol() -> None:
    assert read_matrix(rows_of(REFERENCE_1M_MASK2)) == b"lobbypay-ESC/P"


@pytest.mark.parametrize(
    ("version", "level", "capacity"),
    [
        (1, ErrorLevel.L, 17),
        (1, ErrorLevel.M, 14),
        (1, ErrorLevel.Q, 11),
        (1, ErrorLevel.H, 7),
        (10, ErrorLevel.M, 213),
        (40, ErrorLevel.L, 2953),
        (40, ErrorLevel.H, 1273),
    ],
)
def test_byte_mode_capacity_matches_iso_table_7(
    version: int, level: ErrorLevel, capacity: int
) -> None:
    assert capacity_bytes(version, level) == capacity


@pytest.mark.parametrize("version", [1, 2, 6, 7, 10, 14, 22, 33, 40])
@pytest.mark.parametrize("level", list(ErrorLevel))
def test_full_symbol_of_each_version_reads_back(version: int, level: ErrorLevel) -> None:
    data = bytes((i * 37 + version) & 0xFF for i in range(capacity_bytes(version, level)))
    matrix = encode_qr(data, level, version_min=version, version_max=version, mask=version % 8)
    assert matrix.size == 4 * version + 17
    assert read_matrix(matrix.rows) == data


def test_smallest_version_is_chosen() -> None:
    assert encode_qr(b"x" * 14, ErrorLevel.M).version == 1
    assert encode_qr(b"x" * 15, ErrorLevel.M).version == 2


def test_payload_over_version_40_capacity_raises() -> None:
    with pytest.raises(QrCapacityError):
        encode_qr(b"x" * 2954, ErrorLevel.L)


def test_flipped_data_module_fails_reed_solomon_check() -> None:
    matrix = encode_qr(b"payment 123", ErrorLevel.M, mask=0)
    rows = [bytearray(r) for r in matrix.rows]
    rows[20][20] ^= 1  # bottom-right module: the first data bit
    with pytest.raises(QrDecodeError, match="Reed-Solomon"):
        read_matrix(rows)


def test_damaged_format_information_is_refused() -> None:
    matrix = encode_qr(b"payment 123", ErrorLevel.M, mask=0)
    rows = [bytearray(r) for r in matrix.rows]
    for i in (0, 1, 2, 3, 4, 5):
        rows[i][8] ^= 1
    for i in range(8):
        rows[8][matrix.size - 1 - i] ^= 1
    with pytest.raises(QrDecodeError):
        read_matrix(rows)


def test_wrong_version_information_is_refused() -> None:
    matrix = encode_qr(b"v" * 150, ErrorLevel.M, version_min=7)
    rows = [bytearray(r) for r in matrix.rows]
    rows[0][matrix.size - 11] ^= 1
    with pytest.raises(QrDecodeError, match="version"):
        read_matrix(rows)


@pytest.mark.parametrize("size", [0, 20, 22, 181])
def test_matrix_of_impossible_size_is_refused(size: int) -> None:
    with pytest.raises(QrDecodeError):
        read_matrix([bytes(size)] * size)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=120), st.sampled_from(list(ErrorLevel)))
def test_any_payload_round_trips_with_the_automatic_mask(data: bytes, level: ErrorLevel) -> None:
    matrix = encode_qr(data, level)
    assert read_matrix(matrix.rows) == data


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=21, max_size=21), min_size=21, max_size=21))
def test_fuzz_reader_raises_only_typed_errors(rows: list[bytes]) -> None:
    bits = [bytes(b & 1 for b in row) for row in rows]
    with contextlib.suppress(QrDecodeError):
        read_matrix(bits)
