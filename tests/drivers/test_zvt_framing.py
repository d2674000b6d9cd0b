"""Serial framing: CRC, DLE doubling, incremental decoding, resynchronisation, bounds.

Fixtures are frames captured from terminals and published with the open ECR
library ecrterm (``tests/data_encoding.py``); the CRC is CRC-CCITT reflected
(0x8408) over APDU + ETX, low byte first.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.zvt.apdu import NEED_DATA
from drivers.zvt.framing import (
    AckReceived,
    FrameDecoder,
    FrameReceived,
    FrameRejected,
    NakReceived,
    RejectReason,
    crc16,
    encode_frame,
    frame_crc,
)

# (APDU, complete frame) — ecrterm's captured fixtures.
FRAME_FIXTURES = [
    ("80 00 00", "10 02 80 00 00 10 03 F5 1F"),
    ("84 9C 00", "10 02 84 9C 00 10 03 C3 41"),
    ("06 00 06 12 34 56 BA 09 78", "10 02 06 00 06 12 34 56 BA 09 78 10 03 24 C3"),
    ("05 01 03 12 34 56", "10 02 05 01 03 12 34 56 10 03 E0 43"),
    ("06 93 03 12 34 56", "10 02 06 93 03 12 34 56 10 03 CA A4"),
    ("06 70 00", "10 02 06 70 00 10 03 D9 F9"),
    ("06 18 00", "10 02 06 18 00 10 03 56 3A"),
    # Authorization of 110.00 EUR: the amount byte 0x10 is doubled on the wire.
    (
        "06 01 0A 04 00 00 00 01 10 00 49 09 78",
        "10 02 06 01 0A 04 00 00 00 01 10 10 00 49 09 78 10 03 F2 FF",
    ),
    (
        "06 D1 19 00 47 65 73 61 6D 74 20 20 20 20 20 20 30 20 20 20 20 20 20 20 30 2C 30 30",
        "10 02 06 D1 19 00 47 65 73 61 6D 74 20 20 20 20 20 20 30 20 20 20 20 20 20 20 30"
        " 2C 30 30 10 03 B5 AB",
    ),
]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def events(decoder: FrameDecoder) -> list[object]:
    out = []
    for _ in range(10_000):
        ev = decoder.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)
    raise AssertionError("decoder did not return NEED_DATA")


@pytest.mark.parametrize(("apdu", "frame"), FRAME_FIXTURES)
def test_encode_frame_matches_captured_fixture(apdu: str, frame: str) -> None:
    assert encode_frame(h(apdu)) == h(frame)


@pytest.mark.parametrize(("apdu", "frame"), FRAME_FIXTURES)
def test_decode_captured_fixture_byte_by_byte_yields_apdu(apdu: str, frame: str) -> None:
    decoder = FrameDecoder()
    got: list[object] = []
    for byte in h(frame):
        decoder.receive_data(bytes((byte,)))
        got += events(decoder)
    assert got == [FrameReceived(apdu=h(apdu))]
    assert got[0].apdu == h(apdu)  # type: ignore[attr-defined]


def test_crc16_known_check_value() -> None:
    # The catalogue check value of CRC-16/KERMIT over "123456789".
    assert crc16(b"123456789") == 0x2189


def test_frame_crc_is_low_byte_first() -> None:
    assert frame_crc(h("80 00 00")) == h("F5 1F")


def test_decode_bad_crc_yields_rejected_frame() -> None:
    frame = bytearray(h(FRAME_FIXTURES[0][1]))
    frame[-1] ^= 0xFF
    decoder = FrameDecoder()
    decoder.receive_data(bytes(frame))
    assert events(decoder) == [FrameRejected(reason=RejectReason.BAD_CRC)]
    assert not decoder.in_frame


def test_decode_ack_and_nak_bytes_between_frames() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\x06" + h(FRAME_FIXTURES[0][1]) + b"\x15")
    assert events(decoder) == [
        AckReceived(),
        FrameReceived(apdu=h("80 00 00")),
        NakReceived(),
    ]


def test_decode_skips_garbage_and_resynchronises_on_dle_stx() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\xa5\x5a\x00\xff\x10\x42" + h(FRAME_FIXTURES[1][1]))
    assert events(decoder) == [FrameReceived(apdu=h("84 9C 00"))]
    assert decoder.garbage_bytes == 6


def test_decode_lone_dle_before_ack_still_sees_ack() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\x10\x06")
    assert events(decoder) == [AckReceived()]


def test_decode_dle_followed_by_junk_inside_frame_is_bad_escape() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(h("10 02 80 00 10 41 00 10 03 11 22"))
    assert events(decoder) == [FrameRejected(reason=RejectReason.BAD_ESCAPE)]
    # The decoder is ready for the next frame.
    decoder.receive_data(h(FRAME_FIXTURES[0][1]))
    assert events(decoder) == [FrameReceived(apdu=h("80 00 00"))]


def test_decode_new_frame_inside_frame_rejects_the_cut_one() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(h("10 02 06 01 0A 04") + h(FRAME_FIXTURES[0][1]))
    assert events(decoder) == [
        FrameRejected(reason=RejectReason.TRUNCATED),
        FrameReceived(apdu=h("80 00 00")),
    ]


def test_flush_after_truncated_frame_rejects_it() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(h("10 02 06 01 0A 04 00"))
    assert events(decoder) == []
    assert decoder.in_frame
    assert decoder.flush() == FrameRejected(reason=RejectReason.TRUNCATED)
    assert not decoder.in_frame
    assert decoder.flush() is None


def test_frame_at_frame_bytes_max_is_accepted() -> None:
    apdu = bytes((0x06, 0xD1, 0x05)) + b"abcde"
    decoder = FrameDecoder(frame_bytes_max=len(apdu))
    decoder.receive_data(encode_frame(apdu))
    assert events(decoder) == [FrameReceived(apdu=apdu)]


def test_frame_one_byte_over_frame_bytes_max_is_rejected_as_oversize() -> None:
    apdu = bytes((0x06, 0xD1, 0x06)) + b"abcdef"
    decoder = FrameDecoder(frame_bytes_max=len(apdu) - 1)
    decoder.receive_data(encode_frame(apdu) + h(FRAME_FIXTURES[0][1]))
    assert events(decoder) == [
        FrameRejected(reason=RejectReason.OVERSIZE),
        FrameReceived(apdu=h("80 00 00")),
    ]


def test_oversize_frame_with_doubled_dle_at_the_bound_is_rejected() -> None:
    apdu = bytes((0x06, 0xD1, 0x04)) + b"\x10\x10\x10\x10"
    decoder = FrameDecoder(frame_bytes_max=5)
    decoder.receive_data(encode_frame(apdu) + b"\x06")
    assert events(decoder) == [FrameRejected(reason=RejectReason.OVERSIZE), AckReceived()]


def test_empty_frame_is_rejected() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\x10\x02\x10\x03" + frame_crc(b""))
    assert events(decoder) == [FrameRejected(reason=RejectReason.TRUNCATED)]


apdus = st.binary(min_size=3, max_size=300)


@settings(max_examples=150, deadline=None)
@given(apdu=apdus, cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=8))
def test_encode_then_decode_in_any_chunking_roundtrips(apdu: bytes, cuts: list[int]) -> None:
    wire = b"\x06" + encode_frame(apdu) + b"\x15"
    points = sorted({c % (len(wire) + 1) for c in cuts})
    decoder = FrameDecoder()
    got: list[object] = []
    start = 0
    for point in [*points, len(wire)]:
        decoder.receive_data(wire[start:point])
        got += events(decoder)
        start = point
    assert got == [AckReceived(), FrameReceived(apdu=apdu), NakReceived()]


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=12), limit=st.integers(3, 80))
def test_decoder_fuzz_never_raises_and_always_returns_need_data(
    chunks: list[bytes], limit: int
) -> None:
    decoder = FrameDecoder(frame_bytes_max=limit)
    for chunk in chunks:
        decoder.receive_data(chunk)
        for ev in events(decoder):
            assert isinstance(ev, FrameReceived | FrameRejected | AckReceived | NakReceived)
            if isinstance(ev, FrameReceived):
                assert 0 < len(ev.apdu) <= limit
    decoder.flush()
    assert not decoder.in_frame
