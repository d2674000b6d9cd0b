"""ZvtTerminal against a byte-scripted TCP terminal: contradictory answers, floods, bounds.

The scripted terminal answers the first command with a fixed list of APDUs,
each sent after the ECR acknowledged the previous one, exactly as a terminal
would; that makes odd but possible terminal behaviour reproducible.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from drivers.zvt.apdu import NEED_DATA, Apdu, ApduStream, encode_apdu
from drivers.zvt.client import (
    PROTOCOL_ERRORS_MAX,
    RECEIPT_LINES_MAX,
    STATUS_QUEUE_MAX,
    PaymentSession,
    PaymentStatus,
    ZvtTerminal,
    _CommandRun,
)
from drivers.zvt.errors import ZvtProtocolError, ZvtUsageError
from drivers.zvt.messages import (
    Ack,
    Completion,
    IntermediateStatus,
    StatusInformation,
    TerminalAbort,
)
from drivers.zvt.session import ZvtTimeouts

pytestmark = pytest.mark.timeout(30)

FAST = ZvtTimeouts(command_ack_timeout_s=1, progress_timeout_s=1, completion_timeout_s=1)


def raw(message: object) -> bytes:
    return encode_apdu(message.to_apdu())  # type: ignore[attr-defined]


APPROVED_100 = raw(StatusInformation(result_code=0, amount_minor=100, currency="RUB", receipt_no=1))
ACK = raw(Ack())

Script = list[bytes]


async def _next_apdu(reader: asyncio.StreamReader, stream: ApduStream) -> Apdu | None:
    while True:
        apdu = stream.next_apdu()
        if apdu is not NEED_DATA:
            assert isinstance(apdu, Apdu)
            return apdu
        data = await asyncio.wait_for(reader.read(4096), timeout=5)
        if not data:
            return None
        stream.receive_data(data)


@pytest.fixture
async def zvt_scripted() -> AsyncIterator[Callable[[Script], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            stream = ApduStream()
            if await _next_apdu(reader, stream) is None:  # the command
                return
            for chunk in script:
                writer.write(chunk)
                await writer.drain()
                if chunk[:1] not in (b"\x80", b"\x84"):
                    reply = await _next_apdu(reader, stream)  # the ECR's answer
                    if reply is None:
                        return
            await asyncio.sleep(0.2)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def pay(url: str, amount: int = 100) -> object:
    terminal = ZvtTerminal(url, timeouts=FAST)
    try:
        return await terminal.pay(amount)
    finally:
        await terminal.close()


async def test_scripted_approval_is_approved(
    zvt_scripted: Callable[[Script], Awaitable[str]],
) -> None:
    url = await zvt_scripted([ACK, APPROVED_100, raw(Completion())])
    outcome = await pay(url)
    assert outcome.status is PaymentStatus.APPROVED  # type: ignore[attr-defined]


async def test_missing_command_ack_counts_as_implicit_acceptance(
    zvt_scripted: Callable[[Script], Awaitable[str]],
) -> None:
    url = await zvt_scripted([raw(IntermediateStatus(code=0x0A)), APPROVED_100, raw(Completion())])
    outcome = await pay(url)
    assert outcome.approved  # type: ignore[attr-defined]


async def test_approved_then_aborted_is_outcome_unknown(
    zvt_scripted: Callable[[Script], Awaitable[str]],
) -> None:
    url = await zvt_scripted([ACK, APPROVED_100, raw(TerminalAbort(result_code=0x6C))])
    with pytest.raises(ZvtProtocolError) as info:
        await pay(url)
    assert info.value.outcome_unknown is True


async def test_completion_without_status_information_is_outcome_unknown(
    zvt_scripted: Callable[[Script], Awaitable[str]],
) -> None:
    url = await zvt_scripted([ACK, raw(Completion())])
    with pytest.raises(ZvtProtocolError) as info:
        await pay(url)
    assert info.value.outcome_unknown is True


async def test_approval_of_a_different_amount_is_outcome_unknown(
    zvt_scripted: Callable[[Script], Awaitable[str]],
) -> None:
    url = await zvt_scripted([ACK, APPROVED_100, raw(Completion())])
    with pytest.raises(ZvtProtocolError) as info:
        await pay(url, amount=200)
    assert info.value.outcome_unknown is True


async def test_malformed_status_then_abort_is_declined_with_the_abort_code(
    zvt_scripted: Callable[[Script], Awaitable[str]],
) -> None:
    bad_amount = bytes.fromhex("04 0F 09 27 00 04 00 00 00 00 1A 00")
    url = await zvt_scripted([ACK, bad_amount, raw(TerminalAbort(result_code=0x9A))])
    outcome = await pay(url)
    assert outcome.status is PaymentStatus.DECLINED  # type: ignore[attr-defined]
    assert outcome.result_code == 0x9A  # type: ignore[attr-defined]


async def test_flood_of_unknown_commands_gives_up_at_the_bound(
    zvt_scripted: Callable[[Script], Awaitable[str]],
) -> None:
    unknown = bytes.fromhex("0F 99 00")
    url = await zvt_scripted([ACK] + [unknown] * (PROTOCOL_ERRORS_MAX + 1))
    with pytest.raises(ZvtProtocolError) as info:
        await pay(url)
    assert info.value.outcome_unknown is True


async def test_unknown_commands_below_the_bound_are_tolerated(
    zvt_scripted: Callable[[Script], Awaitable[str]],
) -> None:
    unknown = bytes.fromhex("0F 99 00")
    url = await zvt_scripted(
        [ACK] + [unknown] * PROTOCOL_ERRORS_MAX + [APPROVED_100, raw(Completion())]
    )
    outcome = await pay(url)
    assert outcome.approved  # type: ignore[attr-defined]


def test_receipt_lines_are_bounded() -> None:
    run = _CommandRun()
    run.add_lines([f"line {i}" for i in range(RECEIPT_LINES_MAX - 1)])
    run.add_lines(["last", "dropped"])
    assert len(run.lines) == RECEIPT_LINES_MAX
    assert run.lines[-1] == "last"


async def test_payment_session_status_queue_drops_the_oldest_at_the_bound() -> None:
    session = PaymentSession.__new__(PaymentSession)
    session._queue = asyncio.Queue(maxsize=STATUS_QUEUE_MAX)
    for code in range(STATUS_QUEUE_MAX + 3):
        session._push(IntermediateStatus(code=code))
    first = await session.__anext__()
    assert first.code == 3
    assert session._queue.qsize() == STATUS_QUEUE_MAX - 1


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(ZvtUsageError):
        ZvtTerminal("tcp://127.0.0.1:1", password=1_000_000)
    with pytest.raises(ZvtUsageError):
        ZvtTerminal("tcp://127.0.0.1:1", currency="XXX")
