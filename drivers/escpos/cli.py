"""``lobbypay printer``: test, status, simulate and render for ESC/POS printers.

Only argparse and the standard library are imported here; each handler imports
the driver when it runs, so ``lobbypay --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_printer_parser"]

_MESSAGES = {
    "ru": {
        "printed": "Тестовый чек напечатан: {lines} строк, {bytes} байт.",
        "near_end": "Внимание: бумага заканчивается.",
        "ready": "Принтер готов.",
        "not_ready": "Принтер не готов.",
    },
    "en": {
        "printed": "Test receipt printed: {lines} lines, {bytes} bytes.",
        "near_end": "Warning: paper near end.",
        "ready": "Printer ready.",
        "not_ready": "Printer not ready.",
    },
}


def add_printer_parser(subparsers: Any) -> None:
    """Register ``printer`` and its sub-commands."""
    parser = subparsers.add_parser(
        "printer",
        help="ESC/POS receipt printer: test print, status, simulator, render",
        description=(
            "Work with the ESC/POS receipt printer. URL is a serial device path "
            "(/dev/ttyUSB0) or a pyserial URL (socket://192.0.2.10:9100)."
        ),
    )
    sub = parser.add_subparsers(dest="printer_command", metavar="COMMAND")
    parser.set_defaults(func=lambda args: _help(parser))

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", required=True, metavar="URL", help="device path or URL")
        p.add_argument("--baudrate", type=int, default=19200, help="serial speed (19200)")
        p.add_argument(
            "--timeout",
            type=float,
            default=3.0,
            metavar="SECONDS",
            help="how long to wait for the printer's replies (3)",
        )

    test = sub.add_parser(
        "test",
        help="print a test receipt",
        description="Check the printer's status, then print a sample receipt with a QR code.",
    )
    common(test)
    _layout_args(test)
    test.add_argument("--code-page", type=int, default=17, help="ESC t table number (17: PC866)")
    test.set_defaults(func=_cmd_test)

    status = sub.add_parser(
        "status",
        help="show the printer's status (DLE EOT)",
        description="Ask the printer for DLE EOT 1-4 and show online, cover, paper and errors.",
    )
    common(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.add_argument("--lang", choices=("ru", "en"), default="ru", help="message language")
    status.set_defaults(func=_cmd_status)

    simulate = sub.add_parser(
        "simulate",
        help="run a simulated printer on a pty or TCP port",
        description=(
            "Run a printer simulator that answers DLE EOT and records what it prints. "
            "Stop it with Ctrl-C; it then prints what it recorded as text."
        ),
    )
    where = simulate.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    where.add_argument("--tcp", metavar="HOST:PORT", help="serve on a TCP address")
    simulate.add_argument(
        "--paper-lines", type=int, default=None, metavar="N", help="run out of paper after N lines"
    )
    simulate.add_argument("--width", type=int, default=42, help="characters per line (42)")
    simulate.add_argument(
        "--seconds", type=float, default=None, help="stop after this many seconds (default: never)"
    )
    simulate.set_defaults(func=_cmd_simulate)

    render = sub.add_parser(
        "render",
        help="render a sample receipt as text or PNG",
        description="Lay out the sample receipt and write it as text (stdout) or a PNG file.",
    )
    out = render.add_mutually_exclusive_group(required=True)
    out.add_argument("--text", action="store_true", help="write text to stdout")
    out.add_argument("--png", metavar="OUT", help="write a PNG file")
    _layout_args(render)
    render.set_defaults(func=_cmd_render)


def _layout_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--width", type=int, default=42, choices=(32, 42, 48), help="characters per line (42)"
    )
    p.add_argument("--lang", choices=("ru", "en"), default="ru", help="receipt language (ru)")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _fault_exit(exc: Exception, lang: str) -> int:
    from .errors import PrinterError

    if isinstance(exc, PrinterError):
        print(f"{exc.title(lang)}: {exc}. {exc.next_step(lang)}", file=sys.stderr)
        return 1
    print(f"printer: {exc}", file=sys.stderr)
    return 2


def _cmd_test(args: argparse.Namespace) -> int:
    import asyncio

    from .client import EscPosPrinter
    from .document import PrinterProfile
    from .errors import EscPosError
    from .receipt import sample_receipt

    try:
        profile = PrinterProfile(width_chars=args.width, code_page=args.code_page)
    except EscPosError as exc:
        return _fault_exit(exc, args.lang)

    async def run() -> int:
        printer = await EscPosPrinter.open(
            args.device, baudrate=args.baudrate, profile=profile, status_timeout_s=args.timeout
        )
        async with printer:
            report = await printer.print_receipt(sample_receipt(lang=args.lang), lang=args.lang)
        msg = _MESSAGES[args.lang]
        print(msg["printed"].format(lines=report.lines_total, bytes=report.bytes_sent))
        if report.paper_near_end:
            print(msg["near_end"])
        return 0

    try:
        return asyncio.run(run())
    except EscPosError as exc:
        return _fault_exit(exc, args.lang)


def _cmd_status(args: argparse.Namespace) -> int:
    import asyncio

    from .client import EscPosPrinter
    from .errors import EscPosError
    from .status import PrinterStatus

    async def run() -> PrinterStatus:
        printer = await EscPosPrinter.open(
            args.device, baudrate=args.baudrate, status_timeout_s=args.timeout
        )
        async with printer:
            return await printer.status()

    try:
        status = asyncio.run(run())
    except EscPosError as exc:
        return _fault_exit(exc, args.lang)
    if args.json:
        print(json.dumps({"ready": status.ready, **status.as_dict()}, sort_keys=True))
    else:
        print(_MESSAGES[args.lang]["ready" if status.ready else "not_ready"])
        for name, value in status.as_dict().items():
            print(f"  {name}: {'yes' if value else 'no'}")
    return 0 if status.ready else 2


def _cmd_simulate(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from .render import render_text
    from .simulator import PtyPrinterServer, SimulatedPrinter, TcpPrinterServer

    if args.paper_lines is not None and args.paper_lines < 0:
        print("printer: --paper-lines must be 0 or more", file=sys.stderr)
        return 2
    if not 16 <= args.width <= 64:
        print("printer: --width must be 16..64", file=sys.stderr)
        return 2
    host, port = "127.0.0.1", 0
    if args.tcp:
        host, sep, port_text = args.tcp.rpartition(":")
        if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            print("printer: --tcp must be HOST:PORT", file=sys.stderr)
            return 2
        port = int(port_text)
    printer = SimulatedPrinter(width_chars=args.width, paper_lines=args.paper_lines)

    async def run() -> None:
        if args.pty:
            pty_server = PtyPrinterServer(printer)
            path = await pty_server.start()
            print(f"printer simulator on {path}", flush=True)
            try:
                await _wait(args.seconds)
            finally:
                await pty_server.stop()
        else:
            tcp_server = TcpPrinterServer(printer)
            await tcp_server.start(host or "127.0.0.1", port)
            print(f"printer simulator on {tcp_server.url}", flush=True)
            try:
                await _wait(args.seconds)
            finally:
                await tcp_server.stop()

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"printer: cannot start the simulator: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    with contextlib.suppress(BrokenPipeError):
        print(render_text(printer.document()), end="")
        for fault in printer.faults:
            print(f"fault: {fault}")
    return 0


async def _wait(seconds: float | None) -> None:
    import asyncio

    if seconds is None:
        await asyncio.Event().wait()
    else:
        await asyncio.sleep(seconds)


def _cmd_render(args: argparse.Namespace) -> int:
    from .document import PrinterProfile
    from .errors import EscPosError
    from .receipt import layout_receipt, sample_receipt
    from .render import render_png, render_text

    try:
        profile = PrinterProfile(width_chars=args.width)
        document = layout_receipt(sample_receipt(lang=args.lang), profile, lang=args.lang)
    except EscPosError as exc:
        return _fault_exit(exc, args.lang)
    if args.text:
        print(render_text(document), end="")
        return 0
    try:
        with open(args.png, "wb") as fh:
            fh.write(render_png(document))
    except OSError as exc:
        print(f"printer: cannot write {args.png}: {exc}", file=sys.stderr)
        return 1
    return 0
