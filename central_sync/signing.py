"""Signed messages of the sync protocol: one envelope for every message type.

Theory of operation: a message is ``{"v": <protocol version>, "type": <str>,
"body": <object>}``; the signer signs the canonical encoding of exactly that
object with Ed25519 (RFC 8032), and the wire form adds ``"sig"`` (lowercase hex)
to it, canonically encoded again. Because the version and type are inside what
is signed, a signed catalog can never be replayed as an acknowledgement, and a
message from an unknown protocol version is refused before its body is read.

The functions here are sans-I/O: bytes in, checked values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from central_sync import canonical

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
MESSAGE_BYTES_MAX = 64 * 1024 * 1024


class SignedMessageError(ValueError):
    """A signed message is malformed, of the wrong type or version, or badly signed."""


class UnknownVersionError(SignedMessageError):
    """The message speaks a protocol version this software does not."""


class BadSignatureError(SignedMessageError):
    """The signature does not verify against the expected key."""


class Signer(Protocol):
    """Anything that signs with Ed25519: a terminal identity, central's key."""

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedMessage:
    """A message whose signature has been checked."""

    version: int
    type: str
    body: Mapping[str, Any]
    signature: bytes


def signing_input(msg_type: str, body: Mapping[str, Any], version: int = PROTOCOL_VERSION) -> bytes:
    """The exact bytes that are signed for a message."""
    return canonical.encode({"v": version, "type": msg_type, "body": dict(body)})


def seal(msg_type: str, body: Mapping[str, Any], signer: Signer) -> bytes:
    """Sign ``body`` as a message of ``msg_type`` and return its wire bytes."""
    signature = signer.sign(signing_input(msg_type, body))
    assert len(signature) == SIGNATURE_BYTES
    return canonical.encode(
        {"v": PROTOCOL_VERSION, "type": msg_type, "body": dict(body), "sig": signature.hex()}
    )


def peek(data: bytes) -> tuple[int, str, Mapping[str, Any]]:
    """Parse a message without checking its signature: (version, type, body).

    For routing only (for example, to find which terminal's key to verify with);
    never act on a body before :func:`open_message` has verified it.
    """
    if len(data) > MESSAGE_BYTES_MAX:
        raise SignedMessageError(f"message larger than {MESSAGE_BYTES_MAX} bytes")
    try:
        value = canonical.decode(data)
    except canonical.CanonicalError as exc:
        raise SignedMessageError(f"malformed message: {exc}") from None
    if not isinstance(value, dict) or set(value) != {"v", "type", "body", "sig"}:
        raise SignedMessageError("message must have exactly v, type, body and sig")
    version, msg_type, body = value["v"], value["type"], value["body"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise SignedMessageError("protocol version must be an integer")
    if version not in SUPPORTED_VERSIONS:
        raise UnknownVersionError(
            f"protocol version {version} is not supported (supported: "
            f"{', '.join(str(v) for v in sorted(SUPPORTED_VERSIONS))})"
        )
    if not isinstance(msg_type, str) or not isinstance(body, dict):
        raise SignedMessageError("message type must be a string and body an object")
    return version, msg_type, body


def open_message(data: bytes, *, expected_type: str, public_key: bytes) -> SignedMessage:
    """Verify and return a message of ``expected_type`` signed by ``public_key``."""
    version, msg_type, body = peek(data)
    if msg_type != expected_type:
        raise SignedMessageError(f"expected a {expected_type!r} message, got {msg_type!r}")
    sig_hex = canonical.decode(data)["sig"]
    if not isinstance(sig_hex, str) or len(sig_hex) != 2 * SIGNATURE_BYTES:
        raise SignedMessageError("signature must be 64 bytes in lowercase hex")
    try:
        signature = bytes.fromhex(sig_hex)
    except ValueError:
        raise SignedMessageError("signature is not hex") from None
    if signature.hex() != sig_hex:
        raise SignedMessageError("signature hex must be lowercase")
    if not verify(public_key, signature, signing_input(msg_type, body, version)):
        raise BadSignatureError(f"{msg_type} signature does not verify")
    return SignedMessage(version=version, type=msg_type, body=body, signature=signature)


def verify(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``data`` by ``public_key``."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
