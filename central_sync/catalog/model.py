"""The catalog model: accounts, services, providers, tariffs, surcharges and limits.

DESIGN.md, "The local catalog". These are the plain frozen dataclasses the kiosk,
the gateway and central use inside; outside input is validated at the boundary
(:mod:`central_sync.catalog.wire` for releases, :mod:`central_sync.catalog.billing_import`
for billing-center files) before it becomes one of these.

Money is ``int`` minor units (kopecks). A service's ``debt_minor`` is positive
when the resident owes and negative for an overpayment. Meter readings are
``int`` thousandths of the unit (``last_reading_milli``), because meters show up
to three decimals and we never use floats.

Holder names are stored only masked ("Иванова А. П."): the surname and initials
the resident needs to recognise the account, nothing more. English text for
addresses and names is the BGN/PCGN-style romanisation of the Russian
(:func:`transliterate`), which is also how Russian addresses are written on
international mail.

``__post_init__`` checks the invariants that are cheap (types, signs, ranges):
a catalog of a million accounts is built from these objects, so the format
checks by regular expression run once, at the boundary.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from central_sync.catalog.errors import CatalogValueError

__all__ = [
    "CARD_HASH_PATTERN",
    "DEBT_ABS_MAX_MINOR",
    "DEFAULT_AMOUNT_LIMITS",
    "LIMIT_MESSAGES",
    "PAYMENT_MAX_MINOR",
    "PERIOD_PATTERN",
    "PROVIDER_ID_PATTERN",
    "SERVICE_CODE_PATTERN",
    "VIRTUAL_NUMBER_PATTERN",
    "Account",
    "AccountView",
    "Address",
    "AmountLimits",
    "Catalog",
    "CatalogHeader",
    "Instalment",
    "Lang",
    "LimitProblem",
    "Meter",
    "Payer",
    "Provider",
    "Service",
    "ServiceType",
    "ServiceView",
    "SurchargeRule",
    "Tariff",
    "inn_valid",
    "luhn_check_digit",
    "luhn_valid",
    "mask_holder_name",
    "transliterate",
    "valid_date",
]

Lang = Literal["ru", "en"]
Payer = Literal["resident", "provider"]

# Formats, checked at the boundary (pydantic) and by Catalog.validate().
VIRTUAL_NUMBER_PATTERN = r"[0-9]{6,20}"
SERVICE_CODE_PATTERN = r"[A-Z][A-Z0-9_]{0,15}"
PROVIDER_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}"
ENTITY_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
PERIOD_PATTERN = r"[0-9]{4}-(?:0[1-9]|1[0-2])"
DATE_PATTERN = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
CARD_HASH_PATTERN = r"[0-9a-f]{64}"
INN_PATTERN = r"[0-9]{10}|[0-9]{12}"
# Printable text: no C0/C1 control characters. Names and addresses end up on
# receipts, and an ESC (0x1B) in a holder's name would be a printer command.
PRINTABLE_PATTERN = r"[^\x00-\x1f\x7f-\x9f]+"

# Bounds on values (CONVENTIONS.md 11: a limit on everything, unit last).
DEBT_ABS_MAX_MINOR = 10**12
PAYMENT_MAX_MINOR = 10**12
READING_MILLI_MAX = 10**15
BASIS_POINTS_MAX = 10_000
TEXT_CHARS_MAX = 200
SERVICES_PER_ACCOUNT_MAX = 64
INSTALMENTS_PER_SERVICE_MAX = 120
METERS_PER_SERVICE_MAX = 16
CARDS_PER_ACCOUNT_MAX = 16

_VN_RE = re.compile(VIRTUAL_NUMBER_PATTERN)
_CODE_RE = re.compile(SERVICE_CODE_PATTERN)
_PROVIDER_RE = re.compile(PROVIDER_ID_PATTERN)
_ENTITY_RE = re.compile(ENTITY_ID_PATTERN)
_PERIOD_RE = re.compile(PERIOD_PATTERN)
_DATE_RE = re.compile(DATE_PATTERN)
_CARD_RE = re.compile(CARD_HASH_PATTERN)


def _int(value: object, name: str, lo: int, hi: int) -> None:
    # ``type(...) is int`` refuses bool (and any int subclass) and is cheap: these
    # checks run tens of millions of times when a large catalog is built.
    if type(value) is not int:
        raise CatalogValueError(f"{name} must be an int (minor units), not {type(value).__name__}")
    if not lo <= value <= hi:
        raise CatalogValueError(f"{name} must be in [{lo}, {hi}]")


def _text(value: object, name: str) -> None:
    if type(value) is not str or not value or len(value) > TEXT_CHARS_MAX:
        raise CatalogValueError(f"{name} must be a string of 1..{TEXT_CHARS_MAX} characters")


def _tuple_of(value: object, kind: type, name: str, count_max: int) -> None:
    if type(value) is not tuple or len(value) > count_max:
        raise CatalogValueError(f"{name} must be a tuple of at most {count_max} items")
    for item in value:
        if type(item) is not kind:
            raise CatalogValueError(f"{name} items must be {kind.__name__}")


def valid_date(text: str) -> bool:
    """True for an ISO 8601 calendar date "YYYY-MM-DD" that exists (no 2025-02-30)."""
    if not _DATE_RE.fullmatch(text):
        return False
    try:
        _dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- helpers


def luhn_check_digit(body: str) -> str:
    """The Luhn (ISO/IEC 7812-1 annex B) check digit to append to ``body`` digits."""
    if not body.isascii() or not body.isdigit():
        raise CatalogValueError("Luhn body must be ASCII digits")
    total = 0
    # Double every second digit counting from the right of the body, because
    # the check digit will take the rightmost position.
    for i, ch in enumerate(reversed(body)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True when ``number`` is ASCII digits whose last digit is its Luhn check digit."""
    if len(number) < 2 or not number.isascii() or not number.isdigit():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _inn_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(w * (ord(c) - 48) for w, c in zip(weights, digits, strict=False)) % 11 % 10


def inn_valid(inn: str) -> bool:
    """True for a Russian taxpayer number (INN) with correct check digits.

    10 digits for organisations, 12 for individuals; the check digits are the
    weighted sums mod 11 mod 10 of the Federal Tax Service's algorithm.
    """
    if not inn.isascii() or not inn.isdigit():
        return False
    if len(inn) == 10:
        return _inn_digit(inn, _INN10_WEIGHTS) == ord(inn[9]) - 48
    if len(inn) == 12:
        return (
            _inn_digit(inn, _INN12_WEIGHTS_1) == ord(inn[10]) - 48
            and _inn_digit(inn, _INN12_WEIGHTS_2) == ord(inn[11]) - 48
        )
    return False


def inn_complete(body: str) -> str:
    """Append the check digit to a 9-digit organisation INN body (for generators)."""
    assert len(body) == 9, body
    assert body.isdigit(), body
    return body + str(_inn_digit(body, _INN10_WEIGHTS))


_TRANSLIT = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ё": "yo",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "y",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "yu",
    "я": "ya",
}
_TRANSLIT_TABLE = {ord(k): v for k, v in _TRANSLIT.items()}
_TRANSLIT_TABLE.update({ord(k.upper()): (v[:1].upper() + v[1:]) for k, v in _TRANSLIT.items() if v})
_TRANSLIT_TABLE.update({ord("Ъ"): "", ord("Ь"): "", ord("«"): '"', ord("»"): '"', ord("№"): "No."})


def transliterate(text: str) -> str:
    """Romanise Russian text (simplified BGN/PCGN 1947): "Юрина" -> "Yurina".

    Latin text, digits and punctuation pass through unchanged.
    """
    return text.translate(_TRANSLIT_TABLE)


_MASK_SPLIT_RE = re.compile(r"[\s.]+")


def mask_holder_name(full_name: str) -> str:
    """Keep the surname, reduce given names to initials: "Иванова Анна Петровна" -> "Иванова А. П.".

    Already masked names come out in the same normal form ("Иванова А.П." ->
    "Иванова А. П."). The catalog stores only this masked form.
    """
    parts = [p for p in _MASK_SPLIT_RE.split(full_name.strip()) if p]
    if not parts:
        raise CatalogValueError("holder name is empty")
    surname, given = parts[0], parts[1:3]
    initials = " ".join(f"{p[0].upper()}." for p in given)
    return f"{surname} {initials}".strip()


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """A provider of a service (water utility, management company, ...)."""

    id: str
    name_ru: str
    name_en: str
    inn: str

    def __post_init__(self) -> None:
        _text(self.id, "provider id")
        _text(self.name_ru, "provider name_ru")
        _text(self.name_en, "provider name_en")
        if not inn_valid(self.inn):
            raise CatalogValueError(f"provider {self.id}: INN has wrong length or check digit")

    def name(self, lang: Lang) -> str:
        return self.name_ru if lang == "ru" else self.name_en


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceType:
    """What a service code means: "HW" is hot water, in both languages."""

    code: str
    name_ru: str
    name_en: str

    def __post_init__(self) -> None:
        _text(self.code, "service code")
        _text(self.name_ru, "service name_ru")
        _text(self.name_en, "service name_en")


@dataclass(frozen=True, slots=True, kw_only=True)
class Instalment:
    """One instalment of a plan: pay ``amount_minor`` by ``due_date`` (ISO 8601 date)."""

    due_date: str
    amount_minor: int

    def __post_init__(self) -> None:
        _text(self.due_date, "instalment due_date")
        _int(self.amount_minor, "instalment amount_minor", 1, DEBT_ABS_MAX_MINOR)


@dataclass(frozen=True, slots=True, kw_only=True)
class Meter:
    """A meter linked to a service, with its last accepted reading."""

    meter_id: str
    unit: str
    last_reading_milli: int
    last_read_on: str | None = None

    def __post_init__(self) -> None:
        _text(self.meter_id, "meter id")
        _text(self.unit, "meter unit")
        _int(self.last_reading_milli, "meter last_reading_milli", 0, READING_MILLI_MAX)
        if self.last_read_on is not None:
            _text(self.last_read_on, "meter last_read_on")


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A service on an account: what is owed (or overpaid) to whom, for which period."""

    code: str
    name_ru: str
    name_en: str
    provider: Provider
    debt_minor: int
    period: str
    instalments: tuple[Instalment, ...] = ()
    meters: tuple[Meter, ...] = ()

    def __post_init__(self) -> None:
        if type(self.provider) is not Provider:
            raise CatalogValueError("service provider must be a Provider")
        _int(self.debt_minor, "service debt_minor", -DEBT_ABS_MAX_MINOR, DEBT_ABS_MAX_MINOR)
        _text(self.code, "service code")
        _text(self.period, "service period")
        if self.meters:
            _tuple_of(self.meters, Meter, "meters", METERS_PER_SERVICE_MAX)
        elif type(self.meters) is not tuple:
            raise CatalogValueError("meters must be a tuple")
        if self.instalments:
            self._check_instalments()
        elif type(self.instalments) is not tuple:
            raise CatalogValueError("instalments must be a tuple")

    def _check_instalments(self) -> None:
        _tuple_of(self.instalments, Instalment, "instalments", INSTALMENTS_PER_SERVICE_MAX)
        if self.debt_minor <= 0:
            raise CatalogValueError(f"service {self.code}: instalments need a positive debt")
        if sum(i.amount_minor for i in self.instalments) > self.debt_minor:
            raise CatalogValueError(f"service {self.code}: instalments exceed the debt")
        dues = [i.due_date for i in self.instalments]
        if any(a >= b for a, b in itertools.pairwise(dues)):
            raise CatalogValueError(f"service {self.code}: instalment dates must increase")

    def name(self, lang: Lang) -> str:
        return self.name_ru if lang == "ru" else self.name_en

    def next_instalment(self, today: str) -> Instalment | None:
        """The first instalment due on or after ``today`` (ISO date), if any."""
        for inst in self.instalments:
            if inst.due_date >= today:
                return inst
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    """A flat's address, in Russian as the billing center writes it."""

    city: str
    street: str
    house: str
    flat: str | None = None

    def __post_init__(self) -> None:
        _text(self.city, "address city")
        _text(self.street, "address street")
        _text(self.house, "address house")
        if self.flat is not None:
            _text(self.flat, "address flat")

    def format(self, lang: Lang = "ru") -> str:
        """One line: "г. Барнаул, ул. Ленина, д. 12, кв. 34" (en: "Barnaul, ul. Lenina, ...")."""
        if lang == "ru":
            text = f"г. {self.city}, {self.street}, д. {self.house}"
            return f"{text}, кв. {self.flat}" if self.flat else text
        text = (
            f"{transliterate(self.city)}, {transliterate(self.street)}, {transliterate(self.house)}"
        )
        return f"{text}, apt. {transliterate(self.flat)}" if self.flat else text


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """An account (лицевой счёт) by its virtual number, with its services."""

    virtual_number: str
    holder: str
    address: Address
    deployment: str
    building: str
    card_hashes: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()

    def __post_init__(self) -> None:
        if type(self.virtual_number) is not str or not _VN_RE.fullmatch(self.virtual_number):
            raise CatalogValueError("virtual number must be 6..20 ASCII digits")
        _text(self.holder, "holder")
        if type(self.address) is not Address:
            raise CatalogValueError("address must be an Address")
        _text(self.deployment, "deployment")
        _text(self.building, "building")
        _tuple_of(self.card_hashes, str, "card_hashes", CARDS_PER_ACCOUNT_MAX)
        _tuple_of(self.services, Service, "services", SERVICES_PER_ACCOUNT_MAX)

    def holder_name(self, lang: Lang = "ru") -> str:
        return self.holder if lang == "ru" else transliterate(self.holder)

    @property
    def debt_total_minor(self) -> int:
        """Sum of what is owed over all services (overpayments count negative)."""
        return sum(s.debt_minor for s in self.services)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True, kw_only=True)
class Tariff:
    """Price per unit of a service by a provider, valid from a billing period on."""

    service_code: str
    provider_id: str
    unit: str
    price_minor: int
    valid_from: str

    def __post_init__(self) -> None:
        _text(self.service_code, "tariff service_code")
        _text(self.provider_id, "tariff provider_id")
        _text(self.unit, "tariff unit")
        _int(self.price_minor, "tariff price_minor", 0, PAYMENT_MAX_MINOR)
        _text(self.valid_from, "tariff valid_from")


@dataclass(frozen=True, slots=True, kw_only=True)
class SurchargeRule:
    """A surcharge (commission) on a payment, by provider and/or service.

    ``None`` for ``provider_id`` or ``service_code`` means "any". The amount is
    ``percent_bp`` basis points of the payment (rounded half up to a kopeck) plus
    ``fixed_minor``, then clamped to ``[min_minor, max_minor]``. ``payer`` says who
    bears it: the resident (added on top) or the provider (kept from the remit,
    shown for information). A ``declinable`` surcharge may be refused by the
    resident, who then pays without it; declining one that is not declinable
    cancels the payment.
    """

    provider_id: str | None = None
    service_code: str | None = None
    percent_bp: int = 0
    fixed_minor: int = 0
    min_minor: int = 0
    max_minor: int | None = None
    payer: Payer = "resident"
    declinable: bool = False

    def __post_init__(self) -> None:
        _int(self.percent_bp, "surcharge percent_bp", 0, BASIS_POINTS_MAX)
        _int(self.fixed_minor, "surcharge fixed_minor", 0, PAYMENT_MAX_MINOR)
        _int(self.min_minor, "surcharge min_minor", 0, PAYMENT_MAX_MINOR)
        if self.max_minor is not None:
            _int(self.max_minor, "surcharge max_minor", self.min_minor, PAYMENT_MAX_MINOR)
        if self.payer not in ("resident", "provider"):
            raise CatalogValueError("surcharge payer must be 'resident' or 'provider'")
        if not isinstance(self.declinable, bool):
            raise CatalogValueError("surcharge declinable must be a bool")

    @property
    def scope(self) -> tuple[str | None, str | None]:
        return (self.provider_id, self.service_code)

    def amount_for(self, amount_minor: int) -> int:
        """The surcharge on a payment of ``amount_minor`` kopecks."""
        _int(amount_minor, "payment amount_minor", 0, PAYMENT_MAX_MINOR)
        value = (amount_minor * self.percent_bp + BASIS_POINTS_MAX // 2) // BASIS_POINTS_MAX
        value += self.fixed_minor
        value = max(value, self.min_minor)
        if self.max_minor is not None:
            value = min(value, self.max_minor)
        return value


LIMIT_MESSAGES: Mapping[str, Mapping[Lang, str]] = {
    "below-min": {
        "ru": "Сумма меньше минимальной для этой услуги",
        "en": "The amount is below the minimum for this service",
    },
    "above-max": {
        "ru": "Сумма больше максимальной для одного платежа",
        "en": "The amount is above the maximum for one payment",
    },
    "overpayment": {
        "ru": "Переплата больше допустимой для этой услуги",
        "en": "The overpayment is larger than this service allows",
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitProblem:
    """Why an amount is not accepted; ``message(lang)`` is for the resident."""

    code: Literal["below-min", "above-max", "overpayment"]
    limit_minor: int

    def message(self, lang: Lang) -> str:
        return LIMIT_MESSAGES[self.code][lang]


@dataclass(frozen=True, slots=True, kw_only=True)
class AmountLimits:
    """How much one payment may be, by provider and/or service (``None`` = any).

    A payment must be within ``[payment_min_minor, payment_max_minor]`` and may
    exceed the debt (an advance or overpayment) by at most ``overpayment_max_minor``.
    """

    provider_id: str | None = None
    service_code: str | None = None
    payment_min_minor: int = 100
    payment_max_minor: int = 15_000_000
    overpayment_max_minor: int = 1_000_000

    def __post_init__(self) -> None:
        _int(self.payment_min_minor, "payment_min_minor", 1, PAYMENT_MAX_MINOR)
        _int(self.payment_max_minor, "payment_max_minor", self.payment_min_minor, PAYMENT_MAX_MINOR)
        _int(self.overpayment_max_minor, "overpayment_max_minor", 0, PAYMENT_MAX_MINOR)

    @property
    def scope(self) -> tuple[str | None, str | None]:
        return (self.provider_id, self.service_code)

    def check(self, amount_minor: int, debt_minor: int) -> LimitProblem | None:
        """None if a payment of ``amount_minor`` against ``debt_minor`` is allowed."""
        _int(amount_minor, "payment amount_minor", 0, PAYMENT_MAX_MINOR)
        if amount_minor < self.payment_min_minor:
            return LimitProblem(code="below-min", limit_minor=self.payment_min_minor)
        if amount_minor > self.payment_max_minor:
            return LimitProblem(code="above-max", limit_minor=self.payment_max_minor)
        allowed = max(debt_minor, 0) + self.overpayment_max_minor
        if amount_minor > allowed:
            return LimitProblem(code="overpayment", limit_minor=allowed)
        return None


DEFAULT_AMOUNT_LIMITS = AmountLimits()
"""Used when no limit in the catalog matches: 1.00 .. 150 000.00 RUB, overpay up to 10 000.00."""


_RuleT = TypeVar("_RuleT", SurchargeRule, AmountLimits)
_K = TypeVar("_K")
_V = TypeVar("_V")


def _most_specific(
    rules: Mapping[tuple[str | None, str | None], _RuleT], provider_id: str, service_code: str
) -> _RuleT | None:
    for key in (
        (provider_id, service_code),
        (provider_id, None),
        (None, service_code),
        (None, None),
    ):
        rule = rules.get(key)
        if rule is not None:
            return rule
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogHeader:
    """Everything in a catalog that is not per account: small, sent in every release."""

    providers: tuple[Provider, ...] = ()
    service_types: tuple[ServiceType, ...] = ()
    tariffs: tuple[Tariff, ...] = ()
    surcharge_rules: tuple[SurchargeRule, ...] = ()
    limits: tuple[AmountLimits, ...] = ()
    provider_by_id: Mapping[str, Provider] = field(init=False, repr=False, compare=False)
    service_type_by_code: Mapping[str, ServiceType] = field(init=False, repr=False, compare=False)
    _surcharge_by_scope: Mapping[tuple[str | None, str | None], SurchargeRule] = field(
        init=False, repr=False, compare=False
    )
    _limits_by_scope: Mapping[tuple[str | None, str | None], AmountLimits] = field(
        init=False, repr=False, compare=False
    )
    _tariffs_by_key: Mapping[tuple[str, str], tuple[Tariff, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _tuple_of(self.providers, Provider, "providers", 100_000)
        _tuple_of(self.service_types, ServiceType, "service_types", 10_000)
        _tuple_of(self.tariffs, Tariff, "tariffs", 100_000)
        _tuple_of(self.surcharge_rules, SurchargeRule, "surcharge_rules", 100_000)
        _tuple_of(self.limits, AmountLimits, "limits", 100_000)
        providers = _unique({p.id: p for p in self.providers}, self.providers, "provider id")
        types = _unique({t.code: t for t in self.service_types}, self.service_types, "service code")
        surcharges = _unique(
            {r.scope: r for r in self.surcharge_rules}, self.surcharge_rules, "surcharge scope"
        )
        limits = _unique({r.scope: r for r in self.limits}, self.limits, "limits scope")
        seen_tariffs = {(t.provider_id, t.service_code, t.valid_from) for t in self.tariffs}
        if len(seen_tariffs) != len(self.tariffs):
            raise CatalogValueError("two tariffs for one provider, service and valid_from")
        for pid, code in [
            *((t.provider_id, t.service_code) for t in self.tariffs),
            *(r.scope for r in self.surcharge_rules),
            *(r.scope for r in self.limits),
        ]:
            if pid is not None and pid not in providers:
                raise CatalogValueError(f"rule refers to unknown provider {pid!r}")
            if code is not None and code not in types:
                raise CatalogValueError(f"rule refers to unknown service code {code!r}")
        object.__setattr__(self, "provider_by_id", providers)
        object.__setattr__(self, "service_type_by_code", types)
        object.__setattr__(self, "_surcharge_by_scope", surcharges)
        object.__setattr__(self, "_limits_by_scope", limits)
        by_key: dict[tuple[str, str], list[Tariff]] = {}
        for t in self.tariffs:
            by_key.setdefault((t.provider_id, t.service_code), []).append(t)
        object.__setattr__(
            self,
            "_tariffs_by_key",
            {k: tuple(sorted(v, key=lambda t: t.valid_from)) for k, v in by_key.items()},
        )

    def surcharge_for(self, provider_id: str, service_code: str) -> SurchargeRule | None:
        """The most specific surcharge rule: (provider, service) > provider > service > any."""
        return _most_specific(self._surcharge_by_scope, provider_id, service_code)

    def limits_for(self, provider_id: str, service_code: str) -> AmountLimits:
        """The most specific amount limits, or :data:`DEFAULT_AMOUNT_LIMITS`."""
        found = _most_specific(self._limits_by_scope, provider_id, service_code)
        return DEFAULT_AMOUNT_LIMITS if found is None else found

    def tariff_for(self, provider_id: str, service_code: str, period: str) -> Tariff | None:
        """The tariff in force for ``period`` ("YYYY-MM"): the latest ``valid_from`` <= period."""
        best: Tariff | None = None
        for t in self._tariffs_by_key.get((provider_id, service_code), ()):
            if t.valid_from > period:
                break
            best = t
        return best

    def validate_formats(self) -> None:
        """Check the string formats that ``__post_init__`` leaves to the boundary."""
        for p in self.providers:
            if not _PROVIDER_RE.fullmatch(p.id):
                raise CatalogValueError(f"provider id {p.id!r} has a bad format")
        for t in self.service_types:
            if not _CODE_RE.fullmatch(t.code):
                raise CatalogValueError(f"service code {t.code!r} has a bad format")
        for tariff in self.tariffs:
            if not _PERIOD_RE.fullmatch(tariff.valid_from):
                raise CatalogValueError(f"tariff valid_from {tariff.valid_from!r} is not YYYY-MM")


def _unique(mapping: dict[_K, _V], items: tuple[_V, ...], what: str) -> dict[_K, _V]:
    if len(mapping) != len(items):
        raise CatalogValueError(f"duplicate {what} in catalog header")
    return mapping


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    """A whole catalog as central holds it: the header and the accounts by virtual number."""

    header: CatalogHeader
    accounts: Mapping[str, Account]

    def __post_init__(self) -> None:
        if type(self.header) is not CatalogHeader:
            raise CatalogValueError("catalog header must be a CatalogHeader")
        for vn, account in self.accounts.items():
            if type(account) is not Account or account.virtual_number != vn:
                raise CatalogValueError(f"catalog key {vn!r} does not match its account")

    @classmethod
    def of(cls, header: CatalogHeader, accounts: list[Account] | tuple[Account, ...]) -> Catalog:
        """Build a catalog from a list of accounts; duplicate virtual numbers are an error."""
        by_vn = {a.virtual_number: a for a in accounts}
        if len(by_vn) != len(accounts):
            raise CatalogValueError("duplicate virtual number in catalog")
        return cls(header=header, accounts=by_vn)

    def validate(self) -> None:
        """Check every cross reference and format (central does this before publishing).

        Every service's provider and names must be the header's; card hashes must
        be 64 lowercase hex digits and belong to one account only; dates and
        periods must be real.
        """
        self.header.validate_formats()
        providers = self.header.provider_by_id
        types = self.header.service_type_by_code
        owner: dict[str, str] = {}
        for vn, account in self.accounts.items():
            if not _ENTITY_RE.fullmatch(account.deployment) or not _ENTITY_RE.fullmatch(
                account.building
            ):
                raise CatalogValueError(f"account {vn}: deployment/building id has a bad format")
            for h in account.card_hashes:
                if not _CARD_RE.fullmatch(h):
                    raise CatalogValueError(f"account {vn}: card hash is not 64 lowercase hex")
                if owner.setdefault(h, vn) != vn:
                    raise CatalogValueError(f"card hash on two accounts: {owner[h]} and {vn}")
            codes = [s.code for s in account.services]
            if len(set(codes)) != len(codes):
                raise CatalogValueError(f"account {vn}: one service code twice")
            for s in account.services:
                if providers.get(s.provider.id) != s.provider:
                    raise CatalogValueError(f"account {vn}: service {s.code}: unknown provider")
                stype = types.get(s.code)
                if stype is None or (stype.name_ru, stype.name_en) != (s.name_ru, s.name_en):
                    raise CatalogValueError(f"account {vn}: service {s.code} not in the header")
                if not _PERIOD_RE.fullmatch(s.period):
                    raise CatalogValueError(f"account {vn}: service {s.code}: bad period")
                for inst in s.instalments:
                    if not valid_date(inst.due_date):
                        raise CatalogValueError(f"account {vn}: bad instalment date")
                for m in s.meters:
                    if m.last_read_on is not None and not valid_date(m.last_read_on):
                        raise CatalogValueError(f"account {vn}: bad meter reading date")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceView:
    """A service as the kiosk or gateway offers it: with its surcharge, limits and tariff."""

    service: Service
    surcharge: SurchargeRule | None
    limits: AmountLimits
    tariff: Tariff | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountView:
    """What one lookup returns: the account, its services with rules, and the catalog version."""

    account: Account
    services: tuple[ServiceView, ...]
    catalog_version: int

    @property
    def virtual_number(self) -> str:
        return self.account.virtual_number
