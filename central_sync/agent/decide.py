"""What the agent does with central's answer to a batch: a pure decision table.

DESIGN.md, "The signed sync protocol" (the agent distinguishes retryable and
final answers; it marks entries acknowledged only after verifying central's
ack). No I/O here: bytes and a status in, a :class:`Decision` out.

Theory of operation
-------------------
The answer is first read with :func:`central_sync.protocol.parse_answer`, which
checks central's signature against the key pinned at provisioning, that the
answer is addressed to this terminal, and (for refusals) that it names the
digest of the very bytes that were sent. Only a verified answer may change what
the agent believes; anything else is treated as if the network had lost it.

=================================================  =========  =======================
answer                                             action     what the agent does
=================================================  =========  =======================
signed ack                                         ACK        mark acknowledged after
                                                              checking the head hash
signed refusal ``gap`` (expected_seq)              RESEND     next batch from there
signed refusal ``too-large``                       SHRINK     halve the batch, resend
signed refusal ``retry-later``                     BACK_OFF   wait (>= Retry-After)
signed refusal ``revoked`` / ``quarantined`` /     STOP       stop uploading, report
``unknown-terminal`` / ``rejected``                           loudly, keep the journal
unsigned or unverifiable HTTP 413                   SHRINK     (a proxy's body limit;
                                                              sending less is safe)
unsigned or unverifiable answer, other status      BACK_OFF   never trusted to stop a
                                                              terminal or ack entries
=================================================  =========  =======================

A forged "revoked" therefore cannot stop a terminal, and a forged ack cannot
make it forget entries: both are just failed attempts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from central_sync import protocol
from central_sync.protocol import Ack, OutgoingBatch, Refusal, RefusalKind

RETRY_AFTER_S_MAX = 3600


class Action(enum.Enum):
    """The agent's next move after an answer (see the module table)."""

    ACK = "ack"
    RESEND = "resend"
    SHRINK = "shrink"
    BACK_OFF = "back-off"
    STOP = "stop"


REFUSAL_ACTIONS: Mapping[RefusalKind, Action] = {
    RefusalKind.GAP: Action.RESEND,
    RefusalKind.TOO_LARGE: Action.SHRINK,
    RefusalKind.RETRY_LATER: Action.BACK_OFF,
    RefusalKind.REVOKED: Action.STOP,
    RefusalKind.QUARANTINED: Action.STOP,
    RefusalKind.UNKNOWN_TERMINAL: Action.STOP,
    RefusalKind.REJECTED: Action.STOP,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One row of the decision table, with what the agent needs to act on it."""

    action: Action
    reason: str
    """A stable code for logs, the status file and heartbeats."""
    message: str
    ack: Ack | None = None
    refusal: Refusal | None = None
    resend_from: int | None = None
    retry_after_s: float | None = None

    def __post_init__(self) -> None:
        assert (self.ack is not None) == (self.action is Action.ACK)
        assert (self.resend_from is not None) == (self.action is Action.RESEND)
        assert self.action is not Action.STOP or self.refusal is not None
        assert self.resend_from is None or self.resend_from >= 1


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (RFC 9110 section 10.2.3, delay-seconds form).

    The HTTP-date form and anything malformed are ignored (None): the agent's
    own backoff applies. Values are capped at an hour.
    """
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        return None
    return float(min(int(text), RETRY_AFTER_S_MAX))


def decide(
    status: int,
    body: bytes,
    *,
    sent: OutgoingBatch,
    central_public_key: bytes,
    terminal_id: str,
    retry_after: str | None = None,
) -> Decision:
    """Classify central's answer to the batch ``sent`` (see the module table)."""
    try:
        answer = protocol.parse_answer(
            body, central_public_key=central_public_key, terminal_id=terminal_id, request=sent.data
        )
    except protocol.SyncProtocolError as exc:
        if status == 413:
            # A proxy's body limit, or central refusing by Content-Length before it
            # read (and could name) the request: sending less is safe either way.
            return Decision(
                action=Action.SHRINK,
                reason="too-large",
                message=f"HTTP 413 answer did not verify ({exc.reason}: {exc})",
            )
        if status >= 500 or status == 429:
            reason, what = "central-unavailable", f"central answered HTTP {status}"
        else:
            reason, what = "untrusted-answer", f"HTTP {status} answer did not verify"
        return Decision(
            action=Action.BACK_OFF,
            reason=reason,
            message=f"{what} ({exc.reason}: {exc})",
            retry_after_s=parse_retry_after(retry_after),
        )
    if isinstance(answer, Ack):
        return Decision(
            action=Action.ACK,
            reason="ack",
            message=f"central holds entries through {answer.acked_seq}",
            ack=answer,
        )
    action = REFUSAL_ACTIONS[answer.kind]
    # Our own invariant: the protocol's retryable flag and this table agree.
    assert answer.retryable == (action is not Action.STOP)
    return Decision(
        action=action,
        reason=answer.kind.value,
        message=f"{answer.reason}: {answer.message}",
        refusal=answer,
        resend_from=answer.expected_seq if action is Action.RESEND else None,
        retry_after_s=parse_retry_after(retry_after) if action is Action.BACK_OFF else None,
    )
