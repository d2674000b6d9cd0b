"""Operator and terminal actions shared by the HTTP handlers and the CLI."""

from __future__ import annotations

import hashlib
import secrets

from central_sync import protocol
from central_sync.central.errors import BadRequestError, ConflictError, NotFoundError
from central_sync.central.publish import publish_revocations
from central_sync.central.storage import Storage, TerminalRecord, TerminalState

# Crockford-like alphabet: no 0/O, 1/I/L, so a code survives being read aloud.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_GROUPS = 4
CODE_GROUP_CHARS = 4
LOCATION_CHARS_MAX = 128
REASON_CHARS_MAX = 500


def code_hash(code: str) -> str:
    """What central stores of a registration code (never the code itself)."""
    return hashlib.sha256(code.strip().upper().encode("utf-8")).hexdigest()


def new_registration_code() -> str:
    """A fresh code like ``K7QM-2XHD-PW9A-TR4E`` (about 79 bits)."""
    groups = (
        "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_CHARS))
        for _ in range(CODE_GROUPS)
    )
    return "-".join(groups)


def _check_location(location: str) -> str:
    location = location.strip()
    if not location or len(location) > LOCATION_CHARS_MAX or any(c.isspace() for c in location):
        raise BadRequestError(f"location must be 1-{LOCATION_CHARS_MAX} characters without spaces")
    return location


async def create_registration_code(
    storage: Storage, *, location: str, label: str | None, valid_s: int, now_ms: int, actor: str
) -> tuple[str, int]:
    """Make and store a single-use code for enrolling one terminal: (code, expires_ms)."""
    if valid_s <= 0:
        raise BadRequestError("a registration code must be valid for a positive time")
    location = _check_location(location)
    code = new_registration_code()
    expires_ms = now_ms + valid_s * 1000
    await storage.add_registration_code(
        code_hash=code_hash(code),
        location=location,
        label=label,
        created_ms=now_ms,
        expires_ms=expires_ms,
        actor=actor,
    )
    return code, expires_ms


async def enroll_terminal(
    storage: Storage, signer: protocol.Signer, request: bytes, *, now_ms: int
) -> tuple[TerminalRecord, bytes]:
    """Check a signed enrollment request and enroll: (record, signed enrollment answer)."""
    enroll_request = protocol.verify_enroll_request(request)
    record = await storage.enroll(
        terminal_id=enroll_request.terminal_id,
        public_key=enroll_request.public_key,
        code_hash=code_hash(enroll_request.registration_code),
        location=_check_location(enroll_request.location),
        label=enroll_request.label,
        now_ms=now_ms,
    )
    answer = protocol.build_enrollment(
        protocol.Enrollment(
            terminal_id=record.terminal_id,
            location=record.location,
            label=record.label,
            enrolled_ms=record.enrolled_ms,
        ),
        signer,
    )
    return record, answer


async def revoke_terminal(
    storage: Storage,
    signer: protocol.Signer,
    terminal_id: str,
    *,
    reason: str,
    actor: str,
    now_ms: int,
    revocations_valid_s: int,
) -> TerminalRecord:
    """Revoke a terminal (its batches are refused from now on) and re-sign the list."""
    reason = reason.strip()[:REASON_CHARS_MAX] or "revoked by operator"
    current = await storage.get_terminal(terminal_id)
    if current is None:
        raise NotFoundError(f"no terminal {terminal_id}")
    if current.state is TerminalState.REVOKED:
        raise ConflictError(f"terminal {terminal_id} is already revoked")
    record = await storage.set_terminal_state(
        terminal_id, TerminalState.REVOKED, reason=reason, actor=actor, now_ms=now_ms
    )
    await publish_revocations(storage, signer, now_ms=now_ms, valid_s=revocations_valid_s)
    return record


async def reinstate_terminal(
    storage: Storage, terminal_id: str, *, reason: str, actor: str, now_ms: int
) -> TerminalRecord:
    """Lift a quarantine after an operator has investigated the fork (audited).

    A revoked terminal cannot be reinstated: its key may be in other hands; it
    must be provisioned with a new key and enrolled again.
    """
    current = await storage.get_terminal(terminal_id)
    if current is None:
        raise NotFoundError(f"no terminal {terminal_id}")
    if current.state is not TerminalState.QUARANTINED:
        raise ConflictError(f"terminal {terminal_id} is {current.state}, not quarantined")
    return await storage.set_terminal_state(
        terminal_id,
        TerminalState.ENROLLED,
        reason=reason.strip()[:REASON_CHARS_MAX] or "reinstated by operator",
        actor=actor,
        now_ms=now_ms,
    )
