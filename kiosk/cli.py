"""`lobbypay demo`: the whole system on one machine with simulated devices.

Only argparse is imported here; the demo imports its parts when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_demo_parser(subparsers: Any) -> None:
    """Register `lobbypay demo`."""
    parser = subparsers.add_parser(
        "demo",
        help="run lobbypay on this machine with simulated devices",
        description=(
            "Run lobbypay on this machine with simulated devices: a terminal identity, "
            "the durable journal, a card payment through the ZVT terminal simulator with a "
            "receipt on the ESC/POS printer simulator, a burst of gateway payments, an "
            "offline limit, and the journal verified."
        ),
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="print one JSON line with what happened instead of the step-by-step text",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the demo's files (key, journal) in this directory (default: a temporary one)",
    )
    parser.add_argument(
        "--lang", choices=("ru", "en"), default="ru", help="language of messages and receipt"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from kiosk.demo import main

    return main(headless=args.headless, data_dir=args.data_dir, lang=args.lang)
