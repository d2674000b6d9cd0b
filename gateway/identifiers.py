"""Accounts, transaction ids and payment ids (DESIGN.md, "Money and identifiers").

Theory of operation
-------------------
A payment arriving at the gateway is identified by **(agent, txn_id)**: OSMP's
``txn_id`` or the JSON API's ``Idempotency-Key``, one namespace per agent. Its
journal ``payment_id`` is a pure function of that pair, so every repeat of the
request, today or in a year, maps to the same journal entry; nothing random or
time-dependent goes into it:

* a digits-only txn id (OSMP): ``gw-<agent>-<txn_id>``, readable in logs and
  registries (at most 3 + 24 + 1 + 20 = 48 characters), zero-padded only when
  a short agent id and txn id would make it shorter than the journal's
  minimum of 8 characters (``gw-a-001``);
* any other key: ``gw-<agent>-k<first 32 hex digits of SHA-256(key)>``. The
  ``k`` can never start a digits-only id, so the two forms never collide, and
  agent ids contain no ``-``, so the agent part is unambiguous.

Both forms match the journal's ``payment_id`` pattern.

Accounts are virtual numbers: ASCII digits, a length range and a check digit
scheme from ``[deployment]`` (the kiosk uses the same policy). A 13..19 digit
string that passes the Luhn check is refused as what it looks like, a bank card
number, whatever the policy says, and is never echoed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final, Literal

from gateway.errors import AccountFormatError, BadRequestError

__all__ = [
    "AGENT_ID_PATTERN",
    "IDEMPOTENCY_KEY_CHARS_MAX",
    "IDEMPOTENCY_KEY_PATTERN",
    "TXN_ID_DIGITS_MAX",
    "AccountPolicy",
    "check_account",
    "check_idempotency_key",
    "looks_like_pan",
    "normalize_txn_id",
    "payment_id_for",
]

AGENT_ID_PATTERN: Final = r"[a-z][a-z0-9_]{0,23}"
TXN_ID_DIGITS_MAX: Final = 20
"""OSMP txn_id is at most 20 digits (a 64-bit unsigned counter)."""
IDEMPOTENCY_KEY_CHARS_MAX: Final = 128
ACCOUNT_CHARS_MAX: Final = 32
PAYMENT_ID_CHARS_MIN: Final = 8
"""The journal's payment_id pattern wants at least 8 characters."""

_AGENT_RE: Final = re.compile(AGENT_ID_PATTERN)
_TXN_RE: Final = re.compile(r"[0-9]{1,20}")
# Letters, digits and . _ : - (a UUID fits), starting with a letter or digit:
# nothing a spreadsheet would read as a formula when the registry is opened.
IDEMPOTENCY_KEY_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"
_KEY_RE: Final = re.compile(IDEMPOTENCY_KEY_PATTERN)
assert TXN_ID_DIGITS_MAX == 20
assert IDEMPOTENCY_KEY_CHARS_MAX == 128
_DIGITS_RE: Final = re.compile(r"[0-9]+")

CheckScheme = Literal["luhn", "mod11", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountPolicy:
    """How a deployment's virtual numbers look (``[deployment]`` settings)."""

    length_min: int = 6
    length_max: int = 12
    check: CheckScheme = "luhn"

    def __post_init__(self) -> None:
        assert 1 <= self.length_min <= self.length_max <= ACCOUNT_CHARS_MAX
        assert self.check in ("luhn", "mod11", "none")


def _luhn_valid(digits: str) -> bool:
    """ISO/IEC 7812-1 annex B."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mod11_valid(digits: str) -> bool:
    """Weights 2, 3, 4, 5, 6, 7, 2, ... from the rightmost body digit (drivers' scheme)."""
    weights = (2, 3, 4, 5, 6, 7)
    body = digits[:-1]
    total = sum((ord(c) - 48) * weights[i % 6] for i, c in enumerate(reversed(body)))
    return (11 - total % 11) % 11 == ord(digits[-1]) - 48


def looks_like_pan(text: str) -> bool:
    """13..19 ASCII digits passing the Luhn check: treat as a card number, never store it."""
    return 13 <= len(text) <= 19 and _DIGITS_RE.fullmatch(text) is not None and _luhn_valid(text)


def check_account(text: str, policy: AccountPolicy) -> str:
    """The account as given if it is a well-formed virtual number; else AccountFormatError.

    Error messages never repeat the input (it could be a card number).
    """
    if len(text) > ACCOUNT_CHARS_MAX or _DIGITS_RE.fullmatch(text) is None:
        raise AccountFormatError("account must be ASCII digits")
    if looks_like_pan(text):
        raise AccountFormatError("account looks like a bank card number; refused")
    if not policy.length_min <= len(text) <= policy.length_max:
        raise AccountFormatError(
            f"account must have {policy.length_min}..{policy.length_max} digits"
        )
    if policy.check == "luhn" and not (len(text) >= 2 and _luhn_valid(text)):
        raise AccountFormatError("account check digit is wrong")
    if policy.check == "mod11" and not (len(text) >= 2 and _mod11_valid(text)):
        raise AccountFormatError("account check digit is wrong")
    return text


def normalize_txn_id(text: str) -> str:
    """OSMP txn_id: 1..20 ASCII digits, not all zeros; leading zeros are dropped.

    Dropping them makes ``000123`` and ``123`` one transaction, as they are one
    number in the agent's counter.
    """
    if _TXN_RE.fullmatch(text) is None:
        raise BadRequestError(f"txn_id must be 1..{TXN_ID_DIGITS_MAX} ASCII digits", param="txn_id")
    normalized = text.lstrip("0")
    if not normalized:
        raise BadRequestError("txn_id must not be zero", param="txn_id")
    return normalized


def check_idempotency_key(text: str) -> str:
    """Idempotency-Key: 1..128 of A-Z a-z 0-9 . _ : - starting with a letter or digit."""
    if _KEY_RE.fullmatch(text) is None:
        raise BadRequestError(
            f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_CHARS_MAX} of A-Z a-z 0-9 . _ : -, "
            "starting with a letter or digit (a UUID is typical)",
            param="Idempotency-Key",
        )
    return text


def check_agent_id(text: str) -> str:
    """An agent id: a lowercase letter, then up to 23 lowercase letters, digits or ``_``."""
    if _AGENT_RE.fullmatch(text) is None:
        raise ValueError("agent id must match " + AGENT_ID_PATTERN)
    return text


def payment_id_for(agent: str, txn_id: str) -> str:
    """The journal payment_id of (agent, txn_id); see the module docstring."""
    assert _AGENT_RE.fullmatch(agent), "agent ids are checked when the agents file is loaded"
    assert _KEY_RE.fullmatch(txn_id)
    prefix = f"gw-{agent}-"
    if _TXN_RE.fullmatch(txn_id) and txn_id[0] != "0":
        # Zero-padded only as far as the journal's 8-character minimum needs;
        # a normalised txn_id never starts with 0, so this stays one-to-one.
        return prefix + txn_id.zfill(PAYMENT_ID_CHARS_MIN - len(prefix))
    digest = hashlib.sha256(txn_id.encode("ascii")).hexdigest()[:32]
    return f"gw-{agent}-k{digest}"
