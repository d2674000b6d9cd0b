"""`lobbypay journal ...`: inspect and verify the terminal journal.

Only argparse is imported here; the journal is imported when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_journal_parser(subparsers: Any) -> None:
    """Register `lobbypay journal` and its subcommands."""
    parser = subparsers.add_parser(
        "journal",
        help="inspect and verify the payment journal",
        description="Inspect and verify the terminal's durable, hash-chained payment journal.",
    )
    sub = parser.add_subparsers(dest="journal_command", metavar="SUBCOMMAND", required=True)
    for name, help_text, description in (
        (
            "verify",
            "walk the hash chain and report the first bad entry",
            "Walk the whole hash chain. Exit 0 when it verifies, 2 with the first bad "
            "entry's seq and the problem when it does not.",
        ),
        (
            "stats",
            "counts, oldest pending age and amounts pending per currency",
            "Show entry counts by state and kind, the oldest pending entry's age, the "
            "amounts stored per currency, outcome-unknown payments and the schema version.",
        ),
        (
            "unknown",
            "list outcome-unknown payments (an intent with no result)",
            "List payment intents that have no result: payments whose outcome must be "
            "learned from the payment terminal before anything else is done with them.",
        ),
    ):
        cmd = sub.add_parser(name, help=help_text, description=description)
        cmd.add_argument(
            "--path",
            type=Path,
            help="journal file (default: journal.path from the configuration)",
        )
        cmd.add_argument(
            "--config-dir",
            type=Path,
            help="configuration directory (default: $LOBBYPAY_CONFIG_DIR or /etc/lobbypay)",
        )
        cmd.add_argument("--json", action="store_true", help="print JSON")
        cmd.set_defaults(func=_run)


def _journal_path(args: argparse.Namespace) -> Path:
    if args.path is not None:
        return Path(args.path)
    from firmware_config.cli_common import load_config_or_exit

    return load_config_or_exit(args).settings.journal_path


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from central_sync.journal import Journal, JournalError

    path = _journal_path(args)
    if not path.exists():
        print(f"lobbypay journal: no journal at {path}", file=sys.stderr)
        return 2

    async def run() -> int:
        journal = await Journal.open(path, check_tail=False)
        try:
            if args.journal_command == "verify":
                report = await journal.verify()
                out: dict[str, Any] = {
                    "ok": report.ok,
                    "entries_checked": report.entries_checked,
                    "anchor_seq": report.anchor_seq,
                    "head_seq": report.head_seq,
                    "first_bad_seq": report.first_bad_seq,
                    "problem": report.problem,
                }
                if args.json:
                    print(json.dumps(out))
                elif report.ok:
                    print(
                        f"journal OK: {report.entries_checked} entries verified "
                        f"(seq {report.anchor_seq + 1}..{report.head_seq})"
                    )
                else:
                    print(
                        f"journal BROKEN at seq {report.first_bad_seq}: {report.problem} "
                        f"({report.entries_checked} entries verified before it). New payments "
                        "are refused; keep the file and call support.",
                        file=sys.stderr,
                    )
                return 0 if report.ok else 2
            if args.journal_command == "stats":
                stats = await journal.stats()
                data = {
                    "head_seq": stats.head_seq,
                    "acknowledged_through": stats.acknowledged_through,
                    "entries_by_state": dict(stats.entries_by_state),
                    "entries_by_kind": dict(stats.entries_by_kind),
                    "oldest_pending_age_s": stats.oldest_pending_age_s,
                    "pending_amount_minor_by_currency": dict(
                        stats.pending_amount_minor_by_currency
                    ),
                    "stored_payments": stats.stored_payments,
                    "outcome_unknown": stats.outcome_unknown,
                    "schema_version": stats.schema_version,
                    "file_bytes": stats.file_bytes,
                }
                if args.json:
                    print(json.dumps(data))
                else:
                    for key, value in data.items():
                        print(f"{key:34} {_fmt(value)}")
                return 0
            entries = await journal.outcome_unknown()
            rows = [
                {
                    "seq": e.seq,
                    "payment_id": e.body.get("payment_id"),
                    "amount_minor": e.body.get("amount_minor"),
                    "currency": e.body.get("currency"),
                    "ts_ms": e.ts_ms,
                }
                for e in entries
            ]
            if args.json:
                print(json.dumps(rows))
            elif not rows:
                print("no outcome-unknown payments")
            else:
                for row in rows:
                    print(
                        f"seq {row['seq']}: payment {row['payment_id']} "
                        f"{_money(row['amount_minor'])} {row['currency']}"
                    )
            return 0
        finally:
            await journal.close()

    try:
        return asyncio.run(run())
    except JournalError as exc:
        print(f"lobbypay journal: {exc}", file=sys.stderr)
        return 2


def _money(minor: object) -> str:
    if not isinstance(minor, int):
        return "?"
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _fmt(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return "-" if value is None else str(value)
