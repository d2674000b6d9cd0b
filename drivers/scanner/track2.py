"""Magnetic stripe track 2 for resident cards, and bank cards swiped by mistake.

Theory of operation
-------------------
A serial magstripe reader sends what it read as one ASCII line. Track 2
(ISO/IEC 7811-2, 7813) is ``;`` start sentinel, up to 37 data characters of the
5-bit set ``0-9 : ; < = >``, ``?`` end sentinel, and an optional LRC
character; ``=`` separates fields. Readers may also send track 1 (``%...?``,
alphanumeric) and track 3 before or after it, ``%E?`` / ``;E?`` for a failed
read, or strip the sentinels altogether.

**lobbypay resident card, track 2 layout (profile version 1)**::

    ; ACCOUNT = DEPLOYMENT [SERIAL] ? [LRC]

    ACCOUNT     4-12 digits   the resident's account (virtual number), in the
                              PAN position
    =           field separator
    DEPLOYMENT  4 digits      deployment id (checked against the terminal's
                              configuration when one is set)
    SERIAL      0-4 digits    card issue number (a re-issued card gets a new one)

Resident accounts are at most 12 digits *by design*: payment card numbers are
13-19 digits (ISO/IEC 7812-1), so the two can never be confused.

**Bank cards.** Before anything else every track is checked for a payment
card: a track 1 in format B (ISO/IEC 7813, the financial format), or a track 2
whose PAN position holds 13-19 digits that pass the Luhn check with a
registered IIN range, or that is followed by a plausible expiry ``YYMM`` and
service code. Such a read raises :class:`BankCardSwiped`, which carries no
digits and no cause chain. Any 13-19 digit number is refused (the reason only
decides which message the resident sees).

**Card data hygiene.** The parser works on a ``bytearray`` by index: the digits
of a PAN are never sliced into ``bytes``/``str`` objects, never logged and
never put into an exception. Whatever the outcome, the caller's buffer is
overwritten with zeros and emptied before :func:`parse_track2` returns or
raises. (Best effort, as Python allows: the OS tty buffer and pyserial's read
chunk are outside our reach; the framer hands its line buffer over without
copying.)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Final

from drivers.scanner.errors import BankCardSwiped, Track2Error

__all__ = [
    "TRACK2_CHARS_MAX",
    "ResidentTrack2",
    "Track2Profile",
    "encode_resident_track2",
    "looks_like_track",
    "luhn_valid",
    "pan_like",
    "parse_track2",
    "track2_lrc",
    "wipe",
]

TRACK2_CHARS_MAX: Final = 40
"""Track 2 capacity in characters, sentinels and LRC included (ISO/IEC 7811-2)."""

_START1: Final = ord("%")
_START2: Final = ord(";")
_START3: Final = ord("+")
_TRACK_STARTS: Final = (_START1, _START2, _START3)
_END: Final = ord("?")
_SEP: Final = ord("=")
_ZERO: Final = ord("0")
_NINE: Final = ord("9")
_SPACE_BYTES: Final = frozenset(b" \t\r\n")
PAN_DIGITS_MIN: Final = 13
PAN_DIGITS_MAX: Final = 19
RESIDENT_ACCOUNT_DIGITS_MAX: Final = 12


@dataclass(frozen=True, slots=True, kw_only=True)
class Track2Profile:
    """How this deployment's resident cards are encoded (see the module docstring)."""

    deployment_id: str | None = None
    """4 digits; cards of another deployment are refused. None accepts any."""
    account_digits_min: int = 4
    account_digits_max: int = 12
    require_lrc: bool = False
    """Refuse reads without an LRC character (most readers strip it)."""

    def __post_init__(self) -> None:
        if not 1 <= self.account_digits_min <= self.account_digits_max:
            raise ValueError("Track2Profile: need 1 <= account_digits_min <= account_digits_max")
        if self.account_digits_max > RESIDENT_ACCOUNT_DIGITS_MAX:
            raise ValueError(
                "Track2Profile.account_digits_max must be <= 12 so that a resident "
                "account can never be taken for a card number (13-19 digits)"
            )
        if self.deployment_id is not None and not _is_digits(self.deployment_id, 4, 4):
            raise ValueError("Track2Profile.deployment_id must be 4 ASCII digits")


DEFAULT_PROFILE: Final = Track2Profile()


@dataclass(frozen=True, slots=True, kw_only=True)
class ResidentTrack2:
    """A resident card read from track 2. ``repr`` masks the account."""

    account: str = field(repr=False)
    deployment_id: str
    card_serial: str | None = None

    def __post_init__(self) -> None:
        if not _is_digits(self.account, 1, RESIDENT_ACCOUNT_DIGITS_MAX):
            raise ValueError("ResidentTrack2.account must be 1-12 ASCII digits")
        if not _is_digits(self.deployment_id, 4, 4):
            raise ValueError("ResidentTrack2.deployment_id must be 4 ASCII digits")
        if self.card_serial is not None and not _is_digits(self.card_serial, 1, 4):
            raise ValueError("ResidentTrack2.card_serial must be 1-4 ASCII digits")


def _is_digits(text: str, low: int, high: int) -> bool:
    return low <= len(text) <= high and text.isascii() and text.isdigit()


def wipe(buf: bytearray) -> None:
    """Overwrite ``buf`` with zeros in place, then empty it (if no view pins its size)."""
    buf[:] = bytes(len(buf))
    with contextlib.suppress(BufferError):
        buf.clear()


# --- Check digits on a buffer, without copying -------------------------------------


def _luhn_range(buf: bytearray | bytes, start: int, end: int) -> bool:
    """Luhn (ISO/IEC 7812-1, annex B) over ``buf[start:end]`` ASCII digits, read in place."""
    total = 0
    double = False
    for i in range(end - 1, start - 1, -1):
        digit = buf[i] - _ZERO
        if double:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
        double = not double
    return total % 10 == 0


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` (ASCII digits, at least 2) pass the Luhn check."""
    if not _is_digits(digits, 2, 64):
        return False
    return _luhn_range(digits.encode("ascii"), 0, len(digits))


def _prefix_value(buf: bytearray | bytes, start: int, count: int) -> int:
    value = 0
    for i in range(start, start + count):
        value = value * 10 + (buf[i] - _ZERO)
    return value


def _iin_known(buf: bytearray | bytes, start: int) -> bool:
    """Whether the PAN at ``start`` begins with a payment network's IIN range.

    Mir 2200-2204, Mastercard 2221-2720 and 51-55, Amex 34/37, Diners 30/36/38,
    JCB 35, Visa 4, Maestro/Discover/UnionPay/RuPay 50 and 56-69, UATP 1.
    """
    first = buf[start] - _ZERO
    if first in (1, 4, 5, 6):
        return True
    if first == 3:
        return buf[start + 1] - _ZERO in (0, 4, 5, 6, 7, 8)
    if first == 2:
        four = _prefix_value(buf, start, 4)
        return 2200 <= four <= 2204 or 2221 <= four <= 2720
    return False


def _all_digits(buf: bytearray | bytes, start: int, end: int) -> bool:
    return all(_ZERO <= buf[i] <= _NINE for i in range(start, end))


def _expiry_and_service_code(buf: bytearray | bytes, start: int, end: int) -> bool:
    """Whether ``buf[start:end]`` begins with ``YYMM`` + a valid service code (ISO/IEC 7813)."""
    if end - start < 7 or not _all_digits(buf, start, start + 7):
        return False
    month = _prefix_value(buf, start + 2, 2)
    s1, s2, s3 = (buf[start + 4 + k] - _ZERO for k in range(3))
    return 1 <= month <= 12 and s1 in (1, 2, 5, 6, 7, 9) and s2 in (0, 2, 4) and s3 <= 7


def _pan_like_range(buf: bytearray | bytes, start: int, end: int) -> bool:
    return (
        PAN_DIGITS_MIN <= end - start <= PAN_DIGITS_MAX
        and _all_digits(buf, start, end)
        and _iin_known(buf, start)
        and _luhn_range(buf, start, end)
    )


def pan_like(digits: str | bytes | bytearray) -> bool:
    """True for 13-19 ASCII digits with a known IIN that pass Luhn: a card number.

    Used on keypad entries and barcode digits too: a card number must never be
    looked up, logged or stored (DESIGN.md, card data).
    """
    buf = digits.encode("ascii", "replace") if isinstance(digits, str) else digits
    return _pan_like_range(buf, 0, len(buf))


# --- Parsing --------------------------------------------------------------------


def looks_like_track(line: bytes | bytearray) -> bool:
    """Whether a scanned line is magstripe output (a sentinel, or digits with ``=``)."""
    i = _skip_space(line, 0)
    if i >= len(line):
        return False
    if line[i] in (_START1, _START2):
        return True
    # Readers configured to strip sentinels send "digits=digits".
    j = i
    while j < len(line) and _ZERO <= line[j] <= _NINE:
        j += 1
    return j > i and j < len(line) and line[j] == _SEP


def _skip_space(buf: bytearray | bytes, i: int) -> int:
    while i < len(buf) and buf[i] in _SPACE_BYTES:
        i += 1
    return i


def _lrc_range(buf: bytearray | bytes, start: int, end: int) -> int:
    value = 0
    for i in range(start, end):
        value ^= (buf[i] - _ZERO) & 0x0F
    return _ZERO + value


def track2_lrc(chars: bytes) -> int:
    """The LRC character of a track 2 (``;`` ... ``?`` inclusive), as an ASCII byte.

    ISO/IEC 7811-2: XOR of the 4 data bits of every character; readers that
    pass it on send it as ``0x30 + value``.
    """
    return _lrc_range(chars, 0, len(chars))


def parse_track2(line: bytearray, profile: Track2Profile = DEFAULT_PROFILE) -> ResidentTrack2:
    """Parse one magstripe read into a resident card, or refuse it.

    Raises :class:`BankCardSwiped` for a payment card, :class:`Track2Error`
    otherwise. ``line`` is wiped (zeros, then emptied) in every case.
    """
    try:
        return _parse(line, profile)
    finally:
        wipe(line)


def _parse(buf: bytearray, profile: Track2Profile) -> ResidentTrack2:
    n = len(buf)
    i = _skip_space(buf, 0)
    if i < n and _ZERO <= buf[i] <= _NINE:
        return _parse_bare(buf, i, profile)
    tracks2: list[tuple[int, int, str]] = []  # (start, end sentinel, LRC state)
    read_errors = 0
    bank = False
    problem: str | None = None
    while i < n and problem is None:
        sentinel = buf[i]
        if sentinel not in (_START1, _START2, _START3):
            problem = "data outside a track"
            break
        end = buf.find(b"?", i + 1)
        if end < 0:
            # A truncated read: still look for a card number in what arrived.
            problem = "no end sentinel"
            end = n
        nxt = end + 1
        if end == i + 2 and buf[i + 1] == ord("E"):
            read_errors += 1  # "%E?" / ";E?" / "+E?": the reader's failed-read marker
        elif sentinel == _START1:
            # Track 1 format B is the financial format: a payment card.
            bank = bank or (end > i + 1 and buf[i + 1] == ord("B"))
            if nxt < n and buf[nxt] not in _TRACK_STARTS and buf[nxt] not in _SPACE_BYTES:
                nxt += 1  # its LRC character
        elif sentinel == _START2:
            bank = bank or _data_is_bank(buf, i + 1, end)
            lrc = "absent"
            if nxt < n and end < n:
                if buf[nxt] == _lrc_range(buf, i, end + 1):
                    lrc = "ok"
                    nxt += 1
                elif 0x30 <= buf[nxt] <= 0x3F and buf[nxt] != _START2:
                    lrc = "bad"
                    nxt += 1
            tracks2.append((i, end, lrc))
        else:
            if nxt < n and 0x30 <= buf[nxt] <= 0x3F and buf[nxt] != _START2:
                nxt += 1  # track 3 LRC
        i = _skip_space(buf, nxt)
    if bank:
        raise BankCardSwiped() from None
    if problem is not None:
        raise Track2Error("malformed_track", problem)
    if not tracks2:
        if read_errors:
            raise Track2Error("read_error")
        raise Track2Error("malformed_track", "no track 2")
    start, end, lrc = tracks2[0]
    if lrc == "bad" or (profile.require_lrc and lrc == "absent"):
        raise Track2Error("bad_lrc")
    if end + 1 - start + (lrc == "ok") > TRACK2_CHARS_MAX:
        raise Track2Error("malformed_track", "longer than track 2 holds")
    return _resident(buf, start + 1, end, profile)


def _parse_bare(buf: bytearray, i: int, profile: Track2Profile) -> ResidentTrack2:
    """Track 2 data without sentinels (``digits=digits``), as some readers send it."""
    end = i
    while end < len(buf) and buf[end] not in _SPACE_BYTES:
        end += 1
    if _skip_space(buf, end) != len(buf):
        raise Track2Error("malformed_track", "data after the track")
    if _data_is_bank(buf, i, end):
        raise BankCardSwiped() from None
    if end - i + 2 > TRACK2_CHARS_MAX:
        raise Track2Error("malformed_track", "longer than track 2 holds")
    return _resident(buf, i, end, profile)


def _data_is_bank(buf: bytearray, start: int, end: int) -> bool:
    """Whether track 2 data ``buf[start:end]`` (no sentinels) is from a payment card."""
    sep = buf.find(b"=", start, end)
    pan_end = end if sep < 0 else sep
    length = pan_end - start
    if not (PAN_DIGITS_MIN <= length <= PAN_DIGITS_MAX and _all_digits(buf, start, pan_end)):
        return False
    if _iin_known(buf, start) and _luhn_range(buf, start, pan_end):
        return True
    return sep >= 0 and _expiry_and_service_code(buf, sep + 1, end)


def _resident(buf: bytearray, start: int, end: int, profile: Track2Profile) -> ResidentTrack2:
    """Decode the lobbypay layout from track 2 data ``buf[start:end]``."""
    sep = buf.find(b"=", start, end)
    if sep < 0:
        raise Track2Error("not_resident_card", "no field separator")
    account_len = sep - start
    if not _all_digits(buf, start, sep) or not _all_digits(buf, sep + 1, end):
        raise Track2Error("not_resident_card", "unexpected characters")
    if account_len >= PAN_DIGITS_MIN:
        # A 13-19 digit number that failed the bank checks may still be a
        # misread card number: refuse without reading it out.
        raise Track2Error("not_resident_card", "account too long")
    if not profile.account_digits_min <= account_len <= profile.account_digits_max:
        raise Track2Error("not_resident_card", "account length")
    tail = end - (sep + 1)
    if not 4 <= tail <= 8:
        raise Track2Error("not_resident_card", "deployment and serial length")
    account = buf[start:sep].decode("ascii")
    deployment = buf[sep + 1 : sep + 5].decode("ascii")
    serial = buf[sep + 5 : end].decode("ascii") or None
    if profile.deployment_id is not None and deployment != profile.deployment_id:
        raise Track2Error("other_deployment")
    return ResidentTrack2(account=account, deployment_id=deployment, card_serial=serial)


def encode_resident_track2(card: ResidentTrack2, *, with_lrc: bool = False) -> bytes:
    """The track 2 characters a resident card carries (for the simulator and tests)."""
    chars = f";{card.account}={card.deployment_id}{card.card_serial or ''}?".encode("ascii")
    return chars + bytes([track2_lrc(chars)]) if with_lrc else chars
