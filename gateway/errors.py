"""The gateway's error taxonomy (CONVENTIONS.md 10, "A deliberate error taxonomy").

One base, :class:`GatewayError`. Each error has a stable ``code`` (the JSON
``code`` field, log lines, metrics) and says whether the client may retry.
Neither HTTP statuses nor OSMP result codes live here: ``app.py`` maps errors to
HTTP for the JSON API in one table, ``osmp_handlers.py`` maps them to OSMP result
codes in another (docs/gateway.md lists both).

Messages never contain a secret, a password, a signature or a full card number;
they may name a parameter and say what is wrong with it.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    code: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False


# -- the request itself -------------------------------------------------------


class BadRequestError(GatewayError):
    """A parameter or body is missing, duplicated, oversized or malformed."""

    code = "bad-request"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnknownCommandError(BadRequestError):
    """OSMP ``command`` is neither ``check`` nor ``pay``."""

    code = "unknown-command"


class RouteNotFoundError(GatewayError):
    """No such resource."""

    code = "not-found"


class MethodNotAllowedError(GatewayError):
    """The resource exists but not for this method; ``allowed`` lists the methods that are."""

    code = "method-not-allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class BodyTooLargeError(GatewayError):
    """The request body is larger than ``gateway.body_bytes_max``."""

    code = "body-too-large"


class SlowClientError(GatewayError):
    """The client did not send its body within ``gateway.body_read_timeout_s``."""

    code = "request-timeout"


class AccountFormatError(GatewayError):
    """The account (virtual number) is not well formed for this deployment."""

    code = "account-format"


# -- who is calling -----------------------------------------------------------


class AuthenticationError(GatewayError):
    """Credentials are missing or wrong, or a signed request is stale or replayed."""

    code = "unauthenticated"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ForbiddenError(GatewayError):
    """The agent is known but may not do this (disabled, wrong protocol, IP not allowed)."""

    code = "forbidden"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RateLimitedError(GatewayError):
    """The agent exceeded its request rate."""

    code = "rate-limited"
    retryable = True

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# -- the account and the amount ----------------------------------------------


class AccountNotFoundError(GatewayError):
    """No account with this virtual number in the local catalog."""

    code = "account-not-found"


class AccountInactiveError(GatewayError):
    """The account exists but has no service that can take a payment."""

    code = "account-inactive"


class AmountTooSmallError(GatewayError):
    """The amount is below the agent's or the service's minimum."""

    code = "amount-too-small"

    def __init__(self, message: str, *, limit_minor: int) -> None:
        super().__init__(message)
        self.limit_minor = limit_minor


class AmountTooLargeError(GatewayError):
    """The amount is above the agent's or the service's maximum."""

    code = "amount-too-large"

    def __init__(self, message: str, *, limit_minor: int) -> None:
        super().__init__(message)
        self.limit_minor = limit_minor


class PaymentForbiddenError(GatewayError):
    """The provider's rules refuse this payment (overpayment), or the agent may not pay."""

    code = "payment-forbidden"


# -- the payment's identity ---------------------------------------------------


class TransactionConflictError(GatewayError):
    """This (agent, txn_id) was paid before with another account or amount; refused, alarmed."""

    code = "transaction-conflict"


class PaymentInFlightError(GatewayError):
    """A request with the same (agent, txn_id) is being processed right now."""

    code = "payment-in-flight"
    retryable = True


class PaymentNotFoundError(GatewayError):
    """No payment with this id for this agent."""

    code = "payment-not-found"


# -- the gateway's own state ----------------------------------------------------


class CatalogUnavailableError(GatewayError):
    """There is no usable local catalog, so the account cannot be checked."""

    code = "catalog-unavailable"
    retryable = True


class RetryLaterError(GatewayError):
    """A temporary refusal; nothing was recorded. ``reason`` says which one."""

    code = "retry-later"
    retryable = True

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class OverloadedError(RetryLaterError):
    """More requests in flight than ``gateway.requests_in_flight_max``."""

    code = "overloaded"


class CatalogStaleError(RetryLaterError):
    """The local catalog is older than ``gateway.catalog_age_max_s``: no payments against it."""

    code = "catalog-stale"


class TechnicalRefusalError(GatewayError):
    """Payments are refused for a technical reason (offline limits, journal fault)."""

    code = "technical-refusal"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class OutcomeUnknownError(GatewayError):
    """Writing the payment failed in a way that may or may not have stored it.

    The client repeats the same request (same txn_id / Idempotency-Key): the
    journal then returns the stored payment or records it once.
    """

    code = "outcome-unknown"
    retryable = True


class AgentsFileError(GatewayError):
    """The agents file is missing, unreadable, too open (mode) or invalid.

    ``problems`` lists every problem as ``key: message`` (never a secret value).
    """

    code = "agents-file"

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class GatewayIndexError(GatewayError):
    """The gateway's payment index cannot be opened or belongs to another journal."""

    code = "index"
