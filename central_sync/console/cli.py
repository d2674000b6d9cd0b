"""``lobbypay central user``: the operator console's users.

Only argparse and the standard library are imported here; the handlers import
the console when they run. A password is never an argument (it would show in
``ps`` and shell history): it is asked twice on a terminal, or read as one line
from standard input with ``--password-stdin``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

ROLES = ("operator", "supervisor", "auditor")
PASSWORD_LINE_CHARS_MAX = 4096


def add_user_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``lobbypay central user add | list | disable | enable``."""
    user = sub.add_parser(
        "user",
        help="manage operator console users (operator, supervisor, auditor)",
        description="Users of the operator console served under /console/ by `central serve`. "
        "Roles: operator (views, proposes resolutions), supervisor (also approves "
        "money-moving resolutions and closes days), auditor (views and exports only).",
    )
    user.set_defaults(func=lambda args: _usage(user))
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION")

    p = user_sub.add_parser(
        "add",
        help="create a console user",
        description="Create console user NAME with ROLE. The password (at least 12 characters) "
        "is asked twice, or read from standard input with --password-stdin; only its "
        "scrypt hash is stored.",
    )
    common(p)
    p.add_argument("name", metavar="NAME", help="user name: lowercase letters, digits, . _ -")
    p.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.set_defaults(func=_add)

    p = user_sub.add_parser("list", help="list console users", description="List console users.")
    common(p)
    p.set_defaults(func=_list)

    for action, text in (
        ("disable", "disable a user and end their sessions"),
        ("enable", "re-enable a user"),
    ):
        p = user_sub.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        common(p)
        p.add_argument("name", metavar="NAME")
        p.set_defaults(func=_disable if action == "disable" else _enable)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline(PASSWORD_LINE_CHARS_MAX)
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        print(
            "lobbypay central: no terminal to ask the password on: use --password-stdin",
            file=sys.stderr,
        )
        return None
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != first:
        print("lobbypay central: the passwords differ", file=sys.stderr)
        return None
    return first


def _add(args: argparse.Namespace) -> int:
    from central_sync.central_cli import EXIT_BAD_INPUT, EXIT_OK, _now_ms, _run, _with_storage
    from central_sync.console.accounts import add_user, check_user_name, parse_role
    from central_sync.console.passwords import check_password_rules

    password = _read_password(args.password_stdin)
    if password is None:
        return EXIT_BAD_INPUT

    async def body(settings: Any) -> int:
        # Checked before the database is touched: bad input changes nothing.
        check_user_name(args.name)
        check_password_rules(password)
        role = parse_role(args.role)
        user = await _with_storage(
            settings,
            lambda storage: add_user(
                storage, args.name, role, password, actor="cli", now_ms=_now_ms()
            ),
        )
        print(f"console user {user.name} added ({user.role.value})")
        return EXIT_OK

    return _run(args, body)


def _list(args: argparse.Namespace) -> int:
    from central_sync.central_cli import EXIT_OK, _run, _with_storage
    from central_sync.console.accounts import list_users

    async def body(settings: Any) -> int:
        users = await _with_storage(settings, list_users)
        print(f"{'USER':<32} {'ROLE':<11} STATE")
        for user in users:
            state = "disabled" if user.disabled_ms else "active"
            print(f"{user.name:<32} {user.role.value:<11} {state}")
        return EXIT_OK

    return _run(args, body)


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    from central_sync.central_cli import EXIT_OK, _now_ms, _run, _with_storage
    from central_sync.console.accounts import set_user_disabled

    async def body(settings: Any) -> int:
        await _with_storage(
            settings,
            lambda storage: set_user_disabled(
                storage, args.name, disabled, actor="cli", now_ms=_now_ms()
            ),
        )
        print(f"console user {args.name} {'disabled' if disabled else 'enabled'}")
        return EXIT_OK

    return _run(args, body)


def _disable(args: argparse.Namespace) -> int:
    return _set_disabled(args, True)


def _enable(args: argparse.Namespace) -> int:
    return _set_disabled(args, False)
