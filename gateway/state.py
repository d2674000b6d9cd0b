"""The gateway app's state: app keys, the per-request audit record, the runtime.

Kept apart from ``app.py`` so the handlers can reach the state without
importing the application factory (which imports them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from central_sync.journal import Journal
from firmware_config.settings import Settings
from gateway.agents import AgentRegistry
from gateway.errors import RetryLaterError
from gateway.identifiers import AccountPolicy
from gateway.security import BasicAuthenticator, HmacVerifier, RateLimiter
from gateway.service import PaymentService

__all__ = [
    "Audit",
    "ClockMs",
    "JournalOpener",
    "Runtime",
    "audit_key",
    "journal_opener_key",
    "runtime_key",
    "settings_key",
]

JournalOpener = Callable[[Settings], Awaitable[Journal]]
ClockMs = Callable[[], int]


@dataclass(slots=True)
class Audit:
    """What one request did, for its audit line. Never a secret, never a card number."""

    protocol: str
    agent: str = "-"
    action: str = "-"
    txn_id: str = "-"
    account: str = "-"
    amount_minor: int | None = None
    payment_id: str = "-"
    outcome: str = "-"
    lang: str = "ru"
    osmp_txn_id: str | None = None
    pay_started: bool = False


@dataclass(slots=True)
class Runtime:
    """Mutable state of a running gateway; the service is set up in ``cleanup_ctx``."""

    settings: Settings
    agents: AgentRegistry
    policy: AccountPolicy
    clock_ms: ClockMs
    basic: BasicAuthenticator
    hmac: HmacVerifier
    limiter: RateLimiter
    in_flight_max: int
    openapi_json: bytes
    in_flight: int = 0
    draining: bool = False
    service: PaymentService | None = None
    counters: dict[str, int] = field(default_factory=dict)
    overload_refused: int = 0
    """Overload refusals since the last ``gateway_overload`` summary line."""
    overload_logged_at: float = -1e9
    overload_answers: dict[str, tuple[int, bytes, str, dict[str, str]]] = field(
        default_factory=dict
    )
    """The overload answer per protocol, rendered once."""

    def svc(self) -> PaymentService:
        """The payment service, or retry-later while starting or stopping."""
        if self.service is None or self.draining:
            raise RetryLaterError("the gateway is starting or stopping", reason="not-ready")
        return self.service

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


settings_key: Final = web.AppKey("settings", Settings)
runtime_key: Final = web.AppKey("runtime", Runtime)
journal_opener_key: Final[web.AppKey[JournalOpener]] = web.AppKey("journal_opener")
audit_key: Final = web.RequestKey("audit", Audit)
