"""Kill the kiosk process (SIGKILL) at each step of a card payment, restart it, check invariants.

The payment terminal and the printer are simulators served on TCP by this test
process, so they outlive the kiosk like real devices do: the terminal keeps its
transaction log, the printer what it printed. Each kiosk run first recovers
what the previous (killed) run left, reports it, and then makes the next
payment, dying at the next step; the last run pays to the end. Throughout:

* start-up recovery leaves no outcome-unknown payment and payments are not
  paused afterwards (every intent gets a result);
* every approval the terminal booked is recorded as approved in the journal
  with the terminal's receipt number — never lost;
* nothing is charged twice: the terminal's approved, unreversed bookings and
  the journal's approved, unreversed payments are the same set, amount for amount;
* the journal's hash chain verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from central_sync.journal import Journal
from drivers.escpos.document import TextLine
from drivers.escpos.simulator import SimulatedPrinter, TcpPrinterServer
from drivers.zvt.simulator import TerminalSimulator
from tests.kiosk.support import make_settings

REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 90.0

# Where the kiosk dies. A probe step kills it from inside at that step;
# "booked" is killed from here the moment the terminal has booked the payment,
# before the terminal's answer reaches the kiosk. Two chains run side by side.
CHAINS = (
    ("intent-written", "terminal-asked", "terminal-status", "booked"),
    ("terminal-answered", "result-recorded", "receipt-printed"),
)
# Steps after which the killed payment had been booked and approved by the terminal.
BOOKED_STEPS = frozenset({"booked", "terminal-answered", "result-recorded", "receipt-printed"})


def _payments(sim: TerminalSimulator) -> int:
    return sum(1 for r in sim.log if r.kind == "payment")


async def _run_child(
    root: Path, terminal_url: str, printer_url: str, crash_at: str | None, sim: TerminalSimulator
) -> tuple[int, list[str]]:
    args = [str(root), terminal_url, printer_url]
    if crash_at is not None and crash_at != "booked":
        args.append(crash_at)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.kiosk.crash_child",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.append(raw.decode().rstrip("\n"))

    booked_before = _payments(sim)
    killed = asyncio.Event()

    async def kill_when_booked() -> None:
        # The simulator runs in this process: poll its log (bounded by the child's timeout).
        while _payments(sim) == booked_before:  # noqa: ASYNC110 - the log has no event to wait on
            await asyncio.sleep(0.002)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        killed.set()

    killer = asyncio.create_task(kill_when_booked()) if crash_at == "booked" else None
    try:
        await asyncio.wait_for(asyncio.gather(read(), proc.wait()), CHILD_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"kiosk child hung; output: {lines}") from None
    finally:
        if killer is not None:
            killer.cancel()
    assert proc.returncode is not None
    return proc.returncode, lines


async def _journal(path: Path) -> tuple[list[Any], bool]:
    journal = await Journal.open(path)
    try:
        entries = await journal.read(1, 10_000)
        return entries, (await journal.verify()).ok
    finally:
        await journal.close()


def _check_invariants(entries: list[Any], sim: TerminalSimulator) -> dict[str, int]:
    intents = {e.body["payment_id"]: e.body for e in entries if e.kind == "payment-intent"}
    results = {e.body["payment_id"]: e.body for e in entries if e.kind == "payment-result"}
    reversals = {e.body["payment_id"] for e in entries if e.kind == "reversal"}
    assert set(results) == set(intents), "an intent without a result survived recovery"
    bookings = {
        r.receipt_no: r for r in sim.log if r.kind == "payment" and r.approved and not r.reversed
    }
    standing = {
        pid: body
        for pid, body in results.items()
        if body["outcome"] == "approved" and pid not in reversals
    }
    recorded = [body["receipt_no"] for body in standing.values()]
    assert sorted(recorded) == sorted(bookings), (recorded, sorted(bookings))  # none lost
    assert len(set(recorded)) == len(recorded)  # none recorded twice
    for pid, body in standing.items():
        assert bookings[body["receipt_no"]].amount_minor == intents[pid]["amount_minor"]
    return {"intents": len(intents), "standing": len(standing)}


async def _chain(root: Path, steps: tuple[str, ...]) -> None:
    settings = make_settings(root)  # the catalog and the card key, written once
    sim = TerminalSimulator(step_delay_s=0.05)
    terminal = await sim.serve_tcp(framing="tcp")
    printed = SimulatedPrinter(width_chars=42)
    printer = TcpPrinterServer(printed)
    await printer.start()
    expected_standing = 0
    try:
        for step in (*steps, None):
            # A slower terminal leaves a window between booking and answering.
            sim.config.step_delay_s = 0.3 if step == "booked" else 0.05
            code, lines = await _run_child(root, terminal.url, printer.url, step, sim)
            status = json.loads(next(x for x in lines if x.startswith("STATUS "))[7:])
            assert status["unresolved"] == 0, (step, status)
            assert not status["paused"], (step, status)
            if step is None:
                assert code == 0, lines
                assert "DONE" in lines
            else:
                assert code == -signal.SIGKILL, (step, code, lines)
                assert "DONE" not in lines
            expected_standing += 1 if step is None or step in BOOKED_STEPS else 0
    finally:
        await printer.stop()
        await terminal.close()
    entries, chain_ok = await _journal(settings.journal_path)
    assert chain_ok
    counts = _check_invariants(entries, sim)
    assert counts["intents"] == len(steps) + 1
    assert counts["standing"] == expected_standing
    recovered = [
        e.body["outcome"]
        for e in entries
        if e.kind == "payment-result" and e.body.get("resolved_by") == "recovery"
    ]
    # Killed after booking but before recording: recovery records the approval.
    assert recovered.count("approved") == len(
        BOOKED_STEPS & {"booked", "terminal-answered"} & set(steps)
    )
    # Killed before the terminal booked: recovery records "not booked".
    assert recovered.count("failed") == len(
        {"intent-written", "terminal-asked", "terminal-status"} & set(steps)
    )
    # The last run printed its receipt.
    assert any(isinstance(e, TextLine) and e.text.startswith("ИТОГО") for e in printed.printed)


async def test_kill_at_each_step_loses_nothing_and_charges_once(tmp_path: Path) -> None:
    results = await asyncio.gather(
        *(_chain(tmp_path / f"chain{i}", steps) for i, steps in enumerate(CHAINS)),
        return_exceptions=True,
    )
    failures = {
        CHAINS[i]: repr(result)
        for i, result in enumerate(results)
        if isinstance(result, BaseException)
    }
    assert not failures, failures
