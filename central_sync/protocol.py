"""The signed sync protocol between a terminal and central (DESIGN.md, "The signed sync protocol").

Theory of operation
-------------------
Every message is a :mod:`central_sync.signing` envelope ``{"v", "type", "body", "sig"}``
(canonical JSON, Ed25519). This module builds and checks the bodies; it does no I/O.

Upload, terminal -> central:

* ``batch`` (signed by the terminal, zlib-compressed on the wire, RFC 1950): a
  contiguous run of journal entries ``[from_seq .. to_seq]`` with the terminal id,
  ``prev_hash`` (the hash of entry ``from_seq - 1``), ``head_hash`` (the hash of
  ``to_seq``) and a summary (entry count, counts per kind, payment-intent totals per
  currency and per provider). Each entry is the object the journal hashed,
  ``{"body","kind","seq","ts_ms"}``; because the whole message is canonical JSON,
  the bytes of each entry inside it are exactly the bytes that were hashed.
  Central re-encodes each entry once (one C call) and requires the message to be
  exactly those texts spliced into the canonical envelope (compared in place);
  the same bytes are the hash input and the stored copy. The re-encoding is the
  canonical check and is not skipped when the hashes chain: the terminal computes
  the chain itself, so a matching hash proves the bytes are the ones it signed,
  not that they are canonical (a duplicate key two parsers would read
  differently hashes just as well). Compression removes the repeated keys, so a
  typical payment (intent + result) costs under 100 bytes on the wire. Per-entry
  hashes are not sent: central recomputes the chain from ``prev_hash`` and must
  reach ``head_hash``.
* ``enroll-request`` (signed by the new terminal's own key: proof of possession)
  and ``heartbeat`` (signed by the terminal).

Answers and downloads, central -> terminal, all signed by central's key, which the
terminal pinned at provisioning:

* ``ack``: terminal id, acked seq, head hash, central time. The agent marks entries
  acknowledged only after :func:`verify_ack`.
* ``refusal``: a typed answer that is not an ack (:class:`RefusalKind`), marked
  retryable or final. A refusal that does not verify is not trusted: the agent
  treats it as a transport failure and retries, so nobody on the path can stop a
  terminal with a forged "revoked".
* ``enrollment`` (the answer to an enrollment request), ``config`` bundles
  (per location or group, versioned, expiring) and ``revocations`` lists.

Every parser here takes bytes from outside and raises a :class:`SyncProtocolError`
subclass (each with a ``reason`` code) for anything it does not accept.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json import encoder as _json_encoder
from json import scanner as _json_scanner
from typing import Any, ClassVar, NamedTuple, Protocol

from central_sync import canonical, signing
from central_sync.journal import (
    CURRENCY_PATTERN,
    GENESIS_HASH,
    KIND_METER_READING,
    KIND_PATTERN,
    KIND_PAYMENT_INTENT,
    KIND_PAYMENT_RESULT,
    KIND_REVERSAL,
    PAYMENT_ID_PATTERN,
    PAYMENT_OUTCOMES,
)
from firmware_config.identity import terminal_id_from_public_key

__all__ = [
    "ACK_TYPE",
    "BATCH_TYPE",
    "CONFIG_TYPE",
    "ENROLLMENT_TYPE",
    "ENROLL_REQUEST_TYPE",
    "GENESIS_HASH",
    "HEARTBEAT_TYPE",
    "REFUSAL_MESSAGES",
    "REFUSAL_TYPE",
    "REVOCATIONS_TYPE",
    "Ack",
    "BatchEnvelope",
    "BatchLimits",
    "BatchSummary",
    "BuildError",
    "ChainError",
    "ConfigBundle",
    "EnrollRequest",
    "Enrollment",
    "ExpiredError",
    "Heartbeat",
    "MalformedError",
    "OutgoingBatch",
    "Refusal",
    "RefusalKind",
    "RevocationList",
    "RollbackError",
    "SignatureError",
    "SummaryMismatchError",
    "SyncProtocolError",
    "TooLargeError",
    "UnsupportedVersionError",
    "VerifiedBatch",
    "VerifiedEntry",
    "WrongTerminalError",
    "build_ack",
    "build_batch",
    "build_config_bundle",
    "build_enroll_request",
    "build_enrollment",
    "build_heartbeat",
    "build_refusal",
    "build_revocation_list",
    "open_batch",
    "parse_answer",
    "peek_signer_id",
    "request_digest",
    "verify_ack",
    "verify_batch",
    "verify_config_bundle",
    "verify_enroll_request",
    "verify_enrollment",
    "verify_heartbeat",
    "verify_revocation_list",
]

BATCH_TYPE = "batch"
ACK_TYPE = "ack"
REFUSAL_TYPE = "refusal"
ENROLL_REQUEST_TYPE = "enroll-request"
ENROLLMENT_TYPE = "enrollment"
HEARTBEAT_TYPE = "heartbeat"
CONFIG_TYPE = "config"
REVOCATIONS_TYPE = "revocations"

HASH_BYTES = 32
TERMINAL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REGISTRATION_CODE_PATTERN = re.compile(r"^[A-Za-z0-9-]{6,64}$")
TEXT_CHARS_MAX = 200
PROVIDER_CHARS_MAX = 128
AGENT_CHARS_MAX = 64
TXN_ID_CHARS_MAX = 64
SUMMARY_KEYS_MAX = 1000
REVOKED_IDS_MAX = 100_000
HEARTBEAT_HEALTH_KEYS_MAX = 64
ENVELOPE_BYTES_MAX = 4 * 1024 * 1024  # for the small uncompressed messages
COMPRESS_LEVEL = 6
_INT_DIGITS_SAFE = 18  # any integer with at most 18 digits is inside the signed 64-bit range

# --- errors ------------------------------------------------------------------


class SyncProtocolError(ValueError):
    """Bytes from the other side are not an acceptable protocol message.

    ``reason`` is a short stable code for logs, refusals and metrics.
    """

    reason: ClassVar[str] = "malformed"


class MalformedError(SyncProtocolError):
    """Not decodable, not canonical, or not the structure the message type requires."""

    reason = "malformed"


class UnsupportedVersionError(SyncProtocolError, signing.UnknownVersionError):
    """The message speaks a protocol version this software does not."""

    reason = "unknown-version"


class SignatureError(SyncProtocolError, signing.BadSignatureError):
    """The signature does not verify against the expected key."""

    reason = "bad-signature"


class TooLargeError(SyncProtocolError):
    """The message exceeds a size or count bound (wire, decompressed, entries)."""

    reason = "too-large"


class ChainError(SyncProtocolError):
    """The entries do not form an unbroken hash chain from prev_hash to head_hash."""

    reason = "broken-chain"


class SummaryMismatchError(SyncProtocolError):
    """The signed counts or totals do not match the entries."""

    reason = "summary-mismatch"


class WrongTerminalError(SyncProtocolError):
    """The message names a different terminal than the one expected."""

    reason = "wrong-terminal"


class ExpiredError(SyncProtocolError):
    """A signed bundle or list is past its expiry (freeze protection)."""

    reason = "expired"


class RollbackError(SyncProtocolError):
    """A signed bundle or list is older than the one already held (rollback protection)."""

    reason = "rollback"


class BuildError(ValueError):
    """Our own side cannot build a message from what it was given (a local error)."""


# --- helpers shared by the parsers --------------------------------------------


class Signer(Protocol):
    """Anything that signs with Ed25519: a terminal identity or central's key."""

    def sign(self, data: bytes) -> bytes: ...


def _no_float(text: str) -> Any:
    raise MalformedError("floats are not allowed; use integer minor units")


def _no_constant(text: str) -> Any:
    raise MalformedError(f"{text} is not allowed")


# The hot path of batch verification parses and re-encodes every entry. The C
# scanner and encoder are built once here (json.dumps would build an encoder per
# call), with exactly the options of canonical.encode: sorted keys, compact
# separators, UTF-8 rather than \u escapes, no NaN. The test suite checks that this
# pair agrees with canonical.encode/decode.
_DECODER = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant)
_scan = _json_scanner.c_make_scanner(_DECODER)  # type: ignore[attr-defined]
_c_encode = _json_encoder.c_make_encoder(  # type: ignore[attr-defined]
    None,
    None,
    _json_encoder.c_encode_basestring,  # type: ignore[attr-defined]
    None,
    ":",
    ",",
    True,
    False,
    False,
)


def _fast_canonical_decode(text: str, *, full_check: bool) -> Any:
    """Decode ``text`` and require it to be canonical JSON; MalformedError otherwise.

    The round trip through the C encoder proves key order, separators, escapes and
    unique keys. What it cannot see — integers outside 64 bits, nesting deeper than
    canonical.DEPTH_MAX — is checked by the slower :func:`canonical.encode` walk
    when ``full_check``; callers set it whenever the text could hold either (see
    :func:`_may_hold_long_ints`), or validate every field themselves.
    """
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise MalformedError("not valid JSON") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, MalformedError):
            raise
        raise MalformedError(f"not valid JSON: {exc.__class__.__name__}") from None
    if end != len(text):
        raise MalformedError("trailing data after the JSON value")
    try:
        again = "".join(_c_encode(value, 0))
    except (ValueError, RecursionError):
        raise MalformedError("JSON cannot be re-encoded canonically") from None
    if again != text:
        raise MalformedError("JSON is valid but not in canonical form")
    if full_check or text.count("{") + text.count("[") > canonical.DEPTH_MAX:
        try:
            canonical.encode(value)
        except canonical.CanonicalError as exc:
            raise MalformedError(str(exc)) from None
    return value


# Digits become "d"; what may stand before a number in canonical JSON (":" for a
# member, "[" or "," for an element, "-" for its sign) becomes "p".
_NUMBER_MAP = bytes.maketrans(b"0123456789:[,-", b"ddddddddddpppp")
_LONG_DIGITS = b"d" * (_INT_DIGITS_SAFE + 1)
_DIGIT_RUN = re.compile(rb"d+")
_BEFORE_NUMBER = ord("p")


def _may_hold_long_ints(data: bytes) -> bool:
    """True if canonical ``data`` may hold a number of 19+ digits (maybe beyond 64 bits).

    A number in canonical JSON follows ":", "[", "," or "-" (or starts the text);
    a run of digits inside a string — a hex hash, the all-zero genesis hash —
    follows a quote or a letter and does not count, so such batches keep the
    fast path. Text that is not canonical is refused by the round-trip check
    before this answer is relied on. One C pass to map, then C searches:
    much faster than a regular expression over the text.
    """
    mapped = data.translate(_NUMBER_MAP)
    start = mapped.find(_LONG_DIGITS)
    while start >= 0:
        # The leftmost match from where the search began starts a run of digits.
        if start == 0 or mapped[start - 1] == _BEFORE_NUMBER:
            return True
        run = _DIGIT_RUN.match(mapped, start)
        assert run is not None  # mapped[start] is a digit
        start = mapped.find(_LONG_DIGITS, run.end())
    return False


def canonical_text(value: Any) -> str:
    """Canonical JSON of an already-validated value (from a verified entry), fast."""
    return "".join(_c_encode(value, 0))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedError("text is not valid UTF-8 (lone surrogate)") from None


def _open_signed(
    data: bytes, *, expected_type: str, bytes_max: int
) -> tuple[int, dict[str, Any], bytes, bytes]:
    """Parse a signed envelope once: (version, body, signature, signing input).

    The signature is *not* checked here. Because the envelope is canonical, its keys
    are in the order body, sig, type, v, so the signing input (the same object
    without ``sig``) is the envelope text with the ``sig`` member cut out — the
    same bytes :func:`signing.signing_input` would build, without encoding the
    message again.
    """
    if len(data) > bytes_max:
        raise TooLargeError(f"message larger than {bytes_max} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedError("message is not UTF-8") from None
    value = _fast_canonical_decode(text, full_check=_may_hold_long_ints(data))
    if not isinstance(value, dict) or set(value) != {"v", "type", "body", "sig"}:
        raise MalformedError("message must have exactly v, type, body and sig")
    version, msg_type, body, sig_hex = value["v"], value["type"], value["body"], value["sig"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedError("protocol version must be an integer")
    if version not in signing.SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(signing.SUPPORTED_VERSIONS))
        raise UnsupportedVersionError(
            f"protocol version {version} is not supported (supported: {supported})"
        )
    if not isinstance(msg_type, str) or not isinstance(body, dict):
        raise MalformedError("message type must be a string and body an object")
    if msg_type != expected_type:
        raise MalformedError(f"expected a {expected_type!r} message, got {msg_type!r}")
    if (
        not isinstance(sig_hex, str)
        or len(sig_hex) != 2 * signing.SIGNATURE_BYTES
        or sig_hex.strip("0123456789abcdef")
    ):
        raise MalformedError("signature must be 64 bytes in lowercase hex")
    tail = "".join(_c_encode({"type": msg_type, "v": version}, 0))[1:]  # '"type":..,"v":..}'
    sig_member = ',"sig":"' + sig_hex + '",'
    cut = len(text) - len(tail) - len(sig_member)
    # Our own invariant: a canonical envelope with these four keys is laid out so.
    assert text[cut:] == sig_member + tail
    signing_input = _utf8(text[:cut] + "," + tail)
    return version, body, bytes.fromhex(sig_hex), signing_input


def _check_signature(public_key: bytes, signature: bytes, signing_input: bytes, what: str) -> None:
    if not signing.verify(public_key, signature, signing_input):
        raise SignatureError(f"{what} signature does not verify")


def _open_small(data: bytes, *, expected_type: str, public_key: bytes) -> dict[str, Any]:
    _version, body, signature, signing_input = _open_signed(
        data, expected_type=expected_type, bytes_max=ENVELOPE_BYTES_MAX
    )
    _check_signature(public_key, signature, signing_input, expected_type)
    return body


def _seal(msg_type: str, body: Mapping[str, Any], signer: Signer) -> bytes:
    try:
        return signing.seal(msg_type, body, signer)
    except canonical.CanonicalError as exc:
        raise BuildError(f"cannot encode {msg_type}: {exc}") from None


def _exact_keys(body: Mapping[str, Any], required: set[str], optional: set[str], what: str) -> None:
    keys = set(body)
    missing = required - keys
    extra = keys - required - optional
    if missing:
        raise MalformedError(f"{what} lacks {', '.join(sorted(missing))}")
    if extra:
        raise MalformedError(f"{what} has unknown fields {', '.join(sorted(extra))}")


def _int(value: Any, name: str, *, low: int = 0, high: int = canonical.INT_ABS_MAX) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise MalformedError(f"{name} must be an integer in [{low}, {high}]")
    return value


def _str(
    value: Any, name: str, *, pattern: re.Pattern[str] | None = None, chars_max: int = 200
) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= chars_max:
        raise MalformedError(f"{name} must be a non-empty string of at most {chars_max} chars")
    if pattern is not None and not pattern.match(value):
        raise MalformedError(f"{name} is malformed")
    return value


def _hash_from_hex(value: Any, name: str, size: int = HASH_BYTES) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise MalformedError(f"{name} must be {size} bytes in lowercase hex")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise MalformedError(f"{name} is not hex") from None
    if raw.hex() != value:
        raise MalformedError(f"{name} must be lowercase hex")
    return raw


def _check_terminal_id(terminal_id: str) -> None:
    if not isinstance(terminal_id, str) or not TERMINAL_ID_PATTERN.match(terminal_id):
        raise BuildError("terminal_id must be 1-64 letters, digits, '.', '_' or '-'")


def peek_signer_id(data: bytes, *, expected_type: str) -> str:
    """The ``terminal_id`` a terminal-signed message claims, before its key is known.

    For routing only (finding the key to verify with); never act on the body
    before the matching ``verify_*`` has checked the signature.
    """
    _v, body, _sig, _input = _open_signed(
        data, expected_type=expected_type, bytes_max=ENVELOPE_BYTES_MAX
    )
    return _str(body.get("terminal_id"), "terminal_id", pattern=TERMINAL_ID_PATTERN, chars_max=64)


# --- batches --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchLimits:
    """Bounds central applies to an uploaded batch before and while reading it."""

    wire_bytes_max: int = 8 * 1024 * 1024
    """Compressed size of the upload."""
    decompressed_bytes_max: int = 32 * 1024 * 1024
    """Size after decompression; the decompression-bomb bound."""
    entries_max: int = 20_000
    """Entries in one batch."""
    entry_bytes_max: int = 64 * 1024
    """One entry's canonical encoding."""

    def __post_init__(self) -> None:
        for name in ("wire_bytes_max", "decompressed_bytes_max", "entries_max", "entry_bytes_max"):
            if _int_or_none(getattr(self, name)) is None:
                raise ValueError(f"{name} must be a positive integer")


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


DEFAULT_LIMITS = BatchLimits()


class JournalEntryLike(Protocol):
    """What :func:`build_batch` needs of a journal entry (``central_sync.journal.Entry``)."""

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def ts_ms(self) -> int: ...
    @property
    def body(self) -> Mapping[str, Any]: ...
    @property
    def prev_hash(self) -> bytes: ...
    @property
    def hash(self) -> bytes: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSummary:
    """The signed counts and totals of a batch (all money in minor units)."""

    entries: int
    kinds: Mapping[str, int]
    currency_totals: Mapping[str, int]
    provider_totals: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "kinds": dict(self.kinds),
            "currency_totals": dict(self.currency_totals),
            "provider_totals": dict(self.provider_totals),
        }


class VerifiedEntry(NamedTuple):
    """One entry of a verified batch.

    A NamedTuple rather than a frozen dataclass: one is built per entry on
    central's hot path, and tuple construction is several times cheaper.
    """

    seq: int
    kind: str
    ts_ms: int
    body: Mapping[str, Any]
    hash: bytes
    encoded: bytes
    """The exact canonical bytes that were hashed (what central stores)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingBatch:
    """A built batch: the wire bytes and which entries went into it."""

    data: bytes
    """Compressed signed batch, the body of ``POST /v1/batches``."""
    terminal_id: str
    from_seq: int
    to_seq: int
    prev_hash: bytes
    head_hash: bytes
    uncompressed_bytes: int

    def __post_init__(self) -> None:
        assert 1 <= self.from_seq <= self.to_seq
        assert len(self.prev_hash) == HASH_BYTES
        assert len(self.head_hash) == HASH_BYTES

    @property
    def entry_count(self) -> int:
        return self.to_seq - self.from_seq + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedBatch:
    """A batch whose signature, chain and summary have been checked."""

    terminal_id: str
    from_seq: int
    to_seq: int
    prev_hash: bytes
    head_hash: bytes
    summary: BatchSummary
    entries: tuple[VerifiedEntry, ...]
    wire_bytes: int

    def __post_init__(self) -> None:
        assert 1 <= self.from_seq <= self.to_seq
        assert len(self.entries) == self.to_seq - self.from_seq + 1


class _SummaryBuilder:
    """Counts per kind and payment-intent totals per currency and per provider."""

    __slots__ = ("currency", "kinds", "n", "provider")

    def __init__(self) -> None:
        self.n = 0
        self.kinds: dict[str, int] = {}
        self.currency: dict[str, int] = {}
        self.provider: dict[str, int] = {}

    def add(self, kind: str, body: Mapping[str, Any]) -> None:
        self.n += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind == KIND_PAYMENT_INTENT:
            currency = body["currency"]
            self.currency[currency] = self.currency.get(currency, 0) + body["amount_minor"]
            for service in body.get("services") or ():
                provider = service["provider"]
                self.provider[provider] = self.provider.get(provider, 0) + service["amount_minor"]

    def build(self) -> BatchSummary:
        return BatchSummary(
            entries=self.n,
            kinds=self.kinds,
            currency_totals=self.currency,
            provider_totals=self.provider,
        )


# The checks of entry bodies run once per entry of every upload (central's hot
# loop), so they test types directly instead of calling _int/_str; the error
# messages are the same.
_match_payment_id = PAYMENT_ID_PATTERN.match
_match_currency = CURRENCY_PATTERN.match
_INT_MAX = canonical.INT_ABS_MAX


def _check_payment_id(kind: str, body: Mapping[str, Any]) -> None:
    payment_id = body.get("payment_id")
    if not isinstance(payment_id, str) or not _match_payment_id(payment_id):
        raise MalformedError(f"{kind} has a missing or malformed payment_id")


def _check_intent(body: Mapping[str, Any]) -> None:
    # The hottest check (one per payment): every test written out, no helper calls.
    payment_id = body.get("payment_id")
    if not isinstance(payment_id, str) or not _match_payment_id(payment_id):
        raise MalformedError(f"{KIND_PAYMENT_INTENT} has a missing or malformed payment_id")
    amount = body.get("amount_minor")
    if not isinstance(amount, int) or amount.__class__ is bool or not 1 <= amount <= _INT_MAX:
        raise MalformedError(f"amount_minor must be an integer in [1, {_INT_MAX}]")
    currency = body.get("currency")
    if not isinstance(currency, str) or not _match_currency(currency):
        raise MalformedError("payment-intent currency must be an ISO 4217 code")
    account = body.get("account")
    if not isinstance(account, str) or not 0 < len(account) <= TEXT_CHARS_MAX:
        raise MalformedError(
            f"account must be a non-empty string of at most {TEXT_CHARS_MAX} chars"
        )
    services = body.get("services")
    if services is not None:
        if not isinstance(services, list):
            raise MalformedError("services must be a list")
        for service in services:
            if not isinstance(service, dict):
                raise MalformedError("each service must be an object")
            provider = service.get("provider")
            if not isinstance(provider, str) or not 0 < len(provider) <= PROVIDER_CHARS_MAX:
                raise MalformedError(
                    "service provider must be a non-empty string of at most"
                    f" {PROVIDER_CHARS_MAX} chars"
                )
            share = service.get("amount_minor")
            if not isinstance(share, int) or share.__class__ is bool or not 0 <= share <= _INT_MAX:
                raise MalformedError(f"service amount_minor must be an integer in [0, {_INT_MAX}]")
    agent, txn_id = body.get("agent"), body.get("txn_id")
    if agent is None and txn_id is None:
        return
    if agent is None or txn_id is None:
        raise MalformedError("agent and txn_id come together or not at all")
    _str(agent, "agent", chars_max=AGENT_CHARS_MAX)
    _str(txn_id, "txn_id", chars_max=TXN_ID_CHARS_MAX)


def _check_result(body: Mapping[str, Any]) -> None:
    _check_payment_id(KIND_PAYMENT_RESULT, body)
    outcome = body.get("outcome")
    if not isinstance(outcome, str) or outcome not in PAYMENT_OUTCOMES:
        raise MalformedError("payment-result outcome is not a known outcome")


def _check_reversal(body: Mapping[str, Any]) -> None:
    _check_payment_id(KIND_REVERSAL, body)


def _check_meter_reading(body: Mapping[str, Any]) -> None:
    _str(body.get("account"), "account", chars_max=TEXT_CHARS_MAX)
    _str(body.get("meter_id"), "meter_id", chars_max=TEXT_CHARS_MAX)
    _int(body.get("value"), "value")
    _int(body.get("reading_ts_ms"), "reading_ts_ms")


_BODY_CHECKS: Mapping[str, Callable[[Mapping[str, Any]], None]] = {
    KIND_PAYMENT_INTENT: _check_intent,
    KIND_PAYMENT_RESULT: _check_result,
    KIND_REVERSAL: _check_reversal,
    KIND_METER_READING: _check_meter_reading,
}


def _check_entry_body(kind: str, body: Mapping[str, Any]) -> None:
    """The fields central relies on (dedup, totals, exports) must be well-formed.

    The journal enforces these on append, so a batch that breaks them comes from
    a broken or hostile terminal and is refused as malformed. Kinds central does
    not read are not checked beyond being canonical JSON.
    """
    check = _BODY_CHECKS.get(kind)
    if check is not None:
        check(body)


def _entry_text(seq: int, kind: str, ts_ms: int, body: Mapping[str, Any]) -> str:
    try:
        return canonical.encode(
            {"seq": seq, "kind": kind, "ts_ms": ts_ms, "body": dict(body)}
        ).decode("utf-8")
    except canonical.CanonicalError as exc:
        raise BuildError(f"entry {seq} is not canonical: {exc}") from None


def _batch_texts(
    header: Mapping[str, Any], entry_texts: Sequence[str], sig_hex: str | None, version: int
) -> str:
    """The canonical text of a batch envelope, built around already-encoded entries.

    The body's keys sort ``entries`` first, and the envelope's ``body`` < ``sig`` <
    ``type`` < ``v``, so the canonical encoding of the whole message is this
    concatenation; each entry appears exactly as the bytes that were hashed. With
    ``sig_hex`` None it is the signing input (the envelope without ``sig``).
    """
    rest = "".join(_c_encode(header, 0))  # '{"from_seq":...}', never '{}'
    body = '{"entries":[' + ",".join(entry_texts) + "]," + rest[1:]
    tail = ',"type":"' + BATCH_TYPE + '","v":' + str(version) + "}"
    if sig_hex is None:
        return '{"body":' + body + tail
    return '{"body":' + body + ',"sig":"' + sig_hex + '"' + tail


def _batch_header(
    terminal_id: str,
    from_seq: int,
    to_seq: int,
    prev_hash: bytes,
    head_hash: bytes,
    summary: BatchSummary,
) -> dict[str, Any]:
    return {
        "terminal_id": terminal_id,
        "from_seq": from_seq,
        "to_seq": to_seq,
        "prev_hash": prev_hash.hex(),
        "head_hash": head_hash.hex(),
        "summary": summary.to_json(),
    }


# Fixed overhead of the batch envelope (keys, hashes, signature) without the
# entries and the summary maps; used to stop adding entries before bytes_max.
_BATCH_OVERHEAD_BYTES = 600


def build_batch(
    entries: Iterable[JournalEntryLike],
    *,
    terminal_id: str,
    signer: Signer,
    entries_max: int,
    bytes_max: int,
    compress_level: int = COMPRESS_LEVEL,
) -> OutgoingBatch:
    """Sign the longest prefix of ``entries`` that fits the bounds, compressed (RFC 1950).

    ``entries`` must be a contiguous run of journal entries in seq order, each
    linked to the one before by ``prev_hash``. At most ``entries_max`` entries are
    taken, and the signed message before compression stays within ``bytes_max``
    (so the wire bytes do too). The hashes the journal stored are checked against
    the entries' content, so a corrupted journal row is never sent as valid.
    Raises :class:`BuildError` if the run is empty, broken, or its first entry
    alone exceeds ``bytes_max``.
    """
    _check_terminal_id(terminal_id)
    if entries_max < 1 or bytes_max < 1:
        raise BuildError("entries_max and bytes_max must be positive")
    taken: list[JournalEntryLike] = []
    texts: list[str] = []
    size = _BATCH_OVERHEAD_BYTES
    for entry in entries:
        if len(taken) >= entries_max:
            break
        if taken:
            last = taken[-1]
            if entry.seq != last.seq + 1:
                raise BuildError(f"entries are not contiguous: {last.seq} then {entry.seq}")
            if entry.prev_hash != last.hash:
                raise BuildError(f"entry {entry.seq} does not link to entry {last.seq}")
        elif entry.seq < 1 or len(entry.prev_hash) != HASH_BYTES:
            raise BuildError("the first entry has no valid seq or prev_hash")
        try:
            _check_entry_body(entry.kind, entry.body)
        except MalformedError as exc:
            raise BuildError(f"journal entry {entry.seq}: {exc}") from None
        text = _entry_text(entry.seq, entry.kind, entry.ts_ms, entry.body)
        encoded = text.encode("utf-8")
        if hashlib.sha256(entry.prev_hash + encoded).digest() != entry.hash:
            raise BuildError(f"journal entry {entry.seq} does not match its stored hash")
        # One comma per entry, and a new kind, currency or provider may add a
        # summary key: estimate generously, then check the real size below.
        grown = len(encoded) + 1 + 80
        if taken and size + grown > bytes_max:
            break
        size += grown
        taken.append(entry)
        texts.append(text)
    if not taken:
        raise BuildError("no entries to send")
    while True:
        summary = _SummaryBuilder()
        for entry in taken:
            summary.add(entry.kind, entry.body)
        first, last = taken[0], taken[-1]
        header = _batch_header(
            terminal_id, first.seq, last.seq, first.prev_hash, last.hash, summary.build()
        )
        signing_input = _batch_texts(header, texts, None, signing.PROTOCOL_VERSION).encode()
        signature = signer.sign(signing_input)
        assert len(signature) == signing.SIGNATURE_BYTES
        message = _batch_texts(header, texts, signature.hex(), signing.PROTOCOL_VERSION).encode()
        if len(message) <= bytes_max:
            break
        if len(taken) == 1:
            raise BuildError(f"entry {first.seq} alone exceeds bytes_max={bytes_max}")
        # The estimate was short (a summary with many providers): drop a tenth.
        keep = max(1, len(taken) * 9 // 10)
        del taken[keep:], texts[keep:]
    return OutgoingBatch(
        data=zlib.compress(message, compress_level),
        terminal_id=terminal_id,
        from_seq=first.seq,
        to_seq=last.seq,
        prev_hash=first.prev_hash,
        head_hash=last.hash,
        uncompressed_bytes=len(message),
    )


def _decompress(data: bytes, limits: BatchLimits) -> bytes:
    """Inflate a zlib stream (RFC 1950) without ever holding more than the bound."""
    if len(data) > limits.wire_bytes_max:
        raise TooLargeError(f"batch larger than {limits.wire_bytes_max} bytes on the wire")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limits.decompressed_bytes_max)
    except zlib.error:
        raise MalformedError("batch is not a valid zlib stream") from None
    if inflater.unconsumed_tail:
        raise TooLargeError(
            f"batch inflates beyond {limits.decompressed_bytes_max} bytes (decompression bomb)"
        )
    if not inflater.eof:
        raise MalformedError("batch zlib stream is truncated")
    if inflater.unused_data:
        raise MalformedError("trailing bytes after the batch zlib stream")
    return out


def _summary_from_json(value: Any) -> BatchSummary:
    if not isinstance(value, dict):
        raise MalformedError("summary must be an object")
    _exact_keys(value, {"entries", "kinds", "currency_totals", "provider_totals"}, set(), "summary")
    maps: list[dict[str, int]] = []
    for name in ("kinds", "currency_totals", "provider_totals"):
        item = value[name]
        if not isinstance(item, dict) or len(item) > SUMMARY_KEYS_MAX:
            raise MalformedError(f"summary {name} must be an object of at most {SUMMARY_KEYS_MAX}")
        for count in item.values():
            _int(count, f"summary {name} value")
        maps.append(item)
    return BatchSummary(
        entries=_int(value["entries"], "summary entries"),
        kinds=maps[0],
        currency_totals=maps[1],
        provider_totals=maps[2],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchEnvelope:
    """A decompressed, decoded batch whose signature is not yet checked.

    Central gets the claimed ``terminal_id`` from it to look up that terminal's
    enrolled key, then calls :meth:`verify`. Nothing else may be read before that.
    """

    terminal_id: str
    wire_bytes: int
    _message: bytes = field(repr=False)
    """The decompressed message, as received."""
    _text: str = field(repr=False)
    """The same, decoded."""
    _value: Mapping[str, Any] = field(repr=False)
    _limits: BatchLimits = field(repr=False)
    _may_hold_long_ints: bool = field(repr=False)

    def verify(self, public_key: bytes) -> VerifiedBatch:
        """Check canonical form and signature, then structure, chain and summary.

        DESIGN.md, "The signed sync protocol", upload. Each entry is re-encoded
        once: the received text must be those texts spliced into the canonical
        envelope, and those bytes are hashed and stored.
        """
        return _verify(self, public_key)


def open_batch(data: bytes, *, limits: BatchLimits = DEFAULT_LIMITS) -> BatchEnvelope:
    """Decompress and decode an uploaded batch; raise a SyncProtocolError if unacceptable.

    Checks the envelope's shape and protocol version (an unknown version is
    refused before anything else is read) and finds the terminal it names.
    """
    message = _decompress(data, limits)
    if len(message) > limits.decompressed_bytes_max:
        raise TooLargeError(f"batch larger than {limits.decompressed_bytes_max} bytes")
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedError("batch is not UTF-8") from None
    try:
        value, end = _scan(text, 0)
    except MalformedError:
        raise
    except (StopIteration, ValueError, RecursionError):
        raise MalformedError("batch is not valid JSON") from None
    if end != len(text):
        raise MalformedError("trailing data after the batch JSON")
    if type(value) is not dict or value.keys() != {"v", "type", "body", "sig"}:
        raise MalformedError("message must have exactly v, type, body and sig")
    version = value["v"]
    if type(version) is not int:
        raise MalformedError("protocol version must be an integer")
    if version not in signing.SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(signing.SUPPORTED_VERSIONS))
        raise UnsupportedVersionError(
            f"protocol version {version} is not supported (supported: {supported})"
        )
    if value["type"] != BATCH_TYPE:
        raise MalformedError(f"expected a 'batch' message, got {value['type']!r}")
    sig_hex = value["sig"]
    if (
        type(sig_hex) is not str
        or len(sig_hex) != 2 * signing.SIGNATURE_BYTES
        or sig_hex.strip("0123456789abcdef")
    ):
        raise MalformedError("signature must be 64 bytes in lowercase hex")
    body = value["body"]
    if type(body) is not dict:
        raise MalformedError("batch body must be an object")
    _exact_keys(
        body,
        {"terminal_id", "from_seq", "to_seq", "prev_hash", "head_hash", "summary", "entries"},
        set(),
        "batch",
    )
    terminal_id = body["terminal_id"]
    if type(terminal_id) is not str or not TERMINAL_ID_PATTERN.match(terminal_id):
        raise MalformedError("batch terminal_id is missing or malformed")
    return BatchEnvelope(
        terminal_id=terminal_id,
        wire_bytes=len(data),
        _message=message,
        _text=text,
        _value=value,
        _limits=limits,
        _may_hold_long_ints=_may_hold_long_ints(message),
    )


def verify_batch(
    data: bytes, *, public_key: bytes, limits: BatchLimits = DEFAULT_LIMITS
) -> VerifiedBatch:
    """Open and verify a batch with the key of the terminal it names."""
    return open_batch(data, limits=limits).verify(public_key)


_ENTRY_KEYS = frozenset({"body", "kind", "seq", "ts_ms"})
_BATCH_HEAD = '{"body":{"entries":['


def _is_spliced(text: str, entry_texts: Sequence[str], tail: str) -> bool:
    """True if ``text`` is ``{"body":{"entries":[`` + the entry texts joined by "," + ``tail``.

    The same test as building that string (:func:`_batch_texts`) and comparing,
    without copying the whole message twice: each piece is compared in place.
    """
    starts = text.startswith
    if not starts(_BATCH_HEAD):
        return False
    pos = len(_BATCH_HEAD)
    for index, entry_text in enumerate(entry_texts):
        if index:
            if not starts(",", pos):
                return False
            pos += 1
        if not starts(entry_text, pos):
            return False
        pos += len(entry_text)
    return len(text) == pos + len(tail) and starts(tail, pos)


def _verify(envelope: BatchEnvelope, public_key: bytes) -> VerifiedBatch:
    value, limits = envelope._value, envelope._limits
    body = value["body"]
    values = body["entries"]
    if type(values) is not list:
        raise MalformedError("entries must be a list")
    if len(values) > limits.entries_max:
        raise TooLargeError(f"batch has more than {limits.entries_max} entries")
    header = {k: v for k, v in body.items() if k != "entries"}

    # 1. Canonical form and signature, before any meaning is read. One C call
    #    per entry encodes it; the received text must be exactly those texts
    #    spliced into the canonical envelope (_batch_texts), compared in place.
    c_encode = _c_encode
    try:
        texts = ["".join(c_encode(v, 0)) for v in values]
        rest = "".join(c_encode(header, 0))  # '{"from_seq":...}', never '{}'
    except (ValueError, RecursionError, TypeError):
        raise MalformedError("batch cannot be re-encoded canonically") from None
    signed_tail = ',"type":"' + BATCH_TYPE + '","v":' + str(value["v"]) + "}"
    sig_member = ',"sig":"' + value["sig"] + '"'
    if not _is_spliced(envelope._text, texts, "]," + rest[1:] + sig_member + signed_tail):
        raise MalformedError("batch is valid JSON but not in canonical form")
    if envelope._may_hold_long_ints:
        try:
            canonical.encode(value)  # the slow walk: integers beyond 64 bits, depth
        except canonical.CanonicalError as exc:
            raise MalformedError(str(exc)) from None
    # The signing input is the message without its sig member; the tail after
    # the body is ASCII, so it is cut from the received bytes, not re-encoded.
    message = envelope._message
    cut = len(message) - len(sig_member) - len(signed_tail)
    assert message[cut:] == (sig_member + signed_tail).encode()  # canonical, checked above
    signing_input = b"".join((memoryview(message)[:cut], signed_tail.encode()))
    _check_signature(public_key, bytes.fromhex(value["sig"]), signing_input, BATCH_TYPE)

    # 2. Structure, chain and summary.
    from_seq = _int(body["from_seq"], "from_seq", low=1)
    to_seq = _int(body["to_seq"], "to_seq", low=from_seq)
    prev_hash = _hash_from_hex(body["prev_hash"], "prev_hash")
    head_hash = _hash_from_hex(body["head_hash"], "head_hash")
    claimed = _summary_from_json(body["summary"])
    if len(values) != to_seq - from_seq + 1:
        raise MalformedError("entries do not cover exactly from_seq..to_seq")
    if from_seq == 1 and prev_hash != GENESIS_HASH:
        raise ChainError("entry 1 must follow the genesis hash")

    # The hot loop of central's ingest, once per entry of every upload: locals
    # bound, each kind's pattern checked once and its body check looked up once,
    # _SummaryBuilder.add inlined.
    summary = _SummaryBuilder()
    kinds = summary.kinds
    currency_totals = summary.currency
    provider_totals = summary.provider
    out: list[VerifiedEntry] = []
    append = out.append
    new_entry = tuple.__new__  # VerifiedEntry(...) without its Python-level __new__
    sha256 = hashlib.sha256
    entry_bytes_max = limits.entry_bytes_max
    depth_max = canonical.DEPTH_MAX
    int_max = canonical.INT_ABS_MAX
    body_checks: dict[str, Callable[[Mapping[str, Any]], None] | None] = {}
    link = prev_hash
    seq = from_seq
    for entry, text in zip(values, texts, strict=True):
        if type(entry) is not dict or entry.keys() != _ENTRY_KEYS:
            raise MalformedError(f"entry {seq} must have exactly body, kind, seq and ts_ms")
        encoded = text.encode("utf-8")
        if len(encoded) > entry_bytes_max:
            raise TooLargeError(f"entry {seq} larger than {entry_bytes_max} bytes")
        if text.count("{") + text.count("[") > depth_max:
            try:
                canonical.encode(entry)
            except canonical.CanonicalError as exc:
                raise MalformedError(f"entry {seq}: {exc}") from None
        if entry["seq"] != seq or type(entry["seq"]) is not int:
            raise ChainError(f"entry {seq} carries seq {entry['seq']!r}")
        kind = entry["kind"]
        ts_ms = entry["ts_ms"]
        if type(ts_ms) is not int or not 0 <= ts_ms <= int_max:
            raise MalformedError(f"entry {seq} ts_ms must be a non-negative integer")
        entry_body = entry["body"]
        if type(entry_body) is not dict:
            raise MalformedError(f"entry {seq} body must be an object")
        if type(kind) is not str:
            raise MalformedError(f"entry {seq} has a malformed kind")
        try:
            check = body_checks[kind]
        except KeyError:
            if not KIND_PATTERN.match(kind):
                raise MalformedError(f"entry {seq} has a malformed kind") from None
            check = body_checks[kind] = _BODY_CHECKS.get(kind)
        if check is not None:
            check(entry_body)
            if kind == KIND_PAYMENT_INTENT:
                currency = entry_body["currency"]
                currency_totals[currency] = (
                    currency_totals.get(currency, 0) + entry_body["amount_minor"]
                )
                services = entry_body.get("services")
                if services:
                    for service in services:
                        provider = service["provider"]
                        provider_totals[provider] = (
                            provider_totals.get(provider, 0) + service["amount_minor"]
                        )
        kinds[kind] = kinds.get(kind, 0) + 1
        link = sha256(link + encoded).digest()
        append(new_entry(VerifiedEntry, (seq, kind, ts_ms, entry_body, link, encoded)))
        seq += 1
    summary.n = len(out)
    if link != head_hash:
        raise ChainError("the entries' hash chain does not end at head_hash")
    actual = summary.build()
    if actual != claimed:
        raise SummaryMismatchError("counts or totals do not match the entries")
    return VerifiedBatch(
        terminal_id=envelope.terminal_id,
        from_seq=from_seq,
        to_seq=to_seq,
        prev_hash=prev_hash,
        head_hash=head_hash,
        summary=actual,
        entries=tuple(out),
        wire_bytes=envelope.wire_bytes,
    )


# --- acknowledgements and refusals ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """Central's signed statement that it holds the terminal's chain through ``acked_seq``."""

    terminal_id: str
    acked_seq: int
    head_hash: bytes
    central_time_ms: int

    def __post_init__(self) -> None:
        assert self.acked_seq >= 0
        assert self.central_time_ms >= 0
        assert len(self.head_hash) == HASH_BYTES


def build_ack(
    terminal_id: str, acked_seq: int, head_hash: bytes, central_time_ms: int, signer: Signer
) -> bytes:
    """Sign an ack: central holds ``terminal_id``'s entries 1..acked_seq ending in head_hash."""
    _check_terminal_id(terminal_id)
    if acked_seq < 0 or len(head_hash) != HASH_BYTES or central_time_ms < 0:
        raise BuildError("ack needs acked_seq >= 0, a 32-byte head hash and a time")
    body = {
        "terminal_id": terminal_id,
        "acked_seq": acked_seq,
        "head_hash": head_hash.hex(),
        "central_time_ms": central_time_ms,
    }
    return _seal(ACK_TYPE, body, signer)


def _ack_from_body(body: Mapping[str, Any], terminal_id: str) -> Ack:
    _exact_keys(body, {"terminal_id", "acked_seq", "head_hash", "central_time_ms"}, set(), "ack")
    if body["terminal_id"] != terminal_id:
        raise WrongTerminalError("the ack is for another terminal")
    return Ack(
        terminal_id=terminal_id,
        acked_seq=_int(body["acked_seq"], "acked_seq"),
        head_hash=_hash_from_hex(body["head_hash"], "head_hash"),
        central_time_ms=_int(body["central_time_ms"], "central_time_ms"),
    )


def verify_ack(data: bytes, central_public_key: bytes, terminal_id: str) -> Ack:
    """Check an ack from central for ``terminal_id`` (signature, structure, addressee)."""
    body = _open_small(data, expected_type=ACK_TYPE, public_key=central_public_key)
    return _ack_from_body(body, terminal_id)


class RefusalKind(enum.StrEnum):
    """Answers to a batch that are not acks."""

    GAP = "gap"
    """Central expects an earlier seq: resend from ``expected_seq``."""
    RETRY_LATER = "retry-later"
    """Central is busy or its storage failed: retry with backoff."""
    TOO_LARGE = "too-large"
    """The batch exceeds central's bounds: resend in smaller batches."""
    REVOKED = "revoked"
    """The terminal's key was revoked: stop, a technician must act."""
    QUARANTINED = "quarantined"
    """Central saw a fork in this terminal's chain: stop, an operator must act."""
    UNKNOWN_TERMINAL = "unknown-terminal"
    """Central has no enrolled terminal of that id: enroll first."""
    REJECTED = "rejected"
    """Malformed, badly signed, or inconsistent: resending the same bytes cannot help."""


RETRYABLE: Mapping[RefusalKind, bool] = {
    RefusalKind.GAP: True,
    RefusalKind.RETRY_LATER: True,
    RefusalKind.TOO_LARGE: True,
    RefusalKind.REVOKED: False,
    RefusalKind.QUARANTINED: False,
    RefusalKind.UNKNOWN_TERMINAL: False,
    RefusalKind.REJECTED: False,
}

REFUSAL_MESSAGES: Mapping[RefusalKind, Mapping[str, str]] = {
    RefusalKind.GAP: {
        "en": "Central expects earlier entries; resending from the expected one.",
        "ru": "Центр ожидает более ранние записи; повторная отправка с ожидаемой.",
    },
    RefusalKind.RETRY_LATER: {
        "en": "Central is busy; the upload will be retried.",
        "ru": "Центр занят; отправка будет повторена.",
    },
    RefusalKind.TOO_LARGE: {
        "en": "The batch is too large for central; sending smaller batches.",
        "ru": "Пакет слишком велик для центра; отправка меньшими пакетами.",
    },
    RefusalKind.REVOKED: {
        "en": "This terminal was revoked by central. Call the service desk.",
        "ru": "Терминал отозван центром. Обратитесь в службу поддержки.",
    },
    RefusalKind.QUARANTINED: {
        "en": "Central quarantined this terminal (journal fork). Call the service desk.",
        "ru": "Центр поместил терминал в карантин (расхождение журнала). "
        "Обратитесь в службу поддержки.",
    },
    RefusalKind.UNKNOWN_TERMINAL: {
        "en": "Central does not know this terminal. Enroll it: lobbypay provision.",
        "ru": "Центр не знает этот терминал. Зарегистрируйте его: lobbypay provision.",
    },
    RefusalKind.REJECTED: {
        "en": "Central rejected the upload as invalid. Run lobbypay doctor.",
        "ru": "Центр отклонил пакет как некорректный. Запустите lobbypay doctor.",
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A typed answer to a batch that is not an ack."""

    kind: RefusalKind
    terminal_id: str | None
    reason: str
    """A stable code, e.g. a SyncProtocolError.reason or 'fork'."""
    message: str
    central_time_ms: int
    expected_seq: int | None = None
    request_sha256: str | None = None
    """Hex SHA-256 of the request this answers (see :func:`parse_answer`)."""

    def __post_init__(self) -> None:
        assert (self.expected_seq is not None) == (self.kind is RefusalKind.GAP)
        assert self.request_sha256 is None or len(self.request_sha256) == 64

    @property
    def retryable(self) -> bool:
        return RETRYABLE[self.kind]


def build_refusal(refusal: Refusal, signer: Signer) -> bytes:
    """Sign a refusal (central's side)."""
    body: dict[str, Any] = {
        "error": refusal.kind.value,
        "retryable": refusal.retryable,
        "terminal_id": refusal.terminal_id,
        "reason": refusal.reason,
        "message": refusal.message,
        "central_time_ms": refusal.central_time_ms,
    }
    if refusal.expected_seq is not None:
        body["expected_seq"] = refusal.expected_seq
    if refusal.request_sha256 is not None:
        body["request_sha256"] = refusal.request_sha256
    return _seal(REFUSAL_TYPE, body, signer)


def request_digest(request: bytes) -> str:
    """The ``request_sha256`` a refusal carries for the request bytes it answers."""
    return hashlib.sha256(request).hexdigest()


def _refusal_from_body(body: Mapping[str, Any], terminal_id: str) -> Refusal:
    _exact_keys(
        body,
        {"error", "retryable", "terminal_id", "reason", "message", "central_time_ms"},
        {"expected_seq", "request_sha256"},
        "refusal",
    )
    try:
        kind = RefusalKind(body["error"])
    except ValueError:
        raise MalformedError("refusal of an unknown kind") from None
    if body["terminal_id"] not in (terminal_id, None):
        raise WrongTerminalError("the refusal is for another terminal")
    if body["retryable"] is not RETRYABLE[kind]:
        raise MalformedError("refusal retryable flag contradicts its kind")
    expected = body.get("expected_seq")
    if (expected is not None) != (kind is RefusalKind.GAP):
        raise MalformedError("expected_seq comes with a gap and only with a gap")
    return Refusal(
        kind=kind,
        terminal_id=body["terminal_id"],
        reason=_str(body["reason"], "reason", chars_max=TEXT_CHARS_MAX),
        message=_str(body["message"], "message", chars_max=2000),
        central_time_ms=_int(body["central_time_ms"], "central_time_ms"),
        expected_seq=None if expected is None else _int(expected, "expected_seq", low=1),
        request_sha256=_optional_digest(body.get("request_sha256")),
    )


def _optional_digest(value: Any) -> str | None:
    if value is None:
        return None
    return _hash_from_hex(value, "request_sha256").hex()


def parse_answer(
    data: bytes, *, central_public_key: bytes, terminal_id: str, request: bytes | None = None
) -> Ack | Refusal:
    """Read central's answer to a batch: a verified :class:`Ack` or :class:`Refusal`.

    Raises :class:`SyncProtocolError` when the answer is neither, or does not
    verify against the pinned central key; the agent must then treat the upload
    as failed-retryable (never as a final refusal). With ``request`` (the bytes
    that were sent), a refusal that names the digest of other bytes — a batch
    damaged on the way, which central could not attribute — also raises
    :class:`WrongTerminalError`, so damage in transit never stops a terminal.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedError("answer is not UTF-8") from None
    is_ack = '"type":"ack"' in text
    if is_ack:
        return verify_ack(data, central_public_key, terminal_id)
    body = _open_small(data, expected_type=REFUSAL_TYPE, public_key=central_public_key)
    refusal = _refusal_from_body(body, terminal_id)
    if (
        request is not None
        and refusal.request_sha256 is not None
        and refusal.request_sha256 != request_digest(request)
    ):
        raise WrongTerminalError("the refusal answers a request other than the one sent")
    return refusal


# --- enrollment ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollRequest:
    """A terminal's request to be enrolled, signed with the key it enrolls."""

    terminal_id: str
    public_key: bytes
    registration_code: str
    location: str
    label: str
    created_ms: int

    def __post_init__(self) -> None:
        assert len(self.public_key) == signing.PUBLIC_KEY_BYTES


def build_enroll_request(request: EnrollRequest, signer: Signer) -> bytes:
    """Sign an enrollment request with the terminal's own key (proof of possession)."""
    _check_terminal_id(request.terminal_id)
    if not REGISTRATION_CODE_PATTERN.match(request.registration_code):
        raise BuildError("registration code must be 6-64 letters, digits or dashes")
    body = {
        "terminal_id": request.terminal_id,
        "public_key": request.public_key.hex(),
        "registration_code": request.registration_code,
        "location": request.location,
        "label": request.label,
        "created_ms": request.created_ms,
    }
    return _seal(ENROLL_REQUEST_TYPE, body, signer)


def verify_enroll_request(data: bytes) -> EnrollRequest:
    """Check an enrollment request is well-formed and signed by the key it carries."""
    _v, body, signature, signing_input = _open_signed(
        data, expected_type=ENROLL_REQUEST_TYPE, bytes_max=ENVELOPE_BYTES_MAX
    )
    _exact_keys(
        body,
        {"terminal_id", "public_key", "registration_code", "location", "label", "created_ms"},
        set(),
        "enroll-request",
    )
    key_hex = body["public_key"]
    if not isinstance(key_hex, str) or len(key_hex) != 2 * signing.PUBLIC_KEY_BYTES:
        raise MalformedError("public_key must be 32 bytes in lowercase hex")
    try:
        public_key = bytes.fromhex(key_hex)
    except ValueError:
        raise MalformedError("public_key is not hex") from None
    if public_key.hex() != key_hex:
        raise MalformedError("public_key must be lowercase hex")
    _check_signature(public_key, signature, signing_input, ENROLL_REQUEST_TYPE)
    if body["terminal_id"] != terminal_id_from_public_key(public_key):
        raise MalformedError("terminal_id is not the one derived from public_key")
    return EnrollRequest(
        terminal_id=_str(
            body["terminal_id"], "terminal_id", pattern=TERMINAL_ID_PATTERN, chars_max=64
        ),
        public_key=public_key,
        registration_code=_str(
            body["registration_code"],
            "registration_code",
            pattern=REGISTRATION_CODE_PATTERN,
            chars_max=64,
        ),
        location=_str(body["location"], "location", chars_max=TEXT_CHARS_MAX),
        label=_str(body["label"], "label", chars_max=TEXT_CHARS_MAX),
        created_ms=_int(body["created_ms"], "created_ms"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrollment:
    """Central's signed answer: the terminal is enrolled at ``location``."""

    terminal_id: str
    location: str
    label: str
    enrolled_ms: int


def build_enrollment(enrollment: Enrollment, signer: Signer) -> bytes:
    """Sign central's answer to a successful enrollment."""
    body = {
        "terminal_id": enrollment.terminal_id,
        "location": enrollment.location,
        "label": enrollment.label,
        "enrolled_ms": enrollment.enrolled_ms,
    }
    return _seal(ENROLLMENT_TYPE, body, signer)


def verify_enrollment(data: bytes, central_public_key: bytes, terminal_id: str) -> Enrollment:
    """Check central's enrollment answer with the pinned central key."""
    body = _open_small(data, expected_type=ENROLLMENT_TYPE, public_key=central_public_key)
    _exact_keys(body, {"terminal_id", "location", "label", "enrolled_ms"}, set(), "enrollment")
    if body["terminal_id"] != terminal_id:
        raise WrongTerminalError("the enrollment is for another terminal")
    return Enrollment(
        terminal_id=terminal_id,
        location=_str(body["location"], "location", chars_max=TEXT_CHARS_MAX),
        label=_str(body["label"], "label", chars_max=TEXT_CHARS_MAX),
        enrolled_ms=_int(body["enrolled_ms"], "enrolled_ms"),
    )


# --- heartbeats -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """A terminal's periodic status report (DESIGN.md, "The agent")."""

    terminal_id: str
    ts_ms: int
    queue_depth: int
    oldest_pending_age_s: int | None
    software_version: str
    catalog_version: int | None
    config_version: int | None
    health: Mapping[str, str | int | bool]
    """Device health, e.g. {"printer": "ok", "paper_low": True}."""

    def __post_init__(self) -> None:
        assert self.queue_depth >= 0


def build_heartbeat(heartbeat: Heartbeat, signer: Signer) -> bytes:
    """Sign a heartbeat with the terminal's key."""
    _check_terminal_id(heartbeat.terminal_id)
    body = {
        "terminal_id": heartbeat.terminal_id,
        "ts_ms": heartbeat.ts_ms,
        "queue_depth": heartbeat.queue_depth,
        "oldest_pending_age_s": heartbeat.oldest_pending_age_s,
        "software_version": heartbeat.software_version,
        "catalog_version": heartbeat.catalog_version,
        "config_version": heartbeat.config_version,
        "health": dict(heartbeat.health),
    }
    return _seal(HEARTBEAT_TYPE, body, signer)


def verify_heartbeat(data: bytes, public_key: bytes) -> Heartbeat:
    """Check a heartbeat against the enrolled key of the terminal it names."""
    body = _open_small(data, expected_type=HEARTBEAT_TYPE, public_key=public_key)
    _exact_keys(
        body,
        {
            "terminal_id",
            "ts_ms",
            "queue_depth",
            "oldest_pending_age_s",
            "software_version",
            "catalog_version",
            "config_version",
            "health",
        },
        set(),
        "heartbeat",
    )
    health = body["health"]
    if not isinstance(health, dict) or len(health) > HEARTBEAT_HEALTH_KEYS_MAX:
        raise MalformedError(f"health must be an object of at most {HEARTBEAT_HEALTH_KEYS_MAX}")
    for key, value in health.items():
        if len(key) > 64 or not isinstance(value, str | int | bool):
            raise MalformedError("health values must be short strings, integers or booleans")
        if isinstance(value, str) and len(value) > TEXT_CHARS_MAX:
            raise MalformedError("health values must be short strings, integers or booleans")

    def optional_int(name: str) -> int | None:
        value = body[name]
        return None if value is None else _int(value, name)

    return Heartbeat(
        terminal_id=_str(
            body["terminal_id"], "terminal_id", pattern=TERMINAL_ID_PATTERN, chars_max=64
        ),
        ts_ms=_int(body["ts_ms"], "ts_ms"),
        queue_depth=_int(body["queue_depth"], "queue_depth"),
        oldest_pending_age_s=optional_int("oldest_pending_age_s"),
        software_version=_str(body["software_version"], "software_version", chars_max=64),
        catalog_version=optional_int("catalog_version"),
        config_version=optional_int("config_version"),
        health=health,
    )


# --- configuration bundles and revocation lists -----------------------------------

CONFIG_SECTIONS = ("limits", "surcharge_rules", "timeouts", "offline_policy")
SCOPE_PATTERN = re.compile(r"^(\*|location:[^\s]{1,128}|group:[^\s]{1,128})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigBundle:
    """Signed settings for the terminals of one location or group (TUF-style versioned).

    ``scope`` is ``"*"``, ``"location:<id>"`` or ``"group:<name>"``. The sections are
    canonical JSON values: ``limits`` (amount limits, minor units), ``surcharge_rules``,
    ``timeouts`` (seconds), ``offline_policy`` (the journal's offline limits).
    """

    version: int
    scope: str
    issued_ms: int
    expires_ms: int
    limits: Mapping[str, Any]
    surcharge_rules: Sequence[Any]
    timeouts: Mapping[str, Any]
    offline_policy: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.version < 1 or self.expires_ms <= self.issued_ms:
            raise ValueError("config version must be >= 1 and expire after it is issued")
        if not SCOPE_PATTERN.match(self.scope):
            raise ValueError("scope must be '*', 'location:<id>' or 'group:<name>'")


def build_config_bundle(bundle: ConfigBundle, signer: Signer) -> bytes:
    """Sign a configuration bundle with central's key."""
    body = {
        "version": bundle.version,
        "scope": bundle.scope,
        "issued_ms": bundle.issued_ms,
        "expires_ms": bundle.expires_ms,
        "limits": dict(bundle.limits),
        "surcharge_rules": list(bundle.surcharge_rules),
        "timeouts": dict(bundle.timeouts),
        "offline_policy": dict(bundle.offline_policy),
    }
    return _seal(CONFIG_TYPE, body, signer)


def _check_fresh(
    what: str, version: int, expires_ms: int, *, now_ms: int, current_version: int
) -> None:
    if version < current_version:
        raise RollbackError(f"{what} version {version} is older than {current_version}")
    if expires_ms <= now_ms:
        raise ExpiredError(f"{what} version {version} expired")


def verify_config_bundle(
    data: bytes, *, central_public_key: bytes, now_ms: int, current_version: int = 0
) -> ConfigBundle:
    """Check a bundle: central's signature, structure, not older than held, not expired."""
    body = _open_small(data, expected_type=CONFIG_TYPE, public_key=central_public_key)
    _exact_keys(
        body, {"version", "scope", "issued_ms", "expires_ms", *CONFIG_SECTIONS}, set(), "config"
    )
    for name in ("limits", "timeouts", "offline_policy"):
        if not isinstance(body[name], dict):
            raise MalformedError(f"config {name} must be an object")
    if not isinstance(body["surcharge_rules"], list):
        raise MalformedError("config surcharge_rules must be a list")
    scope = _str(body["scope"], "scope", pattern=SCOPE_PATTERN, chars_max=140)
    version = _int(body["version"], "version", low=1)
    issued_ms = _int(body["issued_ms"], "issued_ms")
    expires_ms = _int(body["expires_ms"], "expires_ms", low=issued_ms + 1)
    _check_fresh("config", version, expires_ms, now_ms=now_ms, current_version=current_version)
    return ConfigBundle(
        version=version,
        scope=scope,
        issued_ms=issued_ms,
        expires_ms=expires_ms,
        limits=body["limits"],
        surcharge_rules=body["surcharge_rules"],
        timeouts=body["timeouts"],
        offline_policy=body["offline_policy"],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationList:
    """Signed list of revoked terminal ids, versioned and expiring."""

    version: int
    issued_ms: int
    expires_ms: int
    revoked: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.version < 1 or self.expires_ms <= self.issued_ms:
            raise ValueError("revocation list version must be >= 1 and expire after issue")
        if list(self.revoked) != sorted(set(self.revoked)):
            raise ValueError("revoked ids must be sorted and unique")


def build_revocation_list(revocations: RevocationList, signer: Signer) -> bytes:
    """Sign a revocation list with central's key."""
    body = {
        "version": revocations.version,
        "issued_ms": revocations.issued_ms,
        "expires_ms": revocations.expires_ms,
        "revoked": list(revocations.revoked),
    }
    return _seal(REVOCATIONS_TYPE, body, signer)


def verify_revocation_list(
    data: bytes, *, central_public_key: bytes, now_ms: int, current_version: int = 0
) -> RevocationList:
    """Check a revocation list: signature, structure, not older than held, not expired."""
    body = _open_small(data, expected_type=REVOCATIONS_TYPE, public_key=central_public_key)
    _exact_keys(body, {"version", "issued_ms", "expires_ms", "revoked"}, set(), "revocations")
    revoked = body["revoked"]
    if not isinstance(revoked, list) or len(revoked) > REVOKED_IDS_MAX:
        raise MalformedError(f"revoked must be a list of at most {REVOKED_IDS_MAX} ids")
    for item in revoked:
        _str(item, "revoked id", pattern=TERMINAL_ID_PATTERN, chars_max=64)
    if revoked != sorted(set(revoked)):
        raise MalformedError("revoked ids must be sorted and unique")
    version = _int(body["version"], "version", low=1)
    issued_ms = _int(body["issued_ms"], "issued_ms")
    expires_ms = _int(body["expires_ms"], "expires_ms", low=issued_ms + 1)
    _check_fresh("revocations", version, expires_ms, now_ms=now_ms, current_version=current_version)
    return RevocationList(
        version=version, issued_ms=issued_ms, expires_ms=expires_ms, revoked=tuple(revoked)
    )
