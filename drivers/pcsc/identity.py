"""A resident card's identity, its resident record, masking and the keyed card hash.

Theory of operation: whatever the card, a read ends in one frozen
:class:`CardIdentity` -- either the UID of a contactless card (``kind="uid"``)
or the resident record of a contact card (``kind="resident_record"``, the
lobbypay resident card profile in DESIGN.md). The software never stores either
as such: the journal and the catalog hold :func:`card_hash`, an HMAC-SHA256
under a per-deployment key, over :func:`canonical_identity`. Logs and
``repr()`` show only :meth:`CardIdentity.masked`: the first two bytes of a UID
and its length, the last four digits of an account.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Literal

from drivers.pcsc.errors import CardNotRecognised, CardProtocolError
from drivers.pcsc.tlv import parse_ber_tlv

__all__ = [
    "ACCOUNT_DIGITS_MAX",
    "ACCOUNT_DIGITS_MIN",
    "CARD_HASH_KEY_BYTES_MIN",
    "CARD_HASH_VERSION",
    "RECORD_TEXT_CHARS_MAX",
    "TAG_ACCOUNT",
    "TAG_CARD_SERIAL",
    "TAG_DEPLOYMENT_ID",
    "UID_BYTES_MAX",
    "UID_BYTES_MIN",
    "CardIdentity",
    "IdentityKind",
    "ResidentRecord",
    "canonical_identity",
    "card_hash",
    "mask_uid",
    "parse_resident_record",
]

IdentityKind = Literal["uid", "resident_record"]

UID_BYTES_MIN = 4
"""ISO 14443-3 single-size UID; also the shortest 'random' UID (08 xx xx xx)."""
UID_BYTES_MAX = 10
"""ISO 14443-3 triple-size UID (ISO 15693 and FeliCa IDs are 8 bytes)."""

TAG_ACCOUNT = 0x80
TAG_CARD_SERIAL = 0x81
TAG_DEPLOYMENT_ID = 0x82

ACCOUNT_DIGITS_MIN = 4
ACCOUNT_DIGITS_MAX = 32
RECORD_TEXT_CHARS_MAX = 64
"""Longest card serial or deployment id accepted from a card."""

CARD_HASH_VERSION = "lobbypay-card-v1"
CARD_HASH_KEY_BYTES_MIN = 16

_UNIT_SEPARATOR = "\x1f"
_HEX_DIGITS = frozenset("0123456789ABCDEF")


def mask_uid(uid_hex: str) -> str:
    """Mask a UID for logs: its first two bytes and its length, ``"04A1..(7 bytes)"``."""
    return f"{uid_hex[:4]}..({len(uid_hex) // 2} bytes)"


def _is_printable_ascii(text: str) -> bool:
    return all(0x20 <= ord(ch) <= 0x7E for ch in text)


@dataclass(frozen=True, slots=True, kw_only=True)
class CardIdentity:
    """Who a card says it is: a contactless UID or a contact card's resident record.

    ``uid_hex`` is upper-case hex (4..10 bytes) and set only for ``kind="uid"``;
    ``account`` (ASCII digits) is set only for ``kind="resident_record"``, with
    ``card_serial`` and ``deployment_id`` when the card carries them.
    ``repr()`` is masked; use :func:`card_hash` to store or look one up.
    """

    kind: IdentityKind
    uid_hex: str | None = None
    account: str | None = None
    card_serial: str | None = None
    deployment_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "uid":
            uid = self.uid_hex
            if uid is None or not set(uid) <= _HEX_DIGITS or len(uid) % 2:
                raise ValueError("a uid identity needs uid_hex in upper-case hex")
            if not UID_BYTES_MIN <= len(uid) // 2 <= UID_BYTES_MAX:
                raise ValueError(f"a UID is {UID_BYTES_MIN}..{UID_BYTES_MAX} bytes")
            if self.account is not None or self.card_serial is not None:
                raise ValueError("a uid identity carries no record fields")
            if self.deployment_id is not None:
                raise ValueError("a uid identity carries no record fields")
        elif self.kind == "resident_record":
            if self.uid_hex is not None:
                raise ValueError("a resident_record identity carries no UID")
            account = self.account
            if account is None or not (account.isascii() and account.isdigit()):
                raise ValueError("a resident_record identity needs an all-digit account")
            if not ACCOUNT_DIGITS_MIN <= len(account) <= ACCOUNT_DIGITS_MAX:
                raise ValueError(f"an account is {ACCOUNT_DIGITS_MIN}..{ACCOUNT_DIGITS_MAX} digits")
            for text in (self.card_serial, self.deployment_id):
                if text is not None and not (
                    1 <= len(text) <= RECORD_TEXT_CHARS_MAX and _is_printable_ascii(text)
                ):
                    raise ValueError("card serial and deployment id are printable ASCII")
        else:
            raise ValueError(f"unknown identity kind {self.kind!r}")

    def masked(self) -> str:
        """A log-safe description: ``uid:04A1..(7 bytes)`` or ``record:account=..6789``."""
        if self.kind == "uid":
            assert self.uid_hex is not None
            return f"uid:{mask_uid(self.uid_hex)}"
        assert self.account is not None
        return f"record:account=..{self.account[-4:]}"

    def __repr__(self) -> str:
        return f"CardIdentity({self.masked()})"

    def to_public_dict(self) -> dict[str, Any]:
        """A JSON-ready, masked view for technicians (``lobbypay card read --json``).

        The UID appears only masked. The account number is shown because it is
        printed on the resident's bills anyway and a technician checks it.
        """
        if self.kind == "uid":
            assert self.uid_hex is not None
            return {
                "kind": self.kind,
                "uid_masked": mask_uid(self.uid_hex),
                "uid_bytes": len(self.uid_hex) // 2,
            }
        return {
            "kind": self.kind,
            "account": self.account,
            "card_serial": self.card_serial,
            "deployment_id": self.deployment_id,
        }


def canonical_identity(identity: CardIdentity) -> str:
    """The string :func:`card_hash` authenticates, fixed forever for version 1.

    Fields are joined by the ASCII unit separator (1F), which no field can
    contain (UIDs are hex, the rest printable ASCII), so the form is
    unambiguous:

    * ``lobbypay-card-v1 US uid US <UID in upper-case hex>``
    * ``lobbypay-card-v1 US resident_record US <deployment id> US <card serial>
      US <account>`` with an absent field as the empty string.
    """
    if identity.kind == "uid":
        assert identity.uid_hex is not None
        fields = [CARD_HASH_VERSION, "uid", identity.uid_hex]
    else:
        assert identity.account is not None
        fields = [
            CARD_HASH_VERSION,
            "resident_record",
            identity.deployment_id or "",
            identity.card_serial or "",
            identity.account,
        ]
    return _UNIT_SEPARATOR.join(fields)


def card_hash(identity: CardIdentity, key: bytes) -> str:
    """HMAC-SHA256 (RFC 2104) under the deployment key over :func:`canonical_identity`.

    Returns 64 lower-case hex digits. ``key`` is the per-deployment card hash
    key (at least 16 bytes); it never appears in logs or errors.
    """
    if len(key) < CARD_HASH_KEY_BYTES_MIN:
        raise ValueError(f"the card hash key must be at least {CARD_HASH_KEY_BYTES_MIN} bytes")
    message = canonical_identity(identity).encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ResidentRecord:
    """The decoded EF 01 01 of the lobbypay resident card profile (DESIGN.md)."""

    account: str
    card_serial: str | None
    deployment_id: str | None

    def to_identity(self) -> CardIdentity:
        """The identity this record stands for."""
        return CardIdentity(
            kind="resident_record",
            account=self.account,
            card_serial=self.card_serial,
            deployment_id=self.deployment_id,
        )


def _ascii_field(name: str, value: bytes) -> str:
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise CardNotRecognised(f"record {name} is not ASCII") from None
    if not 1 <= len(text) <= RECORD_TEXT_CHARS_MAX or not _is_printable_ascii(text):
        raise CardNotRecognised(f"record {name} is not 1..{RECORD_TEXT_CHARS_MAX} printable chars")
    return text


def parse_resident_record(data: bytes) -> ResidentRecord:
    """Decode the resident record: BER-TLV with tags 80, 81, 82 (DESIGN.md profile).

    Tag 80 (account number, ASCII digits) is required; 81 (card serial) and 82
    (deployment id) are optional printable ASCII; other tags are skipped. A
    known tag twice is ambiguous and refused, because picking one could
    misdirect a payment. Raises :class:`~drivers.pcsc.errors.TlvError` for
    malformed BER-TLV and :class:`CardNotRecognised` for a record that parses
    but is not a valid resident record.
    """
    seen: dict[int, bytes] = {}
    for obj in parse_ber_tlv(data):
        if obj.tag in (TAG_ACCOUNT, TAG_CARD_SERIAL, TAG_DEPLOYMENT_ID):
            if obj.tag in seen:
                raise CardProtocolError(f"record has tag {obj.tag:02X} twice")
            seen[obj.tag] = obj.value
    if TAG_ACCOUNT not in seen:
        raise CardNotRecognised("record has no account number (tag 80)")
    raw_account = seen[TAG_ACCOUNT]
    if not (
        ACCOUNT_DIGITS_MIN <= len(raw_account) <= ACCOUNT_DIGITS_MAX
        and all(0x30 <= b <= 0x39 for b in raw_account)
    ):
        raise CardNotRecognised(
            f"record account is not {ACCOUNT_DIGITS_MIN}..{ACCOUNT_DIGITS_MAX} ASCII digits"
        )
    serial = seen.get(TAG_CARD_SERIAL)
    deployment = seen.get(TAG_DEPLOYMENT_ID)
    return ResidentRecord(
        account=raw_account.decode("ascii"),
        card_serial=None if serial is None else _ascii_field("card serial", serial),
        deployment_id=None if deployment is None else _ascii_field("deployment id", deployment),
    )
