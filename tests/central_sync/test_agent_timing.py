"""Full-jitter backoff bounds and the system clock's bounded wait."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central_sync.agent.timing import SYSTEM_CLOCK, Backoff


@given(
    initial=st.floats(0.001, 10.0),
    factor=st.floats(1.0, 1000.0),
    failures=st.integers(1, 10_000),
    seed=st.integers(0, 2**32),
)
def test_backoff_delay_stays_within_the_full_jitter_window(
    initial: float, factor: float, failures: int, seed: int
) -> None:
    backoff = Backoff(initial_s=initial, max_s=initial * factor)
    delay = backoff.delay_s(failures, random.Random(seed))
    assert 0.0 <= delay <= backoff.cap_s(failures) <= backoff.max_s
    assert backoff.cap_s(failures) == min(backoff.max_s, initial * 2.0 ** min(failures - 1, 60))


def test_backoff_window_doubles_then_stops_at_the_maximum() -> None:
    backoff = Backoff(initial_s=1.0, max_s=300.0)
    assert [backoff.cap_s(n) for n in range(1, 12)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        64.0,
        128.0,
        256.0,
        300.0,
        300.0,
    ]
    assert backoff.cap_s(10**9) == 300.0


def test_backoff_spreads_delays_over_the_whole_window() -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0)
    rng = random.Random(1)
    delays = [backoff.delay_s(4, rng) for _ in range(2000)]
    assert min(delays) < 0.5
    assert max(delays) > 7.5
    assert 3.5 < sum(delays) / len(delays) < 4.5


def test_retry_after_raises_the_delay_but_never_beyond_the_maximum() -> None:
    backoff = Backoff(initial_s=0.1, max_s=10.0)
    rng = random.Random(2)
    assert all(backoff.delay_s(1, rng, retry_after_s=5.0) >= 5.0 for _ in range(100))
    assert all(backoff.delay_s(1, rng, retry_after_s=3600.0) <= 10.0 for _ in range(100))


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 5.0)])
def test_backoff_refuses_a_nonsense_window(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(initial_s=initial, max_s=maximum)


def test_backoff_needs_at_least_one_failure() -> None:
    with pytest.raises(ValueError, match="failures"):
        Backoff(initial_s=1.0, max_s=2.0).cap_s(0)


async def test_system_clock_wait_times_out_or_returns_when_set() -> None:
    event = asyncio.Event()
    started = time.monotonic()
    assert await SYSTEM_CLOCK.wait(event, 0.05) is False
    assert 0.04 <= time.monotonic() - started < 1.0
    asyncio.get_running_loop().call_later(0.02, event.set)
    started = time.monotonic()
    assert await SYSTEM_CLOCK.wait(event, 10.0) is True
    assert time.monotonic() - started < 1.0
    assert await SYSTEM_CLOCK.wait(event, 0.0) is True
