"""The OSMP provider protocol, sans-I/O: request parameters in, XML answers out.

This is the ``check``/``pay`` protocol that Russian payment agents (banks' ATM
hosts, unified payment systems) speak to a provider; docs/gateway.md describes
it and every result code. Like h11, this module does no I/O and imports no
aiohttp: :func:`parse_params` takes the raw query string or form body,
:func:`parse_request` turns the parameters into a :class:`CheckRequest` or
:class:`PayRequest`, and :func:`render_response` turns an :class:`OsmpResponse`
into the bytes of the XML answer. :func:`parse_response` is the client side
(tests, bench).

Theory of operation
-------------------
Parameters arrive by GET (query string) or POST
(``application/x-www-form-urlencoded`` body, plus the query string). Both are
percent-encoded ASCII; values are UTF-8. The parser is strict, because every
parameter ends up in a payment:

* at most :data:`PARAMS_MAX` parameters, :data:`PARAMS_BYTES_MAX` bytes in all,
  names of at most :data:`PARAM_NAME_CHARS_MAX` and values of at most
  :data:`PARAM_VALUE_CHARS_MAX` characters; malformed percent-encoding or UTF-8
  is refused;
* a parameter given twice is refused (which of two sums would we take?);
* unknown parameters (agents add their own, such as ``prv_id``) are ignored;
* ``command`` is ``check`` or ``pay``; ``check`` needs ``account`` and ``sum``
  (``txn_id`` optional), ``pay`` needs ``txn_id``, ``txn_date``, ``account``
  and ``sum``;
* ``txn_id``: 1..20 digits; ``txn_date``: ``YYYYMMDDHHMMSS``, a real date and
  time; ``sum``: roubles with at most two decimals (:mod:`gateway.money`);
  ``account``: the deployment's virtual number format (:mod:`gateway.identifiers`).

Each refusal raises a :mod:`gateway.errors` error; the handler maps it to its
result code (300 for the request, 4 for the account format).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape

from gateway import money
from gateway.errors import BadRequestError, UnknownCommandError
from gateway.identifiers import AccountPolicy, check_account, normalize_txn_id

__all__ = [
    "PARAMS_BYTES_MAX",
    "PARAMS_MAX",
    "PARAM_NAME_CHARS_MAX",
    "PARAM_VALUE_CHARS_MAX",
    "RESULT_TEXT",
    "CheckRequest",
    "OsmpResponse",
    "OsmpResult",
    "PayRequest",
    "parse_params",
    "parse_request",
    "parse_response",
    "render_response",
]

PARAMS_MAX: Final = 16
PARAMS_BYTES_MAX: Final = 2048
PARAM_NAME_CHARS_MAX: Final = 32
PARAM_VALUE_CHARS_MAX: Final = 64
FIELDS_MAX: Final = 80
"""Most ``<fields>`` entries in one answer (holder, balance, one per service)."""

_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters XML 1.0 cannot carry at all (section 2.2), escaped or not.
_XML_INVALID: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_SPECIAL: Final = re.compile('[&<>"\r]|[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')
_DATE_RE: Final = re.compile(r"[0-9]{14}")
_ISO_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")


class OsmpResult(enum.IntEnum):
    """OSMP result codes; docs/gateway.md says when each is returned."""

    OK = 0
    TEMPORARY_ERROR = 1
    BAD_ACCOUNT_FORMAT = 4
    ACCOUNT_NOT_FOUND = 5
    FORBIDDEN_BY_PROVIDER = 7
    FORBIDDEN_TECHNICAL = 8
    ACCOUNT_INACTIVE = 79
    NOT_COMPLETED = 90
    SUM_TOO_SMALL = 241
    SUM_TOO_LARGE = 242
    CANNOT_CHECK_ACCOUNT = 243
    OTHER_ERROR = 300

    @property
    def fatal(self) -> bool:
        """OSMP's ``fatal`` flag: False for the codes after which the agent should retry."""
        return self not in (OsmpResult.TEMPORARY_ERROR, OsmpResult.NOT_COMPLETED)


RESULT_TEXT: Final[Mapping[OsmpResult, Mapping[str, str]]] = {
    OsmpResult.OK: {"ru": "OK", "en": "OK"},
    OsmpResult.TEMPORARY_ERROR: {
        "ru": "Временная ошибка, повторите запрос позже",
        "en": "Temporary error, repeat the request later",
    },
    OsmpResult.BAD_ACCOUNT_FORMAT: {
        "ru": "Неверный формат номера лицевого счёта",
        "en": "Invalid account number format",
    },
    OsmpResult.ACCOUNT_NOT_FOUND: {
        "ru": "Лицевой счёт не найден",
        "en": "Account not found",
    },
    OsmpResult.FORBIDDEN_BY_PROVIDER: {
        "ru": "Приём платежа запрещён поставщиком",
        "en": "Payment refused by the provider",
    },
    OsmpResult.FORBIDDEN_TECHNICAL: {
        "ru": "Приём платежа запрещён по техническим причинам",
        "en": "Payment refused for technical reasons",
    },
    OsmpResult.ACCOUNT_INACTIVE: {
        "ru": "Лицевой счёт не активен",
        "en": "Account is not active",
    },
    OsmpResult.NOT_COMPLETED: {
        "ru": "Проведение платежа не окончено, повторите запрос",
        "en": "Payment processing not completed, repeat the request",
    },
    OsmpResult.SUM_TOO_SMALL: {"ru": "Сумма слишком мала", "en": "Sum too small"},
    OsmpResult.SUM_TOO_LARGE: {"ru": "Сумма слишком велика", "en": "Sum too large"},
    OsmpResult.CANNOT_CHECK_ACCOUNT: {
        "ru": "Невозможно проверить состояние счёта",
        "en": "Cannot check the account state",
    },
    OsmpResult.OTHER_ERROR: {"ru": "Другая ошибка", "en": "Other error"},
}


# -- requests -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckRequest:
    """``command=check``: may this account be paid this sum?"""

    account: str
    sum_minor: int
    txn_id: str | None = None

    def __post_init__(self) -> None:
        assert self.sum_minor >= 0
        assert self.txn_id is None or self.txn_id.isdigit()


@dataclass(frozen=True, slots=True, kw_only=True)
class PayRequest:
    """``command=pay``: record this payment (idempotent on the agent's ``txn_id``)."""

    txn_id: str
    txn_date: str
    account: str
    sum_minor: int

    def __post_init__(self) -> None:
        assert self.sum_minor >= 0
        assert self.txn_id.isdigit()
        assert _DATE_RE.fullmatch(self.txn_date)


def _unquote(text: str) -> str:
    # Most parameters (digits, dates, sums) carry nothing to decode.
    if "%" not in text and "+" not in text:
        return text
    return urllib.parse.unquote_plus(text, encoding="utf-8", errors="strict")


def parse_params(raw: bytes | str) -> list[tuple[str, str]]:
    """Split a query string or form body into (name, value) pairs, strictly.

    Raises :class:`BadRequestError` for anything oversized or malformed. Empty
    input gives no pairs.
    """
    if len(raw) > PARAMS_BYTES_MAX:
        raise BadRequestError(f"parameters larger than {PARAMS_BYTES_MAX} bytes")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise BadRequestError("parameters must be percent-encoded ASCII") from None
    else:
        text = raw
        if not text.isascii():
            raise BadRequestError("parameters must be percent-encoded ASCII")
    if not text:
        return []
    if text.count("&") + 1 > PARAMS_MAX:
        raise BadRequestError(f"more than {PARAMS_MAX} parameters")
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        name_raw, sep, value_raw = part.partition("=")
        if not sep or not name_raw:
            raise BadRequestError("every parameter must be name=value")
        try:
            name = _unquote(name_raw)
            value = _unquote(value_raw)
        except UnicodeDecodeError:
            raise BadRequestError("parameter is not valid UTF-8") from None
        if len(name) > PARAM_NAME_CHARS_MAX or _NAME_RE.fullmatch(name) is None:
            raise BadRequestError("parameter name is malformed or too long")
        if len(value) > PARAM_VALUE_CHARS_MAX:
            raise BadRequestError(
                f"parameter {name} is longer than {PARAM_VALUE_CHARS_MAX} characters", param=name
            )
        pairs.append((name, value))
    return pairs


def _single(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise BadRequestError(f"parameter {name} is given twice", param=name)
        params[name] = value
    return params


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise BadRequestError(f"parameter {name} is missing", param=name)
    return value


def _sum(params: Mapping[str, str]) -> int:
    try:
        return money.parse_sum_minor(_required(params, "sum"))
    except money.SumFormatError as exc:
        raise BadRequestError(str(exc), param="sum") from None


def check_txn_date(text: str) -> str:
    """``YYYYMMDDHHMMSS``, a date and time that exist (no 20250230, no 25:00)."""
    if _DATE_RE.fullmatch(text) is None:
        raise BadRequestError("txn_date must be YYYYMMDDHHMMSS", param="txn_date")
    try:
        # The agent's local time; kept as text, only checked to exist. Built
        # from its fields rather than with strptime, which is slow and locale-bound.
        dt.datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
        )
    except ValueError:
        raise BadRequestError("txn_date is not a real date and time", param="txn_date") from None
    return text


def txn_date_iso(text: str) -> str:
    """``20250601120006`` -> ``2025-06-01T12:00:06`` (how the journal stores it).

    Stored with separators because fourteen bare digits that happen to pass the
    Luhn check (one date in ten) look like a card number to the journal.
    """
    assert _DATE_RE.fullmatch(text)
    return f"{text[0:4]}-{text[4:6]}-{text[6:8]}T{text[8:10]}:{text[10:12]}:{text[12:14]}"


def txn_date_osmp(text: str) -> str:
    """The inverse of :func:`txn_date_iso`; other text is returned unchanged."""
    if _ISO_DATE_RE.fullmatch(text) is None:
        return text
    return text.replace("-", "").replace("T", "").replace(":", "")


def parse_request(
    pairs: Sequence[tuple[str, str]], policy: AccountPolicy
) -> CheckRequest | PayRequest:
    """Turn parameters into a request; raise a typed error naming what is wrong.

    The checks run in a fixed order (command, txn_id, txn_date, sum, account),
    so the same bad request always gets the same answer.
    """
    params = _single(pairs)
    command = _required(params, "command")
    if command == "check":
        txn_raw = params.get("txn_id")
        txn_id = normalize_txn_id(txn_raw) if txn_raw else None
        sum_minor = _sum(params)
        account = check_account(_required(params, "account"), policy)
        return CheckRequest(account=account, sum_minor=sum_minor, txn_id=txn_id)
    if command == "pay":
        txn_id = normalize_txn_id(_required(params, "txn_id"))
        txn_date = check_txn_date(_required(params, "txn_date"))
        sum_minor = _sum(params)
        account = check_account(_required(params, "account"), policy)
        return PayRequest(txn_id=txn_id, txn_date=txn_date, account=account, sum_minor=sum_minor)
    raise UnknownCommandError("command must be check or pay", param="command")


def osmp_txn_id_of(pairs: Sequence[tuple[str, str]]) -> str | None:
    """The agent's ``txn_id`` to echo in an error answer, if it is well formed."""
    for name, value in pairs:
        if name == "txn_id":
            try:
                return normalize_txn_id(value)
            except BadRequestError:
                return None
    return None


# -- responses ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OsmpResponse:
    """One XML answer. ``fields`` are (name, value) pairs shown by the agent (check)."""

    result: OsmpResult
    comment: str
    osmp_txn_id: str | None = None
    prv_txn: int | None = None
    sum_minor: int | None = None
    fields: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        assert isinstance(self.result, OsmpResult)
        assert len(self.fields) <= FIELDS_MAX
        assert self.prv_txn is None or self.prv_txn > 0


_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _text(value: str) -> str:
    # Most values (digits, sums, names) need nothing: skip the replacing then.
    if _XML_SPECIAL.search(value) is None:
        return value
    return escape(_XML_INVALID.sub("\ufffd", value), _QUOTE)


_QUOTE: Final = {'"': "&quot;"}
# Attribute values are whitespace-normalised by parsers unless escaped (XML 1.0, 3.3.3).
_ATTR: Final = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _attr(value: str) -> str:
    if _XML_SPECIAL.search(value) is None and "\n" not in value and "\t" not in value:
        return value
    return escape(_XML_INVALID.sub("\ufffd", value), _ATTR)


def render_response(response: OsmpResponse) -> bytes:
    """The answer's XML bytes (UTF-8).

    Built by hand rather than with ElementTree: the structure is fixed, every
    text goes through :func:`xml.sax.saxutils.escape`, and it is on the hot path.
    """
    parts = ["<response>"]
    if response.osmp_txn_id is not None:
        parts.append(f"<osmp_txn_id>{_text(response.osmp_txn_id)}</osmp_txn_id>")
    if response.prv_txn is not None:
        parts.append(f"<prv_txn>{response.prv_txn}</prv_txn>")
    if response.sum_minor is not None:
        parts.append(f"<sum>{money.format_minor(response.sum_minor)}</sum>")
    parts.append(f"<result>{int(response.result)}</result>")
    parts.append(f"<comment>{_text(response.comment)}</comment>")
    if response.fields:
        parts.append("<fields>")
        for i, (name, value) in enumerate(response.fields, start=1):
            parts.append(f'<field{i} name="{_attr(name)}">{_text(value)}</field{i}>')
        parts.append("</fields>")
    parts.append("</response>\n")
    return _XML_DECLARATION + "".join(parts).encode("utf-8")


def parse_response(data: bytes) -> OsmpResponse:
    """Parse an answer produced by :func:`render_response` (client side: tests, bench).

    Raises ValueError if ``data`` is not such an answer.
    """
    try:
        root = ET.fromstring(data)  # noqa: S314 (our own answers, in tests and the bench)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if root.tag != "response":
        raise ValueError("root element is not <response>")

    def text(tag: str) -> str | None:
        node = root.find(tag)
        return None if node is None else (node.text or "")

    result_text = text("result")
    if result_text is None:
        raise ValueError("no <result>")
    prv_txn = text("prv_txn")
    sum_text = text("sum")
    fields_node = root.find("fields")
    fields: tuple[tuple[str, str], ...] = ()
    if fields_node is not None:
        fields = tuple((f.get("name", ""), f.text or "") for f in fields_node)
    return OsmpResponse(
        result=OsmpResult(int(result_text)),
        comment=text("comment") or "",
        osmp_txn_id=text("osmp_txn_id"),
        prv_txn=None if prv_txn is None else int(prv_txn),
        sum_minor=None if sum_text is None else money.parse_sum_minor(sum_text.lstrip("-")),
        fields=fields,
    )
