"""A synthetic catalog: realistic Russian accounts, deterministic from a seed.

For tests, benches and ``lobbypay demo``. Nothing here is real: street names are
common ones, surnames the most frequent Russian surnames, providers generic
("МУП «Водоканал»") with made-up INNs that pass the check-digit test.

Theory of operation
-------------------
Account ``i`` lives in building ``i // FLATS_PER_BUILDING``, flat
``i % FLATS_PER_BUILDING + 1``. Each building has its own random stream, seeded
from (seed, building), and its accounts are drawn from that stream in flat
order. So account ``i`` is the same whether a caller generates 0..n in one go or
any sub-range in a worker process: benches build chunks in parallel and still
get exactly the catalog a single process would (tested).

Virtual numbers are ``10**8 * (1 + seed % 9) + i`` (nine digits) followed by a
Luhn check digit (ISO/IEC 7812-1 annex B), because the kiosk checks Luhn on a
typed number by default. They increase with ``i``, so the generator yields
accounts already in the order the publisher writes them.

Card hashes follow the resident card profile (drivers/pcsc/identity.py): the
HMAC-SHA256 under the deployment's card-hash key of
``"lobbypay-card-v1" US "uid" US <upper-case hex UID>``. The demo catalog's cards
use :data:`DEMO_CARD_HASH_KEY`, so the demo's simulated card reader finds them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from central_sync.catalog import model as m
from central_sync.catalog import wire
from central_sync.catalog.errors import CatalogValueError

__all__ = [
    "DEMO_CARD_HASH_KEY",
    "DEMO_CARD_UIDS",
    "DEMO_SEED",
    "FLATS_PER_BUILDING",
    "SERVICE_CODES",
    "demo_catalog",
    "generate_account",
    "generate_catalog",
    "generate_header",
    "iter_accounts",
    "iter_records",
    "uid_card_hash",
    "virtual_number",
]

FLATS_PER_BUILDING = 64
ACCOUNTS_MAX = 10**8
DEFAULT_PERIOD = "2025-05"
DEMO_SEED = 2025
DEMO_CARD_HASH_KEY = b"lobbypay-demo-card-hash-key-v1!!"
"""The card-hash key of the demo deployment (public on purpose: demo only)."""

_US = "\x1f"


def uid_card_hash(uid_hex: str, key: bytes) -> str:
    """HMAC-SHA256 hex of a contactless card UID, as the card reader computes it."""
    message = _US.join(["lobbypay-card-v1", "uid", uid_hex.upper()]).encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def virtual_number(seed: int, index: int) -> str:
    """The virtual number of account ``index`` in the catalog of ``seed`` (Luhn-valid)."""
    if not 0 <= index < ACCOUNTS_MAX:
        raise CatalogValueError(f"account index must be in [0, {ACCOUNTS_MAX})")
    body = str(ACCOUNTS_MAX * (1 + seed % 9) + index)
    return body + m.luhn_check_digit(body)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class _City:
    code: str
    name: str
    region: str  # two-digit region code, the first digits of local INNs
    weight: int
    streets: tuple[str, ...]


_CITIES = (
    _City(
        "msk",
        "Москва",
        "77",
        8,
        (
            "ул. Тверская",
            "ул. Профсоюзная",
            "Ленинский пр-т",
            "ул. Бутлерова",
            "Кутузовский пр-т",
            "ул. Вавилова",
            "ул. Грина",
            "Варшавское ш.",
            "ул. Маршала Жукова",
            "Щёлковское ш.",
        ),
    ),
    _City(
        "spb",
        "Санкт-Петербург",
        "78",
        5,
        (
            "Невский пр-т",
            "Лиговский пр-т",
            "ул. Марата",
            "Московский пр-т",
            "ул. Бассейная",
            "пр-т Просвещения",
            "ул. Савушкина",
            "Гражданский пр-т",
        ),
    ),
    _City(
        "brn",
        "Барнаул",
        "22",
        3,
        (
            "пр-т Ленина",
            "ул. Малахова",
            "ул. Попова",
            "пр-т Строителей",
            "ул. Юрина",
            "ул. Матросова",
            "Павловский тракт",
            "ул. Антона Петрова",
            "пр-т Космонавтов",
        ),
    ),
    _City(
        "nsk",
        "Новосибирск",
        "54",
        4,
        (
            "Красный пр-т",
            "ул. Кирова",
            "ул. Гоголя",
            "ул. Фрунзе",
            "ул. Титова",
            "ул. Блюхера",
            "ул. Дуси Ковальчук",
        ),
    ),
    _City(
        "ekb",
        "Екатеринбург",
        "66",
        4,
        (
            "ул. Малышева",
            "ул. Мира",
            "ул. Крауля",
            "пр-т Ленина",
            "ул. Белинского",
            "ул. Шварца",
            "ул. Уральская",
        ),
    ),
    _City(
        "kzn",
        "Казань",
        "16",
        3,
        (
            "ул. Баумана",
            "пр-т Победы",
            "ул. Чистопольская",
            "ул. Декабристов",
            "ул. Адоратского",
            "пр-т Ямашева",
        ),
    ),
    _City(
        "nvl",
        "Новоалтайск",
        "22",
        1,
        (
            "ул. Октябрьская",
            "ул. Деповская",
            "ул. Григорьева",
            "ул. Барнаульская",
        ),
    ),
)

_SURNAMES = (
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьёв",
    "Борисов",
    "Яковлев",
    "Григорьев",
    "Романов",
    "Воробьёв",
    "Сергеев",
    "Кузьмин",
    "Фролов",
    "Александров",
    "Дмитриев",
    "Королёв",
    "Гусев",
    "Киселёв",
    "Ильин",
    "Максимов",
    "Поляков",
    "Сорокин",
    "Виноградов",
    "Ковалёв",
    "Белов",
    "Медведев",
    "Антонов",
    "Тарасов",
    "Жуков",
    "Баранов",
    "Филиппов",
    "Комаров",
    "Давыдов",
    "Беляев",
    "Герасимов",
    "Богданов",
    "Осипов",
    "Сидоров",
    "Матвеев",
    "Титов",
    "Марков",
    "Миронов",
    "Крылов",
    "Куликов",
    "Карпов",
    "Власов",
    "Мельников",
    "Денисов",
    "Вишневский",
    "Покровский",
    "Савицкий",
    "Шевченко",
    "Бондаренко",
    "Юдин",
)
_INITIALS = "АБВГДЕИКЛМНОПРСТЮЯ"

# code -> (name_ru, name_en, unit, monthly charge range in kopecks)
_SERVICES: dict[str, tuple[str, str, str, int, int]] = {
    "MGMT": ("Содержание и ремонт жилья", "Housing maintenance and repair", "m2", 150_000, 450_000),
    "CW": ("Холодное водоснабжение", "Cold water", "m3", 30_000, 90_000),
    "HW": ("Горячее водоснабжение", "Hot water", "m3", 60_000, 200_000),
    "EL": ("Электроснабжение", "Electricity", "kWh", 50_000, 250_000),
    "HEAT": ("Отопление", "Heating", "Gcal", 150_000, 500_000),
    "CAPR": ("Взнос на капитальный ремонт", "Capital repairs contribution", "m2", 50_000, 120_000),
    "WASTE": ("Обращение с ТКО", "Solid waste removal", "person", 20_000, 60_000),
    "SEW": ("Водоотведение", "Sewerage", "m3", 20_000, 60_000),
    "GAS": ("Газоснабжение", "Gas", "m3", 10_000, 40_000),
    "INTERCOM": ("Домофон", "Intercom", "flat", 5_000, 10_000),
}
SERVICE_CODES = tuple(_SERVICES)
_OPTIONAL_CODES = SERVICE_CODES[1:]
_METER_UNITS = {"CW": "m3", "HW": "m3", "EL": "kWh", "GAS": "m3", "HEAT": "Gcal"}
_METER_MAX_MILLI = {
    "CW": 1_500_000,
    "HW": 900_000,
    "EL": 60_000_000,
    "GAS": 9_000_000,
    "HEAT": 90_000,
}

# kind -> (provider id suffix, name_ru pattern, name_en pattern, service codes)
_PROVIDER_KINDS = (
    (
        "water",
        "МУП «Водоканал» г. {city}",
        "Vodokanal municipal water utility, {city_en}",
        ("CW", "SEW"),
    ),
    ("heat", "АО «Теплосеть» г. {city}", "Teploset heating network, {city_en}", ("HEAT", "HW")),
    ("power", "АО «Энергосбыт» г. {city}", "Energosbyt electricity supplier, {city_en}", ("EL",)),
    ("gas", "АО «Горгаз» г. {city}", "Gorgaz gas distribution, {city_en}", ("GAS",)),
    (
        "waste",
        "ООО «Регоператор ТКО» г. {city}",
        "Regional solid waste operator, {city_en}",
        ("WASTE",),
    ),
    ("capr", "НО «Фонд капремонта» г. {city}", "Capital repairs fund, {city_en}", ("CAPR",)),
    (
        "intercom",
        "ООО «Домофон-Сервис» г. {city}",
        "Domofon-Service intercoms, {city_en}",
        ("INTERCOM",),
    ),
)
_MANAGEMENT_COMPANIES = ("Домовой", "Уютный дом", "Жилсервис", "Наш дом")
_MANAGEMENT_COMPANIES_EN = ("Domovoy", "Uyutny Dom", "Zhilservis", "Nash Dom")


@dataclass(frozen=True, slots=True)
class _Universe:
    header: m.CatalogHeader
    # (city code, service code) -> providers serving it (several management companies)
    providers: dict[tuple[str, str], tuple[m.Provider, ...]]
    card_key: bytes
    city_weights: tuple[int, ...]


def _inn(rng: random.Random, region: str) -> str:
    return m.inn_complete(region + f"{rng.randrange(10**7):07d}")


@functools.lru_cache(maxsize=16)
def _universe(seed: int) -> _Universe:
    rng = random.Random(f"lobbypay-catalog-header:{seed}")  # noqa: S311 - synthetic data
    providers: list[m.Provider] = []
    by_service: dict[tuple[str, str], tuple[m.Provider, ...]] = {}
    for city in _CITIES:
        city_en = m.transliterate(city.name)
        for kind, name_ru, name_en, codes in _PROVIDER_KINDS:
            p = m.Provider(
                id=f"{city.code}-{kind}",
                name_ru=name_ru.format(city=city.name),
                name_en=name_en.format(city_en=city_en),
                inn=_inn(rng, city.region),
            )
            providers.append(p)
            for code in codes:
                by_service[(city.code, code)] = (p,)
        companies = []
        for n, (ru, en) in enumerate(
            zip(_MANAGEMENT_COMPANIES, _MANAGEMENT_COMPANIES_EN, strict=True)
        ):
            companies.append(
                m.Provider(
                    id=f"{city.code}-uk{n + 1}",
                    name_ru=f"ООО «УК «{ru}» г. {city.name}",
                    name_en=f"{en} management company, {city_en}",
                    inn=_inn(rng, city.region),
                )
            )
        providers.extend(companies)
        by_service[(city.code, "MGMT")] = tuple(companies)
    types = tuple(
        m.ServiceType(code=code, name_ru=ru, name_en=en) for code, (ru, en, *_) in _SERVICES.items()
    )
    tariffs = []
    for (_, code), provs in sorted(by_service.items()):
        unit, low, high = _SERVICES[code][2], _SERVICES[code][3], _SERVICES[code][4]
        for p in provs:
            # Russian utility tariffs are indexed every 1 July; arrears reach a
            # year back, so three generations of tariffs cover every period.
            price = low // 40 + int(rng.random() * (high // 20 - low // 40))
            for valid_from in ("2023-07", "2024-07", "2025-07"):
                tariffs.append(
                    m.Tariff(
                        service_code=code,
                        provider_id=p.id,
                        unit=unit,
                        price_minor=price,
                        valid_from=valid_from,
                    )
                )
                price = price * 111 // 100
    surcharges = [
        # A 1% card fee paid by the resident, which the resident must accept.
        m.SurchargeRule(percent_bp=100, max_minor=50_000),
        # Capital repairs funds bear the fee themselves (regional rules forbid a
        # resident fee on contributions), so it is informational only.
        m.SurchargeRule(service_code="CAPR", percent_bp=80, payer="provider"),
        # Intercom: a flat 10 RUB the resident may decline.
        m.SurchargeRule(service_code="INTERCOM", fixed_minor=1_000, declinable=True),
    ]
    for city in _CITIES:
        # Management companies pay the acquiring fee out of their own remit.
        for n in range(len(_MANAGEMENT_COMPANIES)):
            surcharges.append(
                m.SurchargeRule(
                    provider_id=f"{city.code}-uk{n + 1}", percent_bp=120, payer="provider"
                )
            )
    limits = (
        m.AmountLimits(),
        m.AmountLimits(service_code="CAPR", overpayment_max_minor=5_000_000),
        m.AmountLimits(service_code="WASTE", overpayment_max_minor=0),
    )
    header = m.CatalogHeader(
        providers=tuple(providers),
        service_types=types,
        tariffs=tuple(tariffs),
        surcharge_rules=tuple(surcharges),
        limits=limits,
    )
    return _Universe(
        header=header,
        providers=by_service,
        card_key=hashlib.sha256(f"lobbypay-synthetic-card-key:{seed}".encode()).digest(),
        city_weights=tuple(c.weight for c in _CITIES),
    )


def generate_header(seed: int) -> m.CatalogHeader:
    """The providers, service types, tariffs, surcharge rules and limits of ``seed``'s catalog."""
    return _universe(seed).header


# --------------------------------------------------------------------------- accounts


def _period_add(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:7])
    total = year * 12 + (month - 1) + months
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


# The generator makes wire records (lists), not model objects, and draws with
# ``int(r() * n)`` from ``random.random`` rather than ``randrange``/``choice``:
# about ten times cheaper in CPython, and the tiny bias is irrelevant for
# synthetic data. A million accounts take tens of millions of draws.


def _holder(r: Callable[[], float]) -> str:
    surname = _SURNAMES[int(r() * len(_SURNAMES))]
    if r() < 0.55:
        if surname.endswith(("ов", "ев", "ёв", "ин")):
            surname += "а"
        elif surname.endswith("ий"):
            surname = surname[:-2] + "ая"
    n = len(_INITIALS)
    return f"{surname} {_INITIALS[int(r() * n)]}. {_INITIALS[int(r() * n)]}."


def _service(r: Callable[[], float], code: str, provider_id: str, period: str) -> list[Any]:
    """One service record (catalog.wire layout)."""
    low, high = _SERVICES[code][3], _SERVICES[code][4]
    monthly = low + int(r() * (high - low))
    x = r()
    instalments: list[list[Any]] = []
    svc_period = period
    if x < 0.12:
        debt = -(100 + int(r() * (monthly // 2 - 100)))  # overpaid last month
    elif x < 0.25:
        debt = 0  # paid up
    elif x < 0.32:
        months = 3 + int(r() * 10)
        debt = monthly * months
        svc_period = _period_add(period, -months + 1)
        if r() < 0.5:
            # A repayment plan: equal monthly instalments due on the 10th, the
            # last one taking the remainder so they add up to the debt exactly.
            n = 3 + int(r() * 4)
            part = debt // n
            instalments = [
                [f"{_period_add(period, k + 1)}-10", part if k < n - 1 else debt - part * (n - 1)]
                for k in range(n)
            ]
    else:
        debt = monthly
    meters: list[list[Any]] = []
    unit = _METER_UNITS.get(code)
    if unit is not None and (code != "HEAT" or r() < 0.1):
        count = 2 if code in ("CW", "HW") and r() < 0.4 else 1
        top = _METER_MAX_MILLI[code]
        meters = [
            [f"{int(r() * 10**8):08d}", unit, int(r() * top), f"{period}-{18 + int(r() * 8)}"]
            for _ in range(count)
        ]
    return [code, provider_id, debt, svc_period, instalments, meters]


def _building(
    seed: int, building: int, services_per_account: int, period: str
) -> Iterator[list[Any]]:
    u = _universe(seed)
    rng = random.Random(seed * 1_000_003 + building)  # noqa: S311 - synthetic data
    r = rng.random
    city = rng.choices(_CITIES, weights=u.city_weights)[0]
    street = rng.choice(city.streets)
    house = str(rng.randrange(1, 180))
    if r() < 0.15:
        house += f" к{rng.randrange(1, 5)}"
    optional = list(_OPTIONAL_CODES)
    rng.shuffle(optional)
    codes = ["MGMT", *optional][:services_per_account]
    plan = [(code, rng.choice(u.providers[(city.code, code)]).id) for code in codes]
    building_id = f"{city.code}-b{building:06d}"
    key = u.card_key
    for flat in range(FLATS_PER_BUILDING):
        index = building * FLATS_PER_BUILDING + flat
        cards: list[str] = []
        if r() < 0.6:
            cards = [hmac.digest(key, b"card:%d" % index, "sha256").hex()]
        yield [
            virtual_number(seed, index),
            _holder(r),
            [city.name, street, house, str(flat + 1)],
            city.code,
            building_id,
            cards,
            [_service(r, code, provider_id, period) for code, provider_id in plan],
        ]


def iter_records(
    seed: int,
    start: int,
    stop: int,
    services_per_account: int = 5,
    *,
    period: str = DEFAULT_PERIOD,
) -> Iterator[list[Any]]:
    """Accounts ``start .. stop-1`` of ``seed``'s catalog as wire records (catalog.wire).

    The generator's native form: building model objects costs more than making
    the accounts, so benches that only publish stream these straight into
    :func:`~central_sync.catalog.wire.encode_line`.
    """
    if not 0 <= start <= stop <= ACCOUNTS_MAX:
        raise CatalogValueError(f"need 0 <= start <= stop <= {ACCOUNTS_MAX}")
    if not 1 <= services_per_account <= len(SERVICE_CODES):
        raise CatalogValueError(f"services_per_account must be 1..{len(SERVICE_CODES)}")
    building = start // FLATS_PER_BUILDING
    index = building * FLATS_PER_BUILDING
    while index < stop:
        for record in _building(seed, building, services_per_account, period):
            if start <= index < stop:
                yield record
            index += 1
        building += 1


def iter_accounts(
    seed: int,
    start: int,
    stop: int,
    services_per_account: int = 5,
    *,
    period: str = DEFAULT_PERIOD,
) -> Iterator[m.Account]:
    """Accounts ``start .. stop-1`` of ``seed``'s catalog, in virtual-number order."""
    header = generate_header(seed)
    for record in iter_records(seed, start, stop, services_per_account, period=period):
        yield wire.account_from_record(record, header)


def generate_account(seed: int, index: int, services_per_account: int = 5) -> m.Account:
    """Account ``index`` of ``seed``'s catalog."""
    return next(iter_accounts(seed, index, index + 1, services_per_account))


def generate_catalog(
    seed: int, accounts: int, services_per_account: int = 5, *, period: str = DEFAULT_PERIOD
) -> m.Catalog:
    """A whole synthetic catalog in memory (for tests and the demo; benches stream)."""
    return m.Catalog(
        header=generate_header(seed),
        accounts={
            a.virtual_number: a
            for a in iter_accounts(seed, 0, accounts, services_per_account, period=period)
        },
    )


# --------------------------------------------------------------------------- demo

DEMO_CARD_UIDS = {
    "04A1B2C3D4E580": "1000000008",
    "04F0E1D2C3B480": "1000000016",
}
"""Contactless card UIDs of the demo catalog -> the virtual number they open."""


def demo_catalog() -> m.Catalog:
    """A small fixed catalog for ``lobbypay demo``: three hand-made accounts and 61 generated.

    * 1000000008 — Иванова А. П., Барнаул: debts on five services, one with an
      instalment plan; card ``04A1B2C3D4E580``.
    * 1000000016 — Петров С. И., Москва, overpaid
      heating and nothing owed on water; card ``04F0E1D2C3B480``.
    * 1000000024 — Кузнецова Е. В., Новосибирск: everything paid up.
    """
    u = _universe(DEMO_SEED)
    h = u.header
    p = h.provider_by_id
    t = h.service_type_by_code

    def svc(
        code: str,
        provider_id: str,
        debt: int,
        period: str = DEFAULT_PERIOD,
        instalments: tuple[m.Instalment, ...] = (),
        meters: tuple[m.Meter, ...] = (),
    ) -> m.Service:
        return m.Service(
            code=code,
            name_ru=t[code].name_ru,
            name_en=t[code].name_en,
            provider=p[provider_id],
            debt_minor=debt,
            period=period,
            instalments=instalments,
            meters=meters,
        )

    def card(vn: str) -> tuple[str, ...]:
        return tuple(
            uid_card_hash(uid, DEMO_CARD_HASH_KEY) for uid, v in DEMO_CARD_UIDS.items() if v == vn
        )

    hand_made = [
        m.Account(
            virtual_number="1000000008",
            holder="Иванова А. П.",
            address=m.Address(city="Барнаул", street="ул. Малахова", house="86", flat="34"),
            deployment="brn",
            building="brn-demo-1",
            card_hashes=card("1000000008"),
            services=(
                svc("MGMT", "brn-uk1", 312_450),
                svc(
                    "CW",
                    "brn-water",
                    48_730,
                    meters=(
                        m.Meter(
                            meter_id="10457736",
                            unit="m3",
                            last_reading_milli=123_456,
                            last_read_on="2025-05-23",
                        ),
                    ),
                ),
                svc(
                    "HW",
                    "brn-heat",
                    1_145_600,
                    period="2025-01",
                    instalments=(
                        m.Instalment(due_date="2025-06-10", amount_minor=381_867),
                        m.Instalment(due_date="2025-07-10", amount_minor=381_867),
                        m.Instalment(due_date="2025-08-10", amount_minor=381_866),
                    ),
                ),
                svc(
                    "EL",
                    "brn-power",
                    96_412,
                    meters=(
                        m.Meter(
                            meter_id="31112094",
                            unit="kWh",
                            last_reading_milli=18_250_000,
                            last_read_on="2025-05-25",
                        ),
                    ),
                ),
                svc("CAPR", "brn-capr", 84_660),
            ),
        ),
        m.Account(
            virtual_number="1000000016",
            holder="Петров С. И.",
            address=m.Address(city="Москва", street="ул. Профсоюзная", house="43 к2", flat="118"),
            deployment="msk",
            building="msk-demo-1",
            card_hashes=card("1000000016"),
            services=(
                svc("MGMT", "msk-uk2", 405_120),
                svc("HEAT", "msk-heat", -152_300),
                svc("CW", "msk-water", 0),
                svc("INTERCOM", "msk-intercom", 7_500),
            ),
        ),
        m.Account(
            virtual_number="1000000024",
            holder="Кузнецова Е. В.",
            address=m.Address(city="Новосибирск", street="Красный пр-т", house="25", flat="7"),
            deployment="nsk",
            building="nsk-demo-1",
            services=(
                svc("MGMT", "nsk-uk3", 0),
                svc("EL", "nsk-power", 0),
                svc("WASTE", "nsk-waste", 0),
            ),
        ),
    ]
    generated = list(iter_accounts(DEMO_SEED, 3, 64, 5))
    return m.Catalog.of(h, hand_made + generated)
