"""A resident's payment end to end: kiosk UI -> terminal -> journal -> printed receipt -> central.

Everything real runs: the kiosk app with the ZVT terminal and ESC/POS printer
simulators, the simulated resident card reader, the journal, and then the sync
agent (a second journal connection, as the ``lobbypay sync`` process has)
uploading to a central ledger service listening on 127.0.0.1, enrolled with
this terminal's identity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from central_sync.journal import EntryState, Journal, PaymentIntent
from drivers.escpos.document import QrCode, TextLine
from firmware_config.identity import generate_identity
from kiosk.app import KioskApp
from kiosk.devices import DeviceChoice
from tests.central_sync.agent_helpers import close_transports, make_agent, start_central
from tests.kiosk.pilot import SIZE, TEST_TIMEOUTS, on_screen, started, tap, until
from tests.kiosk.support import IVANOVA, IVANOVA_CARD, make_settings


async def _pay_by_card(pilot: Any, app: KioskApp) -> None:
    assert app.services.simulate_card(IVANOVA_CARD)
    await on_screen(pilot, app, "ServicesScreen")
    await tap(pilot, "#pay")
    await on_screen(pilot, app, "AmountsScreen")
    for code in ("MGMT", "HW", "EL", "CAPR"):  # keep cold water only
        await tap(pilot, f"#sel-{code}")
    await tap(pilot, "#next")
    await on_screen(pilot, app, "SurchargeScreen")
    await tap(pilot, "#accept")
    await on_screen(pilot, app, "ConfirmScreen")
    await tap(pilot, "#pay")
    await on_screen(pilot, app, "ReceiptScreen")
    await until(pilot, lambda: app.screen.outcome is not None)


async def test_resident_pays_by_card_and_central_holds_the_payment(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    central = await start_central(aiohttp_server, tmp_path / "central")
    base = make_settings(tmp_path)
    settings = base.model_copy(
        update={
            "central": base.central.model_copy(
                update={"url": central.url, "public_key": central.public_key.hex()}
            )
        }
    )
    terminal = generate_identity(settings.identity_key_path)
    await central.enroll(terminal)
    app = KioskApp(
        settings,
        devices=DeviceChoice(card_reader="simulator"),
        terminal_timeouts=TEST_TIMEOUTS,
    )
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _pay_by_card(pilot, app)
        assert app.screen.outcome.ok  # type: ignore[attr-defined]
        # The printed receipt.
        printer = app.services.printer_simulator
        assert printer is not None
        lines = [e.text for e in printer.printed if isinstance(e, TextLine)]
        paper = "\n".join(lines)
        assert "Холодное водоснабжение" in paper
        assert "Л/с 1000000008, Период 05.2025" in paper
        assert "ИТОГО" in paper
        assert "492,17" in paper
        assert "220220******0014" in paper
        qrs = [e.data for e in printer.printed if isinstance(e, QrCode)]
        assert len(qrs) == 1
        assert qrs[0].split(b"|")[2] == b"49217"
        # The journal.
        journal = app.services.journal
        assert journal is not None
        entries = await journal.read(1, 100)
        intent = next(e.body for e in entries if e.kind == "payment-intent")
        result = next(e.body for e in entries if e.kind == "payment-result")
        assert intent["account"] == IVANOVA
        assert intent["amount_minor"] == 49_217
        assert intent["identified_by"] == "card"
        assert result["outcome"] == "approved"
        assert result["payment_id"] == intent["payment_id"]
        assert intent["payment_id"] in paper.replace("\n", "")
        assert (await app.services.refresh_status()).stored_payments == 1
        # The sync agent, as its own process would: its own journal connection.
        agent_journal = await Journal.open(settings.journal_path)
        try:
            agent = make_agent(agent_journal, terminal, central)
            report = await agent.flush()
            assert report.complete
            head, _ = await agent_journal.head()
            assert {e.state for e in await agent_journal.read(1, head)} == {EntryState.ACKNOWLEDGED}
        finally:
            await close_transports()
            await agent_journal.close()
        # Central holds the payment, with the terminal's authorization details.
        rows = await central.storage.export_rows("payments", 0, 2**62)
        assert len(rows) == 1
        row = rows[0]
        assert row["payment_id"] == intent["payment_id"]
        assert row["amount_minor"] == 49_217
        assert row["surcharge_minor"] == 487
        assert row["account"] == IVANOVA
        assert row["outcome"] == "approved"
        assert row["masked_pan"] == "220220******0014"
        assert row["rrn"] == result["rrn"]
        # The staff line: nothing stored any more, central reachable.
        status = await app.services.refresh_status()
        assert status.stored_payments == 0
        assert await app.services.check_online() is True


async def test_acknowledged_payments_stop_counting_against_offline_limits(tmp_path: Path) -> None:
    from central_sync.journal import OfflineLimits, PaymentResult

    path = tmp_path / "journal.db"
    kiosk = await Journal.open(path, limits=OfflineLimits(payments_max=1))
    agent = await Journal.open(path)
    try:
        first = PaymentIntent(
            payment_id="kp-first000000000001",
            amount_minor=100,
            currency="RUB",
            account=IVANOVA,
            channel="kiosk-card",
        )
        await kiosk.record_payment_intent(first)
        await kiosk.record_payment_result(
            PaymentResult(payment_id=first.payment_id, outcome="approved")
        )
        head, head_hash = await agent.head()
        await agent.mark_acknowledged(head, head_hash)  # central acknowledged everything
        second = PaymentIntent(
            payment_id="kp-second00000000002",
            amount_minor=100,
            currency="RUB",
            account=IVANOVA,
            channel="kiosk-card",
        )
        await kiosk.record_payment_intent(second)  # one payment unacknowledged: allowed
    finally:
        await agent.close()
        await kiosk.close()
