"""The catalog's record layout on the wire and in the store (format 1).

A release carries one JSON text per line (JSON Lines). Each line is canonical
JSON (:mod:`central_sync.canonical`): UTF-8, no whitespace, integers only. Account
records are *positional arrays*, not objects: a million accounts times five
services is tens of millions of values, and arrays cost half the bytes and half
the time of objects with keys (measured: 447 vs 755 bytes per account, 10 vs 18 µs
to encode, 6.5 vs 12 µs to validate). The layout is fixed by ``RECORD_FORMAT``; a
release in another format is refused as an unknown version.

Account record (a line of a snapshot; the value stored per account)::

    [virtual_number, holder_masked, [city, street, house, flat|null],
     deployment, building, [card_hash_hex, ...], [service, ...]]

    service = [code, provider_id, debt_minor, "YYYY-MM",
               [[due_date, amount_minor], ...],
               [[meter_id, unit, last_reading_milli, last_read_on|null], ...]]

Delta line: ``["put", account_record]`` or ``["del", virtual_number]``.

Header (the small, non-account part; an object inside the signed manifest)::

    {"providers": [{"id", "name_ru", "name_en", "inn"}],
     "service_types": [{"code", "name_ru", "name_en"}],
     "tariffs": [{"service_code", "provider_id", "unit", "price_minor", "valid_from"}],
     "surcharge_rules": [{"provider_id"|null, "service_code"|null, "percent_bp",
                          "fixed_minor", "min_minor", "max_minor"|null, "payer",
                          "declinable"}],
     "limits": [{"provider_id"|null, "service_code"|null, "payment_min_minor",
                 "payment_max_minor", "overpayment_max_minor"}]}

Lines from outside are validated with pydantic in strict mode (CONVENTIONS.md 8),
then cross-checked against the header (known providers and service codes, real
dates). Anything wrong raises :class:`MalformedReleaseError`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import pydantic
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from central_sync.catalog import model as m
from central_sync.catalog.errors import CatalogValueError, MalformedReleaseError

__all__ = [
    "RECORD_FORMAT",
    "RecordChecker",
    "account_from_record",
    "account_to_record",
    "decode_json",
    "delta_del_line",
    "delta_put_line",
    "encode_line",
    "header_from_wire",
    "header_to_wire",
    "record_line",
]

RECORD_FORMAT = 1

# One encoder for every line: arrays only (and sorted keys for the header), no
# whitespace, no ASCII escaping, no NaN: the canonical form of central_sync.canonical
# without its per-value type walk, which our own typed model makes unnecessary.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)


def encode_line(value: Any) -> bytes:
    """Canonical JSON bytes of a value built from our own model (no newline)."""
    return _ENCODER.encode(value).encode("utf-8")


def decode_json(data: bytes) -> Any:
    """Parse JSON bytes quickly (pydantic-core's parser); floats become float."""
    return pydantic_core.from_json(data)


# --------------------------------------------------------------------------- encode


def _service_record(s: m.Service) -> list[Any]:
    return [
        s.code,
        s.provider.id,
        s.debt_minor,
        s.period,
        [[i.due_date, i.amount_minor] for i in s.instalments],
        [[x.meter_id, x.unit, x.last_reading_milli, x.last_read_on] for x in s.meters],
    ]


def account_to_record(a: m.Account) -> list[Any]:
    """The positional record of an account (see the module docstring)."""
    addr = a.address
    return [
        a.virtual_number,
        a.holder,
        [addr.city, addr.street, addr.house, addr.flat],
        a.deployment,
        a.building,
        list(a.card_hashes),
        [_service_record(s) for s in a.services],
    ]


def record_line(a: m.Account) -> bytes:
    """One snapshot line for an account (without the newline)."""
    return encode_line(account_to_record(a))


def delta_put_line(a: m.Account) -> bytes:
    return encode_line(["put", account_to_record(a)])


def delta_del_line(virtual_number: str) -> bytes:
    return encode_line(["del", virtual_number])


def header_to_wire(h: m.CatalogHeader) -> dict[str, Any]:
    """The header as a JSON object for the signed manifest."""
    return {
        "providers": [
            {"id": p.id, "name_ru": p.name_ru, "name_en": p.name_en, "inn": p.inn}
            for p in h.providers
        ],
        "service_types": [
            {"code": t.code, "name_ru": t.name_ru, "name_en": t.name_en} for t in h.service_types
        ],
        "tariffs": [
            {
                "service_code": t.service_code,
                "provider_id": t.provider_id,
                "unit": t.unit,
                "price_minor": t.price_minor,
                "valid_from": t.valid_from,
            }
            for t in h.tariffs
        ],
        "surcharge_rules": [
            {
                "provider_id": r.provider_id,
                "service_code": r.service_code,
                "percent_bp": r.percent_bp,
                "fixed_minor": r.fixed_minor,
                "min_minor": r.min_minor,
                "max_minor": r.max_minor,
                "payer": r.payer,
                "declinable": r.declinable,
            }
            for r in h.surcharge_rules
        ],
        "limits": [
            {
                "provider_id": r.provider_id,
                "service_code": r.service_code,
                "payment_min_minor": r.payment_min_minor,
                "payment_max_minor": r.payment_max_minor,
                "overpayment_max_minor": r.overpayment_max_minor,
            }
            for r in h.limits
        ],
    }


# --------------------------------------------------------------------------- schemas

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)

Text = Annotated[
    str,
    StringConstraints(
        strict=True, min_length=1, max_length=m.TEXT_CHARS_MAX, pattern=f"^{m.PRINTABLE_PATTERN}$"
    ),
]
VirtualNumber = Annotated[
    str, StringConstraints(strict=True, pattern=f"^{m.VIRTUAL_NUMBER_PATTERN}$")
]
ServiceCode = Annotated[str, StringConstraints(strict=True, pattern=f"^{m.SERVICE_CODE_PATTERN}$")]
ProviderId = Annotated[str, StringConstraints(strict=True, pattern=f"^{m.PROVIDER_ID_PATTERN}$")]
EntityId = Annotated[str, StringConstraints(strict=True, pattern=f"^{m.ENTITY_ID_PATTERN}$")]
Period = Annotated[str, StringConstraints(strict=True, pattern=f"^{m.PERIOD_PATTERN}$")]
IsoDate = Annotated[str, StringConstraints(strict=True, pattern=f"^{m.DATE_PATTERN}$")]
CardHash = Annotated[str, StringConstraints(strict=True, pattern=f"^{m.CARD_HASH_PATTERN}$")]
Inn = Annotated[str, StringConstraints(strict=True, pattern=f"^(?:{m.INN_PATTERN})$")]
Debt = Annotated[int, Field(strict=True, ge=-m.DEBT_ABS_MAX_MINOR, le=m.DEBT_ABS_MAX_MINOR)]
Money = Annotated[int, Field(strict=True, ge=0, le=m.PAYMENT_MAX_MINOR)]
PositiveMoney = Annotated[int, Field(strict=True, ge=1, le=m.DEBT_ABS_MAX_MINOR)]
Reading = Annotated[int, Field(strict=True, ge=0, le=m.READING_MILLI_MAX)]

InstalmentRec = tuple[IsoDate, PositiveMoney]
MeterRec = tuple[Text, Text, Reading, IsoDate | None]
AddressRec = tuple[Text, Text, Text, Text | None]


def _record_types(code: Any, provider: Any, services_max: int) -> tuple[Any, Any]:
    """The account record and delta line types for given service-code and provider types."""
    service = tuple[
        code,
        provider,
        Debt,
        Period,
        Annotated[list[InstalmentRec], Field(max_length=m.INSTALMENTS_PER_SERVICE_MAX)],
        Annotated[list[MeterRec], Field(max_length=m.METERS_PER_SERVICE_MAX)],
    ]
    account = tuple[
        VirtualNumber,
        Text,
        AddressRec,
        EntityId,
        EntityId,
        Annotated[list[CardHash], Field(max_length=m.CARDS_PER_ACCOUNT_MAX)],
        Annotated[list[service], Field(max_length=services_max)],
    ]
    delta = tuple[Literal["put"], account] | tuple[Literal["del"], VirtualNumber]
    return account, delta


ServiceRec = tuple[
    ServiceCode,
    ProviderId,
    Debt,
    Period,
    list[InstalmentRec],
    list[MeterRec],
]
AccountRec = tuple[VirtualNumber, str, AddressRec, str, str, list[CardHash], list[ServiceRec]]
DeltaRec = tuple[Literal["put"], AccountRec] | tuple[Literal["del"], VirtualNumber]


@functools.lru_cache(maxsize=8)
def _validators(
    codes: tuple[str, ...], providers: tuple[str, ...]
) -> tuple[pydantic_core.SchemaValidator, pydantic_core.SchemaValidator]:
    # Known service codes and providers become Literal types, so pydantic-core
    # checks membership while it parses, instead of a Python loop per service.
    # With no codes or providers in the header, no account may have a service.
    if codes and providers:
        types = _record_types(Literal[codes], Literal[providers], m.SERVICES_PER_ACCOUNT_MAX)
    else:
        types = _record_types(ServiceCode, ProviderId, 0)
    account: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(types[0])
    delta: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(types[1])
    return account.validator, delta.validator  # type: ignore[return-value]


class ProviderWire(BaseModel):
    model_config = _STRICT
    id: ProviderId
    name_ru: Text
    name_en: Text
    inn: Inn


class ServiceTypeWire(BaseModel):
    model_config = _STRICT
    code: ServiceCode
    name_ru: Text
    name_en: Text


class TariffWire(BaseModel):
    model_config = _STRICT
    service_code: ServiceCode
    provider_id: ProviderId
    unit: Text
    price_minor: Money
    valid_from: Period


class SurchargeWire(BaseModel):
    model_config = _STRICT
    provider_id: ProviderId | None
    service_code: ServiceCode | None
    percent_bp: Annotated[int, Field(strict=True, ge=0, le=m.BASIS_POINTS_MAX)]
    fixed_minor: Money
    min_minor: Money
    max_minor: Money | None
    payer: Literal["resident", "provider"]
    declinable: bool


class LimitsWire(BaseModel):
    model_config = _STRICT
    provider_id: ProviderId | None
    service_code: ServiceCode | None
    payment_min_minor: Money
    payment_max_minor: Money
    overpayment_max_minor: Money


HEADER_ITEMS_MAX = 100_000
ERROR_CHARS_MAX = 200


class HeaderWire(BaseModel):
    model_config = _STRICT
    providers: Annotated[list[ProviderWire], Field(max_length=HEADER_ITEMS_MAX)]
    service_types: Annotated[list[ServiceTypeWire], Field(max_length=HEADER_ITEMS_MAX)]
    tariffs: Annotated[list[TariffWire], Field(max_length=HEADER_ITEMS_MAX)]
    surcharge_rules: Annotated[list[SurchargeWire], Field(max_length=HEADER_ITEMS_MAX)]
    limits: Annotated[list[LimitsWire], Field(max_length=HEADER_ITEMS_MAX)]


def _first_error(exc: pydantic_core.ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "record"
    message = str(err["msg"])
    if len(message) > ERROR_CHARS_MAX:  # a Literal's message lists every allowed value
        message = message[: ERROR_CHARS_MAX - 3] + "..."
    return f"{where}: {message}"


def header_from_wire(value: Mapping[str, Any]) -> m.CatalogHeader:
    """Validate a header object from a manifest and build the model."""
    try:
        hw = HeaderWire.model_validate(value)
        return m.CatalogHeader(
            providers=tuple(m.Provider(**p.model_dump()) for p in hw.providers),
            service_types=tuple(m.ServiceType(**t.model_dump()) for t in hw.service_types),
            tariffs=tuple(m.Tariff(**t.model_dump()) for t in hw.tariffs),
            surcharge_rules=tuple(m.SurchargeRule(**r.model_dump()) for r in hw.surcharge_rules),
            limits=tuple(m.AmountLimits(**r.model_dump()) for r in hw.limits),
        )
    except pydantic.ValidationError as exc:
        raise MalformedReleaseError(f"catalog header: {_first_error(exc)}") from None
    except CatalogValueError as exc:
        raise MalformedReleaseError(f"catalog header: {exc}") from None


# --------------------------------------------------------------------------- check


@functools.lru_cache(maxsize=8192)
def _real_date(text: str) -> bool:
    # The pattern admits 2024-02-30; the calendar does not. Dates repeat a lot
    # across a catalog, so a small cache makes this check nearly free.
    try:
        _dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


class RecordChecker:
    """Validates record lines from a release against one header.

    ``check_account(line)`` and ``check_delta(line)`` return the validated record
    and raise :class:`MalformedReleaseError` saying what is wrong.
    """

    def __init__(self, header: m.CatalogHeader) -> None:
        self._account, self._delta = _validators(
            tuple(sorted(header.service_type_by_code)), tuple(sorted(header.provider_by_id))
        )

    def check_account(self, line: bytes) -> AccountRec:
        try:
            rec: AccountRec = self._account.validate_json(line, strict=True)
        except pydantic_core.ValidationError as exc:
            raise MalformedReleaseError(_first_error(exc)) from None
        self._cross_check(rec)
        return rec

    def check_delta(self, line: bytes) -> DeltaRec:
        try:
            rec: DeltaRec = self._delta.validate_json(line, strict=True)
        except pydantic_core.ValidationError as exc:
            raise MalformedReleaseError(_first_error(exc)) from None
        if rec[0] == "put":
            self._cross_check(rec[1])
        return rec

    @staticmethod
    def _cross_check(rec: AccountRec) -> None:
        # The hot loop of applying a snapshot (a million accounts, five services
        # each); what pydantic cannot check, with the rare cases out of line.
        services = rec[6]
        if len(services) > 1 and len({svc[0] for svc in services}) != len(services):
            raise MalformedReleaseError(f"account {rec[0]}: one service code twice")
        for svc in services:
            if svc[4]:
                RecordChecker._check_instalments(rec, svc)
            for meter in svc[5]:
                day = meter[3]
                if day is not None and not _real_date(day):
                    raise MalformedReleaseError(f"account {rec[0]}: bad meter reading date")
        cards = rec[5]
        if len(cards) > 1 and len(set(cards)) != len(cards):
            raise MalformedReleaseError(f"account {rec[0]}: one card hash twice")

    @staticmethod
    def _check_instalments(rec: AccountRec, svc: ServiceRec) -> None:
        inst = svc[4]
        if svc[2] <= 0 or sum(a for _, a in inst) > svc[2]:
            raise MalformedReleaseError(f"account {rec[0]}: instalments exceed the debt")
        for i, (due, _) in enumerate(inst):
            if not _real_date(due) or (i and inst[i - 1][0] >= due):
                raise MalformedReleaseError(f"account {rec[0]}: bad instalment dates")


# --------------------------------------------------------------------------- decode


def account_from_record(rec: Sequence[Any], header: m.CatalogHeader) -> m.Account:
    """Build an Account from a record that was validated when it was stored."""
    providers = header.provider_by_id
    types = header.service_type_by_code
    services = []
    for code, pid, debt, period, inst, meters in rec[6]:
        stype = types[code]
        services.append(
            m.Service(
                code=code,
                name_ru=stype.name_ru,
                name_en=stype.name_en,
                provider=providers[pid],
                debt_minor=debt,
                period=period,
                instalments=tuple(m.Instalment(due_date=d, amount_minor=a) for d, a in inst),
                meters=tuple(
                    m.Meter(meter_id=i, unit=u, last_reading_milli=r, last_read_on=on)
                    for i, u, r, on in meters
                ),
            )
        )
    city, street, house, flat = rec[2]
    return m.Account(
        virtual_number=rec[0],
        holder=rec[1],
        address=m.Address(city=city, street=street, house=house, flat=flat),
        deployment=rec[3],
        building=rec[4],
        card_hashes=tuple(rec[5]),
        services=tuple(services),
    )
