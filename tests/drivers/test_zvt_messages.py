"""Hex fixtures for every ZVT command and terminal message, and the code tables.

Fixtures marked *captured* come from real terminals as published with open ECR
libraries (ecrterm, Portalum.Zvt, zvt-rs); the others are built from the layout
in the specification and the Wireshark dissector.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.zvt import codes
from drivers.zvt.apdu import Apdu, decode_apdu, encode_apdu
from drivers.zvt.errors import ZvtApduError, ZvtError, ZvtProtocolError, ZvtUsageError
from drivers.zvt.fields import FULL_PAN_RUN, TlvItem, encode_tlv_container
from drivers.zvt.messages import (
    AbortRequest,
    Ack,
    Authorization,
    Completion,
    EndOfDay,
    EndOfDayTotals,
    IntermediateStatus,
    Nack,
    PrintLine,
    PrintTextBlock,
    Registration,
    RepeatReceipt,
    Reversal,
    SchemeTotal,
    StatusEnquiry,
    StatusInformation,
    TerminalAbort,
    decode_ecr_command,
    decode_pt_message,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def wire(message: object) -> bytes:
    return encode_apdu(message.to_apdu())  # type: ignore[attr-defined]


# --------------------------------------------------------------- ECR → PT

ECR_FIXTURES = [
    # captured (ecrterm): password 123456, config BA, EUR
    (Registration(password=123456, config_byte=0xBA, currency="EUR"), "06 00 06 12 34 56 BA 09 78"),
    (
        Registration(password=0, config_byte=0xBE, currency="RUB", service_byte=0x01),
        "06 00 08 00 00 00 BE 06 43 03 01",
    ),
    # captured (ecrterm): 110.00 EUR
    (Authorization(amount_minor=11000, currency="EUR"), "06 01 0A 04 00 00 00 01 10 00 49 09 78"),
    (
        Authorization(amount_minor=12345, currency="RUB", timeout_s=60),
        "06 01 0C 04 00 00 00 01 23 45 49 06 43 01 3C",
    ),
    (Reversal(receipt_no=42, password=123456), "06 30 06 12 34 56 87 00 42"),
    (RepeatReceipt(password=123456), "06 20 03 12 34 56"),
    (EndOfDay(password=123456), "06 50 03 12 34 56"),
    # captured (ecrterm)
    (StatusEnquiry(password=123456), "05 01 03 12 34 56"),
    (StatusEnquiry(), "05 01 00"),
    (AbortRequest(), "06 B0 00"),
]


@pytest.mark.parametrize(("command", "hexdata"), ECR_FIXTURES)
def test_ecr_command_encodes_to_fixture(command: object, hexdata: str) -> None:
    assert wire(command) == h(hexdata)


@pytest.mark.parametrize(("command", "hexdata"), ECR_FIXTURES)
def test_ecr_command_decodes_from_fixture(command: object, hexdata: str) -> None:
    assert decode_ecr_command(decode_apdu(h(hexdata))) == command


def test_ack_and_nack_fixtures() -> None:
    assert wire(Ack()) == h("80 00 00")
    assert wire(Nack(error_code=0x9C)) == h("84 9C 00")
    assert decode_pt_message(decode_apdu(h("84 9C 00"))) == Nack(error_code=0x9C)
    # 84 00 is a positive acknowledgement too.
    assert decode_pt_message(decode_apdu(h("84 00 00"))) == Ack()


def test_authorization_rejects_zero_and_float_like_amounts() -> None:
    with pytest.raises(ZvtUsageError):
        Authorization(amount_minor=0)
    with pytest.raises(ZvtUsageError):
        Authorization(amount_minor=1_000_000_000_000)
    with pytest.raises(ZvtUsageError):
        Authorization(amount_minor=100, currency="XXX")


def test_password_is_not_in_repr() -> None:
    assert "123456" not in repr(Registration(password=123456))
    assert "654321" not in repr(Reversal(receipt_no=1, password=654321))


# --------------------------------------------------------------- PT → ECR

# captured (Portalum.Zvt StatusInformationParserTest): approved Debit Mastercard
PORTALUM_APPROVED = (
    "04 0F 77 27 00 04 00 00 00 00 20 40 0B 00 04 70 0C 22 39 53 0D 10 06 0E 25 12 17 00 01"
    " 19 70 22 F0 F8 EE EE EE EE EE EE 47 71 29 28 00 48 69 2A 31 30 30 34 36 31 37 36 33 20"
    " 20 20 20 20 20 3B 36 31 31 38 30 34 00 00 3C F0 F1 F4 47 45 4E 2E 4E 52 2E 3A 36 31 31"
    " 38 30 34 49 09 78 87 04 70 88 00 04 70 8A 2E 8B F1 F7 44 65 62 69 74 20 4D 61 73 74 65"
    " 72 63 61 72 64 00"
)
# captured (Portalum.Zvt): customer pressed abort, additional text "Abbruch durch Kunde"
PORTALUM_ABORT_BY_KEY = (
    "04 0F 1E 27 6C 29 28 00 48 69 3C F0 F1 F9 41 62 62 72 75 63 68 20 64 75 72 63 68 20 4B"
    " 75 6E 64 65"
)
# captured (Portalum.Zvt): contactless Mastercard with a TLV container
PORTALUM_TLV = (
    "04 0F 65 27 00 0C 23 13 55 0D 10 29 0E 99 99 22 F0 F8 EE EE EE EE EE EE 47 71 A0 01 29"
    " 00 00 00 06 87 00 08 0B 00 00 00 8A 06 8B F1 F1 4D 41 53 54 45 52 43 41 52 44 00 06 2E"
    " 2F 08 1F 12 01 02 1F 10 01 00 60 1B 43 07 A0 00 00 00 04 10 10 44 10 44 65 62 69 74 20"
    " 4D 61 73 74 65 72 63 61 72 64 1F 2B 04 10 01 50 08"
)


def test_status_information_captured_approval_decodes() -> None:
    info = decode_pt_message(decode_apdu(h(PORTALUM_APPROVED)))
    assert isinstance(info, StatusInformation)
    assert info.approved
    assert info.result_code == 0
    assert info.amount_minor == 2040
    assert info.currency == "EUR"
    assert info.trace_no == 470
    assert info.receipt_no == 470
    assert info.turnover_no == 470
    assert info.masked_pan == "************4771"
    assert info.card_type == 0x2E
    assert info.card_name == "Debit Mastercard"
    assert info.auth_code == "611804"
    assert info.terminal_id == "28004869"
    assert (info.date_mmdd, info.time_hhmmss) == ("1006", "223953")
    assert info.additional_text == "GEN.NR.:611804"
    assert info.approved_offline is False


def test_status_information_captured_abort_by_key() -> None:
    info = decode_pt_message(decode_apdu(h(PORTALUM_ABORT_BY_KEY)))
    assert isinstance(info, StatusInformation)
    assert info.result_code == codes.RESULT_ABORT
    assert not info.approved
    assert info.additional_text == "Abbruch durch Kunde"
    assert info.message("en") == "aborted: time-out or abort key"


def test_status_information_captured_with_tlv_container() -> None:
    info = decode_pt_message(decode_apdu(h(PORTALUM_TLV)))
    assert isinstance(info, StatusInformation)
    assert info.card_name == "MASTERCARD"
    assert info.receipt_no == 8
    assert info.terminal_id == "00000006"


def test_status_information_full_pan_is_masked_while_parsing() -> None:
    info = StatusInformation(result_code=0, amount_minor=100, currency="RUB")
    apdu = info.to_apdu(pan_digits="4111111111111111")
    assert b"\x41\x11\x11\x11\x11\x11\x11\x11" in apdu.data  # a full PAN is on the wire
    decoded = decode_pt_message(apdu)
    assert isinstance(decoded, StatusInformation)
    assert decoded.masked_pan == "411111******1111"
    assert "4111111111111111" not in repr(decoded)


def test_status_information_offline_from_payment_type() -> None:
    info = StatusInformation(result_code=0, amount_minor=1, payment_type=0x40)
    assert decode_pt_message(info.to_apdu()).approved_offline is True  # type: ignore[union-attr]
    online = StatusInformation(result_code=0, amount_minor=1, payment_type=0x60)
    assert decode_pt_message(online.to_apdu()).approved_offline is False  # type: ignore[union-attr]


def test_status_information_online_flag_tlv_wins_over_payment_type() -> None:
    info = StatusInformation(result_code=0, amount_minor=1, payment_type=0x60, online_flag=0)
    decoded = decode_pt_message(info.to_apdu())
    assert isinstance(decoded, StatusInformation)
    assert decoded.online_flag == 0
    assert decoded.approved_offline is True


def test_declined_is_never_approved_offline() -> None:
    assert StatusInformation(result_code=0x05, payment_type=0x40).approved_offline is False


def test_status_information_without_result_code_raises() -> None:
    with pytest.raises(ZvtApduError):
        decode_pt_message(decode_apdu(h("04 0F 07 04 00 00 00 00 01 00")))


def test_status_information_roundtrip_with_totals() -> None:
    totals = EndOfDayTotals(
        receipt_no_start=1,
        receipt_no_end=3,
        schemes=(
            SchemeTotal(scheme="girocard", count=1, total_minor=500),
            SchemeTotal(scheme="jcb", count=0, total_minor=0),
            SchemeTotal(scheme="eurocard", count=2, total_minor=958),
        ),
    )
    info = StatusInformation(result_code=0, amount_minor=1458, trace_no=9, totals=totals)
    decoded = decode_pt_message(info.to_apdu())
    assert decoded == info
    assert totals.count == 3
    assert totals.total_minor == 1458


def test_totals_of_wrong_length_raise() -> None:
    with pytest.raises(ZvtApduError):
        EndOfDayTotals.decode(h("00 01 00 02 01 00"))


def test_intermediate_status_captured_fixture() -> None:
    # captured (zvt-rs): status 0x17 "please wait", timeout 0
    apdu = decode_apdu(h("04 FF 02 17 00"))
    status = decode_pt_message(apdu)
    assert status == IntermediateStatus(code=0x17, timeout_s=0)
    assert wire(status) == h("04 FF 02 17 00")


def test_intermediate_status_with_tlv_and_short_form() -> None:
    tlv = (TlvItem(tag=0x24, children=(TlvItem(tag=0x07, value=b"Karte"),)),)
    status = IntermediateStatus(code=0x0A, timeout_s=5, tlv=tlv)
    assert decode_pt_message(status.to_apdu()) == status
    assert decode_pt_message(decode_apdu(h("04 FF 01 0B"))) == IntermediateStatus(code=0x0B)


@pytest.mark.parametrize(
    ("code", "en", "ru"),
    [
        (0x0A, "insert or tap card", "вставьте или приложите карту"),
        (0x01, "please watch the PIN pad: enter PIN", "введите ПИН-код на терминале"),
        (0x04, "processing: waiting for the bank", "обработка: ожидание ответа банка"),
        (0x17, "please wait", "пожалуйста, подождите"),
        (0x0B, "please remove card", "заберите карту"),
        (0x4B, "please remove card", "заберите карту"),
        (0x55, "incorrect PIN; please remove card", "неверный ПИН-код; заберите карту"),
    ],
)
def test_intermediate_status_texts_in_english_and_russian(code: int, en: str, ru: str) -> None:
    status = IntermediateStatus(code=code)
    assert status.message("en") == en
    assert status.message("ru") == ru


def test_completion_tagged_layout_roundtrip() -> None:
    # captured layout (zvt-rs): status byte 10, TID 52523535, EUR
    raw = h("06 0F 0A 19 10 29 52 52 35 35 49 09 78")
    completion = decode_pt_message(decode_apdu(raw))
    assert completion == Completion(status_byte=0x10, terminal_id="52523535", currency="EUR")
    assert wire(completion) == raw


def test_completion_after_status_enquiry_has_sw_version_and_terminal_status() -> None:
    sw = b"GER-APP-v2.0.9"
    raw = h("06 0F") + bytes((3 + len(sw) + 1,)) + h("F0 F1 F4") + sw + h("00")
    completion = decode_pt_message(decode_apdu(raw))
    assert completion == Completion(sw_version="GER-APP-v2.0.9", terminal_status=0)
    assert wire(completion) == raw


def test_terminal_abort_fixture() -> None:
    abort = decode_pt_message(decode_apdu(h("06 1E 01 6C")))
    assert abort == TerminalAbort(result_code=0x6C)
    assert wire(abort) == h("06 1E 01 6C")
    assert decode_pt_message(decode_apdu(h("06 1E 00"))) == TerminalAbort(result_code=0xFF)


def test_print_line_captured_fixture() -> None:
    # captured (ecrterm): "Gesamt      0       0,00"
    raw = h("06 D1 19 00 47 65 73 61 6D 74 20 20 20 20 20 20 30 20 20 20 20 20 20 20 30 2C 30 30")
    line = decode_pt_message(decode_apdu(raw))
    assert line == PrintLine(attribute=0, text="Gesamt      0       0,00")
    assert wire(line) == raw


def test_print_line_scrubs_a_card_number() -> None:
    raw = encode_apdu(Apdu(cls=0x06, instr=0xD1, data=b"\x00CARD 4111111111111111"))
    line = decode_pt_message(decode_apdu(raw))
    assert isinstance(line, PrintLine)
    assert line.text == "CARD 411111******1111"


def test_print_line_in_cp866_for_russian_terminals() -> None:
    line = PrintLine(attribute=0x80, text="ОДОБРЕНО")
    decoded = decode_pt_message(line.to_apdu(text_encoding="cp866"), text_encoding="cp866")
    assert decoded == line
    assert decoded.last_line  # type: ignore[union-attr]


def test_print_text_block_roundtrip() -> None:
    block = PrintTextBlock(lines=("LOBBYPAY", "AMOUNT 1.00 RUB"), receipt_type=2)
    apdu = block.to_apdu()
    assert apdu.data[:1] == h("06")
    assert decode_pt_message(apdu) == block


def test_unknown_terminal_command_raises_protocol_error() -> None:
    with pytest.raises(ZvtProtocolError):
        decode_pt_message(decode_apdu(h("0F 99 00")))


def test_ecr_command_from_terminal_is_unknown() -> None:
    with pytest.raises(ZvtProtocolError):
        decode_pt_message(decode_apdu(h("06 01 0A 04 00 00 00 01 10 00 49 09 78")))


def test_result_code_table_has_english_and_russian() -> None:
    for code, (en, ru) in codes.RESULT_CODES.items():
        assert en, code
        assert ru, code
        assert en != ru, code
    assert codes.result_text(0x00) == "no error, approved"
    assert codes.result_text(0x6C, "ru") == "отменено: истекло время или нажата отмена"
    assert codes.result_text(0x62) == "date/time incorrect"
    assert codes.result_text(0x9C, "ru") == "подождите (терминал занят)"
    assert codes.result_text(0xFF) == "system error"
    assert codes.result_text(0x05) == "declined by the authorisation system"
    assert codes.result_text(0x69, "ru") == "неизвестная ошибка"


def test_registration_without_currency_cannot_carry_service_byte() -> None:
    with pytest.raises(ZvtUsageError):
        Registration(currency=None, service_byte=1)


def test_tlv_in_registration_roundtrip() -> None:
    tlv = (TlvItem(tag=0x26, children=(TlvItem(tag=0x0A, value=h("06 D3")),)),)
    reg = Registration(password=1, config_byte=0xBE, currency="RUB", tlv=tlv)
    assert reg.to_apdu().data.endswith(encode_tlv_container(tlv))
    assert decode_ecr_command(reg.to_apdu()) == reg


ANY_APDU = st.builds(
    Apdu,
    cls=st.sampled_from([0x04, 0x06, 0x05, 0x80, 0x84, 0x0F]),
    instr=st.sampled_from([0x0F, 0xFF, 0x1E, 0xD1, 0xD3, 0x00, 0x01, 0x20, 0x30, 0x50, 0xB0]),
    data=st.binary(max_size=80),
)


@settings(max_examples=500, deadline=None)
@given(apdu=ANY_APDU)
def test_decode_pt_message_fuzz_raises_only_typed_errors(apdu: Apdu) -> None:
    try:
        message = decode_pt_message(apdu)
    except ZvtError:
        return
    for text in ("masked_pan", "additional_text", "card_name", "text"):
        value = getattr(message, text, None)
        if isinstance(value, str):
            assert not FULL_PAN_RUN.search(value)


@settings(max_examples=300, deadline=None)
@given(apdu=ANY_APDU)
def test_decode_ecr_command_fuzz_raises_only_typed_errors(apdu: Apdu) -> None:
    with contextlib.suppress(ZvtError):
        decode_ecr_command(apdu)


@settings(max_examples=100, deadline=None)
@given(
    amount=st.integers(1, 999_999_999_999),
    currency=st.sampled_from(sorted(codes.CURRENCIES)),
    timeout=st.none() | st.integers(0, 255),
)
def test_authorization_roundtrip(amount: int, currency: str, timeout: int | None) -> None:
    command = Authorization(amount_minor=amount, currency=currency, timeout_s=timeout)
    assert decode_ecr_command(decode_apdu(wire(command))) == command
