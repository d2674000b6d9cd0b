"""Driver ↔ simulator over a real pty pair and a real TCP socket: outcomes, recovery, faults."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.zvt import codes
from drivers.zvt.backend import ZvtOptions, open_terminal
from drivers.zvt.client import PaymentStatus, ZvtTerminal
from drivers.zvt.errors import (
    ZvtCommandRejected,
    ZvtFrameError,
    ZvtTemporaryDeviceError,
    ZvtTimeout,
    ZvtUsageError,
)
from drivers.zvt.messages import IntermediateStatus
from drivers.zvt.session import ZvtTimeouts
from drivers.zvt.simulator import Fault, Outcome, PtyEndpoint, TcpEndpoint, TerminalSimulator

pytestmark = pytest.mark.timeout(30)

FAST = ZvtTimeouts(
    connect_timeout_s=2.0,
    write_timeout_s=1.0,
    link_ack_timeout_s=0.3,
    byte_timeout_s=0.3,
    command_ack_timeout_s=1.0,
    progress_timeout_s=1.5,
    completion_timeout_s=1.5,
    transaction_timeout_s=10.0,
)

Endpoint = PtyEndpoint | TcpEndpoint


@pytest.fixture
def zvt_sim() -> TerminalSimulator:
    return TerminalSimulator(link_ack_timeout_s=0.3, ecr_ack_timeout_s=1.0, silence_s=0.6)


async def _serve(sim: TerminalSimulator, kind: str, tmp_path: Path) -> tuple[Endpoint, str]:
    if kind == "pty":
        pty = await sim.serve_pty(link_path=tmp_path / "zvt-tty")
        return pty, pty.path
    tcp = await sim.serve_tcp()
    return tcp, tcp.url


@pytest.fixture(params=["pty", "tcp"])
async def zvt_endpoint(
    request: pytest.FixtureRequest, zvt_sim: TerminalSimulator, tmp_path: Path
) -> AsyncIterator[tuple[Endpoint, str]]:
    endpoint, url = await _serve(zvt_sim, request.param, tmp_path)
    yield endpoint, url
    await endpoint.close()


@pytest.fixture
async def zvt_terminal(zvt_endpoint: tuple[Endpoint, str]) -> AsyncIterator[ZvtTerminal]:
    _, url = zvt_endpoint
    terminal = ZvtTerminal(url, timeouts=FAST)
    await terminal.connect()
    await terminal.register()
    yield terminal
    await terminal.close()


@pytest.fixture
async def zvt_pty(
    zvt_sim: TerminalSimulator, tmp_path: Path
) -> AsyncIterator[tuple[PtyEndpoint, ZvtTerminal]]:
    pty = await zvt_sim.serve_pty(link_path=tmp_path / "zvt-tty")
    terminal = ZvtTerminal(pty.path, timeouts=FAST)
    await terminal.connect()
    await terminal.register()
    yield pty, terminal
    await terminal.close()
    await pty.close()


@pytest.fixture
async def zvt_tcp(zvt_sim: TerminalSimulator) -> AsyncIterator[tuple[TcpEndpoint, ZvtTerminal]]:
    tcp = await zvt_sim.serve_tcp()
    terminal = ZvtTerminal(tcp.url, timeouts=FAST)
    await terminal.connect()
    await terminal.register()
    yield tcp, terminal
    await terminal.close()
    await tcp.close()


# ------------------------------------------------------------ both transports


async def test_pay_approved_reports_masked_card_receipt_and_statuses(
    zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator
) -> None:
    statuses: list[int] = []
    outcome = await zvt_terminal.pay(
        12345, currency="RUB", on_status=lambda s: statuses.append(s.code)
    )
    assert outcome.status is PaymentStatus.APPROVED
    assert outcome.approved
    assert outcome.amount_minor == 12345
    assert outcome.currency == "RUB"
    assert outcome.approved_offline is False
    assert outcome.masked_pan == "220220******0014"
    assert outcome.receipt_no == zvt_sim.log[-1].receipt_no
    assert outcome.trace_no == zvt_sim.log[-1].trace_no
    assert outcome.auth_code == zvt_sim.log[-1].auth_code
    assert outcome.terminal_id == "52523535"
    assert "AMOUNT 123.45 RUB" in outcome.receipt_lines
    assert statuses == [
        codes.STATUS_INSERT_CARD,
        codes.STATUS_ENTER_PIN,
        codes.STATUS_PROCESSING,
        codes.STATUS_REMOVE_CARD,
    ]


async def test_pay_declined(zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator) -> None:
    zvt_sim.script(Outcome.DECLINED)
    outcome = await zvt_terminal.pay(500)
    assert outcome.status is PaymentStatus.DECLINED
    assert outcome.result_code == 0x05
    assert outcome.message("ru") == "отклонено системой авторизации"
    assert outcome.receipt_lines == ()


async def test_pay_approved_offline(zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator) -> None:
    zvt_sim.script(Outcome.APPROVED_OFFLINE)
    outcome = await zvt_terminal.pay(700)
    assert outcome.approved
    assert outcome.approved_offline is True
    assert "OFFLINE APPROVED" in outcome.receipt_lines


async def test_pay_aborted_by_customer(
    zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator
) -> None:
    zvt_sim.script(Outcome.CUSTOMER_ABORT)
    outcome = await zvt_terminal.pay(900)
    assert outcome.status is PaymentStatus.ABORTED
    assert outcome.result_code == codes.RESULT_ABORT
    assert not zvt_sim.log  # nothing booked


async def test_ecr_abort_during_card_wait_ends_payment_aborted(
    zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator
) -> None:
    zvt_sim.config.card_wait_s = 5.0
    session = zvt_terminal.payment(1000)
    async for status in session:
        if status.code == codes.STATUS_INSERT_CARD:
            assert await zvt_terminal.abort() is True
    outcome = await session.outcome()
    assert outcome.status is PaymentStatus.ABORTED
    assert not zvt_sim.log
    assert "AbortRequest" in zvt_sim.commands_seen


async def test_abort_without_running_payment_returns_false(zvt_terminal: ZvtTerminal) -> None:
    assert await zvt_terminal.abort() is False


async def test_busy_terminal_rejects_with_temporary_error_and_next_pay_works(
    zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator
) -> None:
    zvt_sim.script(Outcome.BUSY)
    with pytest.raises(ZvtCommandRejected) as info:
        await zvt_terminal.pay(100)
    assert info.value.result_code == 0x9C
    assert info.value.is_temporary
    assert info.value.outcome_unknown is False
    assert (await zvt_terminal.pay(100)).approved


async def test_reversal_by_receipt_number_and_second_reversal_refused(
    zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator
) -> None:
    paid = await zvt_terminal.pay(2500)
    assert paid.receipt_no is not None
    reversal = await zvt_terminal.reverse(paid.receipt_no)
    assert reversal.approved
    assert reversal.operation.value == "reversal"
    assert reversal.amount_minor == 2500
    assert zvt_sim.log[-2].reversed is True
    again = await zvt_terminal.reverse(paid.receipt_no)
    assert again.status is PaymentStatus.DECLINED
    assert again.result_code == 0xB4  # already reversed


async def test_reversal_of_unknown_receipt_is_refused(zvt_terminal: ZvtTerminal) -> None:
    outcome = await zvt_terminal.reverse(4321)
    assert not outcome.approved
    assert outcome.result_code == 0xB5


async def test_end_of_day_totals_count_only_unreversed_approvals(
    zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator
) -> None:
    first = await zvt_terminal.pay(1000)
    await zvt_terminal.pay(2000)
    zvt_sim.script(Outcome.DECLINED)
    await zvt_terminal.pay(4000)
    assert first.receipt_no is not None
    await zvt_terminal.reverse(first.receipt_no)
    result = await zvt_terminal.end_of_day()
    assert result.ok
    assert result.total_minor == 2000
    assert result.totals is not None
    assert result.totals.count == 1
    assert result.totals.total_minor == 2000
    assert result.totals.receipt_no_start == first.receipt_no
    # Settled: a second end of day has nothing to add, and settled payments cannot be reversed.
    assert (await zvt_terminal.end_of_day()).total_minor == 0


async def test_status_enquiry_reports_ready(zvt_terminal: ZvtTerminal) -> None:
    status = await zvt_terminal.status()
    assert status.ready
    assert status.sw_version == "lobbypay-zvt-sim/1.0"
    assert status.message("ru") == "терминал готов"


async def test_last_transaction_is_none_on_a_fresh_terminal(zvt_terminal: ZvtTerminal) -> None:
    assert await zvt_terminal.last_transaction() is None


async def test_timeout_mid_transaction_is_outcome_unknown_and_recovery_reverses(
    zvt_endpoint: tuple[Endpoint, str], zvt_sim: TerminalSimulator
) -> None:
    _, url = zvt_endpoint
    timeouts = ZvtTimeouts(
        link_ack_timeout_s=0.3, byte_timeout_s=0.3, command_ack_timeout_s=1, progress_timeout_s=0.4
    )
    terminal = ZvtTerminal(url, timeouts=timeouts)
    await terminal.connect()
    zvt_sim.script(Outcome.TIMEOUT)
    with pytest.raises(ZvtTimeout) as info:
        await terminal.pay(3300)
    assert info.value.outcome_unknown is True
    assert info.value.stage == "running"
    await asyncio.sleep(0.4)  # the terminal stops hanging (silence_s)
    last = await terminal.last_transaction()
    assert last is not None
    assert last.approved
    assert last.amount_minor == 3300
    assert last.receipt_no == zvt_sim.log[-1].receipt_no
    assert last.receipt_no is not None
    reversal = await terminal.reverse(last.receipt_no)
    assert reversal.approved
    assert zvt_sim.log[-2].reversed
    await terminal.close()


async def test_full_pan_from_terminal_is_masked_and_never_logged(
    zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    zvt_sim.config.card_number = "4111111111111111"  # this terminal sends full card numbers
    outcome = await zvt_terminal.pay(100)
    last = await zvt_terminal.last_transaction()
    assert outcome.masked_pan == "411111******1111"
    assert last is not None
    assert last.masked_pan == "411111******1111"
    everything = caplog.text + repr(outcome) + repr(last)
    assert "4111111111111111" not in everything
    assert "41111111111" not in everything


async def test_payment_session_yields_statuses_in_order(zvt_terminal: ZvtTerminal) -> None:
    session = zvt_terminal.payment(4200)
    seen = [status async for status in session]
    assert all(isinstance(s, IntermediateStatus) for s in seen)
    assert seen[0].message("en") == "insert or tap card"
    assert (await session.outcome()).approved


async def test_receipt_as_text_block(zvt_terminal: ZvtTerminal, zvt_sim: TerminalSimulator) -> None:
    zvt_sim.config.receipt_as_text_block = True
    outcome = await zvt_terminal.pay(101)
    assert outcome.receipt_lines[0] == "LOBBYPAY SIMULATED TERMINAL"
    assert "AMOUNT 1.01 RUB" in outcome.receipt_lines


# ------------------------------------------------------------ serial faults (pty)


async def test_bad_crc_from_terminal_is_nakked_and_the_retransmission_succeeds(
    zvt_pty: tuple[PtyEndpoint, ZvtTerminal], zvt_sim: TerminalSimulator
) -> None:
    _, terminal = zvt_pty
    zvt_sim.inject(Fault.BAD_CRC, skip=1)
    outcome = await terminal.pay(100)
    assert outcome.approved
    assert terminal.link_counters.frames_rejected == 1
    assert zvt_sim.pending_faults() == 0


async def test_one_nak_from_terminal_makes_the_driver_retransmit(
    zvt_pty: tuple[PtyEndpoint, ZvtTerminal], zvt_sim: TerminalSimulator
) -> None:
    _, terminal = zvt_pty
    start = terminal.link_counters.frames_sent
    assert (await terminal.pay(100)).approved
    clean = terminal.link_counters.frames_sent - start
    zvt_sim.inject(Fault.NAK)
    start = terminal.link_counters.frames_sent
    assert (await terminal.pay(100)).approved
    # The same exchange plus exactly one retransmission of the Authorization.
    assert terminal.link_counters.frames_sent - start == clean + 1
    assert zvt_sim.pending_faults() == 0


async def test_repeated_nak_gives_up_with_frame_error_and_nothing_is_booked(
    zvt_pty: tuple[PtyEndpoint, ZvtTerminal], zvt_sim: TerminalSimulator
) -> None:
    _, terminal = zvt_pty
    zvt_sim.inject(Fault.NAK, count=4)
    with pytest.raises(ZvtFrameError) as info:
        await terminal.pay(100)
    assert info.value.outcome_unknown is True
    assert not zvt_sim.log
    assert await terminal.last_transaction() is None  # recovery: nothing happened


async def test_garbage_before_a_frame_is_skipped(
    zvt_pty: tuple[PtyEndpoint, ZvtTerminal], zvt_sim: TerminalSimulator
) -> None:
    _, terminal = zvt_pty
    zvt_sim.inject(Fault.GARBAGE, skip=2)
    assert (await terminal.pay(100)).approved
    assert terminal.link_counters.garbage_bytes > 0


async def test_disconnect_mid_payment_then_replug_and_recover(
    zvt_pty: tuple[PtyEndpoint, ZvtTerminal], zvt_sim: TerminalSimulator
) -> None:
    pty, terminal = zvt_pty
    zvt_sim.inject(Fault.DISCONNECT, skip=2)
    with pytest.raises(ZvtTemporaryDeviceError) as info:
        await terminal.pay(100)
    assert info.value.outcome_unknown is True
    await pty.replug()  # the adapter comes back; the symlink follows the new pty
    assert await terminal.last_transaction() is None
    assert (await terminal.pay(100)).approved


async def test_unplug_while_idle_raises_temporary_error_then_reconnects(
    zvt_pty: tuple[PtyEndpoint, ZvtTerminal],
) -> None:
    pty, terminal = zvt_pty
    await pty.unplug()
    with pytest.raises(ZvtTemporaryDeviceError):
        await terminal.status()
    await pty.plug()
    assert (await terminal.status()).ready


# ------------------------------------------------------------ TCP specifics


async def test_tcp_disconnect_mid_payment_then_reconnect_and_recover(
    zvt_tcp: tuple[TcpEndpoint, ZvtTerminal], zvt_sim: TerminalSimulator
) -> None:
    _, terminal = zvt_tcp
    zvt_sim.inject(Fault.DISCONNECT, skip=3)
    with pytest.raises(ZvtTemporaryDeviceError) as info:
        await terminal.pay(100)
    assert info.value.outcome_unknown is True
    assert await terminal.last_transaction() is None
    assert (await terminal.pay(100)).approved


async def test_tcp_garbage_apdu_is_answered_and_payment_completes(
    zvt_tcp: tuple[TcpEndpoint, ZvtTerminal], zvt_sim: TerminalSimulator
) -> None:
    _, terminal = zvt_tcp
    zvt_sim.inject(Fault.GARBAGE, skip=1)
    assert (await terminal.pay(100)).approved


async def test_serial_framing_over_a_socket_url(zvt_sim: TerminalSimulator) -> None:
    bridge = await zvt_sim.serve_tcp(framing="serial")
    assert bridge.url.startswith("socket://")
    async with ZvtTerminal(bridge.url, timeouts=FAST) as terminal:
        assert terminal.framing == "serial"
        assert (await terminal.pay(100)).approved
    await bridge.close()


async def test_silent_peer_times_out_waiting_for_the_acknowledgement() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(100):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    terminal = ZvtTerminal(f"tcp://127.0.0.1:{port}", timeouts=FAST)
    with pytest.raises(ZvtTimeout) as info:
        await terminal.status()
    assert info.value.stage == "await_ack"
    await terminal.close()
    server.close()
    await server.wait_closed()


async def test_connection_refused_is_a_temporary_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    terminal = ZvtTerminal(f"tcp://127.0.0.1:{port}", timeouts=FAST)
    with pytest.raises(ZvtTemporaryDeviceError):
        await terminal.connect()


# ------------------------------------------------------------ back-ends by name


async def test_simulator_backend_by_name_pays_over_its_own_pty() -> None:
    options = ZvtOptions(simulator_delay_s=0.0, timeouts=FAST)
    async with await open_terminal("zvt-simulator", options) as handle:
        assert handle.simulator is not None
        outcome = await handle.terminal.pay(2200)
        assert outcome.approved
        assert handle.simulator.log[-1].amount_minor == 2200


async def test_real_backend_by_name_talks_to_a_tcp_terminal(zvt_sim: TerminalSimulator) -> None:
    tcp = await zvt_sim.serve_tcp()
    async with await open_terminal("zvt", ZvtOptions(device=tcp.url, timeouts=FAST)) as handle:
        assert handle.simulator is None
        assert (await handle.terminal.status()).ready
    await tcp.close()


async def test_unknown_backend_name_is_a_usage_error() -> None:
    with pytest.raises(ZvtUsageError):
        await open_terminal("ingenico-magic", ZvtOptions())
    with pytest.raises(ZvtUsageError):
        await open_terminal("zvt", ZvtOptions())
