"""The payment index: rebuilt from the journal, registry days, offline registry reads."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

from central_sync.journal import Journal, PaymentIntent, PaymentResult
from gateway.index import GatewayIndex, day_of, read_registry
from gateway.service import PaymentService
from tests.gateway.conftest import MakeGateway
from tests.gateway.support import ACCOUNT

MSK = "Europe/Moscow"


def _intent(txn: str, amount: int = 1000, agent: str = "bank") -> PaymentIntent:
    return PaymentIntent(
        payment_id=f"gw-{agent}-{txn}",
        amount_minor=amount,
        currency="RUB",
        account=ACCOUNT,
        channel="gateway",
        extra={
            "agent": agent,
            "txn_id": txn,
            "protocol": "osmp",
            "txn_date": "2025-06-01T12:00:00",
        },
    )


async def _journal_with(path: Path, txns: list[str], clock_ms: int) -> None:
    journal = await Journal.open(path, clock_ms=lambda: clock_ms)
    try:
        for txn in txns:
            await journal.record_payment_intent(_intent(txn))
            await journal.record_payment_result(
                PaymentResult(payment_id=f"gw-bank-{txn}", outcome="approved")
            )
        # A kiosk payment is not the gateway's.
        await journal.record_payment_intent(
            PaymentIntent(
                payment_id="kiosk-00000001",
                amount_minor=5,
                currency="RUB",
                account=ACCOUNT,
                channel="kiosk",
            )
        )
    finally:
        await journal.close()


def test_registry_day_follows_the_time_zone() -> None:
    # 2025-06-01 22:30 UTC is already 2 June in Moscow.
    ts = int(dt.datetime(2025, 6, 1, 22, 30, tzinfo=dt.UTC).timestamp() * 1000)
    assert day_of(ts, zoneinfo.ZoneInfo(MSK)) == "2025-06-02"
    assert day_of(ts, zoneinfo.ZoneInfo("UTC")) == "2025-06-01"


async def test_catch_up_rebuilds_a_lost_index_from_the_journal(tmp_path: Path) -> None:
    ts = int(dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC).timestamp() * 1000)
    await _journal_with(tmp_path / "journal.db", ["1", "2", "3"], ts)
    journal = await Journal.open(tmp_path / "journal.db")
    index = await GatewayIndex.open(tmp_path / "index.db", timezone=MSK)
    try:
        assert await index.catch_up(journal) == 3
        assert [r.txn_id for r in index.registry("bank", "2025-06-01")] == ["1", "2", "3"]
        assert index.watermark() == 7
        assert await index.catch_up(journal) == 0  # nothing after the watermark
    finally:
        await index.close()
        await journal.close()


async def test_index_of_another_journal_is_rebuilt(tmp_path: Path) -> None:
    ts = int(dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC).timestamp() * 1000)
    await _journal_with(tmp_path / "a.db", ["1", "2"], ts)
    await _journal_with(tmp_path / "b.db", ["8", "9"], ts)
    index = await GatewayIndex.open(tmp_path / "index.db", timezone=MSK)
    try:
        for name in ("a.db", "b.db"):
            journal = await Journal.open(tmp_path / name)
            try:
                await index.catch_up(journal)
            finally:
                await journal.close()
        assert [r.txn_id for r in index.registry("bank", "2025-06-01")] == ["8", "9"]
    finally:
        await index.close()


async def test_changing_the_time_zone_recomputes_registry_days(tmp_path: Path) -> None:
    ts = int(dt.datetime(2025, 6, 1, 22, 30, tzinfo=dt.UTC).timestamp() * 1000)
    await _journal_with(tmp_path / "journal.db", ["1"], ts)
    journal = await Journal.open(tmp_path / "journal.db")
    try:
        index = await GatewayIndex.open(tmp_path / "index.db", timezone=MSK)
        await index.catch_up(journal)
        await index.close()
        index = await GatewayIndex.open(tmp_path / "index.db", timezone="UTC")
        try:
            assert len(index.registry("bank", "2025-06-01")) == 1
            assert index.registry("bank", "2025-06-02") == []
        finally:
            await index.close()
    finally:
        await journal.close()


async def test_read_registry_offline_includes_journal_entries_after_the_watermark(
    tmp_path: Path,
) -> None:
    ts = int(dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC).timestamp() * 1000)
    await _journal_with(tmp_path / "journal.db", ["1", "2"], ts)
    journal = await Journal.open(tmp_path / "journal.db")
    index = await GatewayIndex.open(tmp_path / "index.db", timezone=MSK)
    await index.catch_up(journal)
    await index.close()
    await journal.close()
    await _journal_with(tmp_path / "journal.db", ["3"], ts)  # written while no gateway ran
    records = await read_registry(
        index_path=tmp_path / "index.db",
        journal_path=tmp_path / "journal.db",
        timezone=MSK,
        agent="bank",
        day="2025-06-01",
    )
    assert [r.txn_id for r in records] == ["1", "2", "3"]
    assert (
        await read_registry(
            index_path=tmp_path / "none.db",
            journal_path=tmp_path / "none-journal.db",
            timezone=MSK,
            agent="bank",
            day="2025-06-01",
        )
        == []
    )


async def test_start_completes_gateway_intents_left_without_a_result(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "journal.db")
    await journal.record_payment_intent(_intent("55"))
    index = await GatewayIndex.open(tmp_path / "index.db", timezone=MSK)
    service = PaymentService(
        journal=journal,
        index=index,
        catalog_path=tmp_path / "catalog.db",
        catalog_age_max_s=3600,
        clock_ms=lambda: 0,
    )
    try:
        await service.start()
        assert await journal.outcome_unknown() == []
        assert (await journal.find_payment("gw-bank-55"))["payment-result"].body["outcome"] == (
            "approved"
        )
        assert index.get("gw-bank-55") is not None
    finally:
        await service.close()
        await index.close()
        await journal.close()


async def test_watermark_advances_only_when_no_payment_is_in_flight(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    await gw.osmp(gw.pay_params())
    assert await gw.service.drain(5.0)
    assert await gw.service.advance_watermark()
    head, _ = await gw.journal.head()
    assert gw.service.index.watermark() == head
