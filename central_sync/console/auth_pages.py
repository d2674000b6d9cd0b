"""Login, logout, the language switch and the static files."""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from central_sync.central.app import storage_key
from central_sync.console import accounts
from central_sync.console.errors import LoginFailedError, LoginThrottledError
from central_sync.console.html import html
from central_sync.console.i18n import LANGUAGES, Lang, lang_of, t
from central_sync.console.layout import PREFIX, SCRIPT, STYLESHEET, notice, page
from central_sync.console.web import (
    CHANGERS,
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    ctx,
    now_ms,
    policy,
    session,
    set_cookie,
    settings,
)

logger = logging.getLogger(__name__)

HOME = f"{PREFIX}/terminals"
LOGIN_TOKEN_BYTES = 32
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600
FIELD_CHARS_MAX = 1024


def safe_next(value: object) -> str:
    """A console path to go to after login; anything else (another site) goes home."""
    if (
        isinstance(value, str)
        and value.startswith(PREFIX + "/")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) <= 2048
        and not value.startswith(f"{PREFIX}/login")
    ):
        return value
    return HOME


def _login_form(lang: Lang, token: str, next_path: str, message: str | None, user: str) -> str:
    from central_sync.console.layout import Ctx

    body = html(
        '<form class="login" method="post" action="{prefix}/login">{message}'
        '<input type="hidden" name="csrf" value="{token}">'
        '<input type="hidden" name="next" value="{next}">'
        '<label>{user_label}<input name="user" autocomplete="username" required '
        'maxlength="64" value="{user}" autofocus></label>'
        '<label>{password_label}<input name="password" type="password" '
        'autocomplete="current-password" required maxlength="1024"></label>'
        '<button type="submit">{submit}</button></form>',
        prefix=PREFIX,
        message=notice(message, "bad") if message else "",
        token=token,
        next=next_path,
        user_label=t(lang, "login.user"),
        user=user,
        password_label=t(lang, "login.password"),
        submit=t(lang, "login.submit"),
    )
    return page(Ctx(lang=lang, session=None, path=f"{PREFIX}/login"), t(lang, "login.title"), body)


def _login_response(
    request: web.Request,
    message: str | None,
    *,
    status: int = 200,
    user: str = "",
    next_path: object = None,
) -> web.Response:
    lang = ctx(request).lang
    # A fresh token for the login form, in a cookie and in the form (double submit);
    # with the origin check it keeps other sites from logging a browser in.
    token = secrets.token_urlsafe(LOGIN_TOKEN_BYTES)
    response = web.Response(
        text=_login_form(
            lang, token, safe_next(next_path or request.query.get("next")), message, user
        ),
        status=status,
        content_type="text/html",
    )
    set_cookie(request, response, LOGIN_COOKIE, token)
    return response


@policy(public=True)
async def login_page(request: web.Request) -> web.StreamResponse:
    lang = ctx(request).lang
    expired = request.query.get("expired") == "1" and SESSION_COOKIE in request.cookies
    response = _login_response(request, t(lang, "login.expired") if expired else None)
    if expired:
        response.del_cookie(SESSION_COOKIE, path=f"{PREFIX}/")
    return response


@policy(public=True)
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    lang = ctx(request).lang
    user = form.get("user")
    password = form.get("password")
    next_path = form.get("next")
    if not isinstance(user, str) or not isinstance(password, str):
        return _login_response(request, t(lang, "login.failed"), status=400, next_path=next_path)
    user, password = user[:FIELD_CHARS_MAX], password[: FIELD_CHARS_MAX + 1]
    remote = request.remote or "unknown"
    try:
        session_id, created = await accounts.login(
            request.config_dict[storage_key],
            user,
            password,
            remote=remote,
            settings=settings(request),
            now_ms=now_ms(),
        )
    except LoginThrottledError as exc:
        logger.warning("console_login_throttled user=%s remote=%s", user[:64], remote)
        minutes = max(1, (exc.retry_after_s + 59) // 60)
        response = _login_response(
            request,
            t(lang, "login.throttled", minutes=minutes),
            status=429,
            user=user[:64],
            next_path=next_path,
        )
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except LoginFailedError:
        logger.info("console_login_failed user=%s remote=%s", user[:64], remote)
        return _login_response(
            request, t(lang, "login.failed"), status=401, user=user[:64], next_path=next_path
        )
    logger.info("console_login user=%s role=%s", created.user.name, created.user.role)
    response = web.HTTPFound(safe_next(next_path))
    set_cookie(request, response, SESSION_COOKIE, session_id)
    response.del_cookie(LOGIN_COOKIE, path=f"{PREFIX}/")
    raise response


@policy(roles=frozenset(accounts.Role))
async def logout(request: web.Request) -> web.StreamResponse:
    current = session(request)
    await accounts.end_session(request.config_dict[storage_key], current.id_hash)
    logger.info("console_logout user=%s", current.user.name)
    response = web.HTTPFound(f"{PREFIX}/login")
    response.del_cookie(SESSION_COOKIE, path=f"{PREFIX}/")
    raise response


@policy(public=True)
async def set_language(request: web.Request) -> web.StreamResponse:
    # Only a display preference changes (a cookie), so a plain link may do it.
    chosen = lang_of(request.query.get("set"))
    response = web.HTTPFound(safe_next(request.query.get("next")))
    if request.query.get("set") in LANGUAGES:
        set_cookie(request, response, LANG_COOKIE, chosen, max_age=LANG_COOKIE_MAX_AGE_S)
    raise response


@policy(public=True)
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(HOME)


@policy(public=True)
async def stylesheet(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=STYLESHEET, content_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )


@policy(public=True)
async def script(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=SCRIPT,
        content_type="application/javascript",
        headers={"Cache-Control": "max-age=3600"},
    )


__all__ = ["CHANGERS", "home", "login_page", "login_submit", "logout", "script", "set_language"]
