"""The local catalog store: lookups; readers see the old or the new catalog, never a mix."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import BinaryIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.catalog import generator, publish
from central_sync.catalog import model as m
from central_sync.catalog.errors import CatalogStoreError, CatalogUnavailableError
from central_sync.catalog.store import CatalogStore

T0 = 1_750_000_000_000
DAY_MS = 24 * 3600 * 1000
ACCOUNTS = 1500
REPO = Path(__file__).resolve().parents[2]
WAIT_S = 60.0


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def base() -> m.Catalog:
    return generator.generate_catalog(21, ACCOUNTS, 4)


def _versioned(base: m.Catalog, version: int) -> m.Catalog:
    """The catalog of ``version``: every debt and the default surcharge encode the version.

    A reader that pairs an account of one version with the header of another,
    or sees some accounts of each, notices.
    """
    header = dataclasses.replace(
        base.header,
        surcharge_rules=(m.SurchargeRule(percent_bp=version),),
        limits=(),
    )
    accounts = {
        vn: dataclasses.replace(
            a,
            services=tuple(
                dataclasses.replace(s, debt_minor=version * 1000 + i, instalments=())
                for i, s in enumerate(a.services)
            ),
        )
        for vn, a in base.accounts.items()
    }
    return m.Catalog(header=header, accounts=accounts)


def _release(base: m.Catalog, key: Ed25519PrivateKey, version: int, *, delta: bool) -> bytes:
    new = _versioned(base, version)
    if delta:
        return publish.build_delta(
            _versioned(base, version - 1),
            new,
            version,
            key,
            base_version=version - 1,
            published_at_ms=T0 + version,
            expires_at_ms=T0 + 30 * DAY_MS,
        )
    return publish.build_snapshot(
        new,
        version,
        key,
        published_at_ms=T0 + version,
        expires_at_ms=T0 + 30 * DAY_MS,
        chunk_records=256,
    )


def _apply(store: CatalogStore, data: bytes | BinaryIO, key: Ed25519PrivateKey) -> None:
    publish.apply_release(store, data, central_public_key=_public(key), now_ms=T0 + 1000)


# --------------------------------------------------------------------------- lookups


def test_reader_open_of_a_missing_catalog_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(CatalogUnavailableError):
        CatalogStore.open(tmp_path / "none.db", readonly=True)


def test_new_store_is_empty_version_zero_and_stale(tmp_path: Path) -> None:
    with CatalogStore.open(tmp_path / "c.db") as store:
        assert store.version() == 0
        assert store.accounts_count() == 0
        assert store.is_stale(T0)
        assert store.account("1000000008") is None
        assert store.header() == m.CatalogHeader()
        assert store.age_s(T0) == 0.0


def test_a_file_that_is_not_a_catalog_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogStoreError):
        CatalogStore.open(path)
    with pytest.raises(CatalogStoreError):
        CatalogStore.open(path, readonly=True)


def test_a_catalog_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    CatalogStore.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE state SET schema_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(CatalogStoreError, match="schema"):
        CatalogStore.open(path, readonly=True)


def test_readonly_store_cannot_apply(
    tmp_path: Path, key: Ed25519PrivateKey, base: m.Catalog
) -> None:
    CatalogStore.open(tmp_path / "c.db").close()
    with CatalogStore.open(tmp_path / "c.db", readonly=True) as reader:
        with pytest.raises(CatalogStoreError):
            _apply(reader, _release(base, key, 1, delta=False), key)
        assert reader.version() == 0


def test_lookup_by_virtual_number_and_by_card_hash(
    tmp_path: Path, key: Ed25519PrivateKey, base: m.Catalog
) -> None:
    with CatalogStore.open(tmp_path / "c.db") as store:
        _apply(store, _release(base, key, 1, delta=False), key)
        expected = _versioned(base, 1)
        with_card = next(a for a in expected.accounts.values() if a.card_hashes)
        view = store.account(with_card.virtual_number)
        assert view is not None
        assert view.account == with_card
        by_card = store.account_by_card_hash(with_card.card_hashes[0].upper())
        assert by_card is not None
        assert by_card.account == with_card


@pytest.mark.parametrize(
    "number", ["", "12345", "123456789012345678901", "１２３４５６７８", "12345a789", " 1000000008"]
)
def test_malformed_virtual_number_finds_nothing(tmp_path: Path, number: str) -> None:
    with CatalogStore.open(tmp_path / "c.db") as store:
        assert store.account(number) is None


@pytest.mark.parametrize("card_hash", ["", "ab" * 31, "zz" * 32, "ab" * 33, None, 12])
def test_malformed_card_hash_finds_nothing(tmp_path: Path, card_hash: object) -> None:
    with CatalogStore.open(tmp_path / "c.db") as store:
        assert store.account_by_card_hash(card_hash) is None  # type: ignore[arg-type]


def test_account_view_carries_the_most_specific_rules_for_each_service(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    catalog = generator.demo_catalog()
    data = publish.build_snapshot(catalog, 1, key, published_at_ms=T0, expires_at_ms=T0 + DAY_MS)
    with CatalogStore.open(tmp_path / "c.db") as store:
        _apply(store, data, key)
        view = store.account("1000000008")
        assert view is not None
        by_code = {sv.service.code: sv for sv in view.services}
        # Management company: its own provider rule (paid by the provider).
        assert by_code["MGMT"].surcharge is not None
        assert by_code["MGMT"].surcharge.payer == "provider"
        # Capital repairs: the service rule and the service's own limits.
        assert by_code["CAPR"].surcharge.service_code == "CAPR"  # type: ignore[union-attr]
        assert by_code["CAPR"].limits.overpayment_max_minor == 5_000_000
        # Cold water: the catch-all 1% rule and the default limits.
        assert by_code["CW"].surcharge.percent_bp == 100  # type: ignore[union-attr]
        assert by_code["CW"].limits == m.AmountLimits()
        assert by_code["CW"].tariff is not None
        assert by_code["CW"].tariff.valid_from == "2024-07"
        hot = by_code["HW"].service
        assert [i.amount_minor for i in hot.instalments] == [381_867, 381_867, 381_866]
        assert hot.next_instalment("2025-06-11") == hot.instalments[1]


# --------------------------------------------------------------------------- isolation


class _PausingReader:
    """A release source that stops half-way until told to go on (fault injection)."""

    def __init__(self, data: bytes, pause_at: int) -> None:
        self._data = data
        self._pos = 0
        self._pause_at = pause_at
        self.paused = threading.Event()
        self.resume = threading.Event()

    def read(self, n: int = -1) -> bytes:
        if self._pos >= self._pause_at and not self.resume.is_set():
            self.paused.set()
            assert self.resume.wait(WAIT_S)
        end = len(self._data) if n < 0 else min(len(self._data), self._pos + n)
        if self._pos < self._pause_at < end and not self.resume.is_set():
            end = self._pause_at
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk


_READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from central_sync.catalog.store import CatalogStore

    path, vns, seconds, stop = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3]), sys.argv[4]
    store = CatalogStore.open(path, readonly=True)
    seen, mixed, backwards, lookups, last = {}, 0, 0, 0, 0
    end = time.monotonic() + seconds
    while True:
        for vn in vns:
            view = store.account(vn)
            lookups += 1
            v = view.catalog_version
            debts = [sv.service.debt_minor // 1000 for sv in view.services]
            rules = [sv.surcharge.percent_bp for sv in view.services]
            if set(debts) != {v} or set(rules) != {v}:
                mixed += 1
            if v < last:
                backwards += 1
            last = v
            seen[v] = seen.get(v, 0) + 1
        if seconds == 0 or time.monotonic() > end or Path(stop).exists():
            break
    print(json.dumps({"seen": seen, "mixed": mixed, "backwards": backwards,
                      "lookups": lookups}))
    """
)


def _reader(path: Path, vns: list[str], seconds: float, stop: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _READER, str(path), ",".join(vns), str(seconds), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def _report(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, _ = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0
    report: dict[str, object] = json.loads(out)
    return report


def test_reader_process_sees_the_old_catalog_during_an_apply_and_the_new_after(
    tmp_path: Path, key: Ed25519PrivateKey, base: m.Catalog
) -> None:
    path = tmp_path / "c.db"
    vns = sorted(base.accounts)[::97]
    with CatalogStore.open(path) as store:
        _apply(store, _release(base, key, 1, delta=False), key)
        for version, delta in ((2, False), (3, True)):
            data = _release(base, key, version, delta=delta)
            source = _PausingReader(data, pause_at=len(data) * 2 // 3)
            worker = threading.Thread(target=_apply, args=(store, source, key))
            worker.start()
            try:
                assert source.paused.wait(WAIT_S)
                # Mid-transaction: another process and this very store read the old catalog.
                report = _report(_reader(path, vns, 0, tmp_path / "never"))
                assert report["seen"] == {str(version - 1): len(vns)}
                assert report["mixed"] == 0
                assert store.version() == version - 1
                assert store.account(vns[0]).catalog_version == version - 1  # type: ignore[union-attr]
            finally:
                source.resume.set()
                worker.join(WAIT_S)
            report = _report(_reader(path, vns, 0, tmp_path / "never"))
            assert report["seen"] == {str(version): len(vns)}


def test_concurrent_reader_process_never_sees_a_mix_while_releases_apply(
    tmp_path: Path, key: Ed25519PrivateKey, base: m.Catalog
) -> None:
    path = tmp_path / "c.db"
    stop = tmp_path / "stop"
    vns = sorted(base.accounts)[::50]
    releases = [_release(base, key, v, delta=v % 2 == 1) for v in range(2, 9)]
    with CatalogStore.open(path) as store:
        _apply(store, _release(base, key, 1, delta=False), key)
        proc = _reader(path, vns, WAIT_S, stop)
        try:
            time.sleep(0.5)  # let the reader start its loop on version 1
            for data in releases:
                _apply(store, data, key)
                time.sleep(0.05)
        finally:
            stop.touch()
        report = _report(proc)
    assert report["mixed"] == 0
    assert report["backwards"] == 0
    assert len(report["seen"]) >= 3  # type: ignore[arg-type]
    assert report["lookups"] > 0  # type: ignore[operator]


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from central_sync.catalog import publish
    from central_sync.catalog.store import CatalogStore

    path, release, public_hex, flag = sys.argv[1:5]
    data = Path(release).read_bytes()

    class Slow:
        pos = 0
        def read(self, n=-1):
            if self.pos > len(data) // 2:
                Path(flag).touch()
                time.sleep(60)
            end = len(data) if n < 0 else min(len(data), self.pos + min(n, 4096))
            chunk, self.pos = data[self.pos:end], end
            return chunk

    store = CatalogStore.open(path)
    publish.apply_release(store, Slow(), central_public_key=bytes.fromhex(public_hex),
                          now_ms=int(sys.argv[5]))
    """
)


def test_writer_killed_mid_apply_leaves_the_old_catalog_whole(
    tmp_path: Path, key: Ed25519PrivateKey, base: m.Catalog
) -> None:
    path = tmp_path / "c.db"
    with CatalogStore.open(path) as store:
        _apply(store, _release(base, key, 1, delta=False), key)
    release = tmp_path / "v2.release"
    release.write_bytes(_release(base, key, 2, delta=False))
    flag = tmp_path / "half-way"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLED_WRITER,
            str(path),
            str(release),
            _public(key).hex(),
            str(flag),
            str(T0 + 1000),
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not flag.exists():
            assert proc.poll() is None, "the writer ended before it was half-way"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT_S)
    with CatalogStore.open(path) as store:
        assert store.version() == 1
        assert store.accounts_count() == ACCOUNTS
        expected = _versioned(base, 1)
        for vn in sorted(expected.accounts)[::50]:
            assert store.account(vn).account == expected.accounts[vn]  # type: ignore[union-attr]
        # And the interrupted release applies cleanly afterwards.
        _apply(store, release.read_bytes(), key)
        assert store.version() == 2


def test_apply_checkpoints_the_wal_into_the_main_file(
    tmp_path: Path, key: Ed25519PrivateKey, base: m.Catalog
) -> None:
    path = tmp_path / "c.db"
    with CatalogStore.open(path) as store:
        _apply(store, _release(base, key, 1, delta=False), key)
        conn = sqlite3.connect(path)
        _, log_frames, checkpointed = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        conn.close()
        assert log_frames == checkpointed


def test_writer_refuses_to_touch_a_database_that_is_not_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(CatalogStoreError, match="not a catalog"):
        CatalogStore.open(path)
    conn = sqlite3.connect(path)
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master")]
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert tables == ["entries"]
    assert mode == "delete"
