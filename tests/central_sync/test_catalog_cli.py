"""`lobbypay catalog ...`: status, show, apply, inspect, check-billing, generate."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.catalog import generator, publish
from central_sync.catalog.cli import add_catalog_parser
from central_sync.catalog.store import CatalogStore

DAY_MS = 24 * 3600 * 1000


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lobbypay")
    add_catalog_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["catalog", *argv])
    code: int = args.func(args)
    return code


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_ALL", "C.UTF-8")


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def _release(tmp_path: Path, key: Ed25519PrivateKey, *, expires_in_ms: int = DAY_MS) -> Path:
    now = time.time_ns() // 1_000_000
    path = tmp_path / "v1.release"
    path.write_bytes(
        publish.build_snapshot(
            generator.demo_catalog(),
            1,
            key,
            published_at_ms=now - 1000,
            expires_at_ms=now + expires_in_ms,
        )
    )
    return path


@pytest.mark.parametrize(
    "argv", [[], ["status"], ["show"], ["apply"], ["inspect"], ["check-billing"], ["generate"]]
)
def test_every_subcommand_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _run(*argv, "--help")
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_status_of_a_missing_catalog_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("status", "--catalog", str(tmp_path / "none.db")) == 2
    assert "no catalog" in capsys.readouterr().err


def test_apply_then_status_and_show(
    tmp_path: Path, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "catalog.db")
    release = _release(tmp_path, key)
    assert _run("apply", str(release), "--catalog", db, "--central-key", _hex(key)) == 0
    assert "version 1" in capsys.readouterr().out
    assert _run("status", "--catalog", db, "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["version"], status["accounts"], status["stale"]) == (1, 64, False)
    assert _run("show", "1000000008", "--catalog", db, "--lang", "en") == 0
    out = capsys.readouterr().out
    assert "Ivanova A. P." in out
    assert "Barnaul, ul. Malakhova, 86, apt. 34" in out
    assert "3 818.67 RUB" in out
    assert _run("show", "1000000008", "--catalog", db, "--lang", "ru") == 0
    assert "Иванова А. П." in capsys.readouterr().out
    card = generator.uid_card_hash("04A1B2C3D4E580", generator.DEMO_CARD_HASH_KEY)
    assert _run("show", card, "--card", "--catalog", db) == 0
    assert "1000000008" in capsys.readouterr().out
    assert _run("show", "9999999999", "--catalog", db) == 2


def test_apply_of_a_release_signed_by_another_key_is_refused_and_changes_nothing(
    tmp_path: Path, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "catalog.db"
    release = _release(tmp_path, key)
    other = Ed25519PrivateKey.generate()
    assert _run("apply", str(release), "--catalog", str(db), "--central-key", _hex(other)) == 2
    assert "bad-signature" in capsys.readouterr().err
    with CatalogStore.open(db, readonly=True) as store:
        assert store.version() == 0
    assert _run("apply", str(release), "--catalog", str(db), "--central-key", "12") == 2


def test_status_of_an_expired_catalog_is_a_problem(
    tmp_path: Path, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "catalog.db")
    release = _release(tmp_path, key, expires_in_ms=1500)
    assert _run("apply", str(release), "--catalog", db, "--central-key", _hex(key)) == 0
    time.sleep(1.6)
    assert _run("status", "--catalog", db) == 2
    assert "EXPIRED" in capsys.readouterr().out


def test_inspect_shows_the_manifest(
    tmp_path: Path, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    release = _release(tmp_path, key)
    assert _run("inspect", str(release), "--central-key", _hex(key)) == 0
    out = capsys.readouterr().out
    assert "snapshot version 1" in out
    assert "accounts 64" in out
    release.write_bytes(release.read_bytes()[:-1])
    assert _run("inspect", str(release), "--central-key", _hex(key)) == 0  # manifest only
    assert _run("inspect", str(tmp_path / "none"), "--central-key", _hex(key)) == 2


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_generate_then_check_billing(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"billing{suffix}"
    assert _run("generate", str(out), "--accounts", "50", "--seed", "3") == 0
    assert _run("check-billing", str(out)) == 0
    assert "50 accounts" in capsys.readouterr().out


def test_check_billing_lists_every_bad_row_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    assert _run("generate", str(good), "--demo") == 0
    lines = good.read_text(encoding="utf-8").splitlines()
    columns = lines[0].split(";")
    for number, column, value in ((4, "period", "2025-5"), (8, "account", "12")):
        cells = lines[number - 1].split(";")
        cells[columns.index(column)] = value
        lines[number - 1] = ";".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert _run("check-billing", str(bad)) == 2
    out = capsys.readouterr().out
    assert f"{bad}:4: period:" in out
    assert f"{bad}:8: account:" in out


def test_generate_refuses_an_unknown_extension(tmp_path: Path) -> None:
    assert _run("generate", str(tmp_path / "x.txt")) == 2
