"""APDU length forms and the TCP APDU stream (ZVT chapter 1.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.zvt.apdu import (
    NEED_DATA,
    Apdu,
    ApduStream,
    apdu_total_length,
    decode_apdu,
    encode_apdu,
)
from drivers.zvt.errors import ZvtApduError, ZvtError, ZvtFrameError, ZvtUsageError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_encode_short_length_apdu() -> None:
    assert encode_apdu(Apdu(cls=0x80, instr=0x00)) == h("80 00 00")


def test_encode_254_data_bytes_uses_one_length_byte() -> None:
    raw = encode_apdu(Apdu(cls=0x06, instr=0xD3, data=bytes(254)))
    assert raw[:3] == h("06 D3 FE")
    assert len(raw) == 257


def test_encode_255_data_bytes_uses_extended_length_little_endian() -> None:
    raw = encode_apdu(Apdu(cls=0x06, instr=0xD3, data=bytes(255)))
    assert raw[:5] == h("06 D3 FF FF 00")


def test_encode_extended_length_0x0123() -> None:
    raw = encode_apdu(Apdu(cls=0x06, instr=0xD3, data=bytes(0x123)))
    assert raw[:5] == h("06 D3 FF 23 01")


def test_decode_extended_length_apdu() -> None:
    apdu = decode_apdu(h("06 D3 FF 03 00 AA BB CC"))
    assert (apdu.cls, apdu.instr, apdu.data) == (0x06, 0xD3, h("AA BB CC"))
    assert apdu.control == 0x06D3


def test_decode_length_mismatch_raises_apdu_error() -> None:
    with pytest.raises(ZvtApduError):
        decode_apdu(h("06 01 05 04 00"))


def test_decode_too_short_raises_apdu_error() -> None:
    with pytest.raises(ZvtApduError):
        decode_apdu(h("06 01"))


def test_apdu_repr_hides_data() -> None:
    apdu = Apdu(cls=0x04, instr=0x0F, data=b"4111111111111111")
    assert "4111" not in repr(apdu)
    assert "4111" not in str(apdu)


def test_apdu_rejects_oversize_data() -> None:
    with pytest.raises(ZvtUsageError):
        Apdu(cls=0x06, instr=0xD3, data=bytes(0x10000))


def test_total_length_needs_the_extended_header() -> None:
    assert apdu_total_length(h("06 D3")) is None
    assert apdu_total_length(h("06 D3 FF 01")) is None
    assert apdu_total_length(h("06 D3 FF 01 00")) == 6


def test_stream_splits_concatenated_apdus_fed_byte_by_byte() -> None:
    wire = h("80 00 00") + h("04 FF 02 0A 00") + h("06 0F 00")
    stream = ApduStream()
    got = []
    for byte in wire:
        stream.receive_data(bytes((byte,)))
        while (apdu := stream.next_apdu()) is not NEED_DATA:
            got.append(apdu)
    assert [a.control for a in got] == [0x8000, 0x04FF, 0x060F]  # type: ignore[union-attr]
    assert stream.buffered_bytes == 0


def test_stream_apdu_at_the_bound_is_accepted() -> None:
    stream = ApduStream(apdu_bytes_max=8)
    stream.receive_data(h("06 D1 05 00 41 42 43 44"))
    apdu = stream.next_apdu()
    assert isinstance(apdu, Apdu)
    assert apdu.data == h("00 41 42 43 44")


def test_stream_apdu_over_the_bound_raises_frame_error() -> None:
    stream = ApduStream(apdu_bytes_max=8)
    stream.receive_data(h("06 D1 06"))
    with pytest.raises(ZvtFrameError):
        stream.next_apdu()
    assert stream.buffered_bytes == 0


@settings(max_examples=150, deadline=None)
@given(cls_=st.integers(0, 255), instr=st.integers(0, 255), data=st.binary(max_size=600))
def test_encode_decode_roundtrip(cls_: int, instr: int, data: bytes) -> None:
    apdu = Apdu(cls=cls_, instr=instr, data=data)
    assert decode_apdu(encode_apdu(apdu)) == apdu


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=10))
def test_stream_fuzz_raises_only_typed_errors(chunks: list[bytes]) -> None:
    stream = ApduStream(apdu_bytes_max=64)
    for chunk in chunks:
        stream.receive_data(chunk)
        for _ in range(100):
            try:
                apdu = stream.next_apdu()
            except ZvtError:
                break
            if apdu is NEED_DATA:
                break
        else:
            raise AssertionError("stream never asked for more data")
