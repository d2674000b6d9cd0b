"""The synthetic catalog generator: deterministic, realistic, valid, and fast enough to chunk."""

from __future__ import annotations

import re

from central_sync.catalog import generator, wire
from central_sync.catalog import model as m


def test_same_seed_gives_the_same_catalog_byte_for_byte() -> None:
    a = [wire.encode_line(r) for r in generator.iter_records(5, 0, 300, 5)]
    b = [wire.encode_line(r) for r in generator.iter_records(5, 0, 300, 5)]
    assert a == b
    assert generator.generate_header(5) == generator.generate_header(5)


def test_another_seed_gives_another_catalog() -> None:
    a = [wire.encode_line(r) for r in generator.iter_records(5, 0, 50, 5)]
    b = [wire.encode_line(r) for r in generator.iter_records(6, 0, 50, 5)]
    assert not set(a) & set(b)


def test_any_split_into_ranges_gives_the_same_accounts() -> None:
    whole = list(generator.iter_records(9, 0, 400, 5))
    pieces = [
        r
        for start, stop in ((0, 1), (1, 63), (63, 64), (64, 200), (200, 333), (333, 400))
        for r in generator.iter_records(9, start, stop, 5)
    ]
    assert pieces == whole
    assert generator.generate_account(9, 250) == wire.account_from_record(
        whole[250], generator.generate_header(9)
    )


def test_generated_catalog_is_valid_and_luhn_numbered_in_order() -> None:
    catalog = generator.generate_catalog(7, 500, 5)
    catalog.validate()
    vns = list(catalog.accounts)
    assert vns == sorted(vns)
    assert all(m.luhn_valid(vn) for vn in vns)
    assert all(len(a.services) == 5 for a in catalog.accounts.values())
    assert all(m.inn_valid(p.inn) for p in catalog.header.providers)


def test_generated_data_looks_like_russian_utility_accounts() -> None:
    catalog = generator.generate_catalog(7, 2000, 5)
    accounts = list(catalog.accounts.values())
    services = [s for a in accounts for s in a.services]
    assert all(re.fullmatch(r"[А-ЯЁ][а-яё-]+ [А-Я]\. [А-Я]\.", a.holder) for a in accounts)
    assert {a.address.city for a in accounts} >= {"Москва", "Санкт-Петербург", "Барнаул"}
    assert all(
        a.address.street.split()[0] in ("ул.", "пр-т", "ш.") or " " in a.address.street
        for a in accounts
    )
    debts = [s.debt_minor for s in services]
    assert any(d < 0 for d in debts)  # overpayments
    assert any(d == 0 for d in debts)  # paid up
    assert sum(d > 0 for d in debts) > len(debts) // 2
    planned = [s for s in services if s.instalments]
    assert planned
    assert all(sum(i.amount_minor for i in s.instalments) == s.debt_minor for s in planned)
    assert any(s.meters for s in services)
    assert any(a.card_hashes for a in accounts)
    assert any(not a.card_hashes for a in accounts)
    codes = {s.code for s in services}
    assert {"MGMT", "CW", "HW", "EL", "HEAT", "CAPR", "WASTE"} <= codes
    en = {s.provider.name_en for s in services}
    assert all(name.isascii() for name in en)


def test_demo_catalog_is_fixed_and_its_cards_open_their_accounts() -> None:
    catalog = generator.demo_catalog()
    catalog.validate()
    assert len(catalog.accounts) == 64
    assert catalog == generator.demo_catalog()
    ivanova = catalog.accounts["1000000008"]
    assert ivanova.holder == "Иванова А. П."
    assert any(s.instalments for s in ivanova.services)
    assert catalog.accounts["1000000016"].debt_total_minor < 405_120  # an overpaid service
    for uid, vn in generator.DEMO_CARD_UIDS.items():
        card = generator.uid_card_hash(uid, generator.DEMO_CARD_HASH_KEY)
        assert card in catalog.accounts[vn].card_hashes


def test_uid_card_hash_matches_the_resident_card_profile() -> None:
    import hashlib
    import hmac

    key = b"k" * 32
    expected = hmac.new(key, b"lobbypay-card-v1\x1fuid\x1f04A1B2C3", hashlib.sha256).hexdigest()
    assert generator.uid_card_hash("04a1b2c3", key) == expected
