"""``lobbypay qr decode|encode|simulate-scanner``."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.scanner.cli import add_qr_parser
from drivers.scanner.gost_qr import QrEncoding, decode_payment_qr, encode_payment_qr
from drivers.scanner.samples import sample_bill
from drivers.scanner.serial_scanner import SerialPort

BILL_TEXT = (
    "ST00012|Name=ТСЖ «Берёзка»|PersonalAcc=40703810800000001234|BankName=ПАО СБЕРБАНК|"
    "BIC=044525225|CorrespAcc=30101810400000000225|Sum=12345|persAcc=123456782|"
)
REQUIRED = [
    "--field", "Name=ТСЖ",
    "--field", "PersonalAcc=40703810800000001234",
    "--field", "BankName=Банк",
    "--field", "BIC=044525225",
    "--field", "CorrespAcc=30101810400000000225",
]  # fmt: skip


def run(argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, str]:
    """Run ``lobbypay qr ...`` in-process; returns (exit code, stdout bytes, stderr)."""
    parser = argparse.ArgumentParser(prog="lobbypay")
    add_qr_parser(parser.add_subparsers(dest="command"))
    out, err = io.BytesIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    stdin_wrapper = io.TextIOWrapper(io.BytesIO(stdin))
    stdout_wrapper = io.TextIOWrapper(out, encoding="ascii")  # a C locale must not matter
    sys.stdin, sys.stdout, sys.stderr = stdin_wrapper, stdout_wrapper, err
    try:
        args = parser.parse_args(["qr", *argv])
        code = args.func(args)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        stdout_wrapper.flush()
        stdout_wrapper.detach()
    return code, out.getvalue(), err.getvalue()


def test_decode_stdin_cp1251_prints_cyrillic_json() -> None:
    raw = BILL_TEXT.replace("ST00012", "ST00011").encode("cp1251")
    code, out, _ = run(["decode"], raw + b"\n")
    assert code == 0
    data = json.loads(out.decode("utf-8"))
    assert data["encoding"] == "windows-1251"
    assert data["fields"]["Name"] == "ТСЖ «Берёзка»"
    assert "ТСЖ «Берёзка»".encode() in out  # ensure_ascii=False
    assert data["sum_kopecks"] == 12345
    assert data["account_reference"] == "123456782"


def test_decode_text_option() -> None:
    code, out, _ = run(["decode", "--text", BILL_TEXT])
    assert code == 0
    assert json.loads(out)["header"] == "ST00012"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"hello", "bad_header"),
        (BILL_TEXT.replace("Sum=12345", "Sum=123.45").encode(), "bad_value (field Sum)"),
        (BILL_TEXT.encode("cp1251"), "bad_encoding"),
        (BILL_TEXT.replace("BIC=", "BIC=1|BIC=").encode(), "duplicate_field"),
    ],
)
def test_decode_invalid_payload_exits_2_with_reason_in_both_languages(
    payload: bytes, reason: str
) -> None:
    code, out, err = run(["decode"], payload)
    assert code == 2
    assert out == b""
    assert f"invalid payload: {reason}" in err
    assert "en: " in err
    assert "ru: " in err


def test_decode_oversized_stdin_exits_2() -> None:
    code, _, err = run(["decode", "--payload-bytes-max", "100"], BILL_TEXT.encode() * 5)
    assert code == 2
    assert "payload_too_large" in err


def test_decode_without_check_digits() -> None:
    broken = BILL_TEXT.replace("40703810800000001234", "40703810800000001235")
    assert run(["decode", "--text", broken])[0] == 2
    assert run(["decode", "--text", broken, "--no-check-digits"])[0] == 0


def test_decode_bad_limit_exits_2() -> None:
    assert run(["decode", "--payload-bytes-max", "0", "--text", BILL_TEXT])[0] == 2


@pytest.mark.parametrize("encoding", ["utf-8", "windows-1251", "koi8-r"])
def test_encode_writes_a_payload_that_decodes(encoding: str) -> None:
    code, out, _ = run(["encode", "--encoding", encoding, *REQUIRED, "--field", "Sum=500"])
    assert code == 0
    qr = decode_payment_qr(out)
    assert qr.encoding is QrEncoding.from_label(encoding)
    assert (qr.name, qr.sum_kopecks) == ("ТСЖ", 500)


def test_encode_refuses_an_invalid_bill_unless_told(tmp_path: Path) -> None:
    code, out, err = run(["encode", *REQUIRED, "--field", "Sum=5.00"])
    assert (code, out) == (2, b"")
    assert "bad_value (field Sum)" in err
    target = tmp_path / "bill.bin"
    args = ["encode", *REQUIRED, "--field", "Sum=5.00", "--no-validate", "--output", str(target)]
    assert run(args)[0] == 0
    assert target.read_bytes().endswith(b"|Sum=5.00")


def test_encode_field_without_equals_exits_2() -> None:
    code, _, err = run(["encode", "--field", "Name"])
    assert code == 2
    assert "KEY=VALUE" in err


def test_encode_unwritable_output_exits_1(tmp_path: Path) -> None:
    assert run(["encode", *REQUIRED, "--output", str(tmp_path / "no" / "such")])[0] == 1


def test_qr_without_subcommand_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([])[0] == 2


@pytest.mark.parametrize("sub", [[], ["decode"], ["encode"], ["simulate-scanner"]])
def test_every_subcommand_has_help(sub: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run([*sub, "--help"])
    assert info.value.code == 0


def test_console_script_decodes_from_stdin() -> None:
    raw = encode_payment_qr(sample_bill(QrEncoding.KOI8_R))
    result = subprocess.run(
        [sys.executable, "-m", "firmware_config.dispatch", "qr", "decode"],
        input=raw,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fields"]["lastName"] == "Ёлкина"


def test_simulate_scanner_serves_payloads_on_a_pty() -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "firmware_config.dispatch", "qr", "simulate-scanner", "--pty",
            "--sample", "--encoding", "koi8-r", "--wait-s", "1.5", "--interval-s", "0",
            "--hold-s", "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert first.startswith("scanner pty: /dev/")
        port = SerialPort(first.split(": ", 1)[1].strip(), baudrate=9600, read_timeout_s=0.1)
        port.open()
        try:
            data = b""
            deadline = time.monotonic() + 5
            while not data.endswith(b"\r\n") and time.monotonic() < deadline:
                data += port.read(4096)
        finally:
            port.close()
        assert decode_payment_qr(data).encoding is QrEncoding.KOI8_R
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0
