"""`lobbypay kiosk`: run the resident kiosk in this terminal, or serve it to the kiosk browser.

Only argparse and the standard library are imported at the top (the dispatcher
imports this module for ``lobbypay --help``); Textual and the kiosk load when
the command runs.

* ``lobbypay kiosk`` — the Textual app in this terminal.
* ``lobbypay kiosk --serve`` — textual-serve on ``kiosk.serve_host:serve_port``:
  the kiosk browser (touch works there) opens ``http://host:port/``; each
  browser connection runs ``python -m kiosk`` with the same options.
* ``lobbypay kiosk --hash-pin`` — read a technician PIN from standard input and
  print the ``kiosk.service_pin_hash`` line for the configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

LOG_FILE_BYTES_MAX = 1_000_000
LOG_FILES_KEPT = 3


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="configuration directory (default: $LOBBYPAY_CONFIG_DIR or /etc/lobbypay)",
    )
    parser.add_argument(
        "--simulated-inputs",
        action="store_true",
        help="use the simulated card reader and QR scanner (demo: F5/F6 tap a card, F7 a bill)",
    )


def add_kiosk_parser(subparsers: Any) -> None:
    """Register `lobbypay kiosk`."""
    parser = subparsers.add_parser(
        "kiosk",
        help="run the resident payment kiosk (in this terminal, or --serve to a browser)",
        description=(
            "Run the resident kiosk: identify by card, bill QR or account number, see what is "
            "owed, pay by card, get a receipt, submit meter readings. Devices come from "
            "[devices] in the configuration (simulators by default). --serve serves the same "
            "app over HTTP for the kiosk browser (textual-serve)."
        ),
    )
    _add_arguments(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--serve",
        action="store_true",
        help="serve the kiosk to a browser at kiosk.serve_host:kiosk.serve_port",
    )
    mode.add_argument(
        "--hash-pin",
        action="store_true",
        help="read a technician PIN from stdin and print its kiosk.service_pin_hash value",
    )
    parser.add_argument("--host", help="with --serve: listen address (default kiosk.serve_host)")
    parser.add_argument(
        "--port", type=int, help="with --serve: TCP port (default kiosk.serve_port)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handle `lobbypay kiosk`."""
    if args.hash_pin:
        return _hash_pin()
    from firmware_config.cli_common import load_config_or_exit

    loaded = load_config_or_exit(args)
    settings = loaded.settings
    if args.serve:
        return _serve(args, settings, loaded.config_dir)
    return run_terminal(settings, simulated_inputs=args.simulated_inputs)


def _hash_pin() -> int:
    from kiosk.pin import hash_pin

    pin = sys.stdin.readline().strip()
    try:
        print(hash_pin(pin))
    except ValueError as exc:
        print(f"lobbypay kiosk: {exc}", file=sys.stderr)
        return 2
    return 0


def log_to_file(settings: Any) -> None:
    """The screen belongs to the kiosk: logs go to a bounded, rotated file in the data dir."""
    import logging
    import logging.handlers

    directory = settings.terminal.data_dir / "log"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            directory / "kiosk.log", maxBytes=LOG_FILE_BYTES_MAX, backupCount=LOG_FILES_KEPT
        )
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.logging.level)


def run_terminal(settings: Any, *, simulated_inputs: bool = False) -> int:
    """Run the kiosk app in this terminal until it is quit."""
    from kiosk.app import KioskApp
    from kiosk.devices import DeviceChoice

    log_to_file(settings)
    overrides = {"card_reader": "simulator", "scanner": "simulator"} if simulated_inputs else {}
    app = KioskApp(settings, devices=DeviceChoice.from_settings(settings, **overrides))
    app.run()
    return 0


def serve_command(config_dir: Path | None, *, simulated_inputs: bool) -> str:
    """The shell command textual-serve runs for each browser connection."""
    import shlex

    parts = [sys.executable, "-m", "kiosk"]
    if config_dir is not None:
        parts += ["--config-dir", str(config_dir)]
    if simulated_inputs:
        parts.append("--simulated-inputs")
    return " ".join(shlex.quote(p) for p in parts)


def _serve(args: argparse.Namespace, settings: Any, config_dir: Path) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:
        print("lobbypay kiosk: --serve needs the textual-serve package", file=sys.stderr)
        return 1
    host = args.host or settings.kiosk.serve_host
    port = args.port if args.port is not None else settings.kiosk.serve_port
    if not 1 <= port <= 65535:
        print("lobbypay kiosk: --port must be 1..65535", file=sys.stderr)
        return 2
    command = serve_command(config_dir, simulated_inputs=args.simulated_inputs)
    Server(command, host=host, port=port, title="lobbypay").serve()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m kiosk``: the kiosk in this terminal (what textual-serve runs)."""
    parser = argparse.ArgumentParser(prog="python -m kiosk", description="Run the resident kiosk.")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    from firmware_config.cli_common import load_config_or_exit

    settings = load_config_or_exit(args).settings
    return run_terminal(settings, simulated_inputs=args.simulated_inputs)
