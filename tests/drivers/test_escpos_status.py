"""DLE EOT status parsing: every flag, the fixed bits, faults in order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.escpos.errors import (
    CoverOpenError,
    PaperOutError,
    PrinterError,
    PrinterHardwareError,
    PrinterOfflineError,
    StatusByteError,
)
from drivers.escpos.status import (
    STATUS_FIXED_MASK,
    STATUS_FIXED_VALUE,
    PrinterStatus,
    check_ready,
    encode_status,
    parse_status,
    parse_status_byte,
)

NONE_SET = 0x12


@pytest.mark.parametrize(
    ("request_n", "bit", "flag"),
    [
        (1, 0x04, "drawer_pin3_high"),
        (1, 0x08, "offline"),
        (1, 0x20, "waiting_online_recovery"),
        (1, 0x40, "feed_button_pressed"),
        (2, 0x04, "cover_open"),
        (2, 0x08, "feeding_by_button"),
        (2, 0x20, "stopped_by_paper_end"),
        (2, 0x40, "error"),
        (3, 0x04, "recoverable_error"),
        (3, 0x08, "autocutter_error"),
        (3, 0x20, "unrecoverable_error"),
        (3, 0x40, "auto_recoverable_error"),
        (4, 0x0C, "paper_near_end"),
        (4, 0x60, "paper_out"),
    ],
)
def test_each_status_bit_sets_only_its_flag(request_n: int, bit: int, flag: str) -> None:
    clear = parse_status_byte(request_n, NONE_SET)
    assert not any(clear.values())
    flags = parse_status_byte(request_n, NONE_SET | bit)
    assert flags[flag] is True
    assert [name for name, on in flags.items() if on] == [flag]


@pytest.mark.parametrize("bit", [0x04, 0x08])
def test_paper_near_end_reads_either_sensor_bit(bit: int) -> None:
    assert parse_status_byte(4, NONE_SET | bit)["paper_near_end"]


def test_reference_example_replies_for_a_printer_out_of_paper() -> None:
    # Offline (EOT 1 = 1A), stopped by paper end (EOT 2 = 32), both paper
    # sensors set (EOT 4 = 7E).
    status = parse_status({1: 0x1A, 2: 0x32, 3: 0x12, 4: 0x7E})
    assert not status.online
    assert status.paper_out
    assert status.paper_near_end
    assert status.stopped_by_paper_end
    assert not status.ready


@pytest.mark.parametrize("value", [0x00, 0x13, 0x10, 0x02, 0x92, 0xFF, 0x80])
def test_status_byte_without_fixed_bits_raises_status_byte_error(value: int) -> None:
    with pytest.raises(StatusByteError) as info:
        parse_status_byte(1, value)
    assert info.value.value == value
    assert f"0x{value:02X}" in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), st.integers(0, 255))
def test_fuzz_status_byte_parses_or_raises_typed_error(request_n: int, value: int) -> None:
    if value & STATUS_FIXED_MASK == STATUS_FIXED_VALUE:
        flags = parse_status_byte(request_n, value)
        assert all(isinstance(v, bool) for v in flags.values())
    else:
        with pytest.raises(StatusByteError):
            parse_status_byte(request_n, value)


@settings(max_examples=200, deadline=None)
@given(st.builds(PrinterStatus, **{name: st.booleans() for name in PrinterStatus.__slots__}))
def test_encode_then_parse_status_round_trips(status: PrinterStatus) -> None:
    replies = encode_status(status)
    assert all(b & STATUS_FIXED_MASK == STATUS_FIXED_VALUE for b in replies.values())
    assert parse_status(replies) == status


def test_check_ready_passes_a_ready_printer_with_paper_near_end() -> None:
    check_ready(PrinterStatus(paper_near_end=True))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (PrinterStatus(online=False, cover_open=True, paper_out=True), CoverOpenError),
        (PrinterStatus(online=False, paper_out=True), PaperOutError),
        (PrinterStatus(online=False, stopped_by_paper_end=True), PaperOutError),
        (PrinterStatus(online=False), PrinterOfflineError),
        (PrinterStatus(online=False, cover_open=True, autocutter_error=True), PrinterHardwareError),
        (PrinterStatus(unrecoverable_error=True), PrinterHardwareError),
    ],
)
def test_check_ready_raises_the_most_specific_fault(
    status: PrinterStatus, error: type[PrinterError]
) -> None:
    with pytest.raises(error):
        check_ready(status)


def test_faults_say_whether_they_are_temporary_and_have_bilingual_messages() -> None:
    assert CoverOpenError().temporary
    assert PaperOutError().temporary
    assert PrinterOfflineError().temporary
    assert not PrinterHardwareError().temporary
    err = CoverOpenError()
    assert err.title("ru") == "Открыта крышка принтера"
    assert err.title("en") == "Printer cover open"
    assert err.next_step("en").startswith("Close")


def test_paper_out_error_carries_progress() -> None:
    with pytest.raises(PaperOutError) as info:
        check_ready(PrinterStatus(online=False, paper_out=True), lines_sent=16, lines_total=30)
    assert (info.value.lines_sent, info.value.lines_total) == (16, 30)
