"""Serial link: stop-and-wait, ACK/NAK, retransmission and give-up, in memory (two peers)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.zvt.apdu import NEED_DATA, Apdu, encode_apdu
from drivers.zvt.errors import ZvtError, ZvtFrameError, ZvtTimeout, ZvtUsageError
from drivers.zvt.framing import encode_frame
from drivers.zvt.link import SerialLink, TcpLink

ACK_APDU = encode_apdu(Apdu(cls=0x80, instr=0x00))
STATUS_APDU = encode_apdu(Apdu(cls=0x04, instr=0xFF, data=b"\x0a\x00"))


def drain(link: SerialLink | TcpLink) -> list[Apdu]:
    out = []
    for _ in range(1000):
        apdu = link.next_apdu()
        if apdu is NEED_DATA:
            return out
        assert isinstance(apdu, Apdu)
        out.append(apdu)
    raise AssertionError("no NEED_DATA")


def exchange(a: SerialLink, b: SerialLink) -> tuple[list[Apdu], list[Apdu]]:
    """Move bytes both ways until neither side has anything to say."""
    got_a: list[Apdu] = []
    got_b: list[Apdu] = []
    for _ in range(50):
        out_a, out_b = a.data_to_send(), b.data_to_send()
        if not out_a and not out_b:
            return got_a, got_b
        b.receive_data(out_a)
        got_b += drain(b)
        a.receive_data(out_b)
        got_a += drain(a)
    raise AssertionError("peers kept talking")


def test_frame_is_acked_and_delivered() -> None:
    ecr, pt = SerialLink(), SerialLink()
    ecr.send_apdu(STATUS_APDU)
    assert ecr.awaiting_ack
    _, got = exchange(ecr, pt)
    assert [encode_apdu(a) for a in got] == [STATUS_APDU]
    assert not ecr.awaiting_ack


def test_second_frame_waits_for_the_first_ack() -> None:
    ecr = SerialLink()
    ecr.send_apdu(ACK_APDU)
    first = ecr.data_to_send()
    ecr.send_apdu(STATUS_APDU)
    assert ecr.data_to_send() == b""
    ecr.receive_data(b"\x06")
    assert drain(ecr) == []
    assert ecr.data_to_send() == encode_frame(STATUS_APDU)
    assert first == encode_frame(ACK_APDU)


def test_nak_causes_retransmission_then_ack_succeeds() -> None:
    ecr = SerialLink()
    ecr.send_apdu(STATUS_APDU)
    frame = ecr.data_to_send()
    ecr.receive_data(b"\x15")
    drain(ecr)
    assert ecr.data_to_send() == frame
    assert ecr.inflight_attempts == 2
    ecr.receive_data(b"\x06")
    drain(ecr)
    assert not ecr.awaiting_ack
    assert ecr.frames_sent == 2


def test_fourth_nak_gives_up_with_frame_error() -> None:
    ecr = SerialLink(retries_max=3)
    ecr.send_apdu(STATUS_APDU)
    ecr.data_to_send()
    for _ in range(3):
        ecr.receive_data(b"\x15")
        drain(ecr)
        assert ecr.data_to_send()
    ecr.receive_data(b"\x15")
    with pytest.raises(ZvtFrameError):
        drain(ecr)
    assert not ecr.awaiting_ack
    assert ecr.frames_sent == 4


def test_ack_timeout_retransmits_then_gives_up_with_timeout() -> None:
    ecr = SerialLink(retries_max=3)
    ecr.send_apdu(STATUS_APDU)
    frame = ecr.data_to_send()
    for _ in range(3):
        ecr.ack_timeout()
        assert ecr.data_to_send() == frame
    with pytest.raises(ZvtTimeout) as info:
        ecr.ack_timeout()
    assert info.value.stage == "link_ack"


def test_corrupt_frame_is_answered_with_nak_and_not_delivered() -> None:
    pt = SerialLink()
    frame = bytearray(encode_frame(STATUS_APDU))
    frame[3] ^= 0x01
    pt.receive_data(bytes(frame))
    assert drain(pt) == []
    assert pt.data_to_send() == b"\x15"
    assert pt.frames_rejected == 1


def test_truncated_frame_is_nakked_on_receive_timeout() -> None:
    pt = SerialLink()
    pt.receive_data(encode_frame(STATUS_APDU)[:5])
    assert drain(pt) == []
    assert pt.receiving
    pt.receive_timeout()
    assert pt.data_to_send() == b"\x15"
    assert not pt.receiving


def test_stray_ack_and_nak_are_ignored() -> None:
    link = SerialLink()
    link.receive_data(b"\x06\x15")
    assert drain(link) == []
    assert link.data_to_send() == b""


def test_outgoing_queue_is_bounded() -> None:
    link = SerialLink(outgoing_frames_max=2)
    link.send_apdu(ACK_APDU)  # in flight
    link.send_apdu(ACK_APDU)
    link.send_apdu(ACK_APDU)
    with pytest.raises(ZvtUsageError):
        link.send_apdu(ACK_APDU)


def test_frame_with_bad_apdu_length_is_acked_then_rejected_as_apdu_error() -> None:
    pt = SerialLink()
    pt.receive_data(encode_frame(bytes.fromhex("04 FF 05 0A")))
    with pytest.raises(ZvtError):
        drain(pt)
    assert pt.data_to_send() == b"\x06"


def test_tcp_link_passes_apdus_through() -> None:
    link = TcpLink()
    link.send_apdu(STATUS_APDU)
    assert link.data_to_send() == STATUS_APDU
    assert not link.awaiting_ack
    link.receive_data(ACK_APDU + STATUS_APDU[:2])
    assert [encode_apdu(a) for a in drain(link)] == [ACK_APDU]
    assert link.receiving
    with pytest.raises(ZvtFrameError):
        link.receive_timeout()


@settings(max_examples=200, deadline=None)
@given(
    noise=st.lists(st.binary(max_size=20), max_size=6),
    flips=st.lists(st.integers(0, 10_000), max_size=3),
)
def test_link_fuzz_never_raises_untyped_errors(noise: list[bytes], flips: list[int]) -> None:
    link = SerialLink()
    link.send_apdu(STATUS_APDU)
    link.data_to_send()
    wire = bytearray(b"".join(noise) + encode_frame(ACK_APDU))
    for f in flips:
        wire[f % len(wire)] ^= 0xFF
    link.receive_data(bytes(wire))
    with contextlib.suppress(ZvtError):
        drain(link)
    link.receive_timeout()
