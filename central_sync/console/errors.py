"""The operator console's errors (CONVENTIONS.md, "A deliberate error taxonomy").

They extend central's taxonomy; the console's middleware (``app.py``) maps them
to HTTP statuses and a page in the operator's language.
"""

from __future__ import annotations

from central_sync.central.errors import BadRequestError, CentralError


class ConsoleError(CentralError):
    """Base of the console's own errors."""

    code = "console"


class ConsoleInputError(BadRequestError):
    """A form field or query parameter is malformed or out of range."""

    code = "bad-input"


class LoginFailedError(ConsoleError):
    """The user name or password is wrong, or the user is disabled."""

    code = "login-failed"


class LoginThrottledError(ConsoleError):
    """Too many failed logins for this user name or from this address; wait."""

    code = "login-throttled"
    retryable = True

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CsrfError(ConsoleError):
    """A form was posted without this session's token or from another origin."""

    code = "csrf"


class ForbiddenError(ConsoleError):
    """The user's role does not allow this page or action."""

    code = "forbidden"
