"""`lobbypay catalog ...`: look at the local catalog, check billing files, make test data.

Only argparse and the standard library are imported here; the catalog package is
imported when a command runs, so ``lobbypay --help`` stays fast.

Exit status: 0 ok, 2 bad input or a problem found (stale catalog, refused
release, bad billing rows, unknown account), 1 other failures.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_PROBLEM = 2

MESSAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "no_catalog": "no catalog at {path}: the sync agent has not applied one yet",
        "stale": "the catalog has EXPIRED: check the network link to central and the sync agent",
        "fresh": "catalog is current",
        "not_found": "no account {what}",
        "problems": "{count} problem(s); the file cannot be imported",
        "billing_ok": "billing file OK: {accounts} accounts, {services} services, {providers} "
        "providers",
        "refused": "release refused ({reason}): {message}",
        "applied": "applied {kind} version {version}: {accounts} accounts",
        "no_key": "central's public key is not pinned: use --central-key or central.public_key",
        "written": "wrote {accounts} accounts to {path}",
    },
    "ru": {
        "no_catalog": "нет каталога {path}: агент синхронизации ещё не загрузил его",
        "stale": "срок действия каталога ИСТЁК: проверьте связь с центром и агент синхронизации",
        "fresh": "каталог актуален",
        "not_found": "лицевой счёт {what} не найден",
        "problems": "проблем: {count}; файл не может быть загружен",
        "billing_ok": "файл расчётного центра в порядке: счетов {accounts}, услуг {services}, "
        "поставщиков {providers}",
        "refused": "выпуск каталога отклонён ({reason}): {message}",
        "applied": "применён выпуск ({kind}) версии {version}: счетов {accounts}",
        "no_key": "открытый ключ центра не задан: укажите --central-key или central.public_key",
        "written": "записано счетов: {accounts}, файл {path}",
    },
}


def _say(key: str, **fields: object) -> str:
    from firmware_config.cli_common import language

    return MESSAGES[language()][key].format(**fields)


def _add_location(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--catalog",
        type=Path,
        metavar="FILE",
        help="catalog file (default: <terminal.data_dir>/catalog.db)",
    )
    cmd.add_argument(
        "--config-dir",
        type=Path,
        metavar="DIR",
        help="configuration directory (default: $LOBBYPAY_CONFIG_DIR or /etc/lobbypay)",
    )


def add_catalog_parser(subparsers: Any) -> None:
    """Register `lobbypay catalog` and its subcommands."""
    parser = subparsers.add_parser(
        "catalog",
        help="look at the local catalog, check billing files, make test catalogs",
        description="The signed local catalog of accounts and debts: its status and accounts, "
        "applying a release file by hand, checking a billing-center file, and synthetic data.",
    )
    sub = parser.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND", required=True)

    status = sub.add_parser(
        "status",
        help="version, size and freshness of the local catalog",
        description="Show the catalog version, account count, publication and expiry times "
        "and age. Exit 2 when there is no catalog or it has expired.",
    )
    _add_location(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_status)

    show = sub.add_parser(
        "show",
        help="one account with its services, debts and rules",
        description="Show one account by virtual number (or by card hash with --card): the "
        "masked holder, address, services with debts, instalments and meters, and the "
        "surcharge and limits for each. Exit 2 when there is no such account.",
    )
    show.add_argument("number", help="virtual number, or a 64-hex card hash with --card")
    show.add_argument("--card", action="store_true", help="look up by card hash")
    show.add_argument("--lang", choices=("ru", "en"), help="language (default: from the locale)")
    _add_location(show)
    show.set_defaults(func=_show)

    apply = sub.add_parser(
        "apply",
        help="verify and apply a release file (offline update)",
        description="Verify a catalog release file against central's pinned key and apply it "
        "atomically, as the sync agent does. Exit 2 when the release is refused (rollback, "
        "expired, wrong base, bad signature, damaged); the catalog is then unchanged.",
    )
    apply.add_argument("release", type=Path, help="release file")
    apply.add_argument("--central-key", metavar="HEX", help="central's public key (64 hex)")
    _add_location(apply)
    apply.set_defaults(func=_apply)

    inspect = sub.add_parser(
        "inspect",
        help="verify a release file's signature and show its manifest",
        description="Verify a release file's signed manifest (signature, format, bounds) "
        "without applying it. Exit 2 when it is refused.",
    )
    inspect.add_argument("release", type=Path, help="release file")
    inspect.add_argument("--central-key", metavar="HEX", help="central's public key (64 hex)")
    inspect.add_argument(
        "--config-dir",
        type=Path,
        metavar="DIR",
        help="configuration directory (default: $LOBBYPAY_CONFIG_DIR or /etc/lobbypay)",
    )
    inspect.set_defaults(func=_inspect)

    check = sub.add_parser(
        "check-billing",
        help="check a billing-center file and list every bad row by line",
        description="Parse a billing-center file (.csv or .json; the format is described in "
        "central_sync/catalog/billing_import.py) and report every problem as "
        "FILE:LINE: FIELD: MESSAGE. Exit 2 when there is any problem.",
    )
    check.add_argument("file", type=Path, help="billing file (.csv or .json)")
    check.add_argument("--deployment", default="default", help="deployment id for rows without one")
    check.set_defaults(func=_check_billing)

    generate = sub.add_parser(
        "generate",
        help="write a synthetic billing file (for tests and demos)",
        description="Write a deterministic synthetic catalog as a billing-center file (.csv or "
        ".json): realistic Russian addresses, masked names, providers, debts, overpayments, "
        "instalment plans and meters.",
    )
    generate.add_argument("out", type=Path, help="output file (.csv or .json)")
    generate.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    generate.add_argument("--accounts", type=int, default=1000, help="accounts (default 1000)")
    generate.add_argument("--services", type=int, default=5, help="services per account (1..10)")
    generate.add_argument("--demo", action="store_true", help="the fixed demo catalog instead")
    generate.set_defaults(func=_generate)


# --------------------------------------------------------------------------- helpers


def _catalog_path(args: argparse.Namespace) -> Path:
    if args.catalog is not None:
        return Path(args.catalog)
    from central_sync.catalog.store import CATALOG_FILE_NAME
    from firmware_config.cli_common import load_config_or_exit

    return Path(load_config_or_exit(args).settings.terminal.data_dir) / CATALOG_FILE_NAME


def _central_key(args: argparse.Namespace) -> bytes | None:
    if args.central_key:
        try:
            key = bytes.fromhex(args.central_key)
        except ValueError:
            return None
        return key if len(key) == 32 else None
    from firmware_config.cli_common import load_config_or_exit

    pinned: bytes | None = load_config_or_exit(args).settings.central.public_key_bytes
    return pinned


def _when(ms: int) -> str:
    if ms <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def _rub(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}".replace(",", " ")


def _open(args: argparse.Namespace) -> Any:
    from central_sync.catalog.errors import CatalogUnavailableError
    from central_sync.catalog.store import CatalogStore

    path = _catalog_path(args)
    try:
        return CatalogStore.open(path, readonly=True)
    except CatalogUnavailableError:
        print(_say("no_catalog", path=path), file=sys.stderr)
        return None


# --------------------------------------------------------------------------- commands


def _status(args: argparse.Namespace) -> int:
    import json

    from central_sync.catalog.errors import CatalogStoreError

    try:
        store = _open(args)
        if store is None:
            return EXIT_PROBLEM
        with store:
            status = store.status(time.time_ns() // 1_000_000)
    except CatalogStoreError as exc:
        print(f"lobbypay catalog: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(
            json.dumps(
                {
                    "version": status.version,
                    "accounts": status.accounts,
                    "published_at_ms": status.published_at_ms,
                    "expires_at_ms": status.expires_at_ms,
                    "applied_at_ms": status.applied_at_ms,
                    "stale": status.stale,
                    "age_s": round(status.age_s, 3),
                    "release_sha256": status.release_sha256,
                }
            )
        )
    else:
        print(f"version    {status.version}")
        print(f"accounts   {status.accounts}")
        print(f"published  {_when(status.published_at_ms)}  (age {status.age_s / 3600:.1f} h)")
        print(f"expires    {_when(status.expires_at_ms)}")
        print(f"applied    {_when(status.applied_at_ms)}")
        print(_say("stale") if status.stale else _say("fresh"))
    return EXIT_PROBLEM if status.stale else EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from central_sync.catalog.errors import CatalogStoreError
    from firmware_config.cli_common import language

    lang = args.lang or language()
    try:
        store = _open(args)
        if store is None:
            return EXIT_PROBLEM
        with store:
            if args.card:
                view = store.account_by_card_hash(args.number)
            else:
                view = store.account(args.number)
    except CatalogStoreError as exc:
        print(f"lobbypay catalog: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if view is None:
        # A card hash is not a secret, but it is long; show its start only.
        what = args.number[:12] + "…" if args.card else args.number
        print(_say("not_found", what=what), file=sys.stderr)
        return EXIT_PROBLEM
    a = view.account
    print(f"{a.virtual_number}  {a.holder_name(lang)}")
    print(f"  {a.address.format(lang)}")
    print(
        f"  {a.deployment} / {a.building}, cards: {len(a.card_hashes)}, "
        f"catalog v{view.catalog_version}"
    )
    for sv in view.services:
        s = sv.service
        print(f"  {s.code:<8} {s.name(lang)} — {s.provider.name(lang)} (INN {s.provider.inn})")
        print(f"           {s.period}: {_rub(s.debt_minor)} RUB")
        for inst in s.instalments:
            print(f"           {inst.due_date}: {_rub(inst.amount_minor)} RUB")
        for meter in s.meters:
            reading = f"{meter.last_reading_milli // 1000}.{meter.last_reading_milli % 1000:03d}"
            print(
                f"           meter {meter.meter_id}: {reading} {meter.unit} "
                f"({meter.last_read_on or '-'})"
            )
        if sv.surcharge is not None:
            r = sv.surcharge
            print(
                f"           surcharge {r.percent_bp / 100:.2f}% + {_rub(r.fixed_minor)} RUB, "
                f"payer {r.payer}{', declinable' if r.declinable else ''}"
            )
        lim = sv.limits
        print(
            f"           limits {_rub(lim.payment_min_minor)}..{_rub(lim.payment_max_minor)}"
            f" RUB, overpay <= {_rub(lim.overpayment_max_minor)} RUB"
        )
    return EXIT_OK


def _apply(args: argparse.Namespace) -> int:
    from central_sync.catalog.errors import CatalogStoreError, ReleaseRefusedError
    from central_sync.catalog.publish import apply_release
    from central_sync.catalog.store import CatalogStore

    key = _central_key(args)
    if key is None:
        print(_say("no_key"), file=sys.stderr)
        return EXIT_PROBLEM
    try:
        with CatalogStore.open(_catalog_path(args)) as store:
            result = apply_release(
                store, args.release, central_public_key=key, now_ms=time.time_ns() // 1_000_000
            )
    except ReleaseRefusedError as exc:
        print(_say("refused", reason=exc.reason, message=exc), file=sys.stderr)
        return EXIT_PROBLEM
    except CatalogStoreError as exc:
        print(f"lobbypay catalog: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(_say("applied", kind=result.kind, version=result.version, accounts=result.accounts))
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    from central_sync.catalog.errors import ReleaseRefusedError
    from central_sync.catalog.publish import read_release_info

    key = _central_key(args)
    if key is None:
        print(_say("no_key"), file=sys.stderr)
        return EXIT_PROBLEM
    try:
        info = read_release_info(args.release, central_public_key=key)
    except ReleaseRefusedError as exc:
        print(_say("refused", reason=exc.reason, message=exc), file=sys.stderr)
        return EXIT_PROBLEM
    base = "" if info.base_version is None else f" from {info.base_version}"
    print(f"{info.kind} version {info.version}{base}")
    print(
        f"accounts {info.accounts}, records {info.records}, chunks {info.chunks}, "
        f"payload {info.payload_bytes} bytes"
    )
    print(f"published {_when(info.published_at_ms)}, expires {_when(info.expires_at_ms)}")
    print(f"providers {len(info.header.providers)}, services {len(info.header.service_types)}")
    print(f"manifest sha256 {info.release_sha256}")
    return EXIT_OK


def _check_billing(args: argparse.Namespace) -> int:
    from central_sync.catalog.billing_import import BillingImportError, parse_billing_file

    try:
        catalog = parse_billing_file(args.file, deployment=args.deployment)
    except BillingImportError as exc:
        for problem in exc.problems:
            print(f"{args.file}:{problem.line}: {problem.field}: {problem.message}")
        print(_say("problems", count=len(exc.problems)), file=sys.stderr)
        return EXIT_PROBLEM
    services = sum(len(a.services) for a in catalog.accounts.values())
    print(
        _say(
            "billing_ok",
            accounts=len(catalog.accounts),
            services=services,
            providers=len(catalog.header.providers),
        )
    )
    return EXIT_OK


def _generate(args: argparse.Namespace) -> int:
    from central_sync.catalog import generator
    from central_sync.catalog.billing_import import write_billing_file
    from central_sync.catalog.errors import CatalogValueError

    if args.out.suffix.lower() not in (".csv", ".json"):
        print("lobbypay catalog: the output file must end in .csv or .json", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        if args.demo:
            catalog = generator.demo_catalog()
        else:
            catalog = generator.generate_catalog(args.seed, args.accounts, args.services)
    except CatalogValueError as exc:
        print(f"lobbypay catalog: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        write_billing_file(catalog, args.out)
    except OSError as exc:
        print(f"lobbypay catalog: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    print(_say("written", accounts=len(catalog.accounts), path=args.out))
    return EXIT_OK
