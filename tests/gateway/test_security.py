"""Basic auth with its cache, HMAC verification, the nonce cache at its bound, token buckets."""

from __future__ import annotations

import asyncio
import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.agents import AgentRegistry, parse_agents
from gateway.errors import AuthenticationError, RateLimitedError, RetryLaterError
from gateway.security import (
    BasicAuthenticator,
    HmacVerifier,
    NonceCache,
    RateLimiter,
    SignedRequest,
    TokenBucket,
    sign_request,
)
from tests.gateway.support import BANK_KEY_ID, BANK_PASSWORD, BANK_SECRET, agents_toml, basic

NOW_S = 1_750_000_000


@pytest.fixture(scope="module")
def registry() -> AgentRegistry:
    return parse_agents(agents_toml())


def _signed(headers: dict[str, str], body: bytes = b"", **over: str) -> SignedRequest:
    fields = {"method": "POST", "path": "/v1/payments", "query": "", "idempotency_key": "k1"}
    fields.update(over)
    return SignedRequest(headers=headers, body=body, **fields)  # type: ignore[arg-type]


def _headers(**over: object) -> dict[str, str]:
    kwargs: dict[str, object] = {
        "method": "POST",
        "path": "/v1/payments",
        "body": b"{}",
        "timestamp": NOW_S,
        "idempotency_key": "k1",
    }
    kwargs.update(over)
    return sign_request(BANK_KEY_ID, BANK_SECRET, **kwargs)  # type: ignore[arg-type]


def _verifier(registry: AgentRegistry, entries_max: int = 1000) -> HmacVerifier:
    return HmacVerifier(
        registry, window_s=300, nonce_entries_max=entries_max, clock_s=lambda: NOW_S
    )


def test_hmac_valid_request_names_its_agent(registry: AgentRegistry) -> None:
    assert _verifier(registry).verify(_signed(_headers(), b"{}")).id == "bank"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b'{"x":1}'}, "bad-signature"),
        ({"path": "/v1/payments/x"}, "bad-signature"),
        ({"query": "a=1"}, "bad-signature"),
        ({"method": "GET"}, "bad-signature"),
        ({"idempotency_key": "k2"}, "bad-signature"),
    ],
)
def test_hmac_any_change_to_a_signed_part_is_refused(
    registry: AgentRegistry, change: dict[str, object], reason: str
) -> None:
    body = change.pop("body", b"{}")
    request = _signed(_headers(), body, **change)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError) as info:
        _verifier(registry).verify(request)
    assert info.value.reason == reason


def test_hmac_replay_window_and_nonce_reuse(registry: AgentRegistry) -> None:
    verifier = _verifier(registry)
    headers = _headers(nonce="a" * 16)
    verifier.verify(_signed(headers, b"{}"))
    with pytest.raises(AuthenticationError) as info:
        verifier.verify(_signed(headers, b"{}"))
    assert info.value.reason == "replay"
    for ts in (NOW_S - 301, NOW_S + 301):
        with pytest.raises(AuthenticationError) as info:
            verifier.verify(_signed(_headers(timestamp=ts), b"{}"))
        assert info.value.reason == "stale-timestamp"
    verifier.verify(_signed(_headers(timestamp=NOW_S + 300), b"{}"))


def test_hmac_bad_signature_does_not_consume_the_nonce(registry: AgentRegistry) -> None:
    verifier = _verifier(registry)
    good = _headers(nonce="b" * 16)
    forged = {**good, "X-LP-Signature": "0" * 64}
    with pytest.raises(AuthenticationError):
        verifier.verify(_signed(forged, b"{}"))
    verifier.verify(_signed(good, b"{}"))


def test_nonce_cache_full_of_live_nonces_refuses_then_recovers_after_expiry() -> None:
    cache = NonceCache(window_s=10, entries_max=3)
    for i in range(3):
        assert cache.add("k", f"n{i}", now_s=100.0)
    with pytest.raises(RetryLaterError):
        cache.add("k", "n3", now_s=100.0)
    assert not cache.add("k", "n0", now_s=119.0)  # still remembered: a replay
    assert cache.add("k", "n3", now_s=120.0)  # the first three expired
    assert len(cache) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["X-LP-Key-Id", "X-LP-Timestamp", "X-LP-Nonce", "X-LP-Signature"]),
        st.text(max_size=80),
    )
)
def test_hmac_any_header_values_fail_with_authentication_error(
    registry: AgentRegistry, headers: dict[str, str]
) -> None:
    with pytest.raises(AuthenticationError):
        _verifier(registry).verify(_signed(headers, b""))


async def test_basic_auth_caches_verified_credentials(registry: AgentRegistry) -> None:
    auth = BasicAuthenticator(registry, cache_entries_max=1, checks_max=1)
    header = basic()["Authorization"]
    assert (await auth.authenticate(header)).id == "bank"
    assert (await auth.authenticate(header)).id == "bank"
    with pytest.raises(AuthenticationError):
        await auth.authenticate(basic("bank", BANK_PASSWORD + "x")["Authorization"])


async def test_many_connections_with_the_same_credentials_share_one_password_check(
    registry: AgentRegistry,
) -> None:
    auth = BasicAuthenticator(registry, cache_entries_max=10, checks_max=1)
    header = basic()["Authorization"]
    agents = await asyncio.gather(*(auth.authenticate(header) for _ in range(200)))
    assert {a.id for a in agents} == {"bank"}  # none refused as "too many checks waiting"
    wrong = basic("bank", "nope")["Authorization"]
    results = await asyncio.gather(
        *(auth.authenticate(wrong) for _ in range(100)), return_exceptions=True
    )
    assert all(isinstance(r, AuthenticationError) for r in results)


async def test_basic_auth_bounds_waiting_password_checks(registry: AgentRegistry) -> None:
    auth = BasicAuthenticator(registry, cache_entries_max=10, checks_max=1)
    headers = [basic("bank", f"guess-{i}")["Authorization"] for i in range(60)]
    results = await asyncio.gather(*(auth.authenticate(h) for h in headers), return_exceptions=True)
    assert all(isinstance(r, (AuthenticationError, RetryLaterError)) for r in results)
    assert any(isinstance(r, RetryLaterError) for r in results)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=120),
        st.binary(max_size=90).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    )
)
async def test_basic_auth_any_header_is_refused_with_authentication_error(header: str) -> None:
    auth = BasicAuthenticator(parse_agents(agents_toml()), cache_entries_max=4, checks_max=2)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(header)


def test_token_bucket_allows_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=3, now_s=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) > 0
    assert bucket.take(100.0) == 0.0  # refills, but never beyond the burst
    assert [bucket.take(100.0) for _ in range(3)][-1] > 0


def test_rate_limiter_is_per_agent(registry: AgentRegistry) -> None:
    limiter = RateLimiter(lambda: 0.0)
    limited, bank = registry.agents["limited"], registry.agents["bank"]
    for _ in range(3):
        limiter.check(limited)
    with pytest.raises(RateLimitedError) as info:
        limiter.check(limited)
    assert info.value.retry_after_s == 1
    limiter.check(bank)
