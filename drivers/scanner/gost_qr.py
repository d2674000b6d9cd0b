"""GOST R 56042-2014 payment QR codes (the QR printed on Russian utility bills).

Theory of operation
-------------------
A payload is a *service block* followed by *requisites* (GOST R 56042-2014,
clause 6 and tables 1-3)::

    ST 0001 2 | Name=...|PersonalAcc=...|BankName=...|BIC=...|CorrespAcc=...|Sum=...
    ^  ^    ^ ^
    |  |    | separator: the character right after the service block ("|" by
    |  |    |            default; another one when "|" occurs in a value)
    |  |    encoding: 1 windows-1251, 2 UTF-8, 3 KOI8-R
    |  standard version "0001"
    format id "ST"

Decoding is two steps: bytes -> text in the declared encoding (strict: a byte
that is invalid in that encoding is an error, never replaced), then text ->
``key=value`` pairs -> a validated :class:`PaymentQr`.

Lenient where printed bills are sloppy and nothing can go wrong with money:
trailing or doubled separators, any field order, whitespace around keys and
values, the case of keys (bills print ``persAcc``, ``PersAcc`` and
``CATEGORY`` alike), a UTF-8 byte-order mark, empty optional fields
(``KPP=``), over-long *names* (bills routinely exceed the standard's 160/45/210
characters for Name/BankName/Purpose, which route no money), unknown keys
(kept in :attr:`PaymentQr.extra`).

Strict about everything that could send money to the wrong place or charge
the wrong amount: a duplicated money-relevant key (even with equal values), a
malformed account / BIC / INN / KPP / CBC / OKTMO, a Sum that is not an
integer number of kopecks, a failing Bank of Russia account control key or
INN check digit, a segment without ``=`` (usually a separator inside a value,
which shifts every later field), bytes invalid in the declared encoding,
missing required fields, and anything over a limit in :class:`QrPolicy`.

The account reference lobbypay uses is ``persAcc`` (the payer's personal
account at the payee = our virtual number), see
:attr:`PaymentQr.account_reference`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

from drivers.scanner.errors import (
    QrEncodeError,
    QrEncodingError,
    QrError,
    QrFieldError,
    QrHeaderError,
    QrSizeError,
)

__all__ = [
    "FIELD_SPECS",
    "SEPARATOR_CANDIDATES",
    "FieldSpec",
    "PaymentQr",
    "QrEncoding",
    "QrError",
    "QrPolicy",
    "account_key_valid",
    "decode_payment_qr",
    "decode_payment_qr_text",
    "encode_fields",
    "encode_payment_qr",
    "inn_valid",
    "is_payment_qr",
    "make_payment_qr",
    "verify_check_digits",
    "with_account_key",
]

FORMAT_ID: Final = "ST"
VERSION: Final = "0001"
UTF8_BOM: Final = b"\xef\xbb\xbf"

SEPARATOR_CANDIDATES: Final = "|#;:^_~{}!$%&()*+,/@"
"""Separators the encoder tries in order (``|`` is the standard's default)."""


class QrEncoding(enum.Enum):
    """The encoding digit of the service block (GOST R 56042-2014, 6.1)."""

    WINDOWS_1251 = 1
    UTF_8 = 2
    KOI8_R = 3

    @property
    def codec(self) -> str:
        """The Python codec name."""
        return _CODECS[self]

    @property
    def header(self) -> str:
        """The service block without the separator, e.g. ``ST00012``."""
        return f"{FORMAT_ID}{VERSION}{self.value}"

    @property
    def label(self) -> str:
        """A human label (``windows-1251``, ``utf-8``, ``koi8-r``)."""
        return _LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> QrEncoding:
        """Parse ``utf-8`` / ``windows-1251`` / ``cp1251`` / ``koi8-r`` / ``1`` / ``2`` / ``3``."""
        wanted = label.strip().lower().replace("_", "-")
        for enc in cls:
            if wanted in (str(enc.value), enc.label, enc.codec.replace("_", "-")):
                return enc
        raise ValueError(f"unknown QR encoding {label!r}")


_CODECS: Final = {
    QrEncoding.WINDOWS_1251: "cp1251",
    QrEncoding.UTF_8: "utf-8",
    QrEncoding.KOI8_R: "koi8_r",
}
_LABELS: Final = {
    QrEncoding.WINDOWS_1251: "windows-1251",
    QrEncoding.UTF_8: "utf-8",
    QrEncoding.KOI8_R: "koi8-r",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class QrPolicy:
    """Limits and checks applied when decoding a scanned payload.

    The standard puts no number on the payload; real bills in UTF-8 with
    Cyrillic names run to 400-900 bytes, so the default leaves room while
    keeping every buffer bounded.
    """

    payload_bytes_max: int = 2048
    """Largest payload accepted, in bytes, service block included."""
    field_chars_max: int = 500
    """Largest value of any single field, in characters."""
    key_chars_max: int = 64
    """Longest key, in characters."""
    fields_max: int = 80
    """Most ``key=value`` segments in one payload."""
    verify_check_digits: bool = True
    """Check the Bank of Russia account control keys and INN check digits."""

    def __post_init__(self) -> None:
        for name in ("payload_bytes_max", "field_chars_max", "key_chars_max", "fields_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"QrPolicy.{name} must be a positive int, got {value!r}")
        if self.payload_bytes_max < 16:
            raise ValueError("QrPolicy.payload_bytes_max must be at least 16")


DEFAULT_POLICY: Final = QrPolicy()


# --- The field table --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One requisite of GOST R 56042-2014 tables 1-3.

    ``kind`` picks the value check; ``chars_max`` is the standard's maximum
    where we enforce it; ``money`` marks keys that route or size money (a
    duplicate is refused even with an equal value).
    """

    key: str
    attr: str
    kind: str = "text"
    chars_max: int | None = None
    money: bool = False
    required: bool = False


FIELD_SPECS: Final[tuple[FieldSpec, ...]] = (
    # Table 1: required requisites (the standard puts them first, in this order).
    FieldSpec("Name", "name", money=True, required=True),
    FieldSpec("PersonalAcc", "personal_acc", "account", 20, money=True, required=True),
    FieldSpec("BankName", "bank_name", required=True),
    FieldSpec("BIC", "bic", "bic", 9, money=True, required=True),
    FieldSpec("CorrespAcc", "corresp_acc", "corresp", 20, money=True, required=True),
    # Table 2: additional requisites (payment-order fields, formats after the
    # Bank of Russia's UFEBS album).
    FieldSpec("Sum", "sum_kopecks", "kopecks", 18, money=True),
    FieldSpec("Purpose", "purpose"),
    FieldSpec("PayeeINN", "payee_inn", "inn", 12, money=True),
    FieldSpec("PayerINN", "payer_inn", "payer_inn", 12, money=True),
    FieldSpec("DrawerStatus", "drawer_status", chars_max=2),
    FieldSpec("KPP", "kpp", "kpp", 9, money=True),
    FieldSpec("CBC", "cbc", "cbc", 20, money=True),
    FieldSpec("OKTMO", "oktmo", "oktmo", 11, money=True),
    FieldSpec("PaytReason", "payt_reason", chars_max=2),
    FieldSpec("TaxPeriod", "tax_period", chars_max=10),
    FieldSpec("DocNo", "doc_no", chars_max=15),
    FieldSpec("DocDate", "doc_date", chars_max=10),
    FieldSpec("TaxPaytKind", "tax_payt_kind", chars_max=2),
    # Table 3: other additional requisites (the standard spells these in
    # lowerCamelCase; bills print every case, so keys match case-insensitively).
    FieldSpec("lastName", "last_name"),
    FieldSpec("firstName", "first_name"),
    FieldSpec("middleName", "middle_name"),
    FieldSpec("payerAddress", "payer_address"),
    FieldSpec("personalAccount", "personal_account", money=True),
    FieldSpec("docIdx", "doc_idx", money=True),
    FieldSpec("pensAcc", "pens_acc"),
    FieldSpec("contract", "contract", money=True),
    FieldSpec("persAcc", "pers_acc", money=True),
    FieldSpec("flat", "flat"),
    FieldSpec("phone", "phone"),
    FieldSpec("payerIdType", "payer_id_type"),
    FieldSpec("payerIdNum", "payer_id_num"),
    FieldSpec("childFio", "child_fio"),
    FieldSpec("birthDate", "birth_date"),
    FieldSpec("paymTerm", "paym_term"),
    FieldSpec("paymPeriod", "paym_period"),
    FieldSpec("category", "category"),
    FieldSpec("serviceName", "service_name"),
    FieldSpec("counterId", "counter_id"),
    FieldSpec("counterVal", "counter_val"),
    FieldSpec("quittId", "quitt_id", money=True),
    FieldSpec("quittDate", "quitt_date"),
    FieldSpec("instNum", "inst_num"),
    FieldSpec("classNum", "class_num"),
    FieldSpec("specFio", "spec_fio"),
    FieldSpec("addAmount", "add_amount_kopecks", "kopecks", 18, money=True),
    FieldSpec("ruleId", "rule_id"),
    FieldSpec("execId", "exec_id"),
    FieldSpec("regType", "reg_type"),
    FieldSpec("uin", "uin", "uin", 25, money=True),
    FieldSpec("TechCode", "tech_code", "tech_code", 2),
)

_SPEC_BY_FOLDED: Final = {spec.key.casefold(): spec for spec in FIELD_SPECS}
_SPEC_BY_ATTR: Final = {spec.attr: spec for spec in FIELD_SPECS}

# Value formats. ASCII-only classes: str.isdigit() accepts Arabic-Indic and
# other digits, which must never reach an account number.
_FORMATS: Final = {
    "account": re.compile(r"[0-9]{20}\Z"),
    "corresp": re.compile(r"(?:[0-9]{20}|0)\Z"),
    "bic": re.compile(r"[0-9]{9}\Z"),
    "kopecks": re.compile(r"[0-9]{1,18}\Z"),
    "inn": re.compile(r"(?:[0-9]{10}|[0-9]{12})\Z"),
    "payer_inn": re.compile(r"(?:[0-9]{10}|[0-9]{12}|0)\Z"),
    "kpp": re.compile(r"(?:[0-9]{4}[0-9A-Z]{2}[0-9]{3}|0)\Z"),
    "cbc": re.compile(r"(?:[0-9]{20}|0)\Z"),
    "oktmo": re.compile(r"(?:[0-9]{8}|[0-9]{11}|0)\Z"),
    "uin": re.compile(r"[0-9A-Za-z]{1,25}\Z"),
    "tech_code": re.compile(r"[0-9]{1,2}\Z"),
}
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


# --- Check digits -------------------------------------------------------------

_KEY_WEIGHTS: Final = (7, 1, 3) * 8


def _key_sum(digits: str) -> int:
    return sum((int(d) * w) % 10 for d, w in zip(digits, _KEY_WEIGHTS, strict=False))


def _account_prefix(bic: str, account: str, *, corresp: bool) -> str | None:
    """The 3-digit "conditional number" the control key is computed over.

    Bank of Russia control-key procedure (appendix to the chart of accounts,
    Regulation 579-P): a correspondent account, or an account at a Bank of
    Russia division (BIC ending 000-002), uses ``"0"`` + BIC digits 5-6; an
    account at a credit institution uses the last three BIC digits. Treasury
    accounts (``03...``) follow the Federal Treasury's own scheme, so they are
    not checked here (None).
    """
    if corresp:
        return "0" + bic[4:6]
    if account.startswith("03"):
        return None
    if bic[6:9] in ("000", "001", "002"):
        return "0" + bic[4:6]
    return bic[6:9]


def account_key_valid(bic: str, account: str, *, corresp: bool = False) -> bool:
    """Check the control key (digit 9) of a 20-digit account against its BIC.

    Returns True for accounts the procedure does not cover (treasury ``03...``).
    """
    prefix = _account_prefix(bic, account, corresp=corresp)
    if prefix is None:
        return True
    return _key_sum(prefix + account) % 10 == 0


def with_account_key(bic: str, account: str, *, corresp: bool = False) -> str:
    """Return ``account`` with its control key (digit 9) set for ``bic``.

    For building test bills and samples; the digit at position 9 is replaced.
    """
    if not (_FORMATS["bic"].match(bic) and _FORMATS["account"].match(account)):
        raise ValueError("with_account_key needs a 9-digit BIC and a 20-digit account")
    prefix = _account_prefix(bic, account, corresp=corresp)
    if prefix is None:
        return account
    zeroed = account[:8] + "0" + account[9:]
    key = (_key_sum(prefix + zeroed) % 10 * 3) % 10
    return account[:8] + str(key) + account[9:]


_INN10_WEIGHTS: Final = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11_WEIGHTS: Final = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS: Final = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _inn_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_valid(inn: str) -> bool:
    """Check the check digits of a 10- or 12-digit INN (Federal Tax Service rules)."""
    if not re.fullmatch(r"[0-9]{10}|[0-9]{12}", inn):
        return False
    if len(inn) == 10:
        return _inn_digit(inn, _INN10_WEIGHTS) == int(inn[9])
    return _inn_digit(inn, _INN11_WEIGHTS) == int(inn[10]) and _inn_digit(
        inn, _INN12_WEIGHTS
    ) == int(inn[11])


# --- The payment -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class PaymentQr:
    """A decoded GOST R 56042-2014 payment (tables 1-3).

    Built by :func:`decode_payment_qr`, or directly (the encoder and the
    simulator do); either way ``__post_init__`` checks every value's format,
    so an instance is always encodable and never carries a malformed account.
    Sums are ``int`` kopecks. Unknown keys live in ``extra`` (original
    spelling, read-only mapping).
    """

    encoding: QrEncoding = QrEncoding.UTF_8
    separator: str = "|"
    # Table 1
    name: str
    personal_acc: str
    bank_name: str
    bic: str
    corresp_acc: str
    # Table 2
    sum_kopecks: int | None = None
    purpose: str | None = None
    payee_inn: str | None = None
    payer_inn: str | None = None
    drawer_status: str | None = None
    kpp: str | None = None
    cbc: str | None = None
    oktmo: str | None = None
    payt_reason: str | None = None
    tax_period: str | None = None
    doc_no: str | None = None
    doc_date: str | None = None
    tax_payt_kind: str | None = None
    # Table 3
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    payer_address: str | None = None
    personal_account: str | None = None
    doc_idx: str | None = None
    pens_acc: str | None = None
    contract: str | None = None
    pers_acc: str | None = None
    flat: str | None = None
    phone: str | None = None
    payer_id_type: str | None = None
    payer_id_num: str | None = None
    child_fio: str | None = None
    birth_date: str | None = None
    paym_term: str | None = None
    paym_period: str | None = None
    category: str | None = None
    service_name: str | None = None
    counter_id: str | None = None
    counter_val: str | None = None
    quitt_id: str | None = None
    quitt_date: str | None = None
    inst_num: str | None = None
    class_num: str | None = None
    spec_fio: str | None = None
    add_amount_kopecks: int | None = None
    rule_id: str | None = None
    exec_id: str | None = None
    reg_type: str | None = None
    uin: str | None = None
    tech_code: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.encoding, QrEncoding):
            raise QrFieldError("bad_value", "encoding must be a QrEncoding")
        _check_separator(self.separator)
        for spec in FIELD_SPECS:
            _check_value(spec, getattr(self, spec.attr), self.separator)
        extra: dict[str, str] = {}
        folded: set[str] = set()
        for key, value in dict(self.extra).items():
            _check_extra(key, value, self.separator)
            if key.casefold() in folded:
                raise QrFieldError("duplicate_field", field=key)
            folded.add(key.casefold())
            extra[key] = value
        object.__setattr__(self, "extra", MappingProxyType(extra))

    def __repr__(self) -> str:
        # Payer names, addresses and accounts are personal data: a repr that
        # ends up in a log shows which fields are present, not their values.
        keys = ",".join(self.to_fields())
        return f"PaymentQr({self.header}, sum_kopecks={self.sum_kopecks}, fields=[{keys}])"

    @property
    def account_reference(self) -> str | None:
        """The payer's personal account at the payee (``persAcc``), lobbypay's account key."""
        return self.pers_acc

    @property
    def header(self) -> str:
        """The service block, e.g. ``ST00012``."""
        return self.encoding.header

    def to_fields(self) -> dict[str, str]:
        """Every present field as ``{canonical key: text value}``, in the standard's order.

        Kopeck amounts are given as their decimal digits, exactly as encoded;
        unknown keys follow in their original spelling.
        """
        out: dict[str, str] = {}
        for spec in FIELD_SPECS:
            value = getattr(self, spec.attr)
            if value is not None:
                out[spec.key] = str(value)
        out.update(self.extra)
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``lobbypay qr decode``); money stays ``int``."""
        return {
            "header": self.header,
            "encoding": self.encoding.label,
            "separator": self.separator,
            "fields": self.to_fields(),
            "sum_kopecks": self.sum_kopecks,
            "account_reference": self.account_reference,
            "extra": dict(self.extra),
        }


def _check_separator(separator: str) -> None:
    if (
        not isinstance(separator, str)
        or len(separator) != 1
        or not separator.isascii()
        or separator.isalnum()
        or separator in "= "
        or not separator.isprintable()
    ):
        raise QrHeaderError("bad_header", "separator must be one printable ASCII punctuation mark")


def _check_text(spec_key: str, value: str, separator: str) -> None:
    if not isinstance(value, str):
        raise QrFieldError("bad_value", "must be text", field=spec_key)
    if value == "" or value != value.strip():
        raise QrFieldError("bad_value", "empty or padded with whitespace", field=spec_key)
    if _CONTROL.search(value):
        raise QrFieldError("malformed_field", "control character in value", field=spec_key)
    if separator in value:
        raise QrFieldError("malformed_field", "value contains the separator", field=spec_key)


def _check_value(spec: FieldSpec, value: object, separator: str) -> None:
    if value is None:
        if spec.required:
            raise QrFieldError("missing_field", field=spec.key)
        return
    if spec.kind == "kopecks":
        # bool is an int subclass; True kopecks is not an amount.
        if not isinstance(value, int) or isinstance(value, bool):
            raise QrFieldError("bad_value", "amount must be int kopecks", field=spec.key)
        if not 0 <= value < 10**18:
            raise QrFieldError("bad_value", "amount out of range", field=spec.key)
        return
    if not isinstance(value, str):
        raise QrFieldError("bad_value", "must be text", field=spec.key)
    _check_text(spec.key, value, separator)
    if spec.chars_max is not None and len(value) > spec.chars_max:
        raise QrSizeError("field_too_long", f"over {spec.chars_max} characters", field=spec.key)
    pattern = _FORMATS.get(spec.kind)
    if pattern is not None and not pattern.match(value):
        raise QrFieldError("bad_value", f"not a valid {spec.kind}", field=spec.key)


def _check_extra(key: object, value: object, separator: str) -> None:
    if not isinstance(key, str) or not isinstance(value, str):
        raise QrFieldError("bad_value", "extra keys and values must be text")
    if key == "" or key != key.strip() or _CONTROL.search(key) or "=" in key or separator in key:
        raise QrFieldError("malformed_field", "bad key")
    if key.casefold() in _SPEC_BY_FOLDED:
        raise QrFieldError("duplicate_field", "standard key given as extra", field=key)
    _check_text(key, value, separator)


def verify_check_digits(qr: PaymentQr) -> None:
    """Check account control keys against the BIC and INN check digits.

    Raises :class:`QrFieldError` (``bad_check_digit``). A misprinted digit in
    any of these would send money to someone else, or nowhere.
    """
    if not account_key_valid(qr.bic, qr.personal_acc):
        raise QrFieldError("bad_check_digit", "account control key", field="PersonalAcc")
    if qr.corresp_acc != "0" and not account_key_valid(qr.bic, qr.corresp_acc, corresp=True):
        raise QrFieldError("bad_check_digit", "account control key", field="CorrespAcc")
    if qr.payee_inn is not None and not inn_valid(qr.payee_inn):
        raise QrFieldError("bad_check_digit", "INN check digit", field="PayeeINN")
    if qr.payer_inn not in (None, "0") and not inn_valid(qr.payer_inn):
        raise QrFieldError("bad_check_digit", "INN check digit", field="PayerINN")


# --- Decoding -------------------------------------------------------------------


def is_payment_qr(data: bytes | bytearray | str) -> bool:
    """Cheap test whether ``data`` starts like a GOST R 56042 payload (for classifiers)."""
    head = data[:16]
    if isinstance(head, str):
        head_bytes = head.lstrip("\ufeff \t").encode("ascii", "replace")
    else:
        head_bytes = bytes(head)
        if head_bytes.startswith(UTF8_BOM):
            head_bytes = head_bytes[len(UTF8_BOM) :]
        head_bytes = head_bytes.lstrip(b" \t")
    return head_bytes[:2].upper() == FORMAT_ID.encode() and head_bytes[2:6].isdigit()


def _split_header(head: str) -> tuple[QrEncoding, str]:
    """Check the service block ``ST0001<enc><sep>`` (GOST R 56042-2014, 6.1)."""
    if len(head) < 8 or head[:2].upper() != FORMAT_ID:
        raise QrHeaderError("bad_header", "no ST format identifier")
    version = head[2:6]
    if not (version.isascii() and version.isdigit()):
        raise QrHeaderError("bad_header", "version is not four digits")
    if version != VERSION:
        raise QrHeaderError("unsupported_version", f"version {version}")
    digit = head[6]
    if digit not in ("1", "2", "3"):
        raise QrHeaderError("bad_header", "encoding digit must be 1, 2 or 3")
    encoding = QrEncoding(int(digit))
    separator = head[7]
    _check_separator(separator)
    return encoding, separator


def decode_payment_qr(
    data: bytes | bytearray | memoryview, policy: QrPolicy = DEFAULT_POLICY
) -> PaymentQr:
    """Decode raw scanned bytes into a :class:`PaymentQr`.

    Implements GOST R 56042-2014 clause 6 (service block, requisites) and
    tables 1-3. Raises a :class:`~drivers.scanner.errors.QrError` subclass
    for anything refused; never anything else.
    """
    if len(data) > policy.payload_bytes_max:
        raise QrSizeError("payload_too_large", f"over {policy.payload_bytes_max} bytes")
    raw = bytes(data)
    if raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    # Scanners and shells add line ends and padding around the symbol's data.
    raw = raw.strip(b" \t\r\n")
    try:
        head = raw[:8].decode("ascii")
    except UnicodeDecodeError:
        raise QrHeaderError("bad_header", "service block is not ASCII") from None
    encoding, separator = _split_header(head)
    try:
        text = raw[8:].decode(encoding.codec, errors="strict")
    except UnicodeDecodeError:
        raise QrEncodingError(
            "bad_encoding", f"bytes invalid in {encoding.label} as declared"
        ) from None
    return _parse_requisites(text, encoding, separator, policy)


def decode_payment_qr_text(text: str, policy: QrPolicy = DEFAULT_POLICY) -> PaymentQr:
    """Decode a payload that is already text (``lobbypay qr decode --text``).

    The header's encoding digit is recorded but no bytes are decoded; the size
    limit counts the bytes the text takes in the declared encoding.
    """
    if len(text) > policy.payload_bytes_max:
        raise QrSizeError("payload_too_large", f"over {policy.payload_bytes_max} characters")
    stripped = text.lstrip("\ufeff").strip(" \t\r\n")
    encoding, separator = _split_header(stripped[:8])
    try:
        size = len(stripped.encode(encoding.codec))
    except UnicodeEncodeError:
        raise QrEncodingError(
            "bad_encoding", f"text not representable in {encoding.label} as declared"
        ) from None
    if size > policy.payload_bytes_max:
        raise QrSizeError("payload_too_large", f"over {policy.payload_bytes_max} bytes")
    return _parse_requisites(stripped[8:], encoding, separator, policy)


def _parse_requisites(
    text: str, encoding: QrEncoding, separator: str, policy: QrPolicy
) -> PaymentQr:
    segments = text.split(separator)
    if len(segments) > policy.fields_max * 2:
        # Bound the work before looking at segments at all.
        raise QrSizeError("too_many_fields", f"over {policy.fields_max} fields")
    seen: dict[str, tuple[str, str]] = {}  # folded key -> (spelling, value)
    count = 0
    for segment in segments:
        if segment.strip() == "":
            continue  # doubled or trailing separators: harmless
        count += 1
        if count > policy.fields_max:
            raise QrSizeError("too_many_fields", f"over {policy.fields_max} fields")
        key, eq, value = segment.partition("=")
        key = key.strip()
        value = value.strip()
        if not eq or not key:
            raise QrFieldError("malformed_field", "segment is not key=value")
        if len(key) > policy.key_chars_max or _CONTROL.search(key):
            raise QrFieldError("malformed_field", "bad key")
        spec = _SPEC_BY_FOLDED.get(key.casefold())
        name = spec.key if spec is not None else key
        if _CONTROL.search(value):
            raise QrFieldError("malformed_field", "control character in value", field=name)
        if len(value) > policy.field_chars_max:
            raise QrSizeError(
                "field_too_long", f"over {policy.field_chars_max} characters", field=name
            )
        folded = key.casefold()
        previous = seen.get(folded)
        if previous is not None:
            if (spec is not None and spec.money) or previous[1] != value:
                raise QrFieldError("duplicate_field", field=name)
            continue
        seen[folded] = (name, value)

    kwargs: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for folded, (name, value) in seen.items():
        spec = _SPEC_BY_FOLDED.get(folded)
        if value == "":
            continue  # "KPP=" on a bill means "no KPP"
        if spec is None:
            extra[name] = value
        elif spec.kind == "kopecks":
            if spec.chars_max is not None and len(value) > spec.chars_max:
                raise QrSizeError(
                    "field_too_long", f"over {spec.chars_max} characters", field=spec.key
                )
            if not _FORMATS["kopecks"].match(value):
                raise QrFieldError("bad_value", "amount must be integer kopecks", field=spec.key)
            kwargs[spec.attr] = int(value)
        else:
            kwargs[spec.attr] = value
    for spec in FIELD_SPECS:
        if spec.required and spec.attr not in kwargs:
            raise QrFieldError("missing_field", field=spec.key)
    qr = PaymentQr(encoding=encoding, separator=separator, extra=extra, **kwargs)
    if policy.verify_check_digits:
        verify_check_digits(qr)
    return qr


# --- Encoding -------------------------------------------------------------------


def _pick_separator(values: Iterable[str], preferred: str | None) -> str:
    values = list(values)
    candidates = [preferred] if preferred is not None else list(SEPARATOR_CANDIDATES)
    for candidate in candidates:
        if not any(candidate in value for value in values):
            return candidate
    raise QrEncodeError("cannot_encode", "no separator that is absent from every value")


def encode_fields(
    pairs: Iterable[tuple[str, str]] | Mapping[str, str],
    *,
    encoding: QrEncoding = QrEncoding.UTF_8,
    separator: str | None = None,
) -> bytes:
    """Encode raw ``key=value`` pairs as given, without validating them.

    For technicians' test bills and for building faulty payloads in tests;
    use :func:`encode_payment_qr` for a validated payment. The separator is
    ``|`` unless a value contains it (then the first free one of
    :data:`SEPARATOR_CANDIDATES`), or the one given.
    """
    items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
    for key, value in items:
        if "=" in key or _CONTROL.search(key) or _CONTROL.search(value):
            raise QrEncodeError("cannot_encode", "key with '=' or control character", field=key)
    if separator is not None:
        _check_separator(separator)
    sep = _pick_separator([f"{k}={v}" for k, v in items], separator)
    text = encoding.header + sep + sep.join(f"{k}={v}" for k, v in items)
    try:
        return text.encode(encoding.codec)
    except UnicodeEncodeError:
        raise QrEncodeError(
            "cannot_encode", f"a value is not representable in {encoding.label}"
        ) from None


def encode_payment_qr(qr: PaymentQr) -> bytes:
    """Encode a payment with its own encoding and separator (GOST R 56042-2014, 6).

    Required requisites come first in the standard's order, then the others
    in table order, then ``extra``. ``decode_payment_qr(encode_payment_qr(q)) == q``.
    """
    return encode_fields(qr.to_fields(), encoding=qr.encoding, separator=qr.separator)


def make_payment_qr(
    values: Mapping[str, str | int],
    *,
    encoding: QrEncoding = QrEncoding.UTF_8,
    separator: str | None = None,
) -> PaymentQr:
    """Build a validated payment from ``{key: value}`` using the standard's keys.

    Keys match case-insensitively; ``Sum``/``addAmount`` take int kopecks (or
    their digits); unknown keys go to ``extra``. The separator is chosen as in
    :func:`encode_fields` unless given.
    """
    kwargs: dict[str, Any] = {}
    extra: dict[str, str] = {}
    texts: list[str] = []
    for key, value in values.items():
        spec = _SPEC_BY_FOLDED.get(key.casefold())
        if spec is not None and spec.kind == "kopecks":
            if isinstance(value, str):
                if not _FORMATS["kopecks"].match(value):
                    raise QrFieldError("bad_value", "amount must be integer kopecks", field=key)
                value = int(value)
            kwargs[spec.attr] = value
            continue
        if not isinstance(value, str):
            raise QrFieldError("bad_value", "must be text", field=key)
        texts.append(value)
        if spec is None:
            extra[key] = value
        else:
            kwargs[spec.attr] = value
    sep = _pick_separator(texts, separator)
    return PaymentQr(encoding=encoding, separator=sep, extra=extra, **kwargs)


def _attr_names() -> frozenset[str]:
    return frozenset(f.name for f in fields(PaymentQr))


assert {spec.attr for spec in FIELD_SPECS} | {"encoding", "separator", "extra"} == _attr_names()
