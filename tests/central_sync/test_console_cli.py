"""`lobbypay central user add | list | disable | enable` as a real process, and password hashes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from central_sync.central.sqlite import SqliteStorage
from central_sync.console.accounts import list_users, login
from central_sync.console.errors import LoginFailedError
from central_sync.console.passwords import (
    DUMMY_HASH,
    PASSWORD_CHARS_MIN,
    hash_password,
    verify_password,
)
from central_sync.console.settings import ConsoleSettings
from tests.central_sync.central_support import LOBBYPAY, NOW_MS

PASSWORD = "a long enough passphrase"


def central_user(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOBBYPAY, "central", "user", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_user_add_stores_only_a_scrypt_hash_and_lists_the_user(tmp_path: Path) -> None:
    done = central_user(
        tmp_path, "add", "ivan.petrov", "--role", "supervisor", "--password-stdin", stdin=PASSWORD
    )
    assert done.returncode == 0, done.stderr
    assert "console user ivan.petrov added (supervisor)" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    raw = (tmp_path / "central.db").read_bytes()
    assert PASSWORD.encode() not in raw
    assert b"scrypt$14$8$1$" in raw
    listed = central_user(tmp_path, "list")
    assert "ivan.petrov" in listed.stdout
    assert "supervisor" in listed.stdout


def test_user_add_twice_or_with_a_short_password_exits_2_and_changes_nothing(
    tmp_path: Path,
) -> None:
    args = ("add", "olga", "--role", "operator", "--password-stdin")
    assert central_user(tmp_path, *args, stdin=PASSWORD).returncode == 0
    again = central_user(tmp_path, *args, stdin=PASSWORD)
    assert again.returncode == 2
    assert "exists already" in again.stderr
    short = central_user(
        tmp_path, "add", "petr", "--role", "auditor", "--password-stdin", stdin="short"
    )
    assert short.returncode == 2
    assert f"at least {PASSWORD_CHARS_MIN} characters" in short.stderr
    bad_name = central_user(
        tmp_path, "add", "Bad Name", "--role", "auditor", "--password-stdin", stdin=PASSWORD
    )
    assert bad_name.returncode == 2
    listed = central_user(tmp_path, "list").stdout
    assert "petr" not in listed
    assert "Bad Name" not in listed


def test_user_add_refuses_an_unknown_role(tmp_path: Path) -> None:
    done = central_user(tmp_path, "add", "x.y", "--role", "admin", "--password-stdin", stdin="")
    assert done.returncode == 2
    assert "invalid choice: 'admin'" in done.stderr


async def test_disabled_user_cannot_log_in_and_enabled_again_can(tmp_path: Path) -> None:
    central_user(tmp_path, "add", "olga", "--role", "operator", "--password-stdin", stdin=PASSWORD)
    assert central_user(tmp_path, "disable", "olga").returncode == 0
    settings = ConsoleSettings()
    async with SqliteStorage(tmp_path / "central.db") as storage:
        assert [u.disabled_ms is not None for u in await list_users(storage)] == [True]
        with pytest.raises(LoginFailedError):
            await login(storage, "olga", PASSWORD, remote="t", settings=settings, now_ms=NOW_MS)
    assert central_user(tmp_path, "enable", "olga").returncode == 0
    async with SqliteStorage(tmp_path / "central.db") as storage:
        _, session = await login(
            storage, "olga", PASSWORD, remote="t", settings=settings, now_ms=NOW_MS
        )
        assert session.user.name == "olga"
    missing = central_user(tmp_path, "disable", "nobody")
    assert missing.returncode == 2


def test_password_hash_verifies_only_the_right_password() -> None:
    stored = hash_password(PASSWORD)
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "x", stored)
    assert hash_password(PASSWORD) != stored  # a new salt every time


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "md5$abc",
        "scrypt$40$8$1$AAAA$AAAA",  # a cost that would exhaust memory
        "scrypt$14$8$1$!!!$AAAA",
        "scrypt$x$8$1$AAAA$AAAA",
        DUMMY_HASH,
    ],
)
def test_malformed_or_dummy_hash_never_verifies(stored: str) -> None:
    assert not verify_password(PASSWORD, stored)
