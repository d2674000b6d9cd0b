"""`lobbypay central ...`: init, codes, revoke, import-billing, export, serve (real process)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import aiohttp
import pytest

from central_sync import protocol
from central_sync.central.admin import code_hash
from central_sync.central.ingest import Ingestor
from central_sync.central.publish import load_central_key
from central_sync.central.sqlite import SqliteStorage
from central_sync.central.synthetic import chain, synthetic_entries
from firmware_config.dispatch import main
from tests.central_sync.central_support import Key, batch, enroll, start_server, stop_server

BILLING_HEADER = (
    "account,holder,city,street,house,flat,service_code,service_name_ru,provider_id,"
    "provider_name_ru,provider_inn,debt,period\n"
)


def billing_row(account: str, debt: str) -> str:
    return (
        f"{account},Иванова Анна Петровна,Барнаул,Ленина,5,12,HW,Горячее водоснабжение,"
        f"brn-water,МУП Водоканал,7707083893,{debt},2025-05\n"
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["central", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, _ = run(capsys, "init", "--data-dir", str(tmp_path))
    assert code == 0
    assert "public key (pin on every terminal):" in out
    return tmp_path


def test_init_twice_keeps_the_key(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = load_central_key(data_dir / "central.key").public_key_hex
    code, out, _ = run(capsys, "init", "--data-dir", str(data_dir))
    assert code == 0
    assert "(kept)" in out
    assert first in out
    assert "0001_ledger" in out


def test_registration_code_is_printed_and_only_its_hash_stored(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "registration-code", "--data-dir", str(data_dir), "--location", "brn-lenina-5"
    )
    assert code == 0
    printed = out.strip()
    assert len(printed) == 19
    assert "single use" in err
    raw = (data_dir / "central.db").read_bytes()
    assert printed.encode() not in raw
    assert code_hash(printed).encode() in raw


def test_revoke_unknown_terminal_exits_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "revoke", "--data-dir", str(data_dir), "TNOSUCHTERMINAL00")
    assert code == 2
    assert "no terminal" in err


def test_revoke_enrolled_terminal(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = Key()

    async def setup() -> None:
        async with SqliteStorage(data_dir / "central.db") as storage:
            await enroll(storage, key)

    asyncio.run(setup())
    code, out, _ = run(
        capsys, "revoke", "--data-dir", str(data_dir), key.terminal_id, "--reason", "stolen"
    )
    assert (code, out.strip()) == (0, f"{key.terminal_id} revoked (stolen)")
    code, out, _ = run(capsys, "terminals", "--data-dir", str(data_dir))
    assert code == 0
    assert key.terminal_id in out
    assert "revoked" in out


def test_import_billing_publishes_a_snapshot_then_a_delta(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from central_sync.catalog.publish import read_release_info

    billing = data_dir / "billing.csv"
    billing.write_text(
        BILLING_HEADER + billing_row("1000200030", "1234.56") + billing_row("1000200031", "0"),
        encoding="utf-8",
    )
    code, out, err = run(capsys, "import-billing", "--data-dir", str(data_dir), str(billing))
    assert code == 0, err
    assert "catalog version 1: 2 accounts" in out
    assert "no delta" in out
    billing.write_text(
        BILLING_HEADER + billing_row("1000200030", "99.00") + billing_row("1000200031", "0"),
        encoding="utf-8",
    )
    code, out, err = run(capsys, "import-billing", "--data-dir", str(data_dir), str(billing))
    assert code == 0, err
    assert "catalog version 2" in out
    assert "delta" in out
    assert "no delta" not in out
    central = load_central_key(data_dir / "central.key").public_key_bytes

    async def releases() -> list[tuple[int, str, bytes] | None]:
        async with SqliteStorage(data_dir / "central.db") as storage:
            return [await storage.catalog_release_for(since) for since in (0, 1, 2)]

    full, delta, current = asyncio.run(releases())
    assert full is not None
    assert delta is not None
    assert current is None
    assert (full[0], full[1], delta[0], delta[1]) == (2, "snapshot", 2, "delta")
    info = read_release_info(full[2], central_public_key=central)
    assert info.kind == "snapshot"
    assert read_release_info(delta[2], central_public_key=central).base_version == 1
    assert (info.version, info.accounts) == (2, 2)


def test_import_billing_reports_every_bad_row_by_line_and_exits_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    billing = data_dir / "bad.csv"
    billing.write_text(
        BILLING_HEADER
        + billing_row("1000200030", "12.345")
        + billing_row("1000200031", "10.00")
        + billing_row("12", "1.00"),
        encoding="utf-8",
    )
    code, _, err = run(capsys, "import-billing", "--data-dir", str(data_dir), str(billing))
    assert code == 2
    assert "line 2" in err
    assert "line 4" in err
    assert "nothing was published" in err

    async def version() -> int:
        async with SqliteStorage(data_dir / "central.db") as storage:
            return await storage.latest_catalog_version()

    assert asyncio.run(version()) == 0


def test_export_payments_and_meter_readings(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Key()
    identity = load_central_key(data_dir / "central.key")
    entries = synthetic_entries(1, 6, meter_every=3)

    async def setup() -> None:
        async with SqliteStorage(data_dir / "central.db") as storage:
            await enroll(storage, key)
            result = await Ingestor(storage, signer=identity).ingest(batch(entries, key))
            assert result.ack is not None

    asyncio.run(setup())
    # synthetic entries start on 2025-01-01 UTC
    args = ["export", "--data-dir", str(data_dir), "--from", "2025-01-01", "--to", "2025-01-01"]
    code, out, _ = run(capsys, *args)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6
    intents = [e for e in entries if e.kind == "payment-intent"]
    assert [int(r["amount_minor"]) for r in rows] == [e.body["amount_minor"] for e in intents]
    assert {r["outcome"] for r in rows} == {"approved"}
    assert [json.loads(r["services"]) for r in rows] == [e.body["services"] for e in intents]
    code, out, _ = run(capsys, *args, "--format", "json", "--kind", "meter-readings")
    assert code == 0
    document = json.loads(out)
    assert document["count"] == 2
    assert document["rows"][0]["terminal_id"] == key.terminal_id
    code, out, _ = run(capsys, *args[:3], "--from", "2024-12-30", "--to", "2024-12-31")
    assert code == 0
    assert out.count("\n") == 1  # the header only
    code, _, err = run(capsys, *args[:3], "--from", "2025-13-01", "--to", "2025-01-01")
    assert code == 2
    assert "YYYY-MM-DD" in err


def test_settings_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "terminals", "--data-dir", str(tmp_path), "--db", "mysql://x")
    assert code == 2
    assert "database_url" in err


def test_every_central_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for sub in (
        "init",
        "serve",
        "registration-code",
        "revoke",
        "terminals",
        "import-billing",
        "export",
    ):
        with pytest.raises(SystemExit) as exc:
            main(["central", sub, "--help"])
        assert exc.value.code == 0
        assert "usage: lobbypay central" in capsys.readouterr().out


def test_serve_real_process_accepts_a_batch_and_stops_on_sigterm(data_dir: Path) -> None:
    key = Key()
    central = load_central_key(data_dir / "central.key").public_key_bytes

    async def setup() -> None:
        async with SqliteStorage(data_dir / "central.db") as storage:
            await enroll(storage, key)

    asyncio.run(setup())
    process, url = start_server(data_dir)
    try:
        entries = chain(iter([("device-event", {"event": "boot"})]))

        async def upload() -> protocol.Ack | protocol.Refusal:
            timeout = aiohttp.ClientTimeout(total=20)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(f"{url}/v1/batches", data=batch(entries, key)) as resp,
            ):
                assert resp.status == 200
                return protocol.parse_answer(
                    await resp.read(), central_public_key=central, terminal_id=key.terminal_id
                )

        answer = asyncio.run(upload())
        assert isinstance(answer, protocol.Ack)
        assert answer.acked_seq == 1
    finally:
        assert stop_server(process) == 0
