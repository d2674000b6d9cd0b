"""``lobbypay central``: run and operate the central ledger service.

Only argparse and the standard library are imported here; each handler imports
the service when it runs (CONVENTIONS: ``lobbypay --help`` stays fast).

Exit status: 0 ok, 2 bad input or problems found (bad rows, unknown terminal,
invalid settings), 1 other failures (database unreachable, key unreadable).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML file with central service settings (see `lobbypay central serve --help`)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="directory for central's key and SQLite database "
        "(default /var/lib/lobbypay/central; env LOBBYPAY_LEDGER_DATA_DIR)",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="sqlite:///path or postgresql://user@host/db (default: DATA_DIR/central.db)",
    )


def add_central_parser(subparsers: Any) -> None:
    """Register ``lobbypay central`` and its subcommands."""
    central = subparsers.add_parser(
        "central",
        help="run and operate the central ledger service",
        description="The central ledger: receives signed journal batches from terminals, "
        "enrolls and revokes terminals, publishes the catalog and exports for billing.",
    )
    central.set_defaults(func=lambda args: _usage(central))
    sub = central.add_subparsers(dest="central_command", metavar="SUBCOMMAND")

    p = sub.add_parser(
        "init",
        help="create central's key pair and migrate the database",
        description="Create central's Ed25519 key (if missing) and apply database migrations. "
        "Prints the public key that every terminal must pin at provisioning.",
    )
    _common(p)
    p.set_defaults(func=_init)

    p = sub.add_parser(
        "serve",
        help="run the central ledger HTTP service",
        description="Serve /v1/enroll, /v1/batches, /v1/heartbeat, /v1/catalog, /v1/config, "
        "/v1/revocations and the /v1/admin endpoints (operator token: env "
        "LOBBYPAY_LEDGER_OPERATOR_TOKEN). Stops cleanly on SIGTERM or SIGINT.",
    )
    _common(p)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8470; 0 picks a free one)")
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "registration-code",
        help="make a single-use code for enrolling one terminal",
        description="Create a single-use registration code for one terminal at LOCATION. "
        "Central keeps only its hash; the code is printed once.",
    )
    _common(p)
    p.add_argument("--location", required=True, help="location id the terminal will serve")
    p.add_argument("--label", help="a note for operators (e.g. the entrance)")
    p.add_argument(
        "--valid-hours", type=float, default=24.0, help="how long the code may be used (24)"
    )
    p.set_defaults(func=_registration_code)

    p = sub.add_parser(
        "revoke",
        help="revoke a terminal: its batches are refused from now on",
        description="Revoke TERMINAL_ID (audited) and publish a new signed revocation list.",
    )
    _common(p)
    p.add_argument("terminal_id", metavar="TERMINAL_ID")
    p.add_argument("--reason", default="", help="why (kept in the audit log)")
    p.set_defaults(func=_revoke)

    p = sub.add_parser(
        "terminals",
        help="list enrolled terminals with state, head and last heartbeat",
        description="List every terminal central knows: state, head seq, last seen, queue depth.",
    )
    _common(p)
    p.set_defaults(func=_terminals)

    p = sub.add_parser(
        "import-billing",
        help="publish a new signed catalog from a billing-center file",
        description="Parse a billing-center CSV or JSON file (accounts, services, debts, "
        "instalments) and publish it as the next signed catalog release (a snapshot, and "
        "a delta from the previous import). Every bad row is reported by line; nothing is "
        "published unless the whole file is good (exit 2).",
    )
    _common(p)
    p.add_argument("file", type=Path, metavar="FILE", help="the .csv or .json file")
    p.add_argument("--deployment", default="default", help="deployment id for rows without one")
    p.add_argument(
        "--valid-days", type=int, default=35, help="days until terminals refuse the release (35)"
    )
    p.set_defaults(func=_import_billing)

    p = sub.add_parser(
        "export",
        help="export payments or meter readings for the billing center",
        description="Write payments (or meter readings) received from DATE to DATE inclusive "
        "(by terminal time) as CSV or JSON. Money is in minor units (kopecks).",
    )
    _common(p)
    p.add_argument("--from", dest="date_from", required=True, metavar="DATE", help="YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, metavar="DATE", help="YYYY-MM-DD")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format")
    p.add_argument(
        "--kind", choices=("payments", "meter-readings"), default="payments", help="what to export"
    )
    p.add_argument("--tz", default="UTC", help="time zone of the dates (e.g. Europe/Moscow)")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here, not stdout")
    p.set_defaults(func=_export)

    from central_sync.console.cli import add_user_parser  # argparse only, like this module

    add_user_parser(sub, _common)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_BAD_INPUT


def _err(message: str) -> None:
    print(f"lobbypay central: {message}", file=sys.stderr)


def _settings(args: argparse.Namespace, **extra: Any) -> Any:
    from central_sync.central.settings import load_settings

    return load_settings(args.config, data_dir=args.data_dir, database_url=args.db, **extra)


def _run(
    args: argparse.Namespace, body: Callable[[Any], Coroutine[Any, Any, int]], **extra: Any
) -> int:
    """Load settings and run ``body(settings)``, mapping central's errors to exit codes."""
    import asyncio

    from central_sync.central.errors import CentralError, StorageError

    try:
        settings = _settings(args, **extra)
        return asyncio.run(body(settings))
    except StorageError as exc:
        _err(str(exc))
        return EXIT_FAILURE
    except CentralError as exc:
        _err(str(exc))
        return EXIT_FAILURE if exc.code == "central-key" else EXIT_BAD_INPUT


async def _with_storage(settings: Any, body: Callable[[Any], Awaitable[T]]) -> T:
    from central_sync.central.storage import open_storage

    storage = open_storage(settings.resolved_database_url)
    await storage.open()
    try:
        await storage.migrate()
        return await body(storage)
    finally:
        await storage.close()


def _now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def _init(args: argparse.Namespace) -> int:
    async def body(settings: Any) -> int:
        from central_sync.central.publish import create_central_key

        identity, created = create_central_key(settings.resolved_key_path)

        async def act(storage: Any) -> list[str]:
            names: list[str] = await storage.applied_migrations()
            return names

        applied = await _with_storage(settings, act)
        print(f"central key: {settings.resolved_key_path} ({'created' if created else 'kept'})")
        print(f"public key (pin on every terminal): {identity.public_key_hex}")
        print(f"fingerprint: {identity.fingerprint}")
        where = settings.resolved_database_url.split("@")[-1]
        print(f"database: {where} (migrations: {', '.join(applied)})")
        return EXIT_OK

    return _run(args, body)


def _serve(args: argparse.Namespace) -> int:
    async def body(settings: Any) -> int:
        import logging

        from central_sync.central.server import serve

        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )

        await serve(settings)
        return EXIT_OK

    return _run(args, body, host=args.host, port=args.port)


def _registration_code(args: argparse.Namespace) -> int:
    async def body(settings: Any) -> int:
        from central_sync.central.admin import create_registration_code

        async def act(storage: Any) -> tuple[str, int]:
            return await create_registration_code(
                storage,
                location=args.location,
                label=args.label,
                valid_s=int(args.valid_hours * 3600),
                now_ms=_now_ms(),
                actor="cli",
            )

        code, expires_ms = await _with_storage(settings, act)
        expires = dt.datetime.fromtimestamp(expires_ms / 1000, dt.UTC).isoformat(timespec="minutes")
        print(code)
        print(
            f"location {args.location.strip()}, single use, valid until {expires}", file=sys.stderr
        )
        return EXIT_OK

    return _run(args, body)


def _revoke(args: argparse.Namespace) -> int:
    async def body(settings: Any) -> int:
        from central_sync.central.admin import revoke_terminal
        from central_sync.central.publish import load_central_key

        identity = load_central_key(settings.resolved_key_path)

        async def act(storage: Any) -> Any:
            return await revoke_terminal(
                storage,
                identity,
                args.terminal_id,
                reason=args.reason,
                actor="cli",
                now_ms=_now_ms(),
                revocations_valid_s=settings.revocations_valid_s,
            )

        record = await _with_storage(settings, act)
        print(f"{record.terminal_id} revoked ({record.state_reason})")
        return EXIT_OK

    return _run(args, body)


def _terminals(args: argparse.Namespace) -> int:
    async def body(settings: Any) -> int:
        async def read(storage: Any) -> tuple[Any, Any]:
            return await storage.list_terminals(), await storage.retired_keys()

        terminals, retired = await _with_storage(settings, read)
        print(f"{'TERMINAL':<18} {'STATE':<12} {'HEAD':>8} {'QUEUE':>6}  LOCATION  LAST SEEN")
        for t in terminals:
            seen = (
                "-"
                if t.last_seen_ms is None
                else dt.datetime.fromtimestamp(t.last_seen_ms / 1000, dt.UTC).isoformat(
                    timespec="seconds"
                )
            )
            queue = "-" if t.queue_depth is None else str(t.queue_depth)
            print(
                f"{t.terminal_id:<18} {t.state.value:<12} {t.head_seq:>8} {queue:>6}  "
                f"{t.location}  {seen}"
            )
            if t.state_reason and t.state.value != "enrolled":
                print(f"  {t.state_reason}")
            # Keys replaced by `lobbypay rekey`: the same terminal under its former ids.
            former = [k.terminal_id for k in retired if k.current_id == t.terminal_id]
            if former:
                print(f"  re-keyed; formerly {', '.join(former)}")
        return EXIT_OK

    return _run(args, body)


def _import_billing(args: argparse.Namespace) -> int:
    async def body(settings: Any) -> int:
        from central_sync.catalog.errors import BillingImportError
        from central_sync.central.catalog_release import import_billing_file
        from central_sync.central.publish import load_central_key

        identity = load_central_key(settings.resolved_key_path)

        async def act(storage: Any) -> Any:
            return await import_billing_file(
                storage,
                identity,
                args.file,
                now_ms=_now_ms(),
                valid_s=args.valid_days * 24 * 3600,
                deployment=args.deployment,
            )

        try:
            published = await _with_storage(settings, act)
        except BillingImportError as exc:
            for problem in exc.problems:
                print(f"{args.file}: {problem}", file=sys.stderr)
            _err(f"{len(exc.problems)} problem(s); nothing was published")
            return EXIT_BAD_INPUT
        delta = (
            "no delta" if published.delta_bytes is None else f"delta {published.delta_bytes} bytes"
        )
        print(
            f"catalog version {published.version}: {published.accounts} accounts, "
            f"snapshot {published.snapshot_bytes} bytes, {delta}"
        )
        return EXIT_OK

    if args.valid_days <= 0:
        _err("--valid-days must be positive")
        return EXIT_BAD_INPUT
    return _run(args, body)


def _day_start_ms(text: str, tz: Any, name: str) -> int:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, not {text!r}") from None
    return int(dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp() * 1000)


def _export(args: argparse.Namespace) -> int:
    import zoneinfo

    try:
        tz = dt.UTC if args.tz == "UTC" else zoneinfo.ZoneInfo(args.tz)
        from_ms = _day_start_ms(args.date_from, tz, "--from")
        to_ms = _day_start_ms(args.date_to, tz, "--to") + 24 * 3600 * 1000
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        _err(str(exc) if isinstance(exc, ValueError) else f"unknown time zone {args.tz!r}")
        return EXIT_BAD_INPUT
    if to_ms <= from_ms:
        _err("--to is before --from")
        return EXIT_BAD_INPUT

    async def body(settings: Any) -> int:
        from central_sync.central.export import render

        rows = await _with_storage(
            settings, lambda storage: storage.export_rows(args.kind, from_ms, to_ms)
        )
        text = render(rows, kind=args.kind, fmt=args.format, from_ms=from_ms, to_ms=to_ms)
        if args.output is None:
            sys.stdout.write(text)
        else:
            try:
                args.output.write_text(text, encoding="utf-8")
            except OSError as exc:
                _err(f"cannot write {args.output}: {exc.strerror}")
                return EXIT_FAILURE
            print(f"{len(rows)} {args.kind} written to {args.output}", file=sys.stderr)
        return EXIT_OK

    return _run(args, body)
