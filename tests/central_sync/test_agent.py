"""The sync agent against the real central service on 127.0.0.1 (aiohttp, SQLite)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import protocol
from central_sync.agent import (
    AiohttpTransport,
    EnrollmentError,
    Response,
    UploadKind,
    enroll,
    load_state,
)
from central_sync.agent.timing import Backoff
from central_sync.catalog.generator import generate_catalog
from central_sync.catalog.model import Catalog
from central_sync.catalog.publish import build_delta, build_snapshot
from central_sync.catalog.store import CatalogStore
from central_sync.central.app import gate_key
from central_sync.journal import EntryState, Journal
from central_sync.protocol import Refusal, RefusalKind
from firmware_config.identity import Identity, generate_identity
from tests.central_sync.agent_helpers import (
    Central,
    FakeClock,
    RewritingTransport,
    ServerFactory,
    append_payments,
    close_transports,
    free_port,
    make_agent,
    start_central,
)

DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
async def _close_transports() -> AsyncIterator[None]:
    yield
    await close_transports()


@pytest.fixture
async def central(aiohttp_server: ServerFactory, tmp_path: Path) -> Central:
    return await start_central(aiohttp_server, tmp_path / "central")


@pytest.fixture
def terminal(tmp_path: Path) -> Identity:
    return generate_identity(tmp_path / "terminal" / "identity" / "ed25519.key")


@pytest.fixture
async def enrolled(central: Central, terminal: Identity) -> Central:
    await central.enroll(terminal)
    return central


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "terminal" / "journal.db")
    try:
        yield j
    finally:
        await j.close()


def other_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


async def states(journal: Journal) -> list[EntryState]:
    head, _ = await journal.head()
    return [e.state for e in await journal.read(1, head + 1)]


# --- upload --------------------------------------------------------------------------


async def test_flush_acknowledges_every_entry_and_central_holds_the_same_chain(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 60)
    agent = make_agent(journal, terminal, enrolled, batch_entries_max=25)
    report = await agent.flush()
    await agent.transport.close()
    assert report.complete
    assert report.acknowledged_through == 120
    assert report.batches == 5
    assert set(await states(journal)) == {EntryState.ACKNOWLEDGED}
    stored = await enrolled.storage.entry_hashes(terminal.terminal_id)
    head, _ = await journal.head()
    assert [(seq, h) for seq, h, _ in stored] == [
        (e.seq, e.hash) for e in await journal.read(1, head)
    ]
    assert (await enrolled.storage.counts()).payments == 60


async def test_flush_of_batches_larger_than_one_network_read(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 3200)
    agent = make_agent(journal, terminal, enrolled, batch_entries_max=10_000)
    report = await agent.flush()
    assert agent.counters.bytes_sent > 256 * 1024
    assert report.complete


async def test_entries_are_marked_sent_before_the_batch_leaves(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 5)
    seen: list[list[EntryState]] = []

    async def before(method: str, path: str) -> None:
        if path == "/v1/batches":
            seen.append(await states(journal))

    transport = RewritingTransport(AiohttpTransport(enrolled.url), before=before)
    agent = make_agent(journal, terminal, enrolled, transport=transport)
    assert (await agent.flush()).complete
    await transport.close()
    assert seen == [[EntryState.SENT] * 10]


async def test_forged_ack_is_refused_and_entries_stay_unacknowledged(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 3)
    head, head_hash = await journal.head()
    forger = other_key()
    forged = protocol.build_ack(terminal.terminal_id, head, head_hash, 1, forger)

    def rewrite(method: str, path: str, response: Response) -> Response:
        return Response(status=200, body=forged) if path == "/v1/batches" else response

    transport = RewritingTransport(AiohttpTransport(enrolled.url), rewrite)
    agent = make_agent(journal, terminal, enrolled, transport=transport)
    result = await agent.upload_step()
    await transport.close()
    assert result.kind is UploadKind.RETRY
    assert result.reason == "untrusted-answer"
    assert await journal.acknowledged_through() == 0
    assert set(await states(journal)) == {EntryState.SENT}


async def test_ack_signed_by_central_for_another_chain_stops_and_keeps_the_journal(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 3)
    head, _ = await journal.head()
    # Validly signed by central's own key, but for a chain this journal does not have.
    wrong = protocol.build_ack(terminal.terminal_id, head, b"\x07" * 32, 1, enrolled.identity)

    def rewrite(method: str, path: str, response: Response) -> Response:
        return Response(status=200, body=wrong) if path == "/v1/batches" else response

    transport = RewritingTransport(AiohttpTransport(enrolled.url), rewrite)
    agent = make_agent(journal, terminal, enrolled, transport=transport)
    result = await agent.upload_step()
    await transport.close()
    assert result.kind is UploadKind.FINAL
    assert result.reason == "ack-mismatch"
    assert {"ru", "en"} <= set(result.messages)
    assert await journal.acknowledged_through() == 0
    assert len(await journal.read(1, 100)) == 6


async def test_forged_revoked_refusal_does_not_stop_the_terminal(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 2)
    refusal = Refusal(
        kind=RefusalKind.REVOKED,
        terminal_id=terminal.terminal_id,
        reason="revoked",
        message="you are revoked",
        central_time_ms=1,
    )
    forged = protocol.build_refusal(refusal, other_key())

    def rewrite(method: str, path: str, response: Response) -> Response:
        return Response(status=403, body=forged) if path == "/v1/batches" else response

    transport = RewritingTransport(AiohttpTransport(enrolled.url), rewrite)
    agent = make_agent(journal, terminal, enrolled, transport=transport)
    result = await agent.upload_step()
    assert result.kind is UploadKind.RETRY
    assert agent.final is None
    transport.rewrite = None
    assert (await agent.flush()).complete
    await transport.close()


async def test_gap_resends_from_the_seq_central_expects(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 10)
    # The journal believes central holds 1..8 (say, central was restored from an
    # older backup): the agent starts at 9 and central answers with a gap.
    eighth = (await journal.read(8, 1))[0]
    await journal.mark_acknowledged(8, eighth.hash)
    agent = make_agent(journal, terminal, enrolled, batch_entries_max=6)
    first = await agent.upload_step()
    assert first.kind is UploadKind.RESEND
    assert first.reason == "gap"
    report = await agent.flush()
    await agent.transport.close()
    assert report.complete
    record = await enrolled.storage.get_terminal(terminal.terminal_id)
    assert record is not None
    head, head_hash = await journal.head()
    assert (record.head_seq, record.head_hash) == (head, head_hash)
    assert len(await enrolled.storage.entry_hashes(terminal.terminal_id)) == 20


async def test_revoked_terminal_stops_reports_loudly_and_keeps_the_journal(
    enrolled: Central,
    terminal: Identity,
    journal: Journal,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await append_payments(journal, 4)
    await enrolled.admin(
        "POST", f"/v1/admin/terminals/{terminal.terminal_id}/revoke", {"reason": "stolen"}
    )
    state_path = tmp_path / "terminal" / "sync-state.json"
    agent = make_agent(journal, terminal, enrolled, state_path=state_path)
    report = await asyncio.wait_for(agent.run(), 30)
    await agent.transport.close()
    assert report.final is not None
    assert report.final.kind is UploadKind.FINAL
    assert report.final.reason == "revoked"
    assert "Обратитесь" in report.final.messages["ru"]
    assert "sync_stopped_final reason=revoked" in caplog.text
    assert await journal.acknowledged_through() == 0
    assert len(await journal.read(1, 100)) == 8
    state = load_state(state_path)
    assert state is not None
    assert state.final_refusal is not None
    assert state.final_refusal.reason == "revoked"
    assert state.final_refusal.final


async def test_unknown_terminal_is_a_final_refusal(
    central: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 1)
    agent = make_agent(journal, terminal, central)
    result = await agent.upload_step()
    await agent.transport.close()
    assert result.kind is UploadKind.FINAL
    assert result.reason == "unknown-terminal"


async def test_busy_central_is_retried_no_sooner_than_retry_after(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 1)
    gate = enrolled.app[gate_key]
    gate.in_flight = gate.limit  # central is saturated: it answers retry-later
    agent = make_agent(journal, terminal, enrolled, backoff_initial_s=0.1, backoff_max_s=60.0)
    result = await agent.upload_step()
    assert result.kind is UploadKind.RETRY
    # Central refuses before reading the upload, so its signed refusal names no
    # request (or, today, the digest of an empty one): either way a backoff.
    assert result.reason in ("retry-later", "central-unavailable")
    assert result.retry_after_s == 5.0
    assert all(agent.retry_delay_s(result) >= 5.0 for _ in range(50))
    gate.in_flight = 0
    assert (await agent.flush()).complete
    await agent.transport.close()


async def test_batch_central_finds_too_large_is_split(
    aiohttp_server: ServerFactory, tmp_path: Path, terminal: Identity, journal: Journal
) -> None:
    central = await start_central(aiohttp_server, tmp_path / "small", batch_entries_max=7)
    await central.enroll(terminal)
    await append_payments(journal, 20)
    agent = make_agent(journal, terminal, central, batch_entries_max=40)
    first = await agent.upload_step()
    assert first.kind is UploadKind.RESEND
    assert first.reason == "too-large"
    report = await agent.flush()
    await agent.transport.close()
    assert report.complete
    assert len(await central.storage.entry_hashes(terminal.terminal_id)) == 40


async def test_no_answer_within_the_response_timeout_is_retryable(
    aiohttp_server: ServerFactory, terminal: Identity, journal: Journal, central: Central
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/v1/batches", slow)
    server = await aiohttp_server(app)
    await append_payments(journal, 1)
    transport = AiohttpTransport(str(server.make_url("")).rstrip("/"))
    agent = make_agent(journal, terminal, central, transport=transport, response_timeout_s=0.3)
    started = time.monotonic()
    result = await agent.upload_step()
    await transport.close()
    assert time.monotonic() - started < 3
    assert result.kind is UploadKind.RETRY
    assert result.reason == "timeout"
    assert await journal.acknowledged_through() == 0


async def test_unsigned_server_error_is_retryable(
    aiohttp_server: ServerFactory, terminal: Identity, journal: Journal, central: Central
) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"error": "revoked", "retryable": False}, status=403)

    app = web.Application()
    app.router.add_post("/v1/batches", broken)
    server = await aiohttp_server(app)
    await append_payments(journal, 1)
    transport = AiohttpTransport(str(server.make_url("")).rstrip("/"))
    agent = make_agent(journal, terminal, central, transport=transport)
    result = await agent.upload_step()
    await transport.close()
    assert result.kind is UploadKind.RETRY
    assert result.reason == "untrusted-answer"


async def test_backoff_delays_grow_with_full_jitter_within_bounds_and_reset_on_ack(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 2)
    down = AiohttpTransport(f"http://127.0.0.1:{free_port()}")
    transport = RewritingTransport(down)
    failures_max = 14
    clock = FakeClock()
    agent = make_agent(
        journal,
        terminal,
        enrolled,
        transport=transport,
        clock=clock,
        backoff_initial_s=0.5,
        backoff_max_s=20.0,
        heartbeat_interval_s=10_000.0,
        catalog_poll_interval_s=10_000.0,
    )

    def on_wait(timeout_s: float) -> None:
        if agent.failures >= failures_max:
            agent.stop()

    clock.on_wait = on_wait
    report = await asyncio.wait_for(agent.run(), 30)
    assert report.stopped
    waits = clock.waits
    assert len(waits) == failures_max
    backoff = Backoff(initial_s=0.5, max_s=20.0)
    for n, wait in enumerate(waits, start=1):
        assert 0.0 <= wait <= backoff.cap_s(n) + 1e-9
    assert max(waits) <= 20.0
    assert max(waits[8:]) > 2.0  # the window did grow
    assert len(set(waits)) == len(waits)  # jittered, not a fixed schedule
    # Central reachable again: the next ack resets the failure count.
    transport.inner = AiohttpTransport(enrolled.url)
    assert (await agent.flush()).complete
    assert agent.failures == 0
    await down.close()
    await transport.close()


async def test_connection_refused_is_retryable(
    central: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 1)
    transport = AiohttpTransport(f"http://127.0.0.1:{free_port()}")
    agent = make_agent(journal, terminal, central, transport=transport)
    result = await agent.upload_step()
    await transport.close()
    assert result.kind is UploadKind.RETRY
    assert result.reason == "network"


async def test_entries_appended_by_another_process_are_sent_and_acknowledged(
    enrolled: Central, terminal: Identity, journal: Journal, tmp_path: Path
) -> None:
    await append_payments(journal, 2)
    agent = make_agent(journal, terminal, enrolled)
    assert (await agent.flush()).complete
    # The kiosk is another process with its own connection to the same file.
    kiosk = await Journal.open(tmp_path / "terminal" / "journal.db")
    try:
        await append_payments(kiosk, 3, seed=2)
    finally:
        await kiosk.close()
    report = await agent.flush()
    depth, oldest = await agent.queue_state()
    await agent.transport.close()
    assert report.complete
    assert report.acknowledged_through == 10
    assert (depth, oldest) == (0, None)
    assert len(await enrolled.storage.entry_hashes(terminal.terminal_id)) == 10


async def test_journal_entry_that_does_not_match_its_hash_is_never_sent(
    enrolled: Central, terminal: Identity, journal: Journal, tmp_path: Path
) -> None:
    await append_payments(journal, 3)
    with sqlite3.connect(tmp_path / "terminal" / "journal.db") as conn:
        body = bytes(conn.execute("SELECT body FROM entries WHERE seq = 4").fetchone()[0])
        edited = body.replace(b'"approved"', b'"declined"')
        assert edited != body
        conn.execute("UPDATE entries SET body = ? WHERE seq = 4", (edited,))
    agent = make_agent(journal, terminal, enrolled)
    result = await agent.upload_step()
    await agent.transport.close()
    assert result.kind is UploadKind.FINAL
    assert result.reason == "journal-corrupt"
    assert await enrolled.storage.entry_hashes(terminal.terminal_id) == []


async def test_run_sends_new_entries_when_woken_and_stops_gracefully(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    agent = make_agent(journal, terminal, enrolled, idle_poll_interval_s=30.0)
    task = asyncio.create_task(agent.run())
    await asyncio.sleep(0.2)
    await append_payments(journal, 3)
    agent.wake()
    for _ in range(100):
        if await journal.acknowledged_through() == 6:
            break
        await asyncio.sleep(0.05)
    assert await journal.acknowledged_through() == 6
    agent.stop()
    report = await asyncio.wait_for(task, 10)
    await agent.transport.close()
    assert report.stopped
    assert report.final is None


# --- heartbeat -------------------------------------------------------------------------


async def test_heartbeat_reports_queue_depth_oldest_age_versions_and_health(
    enrolled: Central, terminal: Identity, journal: Journal, tmp_path: Path
) -> None:
    await append_payments(journal, 4)
    catalog_path = tmp_path / "terminal" / "catalog.db"
    agent = make_agent(
        journal,
        terminal,
        enrolled,
        catalog_path=catalog_path,
        health=lambda: {"printer": "paper-low", "card_reader": True, "temp_c": 41},
    )
    await publish(enrolled, generate_catalog(3, 4, 2), version=3)
    assert (await agent.pull_catalog()).version == 3
    await asyncio.sleep(1.1)
    result = await agent.send_heartbeat()
    await agent.transport.close()
    assert result.delivered
    beat = result.heartbeat
    assert beat.queue_depth == 8
    assert beat.oldest_pending_age_s is not None
    assert beat.oldest_pending_age_s >= 1
    assert beat.software_version == "1.2.3-test"
    assert beat.catalog_version == 3
    record = await enrolled.terminal(terminal.terminal_id)
    assert record["queue_depth"] == 8
    assert record["software_version"] == "1.2.3-test"
    assert record["catalog_version"] == 3
    assert record["health"]["printer"] == "paper-low"
    assert record["health"]["card_reader"] is True
    assert record["health"]["sync_state"] == "ok"


async def test_heartbeat_survives_a_broken_health_hook(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    def broken() -> dict[str, str]:
        raise RuntimeError("sensor gone")

    agent = make_agent(journal, terminal, enrolled, health=broken)
    result = await agent.send_heartbeat()
    await agent.transport.close()
    assert result.delivered
    assert result.heartbeat.health["health_hook"] == "failed"
    assert result.heartbeat.queue_depth == 0


# --- catalog ---------------------------------------------------------------------------


async def publish(
    central: Central,
    catalog: Catalog,
    *,
    version: int,
    base: tuple[int, Catalog] | None = None,
    expires_ms: int | None = None,
    signer: object = None,
) -> bytes:
    now = int(time.time() * 1000)
    key = signer or central.identity
    if base is None:
        data = build_snapshot(
            catalog,
            version,
            key,  # type: ignore[arg-type]
            published_at_ms=now - 1000,
            expires_at_ms=expires_ms or now + DAY_MS,
        )
        kind, base_version = "snapshot", None
    else:
        data = build_delta(
            base[1],
            catalog,
            version,
            key,  # type: ignore[arg-type]
            base_version=base[0],
            published_at_ms=now - 1000,
            expires_at_ms=expires_ms or now + DAY_MS,
        )
        kind, base_version = "delta", base[0]
    await central.storage.put_catalog_release(
        version=version, kind=kind, base_version=base_version, data=data, now_ms=now
    )
    return data


async def test_catalog_releases_are_pulled_and_applied_in_order(
    enrolled: Central, terminal: Identity, journal: Journal, tmp_path: Path
) -> None:
    first = generate_catalog(11, 6, 2)
    second = generate_catalog(11, 9, 2)
    await publish(enrolled, first, version=1)
    catalog_path = tmp_path / "terminal" / "catalog.db"
    agent = make_agent(journal, terminal, enrolled, catalog_path=catalog_path)
    pulled = await agent.pull_catalog()
    assert (pulled.version, pulled.applied, pulled.refused) == (1, (1,), None)
    await publish(enrolled, second, version=2, base=(1, first))
    pulled = await agent.pull_catalog()
    assert (pulled.version, pulled.applied) == (2, (2,))
    assert (await agent.pull_catalog()).applied == ()  # 204: current
    await agent.close()
    await agent.transport.close()
    with CatalogStore.open(catalog_path, readonly=True) as store:
        assert store.version() == 2
        assert store.accounts_count() == 9
        vn = sorted(second.accounts)[-1]
        view = store.account(vn)
        assert view is not None
    assert not (tmp_path / "terminal" / "catalog.db.download").exists()


async def test_catalog_rollback_is_refused_and_the_newer_catalog_kept(
    enrolled: Central, terminal: Identity, journal: Journal, tmp_path: Path
) -> None:
    first = generate_catalog(12, 5, 2)
    old = await publish(enrolled, first, version=1)
    await publish(enrolled, generate_catalog(12, 7, 2), version=2)
    catalog_path = tmp_path / "terminal" / "catalog.db"
    replay = False

    def rewrite(method: str, path: str, response: Response) -> Response:
        # Someone on the way answers with the old, validly signed release.
        if replay and path.startswith("/v1/catalog"):
            return Response(status=200, body=old)
        return response

    transport = RewritingTransport(AiohttpTransport(enrolled.url), rewrite)
    agent = make_agent(journal, terminal, enrolled, transport=transport, catalog_path=catalog_path)
    assert (await agent.pull_catalog()).version == 2
    replay = True
    pulled = await agent.pull_catalog()
    assert pulled.refused is not None
    assert pulled.refused.reason == "rollback"
    assert pulled.version == 2
    assert agent.catalog_version() == 2
    assert agent.state.catalog_error is not None
    beat = await agent.send_heartbeat()
    assert beat.heartbeat.health["catalog_error"] == "rollback"
    await agent.close()
    await transport.close()


async def test_expired_catalog_is_refused(
    enrolled: Central, terminal: Identity, journal: Journal, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    await publish(enrolled, generate_catalog(13, 4, 2), version=1, expires_ms=now - 10)
    agent = make_agent(journal, terminal, enrolled, catalog_path=tmp_path / "c.db")
    pulled = await agent.pull_catalog()
    await agent.close()
    await agent.transport.close()
    assert pulled.refused is not None
    assert pulled.refused.reason == "expired"
    assert pulled.version == 0


async def test_catalog_signed_by_another_key_is_refused(
    enrolled: Central, terminal: Identity, journal: Journal, tmp_path: Path
) -> None:
    await publish(enrolled, generate_catalog(14, 4, 2), version=1, signer=other_key())
    agent = make_agent(journal, terminal, enrolled, catalog_path=tmp_path / "c.db")
    pulled = await agent.pull_catalog()
    await agent.close()
    await agent.transport.close()
    assert pulled.refused is not None
    assert pulled.refused.reason == "bad-signature"
    assert agent.catalog_version() == 0


async def test_catalog_pull_without_central_is_a_retryable_error(
    terminal: Identity, journal: Journal, tmp_path: Path, central: Central
) -> None:
    transport = AiohttpTransport(f"http://127.0.0.1:{free_port()}")
    agent = make_agent(
        journal, terminal, central, transport=transport, catalog_path=tmp_path / "c.db"
    )
    pulled = await agent.pull_catalog()
    await agent.close()
    await transport.close()
    assert pulled.error is not None
    assert pulled.refused is None


async def test_catalog_pull_applies_at_most_the_bound_per_poll(
    enrolled: Central, terminal: Identity, journal: Journal, tmp_path: Path
) -> None:
    catalogs = [generate_catalog(15, 3 + n, 2) for n in range(4)]
    await publish(enrolled, catalogs[0], version=1)
    for n in range(1, 4):
        await publish(enrolled, catalogs[n], version=n + 1, base=(n, catalogs[n - 1]))
    agent = make_agent(
        journal,
        terminal,
        enrolled,
        catalog_path=tmp_path / "c.db",
        catalog_releases_per_poll_max=2,
    )
    assert (await agent.pull_catalog()).applied == (1, 2)
    assert (await agent.pull_catalog()).applied == (3, 4)
    assert (await agent.pull_catalog()).applied == ()
    await agent.close()


async def test_gap_after_gap_is_bounded_then_backs_off(
    enrolled: Central, terminal: Identity, journal: Journal
) -> None:
    await append_payments(journal, 6)
    ninth = (await journal.read(9, 1))[0]
    await journal.mark_acknowledged(9, ninth.hash)

    expected = [10]

    def always_gap(method: str, path: str, response: Response) -> Response:
        # A confused central that always wants one entry earlier than it was sent.
        if path != "/v1/batches":
            return response
        expected[0] -= 1
        refusal = Refusal(
            kind=RefusalKind.GAP,
            terminal_id=terminal.terminal_id,
            reason="gap",
            message=f"send from {expected[0]}",
            central_time_ms=1,
            expected_seq=expected[0],
        )
        return Response(status=409, body=protocol.build_refusal(refusal, enrolled.identity))

    transport = RewritingTransport(AiohttpTransport(enrolled.url), always_gap)
    agent = make_agent(journal, terminal, enrolled, transport=transport, immediate_retries_max=3)
    kinds = [(await agent.upload_step()).kind for _ in range(4)]
    await transport.close()
    assert kinds == [UploadKind.RESEND] * 3 + [UploadKind.RETRY]
    assert agent.failures == 1


def fill_disk(path: Path) -> None:
    """Write zeros to ``path`` until its filesystem is full (bounded: a small tmpfs)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(4096):
            try:
                os.write(fd, b"\0" * 4096)
            except OSError:
                break
    finally:
        os.close(fd)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that really fills up (ENOSPC)."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the full-disk test as root")
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_full_disk_while_marking_entries_is_retried_not_fatal(
    small_fs: Path, enrolled: Central, terminal: Identity
) -> None:
    journal = await Journal.open(small_fs / "journal.db")
    try:
        await append_payments(journal, 20)
        filler = small_fs / "filler"
        await asyncio.to_thread(fill_disk, filler)
        agent = make_agent(journal, terminal, enrolled)
        result = await agent.upload_step()
        assert result.kind is UploadKind.RETRY
        assert result.reason == "journal"
        assert await journal.acknowledged_through() == 0
        filler.unlink()
        report = await agent.flush()
        assert report.complete
        assert report.acknowledged_through == 40
    finally:
        await journal.close()


# --- enrollment ------------------------------------------------------------------------


async def test_enroll_registers_the_key_and_verifies_centrals_answer(
    central: Central, terminal: Identity, journal: Journal
) -> None:
    code = (await central.admin("POST", "/v1/admin/registration-codes", {"location": "spb-1"}))[
        "code"
    ]
    transport = AiohttpTransport(central.url)
    try:
        with pytest.raises(EnrollmentError) as wrong_key:
            await enroll(
                transport,
                terminal,
                public_key=terminal.public_key_bytes,
                registration_code=code,
                location="spb-1",
                label="Подъезд 1",
                central_public_key=other_key().public_key().public_bytes_raw(),
            )
        assert wrong_key.value.retryable
        # The code was used by that (verified-by-central) request: enrolling again
        # with the same key returns the same record; the answer now verifies.
        answer = await enroll(
            transport,
            terminal,
            public_key=terminal.public_key_bytes,
            registration_code=code,
            location="spb-1",
            label="Подъезд 1",
            central_public_key=central.public_key,
        )
        assert answer.terminal_id == terminal.terminal_id
        assert answer.location == "spb-1"
        other = generate_identity(Path(str(journal.path) + ".other.key"))
        with pytest.raises(EnrollmentError) as used:
            await enroll(
                transport,
                other,
                public_key=other.public_key_bytes,
                registration_code=code,
                location="spb-1",
                label="x",
                central_public_key=central.public_key,
            )
        assert not used.value.retryable
    finally:
        await transport.close()
    await append_payments(journal, 1)
    agent = make_agent(journal, terminal, central)
    assert (await agent.flush()).complete
