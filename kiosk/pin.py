"""The technicians' service-mode PIN: its stored hash and a lockout after wrong guesses.

``kiosk.service_pin_hash`` holds ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``
(PBKDF2-HMAC-SHA256, RFC 8018 section 5.2). The PIN itself is never stored or
logged; ``lobbypay kiosk --hash-pin`` prints the line for a configuration file.

:class:`PinGate` counts wrong PINs in a row; at ``attempts_max`` it refuses
every PIN for ``lockout_s`` seconds, so a resident cannot try all 10,000
four-digit PINs at the lobby.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["PinCheck", "PinGate", "PinHashError", "hash_pin", "verify_pin"]

SCHEME: Final = "pbkdf2_sha256"
ITERATIONS_DEFAULT: Final = 200_000
ITERATIONS_MIN: Final = 1_000
ITERATIONS_MAX: Final = 10_000_000
PIN_DIGITS_MIN: Final = 4
PIN_DIGITS_MAX: Final = 12


class PinHashError(ValueError):
    """The configured PIN hash is not in the expected format."""


def _valid_pin(pin: str) -> bool:
    return PIN_DIGITS_MIN <= len(pin) <= PIN_DIGITS_MAX and pin.isascii() and pin.isdigit()


def hash_pin(pin: str, *, iterations: int = ITERATIONS_DEFAULT, salt: bytes | None = None) -> str:
    """The configuration line for ``pin`` (4..12 digits)."""
    if not _valid_pin(pin):
        raise ValueError(f"a PIN is {PIN_DIGITS_MIN}..{PIN_DIGITS_MAX} digits")
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("ascii"), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def _parse(stored: str) -> tuple[int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise PinHashError(f"PIN hash must look like {SCHEME}$<iterations>$<salt>$<hash>")
    try:
        iterations = int(parts[1])
        salt, digest = bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        raise PinHashError("PIN hash has a malformed number or hex field") from None
    if not ITERATIONS_MIN <= iterations <= ITERATIONS_MAX or not salt or len(digest) != 32:
        raise PinHashError("PIN hash has out-of-range iterations, salt or digest")
    return iterations, salt, digest


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches ``stored`` (constant-time compare; CPU-bound, run off the loop)."""
    iterations, salt, digest = _parse(stored)
    if not _valid_pin(pin):
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", pin.encode("ascii"), salt, iterations)
    return hmac.compare_digest(candidate, digest)


@dataclass(frozen=True, slots=True, kw_only=True)
class PinCheck:
    """The answer to one PIN entry."""

    ok: bool
    attempts_left: int
    locked_s: int = 0
    disabled: bool = False


class PinGate:
    """Wrong-PIN counting and lockout (state only; the hashing is :func:`verify_pin`)."""

    def __init__(
        self,
        *,
        attempts_max: int,
        lockout_s: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert attempts_max >= 1
        assert lockout_s >= 1
        self.attempts_max = attempts_max
        self.lockout_s = lockout_s
        self._clock = clock
        self._wrong = 0
        self._locked_until = 0.0

    def locked_s(self) -> int:
        """Seconds of lockout left (0 when PINs are accepted)."""
        left = self._locked_until - self._clock()
        return max(0, int(left + 0.999)) if left > 0 else 0

    def record(self, ok: bool) -> PinCheck:
        """Count one checked PIN."""
        if ok:
            self._wrong = 0
            return PinCheck(ok=True, attempts_left=self.attempts_max)
        self._wrong += 1
        if self._wrong >= self.attempts_max:
            self._wrong = 0
            self._locked_until = self._clock() + self.lockout_s
            return PinCheck(ok=False, attempts_left=0, locked_s=self.lockout_s)
        return PinCheck(ok=False, attempts_left=self.attempts_max - self._wrong)
