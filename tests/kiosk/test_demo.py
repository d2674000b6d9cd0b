"""`lobbypay demo` runs every step against the simulators and reports honestly."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_config.dispatch import main


def test_demo_headless_prints_one_json_line_with_every_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--headless", "--data-dir", str(tmp_path), "--lang", "en"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["card_payment"]["approved"] is True
    masked = summary["card_payment"]["masked_pan"]
    assert "*" in masked
    assert sum(c.isdigit() for c in masked) <= 10
    assert summary["burst"]["payments"] > 1000
    assert summary["offline_refusal"]["limit"] == "payment_amount"
    journal = summary["journal"]
    assert journal["verified"] is True
    # card intent + result, the burst; the refused payment left nothing behind
    assert journal["entries"] == 2 + summary["burst"]["payments"]
    key = tmp_path / "identity" / "ed25519.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_demo_text_mode_shows_steps_and_receipt() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "firmware_config.dispatch", "demo", "--lang", "ru"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1. terminal identity" in result.stdout
    assert "ИТОГО" in result.stdout
    assert "lobbypay demo finished" in result.stdout
