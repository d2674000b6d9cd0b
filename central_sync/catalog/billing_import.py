"""Billing-center files (CSV or JSON) into a :class:`~central_sync.catalog.model.Catalog`.

DESIGN.md, "The central ledger service": import of the billing center's
accounts, services and debts. Central runs this (``lobbypay central
import-billing FILE``), then publishes the result with
:func:`~central_sync.catalog.publish.build_snapshot` or ``build_delta``.

Every bad row is reported with its line number, all of them, not just the first
(CONVENTIONS.md 9), and a file with any problem imports nothing: the caller gets
a :class:`BillingImportError` whose ``problems`` are ``(line, field, message)``.

File shape
----------
One row per account and service. The columns (CSV) or keys (JSON) are:

==================  ========  ==================================================
name                required  meaning
==================  ========  ==================================================
account             yes       virtual number (лицевой счёт), 6..20 digits
holder              yes       holder's name; stored only masked ("Иванова А. П.")
city, street,       yes       address; ``flat`` may be empty
house, flat
deployment          no        deployment id (default: the ``deployment`` argument)
building            no        building id (default: derived from the address)
card_hashes         no        resident card hashes (64 hex digits each)
service_code        yes       e.g. ``HW`` (A-Z, 0-9, _; starts with a letter)
service_name_ru     yes       "Горячее водоснабжение"
service_name_en     no        "Hot water" (default: romanised Russian name)
provider_id         yes       e.g. ``brn-water``
provider_name_ru    yes [1]   "МУП «Водоканал» г. Барнаул"
provider_name_en    no        default: romanised Russian name
provider_inn        yes [1]   10 or 12 digits with valid check digits
debt | debt_minor   one       owed (+) or overpaid (-): ``debt`` in rubles as a
                              decimal string with at most 2 fraction digits
                              ("1234.56", "-15,5"), or ``debt_minor`` in kopecks
                              (an integer). Never a JSON number with a fraction.
period              yes       billing period ``YYYY-MM``
instalments         no        plan: due date and amount per instalment
meters              no        meter id, unit, last reading (up to 3 decimals),
                              date of the reading
==================  ========  ==================================================

[1] JSON files may instead declare providers once in a top-level ``providers``
list and leave these out of the rows.

**CSV**: UTF-8 (a BOM is fine), a header row with the names above (any order,
any case), ``,`` or ``;`` as the delimiter (whichever the header row uses), and
``"`` quotes. List cells are separated by spaces:

* ``card_hashes``: ``<hex> <hex>``
* ``instalments``: ``2025-06-10=1500.00 2025-07-10=1500.00`` (amounts in the
  same unit as the file's debt column: rubles for ``debt``, kopecks for
  ``debt_minor``)
* ``meters``: ``10457736:m3:123.456:2025-05-23`` (the date may be left out)

**JSON**: either a list of row objects, or an object with ``"rows": [...]`` and
optionally ``providers``, ``service_types``, ``tariffs``, ``surcharge_rules`` and
``limits`` (same fields as the catalog header, see catalog/wire.py). In rows,
``card_hashes`` is a list of strings, ``instalments`` a list of
``{"due_date", "amount"}`` (or ``"amount_minor"``), and ``meters`` a list of
``{"id", "unit", "reading"`` (decimal string) or ``"reading_milli"``, ``"read_on"}``.
A JSON row's line is the line where its ``{`` is.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from central_sync.catalog import model as m
from central_sync.catalog import wire
from central_sync.catalog.errors import (
    BillingImportError,
    BillingProblem,
    CatalogValueError,
    MalformedReleaseError,
)

__all__ = [
    "BILLING_FILE_BYTES_MAX",
    "BillingImportError",
    "BillingProblem",
    "BillingRow",
    "CatalogPolicy",
    "billing_rows",
    "parse_billing_bytes",
    "parse_billing_file",
    "parse_money",
    "write_billing_file",
]

BILLING_FILE_BYTES_MAX = 2 * 1024**3
ROWS_MAX = 20_000_000
PROBLEMS_MAX = 10_000

_MONEY_RE = re.compile(r"(-?)(0|[1-9][0-9]{0,12})(?:[.,]([0-9]{1,2}))?")
_READING_RE = re.compile(r"(0|[1-9][0-9]{0,11})(?:[.,]([0-9]{1,3}))?")
_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
_WS_RE = re.compile(r"[ \t\n\r]*")

_COLUMNS = (
    "account",
    "holder",
    "city",
    "street",
    "house",
    "flat",
    "deployment",
    "building",
    "card_hashes",
    "service_code",
    "service_name_ru",
    "service_name_en",
    "provider_id",
    "provider_name_ru",
    "provider_name_en",
    "provider_inn",
    "debt",
    "debt_minor",
    "period",
    "instalments",
    "meters",
)
_REQUIRED_COLUMNS = (
    "account",
    "holder",
    "city",
    "street",
    "house",
    "service_code",
    "service_name_ru",
    "provider_id",
    "period",
)


def parse_money(text: str) -> int:
    """Rubles as a decimal string -> kopecks, exactly: "1234.5" -> 123450.

    At most two fraction digits, ``.`` or ``,`` as the separator, no thousands
    separators, no exponent. Raises ValueError otherwise.
    """
    match = _MONEY_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            "money must be rubles with at most 2 decimals, like 1234.56 (or kopecks in *_minor)"
        )
    sign, whole, frac = match.groups()
    value = int(whole) * 100 + int((frac or "").ljust(2, "0"))
    return -value if sign else value


def _parse_reading(text: str) -> int:
    match = _READING_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError("a meter reading is a number with at most 3 decimals, like 123.456")
    whole, frac = match.groups()
    return int(whole) * 1000 + int((frac or "").ljust(3, "0"))


# --------------------------------------------------------------------------- row model

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True, str_strip_whitespace=True)


def _pattern(p: str) -> Any:
    return StringConstraints(strict=True, strip_whitespace=True, pattern=f"^(?:{p})$")


Text = Annotated[
    str,
    StringConstraints(
        strict=True,
        strip_whitespace=True,
        min_length=1,
        max_length=m.TEXT_CHARS_MAX,
        pattern=f"^{m.PRINTABLE_PATTERN}$",
    ),
]
OptText = (
    Annotated[
        str,
        StringConstraints(
            strict=True,
            strip_whitespace=True,
            max_length=m.TEXT_CHARS_MAX,
            pattern=f"^(?:{m.PRINTABLE_PATTERN})?$",
        ),
    ]
    | None
)
VirtualNumber = Annotated[str, _pattern(m.VIRTUAL_NUMBER_PATTERN)]
ServiceCode = Annotated[str, _pattern(m.SERVICE_CODE_PATTERN)]
ProviderId = Annotated[str, _pattern(m.PROVIDER_ID_PATTERN)]
EntityId = Annotated[str, _pattern(m.ENTITY_ID_PATTERN)]
Period = Annotated[str, _pattern(m.PERIOD_PATTERN)]
IsoDate = Annotated[str, _pattern(m.DATE_PATTERN)]
Kopecks = Annotated[int, Field(strict=True, ge=-m.DEBT_ABS_MAX_MINOR, le=m.DEBT_ABS_MAX_MINOR)]


def _decimal_string(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(
        'must be a decimal string like "1234.56": a JSON number can lose kopecks'
        " (use the *_minor field for integer kopecks)"
    )


def _reading_string(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(
        'must be a decimal string like "123.456" (or reading_milli, an integer in thousandths)'
    )


def _real_date(value: str | None) -> str | None:
    if value is not None and not m.valid_date(value):
        raise ValueError("is not a real calendar date")
    return value


class InstalmentIn(BaseModel):
    model_config = _STRICT
    due_date: IsoDate
    amount: str | None = None
    amount_minor: Kopecks | None = None

    _decimal = field_validator("amount", mode="before")(_decimal_string)
    _date = field_validator("due_date")(_real_date)


class MeterIn(BaseModel):
    model_config = _STRICT
    id: Text
    unit: Annotated[
        str,
        StringConstraints(
            strict=True, min_length=1, max_length=16, pattern=f"^{m.PRINTABLE_PATTERN}$"
        ),
    ]
    reading: str | None = None
    reading_milli: Annotated[int, Field(strict=True, ge=0, le=m.READING_MILLI_MAX)] | None = None
    read_on: IsoDate | None = None

    _decimal = field_validator("reading", mode="before")(_reading_string)
    _date = field_validator("read_on")(_real_date)


class BillingRow(BaseModel):
    """One row of a billing-center file, validated (see the module docstring)."""

    model_config = _STRICT
    account: VirtualNumber
    holder: Text
    city: Text
    street: Text
    house: Annotated[
        str,
        StringConstraints(
            strict=True,
            strip_whitespace=True,
            min_length=1,
            max_length=32,
            pattern=f"^{m.PRINTABLE_PATTERN}$",
        ),
    ]
    flat: OptText = None
    deployment: EntityId | None = None
    building: EntityId | None = None
    card_hashes: Annotated[list[str], Field(max_length=m.CARDS_PER_ACCOUNT_MAX)] = []
    service_code: ServiceCode
    service_name_ru: Text
    service_name_en: OptText = None
    provider_id: ProviderId
    provider_name_ru: OptText = None
    provider_name_en: OptText = None
    provider_inn: Annotated[str, _pattern(m.INN_PATTERN)] | None = None
    debt: str | None = None
    debt_minor: Kopecks | None = None
    period: Period
    instalments: Annotated[list[InstalmentIn], Field(max_length=m.INSTALMENTS_PER_SERVICE_MAX)] = []
    meters: Annotated[list[MeterIn], Field(max_length=m.METERS_PER_SERVICE_MAX)] = []

    _decimal = field_validator("debt", mode="before")(_decimal_string)

    @field_validator("card_hashes")
    @classmethod
    def _card_hashes(cls, value: list[str]) -> list[str]:
        out = [h.strip().lower() for h in value]
        for h in out:
            if not re.fullmatch(m.CARD_HASH_PATTERN, h):
                raise ValueError("a card hash is 64 hex digits")
        if len(set(out)) != len(out):
            raise ValueError("one card hash twice")
        return out

    @field_validator("provider_inn")
    @classmethod
    def _inn(cls, value: str | None) -> str | None:
        if value is not None and not m.inn_valid(value):
            raise ValueError("INN check digit is wrong")
        return value


_FORMATS = {
    "holder": "must be printable text (no control characters)",
    "city": "must be printable text (no control characters)",
    "street": "must be printable text (no control characters)",
    "flat": "must be printable text (no control characters)",
    "service_name_ru": "must be printable text (no control characters)",
    "service_name_en": "must be printable text (no control characters)",
    "provider_name_ru": "must be printable text (no control characters)",
    "provider_name_en": "must be printable text (no control characters)",
    "id": "must be printable text (no control characters)",
    "house": "must be printable text (no control characters)",
    "unit": "must be printable text (no control characters)",
    "account": "must be 6..20 digits",
    "deployment": "must be letters, digits and _ . : - (up to 64)",
    "building": "must be letters, digits and _ . : - (up to 64)",
    "service_code": "must be A-Z, 0-9 or _, starting with a letter (up to 16)",
    "provider_id": "must be letters, digits and _ . - (up to 32)",
    "provider_inn": "must be 10 or 12 digits",
    "period": "must be a billing period YYYY-MM",
    "due_date": "must be a date YYYY-MM-DD",
    "read_on": "must be a date YYYY-MM-DD",
}


def _message(err: Any) -> str:
    """A technician-readable message for one pydantic error (no regexes shown)."""
    if err["type"] == "string_pattern_mismatch":
        return _FORMATS.get(str(err["loc"][-1]), "has the wrong format")
    if err["type"] == "extra_forbidden":
        return "is not a known field"
    return str(err["msg"]).removeprefix("Value error, ")


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogPolicy:
    """Header parts central adds to an import: tariffs, surcharge rules and limits."""

    tariffs: tuple[m.Tariff, ...] = ()
    surcharge_rules: tuple[m.SurchargeRule, ...] = ()
    limits: tuple[m.AmountLimits, ...] = ()


# --------------------------------------------------------------------------- assembly


@dataclass
class _Builder:
    """Collects validated rows, cross-checks them, and reports problems by line."""

    deployment: str
    problems: list[BillingProblem] = field(default_factory=list)
    providers: dict[str, tuple[m.Provider, int]] = field(default_factory=dict)
    types: dict[str, tuple[m.ServiceType, int]] = field(default_factory=dict)
    # account -> (first line, account fields, services by code with their lines)
    accounts: dict[str, tuple[int, tuple[Any, ...], dict[str, m.Service]]] = field(
        default_factory=dict
    )
    service_lines: dict[tuple[str, str], int] = field(default_factory=dict)
    card_owner: dict[str, tuple[str, int]] = field(default_factory=dict)
    rows: int = 0

    def problem(self, line: int, field_name: str, message: str) -> None:
        if len(self.problems) < PROBLEMS_MAX:
            self.problems.append(BillingProblem(line, field_name, message))
        elif len(self.problems) == PROBLEMS_MAX:
            self.problems.append(
                BillingProblem(line, "file", f"more than {PROBLEMS_MAX} problems; stopped listing")
            )

    def declare_provider(self, p: m.Provider, line: int) -> None:
        known = self.providers.get(p.id)
        if known is None:
            self.providers[p.id] = (p, line)
        elif known[0] != p:
            self.problem(line, "provider_id", f"{p.id} differs from line {known[1]}")

    def add(self, line: int, raw: Mapping[str, Any]) -> None:
        self.rows += 1
        if self.rows > ROWS_MAX:
            if self.rows == ROWS_MAX + 1:
                self.problem(line, "file", f"more than {ROWS_MAX} rows")
            return
        try:
            row = BillingRow.model_validate(raw)
        except pydantic.ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                loc = ".".join(str(p) for p in err["loc"]) or "row"
                self.problem(line, loc, _message(err))
            return
        before = len(self.problems)
        service = self._service(line, row)
        if service is None or len(self.problems) > before:
            return
        self._account(line, row, service)

    def _service(self, line: int, row: BillingRow) -> m.Service | None:
        if (row.debt is None) == (row.debt_minor is None):
            self.problem(line, "debt", "give exactly one of debt (rubles) or debt_minor (kopecks)")
            return None
        try:
            debt = parse_money(row.debt) if row.debt is not None else row.debt_minor
        except ValueError as exc:
            self.problem(line, "debt", str(exc))
            return None
        assert debt is not None
        if abs(debt) > m.DEBT_ABS_MAX_MINOR:
            self.problem(line, "debt", "is out of range")
            return None
        provider = self._provider(line, row)
        stype = m.ServiceType(
            code=row.service_code,
            name_ru=row.service_name_ru,
            name_en=row.service_name_en or m.transliterate(row.service_name_ru),
        )
        known = self.types.get(stype.code)
        if known is None:
            self.types[stype.code] = (stype, line)
        elif known[0] != stype:
            self.problem(
                line, "service_name_ru", f"{stype.code} is named differently on line {known[1]}"
            )
        instalments = []
        for n, inst in enumerate(row.instalments):
            try:
                if (inst.amount is None) == (inst.amount_minor is None):
                    raise ValueError("give exactly one of amount or amount_minor")
                amount = parse_money(inst.amount) if inst.amount is not None else inst.amount_minor
                assert amount is not None
                instalments.append(m.Instalment(due_date=inst.due_date, amount_minor=amount))
            except (ValueError, CatalogValueError) as exc:
                self.problem(line, f"instalments.{n}", str(exc))
        meters = []
        for n, meter in enumerate(row.meters):
            try:
                if (meter.reading is None) == (meter.reading_milli is None):
                    raise ValueError("give exactly one of reading or reading_milli")
                reading = (
                    _parse_reading(meter.reading)
                    if meter.reading is not None
                    else meter.reading_milli
                )
                assert reading is not None
                meters.append(
                    m.Meter(
                        meter_id=meter.id,
                        unit=meter.unit,
                        last_reading_milli=reading,
                        last_read_on=meter.read_on,
                    )
                )
            except (ValueError, CatalogValueError) as exc:
                self.problem(line, f"meters.{n}", str(exc))
        if provider is None:
            return None
        try:
            return m.Service(
                code=stype.code,
                name_ru=stype.name_ru,
                name_en=stype.name_en,
                provider=provider,
                debt_minor=debt,
                period=row.period,
                instalments=tuple(instalments),
                meters=tuple(meters),
            )
        except CatalogValueError as exc:
            self.problem(line, "instalments", str(exc))
            return None

    def _provider(self, line: int, row: BillingRow) -> m.Provider | None:
        declared = self.providers.get(row.provider_id)
        if row.provider_name_ru is None and row.provider_inn is None and declared is not None:
            return declared[0]
        if not row.provider_name_ru or row.provider_inn is None:
            self.problem(line, "provider_inn", "provider_name_ru and provider_inn are required")
            return None
        p = m.Provider(
            id=row.provider_id,
            name_ru=row.provider_name_ru,
            name_en=row.provider_name_en or m.transliterate(row.provider_name_ru),
            inn=row.provider_inn,
        )
        self.declare_provider(p, line)
        return p

    def _account(self, line: int, row: BillingRow, service: m.Service) -> None:
        building = row.building or _building_id(self.deployment, row)
        fields = (
            m.mask_holder_name(row.holder),
            row.city,
            row.street,
            row.house,
            row.flat or None,
            row.deployment or self.deployment,
            building,
            tuple(row.card_hashes),
        )
        entry = self.accounts.get(row.account)
        if entry is None:
            entry = (line, fields, {})
            self.accounts[row.account] = entry
            for h in row.card_hashes:
                owner = self.card_owner.setdefault(h, (row.account, line))
                if owner[0] != row.account:
                    self.problem(
                        line, "card_hashes", f"card already on account {owner[0]} (line {owner[1]})"
                    )
        elif entry[1] != fields:
            names = (
                "holder",
                "city",
                "street",
                "house",
                "flat",
                "deployment",
                "building",
                "card_hashes",
            )
            which = next(n for n, a, b in zip(names, entry[1], fields, strict=True) if a != b)
            self.problem(line, which, f"differs from line {entry[0]} for account {row.account}")
            return
        key = (row.account, service.code)
        if key in self.service_lines:
            self.problem(
                line,
                "service_code",
                f"account {row.account} already has {service.code}"
                f" (line {self.service_lines[key]})",
            )
            return
        self.service_lines[key] = line
        entry[2][service.code] = service

    def catalog(self, policy: CatalogPolicy) -> m.Catalog:
        if not self.problems and not self.accounts:
            # Publishing an empty catalog would wipe every account from every
            # terminal; an empty export is a billing-center mistake.
            self.problem(0, "file", "has no account rows")
        if self.problems:
            raise BillingImportError(self.problems)
        providers = set(self.providers)
        codes = set(self.types)

        def known(pid: str | None, code: str | None) -> bool:
            return (pid is None or pid in providers) and (code is None or code in codes)

        try:
            header = m.CatalogHeader(
                providers=tuple(p for p, _ in self.providers.values()),
                service_types=tuple(t for t, _ in self.types.values()),
                # Central's policy may name providers this file has no rows for;
                # such entries could apply to nothing here, so they are left out.
                tariffs=tuple(t for t in policy.tariffs if known(t.provider_id, t.service_code)),
                surcharge_rules=tuple(r for r in policy.surcharge_rules if known(*r.scope)),
                limits=tuple(r for r in policy.limits if known(*r.scope)),
            )
        except CatalogValueError as exc:
            raise BillingImportError([BillingProblem(0, "header", str(exc))]) from None
        accounts: dict[str, m.Account] = {}
        for vn, (line, f, services) in self.accounts.items():
            try:
                accounts[vn] = m.Account(
                    virtual_number=vn,
                    holder=f[0],
                    address=m.Address(city=f[1], street=f[2], house=f[3], flat=f[4]),
                    deployment=f[5],
                    building=f[6],
                    card_hashes=f[7],
                    services=tuple(services.values()),
                )
            except CatalogValueError as exc:
                self.problem(line, "account", str(exc))
        catalog = m.Catalog(header=header, accounts=accounts)
        if not self.problems:
            try:
                catalog.validate()
            except CatalogValueError as exc:
                self.problem(0, "catalog", str(exc))
        if self.problems:
            raise BillingImportError(self.problems)
        return catalog


def _building_id(deployment: str, row: BillingRow) -> str:
    # A stable id per address when the billing center gives none.
    digest = hashlib.sha256(f"{row.city}\x1f{row.street}\x1f{row.house}".encode()).hexdigest()
    return f"{deployment}-{digest[:12]}"


# --------------------------------------------------------------------------- CSV


def _split_list(text: str) -> list[str]:
    return text.split()


def _csv_row(cells: Mapping[str, str], money_unit: Literal["rub", "kop"]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value in cells.items():
        value = value.strip()
        if value == "":
            continue
        if name == "card_hashes":
            row[name] = _split_list(value)
        elif name == "debt_minor":
            row[name] = int(value) if _INT_RE.fullmatch(value) else value
        elif name == "instalments":
            items = []
            for item in _split_list(value):
                due, _, amount = item.partition("=")
                if money_unit == "rub":
                    items.append({"due_date": due, "amount": amount})
                else:
                    amount_minor: Any = int(amount) if _INT_RE.fullmatch(amount) else amount
                    items.append({"due_date": due, "amount_minor": amount_minor})
            row[name] = items
        elif name == "meters":
            meters = []
            for item in _split_list(value):
                parts = item.split(":")
                meter: dict[str, Any] = {"id": parts[0]}
                if len(parts) > 1:
                    meter["unit"] = parts[1]
                if len(parts) > 2:
                    meter["reading"] = parts[2]
                if len(parts) > 3:
                    meter["read_on"] = parts[3]
                if len(parts) > 4:
                    meter["extra"] = ":".join(parts[4:])  # refused by the model
                meters.append(meter)
            row[name] = meters
        else:
            row[name] = value
    return row


def _parse_csv(text: str, b: _Builder) -> None:
    lines = io.StringIO(text, newline="")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        b.problem(1, "header", f"not valid CSV: {exc}")
        return
    if header is None:
        b.problem(1, "header", "the file is empty")
        return
    names = [h.strip().lower() for h in header]
    bad = False
    for n, name in enumerate(names):
        if name not in _COLUMNS:
            b.problem(1, name or f"column {n + 1}", "unknown column")
            bad = True
        elif names.index(name) != n:
            b.problem(1, name, "column given twice")
            bad = True
    for name in _REQUIRED_COLUMNS:
        if name not in names:
            b.problem(1, name, "required column is missing")
            bad = True
    if ("debt" in names) == ("debt_minor" in names):
        b.problem(
            1, "debt", "give exactly one of the columns debt (rubles) or debt_minor (kopecks)"
        )
        bad = True
    if bad:
        return
    money_unit: Literal["rub", "kop"] = "rub" if "debt" in names else "kop"
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            b.problem(line, "row", f"not valid CSV: {exc}")
            line = reader.line_num + 1
            continue
        if cells and any(c.strip() for c in cells):
            if len(cells) != len(names):
                b.problem(line, "row", f"has {len(cells)} cells, the header has {len(names)}")
            else:
                b.add(line, _csv_row(dict(zip(names, cells, strict=True)), money_unit))
        line = reader.line_num + 1


# --------------------------------------------------------------------------- JSON


class _JsonNumber:
    """A JSON number with a fraction or exponent: never money (kept to report it)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _DuplicateKeyError(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _array_item_lines(text: str, idx: int, decode: Callable[[str, int], Any]) -> list[int]:
    # ``text[idx]`` is the ``[`` of an array that json.loads already accepted.
    lines: list[int] = []
    line, at = 1 + text.count("\n", 0, idx), idx
    idx = _WS_RE.match(text, idx + 1).end()  # type: ignore[union-attr]
    while text[idx] != "]":
        line += text.count("\n", at, idx)
        at = idx
        lines.append(line)
        _, idx = decode(text, idx)
        idx = _WS_RE.match(text, idx).end()  # type: ignore[union-attr]
        if text[idx] == ",":
            idx = _WS_RE.match(text, idx + 1).end()  # type: ignore[union-attr]
    return lines


def _row_lines(text: str) -> list[int]:
    """The line on which each row starts, for a document json.loads accepted."""
    decoder = json.JSONDecoder()
    decode = decoder.raw_decode
    idx = _WS_RE.match(text, 0).end()  # type: ignore[union-attr]
    if text[idx] == "[":
        return _array_item_lines(text, idx, decode)
    idx = _WS_RE.match(text, idx + 1).end()  # type: ignore[union-attr]
    while text[idx] != "}":
        key, idx = decode(text, idx)
        idx = _WS_RE.match(text, idx).end()  # type: ignore[union-attr]
        idx = _WS_RE.match(text, idx + 1).end()  # type: ignore[union-attr]  # the ":"
        if key == "rows" and text[idx] == "[":
            return _array_item_lines(text, idx, decode)
        _, idx = decode(text, idx)
        idx = _WS_RE.match(text, idx).end()  # type: ignore[union-attr]
        if text[idx] == ",":
            idx = _WS_RE.match(text, idx + 1).end()  # type: ignore[union-attr]
    return []


_TOP_KEYS = {"format", "rows", "providers", "service_types", "tariffs", "surcharge_rules", "limits"}


def _parse_json(text: str, b: _Builder) -> CatalogPolicy:
    try:
        doc = json.loads(text, parse_float=_JsonNumber, object_pairs_hook=_pairs)
    except json.JSONDecodeError as exc:
        b.problem(exc.lineno, "json", f"not valid JSON: {exc.msg}")
        return CatalogPolicy()
    except _DuplicateKeyError as exc:
        b.problem(0, str(exc), "key given twice in one object")
        return CatalogPolicy()
    except RecursionError:
        b.problem(0, "json", "nested too deeply")
        return CatalogPolicy()
    if isinstance(doc, list):
        rows, doc = doc, {}
    elif isinstance(doc, dict):
        for key in doc:
            if key not in _TOP_KEYS:
                b.problem(0, key, "unknown top-level key")
        if doc.get("format", "lobbypay-billing-v1") != "lobbypay-billing-v1":
            b.problem(0, "format", "must be lobbypay-billing-v1")
        rows = doc.get("rows", [])
    else:
        b.problem(1, "json", "the document must be a list of rows or an object with rows")
        return CatalogPolicy()
    if not isinstance(rows, list):
        b.problem(0, "rows", "must be a list")
        return CatalogPolicy()
    policy = _json_header(doc, b)
    lines = _row_lines(text) if rows else []
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        if not isinstance(row, dict):
            b.problem(line, "row", "must be an object")
            continue
        b.add(line, row)
    return policy


def _json_header(doc: Mapping[str, Any], b: _Builder) -> CatalogPolicy:
    """Header sections of a JSON file, validated like a release header."""
    sections = {k: doc.get(k, []) for k in _TOP_KEYS - {"format", "rows"}}
    for key, value in sections.items():
        if not isinstance(value, list):
            b.problem(0, key, "must be a list")
            return CatalogPolicy()
    try:
        header = wire.header_from_wire(sections)
    except MalformedReleaseError as exc:
        b.problem(0, "header", str(exc).removeprefix("catalog header: "))
        return CatalogPolicy()
    for p in header.providers:
        b.declare_provider(p, 0)
    for t in header.service_types:
        b.types.setdefault(t.code, (t, 0))
    return CatalogPolicy(
        tariffs=header.tariffs, surcharge_rules=header.surcharge_rules, limits=header.limits
    )


# --------------------------------------------------------------------------- entry


def parse_billing_bytes(
    data: bytes,
    *,
    kind: Literal["csv", "json"],
    deployment: str = "default",
    policy: CatalogPolicy | None = None,
) -> m.Catalog:
    """Parse a billing-center file's bytes. See :func:`parse_billing_file`."""
    b = _Builder(deployment=deployment)
    if len(data) > BILLING_FILE_BYTES_MAX:
        raise BillingImportError([BillingProblem(0, "file", "file is too large")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = 1 + data.count(b"\n", 0, exc.start)
        raise BillingImportError(
            [BillingProblem(line, "file", "is not UTF-8 text; save it as UTF-8")]
        ) from None
    if "\x00" in text:
        line = 1 + text.count("\n", 0, text.index("\x00"))
        raise BillingImportError([BillingProblem(line, "file", "contains a NUL character")])
    if kind == "json":
        file_policy = _parse_json(text, b)
    else:
        _parse_csv(text, b)
        file_policy = CatalogPolicy()
    extra = policy or CatalogPolicy()
    combined = CatalogPolicy(
        tariffs=file_policy.tariffs + extra.tariffs,
        surcharge_rules=file_policy.surcharge_rules + extra.surcharge_rules,
        limits=file_policy.limits + extra.limits,
    )
    return b.catalog(combined)


def parse_billing_file(
    path: str | os.PathLike[str],
    *,
    deployment: str = "default",
    policy: CatalogPolicy | None = None,
) -> m.Catalog:
    """Parse a billing-center CSV or JSON file (by its extension; ``.jsonl`` is not JSON).

    ``deployment`` is used for rows without one; ``policy`` adds central's
    tariffs, surcharge rules and limits to those in the file (entries naming a
    provider or service code the file has no rows for are left out). Raises
    :class:`BillingImportError` listing every problem by line; nothing is
    returned unless the whole file is good.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise BillingImportError([BillingProblem(0, "file", "must be a .csv or .json file")])
    try:
        size = p.stat().st_size
        if size > BILLING_FILE_BYTES_MAX:
            raise BillingImportError([BillingProblem(0, "file", "file is too large")])
        data = p.read_bytes()
    except OSError as exc:
        raise BillingImportError(
            [BillingProblem(0, "file", f"cannot read: {exc.strerror}")]
        ) from None
    return parse_billing_bytes(
        data, kind="json" if suffix == ".json" else "csv", deployment=deployment, policy=policy
    )


# --------------------------------------------------------------------------- export


def _rubles(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _reading(milli: int) -> str:
    return f"{milli // 1000}.{milli % 1000:03d}"


def billing_rows(catalog: m.Catalog) -> list[dict[str, Any]]:
    """The catalog's accounts as JSON billing rows (the inverse of the import).

    For demos and tests: ``write_billing_file`` turns these into a file that
    :func:`parse_billing_file` reads back into an equal catalog.
    """
    rows: list[dict[str, Any]] = []
    for vn in sorted(catalog.accounts):
        a = catalog.accounts[vn]
        for s in a.services:
            rows.append(
                {
                    "account": vn,
                    "holder": a.holder,
                    "city": a.address.city,
                    "street": a.address.street,
                    "house": a.address.house,
                    "flat": a.address.flat,
                    "deployment": a.deployment,
                    "building": a.building,
                    "card_hashes": list(a.card_hashes),
                    "service_code": s.code,
                    "service_name_ru": s.name_ru,
                    "service_name_en": s.name_en,
                    "provider_id": s.provider.id,
                    "provider_name_ru": s.provider.name_ru,
                    "provider_name_en": s.provider.name_en,
                    "provider_inn": s.provider.inn,
                    "debt": _rubles(s.debt_minor),
                    "period": s.period,
                    "instalments": [
                        {"due_date": i.due_date, "amount": _rubles(i.amount_minor)}
                        for i in s.instalments
                    ],
                    "meters": [
                        {
                            "id": x.meter_id,
                            "unit": x.unit,
                            "reading": _reading(x.last_reading_milli),
                        }
                        | ({"read_on": x.last_read_on} if x.last_read_on else {})
                        for x in s.meters
                    ],
                }
            )
    return rows


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "card_hashes":
        return " ".join(value)
    if name == "instalments":
        return " ".join(f"{i['due_date']}={i['amount']}" for i in value)
    if name == "meters":
        return " ".join(
            ":".join(
                [x["id"], x["unit"], x["reading"], *([x["read_on"]] if "read_on" in x else [])]
            )
            for x in value
        )
    return str(value)


def write_billing_file(catalog: m.Catalog, path: str | os.PathLike[str]) -> None:
    """Write ``catalog`` as a billing-center file (.csv or .json, by extension).

    The JSON form carries the whole header (providers, tariffs, rules); the CSV
    form only what a billing center sends (accounts, services, providers).
    """
    p = Path(path)
    rows = billing_rows(catalog)
    if p.suffix.lower() == ".json":
        doc = {"format": "lobbypay-billing-v1", **wire.header_to_wire(catalog.header), "rows": rows}
        p.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return
    with p.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\n")
        columns = [c for c in _COLUMNS if c != "debt_minor"]
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(c, row.get(c)) for c in columns])
