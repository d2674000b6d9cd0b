"""Authenticating agents and bounding what they may do.

Theory of operation
-------------------
**OSMP** agents authenticate with HTTP Basic (RFC 7617) or a TLS client
certificate (RFC 8446 section 4.4.2) whose SHA-256 fingerprint is pinned in the
agents file; with both, they must name the same agent. Basic passwords are
stored as scrypt hashes, which cost ~50 ms each on the target, so
:class:`BasicAuthenticator` verifies a given ``Authorization`` value once and
then remembers it (keyed by a keyed BLAKE2b digest of the header, never the
header itself) in a bounded LRU. At most ``password_checks_max`` scrypt runs
happen at once, in worker threads, so a password-guessing client cannot stall
the event loop or exhaust memory.

**JSON API** requests are signed with HMAC-SHA256 (RFC 2104) under a key the
agent shares with the gateway. Headers::

    X-LP-Key-Id:    the key's id
    X-LP-Timestamp: Unix time in seconds
    X-LP-Nonce:     16..64 characters of [A-Za-z0-9_-], fresh for every request
    X-LP-Signature: lowercase hex HMAC-SHA256(key, string_to_sign)

and the string to sign is the lines (joined with ``\\n``)::

    LP1-HMAC-SHA256
    <METHOD>
    <path, as sent>
    <query string, as sent, or empty>
    <timestamp>
    <nonce>
    <key id>
    <Idempotency-Key header or empty>
    <lowercase hex SHA-256 of the body>

A request is accepted only if the timestamp is within
``hmac_replay_window_s`` of the gateway's clock and its nonce has not been seen
for this key within the window (:class:`NonceCache`). A replay inside the
window hits the cache; one outside it fails the timestamp check. The cache is
bounded; when it is full of live nonces, signed requests are refused with
retry-later rather than accepted unchecked.

**Rate limits** are token buckets (:class:`TokenBucket`), one per agent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.agents import Agent, AgentRegistry, HmacKey, hash_password, verify_password
from gateway.errors import AuthenticationError, ForbiddenError, RateLimitedError, RetryLaterError

__all__ = [
    "SIGNATURE_SCHEME",
    "BasicAuthenticator",
    "HmacVerifier",
    "NonceCache",
    "SignedRequest",
    "TokenBucket",
    "sign_request",
    "string_to_sign",
]

SIGNATURE_SCHEME: Final = "LP1-HMAC-SHA256"
HEADER_KEY_ID: Final = "X-LP-Key-Id"
HEADER_TIMESTAMP: Final = "X-LP-Timestamp"
HEADER_NONCE: Final = "X-LP-Nonce"
HEADER_SIGNATURE: Final = "X-LP-Signature"
AUTH_HEADER_CHARS_MAX: Final = 512
PASSWORD_WAITERS_MAX: Final = 32
"""Most requests queued for a password check; beyond this, retry-later."""

_NONCE_RE: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIG_RE: Final = re.compile(r"[0-9a-f]{64}")
_TS_RE: Final = re.compile(r"[0-9]{1,12}")
_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# -- HTTP Basic -----------------------------------------------------------------------


class BasicAuthenticator:
    """Checks ``Authorization: Basic ...`` against the agents' scrypt hashes, with a cache."""

    def __init__(self, registry: AgentRegistry, *, cache_entries_max: int, checks_max: int) -> None:
        assert cache_entries_max >= 1
        assert checks_max >= 1
        self._registry = registry
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self._cache_max = cache_entries_max
        self._cache_key = secrets.token_bytes(32)
        self._checks = asyncio.Semaphore(checks_max)
        self._waiting = 0
        self._verifying: dict[bytes, asyncio.Future[str]] = {}

    def _digest(self, header: str) -> bytes:
        return hashlib.blake2b(header.encode("latin-1"), key=self._cache_key).digest()

    @staticmethod
    def _decode(header: str) -> tuple[str, str]:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise AuthenticationError("Authorization must be Basic", reason="scheme")
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise AuthenticationError(
                "Basic credentials are malformed", reason="malformed"
            ) from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise AuthenticationError("Basic credentials are malformed", reason="malformed")
        return user, password

    async def authenticate(self, header: str) -> Agent:
        """The agent these Basic credentials belong to; AuthenticationError otherwise."""
        if len(header) > AUTH_HEADER_CHARS_MAX or not header.isascii():
            raise AuthenticationError("Authorization header is malformed", reason="malformed")
        digest = self._digest(header)
        cached = self._cache.get(digest)
        if cached is not None:
            agent = self._registry.get(cached)
            if agent is not None:
                self._cache.move_to_end(digest)
                return agent
        # Single flight: when many connections open at once with the same
        # credentials (an agent's connection pool after a restart), one scrypt
        # run answers them all instead of each queueing its own.
        pending = self._verifying.get(digest)
        if pending is not None:
            agent_id = await asyncio.shield(pending)
        else:
            pending = asyncio.get_running_loop().create_future()
            self._verifying[digest] = pending
            try:
                agent_id = await self._verify(header)
            except asyncio.CancelledError:
                pending.cancel()
                raise
            except Exception as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: the waiters, if any, re-raise it
                raise
            else:
                pending.set_result(agent_id)
            finally:
                del self._verifying[digest]
            self._cache[digest] = agent_id
            if len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        agent = self._registry.get(agent_id)
        assert agent is not None
        return agent

    async def _verify(self, header: str) -> str:
        user, password = self._decode(header)
        agent = self._registry.get(user)
        if agent is None or agent.password_hash is None:
            # Spend the same time as a real check, so the answer's timing does not
            # tell which agent ids exist.
            await self._check(password, _dummy_hash())
            raise AuthenticationError("unknown agent or wrong password", reason="bad-password")
        if not await self._check(password, agent.password_hash):
            raise AuthenticationError("unknown agent or wrong password", reason="bad-password")
        return agent.id

    async def _check(self, password: str, stored: str) -> bool:
        if self._waiting >= PASSWORD_WAITERS_MAX:
            raise RetryLaterError("too many password checks waiting", reason="auth-busy")
        self._waiting += 1
        try:
            async with self._checks:
                return await asyncio.to_thread(verify_password, password, stored)
        finally:
            self._waiting -= 1


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


# -- HMAC-signed requests -----------------------------------------------------------------


def string_to_sign(
    *,
    method: str,
    path: str,
    query: str,
    timestamp: str,
    nonce: str,
    key_id: str,
    idempotency_key: str,
    body: bytes,
) -> bytes:
    """The exact bytes the agent signs (see the module docstring)."""
    return "\n".join(
        (
            SIGNATURE_SCHEME,
            method.upper(),
            path,
            query,
            timestamp,
            nonce,
            key_id,
            idempotency_key,
            hashlib.sha256(body).hexdigest(),
        )
    ).encode("utf-8")


def sign_request(
    key_id: str,
    secret: bytes,
    *,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    timestamp: int,
    nonce: str | None = None,
    idempotency_key: str = "",
) -> dict[str, str]:
    """The four signature headers for a request (client side: agents' reference, tests, bench)."""
    nonce = nonce or secrets.token_urlsafe(18)
    message = string_to_sign(
        method=method,
        path=path,
        query=query,
        timestamp=str(timestamp),
        nonce=nonce,
        key_id=key_id,
        idempotency_key=idempotency_key,
        body=body,
    )
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: hmac.new(secret, message, hashlib.sha256).hexdigest(),
    }


class NonceCache:
    """Nonces seen within the replay window, per key, in a bounded insertion-ordered map.

    An entry must live as long as a request carrying it could still pass the
    timestamp check: its timestamp may be up to one window ahead of our clock,
    so we keep it for two windows from when we saw it. Expiry times therefore
    grow with insertion order and expired entries are always at the front.
    """

    def __init__(self, *, window_s: int, entries_max: int) -> None:
        assert window_s > 0
        assert entries_max > 0
        self._window_s = window_s
        self._entries_max = entries_max
        self._expiry: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now_s: float) -> None:
        while self._expiry:
            key, expiry = next(iter(self._expiry.items()))
            if expiry > now_s:
                return
            del self._expiry[key]

    def add(self, key_id: str, nonce: str, now_s: float) -> bool:
        """Remember a nonce; False if it was already seen (a replay).

        Raises RetryLaterError when the cache is full of live nonces.
        """
        self._purge(now_s)
        key = (key_id, nonce)
        if key in self._expiry:
            return False
        if len(self._expiry) >= self._entries_max:
            raise RetryLaterError("replay cache is full; retry later", reason="nonce-cache-full")
        self._expiry[key] = now_s + 2 * self._window_s
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedRequest:
    """What the HMAC verifier needs from an HTTP request."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    idempotency_key: str


class HmacVerifier:
    """Verifies signed JSON API requests; see the module docstring."""

    def __init__(
        self,
        registry: AgentRegistry,
        *,
        window_s: int,
        nonce_entries_max: int,
        clock_s: Callable[[], float],
    ) -> None:
        self._registry = registry
        self._window_s = window_s
        self._clock_s = clock_s
        self.nonces = NonceCache(window_s=window_s, entries_max=nonce_entries_max)

    def verify(self, request: SignedRequest) -> Agent:
        """The agent that signed this request; AuthenticationError for anything else."""
        h = request.headers
        key_id = h.get(HEADER_KEY_ID, "")
        timestamp = h.get(HEADER_TIMESTAMP, "")
        nonce = h.get(HEADER_NONCE, "")
        signature = h.get(HEADER_SIGNATURE, "")
        if not (key_id and timestamp and nonce and signature):
            raise AuthenticationError(
                "request is not signed (X-LP-Key-Id, X-LP-Timestamp, X-LP-Nonce, X-LP-Signature)",
                reason="unsigned",
            )
        if (
            _KEY_ID_RE.fullmatch(key_id) is None
            or _TS_RE.fullmatch(timestamp) is None
            or _NONCE_RE.fullmatch(nonce) is None
            or _SIG_RE.fullmatch(signature) is None
        ):
            raise AuthenticationError("signature headers are malformed", reason="malformed")
        key: HmacKey | None = self._registry.hmac_keys.get(key_id)
        if key is None:
            raise AuthenticationError("unknown key id", reason="unknown-key")
        now_s = self._clock_s()
        if abs(int(timestamp) - now_s) > self._window_s:
            raise AuthenticationError(
                f"timestamp is more than {self._window_s} s away from the gateway's clock",
                reason="stale-timestamp",
            )
        expected = hmac.new(
            key.secret,
            string_to_sign(
                method=request.method,
                path=request.path,
                query=request.query,
                timestamp=timestamp,
                nonce=nonce,
                key_id=key_id,
                idempotency_key=request.idempotency_key,
                body=request.body,
            ),
            hashlib.sha256,
        ).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise AuthenticationError("signature does not verify", reason="bad-signature")
        # Only a valid signature consumes its nonce, so nobody can burn an
        # agent's nonces without its key.
        if not self.nonces.add(key_id, nonce, now_s):
            raise AuthenticationError("nonce was already used (replay)", reason="replay")
        agent = self._registry.get(key.agent_id)
        if agent is None:
            raise AuthenticationError("unknown key id", reason="unknown-key")
        return agent


# -- who may do what ------------------------------------------------------------------------


def check_agent_access(agent: Agent, *, protocol: str, remote: str | None) -> None:
    """Refuse a disabled agent, a protocol it may not use, or a source address not allowed."""
    if not agent.enabled:
        raise ForbiddenError("agent is disabled", reason="disabled")
    if protocol not in agent.protocols:
        raise ForbiddenError(f"agent may not use the {protocol} API", reason="protocol")
    if not agent.ip_allowed(remote):
        raise ForbiddenError("source address is not in the agent's allow-list", reason="ip")


class TokenBucket:
    """A token bucket: ``rate_per_s`` tokens a second, at most ``burst`` saved up."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate_per_s: float, burst: int, now_s: float) -> None:
        assert rate_per_s > 0
        assert burst >= 1
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now_s

    def take(self, now_s: float) -> float:
        """Take one token; return 0.0, or the seconds until one is available (refused)."""
        elapsed = max(0.0, now_s - self._stamp)
        self._stamp = max(self._stamp, now_s)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class RateLimiter:
    """One bucket per agent, created on first use (agents are a bounded, known set)."""

    def __init__(self, clock_s: Callable[[], float]) -> None:
        self._clock_s = clock_s
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, agent: Agent) -> None:
        now = self._clock_s()
        bucket = self._buckets.get(agent.id)
        if bucket is None:
            bucket = self._buckets[agent.id] = TokenBucket(agent.rate_per_s, agent.rate_burst, now)
        wait_s = bucket.take(now)
        if wait_s > 0:
            raise RateLimitedError(
                f"more than {agent.rate_per_s} requests/s",
                retry_after_s=max(1, math.ceil(wait_s)),
            )
