"""The `lobbypay` console script.

Theory of operation: every package registers its subcommands in the
``lobbypay.commands`` entry-point group (see pyproject.toml). Each entry point
names a function ``add_parser(subparsers)`` that adds one subcommand with its
help and sets ``func`` to a handler ``(argparse.Namespace) -> int``. Modules
behind those entry points import only :mod:`argparse` at the top, and the
handler imports its package when it runs, so ``lobbypay --help`` stays fast and
this dispatcher never imports a package above it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

COMMAND_GROUP = "lobbypay.commands"

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser from every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="lobbypay",
        description="lobbypay: edge payment appliance for utility bills.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            add_parser = ep.load()
        except ImportError as exc:
            # One broken package must not take every other command (and `doctor`)
            # down with it; say which one and carry on.
            print(f"lobbypay: command {ep.name!r} is unavailable: {exc}", file=sys.stderr)
            continue
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
