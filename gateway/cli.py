"""`lobbypay gateway ...`: run the ATM-side gateway, print registries, add agents.

Only argparse and the standard library are imported here; the gateway is
imported when a command runs, so `lobbypay --help` stays fast. Technician-facing
lines are in Russian or English, after the locale.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from firmware_config.cli_common import add_config_dir_argument, language, load_config_or_exit

MESSAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "agents_bad": "agents file problem: {message}",
        "agent_exists": "agent {agent} already exists in {path}",
        "agent_bad_id": "agent id must be a lowercase letter then up to 23 of a-z 0-9 _",
        "agent_bad_net": "not a network: {value} (use for example 10.0.0.0/8 or 192.0.2.7/32)",
        "agent_added": "agent {agent} added to {path}; restart the gateway to load it",
        "secret_once": "keep these secrets now: they are not shown again",
        "bad_date": "date must be YYYY-MM-DD",
        "unknown_agent": "no agent {agent} in {path}",
        "registry_failed": "cannot read the registry: {message}",
        "serve_failed": "gateway failed to start: {message}",
    },
    "ru": {
        "agents_bad": "ошибка в файле агентов: {message}",
        "agent_exists": "агент {agent} уже есть в {path}",
        "agent_bad_id": "имя агента: строчная латинская буква, затем до 23 символов a-z 0-9 _",
        "agent_bad_net": "это не сеть: {value} (например 10.0.0.0/8 или 192.0.2.7/32)",
        "agent_added": "агент {agent} добавлен в {path}; перезапустите шлюз, чтобы он его прочитал",
        "secret_once": "сохраните эти секреты сейчас: повторно они не показываются",
        "bad_date": "дата должна быть в виде ГГГГ-ММ-ДД",
        "unknown_agent": "агента {agent} нет в {path}",
        "registry_failed": "не удалось прочитать реестр: {message}",
        "serve_failed": "шлюз не запустился: {message}",
    },
}


def _say(key: str, **fields: object) -> str:
    return MESSAGES[language()][key].format(**fields)


def add_gateway_parser(subparsers: Any) -> None:
    """Register `lobbypay gateway` and its subcommands."""
    parser = subparsers.add_parser(
        "gateway",
        help="ATM-side gateway: OSMP check/pay and the JSON API",
        description="The ATM-side gateway for banks and payment agents: OSMP check/pay and a "
        "signed JSON API, answering from the local catalog and writing every payment to the "
        "journal before it answers. See docs/gateway.md.",
    )
    sub = parser.add_subparsers(dest="gateway_command", metavar="SUBCOMMAND", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the gateway until SIGTERM",
        description="Serve OSMP (/osmp) and the JSON API (/v1) on gateway.listen_host:"
        "listen_port until SIGTERM or SIGINT, then finish in-flight payments and stop. "
        "Tells systemd when it is ready (Type=notify) and pings its watchdog.",
    )
    add_config_dir_argument(serve)
    serve.add_argument("--host", help="listen address (default: gateway.listen_host)")
    serve.add_argument("--port", type=int, help="listen port (default: gateway.listen_port)")
    serve.set_defaults(func=_serve)

    registry = sub.add_parser(
        "registry",
        help="print one agent's payments of one day (CSV or JSON)",
        description="Print the daily payment registry of one agent, for the bank's "
        "reconciliation: every payment accepted on that calendar day (gateway."
        "registry_timezone), from the gateway's index and the journal. Works while the "
        "gateway runs or not; writes nothing.",
    )
    add_config_dir_argument(registry)
    registry.add_argument("--agent", required=True, help="agent id")
    registry.add_argument("--date", required=True, help="day, YYYY-MM-DD")
    registry.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="output format (default csv)"
    )
    registry.set_defaults(func=_registry)

    add = sub.add_parser(
        "agent-add",
        help="add a payment agent with new credentials",
        description="Add an agent to the agents file (created with mode 0600 if missing) with a "
        "new HTTP Basic password (OSMP) and/or HMAC key (JSON API), and print them once. Only "
        "the password's scrypt hash is stored.",
    )
    add_config_dir_argument(add)
    add.add_argument("agent", help="agent id: a-z, then up to 23 of a-z 0-9 _")
    add.add_argument("--name", default="", help="who this agent is, for operators")
    add.add_argument(
        "--ip",
        action="append",
        required=True,
        help="allowed source network (CIDR), repeatable; 0.0.0.0/0 allows any",
    )
    add.add_argument(
        "--protocol",
        action="append",
        choices=("osmp", "json"),
        help="API the agent may use, repeatable (default: osmp and json)",
    )
    add.add_argument("--amount-min-minor", type=int, default=100, help="smallest payment, kopecks")
    add.add_argument(
        "--amount-max-minor", type=int, default=1_500_000, help="largest payment, kopecks"
    )
    add.add_argument("--rate-per-s", type=int, default=50, help="sustained requests per second")
    add.add_argument("--rate-burst", type=int, default=100, help="burst of requests")
    add.add_argument("--json", action="store_true", help="print the credentials as JSON")
    add.set_defaults(func=_agent_add)


def _agents_path(args: argparse.Namespace) -> tuple[Path, Any]:
    loaded = load_config_or_exit(args)
    path = loaded.settings.gateway.agents_path or Path(loaded.config_dir) / "agents.toml"
    return path, loaded


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from gateway.errors import GatewayError
    from gateway.server import serve

    agents_path, loaded = _agents_path(args)
    settings = loaded.settings
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["listen_host"] = args.host
    if args.port is not None:
        overrides["listen_port"] = args.port
    if overrides:
        settings = settings.model_copy(
            update={"gateway": settings.gateway.model_copy(update=overrides)}
        )
    logging.basicConfig(
        level=settings.logging.level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        asyncio.run(serve(settings, agents_path=agents_path))
    except GatewayError as exc:
        print(_say("serve_failed", message=exc), file=sys.stderr)
        for problem in getattr(exc, "problems", ()):
            print(f"  {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(_say("serve_failed", message=exc.strerror or exc), file=sys.stderr)
        return 1
    return 0


def _registry(args: argparse.Namespace) -> int:
    import asyncio
    import datetime as dt

    from gateway.errors import GatewayError
    from gateway.index import read_registry
    from gateway.registry import registry_csv, registry_json_bytes

    try:
        if len(args.date) != 10:
            raise ValueError
        day = dt.date.fromisoformat(args.date).isoformat()
    except ValueError:
        print(_say("bad_date"), file=sys.stderr)
        return 2
    loaded = load_config_or_exit(args)
    settings = loaded.settings
    g = settings.gateway
    data_dir = settings.terminal.data_dir
    try:
        records = asyncio.run(
            read_registry(
                index_path=g.index_path or data_dir / "gateway-index.db",
                journal_path=settings.journal_path,
                timezone=g.registry_timezone,
                agent=args.agent,
                day=day,
            )
        )
    except (GatewayError, OSError) as exc:
        print(_say("registry_failed", message=exc), file=sys.stderr)
        return 1
    if args.format == "csv":
        sys.stdout.write(registry_csv(records))
    else:
        sys.stdout.buffer.write(registry_json_bytes(args.agent, day, g.registry_timezone, records))
        sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def _agent_add(args: argparse.Namespace) -> int:
    import ipaddress
    import json
    import re
    import secrets

    from gateway.agents import hash_password, load_agents, new_agent_toml
    from gateway.errors import AgentsFileError
    from gateway.identifiers import AGENT_ID_PATTERN

    if re.fullmatch(AGENT_ID_PATTERN, args.agent) is None:
        print(_say("agent_bad_id"), file=sys.stderr)
        return 2
    for value in args.ip:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:
            print(_say("agent_bad_net", value=value), file=sys.stderr)
            return 2
    path, _ = _agents_path(args)
    if path.exists():
        try:
            existing = load_agents(path)
        except AgentsFileError as exc:
            print(_say("agents_bad", message=exc), file=sys.stderr)
            return 2
        if args.agent in existing.agents:
            print(_say("agent_exists", agent=args.agent, path=path), file=sys.stderr)
            return 2
    protocols = args.protocol or ["osmp", "json"]
    password = secrets.token_urlsafe(18) if "osmp" in protocols else None
    key_id = f"{args.agent}-{secrets.token_hex(4)}" if "json" in protocols else None
    secret_hex = secrets.token_hex(32) if key_id is not None else None
    text = new_agent_toml(
        args.agent,
        name=args.name,
        ip_allow=list(args.ip),
        protocols=protocols,
        password_hash=None if password is None else hash_password(password),
        hmac_key_id=key_id,
        hmac_secret_hex=secret_hex,
        amount_min_minor=args.amount_min_minor,
        amount_max_minor=args.amount_max_minor,
        rate_per_s=args.rate_per_s,
        rate_burst=args.rate_burst,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        before = os.fstat(fd).st_size
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        load_agents(path)
    except AgentsFileError as exc:
        # Put the file back as it was: a bad agent must not break the good ones.
        os.truncate(path, before)
        print(_say("agents_bad", message=exc), file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    credentials = {
        "agent": args.agent,
        "basic_user": args.agent if password is not None else None,
        "basic_password": password,
        "hmac_key_id": key_id,
        "hmac_secret_hex": secret_hex,
    }
    if args.json:
        print(json.dumps(credentials))
    else:
        print(_say("agent_added", agent=args.agent, path=path), file=sys.stderr)
        print(_say("secret_once"), file=sys.stderr)
        for name, value in credentials.items():
            if value is not None and name != "agent":
                print(f"{name}: {value}")
    return 0
