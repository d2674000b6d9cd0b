"""The agent's decision table: central's answer bytes in, the next move out (pure)."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_sync import protocol
from central_sync.agent.decide import (
    REFUSAL_ACTIONS,
    Action,
    Decision,
    decide,
    parse_retry_after,
)
from central_sync.central.synthetic import synthetic_entries
from central_sync.protocol import OutgoingBatch, Refusal, RefusalKind
from firmware_config.identity import Identity

CENTRAL = Identity(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"central").digest()))
TERMINAL = Identity(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"terminal").digest()))
STRANGER = Identity(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"stranger").digest()))
ENTRIES = synthetic_entries(5, 3)
SENT: OutgoingBatch = protocol.build_batch(
    ENTRIES, terminal_id=TERMINAL.terminal_id, signer=TERMINAL, entries_max=100, bytes_max=1 << 20
)


def run(status: int, body: bytes, retry_after: str | None = None) -> Decision:
    return decide(
        status,
        body,
        sent=SENT,
        central_public_key=CENTRAL.public_key_bytes,
        terminal_id=TERMINAL.terminal_id,
        retry_after=retry_after,
    )


def refusal(
    kind: RefusalKind,
    *,
    signer: Identity = CENTRAL,
    request: bytes | None = SENT.data,
    terminal_id: str | None = None,
) -> bytes:
    return protocol.build_refusal(
        Refusal(
            kind=kind,
            terminal_id=terminal_id or TERMINAL.terminal_id,
            reason=kind.value,
            message="because",
            central_time_ms=1,
            expected_seq=2 if kind is RefusalKind.GAP else None,
            request_sha256=None if request is None else protocol.request_digest(request),
        ),
        signer,
    )


def test_signed_ack_decides_ack_with_the_verified_values() -> None:
    ack = protocol.build_ack(TERMINAL.terminal_id, SENT.to_seq, SENT.head_hash, 9, CENTRAL)
    decision = run(200, ack)
    assert decision.action is Action.ACK
    assert decision.ack is not None
    assert decision.ack.acked_seq == SENT.to_seq
    assert decision.ack.head_hash == SENT.head_hash


@pytest.mark.parametrize("kind", list(RefusalKind))
def test_each_signed_refusal_maps_to_its_row_of_the_table(kind: RefusalKind) -> None:
    decision = run(400, refusal(kind), retry_after="7")
    assert decision.action is REFUSAL_ACTIONS[kind]
    assert decision.refusal is not None
    assert decision.refusal.kind is kind
    expected_stop = kind in {
        RefusalKind.REVOKED,
        RefusalKind.QUARANTINED,
        RefusalKind.UNKNOWN_TERMINAL,
        RefusalKind.REJECTED,
    }
    assert (decision.action is Action.STOP) == expected_stop
    if kind is RefusalKind.GAP:
        assert decision.resend_from == 2
    if kind is RefusalKind.RETRY_LATER:
        assert decision.retry_after_s == 7.0


def test_refusal_that_names_no_request_is_still_trusted() -> None:
    decision = run(503, refusal(RefusalKind.RETRY_LATER, request=None), retry_after="5")
    assert decision.action is Action.BACK_OFF
    assert decision.reason == "retry-later"


@pytest.mark.parametrize(
    "body",
    [
        protocol.build_ack(TERMINAL.terminal_id, 3, b"\x01" * 32, 9, STRANGER),
        protocol.build_ack(STRANGER.terminal_id, 3, b"\x01" * 32, 9, CENTRAL),
        refusal(RefusalKind.REVOKED, signer=STRANGER),
        refusal(RefusalKind.QUARANTINED, request=b"other bytes"),
        refusal(RefusalKind.REVOKED, terminal_id=STRANGER.terminal_id),
        b'{"error":"revoked","retryable":false}',
        b"",
        b"\xff\xfe",
    ],
    ids=[
        "ack-wrong-key",
        "ack-other-terminal",
        "revoked-wrong-key",
        "refusal-for-other-bytes",
        "refusal-other-terminal",
        "unsigned-json",
        "empty",
        "not-utf8",
    ],
)
def test_unverifiable_answer_never_acks_or_stops(body: bytes) -> None:
    decision = run(403, body)
    assert decision.action is Action.BACK_OFF
    assert decision.reason == "untrusted-answer"


def test_unsigned_server_error_backs_off_with_retry_after() -> None:
    body = json.dumps({"error": "timeout", "retryable": True}).encode()
    decision = run(503, body, retry_after="12")
    assert decision.action is Action.BACK_OFF
    assert decision.reason == "central-unavailable"
    assert decision.retry_after_s == 12.0


def test_unsigned_413_shrinks_the_batch() -> None:
    decision = run(413, b"<html>Request Entity Too Large</html>")
    assert decision.action is Action.SHRINK
    assert decision.refusal is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("999999", 3600.0),
        (None, None),
        ("-1", None),
        ("1.5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("٣", None),
        ("9" * 20, None),
    ],
)
def test_retry_after_is_parsed_as_bounded_delay_seconds(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header) == seconds


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.integers(100, 599), body=st.binary(max_size=600))
def test_arbitrary_bytes_from_the_network_only_ever_back_off_or_shrink(
    status: int, body: bytes
) -> None:
    decision = run(status, body)
    assert decision.action in (Action.BACK_OFF, Action.SHRINK)


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_bit_flip_in_a_signed_revocation_is_not_trusted(index: int, bit: int) -> None:
    body = bytearray(refusal(RefusalKind.REVOKED))
    body[index % len(body)] ^= 1 << bit
    decision = run(403, bytes(body))
    assert decision.action is not Action.STOP
