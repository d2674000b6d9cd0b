"""``lobbypay card``: technician commands for PC/SC resident card readers.

* ``lobbypay card watch [--duration-s N]`` prints readers coming and going and
  cards presented and removed, one line each, identifiers masked.
* ``lobbypay card read [--reader NAME] [--json] [--timeout-s N]`` reads the card
  in the named reader, or in the first reader holding a card.

Exit status: 0 ok; 2 for a problem found (no reader, no card, card not
recognised or removed too early); 1 for anything else. Only argparse is
imported here; the handlers import the driver (and pyscard) when they run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_LANGS = ("ru", "en")


def add_card_parser(subparsers: Any) -> None:
    """Register ``lobbypay card`` and its subcommands."""
    parser = subparsers.add_parser(
        "card",
        help="resident card readers (PC/SC): watch events, read a card",
        description=(
            "Technician tools for PC/SC resident card readers. Card UIDs are "
            "always shown masked (first two bytes and the length)."
        ),
    )
    sub = parser.add_subparsers(dest="card_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda _args: _usage(parser))

    watch = sub.add_parser(
        "watch",
        help="print readers and card insertions/removals as they happen",
        description=(
            "Watch every PC/SC reader and print one line per event: reader "
            "added/removed, card inserted (with its masked identity), card "
            "removed, card read failed. Survives reader unplug and pcscd "
            "restarts. Runs until --duration-s elapses or Ctrl-C; exits 2 if "
            "no reader was seen at all."
        ),
    )
    watch.add_argument(
        "--duration-s",
        type=_positive_float,
        default=None,
        metavar="N",
        help="stop after N seconds (default: run until interrupted)",
    )
    watch.add_argument("--lang", choices=_LANGS, default="en", help="message language")
    watch.set_defaults(func=_watch)

    read = sub.add_parser(
        "read",
        help="read the card in the first reader (or --reader NAME)",
        description=(
            "Wait up to --timeout-s for a card in the named reader (or in any "
            "reader; the first one holding a card wins) and print what it says: "
            "the masked UID of a contactless card or the resident record of a "
            "contact card. Exits 2 when there is no reader, no card, or the card "
            "is not recognised."
        ),
    )
    read.add_argument("--reader", metavar="NAME", default=None, help="exact PC/SC reader name")
    read.add_argument("--json", action="store_true", help="print one JSON object")
    read.add_argument(
        "--timeout-s",
        type=_positive_float,
        default=5.0,
        metavar="N",
        help="how long to wait for a reader and a card (default: 5)",
    )
    read.add_argument("--lang", choices=_LANGS, default="en", help="message language")
    read.set_defaults(func=_read)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 86400 * 365:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _problem(command: str, error: Any, lang: str) -> int:
    """Print a card error for a technician and return the exit status."""
    from drivers.pcsc.errors import CardError

    if isinstance(error, CardError):
        print(
            f"lobbypay card {command}: {error.title(lang)}: {error}. {error.next_step(lang)}",
            file=sys.stderr,
        )
        return 2
    print(f"lobbypay card {command}: {type(error).__name__}: {error}", file=sys.stderr)
    return 1


def _load_reader_module() -> Any:
    """Import the pyscard transport, or explain why it cannot be loaded."""
    try:
        from drivers.pcsc import reader
    except ImportError as exc:
        print(
            f"lobbypay card: the PC/SC library is not available ({exc}); "
            "install pyscard and libpcsclite (Debian: pcscd, libpcsclite1)",
            file=sys.stderr,
        )
        return None
    return reader


def _read(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from drivers.pcsc.errors import CardError

    reader = _load_reader_module()
    if reader is None:
        return 1
    read_card_details = reader.read_card_details

    try:
        result = asyncio.run(read_card_details(args.reader, timeout_s=args.timeout_s))
    except CardError as exc:
        return _problem("read", exc, args.lang)
    if args.json:
        payload = {
            "reader": result.reader,
            "atr": result.atr_hex,
            **result.identity.to_public_dict(),
        }
        print(json.dumps(payload, ensure_ascii=False, sort_keys=True))
        return 0
    print(f"reader: {result.reader}")
    print(f"atr: {result.atr_hex}")
    for key, value in result.identity.to_public_dict().items():
        print(f"{key}: {value if value is not None else '-'}")
    return 0


def _watch(args: argparse.Namespace) -> int:
    import asyncio

    if _load_reader_module() is None:
        return 1
    return asyncio.run(_watch_async(args.duration_s, args.lang))


async def _watch_async(duration_s: float | None, lang: str) -> int:
    import asyncio
    import contextlib

    from drivers.pcsc.events import CardReadFailed, ReaderAdded, describe_event
    from drivers.pcsc.reader import CardReaderMonitor

    readers_seen = 0

    async def consume(monitor: CardReaderMonitor) -> None:
        nonlocal readers_seen
        async for event in monitor.events():
            line = describe_event(event)
            if isinstance(event, ReaderAdded):
                readers_seen += 1
            if isinstance(event, CardReadFailed):
                line += f" ({event.error.title(lang)}: {event.error})"
            print(line, flush=True)

    async with CardReaderMonitor() as monitor:
        task = asyncio.create_task(consume(monitor))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=duration_s)
    await task
    if readers_seen == 0:
        print(
            "lobbypay card watch: no card reader found (is pcscd running and a reader attached?)",
            file=sys.stderr,
        )
        return 2
    return 0
