"""Password hashes for console users: scrypt (RFC 7914) with a random salt.

Stored as ``scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>`` so the cost can be
raised later without breaking old hashes. Verification compares in constant
time and refuses parameters outside sane bounds (a tampered row must not make
a login burn gigabytes of memory).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from central_sync.console.errors import ConsoleInputError

LOG2_N = 14
R = 8
P = 1
SALT_BYTES = 16
HASH_BYTES = 32
LOG2_N_MAX = 20
SCRYPT_MEM_MAX = 256 * 1024 * 1024
PASSWORD_CHARS_MIN = 12
PASSWORD_CHARS_MAX = 1024


def check_password_rules(password: str) -> None:
    """Raise ConsoleInputError unless ``password`` is acceptable for a new user."""
    if len(password) < PASSWORD_CHARS_MIN:
        raise ConsoleInputError(f"a password needs at least {PASSWORD_CHARS_MIN} characters")
    if len(password) > PASSWORD_CHARS_MAX:
        raise ConsoleInputError(f"a password has at most {PASSWORD_CHARS_MAX} characters")
    if password.strip() != password:
        raise ConsoleInputError("a password may not start or end with white space")


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=1 << log2_n,
        r=r,
        p=p,
        maxmem=SCRYPT_MEM_MAX,
        dklen=HASH_BYTES,
    )


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` (the rules are checked first)."""
    check_password_rules(password)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, LOG2_N, R, P)
    b64 = base64.b64encode
    return f"scrypt${LOG2_N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; False for any malformed hash."""
    if len(password) > PASSWORD_CHARS_MAX:
        return False
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return False
    if not (1 <= log2_n <= LOG2_N_MAX and 1 <= r <= 32 and 1 <= p <= 16) or not salt:
        return False
    if 128 * r * (1 << log2_n) > SCRYPT_MEM_MAX // 2:
        return False
    return hmac.compare_digest(_scrypt(password, salt, log2_n, r, p), expected)


# Verified against when the user name is unknown, so a login takes as long
# either way and does not tell which names exist.
DUMMY_HASH = "scrypt$14$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
