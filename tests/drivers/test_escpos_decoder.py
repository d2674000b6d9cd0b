"""The sans-I/O ESC/POS decoder: round trips, partial input, faults, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.escpos.decoder import (
    NEED_DATA,
    CodePageSelected,
    EscPosDecoder,
    Event,
    Ignored,
    Initialized,
    StatusRequested,
)
from drivers.escpos.document import (
    PLAIN,
    Align,
    Cut,
    Document,
    Element,
    Feed,
    PrinterProfile,
    QrCode,
    Style,
    TextLine,
)
from drivers.escpos.encoder import encode_document
from drivers.escpos.errors import EscPosDecodeError
from drivers.escpos.qr import ErrorLevel
from drivers.escpos.receipt import layout_receipt, sample_receipt


def drain(decoder: EscPosDecoder) -> tuple[list[Event], list[str]]:
    events: list[Event] = []
    errors: list[str] = []
    for _ in range(1_000_000):
        try:
            event = decoder.next_event()
        except EscPosDecodeError as exc:
            errors.append(str(exc))
            continue
        if event is NEED_DATA:
            return events, errors
        events.append(event)
    raise AssertionError("decoder did not stop")


def decode(data: bytes, *, width: int = 42, code_page: int = 0) -> tuple[list[Event], list[str]]:
    decoder = EscPosDecoder(width_chars=width, code_page=code_page)
    decoder.receive_data(data)
    return drain(decoder)


def printed(events: list[Event]) -> tuple[Element, ...]:
    return tuple(e for e in events if isinstance(e, TextLine | QrCode | Feed | Cut))


@pytest.mark.parametrize("width", [32, 42, 48])
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_sample_receipt_round_trips_through_encoder_and_decoder(width: int, lang: str) -> None:
    profile = PrinterProfile(width_chars=width)
    doc = layout_receipt(sample_receipt(lang=lang), profile, lang=lang)
    events, errors = decode(encode_document(doc, profile), width=width)
    assert errors == []
    assert printed(events) == doc.elements
    assert events[:2] == [Initialized(), CodePageSelected(page=17)]


def test_byte_at_a_time_gives_the_same_events_as_one_chunk() -> None:
    profile = PrinterProfile()
    data = encode_document(layout_receipt(sample_receipt(), profile), profile)
    decoder = EscPosDecoder()
    events: list[Event] = []
    for i in range(len(data)):
        decoder.receive_data(data[i : i + 1])
        more, errors = drain(decoder)
        assert errors == []
        events.extend(more)
    assert events == decode(data)[0]
    assert decoder.buffered_bytes == 0


def test_incomplete_command_waits_for_more_data() -> None:
    decoder = EscPosDecoder()
    decoder.receive_data(bytes.fromhex("1d 28 6b 06 00 31 50 30 41"))
    assert decoder.next_event() is NEED_DATA
    assert decoder.buffered_bytes == 9
    decoder.receive_data(bytes.fromhex("42 43 1d 28 6b 03 00 31 51 30"))
    assert decoder.next_event() == QrCode(
        data=b"ABC", module_size=3, level=ErrorLevel.L, align=Align.LEFT
    )


def test_dle_eot_gives_status_requests_in_order() -> None:
    events, _ = decode(bytes.fromhex("10 04 01 10 04 04 10 04 02"))
    assert events == [
        StatusRequested(request=1),
        StatusRequested(request=4),
        StatusRequested(request=2),
    ]


def test_text_longer_than_paper_wraps_like_the_printer() -> None:
    events, _ = decode(b"x" * 40 + b"\n", width=32)
    assert printed(events) == (TextLine(text="x" * 32), TextLine(text="x" * 8))


def test_exactly_full_line_then_lf_prints_one_line() -> None:
    events, _ = decode(b"y" * 32 + b"\n", width=32)
    assert printed(events) == (TextLine(text="y" * 32),)


def test_double_width_halves_the_line_capacity() -> None:
    events, _ = decode(bytes.fromhex("1d 21 10") + b"z" * 17 + b"\n", width=32)
    wide = Style(width=2)
    assert printed(events) == (TextLine(text="z" * 16, style=wide), TextLine(text="z", style=wide))


def test_esc_bang_print_mode_sets_bold_and_size() -> None:
    events, _ = decode(bytes.fromhex("1b 21 38") + b"T\n")
    assert printed(events) == (TextLine(text="T", style=Style(bold=True, width=2, height=2)),)


def test_tab_advances_to_the_next_multiple_of_eight() -> None:
    events, _ = decode(b"ab\tc\n")
    assert printed(events) == (TextLine(text="ab      c"),)


def test_cp866_bytes_decode_after_esc_t_17() -> None:
    events, _ = decode(bytes.fromhex("1b 74 11 88 e2 ae a3 ae 0a"))
    assert printed(events) == (TextLine(text="Итого"),)


def test_esc_at_resets_styles_and_code_page() -> None:
    events, _ = decode(bytes.fromhex("1b 74 11 1b 45 01 1b 40 41 0a"), code_page=0)
    assert printed(events) == (TextLine(text="A", style=PLAIN),)


def test_esc_d_after_text_prints_the_line_and_feeds_the_rest() -> None:
    events, _ = decode(b"abc" + bytes.fromhex("1b 64 03"))
    assert printed(events) == (TextLine(text="abc"), Feed(lines=2))


@pytest.mark.parametrize(
    ("data", "cut"),
    [
        ("1d 56 00", Cut(partial=False)),
        ("1d 56 31", Cut(partial=True)),
        ("1d 56 41 05", Cut(partial=False)),
        ("1d 56 42 00", Cut(partial=True)),
        ("1b 69", Cut(partial=True)),
    ],
)
def test_cut_forms_decode(data: str, cut: Cut) -> None:
    events, errors = decode(bytes.fromhex(data))
    assert (printed(events), errors) == ((cut,), [])


@pytest.mark.parametrize(
    "data",
    [
        "1b 2d 01",  # underline
        "1b 4d 01",  # font B
        "1b 33 18",  # line spacing
        "1b 70 00 19 fa",  # drawer kick
        "1d 42 01",  # reverse
        "1d 28 6b 03 00 30 41 02",  # PDF417 setting
        "1d 76 30 00 01 00 02 00 ff 00",  # raster image 1 x 2
        "1d 6b 04 31 32 33 00",  # CODE39 function A
        "1d 6b 45 03 31 32 33",  # CODE39 function B
        "1b 44 08 10 00",  # tab positions
        "10 14 01 00 01",  # real-time pulse
    ],
)
def test_known_unmodelled_commands_are_skipped_as_ignored(data: str) -> None:
    events, errors = decode(bytes.fromhex(data) + b"ok\n")
    assert errors == []
    assert isinstance(events[0], Ignored)
    assert printed(events) == (TextLine(text="ok"),)


@pytest.mark.parametrize(
    "data",
    [
        "1b 01",  # unknown ESC command
        "1d 01",  # unknown GS command
        "10 07",  # unknown DLE command (needs 3 bytes to judge)
        "1c 00",  # unknown FS command
        "1b 61 07",  # justification out of range
        "1d 21 88",  # reserved size bits
        "1d 56 07",  # cut mode out of range
        "10 04 09",  # DLE EOT n out of range
        "1d 28 6b 03 00 31 43 00",  # QR module size 0
        "1d 28 6b 03 00 31 45 20",  # QR level out of range
        "1d 28 6b 03 00 31 51 30",  # QR print with nothing stored
        "1d 28 6b 03 00 31 7f 30",  # QR function unknown
        "1d 28 6b 01 00 31",  # GS ( k too short
    ],
)
def test_bad_command_raises_decode_error_then_decoding_continues(data: str) -> None:
    events, errors = decode(bytes.fromhex(data) + b"\x00" * 2 + b"next\n")
    assert len(errors) == 1
    assert printed(events)[-1] == TextLine(text="next")


def test_oversize_qr_store_is_skipped_as_it_streams_in() -> None:
    decoder = EscPosDecoder()
    length = 60000
    decoder.receive_data(bytes((0x1D, 0x28, 0x6B, length & 0xFF, length >> 8)) + b"\x31\x50\x30")
    with pytest.raises(EscPosDecodeError, match="over the limit"):
        decoder.next_event()
    remaining = length - 3  # cn fn m came with the header
    while remaining:
        chunk = min(remaining, 1000)
        decoder.receive_data(b"A" * chunk)
        remaining -= chunk
        assert decoder.next_event() is NEED_DATA
        assert decoder.buffered_bytes == 0
    decoder.receive_data(b"tail\n")
    assert decoder.next_event() == TextLine(text="tail")


text_chars = st.sampled_from(list("abcXYZ019 .,-Итогоёщ№"))
styles = st.builds(
    Style,
    bold=st.booleans(),
    width=st.integers(1, 2),
    height=st.integers(1, 3),
    align=st.sampled_from(list(Align)),
)
elements = st.one_of(
    st.builds(TextLine, text=st.text(text_chars, min_size=1, max_size=16), style=styles),
    st.just(TextLine(text="")),
    st.builds(
        QrCode,
        data=st.binary(min_size=1, max_size=40),
        module_size=st.integers(1, 16),
        level=st.sampled_from(list(ErrorLevel)),
        align=st.sampled_from(list(Align)),
    ),
    st.builds(Feed, lines=st.integers(1, 255)),
    st.builds(Cut, partial=st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(elements, max_size=12), st.sampled_from([32, 42, 48]))
def test_any_document_round_trips(elems: list[Element], width: int) -> None:
    doc = Document(elements=tuple(elems), width_chars=width)
    profile = PrinterProfile(width_chars=width)
    events, errors = decode(encode_document(doc, profile), width=width)
    assert errors == []
    assert printed(events) == doc.elements


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 64), max_size=20))
def test_fuzz_decoder_never_crashes_or_hangs_and_keeps_buffers_bounded(
    data: bytes, cuts: list[int]
) -> None:
    decoder = EscPosDecoder(width_chars=32)
    pos = 0
    for size in [*cuts, len(data)]:
        decoder.receive_data(data[pos : pos + size])
        pos += size
        events, _ = drain(decoder)
        for event in events:
            if isinstance(event, TextLine):
                assert len(event.text) * event.style.width <= 32
    assert decoder.buffered_bytes <= len(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([b"\x1b", b"\x1d", b"\x10", b"\x1c", b"\n", b"(k", b"\x04"]),
            st.binary(max_size=6),
        ),
        max_size=60,
    )
)
def test_fuzz_decoder_with_command_shaped_noise(parts: list[bytes]) -> None:
    decoder = EscPosDecoder()
    decoder.receive_data(b"".join(parts))
    drain(decoder)
    # Whatever is left is one incomplete command, no more than a GS ( k can hold.
    assert decoder.buffered_bytes <= 7092 + 5
