"""The catalog model: check digits, masking, romanisation, surcharges, limits, rule lookup."""

from __future__ import annotations

import dataclasses

import pytest

from central_sync.catalog import generator
from central_sync.catalog import model as m
from central_sync.catalog.errors import CatalogValueError

WATER = m.Provider(id="w", name_ru="Водоканал", name_en="Vodokanal", inn="2224152758")


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("79927398713", True),
        ("79927398710", False),
        ("1000000008", True),
        ("0", False),
        ("", False),
        ("12a4", False),
        ("٤٥٦", False),
    ],
)
def test_luhn_valid(number: str, valid: bool) -> None:
    assert m.luhn_valid(number) is valid


def test_luhn_check_digit_completes_every_body() -> None:
    for body in ("7992739871", "100000000", "0", "123456789012345678"):
        assert m.luhn_valid(body + m.luhn_check_digit(body))


@pytest.mark.parametrize(
    ("inn", "valid"),
    [
        ("7707083893", True),
        ("7707083890", False),
        ("500100732259", True),
        ("500100732250", False),
        ("770708389", False),
        ("77070838931", False),
        ("77O7083893", False),
    ],
)
def test_inn_check_digits(inn: str, valid: bool) -> None:
    assert m.inn_valid(inn) is valid


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Иванова Анна Петровна", "Иванова А. П."),
        ("Иванова А.П.", "Иванова А. П."),
        ("  иванов   сергей  ", "иванов С."),
        ("Петрова-Водкина Мария", "Петрова-Водкина М."),
        ("Smith John Paul Jones", "Smith J. P."),
        ("Иванова", "Иванова"),
    ],
)
def test_mask_holder_name_keeps_surname_and_initials(name: str, masked: str) -> None:
    assert m.mask_holder_name(name) == masked


def test_mask_holder_name_refuses_an_empty_name() -> None:
    with pytest.raises(CatalogValueError):
        m.mask_holder_name("  . ")


@pytest.mark.parametrize(
    ("ru", "en"),
    [
        ("Иванова А. П.", "Ivanova A. P."),
        ("ул. Юрина", "ul. Yurina"),
        ("Щёлковское ш.", "Shchyolkovskoe sh."),
        ("Подъезд № 5", "Podezd No. 5"),
        ("Latin 123", "Latin 123"),
    ],
)
def test_transliterate(ru: str, en: str) -> None:
    assert m.transliterate(ru) == en


def test_address_formats_in_both_languages() -> None:
    a = m.Address(city="Барнаул", street="ул. Малахова", house="86", flat="34")
    assert a.format("ru") == "г. Барнаул, ул. Малахова, д. 86, кв. 34"
    assert a.format("en") == "Barnaul, ul. Malakhova, 86, apt. 34"
    assert (
        m.Address(city="Москва", street="ул. Арбат", house="1").format("en")
        == "Moskva, ul. Arbat, 1"
    )


@pytest.mark.parametrize(
    ("rule", "amount", "expected"),
    [
        (m.SurchargeRule(percent_bp=100), 10_000, 100),
        (m.SurchargeRule(percent_bp=100), 50, 1),  # 0.5 kopeck rounds half up
        (m.SurchargeRule(percent_bp=100), 49, 0),
        (m.SurchargeRule(percent_bp=150, fixed_minor=1_000), 100_000, 2_500),
        (m.SurchargeRule(percent_bp=100, min_minor=3_000), 10_000, 3_000),
        (m.SurchargeRule(percent_bp=100, max_minor=5_000), 10_000_000, 5_000),
        (m.SurchargeRule(), 10_000, 0),
    ],
)
def test_surcharge_amount(rule: m.SurchargeRule, amount: int, expected: int) -> None:
    assert rule.amount_for(amount) == expected


def test_surcharge_refuses_float_and_negative_amounts() -> None:
    rule = m.SurchargeRule(percent_bp=100)
    with pytest.raises(CatalogValueError):
        rule.amount_for(100.0)  # type: ignore[arg-type]
    with pytest.raises(CatalogValueError):
        rule.amount_for(-1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"percent_bp": 10_001},
        {"percent_bp": -1},
        {"fixed_minor": 1.5},
        {"min_minor": 10, "max_minor": 5},
        {"payer": "bank"},
        {"declinable": 1},
        {"percent_bp": True},
    ],
)
def test_surcharge_rule_invariants(kwargs: dict[str, object]) -> None:
    with pytest.raises(CatalogValueError):
        m.SurchargeRule(**kwargs)  # type: ignore[arg-type]


def test_amount_limits_check_min_max_and_overpayment() -> None:
    limits = m.AmountLimits(
        payment_min_minor=100, payment_max_minor=100_000, overpayment_max_minor=500
    )
    assert limits.check(100, 0) is None
    assert limits.check(99, 0) == m.LimitProblem(code="below-min", limit_minor=100)
    assert limits.check(100_001, 10**9) == m.LimitProblem(code="above-max", limit_minor=100_000)
    assert limits.check(10_500, 10_000) is None
    assert limits.check(10_501, 10_000) == m.LimitProblem(code="overpayment", limit_minor=10_500)
    # An overpaid service still takes an advance up to the overpayment allowance.
    assert limits.check(500, -2_000) is None
    assert limits.check(501, -2_000) is not None
    problem = limits.check(99, 0)
    assert problem is not None
    assert "минимальной" in problem.message("ru")
    assert "minimum" in problem.message("en")


def test_header_picks_the_most_specific_rule() -> None:
    gas = m.Provider(id="g", name_ru="Газ", name_en="Gas", inn="7707083893")
    types = (
        m.ServiceType(code="CW", name_ru="ХВС", name_en="Cold water"),
        m.ServiceType(code="GAS", name_ru="Газ", name_en="Gas"),
    )
    header = m.CatalogHeader(
        providers=(WATER, gas),
        service_types=types,
        surcharge_rules=(
            m.SurchargeRule(percent_bp=1),
            m.SurchargeRule(service_code="CW", percent_bp=2),
            m.SurchargeRule(provider_id="g", percent_bp=3),
            m.SurchargeRule(provider_id="w", service_code="CW", percent_bp=4),
        ),
        limits=(m.AmountLimits(service_code="GAS", overpayment_max_minor=0),),
        tariffs=(
            m.Tariff(
                service_code="CW",
                provider_id="w",
                unit="m3",
                price_minor=4000,
                valid_from="2024-07",
            ),
            m.Tariff(
                service_code="CW",
                provider_id="w",
                unit="m3",
                price_minor=4400,
                valid_from="2025-07",
            ),
        ),
    )
    assert header.surcharge_for("w", "CW").percent_bp == 4  # type: ignore[union-attr]
    assert header.surcharge_for("g", "CW").percent_bp == 3  # type: ignore[union-attr]
    assert header.surcharge_for("x", "CW").percent_bp == 2  # type: ignore[union-attr]
    assert header.surcharge_for("x", "EL").percent_bp == 1  # type: ignore[union-attr]
    assert header.limits_for("g", "GAS").overpayment_max_minor == 0
    assert header.limits_for("w", "CW") == m.DEFAULT_AMOUNT_LIMITS
    assert header.tariff_for("w", "CW", "2024-06") is None
    assert header.tariff_for("w", "CW", "2025-06").price_minor == 4000  # type: ignore[union-attr]
    assert header.tariff_for("w", "CW", "2025-07").price_minor == 4400  # type: ignore[union-attr]


def test_header_refuses_duplicates_and_unknown_references() -> None:
    with pytest.raises(CatalogValueError):
        m.CatalogHeader(providers=(WATER, WATER))
    with pytest.raises(CatalogValueError):
        m.CatalogHeader(surcharge_rules=(m.SurchargeRule(), m.SurchargeRule(percent_bp=5)))
    with pytest.raises(CatalogValueError):
        m.CatalogHeader(providers=(WATER,), surcharge_rules=(m.SurchargeRule(provider_id="nope"),))


def _service(**kw: object) -> m.Service:
    base: dict[str, object] = dict(
        code="CW",
        name_ru="ХВС",
        name_en="Cold water",
        provider=WATER,
        debt_minor=10_000,
        period="2025-05",
    )
    base.update(kw)
    return m.Service(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"debt_minor": 100.5},
        {"debt_minor": True},
        {"debt_minor": 10**13},
        {"instalments": (m.Instalment(due_date="2025-06-10", amount_minor=10_001),)},
        {"debt_minor": -5, "instalments": (m.Instalment(due_date="2025-06-10", amount_minor=1),)},
        {
            "instalments": (
                m.Instalment(due_date="2025-07-10", amount_minor=1),
                m.Instalment(due_date="2025-06-10", amount_minor=1),
            )
        },
        {"instalments": [m.Instalment(due_date="2025-06-10", amount_minor=1)]},
        {"meters": ("not a meter",)},
        {"provider": "w"},
    ],
)
def test_service_invariants(kwargs: dict[str, object]) -> None:
    with pytest.raises(CatalogValueError):
        _service(**kwargs)


def test_account_refuses_a_bad_virtual_number() -> None:
    address = m.Address(city="Барнаул", street="ул. Юрина", house="1")
    with pytest.raises(CatalogValueError):
        m.Account(
            virtual_number="12-34", holder="И. И.", address=address, deployment="d", building="b"
        )


def test_catalog_validate_finds_broken_cross_references() -> None:
    catalog = generator.generate_catalog(3, 40, 3)
    catalog.validate()
    a, b = list(catalog.accounts.values())[:2]
    stranger = m.Provider(id="zz", name_ru="Чужой", name_en="Stranger", inn="7707083893")
    broken = [
        dataclasses.replace(a, services=(dataclasses.replace(a.services[0], provider=stranger),)),
        dataclasses.replace(a, services=(dataclasses.replace(a.services[0], period="2025-13"),)),
        dataclasses.replace(a, services=(a.services[0], a.services[0])),
        dataclasses.replace(a, card_hashes=("AB" * 32,)),
        dataclasses.replace(a, card_hashes=b.card_hashes or ("ab" * 32,)),
        dataclasses.replace(a, deployment="bad id!"),
    ]
    for n, account in enumerate(broken):
        accounts = dict(catalog.accounts)
        accounts[a.virtual_number] = account
        if n == 4 and not b.card_hashes:
            accounts[b.virtual_number] = dataclasses.replace(b, card_hashes=("ab" * 32,))
        with pytest.raises(CatalogValueError):
            m.Catalog(header=catalog.header, accounts=accounts).validate()


def test_catalog_of_refuses_a_virtual_number_twice() -> None:
    catalog = generator.generate_catalog(3, 2, 1)
    a = next(iter(catalog.accounts.values()))
    with pytest.raises(CatalogValueError):
        m.Catalog.of(catalog.header, [a, a])
