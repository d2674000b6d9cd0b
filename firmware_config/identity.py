"""The terminal's device identity: one Ed25519 key pair (RFC 8032), made once.

Theory of operation: provisioning calls :func:`generate_identity` once; it writes
the private key as unencrypted PKCS #8 PEM (RFC 8410 section 7) to a file that
is mode 0600 from the moment it exists (``os.open`` with ``O_EXCL`` and the mode,
then a hard link into place so an existing key is never overwritten by a race),
fsyncs the file and its directory, and refuses to replace an existing key unless
told to (a new key means the terminal must be enrolled again). Every service
start calls :func:`load_identity`, which refuses a key file that anyone but the
service user could read or write — a leaked terminal key lets anyone sign
payment batches in the terminal's name.

The terminal id is derived from the public key, so it is stable for the life of
the key and needs no storage of its own::

    terminal_id = "T" + base32(sha256(public_key_bytes))[:16]

RFC 4648 base32 (upper-case letters A-Z and digits 2-7, no padding in the first
16 characters): 80 bits of the hash, 17 characters in all, no lower case and no
0/1/8/9 to confuse on a label or over the phone.

Error messages never contain key bytes; errors carry a ``next_step``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import pwd
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from firmware_config.errors import FirmwareConfigError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_FILE_BYTES_MAX = 4096
"""A PEM Ed25519 key is 119 bytes; anything much bigger is not our key file."""

TERMINAL_ID_HASH_CHARS = 16
KEY_FILE_MODE = 0o600
KEY_DIR_MODE = 0o700


class IdentityError(FirmwareConfigError):
    """The identity key is missing, unreadable, unsafe or not an Ed25519 key."""

    def __init__(self, message: str, *, next_step: str = "") -> None:
        super().__init__(message)
        self.next_step = next_step


class KeyMissingError(IdentityError):
    """No key file where the configuration says it is."""


class KeyExistsError(IdentityError):
    """Generation refused: a key already exists and replacing it was not asked for."""


class KeyPermissionError(IdentityError):
    """The key file is accessible to others, or not owned by the service user."""


class KeyFormatError(IdentityError):
    """The key file is not a readable Ed25519 private key."""


class Identity:
    """A terminal's key pair; the private half never leaves this object."""

    __slots__ = ("_private_key", "key_path", "public_key_bytes", "terminal_id")

    def __init__(self, private_key: Ed25519PrivateKey, key_path: Path | None = None) -> None:
        self._private_key = private_key
        self.key_path = key_path
        self.public_key_bytes: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        assert len(self.public_key_bytes) == PUBLIC_KEY_BYTES
        self.terminal_id: str = terminal_id_from_public_key(self.public_key_bytes)

    def __repr__(self) -> str:
        return f"Identity(terminal_id={self.terminal_id!r}, key_path={self.key_path!r})"

    @property
    def public_key_hex(self) -> str:
        """The public key as 64 lower-case hex digits."""
        return self.public_key_bytes.hex()

    @property
    def fingerprint(self) -> str:
        """Short human-comparable form of the public key (see :func:`public_key_fingerprint`)."""
        return public_key_fingerprint(self.public_key_bytes)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``data`` (RFC 8032 section 5.1.6)."""
        return self._private_key.sign(data)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this identity's signature of ``data``."""
        return verify_signature(self.public_key_bytes, signature, data)


def terminal_id_from_public_key(public_key: bytes) -> str:
    """The terminal id for an Ed25519 public key (see the module docstring)."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    digest = hashlib.sha256(public_key).digest()
    return "T" + base64.b32encode(digest).decode("ascii")[:TERMINAL_ID_HASH_CHARS]


def public_key_fingerprint(public_key: bytes) -> str:
    """Eight groups of four hex digits of SHA-256(public key), e.g. ``3f2a:91c0:...``.

    128 bits: short enough for a technician to read aloud and compare with the
    central console, long enough that no one can make a key that matches.
    """
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    digest = hashlib.sha256(public_key).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``data`` by ``public_key``.

    Never raises for bad input bytes: a malformed key or signature is just "no".
    """
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def generate_identity(key_path: Path, *, force: bool = False) -> Identity:
    """Make a new key pair and store it at ``key_path`` (mode 0600, atomically).

    Refuses with :class:`KeyExistsError` if a key (or anything) is already there,
    unless ``force``. A missing parent directory is created with mode 0700; an
    existing one is left as it is (the key file's own mode protects it).
    """
    key_path = Path(key_path)
    if not force and os.path.lexists(key_path):
        raise KeyExistsError(
            f"an identity key already exists at {key_path}",
            next_step=(
                "keep it (the terminal is already identified), or pass --force to replace "
                "it; a replaced key means the terminal must be enrolled again"
            ),
        )
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    directory = key_path.parent
    try:
        directory.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)
        _write_new_file(key_path, pem, replace=force)
    except FileExistsError:
        raise KeyExistsError(
            f"an identity key already exists at {key_path}",
            next_step="pass --force to replace it (the terminal must then be enrolled again)",
        ) from None
    except OSError as exc:
        raise IdentityError(
            f"cannot write the identity key at {key_path}: {exc.strerror}",
            next_step=f"check that {directory} is writable by the service user",
        ) from None
    return Identity(private_key, key_path)


def _write_new_file(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` durably; 0600 from creation; never half-written."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, KEY_FILE_MODE)
    try:
        try:
            # The umask can only remove bits from KEY_FILE_MODE, but say it
            # explicitly so the file is exactly 0600 whatever the umask.
            os.fchmod(fd, KEY_FILE_MODE)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            # link() fails if the name exists, so a key that appeared meanwhile
            # (another `identity init`) is never overwritten.
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_identity(key_path: Path) -> Identity:
    """Load the identity at ``key_path``, refusing a key file others could use.

    Raises :class:`KeyMissingError`, :class:`KeyPermissionError` (mode allows
    group/other access, or the file is not owned by the current user — the
    message says the exact command that fixes it) or :class:`KeyFormatError`.
    """
    key_path = Path(key_path)
    try:
        fd = os.open(key_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise KeyMissingError(
            f"no identity key at {key_path}",
            next_step="run `lobbypay identity init` to create one",
        ) from None
    except PermissionError:
        raise KeyPermissionError(
            f"the identity key at {key_path} is not readable by this user (uid {os.geteuid()})",
            next_step=f"run the service as the key's owner, or `chown {_user_name()} {key_path}`",
        ) from None
    except OSError as exc:
        raise IdentityError(f"cannot open the identity key at {key_path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        _check_key_file(key_path, info)
        raw = _read_bounded(fd, KEY_FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise IdentityError(f"cannot read the identity key at {key_path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > KEY_FILE_BYTES_MAX:
        raise KeyFormatError(
            f"{key_path} is too large to be an identity key",
            next_step="restore the key from backup, or make a new one with "
            "`lobbypay identity init --force` and enroll again",
        )
    return Identity(_parse_private_key(key_path, raw), key_path)


def _check_key_file(key_path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise KeyFormatError(f"{key_path} is not a regular file")
    uid = os.geteuid()
    if info.st_uid != uid:
        raise KeyPermissionError(
            f"the identity key at {key_path} is owned by uid {info.st_uid}, "
            f"not by the user running this service (uid {uid})",
            next_step=f"chown {_user_name()} {key_path} && chmod 600 {key_path}",
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise KeyPermissionError(
            f"the identity key at {key_path} has mode {mode:04o}: group or others may "
            f"read or write it; fix it with: chmod 600 {key_path}",
            next_step=f"chmod 600 {key_path}",
        )


def _read_bounded(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _parse_private_key(key_path: Path, raw: bytes) -> Ed25519PrivateKey:
    next_step = (
        "restore the key from backup, or make a new one with "
        "`lobbypay identity init --force` and enroll the terminal again"
    )
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The library's message could quote the file; ours names only the path.
        raise KeyFormatError(
            f"{key_path} is not a readable PEM private key", next_step=next_step
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{key_path} holds a key that is not Ed25519", next_step=next_step)
    return key


def _user_name() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


__all__ = [
    "KEY_FILE_MODE",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "Identity",
    "IdentityError",
    "KeyExistsError",
    "KeyFormatError",
    "KeyMissingError",
    "KeyPermissionError",
    "generate_identity",
    "load_identity",
    "public_key_fingerprint",
    "terminal_id_from_public_key",
    "verify_signature",
]
