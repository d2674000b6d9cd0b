"""ATR parsing (ISO 7816-3 §8.2) and the PC/SC part 3 contactless ATR."""

from __future__ import annotations

import pytest

from drivers.pcsc.atr import parse_atr
from drivers.pcsc.errors import CardNotRecognised
from tests.drivers.vcard.cards import (
    ATR_CONTACT_T0,
    ATR_CONTACT_T1,
    ATR_ISO14443_4,
    ATR_MIFARE_1K,
)


def test_mifare_classic_atr_is_a_contactless_storage_card() -> None:
    info = parse_atr(ATR_MIFARE_1K)
    assert info.contactless
    assert info.storage_standard == 0x03
    assert info.storage_card_name == 0x0001
    assert info.protocols == frozenset({0, 1})
    assert info.tck_valid is True
    assert len(info.historical) == 15


def test_ultralight_atr_names_the_card() -> None:
    info = parse_atr(bytes.fromhex("3B8F8001804F0CA0000003060300030000000068"))
    assert info.contactless
    assert info.storage_card_name == 0x0003


def test_iso14443_4_atr_is_contactless_but_not_storage() -> None:
    info = parse_atr(ATR_ISO14443_4)
    assert info.contactless
    assert info.storage_standard is None


@pytest.mark.parametrize("atr", [ATR_CONTACT_T1, ATR_CONTACT_T0])
def test_contact_atr_is_not_contactless(atr: bytes) -> None:
    info = parse_atr(atr)
    assert not info.contactless
    assert info.historical == b"LOBY"


def test_t0_only_atr_has_no_tck() -> None:
    info = parse_atr(ATR_CONTACT_T0)
    assert info.protocols == frozenset({0})
    assert info.tck_valid is None


def test_real_contact_atr_with_interface_bytes_parses() -> None:
    # A JCOP card: TA1, TD1 (TA2? no: TD1=81 -> TD2), TD2=31 -> TA3, TB3 -> then TCK.
    info = parse_atr(bytes.fromhex("3BF81300008131FE454A434F5076323431B7"))
    assert info.historical == b"JCOPv241"
    assert info.protocols == frozenset({1})
    assert not info.contactless


def test_wrong_tck_is_reported_not_refused() -> None:
    atr = bytearray(ATR_MIFARE_1K)
    atr[-1] ^= 0xFF
    assert parse_atr(bytes(atr)).tck_valid is False


@pytest.mark.parametrize(
    ("atr_hex", "message"),
    [
        ("", "outside"),
        ("3B", "outside"),
        ("00" * 34, "outside"),
        ("1234", "neither 3B nor 3F"),
        ("3B8F80", "interface bytes"),
        ("3B8F800180", "its format bytes say"),
        ("3B044C4F425959", "its format bytes say"),
        ("3B80" + "80" * 9, "too many rounds"),
    ],
)
def test_malformed_atr_raises_not_recognised(atr_hex: str, message: str) -> None:
    with pytest.raises(CardNotRecognised, match=message):
        parse_atr(bytes.fromhex(atr_hex))
