"""GOST R 56042-2014 payment QR decoder/encoder: encodings, leniency, every refusal."""

from __future__ import annotations

import pytest

from drivers.scanner.errors import (
    QrEncodeError,
    QrEncodingError,
    QrError,
    QrFieldError,
    QrHeaderError,
    QrSizeError,
)
from drivers.scanner.gost_qr import (
    FIELD_SPECS,
    PaymentQr,
    QrEncoding,
    QrPolicy,
    account_key_valid,
    decode_payment_qr,
    decode_payment_qr_text,
    encode_fields,
    encode_payment_qr,
    inn_valid,
    is_payment_qr,
    make_payment_qr,
    with_account_key,
)
from drivers.scanner.samples import SAMPLE_BILL_FIELDS, sample_bill

# A payee at a credit institution: account control keys valid for the BIC.
BANK = (
    "PersonalAcc=40703810800000001234|BankName=ПАО СБЕРБАНК|BIC=044525225|"
    "CorrespAcc=30101810400000000225"
)

# --- Hex fixtures: the three encodings, checked against hand-written bytes ------

# "ТСЖ" is D2 D1 C6 in windows-1251, F4 F3 F6 in KOI8-R, D0A2 D0A1 D096 in UTF-8;
# "Ёлкина" is A8 EB EA E8 ED E0 in windows-1251 and B3 CC CB C9 CE C1 in KOI8-R.
TAIL = b"|" + BANK.replace("ПАО СБЕРБАНК", "SBER").encode("ascii") + b"|Sum=12345|persAcc=123456782"
CP1251_FIXTURE = b"ST00011|Name=\xd2\xd1\xc6|lastName=\xa8\xeb\xea\xe8\xed\xe0" + TAIL
KOI8R_FIXTURE = b"ST00013|Name=\xf4\xf3\xf6|lastName=\xb3\xcc\xcb\xc9\xce\xc1" + TAIL
UTF8_FIXTURE = (
    b"ST00012|Name=\xd0\xa2\xd0\xa1\xd0\x96|lastName=\xd0\x81\xd0\xbb\xd0\xba\xd0\xb8\xd0\xbd\xd0\xb0"
    + TAIL
)


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (CP1251_FIXTURE, QrEncoding.WINDOWS_1251),
        (UTF8_FIXTURE, QrEncoding.UTF_8),
        (KOI8R_FIXTURE, QrEncoding.KOI8_R),
    ],
    ids=["ST00011-cp1251", "ST00012-utf8", "ST00013-koi8r"],
)
def test_decode_each_encoding_gives_cyrillic_fields(raw: bytes, encoding: QrEncoding) -> None:
    qr = decode_payment_qr(raw)
    assert qr.encoding is encoding
    assert qr.name == "ТСЖ"
    assert qr.last_name == "Ёлкина"
    assert qr.personal_acc == "40703810800000001234"
    assert qr.bic == "044525225"
    assert qr.sum_kopecks == 12345
    assert isinstance(qr.sum_kopecks, int)
    assert qr.account_reference == "123456782"
    assert qr.header == f"ST0001{encoding.value}"


@pytest.mark.parametrize("encoding", list(QrEncoding))
def test_encode_sample_bill_matches_python_codec_bytes(encoding: QrEncoding) -> None:
    qr = sample_bill(encoding)
    raw = encode_payment_qr(qr)
    assert raw.startswith(f"ST0001{encoding.value}|Name=".encode("ascii"))
    assert 'ТСЖ "Берёзовая роща"'.encode(encoding.codec) in raw
    assert decode_payment_qr(raw) == qr


def test_encode_puts_required_fields_first_in_standard_order() -> None:
    qr = make_payment_qr(
        {
            "Sum": 5,
            "CorrespAcc": "0",
            "BIC": "004525988",
            "BankName": "Б",
            "Name": "Н",
            "PersonalAcc": "03224643450000007300",
            "extraKey": "x",
        }
    )
    text = encode_payment_qr(qr).decode("utf-8")
    assert text == (
        "ST00012|Name=Н|PersonalAcc=03224643450000007300|BankName=Б|BIC=004525988|"
        "CorrespAcc=0|Sum=5|extraKey=x"
    )


# --- Real-world shapes (public bills, payees fictionalised) ---------------------


def test_decode_treasury_bill_with_mixed_key_case_and_cyrillic_unknown_key() -> None:
    text = (
        "ST00012|Name=Департамент финансов (ГБУДО «ДШИ №1», л/с 2605642000830080)|"
        "PersonalAcc=03224643450000007300|BankName=ГУ Банка России по ЦФО//УФК по г.Москве "
        "г.Москва|BIC=004525988|CorrespAcc=40102810545370000003|Sum=340000|"
        "Purpose= Оплата за март 2021 г.|PayeeINN=7733098705|KPP=773301001|"
        "CBC=05600000000131131022|OKATO=|ОКТМО=45367000|lastName=Иванова|"
        "FIRSTNAME=Анна|persacc=5512|CATEGORY=OBSHNAIM|"
    )
    qr = decode_payment_qr(text.encode("utf-8"))
    assert qr.name.startswith("Департамент финансов")  # longer than the standard's 160? kept
    assert qr.purpose == "Оплата за март 2021 г."  # padding stripped
    assert qr.first_name == "Анна"
    assert qr.pers_acc == "5512"
    assert qr.category == "OBSHNAIM"
    assert qr.cbc == "05600000000131131022"
    assert dict(qr.extra) == {"ОКТМО": "45367000"}  # "OKATO=" (empty) is absent
    assert qr.to_fields()["persAcc"] == "5512"


def test_decode_treasury_bill_with_corresp_acc_zero_in_cp1251() -> None:
    text = (
        "ST00011|Name=Министерство финансов (БПОУ л/с 010220608)|"
        "PersonalAcc=03224643520000005201|BankName=Отделение Омск Банка России|"
        "BIC=015209001|CorrespAcc=0|PayeeINN=5504000055|KPP=550401001|"
        "Purpose=Оплата по договору|Contract=17|ChildFio=Петров Пётр|Sum=1500000"
    )
    qr = decode_payment_qr(text.encode("cp1251"))
    assert qr.corresp_acc == "0"
    assert qr.contract == "17"
    assert qr.child_fio == "Петров Пётр"
    assert qr.sum_kopecks == 1_500_000


def test_decode_real_bill_with_two_personal_acc_values_is_refused() -> None:
    text = (
        "ST00012|Name=Департамент|PersonalAcc=03224643450000007300|BankName=ГУ|"
        "PersonalAcc=0322464345|BIC=004525988|CorrespAcc=40102810545370000003|Sum=150000"
    )
    with pytest.raises(QrFieldError) as info:
        decode_payment_qr(text.encode("utf-8"))
    assert info.value.reason == "duplicate_field"
    assert info.value.field == "PersonalAcc"


# --- Leniency ------------------------------------------------------------------


def _bill(*extra: str, header: str = "ST00012", sep: str = "|") -> bytes:
    parts = ["Name=ТСЖ", *BANK.split("|"), *extra]
    return (header + sep + sep.join(parts)).encode("utf-8")


def test_decode_accepts_trailing_and_doubled_separators() -> None:
    assert decode_payment_qr(_bill("Sum=1||", "persAcc=7|||")).pers_acc == "7"


def test_decode_accepts_whitespace_around_keys_values_and_payload() -> None:
    raw = b"\r\n  " + _bill(" Sum = 100 ", "  persAcc=  42 ") + b" \r\n"
    qr = decode_payment_qr(raw)
    assert (qr.sum_kopecks, qr.pers_acc) == (100, "42")


def test_decode_accepts_utf8_bom_and_lowercase_format_id() -> None:
    raw = b"\xef\xbb\xbf" + _bill(header="st00012")
    assert decode_payment_qr(raw).name == "ТСЖ"


def test_decode_accepts_any_field_order() -> None:
    raw = b"ST00012|Sum=9|CorrespAcc=30101810400000000225|BIC=044525225|" + (
        "BankName=Б|PersonalAcc=40703810800000001234|Name=Н".encode()
    )
    assert decode_payment_qr(raw).sum_kopecks == 9


def test_decode_empty_optional_fields_are_absent() -> None:
    qr = decode_payment_qr(_bill("KPP=", "Sum=", "Purpose=  "))
    assert (qr.kpp, qr.sum_kopecks, qr.purpose) == (None, None, None)


def test_decode_other_separator_allows_pipe_in_values() -> None:
    raw = _bill("Purpose=газ|вода", sep="#")
    qr = decode_payment_qr(raw)
    assert (qr.separator, qr.purpose) == ("#", "газ|вода")
    assert decode_payment_qr(encode_payment_qr(qr)) == qr


def test_decode_equal_duplicate_of_non_money_field_is_accepted() -> None:
    assert decode_payment_qr(_bill("Purpose=ЖКУ", "purpose=ЖКУ")).purpose == "ЖКУ"


def test_decode_keeps_unknown_keys_in_extra_with_their_spelling() -> None:
    qr = decode_payment_qr(_bill("MyCode=A-1", "other=x=y"))
    assert dict(qr.extra) == {"MyCode": "A-1", "other": "x=y"}


def test_decode_text_counts_size_in_declared_encoding() -> None:
    text = _bill("Purpose=" + "я" * 20).decode("utf-8")
    policy = QrPolicy(payload_bytes_max=len(text) + 10)
    assert decode_payment_qr_text(text.replace("ST00012", "ST00011"), policy).purpose
    with pytest.raises(QrSizeError):
        decode_payment_qr_text(text, policy)  # UTF-8: two bytes per letter


# --- Refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "bad_header"),
        (b"ST0001", "bad_header"),
        (b"XX00012|Name=x", "bad_header"),
        (b"ST00022|Name=x", "unsupported_version"),
        (b"STabcd2|Name=x", "bad_header"),
        (b"ST00014|Name=x", "bad_header"),
        (b"ST00010|Name=x", "bad_header"),
        (b"ST00012AName=x", "bad_header"),
        (b"ST00012=Name=x", "bad_header"),
        (b"ST00012 Name=x", "bad_header"),
        (b"ST\xd0\xa2012|Name=x", "bad_header"),
    ],
)
def test_decode_bad_service_block_raises_header_error(raw: bytes, reason: str) -> None:
    with pytest.raises(QrHeaderError) as info:
        decode_payment_qr(raw)
    assert info.value.reason == reason


def test_decode_cp1251_body_under_utf8_header_raises_encoding_error() -> None:
    raw = b"ST00012|Name=" + "ТСЖ".encode("cp1251") + b"|" + BANK.encode()
    with pytest.raises(QrEncodingError) as info:
        decode_payment_qr(raw)
    assert info.value.reason == "bad_encoding"


def test_decode_byte_undefined_in_cp1251_raises_encoding_error() -> None:
    raw = b"ST00011|Name=\x98|" + BANK.replace("ПАО СБЕРБАНК", "B").encode()
    with pytest.raises(QrEncodingError):
        decode_payment_qr(raw)


def test_decode_payload_over_limit_raises_size_error() -> None:
    raw = _bill("Purpose=" + "x" * 100)
    with pytest.raises(QrSizeError) as info:
        decode_payment_qr(raw, QrPolicy(payload_bytes_max=len(raw) - 1))
    assert info.value.reason == "payload_too_large"
    assert decode_payment_qr(raw, QrPolicy(payload_bytes_max=len(raw))).purpose


def test_decode_field_over_limit_raises_size_error() -> None:
    raw = _bill("Purpose=" + "x" * 51)
    with pytest.raises(QrSizeError) as info:
        decode_payment_qr(raw, QrPolicy(field_chars_max=50))
    assert (info.value.reason, info.value.field) == ("field_too_long", "Purpose")
    assert decode_payment_qr(_bill("Purpose=" + "x" * 50), QrPolicy(field_chars_max=50))


def test_decode_field_over_standard_maximum_raises_size_error() -> None:
    with pytest.raises(QrSizeError) as info:
        decode_payment_qr(_bill("DocNo=" + "1" * 16))
    assert info.value.field == "DocNo"


def test_decode_too_many_fields_raises_size_error() -> None:
    extra = [f"k{i}=v" for i in range(20)]
    with pytest.raises(QrSizeError) as info:
        decode_payment_qr(_bill(*extra), QrPolicy(fields_max=24))
    assert info.value.reason == "too_many_fields"
    assert decode_payment_qr(_bill(*extra), QrPolicy(fields_max=25))


@pytest.mark.parametrize(
    "fields",
    [
        ("PersonalAcc=40703810800000001234",),  # equal value still refused
        ("BIC=044525225",),
        ("CorrespAcc=30101810400000000225",),
        ("Sum=1", "Sum=1"),
        ("persAcc=1", "PersAcc=1"),
        ("PayeeINN=7701234560", "payeeinn=7701234560"),
        ("Name=ТСЖ",),
        ("Purpose=a", "Purpose=b"),  # non-money, but which one to show?
        ("X=1", "x=2"),
    ],
)
def test_decode_duplicated_field_raises_field_error(fields: tuple[str, ...]) -> None:
    with pytest.raises(QrFieldError) as info:
        decode_payment_qr(_bill(*fields))
    assert info.value.reason == "duplicate_field"


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("Sum=12.50", "bad_value"),
        ("Sum=12,50", "bad_value"),
        ("Sum=-5", "bad_value"),
        ("Sum=+5", "bad_value"),
        ("Sum=1 000", "bad_value"),
        ("Sum=١٢٣", "bad_value"),
        ("Sum=1e3", "bad_value"),
        ("Sum=" + "9" * 19, "field_too_long"),
        ("addAmount=0.5", "bad_value"),
        ("PayeeINN=77012345", "bad_value"),
        ("PayeeINN=7701234561", "bad_check_digit"),
        ("PayerINN=500100732250", "bad_check_digit"),
        ("KPP=77010100", "bad_value"),
        ("KPP=7701010011", "field_too_long"),
        ("CBC=123", "bad_value"),
        ("OKTMO=123456789", "bad_value"),
        ("uin=ABC-123", "bad_value"),
        ("TechCode=A", "bad_value"),
        ("no-equals-sign", "malformed_field"),
        ("=value", "malformed_field"),
        ("Purpose=a\x07b", "malformed_field"),
        ("K" * 65 + "=v", "malformed_field"),
    ],
)
def test_decode_malformed_value_raises_typed_error(field: str, reason: str) -> None:
    with pytest.raises(QrError) as info:
        decode_payment_qr(_bill(field))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("PersonalAcc=40703810800000001234", "PersonalAcc=4070381080000000123", "PersonalAcc"),
        ("PersonalAcc=40703810800000001234", "PersonalAcc=4070381080000000123X", "PersonalAcc"),
        ("BIC=044525225", "BIC=04452522", "BIC"),
        ("CorrespAcc=30101810400000000225", "CorrespAcc=301018104", "CorrespAcc"),
    ],
)
def test_decode_malformed_account_or_bic_raises_bad_value(old: str, new: str, field: str) -> None:
    with pytest.raises(QrFieldError) as info:
        decode_payment_qr(_bill().replace(old.encode(), new.encode()))
    assert (info.value.reason, info.value.field) == ("bad_value", field)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("40703810800000001234", "40703810800000001235", "PersonalAcc"),
        ("40703810800000001234", "40703810800000002134", "PersonalAcc"),
        ("30101810400000000225", "30101810400000000226", "CorrespAcc"),
        ("BIC=044525225", "BIC=044525226", "PersonalAcc"),
    ],
)
def test_decode_misprinted_account_fails_control_key(old: str, new: str, field: str) -> None:
    raw = _bill().replace(old.encode(), new.encode())
    with pytest.raises(QrFieldError) as info:
        decode_payment_qr(raw)
    assert (info.value.reason, info.value.field) == ("bad_check_digit", field)
    assert decode_payment_qr(raw, QrPolicy(verify_check_digits=False)).personal_acc


@pytest.mark.parametrize("missing", ["Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc"])
def test_decode_missing_required_field_raises_field_error(missing: str) -> None:
    parts = [p for p in ["Name=ТСЖ", *BANK.split("|")] if not p.startswith(missing + "=")]
    with pytest.raises(QrFieldError) as info:
        decode_payment_qr(("ST00012|" + "|".join(parts)).encode())
    assert (info.value.reason, info.value.field) == ("missing_field", missing)


def test_decode_empty_required_field_counts_as_missing() -> None:
    with pytest.raises(QrFieldError) as info:
        decode_payment_qr(_bill().replace(b"Name=\xd0\xa2\xd0\xa1\xd0\x96", b"Name= "))
    assert (info.value.reason, info.value.field) == ("missing_field", "Name")


def test_errors_never_carry_field_values() -> None:
    secret_sum = "31415926535"
    with pytest.raises(QrError) as info:
        decode_payment_qr(_bill(f"Sum={secret_sum}.5"))
    assert secret_sum not in str(info.value)
    assert secret_sum not in info.value.message_en + info.value.message_ru
    assert info.value.message("ru") == info.value.message_ru


def test_qr_error_messages_exist_for_every_reason() -> None:
    for reason in QrError.messages:
        error = QrError(reason)
        assert error.message_ru
        assert error.message_en
        assert error.message_ru != error.message_en


# --- Construction, encoder ---------------------------------------------------------


def test_payment_qr_invariants_checked_when_built() -> None:
    base = dict(SAMPLE_BILL_FIELDS)
    with pytest.raises(QrFieldError):
        make_payment_qr({**base, "BIC": "12345678"})
    with pytest.raises(QrFieldError):
        make_payment_qr({**base, "Sum": -1})
    with pytest.raises(QrFieldError):
        PaymentQr(name=" x", personal_acc="1" * 20, bank_name="b", bic="1" * 9, corresp_acc="0")
    with pytest.raises(QrFieldError):
        PaymentQr(
            name="x",
            personal_acc="1" * 20,
            bank_name="b",
            bic="1" * 9,
            corresp_acc="0",
            sum_kopecks=True,
        )
    with pytest.raises(QrFieldError):
        PaymentQr(
            name="x",
            personal_acc="1" * 20,
            bank_name="b",
            bic="1" * 9,
            corresp_acc="0",
            extra={"persacc": "1"},
        )


def test_payment_qr_repr_shows_no_personal_data() -> None:
    text = repr(sample_bill())
    assert "Ёлкина" not in text
    assert "123456782" not in text
    assert "persAcc" in text
    assert "345678" in text


def test_make_payment_qr_chooses_free_separator() -> None:
    qr = make_payment_qr({**SAMPLE_BILL_FIELDS, "Purpose": "a|b"})
    assert qr.separator == "#"
    assert decode_payment_qr(encode_payment_qr(qr)) == qr


def test_encode_value_not_representable_raises_encode_error() -> None:
    fields = {**SAMPLE_BILL_FIELDS, "Name": "ТСЖ «Ромашка»"}  # KOI8-R has no « »
    qr = make_payment_qr(fields, encoding=QrEncoding.KOI8_R)
    with pytest.raises(QrEncodeError):
        encode_payment_qr(qr)


def test_encode_fields_refuses_separator_inside_value() -> None:
    with pytest.raises(QrEncodeError):
        encode_fields([("Name", "a|b")], separator="|")
    with pytest.raises(QrHeaderError):
        encode_fields([("Name", "a")], separator="=")


def test_is_payment_qr_recognises_headers() -> None:
    assert is_payment_qr(b"ST00012|")
    assert is_payment_qr("\ufeffST00011|")
    assert is_payment_qr(bytearray(b"\xef\xbb\xbfst00013|"))
    assert not is_payment_qr(b";123=4?")
    assert not is_payment_qr("1234")


def test_field_table_covers_the_standard_lists() -> None:
    keys = {spec.key for spec in FIELD_SPECS}
    assert {"Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc"} <= keys
    assert {
        "Sum",
        "Purpose",
        "PayeeINN",
        "PayerINN",
        "DrawerStatus",
        "KPP",
        "CBC",
        "OKTMO",
        "PaytReason",
        "TaxPeriod",
        "DocNo",
        "DocDate",
        "TaxPaytKind",
    } <= keys
    assert {
        "lastName",
        "persAcc",
        "paymPeriod",
        "serviceName",
        "counterId",
        "counterVal",
        "quittId",
        "uin",
        "TechCode",
        "addAmount",
        "childFio",
        "phone",
    } <= keys
    assert len(keys) == len(FIELD_SPECS) == 50


# --- Check digits -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bic", "account", "corresp"),
    [
        ("044525225", "40702810138250123017", False),
        ("044525225", "30101810400000000225", True),
        ("044525545", "40702810200203001037", False),
        ("044525545", "30101810300000000545", True),
        ("004525988", "40102810545370000003", True),
        ("018073401", "40102810045370000067", True),
    ],
)
def test_account_key_valid_on_published_accounts(bic: str, account: str, corresp: bool) -> None:
    assert account_key_valid(bic, account, corresp=corresp)
    for position in (0, 8, 19):
        digit = str((int(account[position]) + 1) % 10)
        broken = account[:position] + digit + account[position + 1 :]
        assert not account_key_valid(bic, broken, corresp=corresp)
    wrong_key = account[:8] + str((int(account[8]) + 5) % 10) + account[9:]
    assert with_account_key(bic, wrong_key, corresp=corresp) == account


def test_treasury_accounts_are_not_key_checked() -> None:
    assert account_key_valid("004525988", "03224643450000007300")
    assert account_key_valid("004525988", "03224643450000007301")


@pytest.mark.parametrize(
    ("inn", "valid"),
    [
        ("7707083893", True),
        ("7733098705", True),
        ("0274975591", True),
        ("500100732259", True),
        ("7707083894", False),
        ("500100732258", False),
        ("77070838", False),
        ("٧٧٠٧٠٨٣٨٩٣", False),
    ],
)
def test_inn_valid(inn: str, valid: bool) -> None:
    assert inn_valid(inn) is valid


def test_qr_policy_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="positive"):
        QrPolicy(field_chars_max=0)
    with pytest.raises(ValueError, match="at least 16"):
        QrPolicy(payload_bytes_max=8)


def test_qr_encoding_from_label() -> None:
    assert QrEncoding.from_label("cp1251") is QrEncoding.WINDOWS_1251
    assert QrEncoding.from_label("KOI8_R") is QrEncoding.KOI8_R
    assert QrEncoding.from_label("2") is QrEncoding.UTF_8
    with pytest.raises(ValueError, match="unknown"):
        QrEncoding.from_label("latin-1")
