"""``lobbypay terminal``: technician commands for the ZVT payment terminal.

Only argparse and the standard library are imported here; the handler imports
the driver when it runs, so ``lobbypay --help`` stays fast.

Exit codes: 0 success; 2 bad input or a problem found (payment declined or
aborted, reversal refused, end-of-day failed, terminal not ready); 1 any other
failure (no connection, timeout, protocol error). A payment whose outcome is
unknown exits 1 and says so: run ``lobbypay terminal last`` before anything
else.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

# The name of the environment variable, not a password.
PASSWORD_ENV = "LOBBYPAY_ZVT_PASSWORD"  # noqa: S105

_DESCRIPTION = """\
Talk to a ZVT payment terminal (ECR interface rev. 13) or run a simulated one.

DEVICE is a serial device (/dev/ttyUSB0), a pyserial URL (socket://host:port,
serial framing over a device server) or tcp://host[:20007] for the ZVT TCP/IP
transport. The terminal password is read from $LOBBYPAY_ZVT_PASSWORD
(default 000000), never from the command line.

Exit codes: 0 ok; 2 bad input or a problem found (declined, aborted, refused,
terminal not ready); 1 other failures (connection, timeout). When a payment's
outcome is unknown, run `lobbypay terminal last` before anything else.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def _receipt_no(text: str) -> int:
    value = _positive_int(text)
    if value > 9999:
        raise argparse.ArgumentTypeError("receipt numbers have at most 4 digits")
    return value


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    try:
        number = int(port, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port {port!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("port must be 0..65535")
    return host, number


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", required=True, metavar="URL", help="terminal device or URL")
    p.add_argument(
        "--framing",
        choices=("serial", "tcp"),
        help="override the framing derived from the URL (tcp:// → tcp, else serial)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--lang", choices=("en", "ru"), default="en", help="language of messages")
    p.add_argument(
        "--encoding", default="cp437", help="character set of terminal texts (default cp437)"
    )
    p.add_argument(
        "--timeout",
        type=_positive_int,
        default=180,
        metavar="SECONDS",
        help="longest wait for the terminal between messages (default 180)",
    )


def add_terminal_parser(subparsers: Any) -> None:
    """Register ``lobbypay terminal`` and its actions."""
    parser = subparsers.add_parser(
        "terminal",
        help="ZVT payment terminal: status, pay, reverse, end-of-day, simulate",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=_no_action, _parser=parser)
    actions = parser.add_subparsers(dest="terminal_action", metavar="ACTION")

    p = actions.add_parser(
        "status",
        help="ask the terminal for its status (Status Enquiry 05 01)",
        description="Status Enquiry 05 01: terminal status code and software version.",
    )
    _add_device_args(p)
    p.set_defaults(func=_handle)

    p = actions.add_parser(
        "pay",
        help="take a card payment (Authorization 06 01)",
        description="Registration 06 00 then Authorization 06 01 for AMOUNT minor units.",
    )
    _add_device_args(p)
    p.add_argument(
        "--amount",
        type=_positive_int,
        required=True,
        metavar="MINOR_UNITS",
        help="amount in minor units (kopecks): 12345 is 123.45",
    )
    p.add_argument("--currency", default="RUB", help="ISO 4217 code (default RUB)")
    p.add_argument(
        "--no-register", action="store_true", help="skip Registration before the payment"
    )
    p.set_defaults(func=_handle)

    p = actions.add_parser(
        "reverse",
        help="reverse a payment by receipt number (Reversal 06 30)",
        description="Reversal 06 30 of the payment with receipt number N.",
    )
    _add_device_args(p)
    p.add_argument("--receipt", type=_receipt_no, required=True, metavar="N", help="receipt no")
    p.set_defaults(func=_handle)

    p = actions.add_parser(
        "end-of-day",
        help="settle the day and print the totals (End-of-Day 06 50)",
        description="End-of-Day 06 50: settle stored payments, report totals per scheme.",
    )
    _add_device_args(p)
    p.set_defaults(func=_handle)

    p = actions.add_parser(
        "last",
        help="show the terminal's last transaction (recovery: Repeat Receipt 06 20)",
        description=(
            "Status Enquiry then Repeat Receipt 06 20: what the terminal booked last. "
            "Use it when a payment's outcome is unknown."
        ),
    )
    _add_device_args(p)
    p.set_defaults(func=_handle)

    p = actions.add_parser(
        "simulate",
        help="run a simulated ZVT terminal until Ctrl-C",
        description=(
            "Run a simulated terminal. --tcp HOST:PORT listens there (port 0 picks one and "
            "prints it); --pty creates a pseudo-terminal and prints its path."
        ),
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="listen on TCP")
    where.add_argument("--pty", action="store_true", help="serve on a new pty")
    p.add_argument("--link", metavar="PATH", help="with --pty: also create this symlink to it")
    p.add_argument(
        "--framing",
        choices=("serial", "tcp"),
        help="framing (default: tcp for --tcp, serial for --pty)",
    )
    p.add_argument(
        "--outcome",
        default="approved",
        choices=(
            "approved",
            "declined",
            "approved-offline",
            "timeout",
            "busy",
            "customer-abort",
        ),
        help="what every payment does (default approved)",
    )
    p.add_argument(
        "--delay",
        type=float,
        default=0.3,
        metavar="SECONDS",
        help="pause between intermediate statuses (default 0.3)",
    )
    p.add_argument(
        "--card-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long the simulated customer takes to present the card (default 0)",
    )
    p.set_defaults(func=_simulate)


def _no_action(args: argparse.Namespace) -> int:
    args._parser.print_help()
    return 2


def _jsonable(value: Any) -> Any:
    import dataclasses
    import enum

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "-"
    whole, cents = divmod(amount, 100)
    return f"{whole}.{cents:02d} {currency or ''}".strip()


def _print(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    import json
    import sys

    if args.json:
        json.dump(payload, sys.stdout, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
    else:
        for line in lines:
            print(line)


def _password() -> int:
    raw = os.environ.get(PASSWORD_ENV, "0")
    if not raw.isdigit() or len(raw) > 6:
        raise ValueError(f"${PASSWORD_ENV} must be up to 6 digits")
    return int(raw)


def _handle(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from drivers.zvt.errors import ZvtError, ZvtUsageError

    try:
        password = _password()
    except ValueError as exc:
        print(f"lobbypay terminal: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run_action(args, password))
    except KeyboardInterrupt:
        if args.terminal_action in ("pay", "reverse"):
            print(
                "lobbypay terminal: interrupted: OUTCOME UNKNOWN; "
                "run `lobbypay terminal last` before retrying.",
                file=sys.stderr,
            )
        return 130
    except ZvtUsageError as exc:
        print(f"lobbypay terminal: {exc}", file=sys.stderr)
        return 2
    except ZvtError as exc:
        lang = args.lang
        print(f"lobbypay terminal: {exc.title[lang]}: {exc}", file=sys.stderr)
        if exc.outcome_unknown:
            print(
                "lobbypay terminal: OUTCOME UNKNOWN: the terminal may have booked it; "
                "run `lobbypay terminal last` before retrying.",
                file=sys.stderr,
            )
        else:
            print(f"lobbypay terminal: {exc.next_step[lang]}", file=sys.stderr)
        return 1


async def _run_action(args: argparse.Namespace, password: int) -> int:
    from drivers.zvt.client import ZvtTerminal
    from drivers.zvt.session import ZvtTimeouts

    timeout = float(args.timeout)
    timeouts = ZvtTimeouts(
        progress_timeout_s=timeout,
        completion_timeout_s=timeout,
        transaction_timeout_s=max(timeout * 2, 300.0),
    )
    currency = getattr(args, "currency", "RUB")
    terminal = ZvtTerminal(
        args.device,
        framing=args.framing,
        password=password,
        currency=currency,
        timeouts=timeouts,
        text_encoding=args.encoding,
    )
    lang = args.lang
    async with terminal:
        action = args.terminal_action
        if action == "status":
            status = await terminal.status()
            _print(
                args,
                {**_jsonable(status), "ready": status.ready, "message": status.message(lang)},
                [
                    f"terminal status: {status.terminal_status:02X} {status.message(lang)}",
                    f"software: {status.sw_version or '-'}",
                ],
            )
            return 0 if status.ready else 2
        if action == "pay":
            if not args.no_register:
                await terminal.register()
            _abort_on_first_ctrl_c(terminal)

            def show(status: Any) -> None:
                if not args.json:
                    print(f"  … {status.message(lang)}", flush=True)

            outcome = await terminal.pay(args.amount, currency=currency, on_status=show)
            _print_outcome(args, outcome)
            return 0 if outcome.approved else 2
        if action == "reverse":
            outcome = await terminal.reverse(args.receipt)
            _print_outcome(args, outcome)
            return 0 if outcome.approved else 2
        if action == "end-of-day":
            result = await terminal.end_of_day()
            lines = [
                f"end of day: {'ok' if result.ok else 'FAILED'} ({result.message(lang)})",
                f"total: {_money(result.total_minor, result.currency)}",
            ]
            if result.totals is not None:
                lines.append(
                    f"receipts {result.totals.receipt_no_start}..{result.totals.receipt_no_end}"
                )
                lines += [
                    f"  {s.scheme:<9} {s.count:>4}  {_money(s.total_minor, result.currency)}"
                    for s in result.totals.schemes
                    if s.count
                ]
            _print(args, {**_jsonable(result), "ok": result.ok}, lines + list(result.receipt_lines))
            return 0 if result.ok else 2
        if action == "last":
            last = await terminal.last_transaction()
            if last is None:
                _print(args, {"transaction": None}, ["the terminal reports no transaction"])
                return 0
            _print(
                args,
                {"transaction": {**_jsonable(last), "approved": last.approved}},
                [
                    f"last transaction: {'APPROVED' if last.approved else 'NOT APPROVED'} "
                    f"(result {last.result_code:02X})",
                    f"amount: {_money(last.amount_minor, last.currency)}",
                    f"receipt: {last.receipt_no}  trace: {last.trace_no}",
                    f"card: {last.masked_pan or '-'} {last.card_name or ''}".rstrip(),
                ],
            )
            return 0
    raise AssertionError(f"unhandled action {args.terminal_action}")


def _abort_on_first_ctrl_c(terminal: Any) -> None:
    """First Ctrl-C asks the terminal to abort (06 B0); a second one interrupts."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[Any]] = set()

    def on_sigint() -> None:
        loop.remove_signal_handler(signal.SIGINT)
        print("  … abort requested (Ctrl-C again to interrupt)", flush=True)
        task = loop.create_task(terminal.abort())
        pending.add(task)
        task.add_done_callback(pending.discard)

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):
        return


def _print_outcome(args: argparse.Namespace, outcome: Any) -> None:
    lang = args.lang
    lines = [
        f"{outcome.operation.value}: {outcome.status.value.upper()} "
        f"(result {outcome.result_code:02X}: {outcome.message(lang)})",
        f"amount: {_money(outcome.amount_minor, outcome.currency)}"
        + ("  [approved offline]" if outcome.approved_offline else ""),
        f"receipt: {outcome.receipt_no}  trace: {outcome.trace_no}  auth: {outcome.auth_code}",
        f"card: {outcome.masked_pan or '-'} {outcome.card_name or ''}".rstrip(),
    ]
    payload = {**_jsonable(outcome), "approved": outcome.approved, "message": outcome.message(lang)}
    _print(args, payload, lines + list(outcome.receipt_lines))


def _simulate(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_simulate_async(args))


async def _simulate_async(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import signal

    from drivers.zvt.simulator import Outcome, TerminalSimulator

    sim = TerminalSimulator(
        default_outcome=Outcome(args.outcome),
        step_delay_s=max(args.delay, 0.0),
        card_wait_s=max(args.card_wait, 0.0),
        silence_s=10.0,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if args.tcp is not None:
        host, port = args.tcp
        tcp = await sim.serve_tcp(host, port, framing=args.framing or "tcp")
        print(f"ZVT simulator listening: {tcp.url}", flush=True)
        try:
            await stop.wait()
        finally:
            await tcp.close()
    else:
        pty = await sim.serve_pty(link_path=args.link, framing=args.framing or "serial")
        print(f"ZVT simulator pty: {pty.path}", flush=True)
        try:
            await stop.wait()
        finally:
            await pty.close()
    return 0
