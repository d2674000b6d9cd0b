"""Signed lifecycle messages: re-keying and decommissioning a terminal (issue 8).

Theory of operation
-------------------
Both requests are :mod:`central_sync.signing` envelopes signed by the terminal's
*current* (enrolled) key, so only the holder of that key can change what central
believes about the terminal; central answers with an envelope signed by its own
key, which the terminal checks against the key it pinned at provisioning before
it acts (swaps its key, or deletes it).

``rekey-request`` (terminal -> central), signed by the old key::

    {"terminal_id": <old id>, "new_public_key": <hex>, "created_ms": <int>,
     "possession_sig": <hex>}

``possession_sig`` is the *new* key's signature over the signing input of a
``rekey-possession`` message with body ``{"terminal_id", "new_public_key",
"created_ms"}``: proof that whoever asks also holds the new private key, so a
terminal cannot be re-keyed to someone else's public key.

``decommission-request`` (terminal -> central), signed by the key::

    {"terminal_id", "created_ms", "reason", "unsent_entries", "forced"}

``lifecycle-answer`` (central -> terminal), signed by central::

    {"action": "rekey" | "decommission", "terminal_id": <id asked about>,
     "new_terminal_id": <id or null>, "central_time_ms": <int>}

Terminal ids derive from keys (``firmware_config.identity``), so a re-key gives
the terminal a new id; central keeps the same terminal record (its chain head,
its entries and payments) under the new id and retires the old id for good.
The journal holds no terminal id, so its chain simply continues.

Every parser raises a :class:`central_sync.protocol.SyncProtocolError` subclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from central_sync import signing

# The protocol's own field checks (the _names), so both message families read fields alike.
from central_sync.protocol import (
    TERMINAL_ID_PATTERN,
    MalformedError,
    SignatureError,
    Signer,
    WrongTerminalError,
    _str,
)
from central_sync.protocol import _hash_from_hex as _bytes_from_hex
from central_sync.protocol import _int as _bounded_int
from firmware_config.identity import terminal_id_from_public_key

REKEY_REQUEST_TYPE = "rekey-request"
REKEY_POSSESSION_TYPE = "rekey-possession"
DECOMMISSION_REQUEST_TYPE = "decommission-request"
LIFECYCLE_ANSWER_TYPE = "lifecycle-answer"

MESSAGE_BYTES_MAX = 16 * 1024
REASON_CHARS_MAX = 200
INT_MAX = 2**53

Action = Literal["rekey", "decommission"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RekeyRequest:
    """A terminal asks central to replace its enrolled key with ``new_public_key``."""

    terminal_id: str
    new_public_key: bytes
    created_ms: int

    def __post_init__(self) -> None:
        assert len(self.new_public_key) == signing.PUBLIC_KEY_BYTES

    @property
    def new_terminal_id(self) -> str:
        return terminal_id_from_public_key(self.new_public_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecommissionRequest:
    """A terminal tells central it is being taken out of service."""

    terminal_id: str
    created_ms: int
    reason: str
    unsent_entries: int
    """Journal entries central never acknowledged (lost to central when forced)."""
    forced: bool

    def __post_init__(self) -> None:
        assert self.unsent_entries >= 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleAnswer:
    """Central's signed confirmation of a re-key or a decommission."""

    action: Action
    terminal_id: str
    new_terminal_id: str | None
    central_time_ms: int

    def __post_init__(self) -> None:
        assert (self.new_terminal_id is not None) == (self.action == "rekey")


def _possession_input(terminal_id: str, new_key_hex: str, created_ms: int) -> bytes:
    return signing.signing_input(
        REKEY_POSSESSION_TYPE,
        {"terminal_id": terminal_id, "new_public_key": new_key_hex, "created_ms": created_ms},
    )


def build_rekey_request(request: RekeyRequest, *, old_signer: Signer, new_signer: Signer) -> bytes:
    """Sign a re-key request: possession by the new key, authority by the old one."""
    key_hex = request.new_public_key.hex()
    possession = new_signer.sign(
        _possession_input(request.terminal_id, key_hex, request.created_ms)
    )
    body = {
        "terminal_id": request.terminal_id,
        "new_public_key": key_hex,
        "created_ms": request.created_ms,
        "possession_sig": possession.hex(),
    }
    return signing.seal(REKEY_REQUEST_TYPE, body, old_signer)


def build_decommission_request(request: DecommissionRequest, signer: Signer) -> bytes:
    """Sign a decommission request with the terminal's key."""
    body = {
        "terminal_id": request.terminal_id,
        "created_ms": request.created_ms,
        "reason": request.reason[:REASON_CHARS_MAX],
        "unsent_entries": request.unsent_entries,
        "forced": request.forced,
    }
    return signing.seal(DECOMMISSION_REQUEST_TYPE, body, signer)


def build_lifecycle_answer(answer: LifecycleAnswer, signer: Signer) -> bytes:
    """Central signs its confirmation."""
    body = {
        "action": answer.action,
        "terminal_id": answer.terminal_id,
        "new_terminal_id": answer.new_terminal_id,
        "central_time_ms": answer.central_time_ms,
    }
    return signing.seal(LIFECYCLE_ANSWER_TYPE, body, signer)


# --- reading ---------------------------------------------------------------------


def _peek(data: bytes, expected_type: str) -> Mapping[str, Any]:
    if len(data) > MESSAGE_BYTES_MAX:
        raise MalformedError(f"{expected_type} larger than {MESSAGE_BYTES_MAX} bytes")
    try:
        _version, msg_type, body = signing.peek(data)
    except signing.SignedMessageError as exc:
        raise MalformedError(str(exc)) from None
    if msg_type != expected_type:
        raise MalformedError(f"expected a {expected_type!r} message, got {msg_type!r}")
    return body


def _open(data: bytes, expected_type: str, public_key: bytes) -> Mapping[str, Any]:
    _peek(data, expected_type)
    try:
        return signing.open_message(data, expected_type=expected_type, public_key=public_key).body
    except signing.BadSignatureError:
        raise SignatureError(f"{expected_type} signature does not verify") from None
    except signing.SignedMessageError as exc:
        raise MalformedError(str(exc)) from None


def _exact(body: Mapping[str, Any], keys: set[str], what: str) -> None:
    if set(body) != keys:
        raise MalformedError(f"{what} must have exactly {', '.join(sorted(keys))}")


def _terminal_id(value: Any, name: str = "terminal_id") -> str:
    return _str(value, name, pattern=TERMINAL_ID_PATTERN, chars_max=64)


def _int(value: Any, name: str) -> int:
    return _bounded_int(value, name, low=0, high=INT_MAX)


def peek_terminal_id(data: bytes, *, expected_type: str) -> str:
    """The terminal id a lifecycle request claims (to find the key to verify with)."""
    return _terminal_id(_peek(data, expected_type).get("terminal_id"))


def verify_rekey_request(data: bytes, *, public_key: bytes) -> RekeyRequest:
    """Check a re-key request against the terminal's enrolled ``public_key``."""
    body = _open(data, REKEY_REQUEST_TYPE, public_key)
    _exact(body, {"terminal_id", "new_public_key", "created_ms", "possession_sig"}, "rekey")
    terminal_id = _terminal_id(body["terminal_id"])
    if terminal_id != terminal_id_from_public_key(public_key):
        raise WrongTerminalError("the re-key request names another terminal than its signer")
    new_key = _bytes_from_hex(body["new_public_key"], "new_public_key", signing.PUBLIC_KEY_BYTES)
    created_ms = _int(body["created_ms"], "created_ms")
    possession = _bytes_from_hex(body["possession_sig"], "possession_sig", signing.SIGNATURE_BYTES)
    if not signing.verify(
        new_key, possession, _possession_input(terminal_id, new_key.hex(), created_ms)
    ):
        raise SignatureError("the new key's proof of possession does not verify")
    if new_key == public_key:
        raise MalformedError("the new key is the current key")
    return RekeyRequest(terminal_id=terminal_id, new_public_key=new_key, created_ms=created_ms)


def verify_decommission_request(data: bytes, *, public_key: bytes) -> DecommissionRequest:
    """Check a decommission request against the terminal's enrolled ``public_key``."""
    body = _open(data, DECOMMISSION_REQUEST_TYPE, public_key)
    _exact(
        body, {"terminal_id", "created_ms", "reason", "unsent_entries", "forced"}, "decommission"
    )
    terminal_id = _terminal_id(body["terminal_id"])
    if terminal_id != terminal_id_from_public_key(public_key):
        raise WrongTerminalError("the decommission request names another terminal")
    reason = body["reason"]
    if not isinstance(reason, str) or len(reason) > REASON_CHARS_MAX:
        raise MalformedError(f"reason must be text of at most {REASON_CHARS_MAX} characters")
    if not isinstance(body["forced"], bool):
        raise MalformedError("forced must be true or false")
    return DecommissionRequest(
        terminal_id=terminal_id,
        created_ms=_int(body["created_ms"], "created_ms"),
        reason=reason,
        unsent_entries=_int(body["unsent_entries"], "unsent_entries"),
        forced=body["forced"],
    )


def verify_lifecycle_answer(
    data: bytes, *, central_public_key: bytes, action: Action, terminal_id: str
) -> LifecycleAnswer:
    """Check central's answer with the pinned key; it must confirm ``action`` for us."""
    body = _open(data, LIFECYCLE_ANSWER_TYPE, central_public_key)
    _exact(body, {"action", "terminal_id", "new_terminal_id", "central_time_ms"}, "answer")
    if body["action"] != action:
        raise MalformedError(f"central's answer confirms {body['action']!r}, not {action!r}")
    if body["terminal_id"] != terminal_id:
        raise WrongTerminalError("central's answer is about another terminal")
    new_id = body["new_terminal_id"]
    if action == "rekey":
        new_id = _terminal_id(new_id, "new_terminal_id")
    elif new_id is not None:
        raise MalformedError("a decommission answer names no new terminal id")
    return LifecycleAnswer(
        action=action,
        terminal_id=terminal_id,
        new_terminal_id=new_id,
        central_time_ms=_int(body["central_time_ms"], "central_time_ms"),
    )
