"""The OSMP sans-I/O core and money parsing: examples and Hypothesis fuzzing."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import money, osmp
from gateway.errors import AccountFormatError, BadRequestError, GatewayError, UnknownCommandError
from gateway.identifiers import AccountPolicy
from gateway.osmp import CheckRequest, OsmpResponse, OsmpResult, PayRequest

POLICY = AccountPolicy()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("0", 0),
        ("0.00", 0),
        ("10", 1000),
        ("10.4", 1040),
        ("10.45", 1045),
        ("9999999999.99", 999999999999),
    ],
)
def test_parse_sum_exact_decimal_to_kopecks(text: str, minor: int) -> None:
    assert money.parse_sum_minor(text) == minor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10.455",
        "-1",
        "+1",
        "1e3",
        "1E3",
        "10,00",
        " 1",
        "1 ",
        "01",
        "00.10",
        ".5",
        "5.",
        "inf",
        "NaN",
        "0x10",
        "1_000",
        "١٠",
        "10000000000.00",
        "1.2.3",
    ],
)
def test_parse_sum_refuses_anything_but_a_plain_amount(text: str) -> None:
    with pytest.raises(money.SumFormatError):
        money.parse_sum_minor(text)


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_format_then_parse_is_identity(minor: int) -> None:
    assert money.parse_sum_minor(money.format_minor(minor)) == minor


@given(st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2, allow_nan=False))
def test_parse_matches_decimal_arithmetic(value: Decimal) -> None:
    text = f"{value:.2f}"
    assert money.parse_sum_minor(text) == int(value * 100)


@FUZZ
@given(st.text(max_size=30))
def test_parse_sum_never_raises_anything_but_its_error(text: str) -> None:
    try:
        minor = money.parse_sum_minor(text)
    except money.SumFormatError:
        return
    assert type(minor) is int
    assert Decimal(text) * 100 == minor


def test_format_minor_refuses_floats() -> None:
    with pytest.raises(TypeError):
        money.format_minor(10.5)  # type: ignore[arg-type]


# -- parameters -------------------------------------------------------------------------------


def _params(**values: str) -> list[tuple[str, str]]:
    return osmp.parse_params(urllib.parse.urlencode(values).encode())


def test_parse_pay_request() -> None:
    req = osmp.parse_request(
        _params(
            command="pay",
            txn_id="00123",
            txn_date="20250601235959",
            account="1000000008",
            sum="1.05",
            prv_id="9",
        ),
        POLICY,
    )
    assert req == PayRequest(
        txn_id="123", txn_date="20250601235959", account="1000000008", sum_minor=105
    )


def test_parse_check_request_txn_id_optional() -> None:
    req = osmp.parse_request(_params(command="check", account="1000000008", sum="0"), POLICY)
    assert req == CheckRequest(account="1000000008", sum_minor=0, txn_id=None)


def test_unknown_command_is_its_own_error() -> None:
    with pytest.raises(UnknownCommandError):
        osmp.parse_request(_params(command="status"), POLICY)


def test_bad_account_raises_account_format_error() -> None:
    with pytest.raises(AccountFormatError):
        osmp.parse_request(_params(command="check", account="1000000009", sum="1"), POLICY)


@pytest.mark.parametrize(
    "raw",
    [
        b"a",
        b"=1",
        b"a=1&&b=2",
        b"a=%FF",
        "ä=1".encode(),
        b"x" * 2049,
        b"na-me=1",
        b"a=" + b"1" * 65,
    ],
)
def test_parse_params_refuses_malformed_input(raw: bytes) -> None:
    with pytest.raises(BadRequestError):
        osmp.parse_params(raw)


def test_parse_params_decodes_percent_and_plus() -> None:
    assert osmp.parse_params(b"a=1+2&b=%D0%B6") == [("a", "1 2"), ("b", "ж")]


_names = st.sampled_from(["command", "txn_id", "txn_date", "account", "sum", "prv_id", "x"])
_values = st.one_of(
    st.text(max_size=70),
    st.from_regex(r"[0-9]{1,22}", fullmatch=True),
    st.sampled_from(["check", "pay", "20250601120000", "1000000008", "10.45", "0"]),
)


@FUZZ
@given(st.binary(max_size=3000))
def test_parse_params_on_any_bytes_returns_pairs_or_bad_request(raw: bytes) -> None:
    try:
        pairs = osmp.parse_params(raw)
    except BadRequestError:
        return
    assert len(pairs) <= osmp.PARAMS_MAX
    for name, value in pairs:
        assert len(name) <= osmp.PARAM_NAME_CHARS_MAX
        assert len(value) <= osmp.PARAM_VALUE_CHARS_MAX


@FUZZ
@given(st.lists(st.tuples(_names, _values), max_size=10))
def test_parse_request_on_any_pairs_returns_a_request_or_a_typed_error(
    pairs: list[tuple[str, str]],
) -> None:
    try:
        req = osmp.parse_request(pairs, POLICY)
    except GatewayError as exc:
        error: GatewayError = exc
    else:
        assert isinstance(req, (CheckRequest, PayRequest))
        assert req.sum_minor >= 0
        assert req.account.isdigit()
        return
    assert isinstance(error, (BadRequestError, AccountFormatError))
    # Error messages never echo an account that could be a card number.
    assert not any(v in str(error) for _, v in pairs if len(v) >= 13 and v.isdigit())


_valid_pay = st.fixed_dictionaries(
    {
        "command": st.just("pay"),
        "txn_id": st.from_regex(r"[1-9][0-9]{0,19}", fullmatch=True),
        "txn_date": st.datetimes()
        .map(lambda d: d.strftime("%Y%m%d%H%M%S"))
        .filter(lambda s: len(s) == 14),
        "account": st.sampled_from(["1000000008", "1000000016", "123455"]),
        "sum": st.integers(min_value=0, max_value=10**12 - 1).map(money.format_minor),
    }
)


@FUZZ
@given(_valid_pay, st.booleans())
def test_valid_pay_parameters_round_trip_through_the_wire(
    values: dict[str, str], plus_spaces: bool
) -> None:
    encode = urllib.parse.quote_plus if plus_spaces else urllib.parse.quote
    raw = "&".join(f"{k}={encode(v)}" for k, v in values.items()).encode()
    req = osmp.parse_request(osmp.parse_params(raw), POLICY)
    assert req == PayRequest(
        txn_id=values["txn_id"],
        txn_date=values["txn_date"],
        account=values["account"],
        sum_minor=money.parse_sum_minor(values["sum"]),
    )


# -- responses ---------------------------------------------------------------------------------


def test_render_pay_response() -> None:
    body = osmp.render_response(
        OsmpResponse(
            result=OsmpResult.OK, comment="OK", osmp_txn_id="123", prv_txn=77, sum_minor=1045
        )
    )
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><osmp_txn_id>123</osmp_txn_id>'
        b"<prv_txn>77</prv_txn><sum>10.45</sum><result>0</result><comment>OK</comment>"
        b"</response>\n"
    )


@FUZZ
@given(
    st.sampled_from(list(OsmpResult)),
    st.text(max_size=80),
    st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=6),
)
def test_any_text_renders_as_well_formed_xml_that_parses_back(
    result: OsmpResult, comment: str, fields: list[tuple[str, str]]
) -> None:
    body = osmp.render_response(OsmpResponse(result=result, comment=comment, fields=tuple(fields)))
    back = osmp.parse_response(body)
    assert back.result is result
    assert len(back.fields) == len(fields)

    def clean(text: str) -> str:  # what XML can carry of it
        return osmp._XML_INVALID.sub("\ufffd", text)

    assert [name for name, _ in back.fields] == [clean(name) for name, _ in fields]
    assert back.comment == clean(comment).replace("\r\n", "\n").replace("\r", "\n")


def test_every_result_code_has_both_languages() -> None:
    assert set(osmp.RESULT_TEXT) == set(OsmpResult)
    for texts in osmp.RESULT_TEXT.values():
        assert texts["ru"]
        assert texts["en"]
    assert [int(r) for r in OsmpResult] == [0, 1, 4, 5, 7, 8, 79, 90, 241, 242, 243, 300]


@given(st.datetimes(min_value=dt.datetime(1000, 1, 1)))
def test_txn_date_round_trips_through_the_journal_form(moment: dt.datetime) -> None:
    text = moment.strftime("%Y%m%d%H%M%S")
    iso = osmp.txn_date_iso(text)
    assert not any(len(run) >= 13 for run in re.findall(r"[0-9]+", iso))  # never PAN-like
    assert osmp.txn_date_osmp(iso) == text
