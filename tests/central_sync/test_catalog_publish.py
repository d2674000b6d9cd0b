"""Signed catalog releases: build, apply, and every refusal leaving the store unchanged."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import sqlite3
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_sync import canonical, signing
from central_sync.catalog import generator, publish, wire
from central_sync.catalog import model as m
from central_sync.catalog.errors import (
    BaseVersionMismatchError,
    ExpiredReleaseError,
    MalformedReleaseError,
    ReleaseBuildError,
    ReleaseHashMismatchError,
    ReleaseRefusedError,
    ReleaseSignatureError,
    ReleaseTooLargeError,
    RollbackError,
    UnknownReleaseVersionError,
)
from central_sync.catalog.store import CatalogStore

SEED = 11
T0 = 1_750_000_000_000
DAY_MS = 24 * 3600 * 1000


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def central() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def catalog() -> m.Catalog:
    return generator.generate_catalog(SEED, 300, 5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    s = CatalogStore.open(tmp_path / "catalog.db")
    yield s
    s.close()


def _snapshot(cat: m.Catalog, key: Ed25519PrivateKey, version: int = 1, **kw: int) -> bytes:
    published = kw.pop("published_at_ms", T0)
    expires = kw.pop("expires_at_ms", T0 + 7 * DAY_MS)
    return publish.build_snapshot(
        cat, version, key, published_at_ms=published, expires_at_ms=expires, **kw
    )


def _apply(
    store: CatalogStore,
    data: publish.ReleaseSource,
    key: Ed25519PrivateKey,
    now: int = T0 + 1000,
    **kw: object,
) -> publish.ApplyResult:
    return publish.apply_release(
        store,
        data,
        central_public_key=_public(key),
        now_ms=now,
        **kw,  # type: ignore[arg-type]
    )


def _fingerprint(
    store: CatalogStore, tables: tuple[str, ...] = ("state", "accounts", "cards")
) -> str:
    """A hash of everything in the store file: state, accounts and cards."""
    conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    h = hashlib.sha256()
    for table in tables:
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
            h.update(repr(row).encode())
    conn.close()
    return h.hexdigest()


def _reseal(
    data: bytes,
    key: Ed25519PrivateKey,
    change: Callable[[dict], None],  # type: ignore[type-arg]
    version: int = signing.PROTOCOL_VERSION,
) -> bytes:
    """Change a release's manifest body and sign it again with ``key``."""
    magic, fmt, length = struct.unpack(">8sBI", data[:13])
    msg = canonical.decode(data[13 : 13 + length])
    body = dict(msg["body"])
    change(body)
    sig = key.sign(signing.signing_input(msg["type"], body, version))
    manifest = canonical.encode({"v": version, "type": msg["type"], "body": body, "sig": sig.hex()})
    return struct.pack(">8sBI", magic, fmt, len(manifest)) + manifest + data[13 + length :]


def _edit_accounts(cat: m.Catalog, edits: dict[str, m.Account | None]) -> m.Catalog:
    accounts = dict(cat.accounts)
    for vn, account in edits.items():
        if account is None:
            del accounts[vn]
        else:
            accounts[vn] = account
    return m.Catalog(header=cat.header, accounts=accounts)


# --------------------------------------------------------------------------- happy paths


def test_snapshot_applies_and_every_account_reads_back_equal(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    result = _apply(store, _snapshot(catalog, central), central)
    assert (result.kind, result.version, result.accounts) == ("snapshot", 1, 300)
    assert store.version() == 1
    assert store.accounts_count() == 300
    for vn, account in catalog.accounts.items():
        view = store.account(vn)
        assert view is not None
        assert view.account == account
        assert view.catalog_version == 1
        for h in account.card_hashes:
            found = store.account_by_card_hash(h)
            assert found is not None
            assert found.virtual_number == vn


def test_snapshot_then_deltas_upsert_delete_and_move_a_card(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    _apply(store, _snapshot(catalog, central), central)
    vns = sorted(catalog.accounts)
    with_card = [vn for vn in vns if catalog.accounts[vn].card_hashes]
    giver, taker = with_card[0], vns[-1]
    card = catalog.accounts[giver].card_hashes[0]
    new_account = generator.generate_account(SEED, 400)
    changed = dataclasses.replace(catalog.accounts[vns[5]], holder="Сидорова О. Н.")
    step1 = _edit_accounts(
        catalog,
        {
            vns[3]: None,
            vns[5]: changed,
            new_account.virtual_number: new_account,
            # The card moves: listed later in the delta than its old owner
            # loses it, so the apply must not depend on line order.
            giver: dataclasses.replace(catalog.accounts[giver], card_hashes=()),
            taker: dataclasses.replace(catalog.accounts[taker], card_hashes=(card,)),
        },
    )
    delta = publish.build_delta(
        catalog,
        step1,
        2,
        central,
        base_version=1,
        published_at_ms=T0 + 1,
        expires_at_ms=T0 + 7 * DAY_MS,
    )
    result = _apply(store, delta, central)
    assert (result.kind, result.version, result.base_version, result.records) == ("delta", 2, 1, 5)
    assert store.version() == 2
    assert store.accounts_count() == 300
    assert store.account(vns[3]) is None
    assert store.account(vns[5]).account.holder == "Сидорова О. Н."  # type: ignore[union-attr]
    assert store.account(new_account.virtual_number).account == new_account  # type: ignore[union-attr]
    assert store.account_by_card_hash(card).virtual_number == taker  # type: ignore[union-attr]

    step2 = _edit_accounts(step1, {vns[6]: None})
    delta2 = publish.build_delta(
        step1,
        step2,
        3,
        central,
        base_version=2,
        published_at_ms=T0 + 2,
        expires_at_ms=T0 + 7 * DAY_MS,
    )
    _apply(store, delta2, central)
    assert store.version() == 3
    assert store.accounts_count() == 299
    for vn, account in step2.accounts.items():
        assert store.account(vn).account == account  # type: ignore[union-attr]


def test_delta_with_no_changes_refreshes_expiry(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    _apply(store, _snapshot(catalog, central, expires_at_ms=T0 + DAY_MS), central)
    delta = publish.build_delta(
        catalog,
        catalog,
        2,
        central,
        base_version=1,
        published_at_ms=T0 + DAY_MS - 5,
        expires_at_ms=T0 + 3 * DAY_MS,
    )
    result = _apply(store, delta, central, now=T0 + DAY_MS - 1)
    assert result.records == 0
    assert store.expires_at_ms() == T0 + 3 * DAY_MS
    assert not store.is_stale(T0 + 2 * DAY_MS)


def test_apply_from_a_file_path_and_an_open_file(
    tmp_path: Path, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = _snapshot(catalog, central, chunk_records=64)
    path = tmp_path / "release.bin"
    path.write_bytes(data)
    with CatalogStore.open(tmp_path / "a.db") as a, CatalogStore.open(tmp_path / "b.db") as b:
        _apply(a, str(path), central)
        with path.open("rb") as f:
            _apply(b, f, central)
        assert _fingerprint(a, tables=("accounts", "cards")) == _fingerprint(
            b, tables=("accounts", "cards")
        )
        assert a.accounts_count() == 300
    info = publish.read_release_info(path, central_public_key=_public(central))
    assert info.chunks == 5


def test_read_release_info_reports_the_manifest(
    central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    info = publish.read_release_info(
        _snapshot(catalog, central, version=9), central_public_key=_public(central)
    )
    assert (info.kind, info.version, info.base_version, info.accounts) == ("snapshot", 9, None, 300)
    assert info.header == catalog.header


def test_snapshot_is_deterministic_for_the_same_catalog(
    central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    assert _snapshot(catalog, central) == _snapshot(catalog, central)


def test_each_record_line_is_canonical_json(central: Ed25519PrivateKey, catalog: m.Catalog) -> None:
    for account in catalog.accounts.values():
        line = wire.record_line(account)
        assert canonical.encode(canonical.decode(line)) == line


# --------------------------------------------------------------------------- refusals


def _refused(
    store: CatalogStore,
    data: bytes,
    key: Ed25519PrivateKey,
    error: type[ReleaseRefusedError],
    now: int = T0 + 1000,
    **kw: object,
) -> None:
    before = _fingerprint(store)
    with pytest.raises(error):
        _apply(store, data, key, now=now, **kw)
    assert _fingerprint(store) == before


def test_older_or_equal_version_is_refused_as_rollback(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    _apply(store, _snapshot(catalog, central, version=5), central)
    _refused(store, _snapshot(catalog, central, version=5), central, RollbackError)
    _refused(store, _snapshot(catalog, central, version=4), central, RollbackError)


def test_expired_release_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = _snapshot(catalog, central, expires_at_ms=T0 + DAY_MS)
    _refused(store, data, central, ExpiredReleaseError, now=T0 + DAY_MS)
    _apply(store, data, central, now=T0 + DAY_MS - 1)


def test_store_reports_stale_after_expiry(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    assert store.is_stale(T0)  # nothing applied yet
    _apply(store, _snapshot(catalog, central, expires_at_ms=T0 + DAY_MS), central)
    assert not store.is_stale(T0 + DAY_MS - 1)
    assert store.is_stale(T0 + DAY_MS)
    status = store.status(T0 + 2 * DAY_MS)
    assert status.stale
    assert status.age_s == pytest.approx(2 * 24 * 3600)
    assert store.age_s(T0 + 1500) == pytest.approx(1.5)


def test_delta_on_another_base_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    _apply(store, _snapshot(catalog, central, version=1), central)
    delta = publish.build_delta(
        catalog,
        catalog,
        3,
        central,
        base_version=2,
        published_at_ms=T0,
        expires_at_ms=T0 + DAY_MS,
    )
    _refused(store, delta, central, BaseVersionMismatchError)


def test_delta_on_an_empty_store_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    delta = publish.build_delta(
        catalog,
        catalog,
        2,
        central,
        base_version=1,
        published_at_ms=T0,
        expires_at_ms=T0 + DAY_MS,
    )
    _refused(store, delta, central, BaseVersionMismatchError)


def test_release_signed_by_another_key_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    other = Ed25519PrivateKey.generate()
    _refused(store, _snapshot(catalog, other), central, ReleaseSignatureError)
    with pytest.raises(signing.BadSignatureError):  # the envelope's own error family
        _apply(store, _snapshot(catalog, other), central)


def test_unknown_protocol_version_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = _reseal(_snapshot(catalog, central), central, lambda b: None, version=2)
    _refused(store, data, central, UnknownReleaseVersionError)
    with pytest.raises(signing.UnknownVersionError):
        _apply(store, data, central)


def test_unknown_record_format_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = _reseal(_snapshot(catalog, central), central, lambda b: b.update(format=2))
    _refused(store, data, central, UnknownReleaseVersionError)


def test_unknown_container_format_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = bytearray(_snapshot(catalog, central))
    data[8] = 2
    _refused(store, bytes(data), central, UnknownReleaseVersionError)


def test_a_message_of_another_type_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey
) -> None:
    ack = signing.seal("ack", {"seq": 1}, central)
    data = struct.pack(">8sBI", publish.CONTAINER_MAGIC, 1, len(ack)) + ack
    _refused(store, data, central, MalformedReleaseError)


def test_chunk_that_differs_from_its_signed_hash_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = bytearray(_snapshot(catalog, central))
    data[-10] ^= 0xFF
    _refused(store, bytes(data), central, ReleaseHashMismatchError)


def test_payload_hash_mismatch_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = _reseal(
        _snapshot(catalog, central), central, lambda b: b.update(payload_sha256="0" * 64)
    )
    _refused(store, data, central, ReleaseHashMismatchError)


def test_chunks_swapped_in_order_are_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = _snapshot(catalog, central, chunk_records=150)
    length = struct.unpack(">I", data[9:13])[0]
    body = canonical.decode(data[13 : 13 + length])["body"]
    (a, *_), (b, *_) = body["chunks"]
    head, payload = data[: 13 + length], data[13 + length :]
    swapped = head + payload[a:] + payload[:a]
    assert len(payload) == a + b
    _refused(store, swapped, central, ReleaseHashMismatchError)


@pytest.mark.parametrize(
    ("limits", "what"),
    [
        (publish.ReleaseLimits(manifest_bytes_max=1000), "manifest"),
        (publish.ReleaseLimits(chunks_max=2), "chunks"),
        (publish.ReleaseLimits(chunk_bytes_max=1000), "chunk bytes"),
        (publish.ReleaseLimits(chunk_raw_bytes_max=10_000), "chunk raw bytes"),
        (publish.ReleaseLimits(chunk_records_max=99), "chunk records"),
        (publish.ReleaseLimits(records_max=299), "records"),
        (publish.ReleaseLimits(release_bytes_max=1000), "release bytes"),
    ],
)
def test_release_over_a_bound_is_refused_as_too_large(
    store: CatalogStore,
    central: Ed25519PrivateKey,
    catalog: m.Catalog,
    limits: publish.ReleaseLimits,
    what: str,
) -> None:
    data = _snapshot(catalog, central, chunk_records=100)
    _refused(store, data, central, ReleaseTooLargeError, limits=limits)


def test_release_exactly_at_the_bounds_is_accepted(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = _snapshot(catalog, central, chunk_records=100)
    info = publish.read_release_info(data, central_public_key=_public(central))
    manifest_bytes = struct.unpack(">I", data[9:13])[0]
    limits = publish.ReleaseLimits(
        manifest_bytes_max=manifest_bytes,
        chunks_max=3,
        chunk_records_max=100,
        records_max=300,
        release_bytes_max=info.payload_bytes,
    )
    _apply(store, data, central, limits=limits)
    assert store.version() == 1


def test_record_line_over_the_bound_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    longest = max(len(wire.record_line(a)) for a in catalog.accounts.values())
    data = _snapshot(catalog, central)
    _refused(
        store,
        data,
        central,
        MalformedReleaseError,
        limits=publish.ReleaseLimits(record_bytes_max=longest - 1),
    )
    _apply(store, data, central, limits=publish.ReleaseLimits(record_bytes_max=longest))


def _release_of_lines(
    lines: list[bytes],
    key: Ed25519PrivateKey,
    header: m.CatalogHeader,
    accounts: int | None = None,
    kind: str = "snapshot",
    base_version: int | None = None,
    version: int = 1,
) -> bytes:
    out = io.BytesIO()
    publish.write_release(
        out,
        kind=kind,
        header=header,  # type: ignore[arg-type]
        chunks=[publish.encode_chunk(lines)],
        version=version,
        base_version=base_version,
        accounts=len(lines) if accounts is None else accounts,
        published_at_ms=T0,
        expires_at_ms=T0 + DAY_MS,
        signer=key,
    )
    return out.getvalue()


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda r: r.__setitem__(0, "12AB"), id="virtual-number-not-digits"),
        pytest.param(lambda r: r[6][0].__setitem__(2, 1.5), id="float-money"),
        pytest.param(lambda r: r[6][0].__setitem__(2, "100"), id="string-money"),
        pytest.param(lambda r: r[6][0].__setitem__(0, "NOPE"), id="unknown-service-code"),
        pytest.param(lambda r: r[6][0].__setitem__(1, "nobody"), id="unknown-provider"),
        pytest.param(lambda r: r[6][0].__setitem__(3, "2025-13"), id="bad-period"),
        pytest.param(lambda r: r[6].append(list(r[6][0])), id="service-twice"),
        pytest.param(lambda r: r.__setitem__(5, ["ab" * 32, "ab" * 32]), id="card-twice"),
        pytest.param(lambda r: r.__setitem__(5, ["AB" * 32]), id="card-upper-hex"),
        pytest.param(lambda r: r.append(1), id="extra-field"),
        pytest.param(lambda r: r.__setitem__(1, "Иванова\x1b@ А. П."), id="escape-in-holder"),
        pytest.param(lambda r: r[2].__setitem__(1, ""), id="empty-street"),
        pytest.param(lambda r: r.pop(), id="missing-field"),
        pytest.param(lambda r: r[6][0].__setitem__(4, [["2025-02-30", 1]]), id="impossible-date"),
        pytest.param(
            lambda r: r[6][0].__setitem__(4, [["2025-06-10", 10**11]]), id="instalments-over-debt"
        ),
    ],
)
def test_malformed_record_is_refused_even_when_signed(
    store: CatalogStore,
    central: Ed25519PrivateKey,
    catalog: m.Catalog,
    mutate: Callable[[list], None],  # type: ignore[type-arg]
) -> None:
    records = [wire.account_to_record(a) for a in list(catalog.accounts.values())[:3]]
    records[0][6][0][2] = 50_000  # a positive debt for the instalment cases
    mutate(records[0])
    lines = [wire.encode_line(r) for r in records]
    _refused(
        store, _release_of_lines(lines, central, catalog.header), central, MalformedReleaseError
    )


def test_not_json_record_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    for line in (b"{", b'["1234567"', '["\u0000"]'.encode(), b"\xff\xfe"):
        _refused(
            store,
            _release_of_lines([line], central, catalog.header),
            central,
            MalformedReleaseError,
        )


def test_the_same_account_twice_in_a_snapshot_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    line = wire.record_line(next(iter(catalog.accounts.values())))
    data = _release_of_lines([line, line], central, catalog.header)
    _refused(store, data, central, MalformedReleaseError)


def test_a_card_on_two_accounts_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    a, b = list(catalog.accounts.values())[:2]
    card = "cd" * 32
    lines = [
        wire.record_line(dataclasses.replace(a, card_hashes=(card,))),
        wire.record_line(dataclasses.replace(b, card_hashes=(card,))),
    ]
    _refused(
        store, _release_of_lines(lines, central, catalog.header), central, MalformedReleaseError
    )


def test_account_count_that_disagrees_with_the_manifest_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    _apply(store, _snapshot(catalog, central), central)
    vn = sorted(catalog.accounts)[0]
    lines = [wire.delta_del_line(vn)]
    data = _release_of_lines(
        lines, central, catalog.header, accounts=300, kind="delta", base_version=1, version=2
    )
    _refused(store, data, central, MalformedReleaseError)


def test_delta_deleting_an_unknown_account_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    _apply(store, _snapshot(catalog, central), central)
    data = _release_of_lines(
        [wire.delta_del_line("9999999999")],
        central,
        catalog.header,
        accounts=299,
        kind="delta",
        base_version=1,
        version=2,
    )
    _refused(store, data, central, MalformedReleaseError)


def test_delta_touching_one_account_twice_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    _apply(store, _snapshot(catalog, central), central)
    account = next(iter(catalog.accounts.values()))
    line = wire.delta_put_line(account)
    data = _release_of_lines(
        [line, line], central, catalog.header, accounts=300, kind="delta", base_version=1, version=2
    )
    _refused(store, data, central, MalformedReleaseError)


def test_delta_that_drops_a_provider_is_refused_and_cannot_be_built(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    _apply(store, _snapshot(catalog, central), central)
    used = {s.provider.id for a in catalog.accounts.values() for s in a.services}
    unused = next(p for p in catalog.header.providers if p.id not in used)
    smaller = m.Catalog(
        header=dataclasses.replace(
            catalog.header,
            providers=tuple(p for p in catalog.header.providers if p != unused),
            tariffs=tuple(t for t in catalog.header.tariffs if t.provider_id != unused.id),
            surcharge_rules=tuple(
                r for r in catalog.header.surcharge_rules if r.provider_id != unused.id
            ),
        ),
        accounts=catalog.accounts,
    )
    with pytest.raises(ReleaseBuildError):
        publish.build_delta(
            catalog,
            smaller,
            2,
            central,
            base_version=1,
            published_at_ms=T0,
            expires_at_ms=T0 + DAY_MS,
        )
    data = _release_of_lines(
        [wire.delta_del_line(sorted(catalog.accounts)[0])],
        central,
        smaller.header,
        accounts=299,
        kind="delta",
        base_version=1,
        version=2,
    )
    _refused(store, data, central, MalformedReleaseError)
    # The same change as a snapshot is fine.
    _apply(store, _snapshot(smaller, central, version=2), central)


@pytest.mark.parametrize(
    ("transform", "error"),
    [
        (lambda d: d[:-1], MalformedReleaseError),
        (lambda d: d + b"\x00", MalformedReleaseError),
        (lambda d: d[:20], MalformedReleaseError),
        (lambda d: b"", MalformedReleaseError),
        (lambda d: b"NOTACATALOG" + d, MalformedReleaseError),
        (lambda d: d[:9] + b"\xff\xff\xff\xff" + d[13:], ReleaseTooLargeError),
    ],
    ids=["truncated", "trailing-byte", "cut-in-manifest", "empty", "bad-magic", "huge-length"],
)
def test_framing_damage_is_refused(
    store: CatalogStore,
    central: Ed25519PrivateKey,
    catalog: m.Catalog,
    transform: Callable[[bytes], bytes],
    error: type[ReleaseRefusedError],
) -> None:
    _refused(store, transform(_snapshot(catalog, central)), central, error)


def test_zlib_bomb_beyond_the_signed_size_is_refused(
    store: CatalogStore, central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    data = _snapshot(catalog, central)

    def lie(body: dict) -> None:  # type: ignore[type-arg]
        size, raw, records, sha = body["chunks"][0]
        body["chunks"][0] = [size, raw // 2, records, sha]

    _refused(store, _reseal(data, central, lie), central, MalformedReleaseError)


# --------------------------------------------------------------------------- tampering


@pytest.fixture(scope="module")
def tiny() -> tuple[m.Catalog, Ed25519PrivateKey]:
    """A minimal catalog, so that trying every byte of its release is quick."""
    provider = m.Provider(id="w", name_ru="Вода", name_en="Water", inn="2224152758")
    stype = m.ServiceType(code="CW", name_ru="ХВС", name_en="Cold water")
    header = m.CatalogHeader(providers=(provider,), service_types=(stype,))
    accounts = [
        m.Account(
            virtual_number=vn,
            holder="Иванова А. П.",
            address=m.Address(city="Барнаул", street="ул. Юрина", house="5", flat="1"),
            deployment="brn",
            building="brn-1",
            card_hashes=("ab" * 32,) if vn.endswith("8") else (),
            services=(
                m.Service(
                    code="CW",
                    name_ru="ХВС",
                    name_en="Cold water",
                    provider=provider,
                    debt_minor=12_345,
                    period="2025-05",
                ),
            ),
        )
        for vn in ("1000000008", "1000000016")
    ]
    return m.Catalog.of(header, accounts), Ed25519PrivateKey.generate()


def test_every_single_byte_change_of_a_snapshot_is_refused(
    tmp_path: Path, tiny: tuple[m.Catalog, Ed25519PrivateKey]
) -> None:
    cat, key = tiny
    data = _snapshot(cat, key)
    with CatalogStore.open(tmp_path / "c.db") as store:
        before = _fingerprint(store)
        refused = 0
        for i in range(len(data)):
            for flip in (0x01, 0x80, 0xFF):
                changed = data[:i] + bytes([data[i] ^ flip]) + data[i + 1 :]
                with pytest.raises(ReleaseRefusedError):
                    _apply(store, changed, key)
                refused += 1
        assert _fingerprint(store) == before
        assert refused == 3 * len(data)
        _apply(store, data, key)  # and the untouched release still applies
        assert store.version() == 1


def test_every_single_byte_change_of_a_delta_is_refused(
    tmp_path: Path, tiny: tuple[m.Catalog, Ed25519PrivateKey]
) -> None:
    cat, key = tiny
    vn = "1000000016"
    after = _edit_accounts(cat, {vn: dataclasses.replace(cat.accounts[vn], holder="Петров И. И.")})
    delta = publish.build_delta(
        cat, after, 2, key, base_version=1, published_at_ms=T0, expires_at_ms=T0 + DAY_MS
    )
    with CatalogStore.open(tmp_path / "c.db") as store:
        _apply(store, _snapshot(cat, key), key)
        before = _fingerprint(store)
        for i in range(len(delta)):
            changed = delta[:i] + bytes([delta[i] ^ 0x01]) + delta[i + 1 :]
            with pytest.raises(ReleaseRefusedError):
                _apply(store, changed, key)
        assert _fingerprint(store) == before
        _apply(store, delta, key)
        assert store.account(vn).account.holder == "Петров И. И."  # type: ignore[union-attr]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_byte_value_change_is_refused(
    tmp_path: Path, tiny: tuple[m.Catalog, Ed25519PrivateKey], data: st.DataObject
) -> None:
    cat, key = tiny
    release = _snapshot(cat, key)
    i = data.draw(st.integers(0, len(release) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != release[i]))
    with CatalogStore.open(tmp_path / f"h{i}-{value}.db") as store:
        with pytest.raises(ReleaseRefusedError):
            _apply(store, release[:i] + bytes([value]) + release[i + 1 :], key)
        assert store.version() == 0


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.binary(max_size=400))
def test_random_bytes_are_refused_with_typed_errors(
    store: CatalogStore, central: Ed25519PrivateKey, junk: bytes
) -> None:
    with pytest.raises(ReleaseRefusedError):
        _apply(store, junk, central)
    with pytest.raises(ReleaseRefusedError):
        _apply(store, publish.CONTAINER_MAGIC + b"\x01" + junk, central)
    assert store.version() == 0


# --------------------------------------------------------------------------- building


def test_build_refuses_impossible_times_and_versions(
    central: Ed25519PrivateKey, catalog: m.Catalog
) -> None:
    with pytest.raises(ReleaseBuildError):
        publish.build_snapshot(catalog, 0, central, published_at_ms=T0, expires_at_ms=T0 + 1)
    with pytest.raises(ReleaseBuildError):
        publish.build_snapshot(catalog, 1, central, published_at_ms=T0, expires_at_ms=T0)
    with pytest.raises(ReleaseBuildError):
        publish.build_delta(
            catalog, catalog, 2, central, base_version=2, published_at_ms=T0, expires_at_ms=T0 + 1
        )


def test_build_refuses_an_invalid_catalog(central: Ed25519PrivateKey, catalog: m.Catalog) -> None:
    a = next(iter(catalog.accounts.values()))
    broken = _edit_accounts(catalog, {a.virtual_number: dataclasses.replace(a, card_hashes=("x",))})
    with pytest.raises(ReleaseBuildError):
        publish.build_snapshot(broken, 1, central, published_at_ms=T0, expires_at_ms=T0 + 1)
