"""Journal faults on a real full filesystem (a small tmpfs mounted by the test)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from central_sync.journal import (
    Entry,
    Journal,
    JournalUnavailableError,
    JournalWriteError,
    PaymentIntent,
)


def _can_mount() -> bool:
    return os.geteuid() == 0


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 768 KiB tmpfs: a disk that really fills up (ENOSPC)."""
    if not _can_mount():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the full-disk test as root")
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=768k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_full_disk_refuses_payments_and_loses_nothing_returned(small_fs: Path) -> None:
    path = small_fs / "journal.db"
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * 384 * 1024)
    stored: list[Entry] = []
    failure: JournalWriteError | None = None
    async with await Journal.open(path) as j:
        for n in range(2000):  # bounded: the disk is full long before this
            payment = PaymentIntent(
                payment_id=f"pay-{n:08d}",
                amount_minor=100 + n,
                currency="RUB",
                account="1000000017",
                channel="gateway",
                extra={"note": "x" * 2000},
            )
            try:
                stored.append(await j.record_payment_intent(payment))
            except JournalWriteError as exc:
                failure = exc
                break
        assert failure is not None, "the disk never filled"
        assert "full" in str(failure).lower() or "disk" in str(failure).lower()
        with pytest.raises(JournalUnavailableError):
            await j.record_payment_intent(payment)
        assert (await j.head())[0] == len(stored)
        # Space comes back; the technician restarts the service (recover).
        filler.unlink()
        await j.recover()
        again = await j.record_payment_intent(payment)
        assert again.seq == len(stored) + 1
    async with await Journal.open(path) as j:
        assert (await j.verify()).ok
        on_disk = await j.read(1, len(stored) + 10)
        assert on_disk[: len(stored)] == stored
        assert len({e.body["payment_id"] for e in on_disk}) == len(on_disk)
