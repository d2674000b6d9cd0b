"""Billing-center files: CSV and JSON into a catalog, with every bad row reported by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_sync.catalog import generator
from central_sync.catalog import model as m
from central_sync.catalog.billing_import import (
    BillingImportError,
    BillingProblem,
    CatalogPolicy,
    billing_rows,
    parse_billing_bytes,
    parse_billing_file,
    parse_money,
    write_billing_file,
)

HEADER = (
    "account;holder;city;street;house;flat;card_hashes;service_code;service_name_ru;"
    "service_name_en;provider_id;provider_name_ru;provider_inn;debt;period;instalments;meters"
)
HW = "HW;Горячее водоснабжение;Hot water;brn-heat;АО «Теплосеть»;2224152758"
CW = "CW;Холодное водоснабжение;Cold water;brn-water;МУП «Водоканал»;2225009341"
IVANOVA = "1000000008;Иванова Анна Петровна;Барнаул;ул. Малахова;86;34"
CARD = "ab" * 32


def _csv(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def _problems(data: bytes, kind: str = "csv") -> list[tuple[int, str, str]]:
    with pytest.raises(BillingImportError) as info:
        parse_billing_bytes(data, kind=kind)  # type: ignore[arg-type]
    return [tuple(p) for p in info.value.problems]  # type: ignore[misc]


# --------------------------------------------------------------------------- good files


def test_csv_with_semicolons_comma_decimals_instalments_and_meters() -> None:
    data = _csv(
        f"{IVANOVA};{CARD};{HW};3000,00;2025-05;2025-06-10=1500.00 2025-07-10=1500;"
        "10457736:m3:123.456:2025-05-23",
        f"{IVANOVA};{CARD};{CW};-12.5;2025-05;;",
    )
    catalog = parse_billing_bytes(data, kind="csv", deployment="brn")
    account = catalog.accounts["1000000008"]
    assert account.holder == "Иванова А. П."  # only the masked form is kept
    assert account.deployment == "brn"
    assert account.card_hashes == (CARD,)
    hot, cold = account.services
    assert hot.debt_minor == 300_000
    assert [(i.due_date, i.amount_minor) for i in hot.instalments] == [
        ("2025-06-10", 150_000),
        ("2025-07-10", 150_000),
    ]
    assert hot.meters == (
        m.Meter(
            meter_id="10457736", unit="m3", last_reading_milli=123_456, last_read_on="2025-05-23"
        ),
    )
    assert cold.debt_minor == -1_250
    assert cold.provider.name_en == "MUP «Vodokanal»".replace("«", '"').replace("»", '"')
    assert catalog.header.provider_by_id["brn-heat"].inn == "2224152758"


def test_csv_with_commas_a_bom_and_kopecks() -> None:
    text = (
        "\ufeffaccount,holder,city,street,house,service_code,service_name_ru,provider_id,"
        "provider_name_ru,provider_inn,debt_minor,period,instalments\n"
        '1000000016,"Петров, С. И.",Москва,ул. Арбат,1,HW,ГВС,w,Вода,2224152758,150000,2025-05,'
        "2025-06-10=100000\n"
    )
    catalog = parse_billing_bytes(text.encode(), kind="csv")
    service = catalog.accounts["1000000016"].services[0]
    assert service.debt_minor == 150_000
    assert service.instalments[0].amount_minor == 100_000


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_written_file_reads_back_into_the_same_catalog(tmp_path: Path, suffix: str) -> None:
    catalog = generator.generate_catalog(4, 200, 5)
    path = tmp_path / f"billing{suffix}"
    write_billing_file(catalog, path)
    header = catalog.header
    policy = CatalogPolicy(
        tariffs=header.tariffs, surcharge_rules=header.surcharge_rules, limits=header.limits
    )
    back = parse_billing_file(path, policy=policy if suffix == ".csv" else None)
    assert back.accounts == catalog.accounts
    if suffix == ".json":
        assert back.header == catalog.header


def test_json_rows_with_providers_declared_once() -> None:
    doc = {
        "format": "lobbypay-billing-v1",
        "providers": [{"id": "w", "name_ru": "Вода", "name_en": "Water", "inn": "2224152758"}],
        "rows": [
            {"account": "1000000008", "holder": "Иванова А. П.", "city": "Барнаул",
             "street": "ул. Юрина", "house": "5", "service_code": "CW",
             "service_name_ru": "ХВС", "provider_id": "w", "debt_minor": 1234,
             "period": "2025-05",
             "meters": [{"id": "7", "unit": "m3", "reading_milli": 5}]},
        ],
    }  # fmt: skip
    catalog = parse_billing_bytes(json.dumps(doc).encode(), kind="json")
    service = catalog.accounts["1000000008"].services[0]
    assert service.provider.name_en == "Water"
    assert service.name_en == "KhVS"
    assert service.meters[0].last_reading_milli == 5


@pytest.mark.parametrize(
    ("text", "minor"),
    [("0", 0), ("1", 100), ("1.5", 150), ("1,05", 105), ("-0.01", -1), (" 12.34 ", 1234),
     ("1234567890123.99", 123456789012399)],
)  # fmt: skip
def test_parse_money_is_exact(text: str, minor: int) -> None:
    assert parse_money(text) == minor


@pytest.mark.parametrize(
    "text", ["1.234", "1e3", "1 000", "01.5", "+1", "", "1.", ".5", "NaN", "١"]
)
def test_parse_money_refuses_inexact_forms(text: str) -> None:
    with pytest.raises(ValueError, match="money"):
        parse_money(text)


# --------------------------------------------------------------------------- bad files


def test_every_bad_csv_row_is_reported_by_its_line() -> None:
    data = _csv(
        f"{IVANOVA};;{HW};3000.00;2025-05;;",  # line 2: good
        f"{IVANOVA};;{CW};12.345;2025-05;;",  # line 3: three decimals
        "1000000016;Петров С.;Москва;ул. Арбат;1;;;" + CW + ";1.00;2025-05;;",  # line 4: good
        "1000000024;Петров С.;Москва;ул. Арбат;1;;;" + CW + ";1.00;2025-13;;",  # line 5: month 13
        "12;Петров С.;Москва;ул. Арбат;1;;;" + HW.replace("2224152758", "2224152750")
        + ";1.00;2025-05;;",  # line 6: short account and a bad INN
        f"{IVANOVA};;{HW};1.00;2025-05;;",  # line 7: the same service twice
        f"1000000032;Сидоров И.;Москва;ул. Арбат;2;;;{CW};1.00;2025-05;2025-02-30=0.50;",  # 8
    )  # fmt: skip
    problems = _problems(data)
    assert sorted({line for line, _, _ in problems}) == [3, 5, 6, 7, 8]
    by_line = {(line, field) for line, field, _ in problems}
    assert (3, "debt") in by_line
    assert (5, "period") in by_line
    assert (6, "account") in by_line
    assert (6, "provider_inn") in by_line
    assert (7, "service_code") in by_line
    assert any(line == 8 and field.startswith("instalments") for line, field, _ in problems)


def test_cross_row_conflicts_are_reported_at_the_later_line() -> None:
    data = _csv(
        f"{IVANOVA};{CARD};{HW};1.00;2025-05;;",
        "1000000008;Петрова Анна;Барнаул;ул. Малахова;86;34;;" + CW + ";1.00;2025-05;;",
        f"1000000016;Петров С.;Москва;ул. Арбат;1;;{CARD};{CW};1.00;2025-05;;",
        "1000000024;Петров С.;Москва;ул. Арбат;1;;;"
        + CW.replace("МУП «Водоканал»", "Другой")
        + ";1.00;2025-05;;",
    )
    problems = _problems(data)
    assert [(line, field) for line, field, _ in problems] == [
        (3, "holder"),
        (4, "card_hashes"),
        (5, "provider_id"),
    ]


def test_every_bad_json_row_is_reported_by_the_line_of_its_brace() -> None:
    good = {
        "account": "1000000008", "holder": "Иванова А. П.", "city": "Барнаул",
        "street": "ул. Юрина", "house": "5", "service_code": "CW", "service_name_ru": "ХВС",
        "provider_id": "w", "provider_name_ru": "Вода", "provider_inn": "2224152758",
        "debt": "10.00", "period": "2025-05",
    }  # fmt: skip
    rows = [
        good,
        {**good, "account": "1000000016", "debt": 12.5},  # a JSON number for money
        {**good, "account": "1000000024", "debt_minor": 100.0, "debt": None},
        {**good, "account": "1000000032", "period": "May"},
        {**good, "account": "1000000040", "surprise": 1},
        "not an object",
    ]
    text = '{\n "format": "lobbypay-billing-v1",\n "rows": [\n'
    lines = []
    for n, row in enumerate(rows):
        lines.append(text.count("\n") + 1)
        text += json.dumps(row, ensure_ascii=False, indent=2) + (
            ",\n" if n < len(rows) - 1 else "\n"
        )
    text += " ]\n}\n"
    problems = _problems(text.encode(), "json")
    reported = sorted({line for line, _, _ in problems})
    assert reported == lines[1:]
    messages = {(line, field): msg for line, field, msg in problems}
    assert "decimal string" in messages[(lines[1], "debt")]
    assert (lines[4], "surprise") in messages


def test_json_syntax_error_is_reported_with_its_line() -> None:
    problems = _problems(b'{\n "rows": [\n  {"account": }\n ]\n}', "json")
    assert problems[0][0] == 3


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "header"),
        (HEADER.encode() + b"\n", "file"),
        (HEADER.replace("period", "periodd").encode() + b"\n", "periodd"),
        (HEADER.replace(";period", "").encode() + b"\n", "period"),
        (HEADER.replace("debt", "debt;debt_minor").encode() + b"\n", "debt"),
        ((HEADER + ";account").encode() + b"\n", "account"),
    ],
    ids=["empty", "no-rows", "unknown-column", "missing-column", "both-debts", "column-twice"],
)
def test_bad_csv_header_is_reported(data: bytes, field: str) -> None:
    problems = _problems(data)
    assert field in {f for _, f, _ in problems}


def test_non_utf8_file_is_reported_with_the_line_of_the_first_bad_byte() -> None:
    data = _csv(f"{IVANOVA};;{HW};1.00;2025-05;;") + "1000000016;Петров".encode("cp1251")
    assert _problems(data) == [(3, "file", "is not UTF-8 text; save it as UTF-8")]


def test_row_with_the_wrong_number_of_cells_is_reported() -> None:
    problems = _problems(_csv(f"{IVANOVA};;{HW};1.00;2025-05", f"{IVANOVA};;{CW};1.00;2025-05;;"))
    assert problems[0][:2] == (2, "row")


def test_file_kind_is_chosen_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "billing.txt"
    path.write_bytes(_csv(f"{IVANOVA};;{HW};1.00;2025-05;;"))
    with pytest.raises(BillingImportError):
        parse_billing_file(path)
    with pytest.raises(BillingImportError):
        parse_billing_file(tmp_path / "missing.csv")


def test_problems_unpack_as_line_field_message() -> None:
    with pytest.raises(BillingImportError) as info:
        parse_billing_bytes(_csv(f"{IVANOVA};;{HW};x;2025-05;;"), kind="csv")
    line, field, message = info.value.problems[0]
    assert (line, field) == (2, "debt")
    assert "rubles" in message
    assert "line 2" in str(info.value)


# --------------------------------------------------------------------------- fuzz


def _outcome(data: bytes, kind: str) -> tuple[m.Catalog | None, tuple[BillingProblem, ...]]:
    """A catalog, or the problems; any other exception fails the test."""
    try:
        return parse_billing_bytes(data, kind=kind), ()  # type: ignore[arg-type]
    except BillingImportError as exc:
        return None, exc.problems


_GOOD_ROW = f"{IVANOVA};{CARD};{HW};3000,00;2025-05;2025-06-10=1500.00;1:m3:1.5:2025-05-01"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
        min_size=0,
        max_size=20,
    ),
    position=st.integers(0, 19),
)
def test_fuzzed_csv_cells_give_a_catalog_or_typed_problems(cells: list[str], position: int) -> None:
    base = _GOOD_ROW.split(";")
    base[position % len(base)] = ";".join(cells)
    data = _csv(";".join(base), _GOOD_ROW.replace("HW", "CW"))
    catalog, problems = _outcome(data, "csv")
    assert (catalog is None) != (not problems)
    assert all(isinstance(p.line, int) and p.line >= 0 for p in problems)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), kind=st.sampled_from(["csv", "json"]))
def test_fuzzed_bytes_give_a_catalog_or_typed_problems(data: bytes, kind: str) -> None:
    catalog, problems = _outcome(data, kind)
    assert (catalog is None) != (not problems)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    overrides=st.dictionaries(
        st.sampled_from(["account", "debt", "debt_minor", "period", "instalments", "meters",
                         "card_hashes", "holder", "provider_inn", "flat", "x"]),
        _json_values,
        max_size=4,
    ),
)  # fmt: skip
def test_fuzzed_json_rows_give_a_catalog_or_typed_problems(overrides: dict[str, object]) -> None:
    row = billing_rows(generator.demo_catalog())[0]
    row.update(overrides)
    doc = json.dumps({"rows": [row]}, ensure_ascii=False).encode()
    catalog, problems = _outcome(doc, "json")
    assert (catalog is None) != (not problems)
    if catalog is not None:
        catalog.validate()


def test_control_characters_in_names_are_refused() -> None:
    # An ESC in a holder's name would reach the receipt printer as a command.
    problems = _problems(
        _csv(f"1000000008;Иванова\x1b@ А.;Барнаул;ул. Малахова;86;34;;{HW};1;2025-05;;")
    )
    assert problems[0][:2] == (2, "holder")
    assert "control" in problems[0][2]


def test_problems_stop_being_listed_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from central_sync.catalog import billing_import

    monkeypatch.setattr(billing_import, "PROBLEMS_MAX", 5)
    rows = [f"{IVANOVA};;{HW};bad;2025-05;;"] * 9
    problems = _problems(_csv(*rows))
    assert len(problems) == 6
    assert [line for line, _, _ in problems[:5]] == [2, 3, 4, 5, 6]
    assert problems[5][1] == "file"
    assert "more than 5" in problems[5][2]


def test_rows_beyond_the_bound_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from central_sync.catalog import billing_import

    monkeypatch.setattr(billing_import, "ROWS_MAX", 2)
    ok = _csv(f"{IVANOVA};;{HW};1;2025-05;;", f"{IVANOVA};;{CW};1;2025-05;;")
    assert len(parse_billing_bytes(ok, kind="csv").accounts) == 1
    too_many = _csv(
        f"{IVANOVA};;{HW};1;2025-05;;",
        f"{IVANOVA};;{CW};1;2025-05;;",
        f"1000000016;Петров С.;Москва;ул. Арбат;1;;;{CW};1;2025-05;;",
    )
    assert _problems(too_many) == [(4, "file", "more than 2 rows")]
