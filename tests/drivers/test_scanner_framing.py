"""Sans-I/O line framer: terminators, noise, limits, timeouts; fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanner.framing import FramerConfig, LineDiscarded, LineFramer, LineReceived


def _lines(events: list[LineReceived | LineDiscarded]) -> list[bytes]:
    return [bytes(e.data) for e in events if isinstance(e, LineReceived)]


def _discards(events: list[LineReceived | LineDiscarded]) -> list[tuple[str, int]]:
    return [(e.reason, e.bytes_count) for e in events if isinstance(e, LineDiscarded)]


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n", b"\n\r"])
def test_default_framer_accepts_cr_lf_crlf(ending: bytes) -> None:
    framer = LineFramer()
    events = framer.feed(b"first" + ending + b"second" + ending, 0.0)
    assert _lines(events) == [b"first", b"second"]
    assert framer.state == "idle"


def test_empty_lines_are_dropped_silently() -> None:
    events = LineFramer().feed(b"\r\n\r\n\n\rabc\r\n\r\n", 0.0)
    assert events == [LineReceived(data=bytearray(b"abc"))]


def test_control_characters_removed_and_counted_high_bytes_kept() -> None:
    events = LineFramer().feed(b"\x02ab\x00c\x1b\x7f\xd2\xd1\xc6\x03\r", 0.0)
    assert _lines(events) == [b"abc\xd2\xd1\xc6"]
    assert isinstance(events[0], LineReceived)
    assert events[0].control_bytes_removed == 4  # STX before the line started is not counted


def test_custom_suffix_crlf_only() -> None:
    events = LineFramer(FramerConfig(suffix=b"\r\n")).feed(b"a\rb\nc\r\nd\r\n", 0.0)
    assert _lines(events) == [b"abc", b"d"]  # lone CR and LF are control noise


def test_custom_printable_suffix_and_partial_match() -> None:
    framer = LineFramer(FramerConfig(suffix=b"##"))
    assert _lines(framer.feed(b"a#b##c#", 0.0)) == [b"a#b"]
    assert _lines(framer.feed(b"#", 0.1)) == [b"c"]


def test_line_at_limit_kept_and_over_limit_discarded_with_its_tail() -> None:
    framer = LineFramer(FramerConfig(line_bytes_max=5))
    events = framer.feed(b"12345\n123456789\nabc\n", 0.0)
    assert _lines(events) == [b"12345", b"abc"]
    assert _discards(events) == [("too_long", 6)]
    assert framer.buffered_bytes == 0


def test_partial_line_older_than_line_timeout_is_discarded() -> None:
    framer = LineFramer(FramerConfig(line_timeout_s=1.0, inter_byte_timeout_s=0.5))
    t = 0.0
    for _ in range(4):  # trickle: never silent for 0.5 s, but 1 s old at the end
        framer.feed(b"x", t)
        t += 0.3
    assert framer.next_deadline() == pytest.approx(1.0)
    assert _discards(framer.poll(1.0)) == [("timeout", 4)]
    assert framer.state == "idle"


def test_partial_line_silent_past_inter_byte_timeout_is_discarded() -> None:
    framer = LineFramer(FramerConfig(inter_byte_timeout_s=0.2))
    framer.feed(b"half a", 0.0)
    assert framer.poll(0.19) == []
    assert _discards(framer.poll(0.2)) == [("timeout", 6)]


def test_feed_after_a_gap_discards_the_stale_partial_line_first() -> None:
    framer = LineFramer(FramerConfig(inter_byte_timeout_s=0.2))
    framer.feed(b"stale", 0.0)
    events = framer.feed(b"fresh\n", 5.0)
    assert _discards(events) == [("timeout", 5)]
    assert _lines(events) == [b"fresh"]


def test_idle_terminates_line_for_scanners_without_suffix() -> None:
    framer = LineFramer(FramerConfig(suffix=b"\x00\x00", idle_terminates_line=True))
    framer.feed(b"12345", 0.0)
    assert _lines(framer.poll(0.6)) == [b"12345"]


def test_skip_state_ends_after_a_gap() -> None:
    framer = LineFramer(FramerConfig(line_bytes_max=3, inter_byte_timeout_s=0.2))
    framer.feed(b"123456", 0.0)
    assert framer.state == "skip"
    assert framer.next_deadline() == pytest.approx(0.2)
    framer.poll(0.3)
    assert _lines(framer.feed(b"ok\n", 0.4)) == [b"ok"]


def test_discarded_bytes_are_overwritten_before_release() -> None:
    framer = LineFramer(FramerConfig(inter_byte_timeout_s=0.1))
    framer.feed(b";4111111111111111=29", 0.0)
    held = framer._buf  # the buffer object the framer drops on timeout
    framer.poll(1.0)
    assert held == bytearray(20)  # all zeros


def test_line_is_handed_over_not_copied() -> None:
    framer = LineFramer()
    framer.feed(b"abc", 0.0)
    held = framer._buf
    (event,) = framer.feed(b"\n", 0.0)
    assert isinstance(event, LineReceived)
    assert event.data is held
    assert framer._buf is not held


def test_framer_config_validation() -> None:
    with pytest.raises(ValueError, match="suffix"):
        FramerConfig(suffix=b"")
    with pytest.raises(ValueError, match="positive"):
        FramerConfig(line_bytes_max=0)
    with pytest.raises(ValueError, match="timeouts"):
        FramerConfig(line_timeout_s=0)


def test_events_check_invariants() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        LineReceived(data=bytearray())
    with pytest.raises(ValueError, match="reason"):
        LineDiscarded(reason="bogus", bytes_count=1)  # type: ignore[arg-type]


def test_line_repr_hides_content() -> None:
    assert "4111" not in repr(LineReceived(data=bytearray(b"4111111111111111")))


# --- Properties ---------------------------------------------------------------------

payload_lines = st.lists(
    st.binary(min_size=1, max_size=40).map(
        lambda b: bytes(x for x in b if x >= 0x20 and x != 0x7F) or b"x"
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(payload_lines, st.data())
def test_any_split_of_the_stream_gives_the_same_lines(
    lines: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=10)))
    framer = LineFramer()
    got: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got += _lines(framer.feed(stream[start:cut], 0.0))
        start = cut
    assert got == lines


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=50), st.floats(min_value=0, max_value=2.0)), max_size=20),
    st.integers(min_value=1, max_value=64),
    st.sampled_from([None, b"\r\n", b"#", b"\x03"]),
)
def test_random_stream_never_crashes_and_respects_bounds(
    chunks: list[tuple[bytes, float]], line_bytes_max: int, suffix: bytes | None
) -> None:
    framer = LineFramer(FramerConfig(line_bytes_max=line_bytes_max, suffix=suffix))
    now = 0.0
    for chunk, gap in chunks:
        now += gap
        for event in framer.feed(chunk, now) + framer.poll(now):
            if isinstance(event, LineReceived):
                assert 1 <= len(event.data) <= line_bytes_max
                assert all(b >= 0x20 and b != 0x7F for b in event.data)
        assert framer.buffered_bytes <= line_bytes_max
