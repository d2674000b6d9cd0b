"""KioskServices without the UI: recovery decisions applied for real, device faults, lookups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from central_sync.journal import KIND_DEVICE_EVENT, Journal, PaymentIntent
from drivers.identification import AccountIdentified, CardHashRef, VirtualNumberRef
from drivers.zvt.simulator import Outcome
from kiosk.devices import BACKENDS, DeviceChoice, DeviceError
from kiosk.model import Order, OrderItem
from kiosk.payment import PaymentPhase
from kiosk.services import KioskServices, PaymentUpdate, StaffStatus, catalog_path
from tests.kiosk.pilot import TEST_TIMEOUTS
from tests.kiosk.support import FROZEN_NOW, IVANOVA, make_settings


class Listener:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.statuses: list[StaffStatus] = []

    def identification(self, event: Any) -> None:
        self.events.append(event)

    def staff_status(self, status: StaffStatus) -> None:
        self.statuses.append(status)


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[KioskServices]:
    svc = KioskServices(
        make_settings(tmp_path),
        devices=DeviceChoice(card_reader="simulator"),
        listener=Listener(),
        clock=lambda: FROZEN_NOW,
        terminal_timeouts=TEST_TIMEOUTS,
    )
    await svc.start()
    sim = svc.terminal_simulator
    assert sim is not None
    sim.config.step_delay_s = 0.0
    try:
        yield svc
    finally:
        await svc.close()


def _order(amount: int = 48_730) -> Order:
    return Order(
        account=IVANOVA,
        items=(
            OrderItem(
                code="CW",
                name_ru="Холодное водоснабжение",
                name_en="Cold water",
                provider_id="brn-water",
                period="2025-05",
                amount_minor=amount,
                debt_minor=48_730,
            ),
        ),
        surcharge_minor=0,
    )


async def _orphan_intent(svc: KioskServices, amount: int, *, cancel: bool = False) -> str:
    """Write an intent the way pay() does and leave it without a result (the kiosk "died")."""
    assert svc.journal is not None
    pid = "kp-orphan000000000001"
    intent = PaymentIntent(
        payment_id=pid,
        amount_minor=amount,
        currency="RUB",
        account=IVANOVA,
        channel="kiosk-card",
        extra={
            "items": [{"service": "CW", "amount_minor": amount, "period": "2025-05"}],
            "surcharge_minor": 0,
            "terminal_receipt_before": svc.history.last_receipt_no,
        },
    )
    svc.history.add(await svc.journal.record_payment_intent(intent))
    if cancel:
        entry = await svc.journal.append(
            KIND_DEVICE_EVENT, {"event": "payment-cancel-requested", "payment_id": pid}
        )
        svc.history.add(entry)
    return pid


async def _bodies(svc: KioskServices, kind: str) -> list[dict[str, Any]]:
    assert svc.journal is not None
    return [dict(e.body) for e in await svc.journal.read(1, 1000) if e.kind == kind]


async def test_recovery_reverses_an_approval_the_resident_cancelled(
    services: KioskServices,
) -> None:
    pid = await _orphan_intent(services, 48_730, cancel=True)
    assert services.payments_paused
    # The terminal went on and approved after all (the kiosk had died meanwhile).
    assert services.terminal is not None
    booked = await services.terminal.pay(48_730)
    assert booked.approved
    assert await services.recover() == 0
    results = await _bodies(services, "payment-result")
    reversals = await _bodies(services, "reversal")
    assert [(r["payment_id"], r["outcome"]) for r in results] == [(pid, "approved")]
    assert [(r["payment_id"], r["original_receipt_no"]) for r in reversals] == [
        (pid, booked.receipt_no)
    ]
    sim = services.terminal_simulator
    assert sim is not None
    assert [r.reversed for r in sim.log if r.kind == "payment"] == [True]
    assert not services.payments_paused
    assert services.history.payment(pid).stands is False  # type: ignore[union-attr]


async def test_recovery_records_a_decline(services: KioskServices) -> None:
    pid = await _orphan_intent(services, 48_730)
    sim = services.terminal_simulator
    assert sim is not None
    assert services.terminal is not None
    sim.script(Outcome.DECLINED)
    await services.terminal.pay(48_730)
    await services.recover()
    results = await _bodies(services, "payment-result")
    assert [(r["payment_id"], r["outcome"], r["resolved_by"]) for r in results] == [
        (pid, "declined", "recovery")
    ]


async def test_recovery_not_booked_is_failed_without_money(services: KioskServices) -> None:
    pid = await _orphan_intent(services, 48_730)
    await services.recover()
    results = await _bodies(services, "payment-result")
    assert [(r["payment_id"], r["outcome"], r["reason"]) for r in results] == [
        (pid, "failed", "not-booked")
    ]
    assert services.staff_status().stored_payments == 0


async def test_recovery_does_not_claim_another_amount(services: KioskServices) -> None:
    await _orphan_intent(services, 48_730)
    assert services.terminal is not None
    await services.terminal.pay(10_000)  # someone else's transaction on the terminal
    await services.recover()
    results = await _bodies(services, "payment-result")
    assert [(r["outcome"], r["reason"]) for r in results] == [
        ("failed", "terminal-last-transaction-differs")
    ]
    assert "unattributed" in services.alarms


async def test_pending_reversal_is_finished_at_start_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = KioskServices(settings, clock=lambda: FROZEN_NOW, terminal_timeouts=TEST_TIMEOUTS)
    await first.start()
    try:
        report = await first.pay(_order(), lang="ru", on_update=lambda u: None)
        assert report.phase is PaymentPhase.APPROVED
        assert first.journal is not None
        # The reversal was asked for, then the kiosk died before sending it.
        await first.journal.append(
            KIND_DEVICE_EVENT,
            {"event": "payment-reversal-requested", "payment_id": report.payment_id},
        )
        sim = first.terminal_simulator
        assert sim is not None
        # Restart against the same terminal: reuse its handle by serving the same simulator.
        second = KioskServices(settings, clock=lambda: FROZEN_NOW, terminal_timeouts=TEST_TIMEOUTS)
        second.terminal_handle = first.terminal_handle
        await first.journal.close()
        first.journal = None
        await second.start()
        try:
            reversals = await _bodies(second, "reversal")
            assert [r["payment_id"] for r in reversals] == [report.payment_id]
            assert [r.reversed for r in sim.log if r.kind == "payment"] == [True]
        finally:
            second.terminal_handle = None
            await second.close()
    finally:
        await first.close()


async def test_terminal_unreachable_refuses_payment_and_alarms(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={
            "devices": settings.devices.model_copy(
                update={
                    "payment_terminal": settings.devices.payment_terminal.model_copy(
                        update={"driver": "zvt", "url": "tcp://127.0.0.1:9"}
                    )
                }
            )
        }
    )
    svc = KioskServices(settings, terminal_timeouts=TEST_TIMEOUTS)
    await svc.start()
    try:
        assert "terminal_down" in svc.alarms
        updates: list[PaymentUpdate] = []
        report = await svc.pay(_order(), lang="ru", on_update=updates.append)
        assert report.phase is PaymentPhase.REFUSED
        assert report.message_key == "payment.terminal_down"
        assert await _bodies(svc, "payment-intent") == []  # nothing written, nothing asked
    finally:
        await svc.close()


async def test_journal_unavailable_refuses_payments(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.journal_path.write_bytes(b"this is not a journal" * 100)
    svc = KioskServices(settings, terminal_timeouts=TEST_TIMEOUTS)
    await svc.start()
    try:
        assert svc.journal is None
        assert svc.payments_paused
        report = await svc.pay(_order(), lang="ru", on_update=lambda u: None)
        assert report.phase is PaymentPhase.REFUSED
        assert report.message_key == "payment.journal_down"
    finally:
        await svc.close()


async def test_missing_catalog_is_unavailable_then_found_when_it_arrives(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    path = catalog_path(settings)
    hidden = path.with_name("hidden.db")
    path.rename(hidden)
    svc = KioskServices(settings, terminal_timeouts=TEST_TIMEOUTS)
    await svc.start()
    try:
        ident = AccountIdentified(source="keypad", reference=VirtualNumberRef(number=IVANOVA))
        assert (await svc.lookup(ident)).failure == "unavailable"
        hidden.rename(path)  # the sync agent delivered it
        result = await svc.lookup(ident)
        assert result.session is not None
        assert result.session.virtual_number == IVANOVA
    finally:
        await svc.close()


async def test_card_lookup_by_hash_and_unknown_hash(services: KioskServices) -> None:
    from central_sync.catalog.generator import DEMO_CARD_HASH_KEY, uid_card_hash

    known = uid_card_hash("04A1B2C3D4E580", DEMO_CARD_HASH_KEY)
    found = await services.lookup(
        AccountIdentified(source="card", reference=CardHashRef(card_hash=known))
    )
    assert found.session is not None
    assert found.session.virtual_number == IVANOVA
    missing = await services.lookup(
        AccountIdentified(source="card", reference=CardHashRef(card_hash="ab" * 32))
    )
    assert missing.failure == "unknown"


async def test_simulated_card_arrives_through_the_hub(services: KioskServices) -> None:
    assert services.simulate_card("04A1B2C3D4E580")
    listener = services.listener
    assert isinstance(listener, Listener)
    for _ in range(100):
        if listener.events:
            break
        await asyncio.sleep(0.01)
    assert isinstance(listener.events[0], AccountIdentified)
    assert isinstance(listener.events[0].reference, CardHashRef)


async def test_online_status_follows_central_reachability(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = make_settings(tmp_path)
    reachable = settings.model_copy(
        update={"central": settings.central.model_copy(update={"url": f"http://127.0.0.1:{port}"})}
    )
    svc = KioskServices(reachable)
    assert await svc.check_online() is True
    server.close()
    await server.wait_closed()
    assert await svc.check_online() is False
    assert await KioskServices(settings).check_online() is None


def test_device_choice_refuses_unknown_backends() -> None:
    with pytest.raises(DeviceError):
        DeviceChoice(printer="laser")
    kinds = {b.kind for b in BACKENDS}
    assert kinds == {"payment_terminal", "printer", "card_reader", "scanner"}
    for kind in kinds:
        assert "simulator" in {b.name for b in BACKENDS if b.kind == kind}


async def test_journal_of_another_process_is_consistent(services: KioskServices) -> None:
    report = await services.pay(_order(), lang="en", on_update=lambda u: None)
    assert report.phase is PaymentPhase.APPROVED
    receipt = services.receipt(report, "en")
    assert receipt.total_minor == 48_730
    assert receipt.items[0].service == "Cold water"
    assert services.journal is not None
    verify = await services.journal.verify()
    assert verify.ok
    # Another reader (the sync agent) sees the same two entries.
    other = await Journal.open(services.settings.journal_path)
    try:
        assert [e.kind for e in await other.read(1, 10)] == ["payment-intent", "payment-result"]
    finally:
        await other.close()


async def test_online_status_follows_the_sync_agents_status_file(tmp_path: Path) -> None:
    import time

    from central_sync.agent.state import STATE_FILE_NAME, AgentState, Problem, save_state

    base = make_settings(tmp_path)
    # Central's address answers nothing: only the agent's status can say "online".
    settings = base.model_copy(
        update={"central": base.central.model_copy(update={"url": "http://127.0.0.1:9"})}
    )
    path = settings.terminal.data_dir / STATE_FILE_NAME
    svc = KioskServices(settings)
    now_ms = int(time.time() * 1000)
    save_state(path, AgentState(terminal_id="T1", updated_ms=now_ms, last_heartbeat_ms=now_ms))
    assert await svc.check_online() is True
    failing = AgentState(
        terminal_id="T1",
        updated_ms=now_ms,
        last_heartbeat_ms=now_ms - 1000,
        consecutive_failures=3,
        last_error=Problem(reason="timeout", message="no answer", at_ms=now_ms),
    )
    save_state(path, failing)
    assert await svc.check_online() is False
    # A status file nobody updates any more (agent stopped): the kiosk checks itself.
    stale = AgentState(terminal_id="T1", updated_ms=now_ms - 10**9, last_heartbeat_ms=now_ms)
    save_state(path, stale)
    assert await svc.check_online() is False
    path.write_text("garbage", encoding="utf-8")
    assert svc.agent_state() is None


async def test_expired_catalog_raises_a_staff_alarm(tmp_path: Path) -> None:
    import time

    from tests.kiosk.support import write_catalog

    settings = make_settings(tmp_path)
    path = catalog_path(settings)
    path.unlink()
    # Published long ago; the release itself expired since (freeze protection).
    write_catalog(path, published_at_ms=int(time.time() * 1000) - 3_600_000, expires_in_ms=1)
    svc = KioskServices(settings, terminal_timeouts=TEST_TIMEOUTS)
    await svc.start()
    try:
        await asyncio.sleep(0.01)
        status = await svc.refresh_status()
        assert "catalog_stale" in status.alarms
        ident = AccountIdentified(source="keypad", reference=VirtualNumberRef(number=IVANOVA))
        assert (await svc.lookup(ident)).session is not None  # residents are still served
    finally:
        await svc.close()
