"""`lobbypay sync run | once | status` as a technician runs them, against a real central."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from central_sync.journal import Journal
from firmware_config.identity import Identity, generate_identity
from tests.central_sync.agent_helpers import (
    Central,
    ServerFactory,
    append_payments,
    free_port,
    start_central,
)

LOBBYPAY = str(Path(sys.executable).parent / "lobbypay")


@dataclass
class Box:
    """A terminal's configuration directory and data directory."""

    config_dir: Path
    data_dir: Path
    identity: Identity
    central: Central

    def configure(self, url: str | None = None, public_key: str | None = None) -> None:
        url = self.central.url if url is None else url
        key = self.central.identity.public_key_hex if public_key is None else public_key
        (self.config_dir / "local.toml").write_text(
            f'[terminal]\ndata_dir = "{self.data_dir}"\n\n'
            f'[central]\nurl = "{url}"\npublic_key = "{key}"\nrequest_timeout_s = 5.0\n\n'
            "[sync]\nresponse_timeout_s = 5.0\nbackoff_initial_s = 0.05\nbackoff_max_s = 0.5\n"
            "idle_poll_interval_s = 0.1\n",
            encoding="utf-8",
        )

    async def append(self, payments: int, seed: int = 1) -> None:
        journal = await Journal.open(self.data_dir / "journal.db")
        try:
            await append_payments(journal, payments, seed=seed)
        finally:
            await journal.close()

    async def acked(self) -> int:
        journal = await Journal.open(self.data_dir / "journal.db")
        try:
            return await journal.acknowledged_through()
        finally:
            await journal.close()


@pytest.fixture
async def box(aiohttp_server: ServerFactory, tmp_path: Path) -> Box:
    central = await start_central(aiohttp_server, tmp_path / "central")
    data_dir = tmp_path / "data"
    identity = generate_identity(data_dir / "identity" / "ed25519.key")
    await central.enroll(identity)
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    b = Box(config_dir=config_dir, data_dir=data_dir, identity=identity, central=central)
    b.configure()
    return b


def env(lang: str = "C.UTF-8") -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOBBYPAY_", "LC_"))}
    clean["LANG"] = lang
    return clean


async def lobbypay(
    *args: str, lang: str = "C.UTF-8", timeout_s: float = 60
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        LOBBYPAY,
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(lang),
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_every_sync_command_has_help() -> None:
    for args in (["sync", "--help"], *(["sync", c, "--help"] for c in ("run", "once", "status"))):
        done = subprocess.run(
            [LOBBYPAY, *args], capture_output=True, text=True, timeout=60, env=env(), check=False
        )
        assert done.returncode == 0, done.stderr
        assert "usage: lobbypay sync" in done.stdout
    bare = subprocess.run(
        [LOBBYPAY, "sync"], capture_output=True, text=True, timeout=60, env=env(), check=False
    )
    assert bare.returncode == 2
    assert "run" in bare.stdout
    assert "status" in bare.stdout


async def test_once_flushes_everything_and_status_shows_it(box: Box) -> None:
    await box.append(5)
    code, out, err = await lobbypay("sync", "once", "--config-dir", str(box.config_dir))
    assert code == 0, err
    assert "acknowledged through 10 of 10" in out
    assert await box.acked() == 10
    assert len(await box.central.storage.entry_hashes(box.identity.terminal_id)) == 10
    record = await box.central.terminal(box.identity.terminal_id)
    assert record["queue_depth"] == 0
    assert record["software_version"]

    code, out, err = await lobbypay("sync", "status", "--json", "--config-dir", str(box.config_dir))
    assert code == 0, err
    status = json.loads(out)
    assert status["journal"] == {
        "head_seq": 10,
        "acknowledged_through": 10,
        "queue_depth": 0,
        "oldest_pending_age_s": None,
    }
    assert status["agent"]["last_ack_seq"] == 10
    assert status["problems"] == []

    code, out, _ = await lobbypay("sync", "status", "--config-dir", str(box.config_dir))
    assert code == 0
    assert "pending entries: 0" in out
    assert "last ack: seq 10" in out


async def test_once_speaks_russian_to_a_russian_locale(box: Box) -> None:
    await box.append(1)
    code, out, err = await lobbypay(
        "sync", "once", "--config-dir", str(box.config_dir), lang="ru_RU.UTF-8"
    )
    assert code == 0, err
    assert "подтверждено до 2 из 2" in out


async def test_once_without_central_exits_1_and_status_shows_the_queue(box: Box) -> None:
    await box.append(2)
    box.configure(url=f"http://127.0.0.1:{free_port()}")
    code, out, err = await lobbypay("sync", "once", "--config-dir", str(box.config_dir))
    assert code == 1, out + err
    assert "retried" in err
    code, out, err = await lobbypay("sync", "status", "--json", "--config-dir", str(box.config_dir))
    status = json.loads(out)
    assert status["journal"]["queue_depth"] == 4
    assert status["journal"]["oldest_pending_age_s"] is not None
    assert status["agent"]["last_error"]["reason"] == "network"
    assert code == 0


async def test_once_for_a_revoked_terminal_exits_2_and_status_reports_it(box: Box) -> None:
    await box.append(2)
    await box.central.admin("POST", f"/v1/admin/terminals/{box.identity.terminal_id}/revoke")
    code, out, err = await lobbypay("sync", "once", "--config-dir", str(box.config_dir))
    assert code == 2, out + err
    assert "revoked" in err
    assert "service desk" in err
    assert await box.acked() == 0
    code, out, err = await lobbypay("sync", "status", "--config-dir", str(box.config_dir))
    assert code == 2
    assert "STOPPED: revoked" in err


async def test_once_without_central_configuration_exits_2(box: Box) -> None:
    box.configure(url="", public_key="")
    code, _, err = await lobbypay("sync", "once", "--config-dir", str(box.config_dir))
    assert code == 2
    assert "central.url" in err


async def test_once_without_an_identity_key_exits_2_with_the_next_step(box: Box) -> None:
    (box.data_dir / "identity" / "ed25519.key").unlink()
    code, _, err = await lobbypay("sync", "once", "--config-dir", str(box.config_dir))
    assert code == 2
    assert "lobbypay identity init" in err


async def test_status_without_a_journal_exits_2(box: Box) -> None:
    code, _, err = await lobbypay("sync", "status", "--config-dir", str(box.config_dir))
    assert code == 2
    assert "no journal" in err


async def test_run_uploads_until_sigterm_then_exits_0(box: Box) -> None:
    await box.append(3)
    process = await asyncio.create_subprocess_exec(
        LOBBYPAY,
        "sync",
        "run",
        "--config-dir",
        str(box.config_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        for _ in range(200):
            if await box.acked() == 6:
                break
            await asyncio.sleep(0.05)
        assert await box.acked() == 6
        await box.append(2, seed=9)  # appended by "another process" while it runs
        for _ in range(200):
            if await box.acked() == 10:
                break
            await asyncio.sleep(0.05)
        assert await box.acked() == 10
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert "sync agent stopped" in err.decode()
