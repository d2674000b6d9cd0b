"""SIGKILL a journal writer at random moments during concurrent appends.

After every kill: each append that had returned is on disk with the same seq
and hash, the chain verifies, no payment_id is stored twice, and payments whose
append was in flight are retried with the same payment_id and stored once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from central_sync.journal import Journal

CHILD = Path(__file__).with_name("journal_crash_child.py")
APPENDERS = 16


def _kills() -> int:
    return int(os.environ.get("LOBBYPAY_CRASH_KILLS", "200"))


def _run_child(path: Path, run: int, retry: list[str], rng: random.Random) -> list[str]:
    """Run a writer and SIGKILL it at a random moment; return what it printed.

    One run in ten is killed during start-up (opening, migrating, recovering
    the WAL); the others a random time after the writer said READY, while
    appends are in flight. Waiting for READY keeps a slow machine's interpreter
    start-up from eating the window.
    """
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(run), str(APPENDERS), *retry],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    if rng.random() < 0.1:
        time.sleep(rng.uniform(0.0, 0.3))
    else:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if not line:
                break
            lines.append(line.strip())
            if line.strip() == "READY":
                break
        time.sleep(rng.uniform(0.0, 0.1))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the writer ended before it was killed"
    return lines + out.decode().splitlines()


async def _check(
    path: Path, confirmed: dict[str, tuple[int, str]], new: dict[str, tuple[int, str]], full: bool
) -> None:
    """Check this run's returned appends; every few runs check everything."""
    journal = await Journal.open(path)  # also verifies the chain's tail
    try:
        head_seq, _ = await journal.head()
        to_check = confirmed if full else new
        first = min((seq for seq, _ in to_check.values()), default=head_seq + 1)
        entries = await journal.read(first, head_seq - first + 1) if first <= head_seq else []
        if full:
            report = await journal.verify()
            assert report.ok, report
            assert report.entries_checked == head_seq
    finally:
        await journal.close()
    assert [e.seq for e in entries] == list(range(first, head_seq + 1))
    by_id = {}
    for entry in entries:
        pid = entry.body["payment_id"]
        assert pid not in by_id, f"payment {pid} stored twice"
        by_id[pid] = entry
    for pid, (seq, digest) in to_check.items():
        assert pid in by_id, f"returned append of {pid} was lost"
        assert (by_id[pid].seq, by_id[pid].hash.hex()) == (seq, digest)


def test_sigkill_during_concurrent_appends_loses_nothing_returned(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("LOBBYPAY_CRASH_SEED", "20261122")))
    path = tmp_path / "journal.db"
    confirmed: dict[str, tuple[int, str]] = {}
    in_doubt: list[str] = []
    kills = _kills()
    for run in range(kills):
        lines = _run_child(path, run, in_doubt[-64:], rng)
        attempted, new = [], {}
        for line in lines:
            parts = line.split()
            if parts[0] == "A":
                attempted.append(parts[1])
            elif parts[0] == "OK":
                pid, seq, digest = parts[1], int(parts[2]), parts[3]
                # A retry of a stored payment returns the stored entry, never a new one.
                assert confirmed.setdefault(pid, (seq, digest)) == (seq, digest)
                new[pid] = (seq, digest)
        full = run % 50 == 0 or run == kills - 1
        asyncio.run(_check(path, confirmed, new, full))
        in_doubt = [pid for pid in dict.fromkeys(in_doubt + attempted) if pid not in confirmed]
    assert len(confirmed) > kills, "too few appends returned to say anything"


@pytest.mark.slow
def test_sigkill_soak_with_many_more_kills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOBBYPAY_CRASH_KILLS", "2000")
    test_sigkill_during_concurrent_appends_loses_nothing_returned(tmp_path)
