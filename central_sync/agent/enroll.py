"""Enrolling a terminal with central: the client side of ``POST /v1/enroll``.

DESIGN.md, "The central ledger service" (enrollment). The terminal signs an
enrollment request with the very key it enrolls (proof of possession) and a
single-use registration code from an operator; central answers with a signed
enrollment, which is checked against central's pinned key before the terminal
believes it is enrolled.
"""

from __future__ import annotations

import json
import logging

from central_sync import protocol
from central_sync.agent.core import ANSWER_BYTES_MAX, TerminalSigner
from central_sync.agent.errors import SyncAgentError
from central_sync.agent.timing import SYSTEM_CLOCK, Clock
from central_sync.agent.transport import Transport

logger = logging.getLogger(__name__)

ENROLL_PATH = "/v1/enroll"
ENROLL_TIMEOUT_S = 30.0


class EnrollmentError(SyncAgentError):
    """Central refused the enrollment, or its answer did not verify."""

    reason = "enrollment"

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


async def enroll(
    transport: Transport,
    signer: TerminalSigner,
    *,
    public_key: bytes,
    registration_code: str,
    location: str,
    label: str,
    central_public_key: bytes,
    clock: Clock = SYSTEM_CLOCK,
    timeout_s: float = ENROLL_TIMEOUT_S,
) -> protocol.Enrollment:
    """Enroll ``signer``'s key with central; return central's verified answer.

    See :func:`enroll_signed`, which also returns the answer's signed bytes.
    """
    enrollment, _signed = await enroll_signed(
        transport,
        signer,
        public_key=public_key,
        registration_code=registration_code,
        location=location,
        label=label,
        central_public_key=central_public_key,
        clock=clock,
        timeout_s=timeout_s,
    )
    return enrollment


async def enroll_signed(
    transport: Transport,
    signer: TerminalSigner,
    *,
    public_key: bytes,
    registration_code: str,
    location: str,
    label: str,
    central_public_key: bytes,
    clock: Clock = SYSTEM_CLOCK,
    timeout_s: float = ENROLL_TIMEOUT_S,
) -> tuple[protocol.Enrollment, bytes]:
    """Enroll; return central's verified answer and its signed bytes (to keep as proof).

    Raises :class:`EnrollmentError` (``retryable`` says whether trying again can
    help: a used or expired code cannot), :class:`~central_sync.agent.errors.TransportError`
    when central cannot be reached, :class:`protocol.BuildError` for a malformed code.
    """
    request = protocol.EnrollRequest(
        terminal_id=signer.terminal_id,
        public_key=public_key,
        registration_code=registration_code,
        location=location,
        label=label,
        created_ms=clock.time_ms(),
    )
    data = protocol.build_enroll_request(request, signer)
    response = await transport.request(
        "POST", ENROLL_PATH, data, timeout_s=timeout_s, body_bytes_max=ANSWER_BYTES_MAX
    )
    if response.status != 200:
        message = f"central answered HTTP {response.status}"
        try:
            answer = json.loads(response.body)
            if isinstance(answer, dict) and isinstance(answer.get("message"), str):
                message = f"{message}: {answer['message'][:300]}"
        except (ValueError, UnicodeDecodeError):
            pass
        raise EnrollmentError(message, retryable=response.status >= 500 or response.status == 429)
    try:
        enrollment = protocol.verify_enrollment(
            response.body, central_public_key, signer.terminal_id
        )
    except protocol.SyncProtocolError as exc:
        raise EnrollmentError(
            f"central's answer did not verify against the pinned key ({exc.reason})",
            retryable=True,
        ) from None
    logger.info(
        "sync_enrolled terminal_id=%s location=%s", enrollment.terminal_id, enrollment.location
    )
    return enrollment, response.body
