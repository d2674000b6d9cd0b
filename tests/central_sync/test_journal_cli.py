"""`lobbypay journal verify|stats|unknown` through the dispatcher."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from central_sync.journal import Journal, PaymentIntent
from firmware_config.dispatch import main


async def _make(path: Path) -> None:
    async with await Journal.open(path) as j:
        for n in (1, 2):
            await j.record_payment_intent(
                PaymentIntent(
                    payment_id=f"pay-{n:08d}",
                    amount_minor=12_345,
                    currency="RUB",
                    account="1000000017",
                    channel="kiosk",
                )
            )
        await j.append("device-event", {"event": "boot"})


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    asyncio.run(_make(path))
    return path


def test_journal_verify_intact_exits_zero(
    journal_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "verify", "--path", str(journal_path)]) == 0
    assert "3 entries verified" in capsys.readouterr().out


def test_journal_verify_broken_chain_exits_two_with_first_bad_seq(
    journal_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(journal_path) as conn:
        conn.execute("UPDATE entries SET ts_ms = ts_ms + 1 WHERE seq = 2")
    assert main(["journal", "verify", "--path", str(journal_path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["first_bad_seq"]) == (False, 2)


def test_journal_stats_json_reports_amounts_and_unknown(
    journal_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "stats", "--path", str(journal_path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["head_seq"] == 3
    assert stats["pending_amount_minor_by_currency"] == {"RUB": 24_690}
    assert stats["outcome_unknown"] == 2
    assert stats["entries_by_kind"] == {"device-event": 1, "payment-intent": 2}


def test_journal_unknown_lists_payments_without_results(
    journal_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "unknown", "--path", str(journal_path)]) == 0
    out = capsys.readouterr().out
    assert "pay-00000001 123.45 RUB" in out


def test_journal_path_comes_from_configuration(
    journal_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "etc"
    config.mkdir()
    (config / "local.toml").write_text(f'[journal]\npath = "{journal_path}"\n')
    assert main(["journal", "stats", "--config-dir", str(config)]) == 0
    assert "head_seq" in capsys.readouterr().out


def test_journal_missing_file_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "verify", "--path", str(tmp_path / "nope.db")]) == 2
    assert "no journal" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()


def test_journal_garbage_file_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(b"\x00garbage" * 512)
    assert main(["journal", "stats", "--path", str(path)]) == 2
    err = capsys.readouterr().err
    assert "journal" in err
    assert "damaged" in err or "cannot open" in err
