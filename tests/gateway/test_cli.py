"""`lobbypay gateway serve | registry | agent-add`, run for real."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from central_sync.journal import Journal, PaymentIntent, PaymentResult
from firmware_config.dispatch import main
from gateway.agents import load_agents
from gateway.osmp import OsmpResult, parse_response
from tests.gateway.support import ACCOUNT, Release, agents_toml, basic, install_catalog

REPO = Path(__file__).resolve().parents[2]


def _config_dir(tmp_path: Path, data_dir: Path, extra: str = "") -> Path:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "local.toml").write_text(
        f'[terminal]\nrole = "gateway"\ndata_dir = "{data_dir}"\n{extra}'
    )
    return config


def test_agent_add_writes_a_0600_file_and_prints_the_credentials_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_dir(tmp_path, tmp_path / "data")
    args = ["gateway", "agent-add", "atm_bank", "--config-dir", str(config), "--json"]
    assert main([*args, "--ip", "10.1.0.0/16", "--name", "ATM host"]) == 0
    creds = json.loads(capsys.readouterr().out)
    path = config / "agents.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert creds["basic_password"] not in text  # only its scrypt hash is stored
    assert creds["hmac_secret_hex"] in text  # HMAC keys must be usable
    registry = load_agents(path)
    agent = registry.agents["atm_bank"]
    assert agent.ip_allowed("10.1.2.3")
    assert registry.hmac_keys[creds["hmac_key_id"]].agent_id == "atm_bank"
    from gateway.agents import verify_password

    assert agent.password_hash is not None
    assert verify_password(creds["basic_password"], agent.password_hash)
    # A second agent is appended; the first one stays.
    assert main(["gateway", "agent-add", "other", "--config-dir", str(config), "--ip",
                 "0.0.0.0/0", "--protocol", "osmp"]) == 0  # fmt: skip
    assert set(load_agents(path).agents) == {"atm_bank", "other"}


@pytest.mark.parametrize(
    "argv",
    [
        ["gateway", "agent-add", "Bad-Id", "--ip", "10.0.0.0/8"],
        ["gateway", "agent-add", "ok_id", "--ip", "10.0.0.300/8"],
        ["gateway", "agent-add", "ok_id", "--ip", "10.0.0.1/8"],
    ],
    ids=["bad-id", "bad-ip", "host-bits-set"],
)
def test_agent_add_refuses_bad_input_with_exit_2(tmp_path: Path, argv: list[str]) -> None:
    config = _config_dir(tmp_path, tmp_path / "data")
    assert main([*argv, "--config-dir", str(config)]) == 2
    assert not (config / "agents.toml").exists()


def test_agent_add_refuses_an_existing_agent(tmp_path: Path) -> None:
    config = _config_dir(tmp_path, tmp_path / "data")
    argv = ["gateway", "agent-add", "dup", "--ip", "10.0.0.0/8", "--config-dir", str(config)]
    assert main(argv) == 0
    before = (config / "agents.toml").read_text()
    assert main(argv) == 2
    assert (config / "agents.toml").read_text() == before


async def _journal_with_payments(path: Path) -> None:
    journal = await Journal.open(path)
    try:
        for txn, amount in (("11", 1000), ("12", 2550)):
            pid = f"gw-bank-{txn}"
            await journal.record_payment_intent(
                PaymentIntent(
                    payment_id=pid,
                    amount_minor=amount,
                    currency="RUB",
                    account=ACCOUNT,
                    channel="gateway",
                    extra={
                        "agent": "bank",
                        "txn_id": txn,
                        "protocol": "osmp",
                        "txn_date": "2025-06-01T12:00:00",
                    },
                )
            )
            await journal.record_payment_result(PaymentResult(payment_id=pid, outcome="approved"))
    finally:
        await journal.close()


def test_registry_prints_the_agents_payments_of_the_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(_journal_with_payments(data / "journal.db"))
    config = _config_dir(tmp_path, data)
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * 3600))  # Moscow
    argv = ["gateway", "registry", "--agent", "bank", "--date", today, "--config-dir", str(config)]
    assert main(argv) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["txn_id"], r["amount"]) for r in rows] == [("11", "10.00"), ("12", "25.50")]
    assert main([*argv, "--format", "json"]) == 0
    registry = json.loads(capsys.readouterr().out)
    assert registry["count"] == 2
    assert registry["total_minor"] == {"RUB": 3550}
    assert main(["gateway", "registry", "--agent", "other", "--date", today, "--config-dir",
                 str(config)]) == 0  # fmt: skip
    assert len(capsys.readouterr().out.strip().splitlines()) == 1  # the header only


def test_registry_bad_date_is_exit_2(tmp_path: Path) -> None:
    config = _config_dir(tmp_path, tmp_path / "data")
    for date in ("2025-13-01", "01.06.2025", "2025-6-1"):
        argv = ["gateway", "registry", "--agent", "bank", "--date", date]
        assert main([*argv, "--config-dir", str(config)]) == 2


def test_serve_refuses_an_agents_file_readable_by_others(tmp_path: Path) -> None:
    config = _config_dir(tmp_path, tmp_path / "data")
    (config / "agents.toml").write_text(agents_toml())
    os.chmod(config / "agents.toml", 0o644)
    assert main(["gateway", "serve", "--config-dir", str(config), "--port", "0"]) == 2


def test_serve_answers_then_stops_gracefully_on_sigterm(tmp_path: Path, release: Release) -> None:
    data = tmp_path / "data"
    data.mkdir()
    install_catalog(data / "catalog.db", release)
    config = _config_dir(tmp_path, data)
    (config / "agents.toml").write_text(agents_toml())
    os.chmod(config / "agents.toml", 0o600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_config.dispatch", "gateway", "serve",
         "--config-dir", str(config), "--port", "0"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stderr.readline()
            if not line:
                break
            if "gateway listening on " in line:
                url = line.split("gateway listening on ", 1)[1].strip()
        assert url is not None, "the gateway did not report its address"
        query = urllib.parse.urlencode(
            {
                "command": "pay",
                "txn_id": "1",
                "txn_date": "20250601120000",
                "account": ACCOUNT,
                "sum": "10.00",
            }
        )
        request = urllib.request.Request(f"{url}/osmp?{query}", headers=basic())
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = parse_response(resp.read())
        assert answer.result is OsmpResult.OK
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    intents = asyncio.run(_intents(data / "journal.db"))
    assert intents == 1


async def _intents(path: Path) -> int:
    journal = await Journal.open(path)
    try:
        stats = await journal.stats()
    finally:
        await journal.close()
    return int(stats.entries_by_kind.get("payment-intent", 0))
