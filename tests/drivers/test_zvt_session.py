"""The ECR session state machine (``ZvtConnection``), sans-I/O, against an in-memory terminal."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.zvt.apdu import NEED_DATA, Apdu, decode_apdu, encode_apdu
from drivers.zvt.errors import ZvtApduError, ZvtError, ZvtProtocolError, ZvtUsageError
from drivers.zvt.link import SerialLink
from drivers.zvt.messages import (
    AbortRequest,
    Ack,
    Authorization,
    Completion,
    IntermediateStatus,
    Nack,
    PrintLine,
    StatusEnquiry,
    StatusInformation,
    TerminalAbort,
    decode_ecr_command,
)
from drivers.zvt.session import (
    TIMEOUT_BY_STATE,
    TRANSITIONS,
    Input,
    SessionState,
    ZvtConnection,
    ZvtTimeouts,
)

MESSAGES: dict[Input, object] = {
    Input.ACK: Ack(),
    Input.NACK: Nack(error_code=0x9C),
    Input.INTERMEDIATE: IntermediateStatus(code=0x0A, timeout_s=0),
    Input.STATUS: StatusInformation(result_code=0, amount_minor=100, currency="RUB"),
    Input.PRINT: PrintLine(text="hello"),
    Input.COMPLETION: Completion(status_byte=0),
    Input.ABORT: TerminalAbort(result_code=0x6C),
}


def apdu_bytes(message: object) -> bytes:
    return encode_apdu(message.to_apdu())  # type: ignore[attr-defined]


def events(conn: ZvtConnection) -> list[object]:
    out = []
    for _ in range(100):
        ev = conn.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)
    raise AssertionError("no NEED_DATA")


def replies(conn: ZvtConnection) -> list[bytes]:
    """APDUs the ECR wrote (TCP framing: the bytes are APDUs back to back)."""
    data = conn.data_to_send()
    out = []
    while data:
        length = 3 + data[2]
        out.append(data[:length])
        data = data[length:]
    return out


def conn_in(state: SessionState) -> ZvtConnection:
    conn = ZvtConnection(framing="tcp")
    if state is SessionState.IDLE:
        return conn
    conn.send(Authorization(amount_minor=100))
    if state is SessionState.AWAIT_ACK:
        return conn
    conn.receive_data(apdu_bytes(Ack()))
    events(conn)
    if state is SessionState.RUNNING:
        conn.data_to_send()
        return conn
    conn.receive_data(apdu_bytes(MESSAGES[Input.STATUS]))
    events(conn)
    conn.data_to_send()
    assert conn.state is SessionState.GOT_STATUS
    return conn


ALL_PAIRS = list(itertools.product(list(SessionState), list(Input)))


@pytest.mark.parametrize(("state", "kind"), [p for p in ALL_PAIRS if p in TRANSITIONS])
def test_table_transition_is_taken(state: SessionState, kind: Input) -> None:
    conn = conn_in(state)
    conn.receive_data(apdu_bytes(MESSAGES[kind]))
    got = events(conn)
    assert got == [MESSAGES[kind]]
    assert conn.state is TRANSITIONS[(state, kind)]
    answered = replies(conn)
    if kind in (Input.ACK, Input.NACK):
        assert answered == []
    else:
        assert answered == [bytes.fromhex("80 00 00")]


@pytest.mark.parametrize(("state", "kind"), [p for p in ALL_PAIRS if p not in TRANSITIONS])
def test_message_missing_from_table_raises_protocol_error(state: SessionState, kind: Input) -> None:
    conn = conn_in(state)
    conn.receive_data(apdu_bytes(MESSAGES[kind]))
    with pytest.raises(ZvtProtocolError):
        conn.next_event()
    assert conn.state is state
    # A terminal command is still answered so the terminal is not left waiting.
    expected = [] if kind in (Input.ACK, Input.NACK) else [bytes.fromhex("80 00 00")]
    assert replies(conn) == expected


def test_full_payment_over_serial_framing_acks_every_frame() -> None:
    conn = ZvtConnection(framing="serial")
    pt = SerialLink()
    pt.receive_data(conn.send(Authorization(amount_minor=12345, currency="RUB")))
    apdu = pt.next_apdu()
    assert isinstance(apdu, Apdu)
    assert decode_ecr_command(apdu) == Authorization(amount_minor=12345, currency="RUB")
    script = [
        Ack(),
        IntermediateStatus(code=0x0A, timeout_s=0),
        StatusInformation(result_code=0, amount_minor=12345, currency="RUB", receipt_no=7),
        PrintLine(attribute=0x80, text="APPROVED"),
        Completion(status_byte=0),
    ]
    seen: list[object] = []
    for message in script:
        pt.send_apdu(apdu_bytes(message))
        # Terminal → ECR, ECR answers with link ACK (+ 80 00 frame), terminal ACKs that.
        for _ in range(4):
            conn.receive_data(pt.data_to_send())
            seen += events(conn)
            pt.receive_data(conn.data_to_send())
            while (got := pt.next_apdu()) is not NEED_DATA:
                assert isinstance(got, Apdu)
                assert encode_apdu(got) == bytes.fromhex("80 00 00")
    assert seen == script
    assert conn.state is SessionState.IDLE
    assert not conn.awaiting_link_ack
    assert conn.command is None


def test_abort_request_while_running_is_answered_and_payment_ends_with_abort() -> None:
    conn = conn_in(SessionState.RUNNING)
    out = conn.send(AbortRequest())
    assert out == bytes.fromhex("06 B0 00")
    assert conn.abort_pending
    conn.receive_data(apdu_bytes(Ack()) + apdu_bytes(TerminalAbort(result_code=0x6C)))
    assert events(conn) == [Ack(), TerminalAbort(result_code=0x6C)]
    assert conn.state is SessionState.IDLE
    assert not conn.abort_pending


def test_abort_request_refused_keeps_the_transaction_running() -> None:
    conn = conn_in(SessionState.RUNNING)
    conn.send(AbortRequest())
    conn.receive_data(apdu_bytes(Nack(error_code=0x83)))
    assert events(conn) == [Nack(error_code=0x83)]
    assert conn.state is SessionState.RUNNING


def test_abort_request_before_the_command_ack_is_ordered() -> None:
    conn = conn_in(SessionState.AWAIT_ACK)
    conn.send(AbortRequest())
    conn.receive_data(apdu_bytes(Ack()) + apdu_bytes(Ack()))
    assert events(conn) == [Ack(), Ack()]
    assert conn.state is SessionState.RUNNING
    assert not conn.abort_pending


def test_abort_when_idle_is_a_usage_error() -> None:
    with pytest.raises(ZvtUsageError):
        ZvtConnection().send(AbortRequest())


def test_second_command_while_busy_is_a_usage_error() -> None:
    conn = conn_in(SessionState.RUNNING)
    with pytest.raises(ZvtUsageError):
        conn.send(StatusEnquiry())


def test_unknown_command_is_answered_84_83_and_raises() -> None:
    conn = conn_in(SessionState.RUNNING)
    conn.receive_data(bytes.fromhex("0F 99 00"))
    with pytest.raises(ZvtProtocolError):
        conn.next_event()
    assert replies(conn) == [bytes.fromhex("84 83 00")]
    assert conn.state is SessionState.RUNNING


def test_malformed_status_information_is_answered_84_9a_and_raises() -> None:
    conn = conn_in(SessionState.RUNNING)
    conn.receive_data(bytes.fromhex("04 0F 03 04 00 00"))
    with pytest.raises(ZvtApduError):
        conn.next_event()
    assert replies(conn) == [bytes.fromhex("84 9A 00")]
    assert conn.state is SessionState.RUNNING


def test_timeout_per_state_comes_from_the_table() -> None:
    t = ZvtTimeouts(command_ack_timeout_s=1, progress_timeout_s=2, completion_timeout_s=3)
    assert conn_in(SessionState.IDLE).timeout_s(t) is None
    assert conn_in(SessionState.AWAIT_ACK).timeout_s(t) == 1
    assert conn_in(SessionState.RUNNING).timeout_s(t) == 2
    assert conn_in(SessionState.GOT_STATUS).timeout_s(t) == 3
    assert set(TIMEOUT_BY_STATE) == {
        SessionState.AWAIT_ACK,
        SessionState.RUNNING,
        SessionState.GOT_STATUS,
    }


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ZvtUsageError):
        ZvtTimeouts(progress_timeout_s=0)


def test_reset_returns_to_idle() -> None:
    conn = conn_in(SessionState.GOT_STATUS)
    conn.reset()
    assert conn.state is SessionState.IDLE
    assert conn.command is None


@settings(max_examples=300, deadline=None)
@given(
    framing=st.sampled_from(["serial", "tcp"]),
    chunks=st.lists(st.binary(max_size=50), max_size=8),
)
def test_connection_fuzz_raises_only_typed_errors_and_terminates(
    framing: str, chunks: list[bytes]
) -> None:
    conn = ZvtConnection(framing=framing)  # type: ignore[arg-type]
    conn.send(Authorization(amount_minor=1))
    for chunk in chunks:
        conn.receive_data(chunk)
        for _ in range(200):
            try:
                ev = conn.next_event()
            except ZvtError:
                if framing == "tcp":
                    break
                continue
            if ev is NEED_DATA:
                break
        else:
            raise AssertionError("next_event never returned NEED_DATA")
        conn.data_to_send()


def test_decoded_reply_is_a_positive_ack() -> None:
    conn = conn_in(SessionState.RUNNING)
    conn.receive_data(apdu_bytes(IntermediateStatus(code=0x17)))
    events(conn)
    assert decode_apdu(replies(conn)[0]) == Apdu(cls=0x80, instr=0x00)
