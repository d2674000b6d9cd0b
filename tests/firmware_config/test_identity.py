"""Device identity: made once, 0600, refused when others can read it, stable id."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_config.identity import (
    KEY_FILE_BYTES_MAX,
    Identity,
    IdentityError,
    KeyExistsError,
    KeyFormatError,
    KeyMissingError,
    KeyPermissionError,
    generate_identity,
    load_identity,
    public_key_fingerprint,
    terminal_id_from_public_key,
    verify_signature,
)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_creates_key_mode_0600_in_new_dir_0700(tmp_path: Path) -> None:
    key = tmp_path / "data" / "identity" / "ed25519.key"
    identity = generate_identity(key)
    assert mode_of(key) == 0o600
    assert mode_of(key.parent) == 0o700
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert identity.key_path == key
    assert [p.name for p in key.parent.iterdir()] == ["ed25519.key"]  # no temp file left


def test_generate_mode_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o377)
    try:
        generate_identity(tmp_path / "k.key")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "k.key") == 0o600


def test_generate_refuses_to_overwrite_existing_key(tmp_path: Path) -> None:
    key = tmp_path / "id.key"
    first = generate_identity(key)
    before = key.read_bytes()
    with pytest.raises(KeyExistsError) as info:
        generate_identity(key)
    assert "--force" in info.value.next_step
    assert key.read_bytes() == before
    assert load_identity(key).terminal_id == first.terminal_id


def test_generate_with_force_replaces_key(tmp_path: Path) -> None:
    key = tmp_path / "id.key"
    first = generate_identity(key)
    second = generate_identity(key, force=True)
    assert second.terminal_id != first.terminal_id
    assert load_identity(key).terminal_id == second.terminal_id
    assert mode_of(key) == 0o600


def test_generate_into_unwritable_place_raises_identity_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(IdentityError):
        generate_identity(blocker / "sub" / "id.key")


def test_terminal_id_is_stable_across_loads_and_derived_from_public_key(tmp_path: Path) -> None:
    key = tmp_path / "id.key"
    made = generate_identity(key)
    again = load_identity(key)
    third = load_identity(key)
    assert made.terminal_id == again.terminal_id == third.terminal_id
    assert made.public_key_bytes == again.public_key_bytes
    expected = "T" + base64.b32encode(hashlib.sha256(made.public_key_bytes).digest()).decode()[:16]
    assert made.terminal_id == expected
    assert len(made.terminal_id) == 17
    assert made.terminal_id == made.terminal_id.upper()
    assert terminal_id_from_public_key(made.public_key_bytes) == made.terminal_id


def test_public_key_hex_and_fingerprint(tmp_path: Path) -> None:
    identity = generate_identity(tmp_path / "id.key")
    assert len(identity.public_key_bytes) == 32
    assert bytes.fromhex(identity.public_key_hex) == identity.public_key_bytes
    fingerprint = identity.fingerprint
    groups = fingerprint.split(":")
    assert len(groups) == 8
    assert all(len(g) == 4 for g in groups)
    assert (
        fingerprint.replace(":", "") == hashlib.sha256(identity.public_key_bytes).hexdigest()[:32]
    )
    assert public_key_fingerprint(identity.public_key_bytes) == fingerprint


def test_sign_and_verify(tmp_path: Path) -> None:
    identity = generate_identity(tmp_path / "id.key")
    signature = identity.sign(b"batch 1..10")
    assert len(signature) == 64
    assert verify_signature(identity.public_key_bytes, signature, b"batch 1..10")
    assert identity.verify(signature, b"batch 1..10")
    assert not verify_signature(identity.public_key_bytes, signature, b"batch 1..11")
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify_signature(identity.public_key_bytes, tampered, b"batch 1..10")
    other = generate_identity(tmp_path / "other.key")
    assert not verify_signature(other.public_key_bytes, signature, b"batch 1..10")


@settings(max_examples=50, deadline=None)
@given(public_key=st.binary(max_size=40), signature=st.binary(max_size=80), data=st.binary())
def test_verify_signature_never_raises_on_garbage(
    public_key: bytes, signature: bytes, data: bytes
) -> None:
    assert verify_signature(public_key, signature, data) is False


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o660, 0o602])
def test_load_refuses_key_accessible_to_others_with_fix(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "id.key"
    generate_identity(key)
    key.chmod(mode)
    with pytest.raises(KeyPermissionError) as info:
        load_identity(key)
    assert f"chmod 600 {key}" in str(info.value)
    assert info.value.next_step == f"chmod 600 {key}"
    key.chmod(0o600)
    load_identity(key)


def test_load_accepts_read_only_owner_key(tmp_path: Path) -> None:
    key = tmp_path / "id.key"
    made = generate_identity(key)
    key.chmod(0o400)
    assert load_identity(key).terminal_id == made.terminal_id


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_load_refuses_key_owned_by_another_user(tmp_path: Path) -> None:
    key = tmp_path / "id.key"
    generate_identity(key)
    os.chown(key, 65534, -1)
    with pytest.raises(KeyPermissionError) as info:
        load_identity(key)
    assert "uid 65534" in str(info.value)
    assert info.value.next_step.startswith("chown ")
    assert f"chmod 600 {key}" in info.value.next_step


def test_load_missing_key_raises_key_missing_with_next_step(tmp_path: Path) -> None:
    with pytest.raises(KeyMissingError) as info:
        load_identity(tmp_path / "absent.key")
    assert "identity init" in info.value.next_step


def _private_file(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a key at all",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        bytes(range(256)),
    ],
)
def test_corrupt_key_file_raises_key_format_error_without_content(
    tmp_path: Path, content: bytes
) -> None:
    key = _private_file(tmp_path / "id.key", content)
    with pytest.raises(KeyFormatError) as info:
        load_identity(key)
    assert isinstance(info.value, IdentityError)
    assert info.value.__cause__ is None
    if content:
        assert content.decode("latin-1") not in str(info.value)


def test_truncated_real_key_raises_key_format_error(tmp_path: Path) -> None:
    key = tmp_path / "id.key"
    generate_identity(key)
    pem = key.read_bytes()
    key.write_bytes(pem[: len(pem) // 2])
    with pytest.raises(KeyFormatError) as info:
        load_identity(key)
    assert pem[30:60].decode() not in str(info.value)


def test_non_ed25519_key_raises_key_format_error(tmp_path: Path) -> None:
    pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = _private_file(tmp_path / "id.key", pem)
    with pytest.raises(KeyFormatError, match="not Ed25519"):
        load_identity(key)


def test_oversized_key_file_raises_key_format_error(tmp_path: Path) -> None:
    key = _private_file(tmp_path / "id.key", b"A" * (KEY_FILE_BYTES_MAX + 1))
    with pytest.raises(KeyFormatError, match="too large"):
        load_identity(key)


def test_key_path_that_is_a_directory_raises_identity_error(tmp_path: Path) -> None:
    directory = tmp_path / "id.key"
    directory.mkdir(mode=0o700)
    with pytest.raises(IdentityError):
        load_identity(directory)


def test_identity_repr_shows_no_key_material(tmp_path: Path) -> None:
    key = tmp_path / "id.key"
    identity = generate_identity(key)
    pem_body = b"".join(key.read_bytes().splitlines()[1:-1]).decode()
    text = repr(identity)
    assert identity.terminal_id in text
    assert pem_body not in text
    assert identity.public_key_hex not in text
    assert not hasattr(identity, "__dict__")


def test_identity_can_wrap_an_in_memory_key() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    identity = Identity(Ed25519PrivateKey.generate())
    assert identity.key_path is None
    assert identity.verify(identity.sign(b"x"), b"x")
