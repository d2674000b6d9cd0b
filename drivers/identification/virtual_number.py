"""Virtual numbers: the account number a resident types on the keypad.

Theory of operation
-------------------
A virtual number is the resident's account number in the lobbypay catalog.
:func:`normalize_virtual_number` turns what was typed (or printed on a
barcode) into canonical digits, or refuses it with a typed reason and a
message in Russian and English for the keypad screen -- before any catalog
lookup, so a typo costs the resident one screen, not a wrong account.

1. Remove spaces and dashes (people copy numbers as ``1234 5678`` or
   ``123-456-78``); anything else that is not an ASCII digit is refused (other
   scripts' digits included: ``str.isdigit`` would accept them).
2. Check the length against the deployment's ``digits_min``/``digits_max``.
3. Refuse a payment card number (13-19 digits, known IIN, Luhn): people type
   the number of the card in their hand; it must never be looked up or logged.
4. Check the deployment's check digit scheme:

   * ``luhn`` -- ISO/IEC 7812-1 annex B; catches every single-digit error and
     almost every transposition of neighbours.
   * ``mod11`` -- weights 2, 3, 4, 5, 6, 7, 2, ... from the rightmost body
     digit, check digit ``(11 - sum mod 11) mod 11``; bodies whose check digit
     would be 10 are never issued. Catches every single-digit error and every
     neighbour transposition.
   * ``none`` -- legacy numbering without a check digit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Final

from drivers.identification.errors import IdentificationError
from drivers.scanner.track2 import luhn_valid, pan_like

__all__ = [
    "CheckDigitScheme",
    "VirtualNumberError",
    "VirtualNumberPolicy",
    "check_digit",
    "check_digit_valid",
    "normalize_virtual_number",
    "with_check_digit",
]

INPUT_CHARS_MAX: Final = 64
"""Longer input is refused before it is even looked at."""
DIGITS_LIMIT: Final = 32
_SEPARATORS: Final = frozenset(" -\t\u00a0\u2009\u202f\u2010\u2011\u2012\u2013")


class CheckDigitScheme(enum.StrEnum):
    """Check digit scheme of a deployment's virtual numbers."""

    LUHN = "luhn"
    MOD11 = "mod11"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualNumberPolicy:
    """A deployment's virtual number format (``[identification]`` in configuration)."""

    digits_min: int = 6
    """Fewest digits, check digit included."""
    digits_max: int = 12
    """Most digits, check digit included."""
    check_digit: CheckDigitScheme = CheckDigitScheme.LUHN
    reject_card_numbers: bool = True
    """Refuse input that is a payment card number (13-19 digits, known IIN, Luhn)."""

    def __post_init__(self) -> None:
        if not 1 <= self.digits_min <= self.digits_max <= DIGITS_LIMIT:
            raise ValueError(f"need 1 <= digits_min <= digits_max <= {DIGITS_LIMIT}")
        if not isinstance(self.check_digit, CheckDigitScheme):
            object.__setattr__(self, "check_digit", CheckDigitScheme(self.check_digit))
        if self.check_digit is not CheckDigitScheme.NONE and self.digits_min < 2:
            raise ValueError("a check digit scheme needs digits_min >= 2")
        if (
            self.reject_card_numbers
            and self.check_digit is CheckDigitScheme.LUHN
            and self.digits_max >= 13
        ):
            # Every such number with a card network's leading digit would be
            # refused as a card number: the two rules cannot both hold.
            raise ValueError(
                "Luhn virtual numbers of 13+ digits look like card numbers: use "
                "digits_max <= 12, another scheme, or reject_card_numbers=False"
            )


DEFAULT_POLICY: Final = VirtualNumberPolicy()


class VirtualNumberError(IdentificationError):
    """A typed or scanned virtual number was refused.

    Reasons: ``empty``, ``not_digits``, ``too_short``, ``too_long``,
    ``bad_check_digit``, ``card_number``. The messages say what to do next.
    """

    _messages: ClassVar[dict[str, tuple[str, str]]] = {
        "empty": ("Введите номер лицевого счёта.", "Enter your account number."),
        "not_digits": (
            "Номер лицевого счёта состоит только из цифр. Введите его ещё раз.",
            "An account number has digits only. Please enter it again.",
        ),
        "too_short": (
            "Номер слишком короткий: в нём от {min} до {max} цифр. Проверьте и введите ещё раз.",
            "The number is too short: it has {min} to {max} digits. Check it and try again.",
        ),
        "too_long": (
            "Номер слишком длинный: в нём от {min} до {max} цифр. Проверьте и введите ещё раз.",
            "The number is too long: it has {min} to {max} digits. Check it and try again.",
        ),
        "bad_check_digit": (
            "В номере ошибка. Сверьте цифры с квитанцией и введите ещё раз.",
            "The number has a typo. Compare the digits with your bill and try again.",
        ),
        "card_number": (
            "Это номер банковской карты. Введите номер лицевого счёта из квитанции.",
            "This is a bank card number. Enter the account number from your bill instead.",
        ),
    }

    def __init__(self, reason: str, policy: VirtualNumberPolicy = DEFAULT_POLICY) -> None:
        ru, en = self._messages.get(reason, self._messages["not_digits"])
        values = {"min": policy.digits_min, "max": policy.digits_max}
        super().__init__(reason, ru.format(**values), en.format(**values))


def _digit_values(digits: str) -> list[int]:
    return [ord(ch) - 0x30 for ch in digits]


def _mod11(body: str) -> int:
    weights = (2, 3, 4, 5, 6, 7)
    total = sum(d * weights[i % len(weights)] for i, d in enumerate(reversed(_digit_values(body))))
    return (11 - total % 11) % 11


def check_digit(body: str, scheme: CheckDigitScheme) -> str:
    """The check digit for ``body`` (ASCII digits) under ``scheme``.

    Raises ValueError for ``none``, a non-digit body, or a ``mod11`` body whose
    check digit would be 10 (such numbers are not issued).
    """
    if not (body.isascii() and body.isdigit()):
        raise ValueError("body must be ASCII digits")
    if scheme is CheckDigitScheme.LUHN:
        for candidate in "0123456789":
            if luhn_valid(body + candidate):
                return candidate
        raise AssertionError("Luhn always has a check digit")  # pragma: no cover
    if scheme is CheckDigitScheme.MOD11:
        digit = _mod11(body)
        if digit == 10:
            raise ValueError("mod11 check digit would be 10: body not issuable")
        return str(digit)
    raise ValueError("scheme 'none' has no check digit")


def with_check_digit(body: str, scheme: CheckDigitScheme) -> str:
    """``body`` with its check digit appended (``none`` returns ``body`` unchanged)."""
    if scheme is CheckDigitScheme.NONE:
        if not (body.isascii() and body.isdigit()):
            raise ValueError("body must be ASCII digits")
        return body
    return body + check_digit(body, scheme)


def check_digit_valid(number: str, scheme: CheckDigitScheme) -> bool:
    """Whether the last digit of ``number`` is right for the rest under ``scheme``."""
    if not (number.isascii() and number.isdigit()):
        return False
    if scheme is CheckDigitScheme.NONE:
        return True
    if len(number) < 2:
        return False
    if scheme is CheckDigitScheme.LUHN:
        return luhn_valid(number)
    return _mod11(number[:-1]) == ord(number[-1]) - 0x30


def normalize_virtual_number(text: str, policy: VirtualNumberPolicy = DEFAULT_POLICY) -> str:
    """Canonical digits of a typed or scanned virtual number, or :class:`VirtualNumberError`."""
    if len(text) > INPUT_CHARS_MAX:
        raise VirtualNumberError("too_long", policy)
    digits = "".join(ch for ch in text if ch not in _SEPARATORS)
    if not digits:
        raise VirtualNumberError("empty", policy)
    if not (digits.isascii() and digits.isdigit()):
        raise VirtualNumberError("not_digits", policy)
    # A card number is refused before the length check: its message must not
    # be "too long", and it must never reach a lookup.
    if policy.reject_card_numbers and pan_like(digits):
        raise VirtualNumberError("card_number", policy)
    if len(digits) < policy.digits_min:
        raise VirtualNumberError("too_short", policy)
    if len(digits) > policy.digits_max:
        raise VirtualNumberError("too_long", policy)
    if not check_digit_valid(digits, policy.check_digit):
        raise VirtualNumberError("bad_check_digit", policy)
    return digits
