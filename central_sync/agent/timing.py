"""Time for the sync agent: a clock it can be given, and retry backoff with full jitter.

The agent reads time and waits only through a :class:`Clock`, so the same code
runs on the system clock in production and on a virtual clock in the
deterministic simulation (``central_sync.simnet``), where a day of retries takes
milliseconds and replays exactly from a seed.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Protocol

# 2**60 times any sane initial delay is far beyond any sane maximum; capping the
# exponent keeps the float finite however long the failures go on.
_EXPONENT_MAX = 60


class Clock(Protocol):
    """Where the agent gets time from and how it waits."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, deadlines)."""
        ...

    def time_ms(self) -> int:
        """Wall-clock milliseconds since the Unix epoch (heartbeats, catalog expiry)."""
        ...

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait until ``event`` is set or ``timeout_s`` passed; True if it was set."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time_ns`` and asyncio timeouts."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        if timeout_s <= 0:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            return False
        return True


SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential backoff with full jitter.

    After the n-th failure in a row the delay is drawn uniformly from
    ``[0, min(max_s, initial_s * 2**(n-1))]`` ("Full Jitter", M. Brooker,
    "Exponential Backoff And Jitter", AWS Architecture Blog, 2015): spreading
    retries over the whole window keeps a fleet of terminals that lost central
    at the same moment from coming back at the same moment.
    """

    initial_s: float
    max_s: float

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s):
            raise ValueError("need 0 < initial_s <= max_s")

    def cap_s(self, failures: int) -> float:
        """The upper bound of the delay after ``failures`` failures in a row (>= 1)."""
        if failures < 1:
            raise ValueError("failures must be at least 1")
        exponent = min(failures - 1, _EXPONENT_MAX)
        return min(self.max_s, self.initial_s * (2.0**exponent))

    def delay_s(
        self, failures: int, rng: random.Random, *, retry_after_s: float | None = None
    ) -> float:
        """The delay before the next attempt.

        ``retry_after_s`` (central's Retry-After) raises the delay to at least
        that much, but never beyond ``max_s``.
        """
        delay = rng.uniform(0.0, self.cap_s(failures))
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, min(retry_after_s, self.max_s))
        return delay
