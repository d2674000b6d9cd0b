"""``lobbypay qr``: decode, encode and simulate bill QR codes (GOST R 56042-2014).

Only argparse and the standard library are imported here; each handler
imports what it needs when it runs, so ``lobbypay --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

__all__ = ["add_qr_parser"]

_ENCODINGS = ("utf-8", "windows-1251", "koi8-r")


def add_qr_parser(subparsers: Any) -> None:
    """Register ``lobbypay qr`` and its subcommands."""
    parser = subparsers.add_parser(
        "qr",
        help="decode, encode and simulate bill payment QR codes (GOST R 56042-2014)",
        description=(
            "Bill payment QR codes (GOST R 56042-2014: ST00011 windows-1251, ST00012 "
            "UTF-8, ST00013 KOI8-R). Decode what a scanner read, encode a test bill, "
            "or run a scanner simulator on a pseudo-terminal."
        ),
    )
    sub = parser.add_subparsers(dest="qr_command", metavar="SUBCOMMAND")

    def _usage(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(func=_usage)

    decode = sub.add_parser(
        "decode",
        help="decode a scanned payload (stdin or --text) and print its fields as JSON",
        description=(
            "Read the raw bytes a scanner produced from standard input (or take --text) "
            "and print the bill's fields as JSON. Exit 0 for a valid payment, 2 with "
            "the reason for an invalid one."
        ),
    )
    decode.add_argument("--text", metavar="STRING", help="the payload as text instead of stdin")
    decode.add_argument(
        "--payload-bytes-max",
        type=int,
        default=2048,
        metavar="N",
        help="largest payload accepted, in bytes (default 2048)",
    )
    decode.add_argument(
        "--no-check-digits",
        action="store_true",
        help="skip account control key and INN check digit checks (diagnostics only)",
    )
    decode.set_defaults(func=_decode)

    encode = sub.add_parser(
        "encode",
        help="encode fields as a payload (for printing a test bill)",
        description=(
            "Encode --field KEY=VALUE pairs (in the order given) as a GOST R 56042 "
            "payload and write its bytes to stdout or --output. The result is decoded "
            "again and refused (exit 2) unless it is a valid payment, so a technician "
            "never prints a test bill the kiosk would reject."
        ),
    )
    encode.add_argument(
        "--field",
        action="append",
        required=True,
        metavar="KEY=VALUE",
        help="one requisite, e.g. --field Name=HOA --field Sum=12345 (repeatable)",
    )
    encode.add_argument("--encoding", choices=_ENCODINGS, default="utf-8", help="default utf-8")
    encode.add_argument("--separator", metavar="CHAR", help="field separator (default '|')")
    encode.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    encode.add_argument(
        "--no-validate", action="store_true", help="write the payload even if it is invalid"
    )
    encode.set_defaults(func=_encode)

    simulate = sub.add_parser(
        "simulate-scanner",
        help="run a serial scanner simulator on a pty",
        description=(
            "Create a pseudo-terminal that behaves like a serial scanner, print its "
            "path, then 'scan' each --payload (or --sample, or each line of stdin) "
            "followed by CRLF. Point the kiosk's scanner url at the printed path."
        ),
    )
    simulate.add_argument(
        "--pty", action="store_true", required=True, help="use a pty (the only transport)"
    )
    simulate.add_argument("--payload", action="append", default=[], metavar="TEXT")
    simulate.add_argument("--sample", action="store_true", help="scan the built-in sample bill")
    simulate.add_argument(
        "--encoding", choices=_ENCODINGS, default="utf-8", help="encoding of --sample"
    )
    simulate.add_argument(
        "--wait-s",
        type=float,
        default=3.0,
        help="pause before the first scan, to open the port (default 3): a port "
        "discards what arrived before it was opened",
    )
    simulate.add_argument(
        "--interval-s", type=float, default=1.0, help="pause between scans (default 1)"
    )
    simulate.add_argument(
        "--hold-s",
        type=float,
        default=5.0,
        help="keep the pty open this long after the last scan (default 5, max 3600)",
    )
    simulate.set_defaults(func=_simulate)


def _fail(command: str, exc: Any) -> int:
    field = f" (field {exc.field})" if getattr(exc, "field", None) else ""
    print(
        f"lobbypay qr {command}: invalid payload: {exc.reason}{field}\n"
        f"  en: {exc.message_en}\n  ru: {exc.message_ru}",
        file=sys.stderr,
    )
    return 2


def _write_text(text: str) -> None:
    # UTF-8 whatever the locale: a C locale must not turn Cyrillic into a crash.
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()


def _decode(args: argparse.Namespace) -> int:
    from drivers.scanner.errors import QrError
    from drivers.scanner.gost_qr import QrPolicy, decode_payment_qr, decode_payment_qr_text

    try:
        policy = QrPolicy(
            payload_bytes_max=args.payload_bytes_max,
            verify_check_digits=not args.no_check_digits,
        )
    except ValueError as exc:
        print(f"lobbypay qr decode: {exc}", file=sys.stderr)
        return 2
    try:
        if args.text is not None:
            payment = decode_payment_qr_text(args.text, policy)
        else:
            raw = sys.stdin.buffer.read(policy.payload_bytes_max + 1)
            payment = decode_payment_qr(raw, policy)
    except QrError as exc:
        return _fail("decode", exc)
    _write_text(json.dumps(payment.to_json_dict(), ensure_ascii=False, indent=2) + "\n")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from drivers.scanner.errors import QrError
    from drivers.scanner.gost_qr import QrEncoding, decode_payment_qr, encode_fields

    pairs: list[tuple[str, str]] = []
    for item in args.field:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            print(f"lobbypay qr encode: --field needs KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        pairs.append((key.strip(), value.strip()))
    try:
        data = encode_fields(
            pairs, encoding=QrEncoding.from_label(args.encoding), separator=args.separator
        )
        if not args.no_validate:
            decode_payment_qr(data)
    except QrError as exc:
        return _fail("encode", exc)
    if args.output:
        try:
            with open(args.output, "wb") as out:
                out.write(data)
        except OSError as exc:
            print(f"lobbypay qr encode: cannot write {args.output}: {exc}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.buffer.write(data + (b"\n" if sys.stdout.isatty() else b""))
    sys.stdout.buffer.flush()
    return 0


def _payload_bytes(text: str) -> bytes:
    from drivers.scanner.gost_qr import QrEncoding, is_payment_qr

    if is_payment_qr(text) and len(text) > 6 and text[6] in "123":
        return text.encode(QrEncoding(int(text[6])).codec, errors="replace")
    return text.encode("utf-8")


def _simulate(args: argparse.Namespace) -> int:
    from drivers.scanner.gost_qr import QrEncoding, encode_payment_qr
    from drivers.scanner.samples import sample_bill
    from drivers.scanner.simulator import ScannerSimulator

    if not all(0 <= value <= 3600 for value in (args.hold_s, args.interval_s, args.wait_s)):
        print("lobbypay qr simulate-scanner: times must be in 0..3600 s", file=sys.stderr)
        return 2
    payloads = [_payload_bytes(text) for text in args.payload]
    if args.sample:
        payloads.append(encode_payment_qr(sample_bill(QrEncoding.from_label(args.encoding))))
    with ScannerSimulator() as sim:
        print(f"scanner pty: {sim.port_path}", flush=True)
        try:
            if payloads:
                time.sleep(args.wait_s)
                for index, payload in enumerate(payloads):
                    if index:
                        time.sleep(args.interval_s)
                    sim.scan(payload)
                    print(f"scanned {len(payload)} bytes", flush=True)
            else:
                for line in sys.stdin:
                    payload = _payload_bytes(line.rstrip("\r\n"))
                    sim.scan(payload)
                    print(f"scanned {len(payload)} bytes", flush=True)
            time.sleep(args.hold_s)
        except TimeoutError as exc:
            print(f"lobbypay qr simulate-scanner: {exc}", file=sys.stderr)
            return 1
    return 0
