"""`lobbypay demo`: the system on one machine with simulated devices.

What it shows today, step by step, each against real parts of lobbypay:

1. a terminal identity (Ed25519 key, mode 0600) and its terminal id;
2. the durable journal (SQLite, WAL, fsync'd group commit);
3. a resident's card payment at the kiosk: the payment intent is journaled
   first, then the ZVT terminal simulator (over a pty, through the real serial
   stack) is asked, the result is journaled, and the receipt is printed on the
   ESC/POS printer simulator (over a pty) and rendered as text;
4. a burst of ATM gateway payments from many concurrent appenders sharing
   fsyncs (group commit);
5. an offline limit refusing a payment with a clear reason;
6. the journal's chain verified and its statistics.

Later issues grow this into the full demo (central ledger, sync agent,
gateway, kiosk UI). Every step's figures are collected into one summary, printed
as text or, with ``--headless``, as one JSON line for scripts.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from central_sync.journal import (
    Journal,
    OfflineLimitError,
    OfflineLimits,
    PaymentIntent,
    PaymentResult,
)
from drivers.escpos import (
    CardDetails,
    EscPosPrinter,
    PtyPrinterServer,
    Receipt,
    ReceiptItem,
    SimulatedPrinter,
    render_receipt_text,
)
from drivers.zvt.backend import ZvtOptions, open_terminal
from firmware_config.identity import generate_identity

DEMO_ACCOUNT = "1000000017"
DEMO_SERVICES = (
    ("Холодное водоснабжение", "Cold water", 45_678),
    ("Отопление", "Heating", 77_778),
)
BURST_PAYMENTS = 2_000
BURST_APPENDERS = 128


@dataclass(slots=True)
class Summary:
    """What the demo did, for the closing text or the JSON line."""

    data_dir: str = ""
    terminal_id: str = ""
    fingerprint: str = ""
    card_payment: dict[str, Any] = field(default_factory=dict)
    receipt_text: str = ""
    burst: dict[str, Any] = field(default_factory=dict)
    offline_refusal: dict[str, Any] = field(default_factory=dict)
    journal: dict[str, Any] = field(default_factory=dict)


Say = Callable[[str], None]
Lang = Literal["ru", "en"]


def _money(minor: int) -> str:
    return f"{minor // 100},{minor % 100:02d}"


async def _card_payment(
    journal: Journal, summary: Summary, say: Say, lang: Lang, terminal_id: str
) -> None:
    total = sum(amount for _, _, amount in DEMO_SERVICES)
    payment_id = f"kiosk-{uuid.uuid4().hex[:20]}"
    # Write-ahead: the intent is durable before the terminal is asked.
    await journal.record_payment_intent(
        PaymentIntent(
            payment_id=payment_id,
            amount_minor=total,
            currency="RUB",
            account=DEMO_ACCOUNT,
            channel="kiosk",
            extra={
                "services": [
                    {"code": en.upper().replace(" ", "-"), "amount_minor": amount}
                    for _, en, amount in DEMO_SERVICES
                ]
            },
        )
    )
    say(f"  intent {payment_id} journaled: {_money(total)} RUB for account {DEMO_ACCOUNT}")
    options = ZvtOptions(simulator_delay_s=0.05)
    async with await open_terminal("zvt-simulator", options) as handle:
        outcome = await handle.terminal.pay(
            total, on_status=lambda status: say(f"  terminal: {status.message(lang)}")
        )
    result = PaymentResult(
        payment_id=payment_id,
        outcome="approved" if outcome.approved else "declined",
        extra={
            key: value
            for key, value in {
                "masked_pan": outcome.masked_pan,
                "auth_code": outcome.auth_code,
                "receipt_no": outcome.receipt_no,
                "trace": outcome.trace_no,
                "card_brand": outcome.card_name,
                "offline": outcome.approved_offline,
            }.items()
            if value is not None
        },
    )
    await journal.record_payment_result(result)
    say(f"  {outcome.message(lang)}; result journaled")
    summary.card_payment = {
        "payment_id": payment_id,
        "amount_minor": total,
        "approved": outcome.approved,
        "masked_pan": outcome.masked_pan,
        "receipt_no": outcome.receipt_no,
    }
    if not outcome.approved:
        return
    receipt = Receipt(
        header=("ООО «Расчётный центр»", "lobbypay demo"),
        items=tuple(
            ReceiptItem(
                service=ru if lang == "ru" else en, amount_minor=amount, account=DEMO_ACCOUNT
            )
            for ru, en, amount in DEMO_SERVICES
        ),
        total_minor=total,
        paid_at=datetime.now().replace(microsecond=0),
        terminal_id=terminal_id,
        card=CardDetails(
            masked_pan=outcome.masked_pan or "****",
            auth_code=outcome.auth_code or "-",
            rrn=str(outcome.trace_no or "-"),
            brand=outcome.card_name,
        ),
        qr_payload=f"lobbypay:{payment_id}",
    )
    printer = SimulatedPrinter(width_chars=42)
    server = PtyPrinterServer(printer)
    path = await server.start()
    try:
        async with await EscPosPrinter.open(path) as device:
            report = await device.print_receipt(receipt, lang=lang)
    finally:
        await server.stop()
    say(f"  receipt printed: {report.lines_total} lines on the ESC/POS simulator")
    summary.receipt_text = render_receipt_text(receipt, width_chars=42, lang=lang, qr="label")


async def _burst(journal: Journal, summary: Summary, say: Say) -> None:
    per_appender = BURST_PAYMENTS // BURST_APPENDERS

    async def appender(worker: int) -> None:
        for i in range(per_appender):
            await journal.record_payment_intent(
                PaymentIntent(
                    payment_id=f"gw-demo-{worker:03d}-{i:05d}",
                    amount_minor=10_000 + i,
                    currency="RUB",
                    account=DEMO_ACCOUNT,
                    channel="gateway",
                    extra={"agent": "demo-bank", "txn_id": f"{worker}{i:05d}"},
                )
            )

    start = time.perf_counter()
    await asyncio.gather(*(appender(w) for w in range(BURST_APPENDERS)))
    elapsed = time.perf_counter() - start
    count = per_appender * BURST_APPENDERS
    summary.burst = {
        "payments": count,
        "appenders": BURST_APPENDERS,
        "seconds": round(elapsed, 3),
        "per_s": round(count / elapsed),
    }
    say(
        f"  {count} durable payments from {BURST_APPENDERS} concurrent appenders in "
        f"{elapsed:.2f} s ({count / elapsed:.0f}/s, fsyncs shared by group commit)"
    )


async def _offline_limit(journal: Journal, summary: Summary, say: Say) -> None:
    assert journal.limits is not None
    too_much = journal.limits.payment_amount_max_minor + 1
    try:
        await journal.record_payment_intent(
            PaymentIntent(
                payment_id=f"kiosk-{uuid.uuid4().hex[:20]}",
                amount_minor=too_much,
                currency="RUB",
                account=DEMO_ACCOUNT,
                channel="kiosk",
            )
        )
    except OfflineLimitError as exc:
        summary.offline_refusal = {"limit": exc.limit, "message": str(exc)}
        say(f"  refused ({exc.limit}): {exc}")
    else:
        raise AssertionError("the per-payment offline limit did not refuse")


async def run_demo(data_dir: Path, *, lang: Lang, say: Say) -> Summary:
    """Run every step in ``data_dir`` and return what happened."""
    summary = Summary(data_dir=str(data_dir))
    say("1. terminal identity")
    identity = generate_identity(data_dir / "identity" / "ed25519.key")
    summary.terminal_id, summary.fingerprint = identity.terminal_id, identity.fingerprint
    say(f"  terminal {identity.terminal_id}, key fingerprint {identity.fingerprint}")
    say("2. durable journal")
    limits = OfflineLimits(payment_amount_max_minor=1_500_000)
    async with await Journal.open(data_dir / "journal.db", limits=limits) as journal:
        say(f"  {journal.path} (SQLite WAL, synchronous=FULL, group commit)")
        say("3. a resident pays by card at the kiosk")
        await _card_payment(journal, summary, say, lang, identity.terminal_id)
        say("4. a burst of ATM gateway payments")
        await _burst(journal, summary, say)
        say("5. an offline limit")
        await _offline_limit(journal, summary, say)
        say("6. the journal")
        report = await journal.verify()
        stats = await journal.stats()
        summary.journal = {
            "verified": report.ok,
            "entries": report.entries_checked,
            "stored_payments": stats.stored_payments,
            "pending_amount_minor_by_currency": dict(stats.pending_amount_minor_by_currency),
            "outcome_unknown": stats.outcome_unknown,
        }
        say(
            f"  chain {'verified' if report.ok else 'BROKEN'}: {report.entries_checked} entries; "
            f"{stats.stored_payments} payments waiting for central"
        )
    return summary


def _print_summary(summary: Summary, work: Path, keep: bool) -> None:
    print()
    print(summary.receipt_text)
    print()
    print("lobbypay demo finished." + (f" Files kept in {work}." if keep else ""))


def main(*, headless: bool, data_dir: Path | None, lang: Lang) -> int:
    """Run the demo; print progress and the receipt, or one JSON line when headless."""
    keep = data_dir is not None
    work = data_dir or Path(tempfile.mkdtemp(prefix="lobbypay-demo-"))
    work.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        if not headless:
            print(line, flush=True)

    try:
        summary = asyncio.run(run_demo(work, lang=lang, say=say))
        if not headless:
            _print_summary(summary, work, keep)
        if not headless and sys.stdin.isatty() and sys.stdout.isatty():
            # On a terminal, the resident kiosk follows (scripts and pipes keep the text).
            from kiosk.demo_ui import run_demo_kiosk

            print()
            run_demo_kiosk(work / "kiosk", lang=lang, say=print)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    if headless:
        print(
            json.dumps(
                {
                    "terminal_id": summary.terminal_id,
                    "data_dir": summary.data_dir if keep else None,
                    "card_payment": summary.card_payment,
                    "burst": summary.burst,
                    "offline_refusal": summary.offline_refusal,
                    "journal": summary.journal,
                },
                ensure_ascii=False,
            )
        )
    ok = summary.journal.get("verified") and summary.card_payment.get("approved")
    return 0 if ok else 1
