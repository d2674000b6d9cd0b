"""CardIdentity invariants, masking and the keyed card hash."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from drivers.pcsc.errors import CardError, CardRemovedError, ReaderUnavailable
from drivers.pcsc.events import CardInserted, CardReadFailed, ReaderAdded, describe_event
from drivers.pcsc.identity import CardIdentity, canonical_identity, card_hash, mask_uid

KEY = b"k" * 32
UID = "04A1B2C3D4E5F6"


def uid_identity(uid: str = UID) -> CardIdentity:
    return CardIdentity(kind="uid", uid_hex=uid)


def record_identity(**overrides: str | None) -> CardIdentity:
    fields: dict[str, str | None] = {
        "account": "1234567890",
        "card_serial": "SN-0001",
        "deployment_id": "kazan-01",
    }
    fields.update(overrides)
    return CardIdentity(kind="resident_record", **fields)


def test_card_hash_is_hmac_sha256_over_the_documented_canonical_uid_form() -> None:
    expected = hmac.new(KEY, b"lobbypay-card-v1\x1fuid\x1f" + UID.encode(), hashlib.sha256)
    assert card_hash(uid_identity(), KEY) == expected.hexdigest()


def test_card_hash_is_hmac_sha256_over_the_documented_canonical_record_form() -> None:
    message = b"lobbypay-card-v1\x1fresident_record\x1fkazan-01\x1fSN-0001\x1f1234567890"
    expected = hmac.new(KEY, message, hashlib.sha256).hexdigest()
    assert card_hash(record_identity(), KEY) == expected


def test_card_hash_absent_record_fields_are_empty_strings() -> None:
    identity = record_identity(card_serial=None, deployment_id=None)
    assert (
        canonical_identity(identity) == "lobbypay-card-v1\x1fresident_record\x1f\x1f\x1f1234567890"
    )


def test_card_hash_depends_on_key_and_on_every_field() -> None:
    base = card_hash(record_identity(), KEY)
    assert card_hash(record_identity(), b"x" * 32) != base
    assert card_hash(record_identity(account="1234567891"), KEY) != base
    assert card_hash(record_identity(card_serial="SN-0002"), KEY) != base
    assert card_hash(record_identity(deployment_id="kazan-02"), KEY) != base
    assert card_hash(uid_identity("04A1B2C3"), KEY) != card_hash(uid_identity("04A1B2C4"), KEY)


def test_card_hash_short_key_raises_value_error_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes") as info:
        card_hash(uid_identity(), b"secret-key")
    assert "secret-key" not in str(info.value)


def test_repr_and_masked_never_show_the_full_uid() -> None:
    identity = uid_identity()
    assert mask_uid(UID) == "04A1..(7 bytes)"
    assert identity.masked() == "uid:04A1..(7 bytes)"
    assert UID not in repr(identity)
    assert UID not in str(identity)
    assert UID not in json.dumps(identity.to_public_dict())


def test_record_identity_masks_the_account_in_logs() -> None:
    identity = record_identity()
    assert identity.masked() == "record:account=..7890"
    assert "1234567890" not in repr(identity)


def test_describe_event_masks_the_identity() -> None:
    event = CardInserted(reader="R 00 00", atr_hex="3B0400000000", identity=uid_identity())
    line = describe_event(event)
    assert "04A1..(7 bytes)" in line
    assert UID not in line


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "uid"},
        {"kind": "uid", "uid_hex": "04a1b2c3"},
        {"kind": "uid", "uid_hex": "04A1B2"},
        {"kind": "uid", "uid_hex": "04" * 11},
        {"kind": "uid", "uid_hex": "04A1B2C"},
        {"kind": "uid", "uid_hex": UID, "account": "1234"},
        {"kind": "resident_record"},
        {"kind": "resident_record", "account": "12a4"},
        {"kind": "resident_record", "account": "١٢٣٤"},
        {"kind": "resident_record", "account": "1234", "uid_hex": UID},
        {"kind": "resident_record", "account": "1234", "card_serial": "a\x1fb"},
        {"kind": "other", "account": "1234"},
    ],
)
def test_identity_invariants_raise_value_error(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"."):
        CardIdentity(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event_type", "kwargs"),
    [
        (ReaderAdded, {"reader": ""}),
        (ReaderAdded, {"reader": "r" * 129}),
        (CardInserted, {"reader": "r", "atr_hex": "3b04", "identity": None}),
        (CardInserted, {"reader": "r", "atr_hex": "3B", "identity": None}),
        (CardReadFailed, {"reader": "r", "error": ValueError("x")}),
    ],
)
def test_event_invariants_raise(event_type: type, kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        event_type(**kwargs)


def test_errors_carry_titles_and_next_steps_in_both_languages() -> None:
    for error in (CardError("x"), CardRemovedError("x"), ReaderUnavailable("x")):
        for lang in ("ru", "en"):
            assert error.title(lang)
            assert error.next_step(lang)
        assert error.title("ru") != error.title("en")
    assert CardRemovedError.temporary
    assert ReaderUnavailable.temporary
    assert not CardError.temporary
