"""The console's request pipeline: who is asking, may they, and is the form theirs.

Theory of operation
-------------------
Every console route is declared with :func:`policy`: public (the login page,
the language switch, static files) or the roles that may use it. The one
middleware (:func:`console_middleware`) then, for every request:

1. picks the language from the operator's cookie;
2. for a non-public route, finds the session of the session cookie — none, or
   an expired one, sends a GET to the login page (coming back afterwards) and
   refuses a POST;
3. refuses a role the route's policy does not name (403);
4. for every POST, checks the origin (``Origin``, else ``Referer``, must be
   this service) and the synchronizer token: the session's CSRF token for a
   logged-in form, the login cookie's token for the login form;
5. renders the console's errors as a page in the operator's language with the
   right status, and sets the security headers on every answer.

A route without a policy is answered 404 like an unknown path, so no page can be
reached before it says who may see it.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from central_sync.central.app import storage_key
from central_sync.central.errors import (
    BadRequestError,
    CentralError,
    ConflictError,
    NotFoundError,
    StorageUnavailableError,
)
from central_sync.console.accounts import Role, Session, session_for
from central_sync.console.errors import CsrfError, ForbiddenError
from central_sync.console.html import html, query
from central_sync.console.i18n import lang_of, t
from central_sync.console.layout import PREFIX, Ctx, page
from central_sync.console.settings import ConsoleSettings

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "lp_console_session"
LOGIN_COOKIE = "lp_console_login"
LANG_COOKIE = "lp_console_lang"
COOKIE_PATH = PREFIX + "/"
FORM_FIELDS_MAX = 64

console_settings_key = web.AppKey("console_settings", ConsoleSettings)
ctx_key = web.RequestKey("console_ctx", Ctx)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class Policy:
    public: bool
    roles: frozenset[Role]


_POLICIES: dict[Handler, Policy] = {}
ALL_ROLES = frozenset(Role)
CHANGERS = frozenset({Role.OPERATOR, Role.SUPERVISOR})
SUPERVISORS = frozenset({Role.SUPERVISOR})


def policy(
    *, public: bool = False, roles: frozenset[Role] = ALL_ROLES
) -> Callable[[Handler], Handler]:
    """Declare who may use a console handler (see the module docstring)."""

    def register(handler: Handler) -> Handler:
        _POLICIES[handler] = Policy(public=public, roles=roles)
        return handler

    return register


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ctx(request: web.Request) -> Ctx:
    return request[ctx_key]


def session(request: web.Request) -> Session:
    current = ctx(request).session
    if current is None:  # only public routes run without one
        raise ForbiddenError("no session")
    return current


def settings(request: web.Request) -> ConsoleSettings:
    return request.config_dict[console_settings_key]


def set_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
) -> None:
    """A cookie for the console's path: HttpOnly, SameSite=Strict, Secure under TLS."""
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


def _same_origin(request: web.Request) -> bool:
    own = f"{request.scheme}://{request.host}"
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("Referer")
    return referer is not None and (referer == own or referer.startswith(own + "/"))


async def _check_post(request: web.Request, current: Session | None) -> None:
    if not _same_origin(request):
        logger.warning("console_csrf_refused reason=origin path=%s", request.path)
        raise CsrfError("the form was posted from another origin")
    form = await request.post()
    if len(form) > FORM_FIELDS_MAX:
        raise CsrfError("too many form fields")
    sent = form.get("csrf")
    expected = current.csrf_token if current is not None else request.cookies.get(LOGIN_COOKIE)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        logger.warning("console_csrf_refused reason=token path=%s", request.path)
        raise CsrfError("the form's token is missing or wrong")


_ERRORS: tuple[tuple[type[CentralError], int, str], ...] = (
    (CsrfError, 403, "error.csrf"),
    (ForbiddenError, 403, "error.forbidden"),
    (NotFoundError, 404, "error.not_found"),
    (ConflictError, 409, "error.conflict"),
    (BadRequestError, 400, "error.bad_input"),
    (StorageUnavailableError, 503, "error.unavailable"),
)


def error_page(request: web.Request, exc: CentralError) -> web.Response:
    """The console's error as a page in the operator's language."""
    status, key = next(((s, k) for cls, s, k in _ERRORS if isinstance(exc, cls)), (500, ""))
    current = ctx(request)
    if status == 500:
        logger.warning("console_error path=%s code=%s", request.path, exc.code)
        text = t(current.lang, "error.internal")
    else:
        text = t(current.lang, key, detail=str(exc))
    body = html(
        '<p class="notice bad" role="alert">{text}</p><p><a href="{back}">{label}</a></p>',
        text=text,
        back=f"{PREFIX}/terminals",
        label=t(current.lang, "error.back"),
    )
    response = web.Response(
        text=page(current, t(current.lang, "error.title"), body),
        status=status,
        content_type="text/html",
    )
    if exc.retryable:
        response.headers["Retry-After"] = "5"
    return response


def _to_login(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound(query(f"{PREFIX}/login", {"next": request.path_qs, "expired": "1"}))


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    lang = lang_of(request.cookies.get(LANG_COOKIE))
    conf = settings(request)
    request[ctx_key] = Ctx(
        lang=lang, session=None, path=request.path_qs, offset_min=conf.utc_offset_min
    )
    route_handler = request.match_info.route.handler
    rule = _POLICIES.get(route_handler)
    try:
        if rule is None:
            # A console URL that matched no route (aiohttp's own 404/405 handlers).
            raise NotFoundError(request.path)
        current: Session | None = None
        if not rule.public:
            cookie = request.cookies.get(SESSION_COOKIE, "")
            current = await session_for(
                request.config_dict[storage_key], cookie, settings=conf, now_ms=now_ms()
            )
            if current is None:
                if request.method == "POST":
                    raise CsrfError("no session")
                raise _to_login(request)
            request[ctx_key] = Ctx(
                lang=lang, session=current, path=request.path_qs, offset_min=conf.utc_offset_min
            )
            if current.user.role not in rule.roles:
                logger.info(
                    "console_forbidden user=%s role=%s path=%s",
                    current.user.name,
                    current.user.role,
                    request.path,
                )
                raise ForbiddenError(f"{current.user.role} may not use {request.path}")
        if request.method == "POST":
            await _check_post(request, current)
        response = await handler(request)
    except CentralError as exc:
        response = error_page(request, exc)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type.startswith("text/html"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


__all__ = [
    "CHANGERS",
    "SUPERVISORS",
    "console_middleware",
    "console_settings_key",
    "ctx",
    "error_page",
    "now_ms",
    "policy",
    "session",
    "set_cookie",
    "settings",
]
