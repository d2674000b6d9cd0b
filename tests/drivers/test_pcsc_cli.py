"""``lobbypay card watch|read`` against the private pcscd with virtual cards."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from firmware_config.dispatch import main
from tests.drivers.vcard.cards import (
    ATR_CONTACT_T0,
    ProfileCard,
    UidCard,
    VirtualCard,
    resident_record,
)
from tests.drivers.vcard.fixtures import VirtualCards
from tests.drivers.vcard.pcscd import PcscDaemon

UID = bytes.fromhex("04A1B2C3D4E5F6")
LOBBYPAY = [sys.executable, "-m", "firmware_config.dispatch"]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["card", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_card_read_json_prints_masked_uid(
    vcards: VirtualCards, capsys: pytest.CaptureFixture[str]
) -> None:
    vcards.insert(UidCard(UID))
    code, out, _err = run_cli(capsys, "read", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload == {
        "reader": vcards.reader(0),
        "atr": UidCard(UID).atr.hex().upper(),
        "kind": "uid",
        "uid_masked": "04A1..(7 bytes)",
        "uid_bytes": 7,
    }
    assert UID.hex().upper() not in out


def test_card_read_json_prints_the_resident_record(
    vcards: VirtualCards, capsys: pytest.CaptureFixture[str]
) -> None:
    vcards.insert(ProfileCard(resident_record()), slot=1)
    code, out, _err = run_cli(capsys, "read", "--json", "--reader", vcards.reader(1))
    assert code == 0
    payload = json.loads(out)
    assert payload["kind"] == "resident_record"
    assert payload["account"] == "1234567890"
    assert payload["card_serial"] == "SN-0001"
    assert payload["deployment_id"] == "kazan-01"


def test_card_read_text_output(vcards: VirtualCards, capsys: pytest.CaptureFixture[str]) -> None:
    vcards.insert(UidCard(UID))
    code, out, _err = run_cli(capsys, "read")
    assert code == 0
    assert f"reader: {vcards.reader(0)}" in out
    assert "uid_masked: 04A1..(7 bytes)" in out


def test_card_read_without_card_exits_2(
    pcscd: PcscDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "read", "--timeout-s", "0.5")
    assert code == 2
    assert out == ""
    assert "No card presented" in err


def test_card_read_unrecognised_card_exits_2_in_russian(
    vcards: VirtualCards, capsys: pytest.CaptureFixture[str]
) -> None:
    vcards.insert(VirtualCard(ATR_CONTACT_T0))
    code, _out, err = run_cli(capsys, "read", "--lang", "ru")
    assert code == 2
    assert "Карта не распознана" in err


def test_card_read_unknown_reader_exits_2(
    pcscd: PcscDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run_cli(capsys, "read", "--reader", "Nope 00 00", "--timeout-s", "0.3")
    assert code == 2
    assert "reader not found" in err


def test_card_read_without_pcscd_exits_2(
    pcscd: PcscDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    pcscd.stop()
    code, _out, err = run_cli(capsys, "read", "--timeout-s", "0.3")
    assert code == 2
    assert "Card reader unavailable" in err


def test_card_read_bad_timeout_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["card", "read", "--timeout-s", "-1"])
    assert info.value.code == 2


@pytest.mark.parametrize("args", [["card"], ["card", "watch"], ["card", "read"]])
def test_every_card_command_has_help(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*args, "--help"])
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_card_without_subcommand_prints_usage_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["card"]) == 2
    assert "watch" in capsys.readouterr().err


def test_card_watch_prints_readers_insertions_and_removals(vcards: VirtualCards) -> None:
    process = subprocess.Popen(
        [*LOBBYPAY, "card", "watch", "--duration-s", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        connection = vcards.insert(UidCard(UID))
        time.sleep(0.3)
        vcards.remove(connection)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    lines = out.splitlines()
    reader = vcards.reader(0)
    assert lines[:2] == [f"ReaderAdded reader={name!r}" for name in vcards.daemon.reader_names]
    assert f"CardInserted reader={reader!r} uid:04A1..(7 bytes)" in lines
    assert f"CardRemoved reader={reader!r}" in lines
    assert UID.hex().upper() not in out + err


def test_card_watch_without_readers_exits_2(
    pcscd: PcscDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    pcscd.stop()
    code, out, err = run_cli(capsys, "watch", "--duration-s", "0.5")
    assert code == 2
    assert out == ""
    assert "no card reader found" in err


def test_sans_io_modules_and_cli_import_no_pyscard() -> None:
    code = (
        "import sys\n"
        "import drivers.pcsc, drivers.pcsc.cli, drivers.pcsc.simulator, drivers.pcsc.stream\n"
        "assert 'smartcard' not in sys.modules, 'pyscard imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
