"""Signed configuration bundles: fetched from a real central, verified, layered, rolled back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from central_sync.agent.config_bundle import ConfigBundleApplier, bundle_settings
from central_sync.agent.files import write_atomic
from central_sync.journal import Journal
from central_sync.protocol import ConfigBundle
from firmware_config.identity import Identity, generate_identity
from firmware_config.loader import bundle_path, load_config
from tests.central_sync.agent_helpers import (
    Central,
    ServerFactory,
    close_transports,
    make_agent,
    start_central,
)

LOCATION = "msk-lenina-5"


@pytest.fixture(autouse=True)
async def _close_transports() -> AsyncIterator[None]:
    yield
    await close_transports()


@pytest.fixture
async def central(aiohttp_server: ServerFactory, tmp_path: Path) -> Central:
    return await start_central(aiohttp_server, tmp_path / "central")


@pytest.fixture
async def terminal(central: Central, tmp_path: Path) -> Identity:
    identity = generate_identity(tmp_path / "terminal" / "identity" / "ed25519.key")
    await central.enroll(identity, location=LOCATION)
    return identity


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "terminal" / "journal.db")
    try:
        yield j
    finally:
        await j.close()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "etc"
    directory.mkdir()
    (directory / "local.toml").write_text(
        f'[terminal]\nlocation = "{LOCATION}"\ndata_dir = "{tmp_path / "terminal"}"\n'
    )
    return directory


def applier(config_dir: Path, central: Central, **extra: Any) -> ConfigBundleApplier:
    return ConfigBundleApplier(
        config_dir=config_dir,
        central_public_key=central.public_key,
        location=LOCATION,
        env={},
        **extra,
    )


async def publish(central: Central, *, scope: str = f"location:{LOCATION}", **sections: Any) -> int:
    body = {
        "scope": scope,
        "limits": sections.get("limits", {}),
        "surcharge_rules": sections.get("surcharge_rules", []),
        "timeouts": sections.get("timeouts", {}),
        "offline_policy": sections.get("offline_policy", {}),
    }
    version: int = (await central.admin("POST", "/v1/admin/config", body))["version"]
    return version


async def served_bundle(central: Central, terminal: Identity) -> bytes:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{central.url}/v1/config?terminal={terminal.terminal_id}") as resp,
    ):
        assert resp.status == 200
        return await resp.read()


async def test_bundle_applied_becomes_a_layer_that_config_show_names_and_local_overrides_win(
    central: Central, terminal: Identity, journal: Journal, config_dir: Path
) -> None:
    await publish(
        central,
        offline_policy={"offline_payments_max": 100, "offline_age_max_s": 3600},
        timeouts={"kiosk.idle_timeout_s": 90},
        limits={"gateway.requests_in_flight_max": 64},
    )
    (config_dir / "override.d").mkdir()
    (config_dir / "override.d" / "50-site.toml").write_text("[kiosk]\nidle_timeout_s = 45\n")
    agent = make_agent(journal, terminal, central)
    agent.config_bundles = applier(config_dir, central)

    outcome = await agent.pull_config()

    assert outcome is not None
    assert (outcome.kind, outcome.version) == ("applied", 1)
    loaded = load_config(config_dir, env={})
    assert loaded.settings.journal.offline_payments_max == 100
    assert loaded.settings.gateway.requests_in_flight_max == 64
    assert str(loaded.source_of("journal.offline_payments_max")).startswith("central bundle v1 (")
    # The technician's override.d still wins, and says so.
    assert loaded.settings.kiosk.idle_timeout_s == 45
    assert "50-site.toml" in str(loaded.source_of("kiosk.idle_timeout_s"))
    beat = await agent.send_heartbeat()
    assert beat.heartbeat.config_version == 1
    assert (await central.terminal(terminal.terminal_id))["config_version"] == 1


async def test_tampered_bundle_is_refused_and_nothing_is_written(
    central: Central, terminal: Identity, config_dir: Path
) -> None:
    await publish(central, offline_policy={"offline_payments_max": 100})
    data = await served_bundle(central, terminal)
    tampered = data.replace(b'"offline_payments_max":100', b'"offline_payments_max":900')
    assert tampered != data

    outcome = applier(config_dir, central).apply(tampered, now_ms=_now_ms())

    assert (outcome.kind, outcome.reason, outcome.version) == ("refused", "bad-signature", 0)
    assert not bundle_path(config_dir).exists()


async def test_older_bundle_is_refused_as_a_rollback_and_the_newer_stays(
    central: Central, terminal: Identity, config_dir: Path
) -> None:
    await publish(central, offline_policy={"offline_payments_max": 100})
    first = await served_bundle(central, terminal)
    await publish(central, offline_policy={"offline_payments_max": 200})
    second = await served_bundle(central, terminal)
    bundles = applier(config_dir, central)
    assert bundles.apply(second, now_ms=_now_ms()).kind == "applied"
    before = bundle_path(config_dir).read_bytes()

    outcome = bundles.apply(first, now_ms=_now_ms())

    assert (outcome.kind, outcome.reason, outcome.version) == ("refused", "rollback", 2)
    assert bundle_path(config_dir).read_bytes() == before
    assert load_config(config_dir, env={}).settings.journal.offline_payments_max == 200


async def test_invalid_bundle_is_rolled_back_and_the_heartbeat_keeps_the_old_version(
    central: Central, terminal: Identity, journal: Journal, config_dir: Path
) -> None:
    await publish(central, offline_policy={"offline_payments_max": 100})
    agent = make_agent(journal, terminal, central)
    agent.config_bundles = applier(config_dir, central)
    assert (await agent.pull_config()).kind == "applied"  # type: ignore[union-attr]
    before = bundle_path(config_dir).read_bytes()
    # Version 2 says 0 stored payments: the settings refuse it (must be positive).
    await publish(central, offline_policy={"offline_payments_max": 0})

    outcome = await agent.pull_config()

    assert outcome is not None
    assert (outcome.kind, outcome.reason, outcome.version, outcome.offered_version) == (
        "rolled-back",
        "invalid",
        1,
        2,
    )
    assert "journal.offline_payments_max" in outcome.message
    assert bundle_path(config_dir).read_bytes() == before
    assert load_config(config_dir, env={}).settings.journal.offline_payments_max == 100
    assert agent.state.config_error is not None
    beat = await agent.send_heartbeat()
    assert beat.heartbeat.config_version == 1
    assert beat.heartbeat.health["config_error"] == "invalid"


async def test_bundle_failing_the_start_check_is_rolled_back_and_the_first_one_removed(
    central: Central, terminal: Identity, config_dir: Path
) -> None:
    await publish(central, timeouts={"kiosk.idle_timeout_s": 90})
    seen: list[int] = []

    def start_check(loaded: Any) -> None:
        seen.append(loaded.settings.kiosk.idle_timeout_s)
        raise RuntimeError("kiosk did not come up")

    outcome = applier(config_dir, central, start_check=start_check).apply(
        await served_bundle(central, terminal), now_ms=_now_ms()
    )

    assert seen == [90]  # the check saw the new configuration ...
    assert (outcome.kind, outcome.reason, outcome.version) == ("rolled-back", "start-check", 0)
    assert not bundle_path(config_dir).exists()  # ... and it is gone again
    assert load_config(config_dir, env={}).settings.kiosk.idle_timeout_s == 60


async def test_bundle_for_another_location_is_refused(
    central: Central, terminal: Identity, config_dir: Path
) -> None:
    await publish(central, offline_policy={"offline_payments_max": 100})
    data = await served_bundle(central, terminal)
    elsewhere = ConfigBundleApplier(
        config_dir=config_dir,
        central_public_key=central.public_key,
        location="spb-nevsky-1",
        env={},
    )

    outcome = elsewhere.apply(data, now_ms=_now_ms())

    assert (outcome.kind, outcome.reason) == ("refused", "wrong-scope")
    assert not bundle_path(config_dir).exists()


async def test_bundle_setting_the_central_key_is_refused_as_not_central_to_set(
    central: Central, terminal: Identity, config_dir: Path
) -> None:
    await publish(central, timeouts={"central.request_timeout_s": 1})

    outcome = applier(config_dir, central).apply(
        await served_bundle(central, terminal), now_ms=_now_ms()
    )

    assert (outcome.kind, outcome.reason) == ("refused", "not-allowed")
    assert not bundle_path(config_dir).exists()


async def test_expired_bundle_is_refused(
    central: Central, terminal: Identity, config_dir: Path
) -> None:
    await publish(central, offline_policy={"offline_payments_max": 100})
    data = await served_bundle(central, terminal)
    year_ms = 366 * 24 * 3600 * 1000

    outcome = applier(config_dir, central).apply(data, now_ms=_now_ms() + year_ms)

    assert (outcome.kind, outcome.reason) == ("refused", "expired")


async def test_same_version_again_is_current_and_rewrites_nothing(
    central: Central, terminal: Identity, config_dir: Path
) -> None:
    await publish(central, offline_policy={"offline_payments_max": 100})
    data = await served_bundle(central, terminal)
    bundles = applier(config_dir, central)
    bundles.apply(data, now_ms=_now_ms())
    write_atomic(bundle_path(config_dir), bundle_path(config_dir).read_bytes())
    mtime = bundle_path(config_dir).stat().st_mtime_ns

    outcome = bundles.apply(data, now_ms=_now_ms())

    assert (outcome.kind, outcome.version) == ("current", 1)
    assert bundle_path(config_dir).stat().st_mtime_ns == mtime


def test_bundle_settings_map_bare_offline_names_to_the_journal() -> None:
    bundle = ConfigBundle(
        version=1,
        scope="*",
        issued_ms=1,
        expires_ms=2,
        limits={"kiosk.pin_attempts_max": 3},
        surcharge_rules=[],
        timeouts={"sync.heartbeat_interval_s": 30},
        offline_policy={"offline_payments_max": 7},
    )

    assert bundle_settings(bundle) == {
        "journal.offline_payments_max": 7,
        "sync.heartbeat_interval_s": 30,
        "kiosk.pin_attempts_max": 3,
    }


def test_hand_written_bundle_layer_without_its_header_is_a_config_problem(
    config_dir: Path,
) -> None:
    from firmware_config.loader import ConfigError

    path = bundle_path(config_dir)
    path.parent.mkdir()
    path.write_text("[journal]\noffline_payments_max = 5\n")

    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, env={})

    assert "not a central bundle" in str(caught.value)


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


async def test_running_agent_applies_a_bundle_central_publishes_after_a_heartbeat_hint(
    central: Central, terminal: Identity, journal: Journal, config_dir: Path
) -> None:
    import asyncio

    # Long poll interval: only the heartbeat's hint can make the agent ask again.
    agent = make_agent(
        journal, terminal, central, heartbeat_interval_s=0.1, catalog_poll_interval_s=3600.0
    )
    agent.config_bundles = applier(config_dir, central)
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.sleep(0.3)  # the first pull found nothing published
        assert not bundle_path(config_dir).exists()
        await publish(central, offline_policy={"offline_payments_max": 77})
        for _ in range(200):  # at most 10 s
            if agent.config_version() == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        agent.stop()
        await asyncio.wait_for(task, 10)

    assert load_config(config_dir, env={}).settings.journal.offline_payments_max == 77
    assert agent.state.config_version == 1


async def test_sync_status_reports_a_rolled_back_bundle_as_a_problem(
    central: Central, terminal: Identity, journal: Journal, config_dir: Path, tmp_path: Path
) -> None:
    import asyncio
    import json
    import subprocess

    from tests.central_sync.central_support import LOBBYPAY

    await publish(central, offline_policy={"offline_payments_max": 0})
    agent = make_agent(
        journal, terminal, central, state_path=tmp_path / "terminal" / "sync-state.json"
    )
    agent.config_bundles = applier(config_dir, central)
    assert (await agent.pull_config()).kind == "rolled-back"  # type: ignore[union-attr]

    status = await asyncio.to_thread(
        subprocess.run,
        [LOBBYPAY, "sync", "status", "--config-dir", str(config_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert status.returncode == 2, status.stderr
    problems = json.loads(status.stdout)["problems"]
    assert any(p.startswith("configuration bundle problem: invalid") for p in problems)
