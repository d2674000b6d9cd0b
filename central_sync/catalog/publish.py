"""Signed catalog releases: snapshots and deltas, built by central, applied by terminals.

DESIGN.md, "The local catalog" and "The signed sync protocol" (download). The
checks follow The Update Framework (TUF) specification, section 5 ("Detailed
client workflow"): verify the signature with the pinned key, refuse a version
not newer than the trusted one (rollback attack), refuse an expired release
(freeze attack), refuse anything whose length or hash differs from the signed
metadata (endless-data and mix-and-match attacks).

Theory of operation
-------------------
A release is one byte stream (a file on disk, an HTTP body)::

    magic      8 bytes   b"LPCATREL"
    format     1 byte    container format, 1
    length     4 bytes   big-endian length of the manifest
    manifest   a signed message (central_sync.signing) of type "catalog-snapshot"
               or "catalog-delta", signed by central's key
    chunks     the chunks listed in the manifest, back to back, nothing after

The manifest body (canonical JSON)::

    {"format": 1,                      record layout, central_sync.catalog.wire
     "version": 42, "base_version": 41 | null (snapshot),
     "published_at_ms": ..., "expires_at_ms": ...,
     "accounts": 1000000,              accounts in the catalog once applied
     "records": 1000000,               lines in all chunks
     "header": {...},                  providers, service types, tariffs, rules
     "compression": "zlib",
     "chunks": [[bytes, raw_bytes, records, sha256_hex], ...],
     "payload_sha256": hex}            SHA-256 of all chunk bytes, in order

A chunk is zlib (RFC 1950) of JSON Lines: each line one record, ``\\n`` after
each. The manifest is small (a 1,000,000-account snapshot has about 120 chunks)
so a terminal verifies the signature, the version, the base and the expiry
*before* it reads any payload, checks each chunk's hash *before* it decompresses
it (never inflate unauthenticated bytes), bounds the inflated size by the signed
``raw_bytes``, and never holds more than one chunk in memory. The whole release
is applied in one store transaction (see store.py), so any refusal — even at
the last byte — leaves the old catalog exactly as it was.

Applying is one process. Validating records is about 60% of the time of a big
snapshot, so we tried validating in a helper process while this one inserts
(pipes, not multiprocessing, which would re-import the caller's main module or
fork its threads). On the shared 2-core target it did not pay: 21.9 s against
18.3 s inline for 1,000,000 accounts, the two processes fighting for the same
cores; the code was removed rather than kept switched off.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from central_sync import signing
from central_sync.catalog import model as m
from central_sync.catalog import wire
from central_sync.catalog.errors import (
    BaseVersionMismatchError,
    CatalogValueError,
    ExpiredReleaseError,
    MalformedReleaseError,
    ReleaseBuildError,
    ReleaseHashMismatchError,
    ReleaseRefusedError,
    ReleaseSignatureError,
    ReleaseTooLargeError,
    RollbackError,
    UnknownReleaseVersionError,
)
from central_sync.catalog.store import ApplyTransaction, CatalogStore, ReleaseState

__all__ = [
    "CONTAINER_FORMAT",
    "CONTAINER_MAGIC",
    "DEFAULT_LIMITS",
    "DELTA_TYPE",
    "SNAPSHOT_TYPE",
    "ApplyResult",
    "EncodedChunk",
    "ReleaseInfo",
    "ReleaseLimits",
    "ReleaseSource",
    "apply_release",
    "build_delta",
    "build_snapshot",
    "encode_chunk",
    "read_release_info",
    "snapshot_chunks",
    "write_release",
]

logger = logging.getLogger(__name__)

SNAPSHOT_TYPE = "catalog-snapshot"
DELTA_TYPE = "catalog-delta"
CONTAINER_MAGIC = b"LPCATREL"
CONTAINER_FORMAT = 1
_PREFIX = struct.Struct(">8sBI")
CHUNK_RECORDS_DEFAULT = 8192
# zlib level 3: measured on the target, level 6 costs 4x the CPU of level 3
# (25 vs 6 µs per account) for 12% fewer bytes; level 1 saves 1 µs for 10% more.
COMPRESS_LEVEL_DEFAULT = 3
READ_BYTES_MAX = 1 << 20

Kind = Literal["snapshot", "delta"]
ReleaseSource = bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str]
"""A release: its bytes, an open binary file, or the path of a file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseLimits:
    """Bounds a terminal enforces on a release before and while applying it."""

    manifest_bytes_max: int = 16 * 1024 * 1024
    chunks_max: int = 4096
    chunk_bytes_max: int = 32 * 1024 * 1024
    chunk_raw_bytes_max: int = 128 * 1024 * 1024
    chunk_records_max: int = 65_536
    record_bytes_max: int = 64 * 1024
    records_max: int = 20_000_000
    release_bytes_max: int = 4 * 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in self.__slots__:
            assert getattr(self, name) > 0, name


DEFAULT_LIMITS = ReleaseLimits()


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedChunk:
    """One compressed chunk of record lines, ready to be listed in a manifest."""

    data: bytes
    raw_bytes: int
    records: int
    sha256: str

    def __post_init__(self) -> None:
        assert self.records > 0
        assert self.raw_bytes > 0
        assert len(self.sha256) == 64


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseInfo:
    """What a release's verified manifest says."""

    kind: Kind
    version: int
    base_version: int | None
    published_at_ms: int
    expires_at_ms: int
    accounts: int
    records: int
    chunks: int
    payload_bytes: int
    release_sha256: str
    header: m.CatalogHeader


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What :func:`apply_release` did."""

    kind: Kind
    version: int
    base_version: int | None
    accounts: int
    records: int
    release_bytes: int
    release_sha256: str


# --------------------------------------------------------------------------- build


def encode_chunk(lines: Sequence[bytes], *, level: int = COMPRESS_LEVEL_DEFAULT) -> EncodedChunk:
    """Compress record lines into one chunk (pure; safe to run in a worker process)."""
    if not lines:
        raise ReleaseBuildError("a chunk needs at least one record")
    raw = b"\n".join(lines) + b"\n"
    data = zlib.compress(raw, level)
    return EncodedChunk(
        data=data, raw_bytes=len(raw), records=len(lines), sha256=hashlib.sha256(data).hexdigest()
    )


def _chunked(lines: Iterable[bytes], chunk_records: int, level: int) -> Iterator[EncodedChunk]:
    if chunk_records < 1:
        raise ReleaseBuildError("chunk_records must be at least 1")
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= chunk_records:
            yield encode_chunk(batch, level=level)
            batch = []
    if batch:
        yield encode_chunk(batch, level=level)


def snapshot_chunks(
    accounts: Iterable[m.Account],
    *,
    chunk_records: int = CHUNK_RECORDS_DEFAULT,
    level: int = COMPRESS_LEVEL_DEFAULT,
) -> Iterator[EncodedChunk]:
    """Encode accounts (pass them sorted by virtual number) into snapshot chunks."""
    return _chunked((wire.record_line(a) for a in accounts), chunk_records, level)


def _check_times(version: int, published_at_ms: int, expires_at_ms: int) -> None:
    if not isinstance(version, int) or version < 1:
        raise ReleaseBuildError("version must be an int >= 1")
    if not 0 <= published_at_ms < expires_at_ms:
        raise ReleaseBuildError("need 0 <= published_at_ms < expires_at_ms")


def write_release(
    out: BinaryIO,
    *,
    kind: Kind,
    header: m.CatalogHeader,
    chunks: Sequence[EncodedChunk],
    version: int,
    base_version: int | None,
    accounts: int,
    published_at_ms: int,
    expires_at_ms: int,
    signer: signing.Signer,
) -> ReleaseInfo:
    """Sign a manifest for ``chunks`` and write the whole release to ``out``."""
    _check_times(version, published_at_ms, expires_at_ms)
    if kind == "snapshot":
        if base_version is not None:
            raise ReleaseBuildError("a snapshot has no base version")
        if accounts != sum(c.records for c in chunks):
            raise ReleaseBuildError("a snapshot has one record per account")
    elif base_version is None or not 0 <= base_version < version:
        raise ReleaseBuildError("a delta needs 0 <= base_version < version")
    payload = hashlib.sha256()
    for c in chunks:
        payload.update(c.data)
    body: dict[str, Any] = {
        "format": wire.RECORD_FORMAT,
        "version": version,
        "base_version": base_version,
        "published_at_ms": published_at_ms,
        "expires_at_ms": expires_at_ms,
        "accounts": accounts,
        "records": sum(c.records for c in chunks),
        "header": wire.header_to_wire(header),
        "compression": "zlib",
        "chunks": [[len(c.data), c.raw_bytes, c.records, c.sha256] for c in chunks],
        "payload_sha256": payload.hexdigest(),
    }
    manifest = signing.seal(SNAPSHOT_TYPE if kind == "snapshot" else DELTA_TYPE, body, signer)
    out.write(_PREFIX.pack(CONTAINER_MAGIC, CONTAINER_FORMAT, len(manifest)))
    out.write(manifest)
    for c in chunks:
        out.write(c.data)
    return ReleaseInfo(
        kind=kind,
        version=version,
        base_version=base_version,
        published_at_ms=published_at_ms,
        expires_at_ms=expires_at_ms,
        accounts=accounts,
        records=body["records"],
        chunks=len(chunks),
        payload_bytes=sum(len(c.data) for c in chunks),
        release_sha256=hashlib.sha256(manifest).hexdigest(),
        header=header,
    )


def build_snapshot(
    catalog: m.Catalog,
    version: int,
    signer: signing.Signer,
    *,
    published_at_ms: int,
    expires_at_ms: int,
    chunk_records: int = CHUNK_RECORDS_DEFAULT,
    level: int = COMPRESS_LEVEL_DEFAULT,
    validate: bool = True,
) -> bytes:
    """A full, signed release of ``catalog`` as ``version``.

    ``validate`` runs :meth:`Catalog.validate` first, so central never signs a
    release that terminals would refuse as malformed.
    """
    if validate:
        _validate(catalog)
    accounts = [catalog.accounts[vn] for vn in sorted(catalog.accounts)]
    chunks = list(snapshot_chunks(accounts, chunk_records=chunk_records, level=level))
    out = io.BytesIO()
    write_release(
        out,
        kind="snapshot",
        header=catalog.header,
        chunks=chunks,
        version=version,
        base_version=None,
        accounts=len(accounts),
        published_at_ms=published_at_ms,
        expires_at_ms=expires_at_ms,
        signer=signer,
    )
    return out.getvalue()


def build_delta(
    old: m.Catalog,
    new: m.Catalog,
    version: int,
    signer: signing.Signer,
    *,
    base_version: int,
    published_at_ms: int,
    expires_at_ms: int,
    chunk_records: int = CHUNK_RECORDS_DEFAULT,
    level: int = COMPRESS_LEVEL_DEFAULT,
    validate: bool = True,
) -> bytes:
    """A signed release taking a terminal from ``old`` (at ``base_version``) to ``new``.

    Upserts every account whose record differs, deletes every account that is
    gone, and carries ``new``'s header whole (it is small).
    """
    if validate:
        _validate(new)
    gone = _dropped(old.header, new.header)
    if gone:
        raise ReleaseBuildError(
            f"a delta cannot remove providers or service codes ({', '.join(gone[:5])});"
            " publish a snapshot"
        )
    lines: list[bytes] = []
    for vn in sorted(old.accounts.keys() | new.accounts.keys()):
        after = new.accounts.get(vn)
        if after is None:
            lines.append(wire.delta_del_line(vn))
            continue
        before = old.accounts.get(vn)
        if before is None or wire.record_line(before) != wire.record_line(after):
            lines.append(wire.delta_put_line(after))
    chunks = list(_chunked(lines, chunk_records, level))
    out = io.BytesIO()
    write_release(
        out,
        kind="delta",
        header=new.header,
        chunks=chunks,
        version=version,
        base_version=base_version,
        accounts=len(new.accounts),
        published_at_ms=published_at_ms,
        expires_at_ms=expires_at_ms,
        signer=signer,
    )
    return out.getvalue()


def _validate(catalog: m.Catalog) -> None:
    try:
        catalog.validate()
    except CatalogValueError as exc:
        raise ReleaseBuildError(f"catalog is not valid: {exc}") from None


# --------------------------------------------------------------------------- read

_Sha = Annotated[str, StringConstraints(strict=True, pattern="^[0-9a-f]{64}$")]
_Count = Annotated[int, Field(strict=True, ge=0, le=2**62)]
_Ms = Annotated[int, Field(strict=True, ge=0, le=2**62)]


class _Manifest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    format: int
    version: Annotated[int, Field(strict=True, ge=1, le=2**62)]
    base_version: Annotated[int, Field(strict=True, ge=0, le=2**62)] | None
    published_at_ms: _Ms
    expires_at_ms: _Ms
    accounts: _Count
    records: _Count
    header: dict[str, Any]
    compression: Literal["zlib"]
    # The tuple is lax only about its container (a JSON array arrives as a list);
    # its items stay strict.
    chunks: list[Annotated[tuple[_Count, _Count, _Count, _Sha], Strict(False)]]
    payload_sha256: _Sha


class _Source:
    """Exact reads from bytes or a binary file; short reads are malformed releases."""

    def __init__(self, data: ReleaseSource) -> None:
        self._file: BinaryIO | None = None
        self._close = False
        self._view: memoryview | None = None
        self._pos = 0
        if isinstance(data, bytes | bytearray | memoryview):
            self._view = memoryview(data).cast("B")
        elif isinstance(data, str | os.PathLike):
            try:
                self._file = Path(data).open("rb")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise MalformedReleaseError(f"cannot read release file: {exc.strerror}") from None
            self._close = True
        else:
            self._file = data
        self.consumed = 0

    def read_exact(self, n: int, what: str) -> bytes:
        if self._view is not None:
            chunk = bytes(self._view[self._pos : self._pos + n])
            self._pos += len(chunk)
        else:
            assert self._file is not None
            parts: list[bytes] = []
            left = n
            while left:
                part = self._file.read(min(left, READ_BYTES_MAX))
                if not part:
                    break
                parts.append(part)
                left -= len(part)
            chunk = b"".join(parts)
        self.consumed += len(chunk)
        if len(chunk) != n:
            raise MalformedReleaseError(f"release is truncated in {what}")
        return chunk

    def at_end(self) -> bool:
        if self._view is not None:
            return self._pos >= len(self._view)
        assert self._file is not None
        return self._file.read(1) == b""

    def close(self) -> None:
        if self._close and self._file is not None:
            self._file.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Verified:
    kind: Kind
    manifest: _Manifest
    header: m.CatalogHeader
    release_sha256: str
    header_bytes: bytes


def _read_manifest(source: _Source, public_key: bytes, limits: ReleaseLimits) -> _Verified:
    prefix = source.read_exact(_PREFIX.size, "the container prefix")
    magic, fmt, length = _PREFIX.unpack(prefix)
    if magic != CONTAINER_MAGIC:
        raise MalformedReleaseError("not a lobbypay catalog release (bad magic)")
    if fmt != CONTAINER_FORMAT:
        raise UnknownReleaseVersionError(f"release container format {fmt} is not supported")
    if length > limits.manifest_bytes_max:
        raise ReleaseTooLargeError(f"manifest of {length} bytes exceeds the bound")
    data = source.read_exact(length, "the manifest")
    try:
        _, msg_type, _ = signing.peek(data)
        if msg_type not in (SNAPSHOT_TYPE, DELTA_TYPE):
            raise MalformedReleaseError(f"a {msg_type!r} message is not a catalog release")
        msg = signing.open_message(data, expected_type=msg_type, public_key=public_key)
    except signing.UnknownVersionError as exc:
        raise UnknownReleaseVersionError(str(exc)) from None
    except signing.BadSignatureError as exc:
        raise ReleaseSignatureError(str(exc)) from None
    except signing.SignedMessageError as exc:
        raise MalformedReleaseError(str(exc)) from None
    body = msg.body
    fmt_value = body.get("format")
    if fmt_value != wire.RECORD_FORMAT:
        raise UnknownReleaseVersionError(f"catalog record format {fmt_value!r} is not supported")
    try:
        manifest = _Manifest.model_validate(dict(body))
    except pydantic.ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise MalformedReleaseError(f"manifest {where}: {err['msg']}") from None
    kind: Kind = "snapshot" if msg_type == SNAPSHOT_TYPE else "delta"
    _check_manifest(kind, manifest, limits)
    header = wire.header_from_wire(manifest.header)
    return _Verified(
        kind=kind,
        manifest=manifest,
        header=header,
        release_sha256=hashlib.sha256(data).hexdigest(),
        header_bytes=wire.encode_line(manifest.header),
    )


def _check_manifest(kind: Kind, mf: _Manifest, limits: ReleaseLimits) -> None:
    if len(mf.chunks) > limits.chunks_max:
        raise ReleaseTooLargeError(f"{len(mf.chunks)} chunks exceed the bound")
    if mf.records > limits.records_max or mf.accounts > limits.records_max:
        raise ReleaseTooLargeError(f"{max(mf.records, mf.accounts)} records exceed the bound")
    total = 0
    for size, raw, records, _ in mf.chunks:
        if size > limits.chunk_bytes_max or raw > limits.chunk_raw_bytes_max:
            raise ReleaseTooLargeError("a chunk exceeds the size bound")
        if records > limits.chunk_records_max:
            raise ReleaseTooLargeError("a chunk exceeds the records bound")
        if size == 0 or records == 0 or raw < 2 * records:
            raise MalformedReleaseError("a chunk has no records or impossible sizes")
        total += size
    if total > limits.release_bytes_max:
        raise ReleaseTooLargeError(f"payload of {total} bytes exceeds the bound")
    if sum(c[2] for c in mf.chunks) != mf.records:
        raise MalformedReleaseError("chunk record counts do not add up to records")
    if mf.published_at_ms >= mf.expires_at_ms:
        raise MalformedReleaseError("release expires before it was published")
    if kind == "snapshot":
        if mf.base_version is not None:
            raise MalformedReleaseError("a snapshot has no base version")
        if mf.records != mf.accounts:
            raise MalformedReleaseError("a snapshot has one record per account")
    elif mf.base_version is None or mf.base_version >= mf.version:
        raise MalformedReleaseError("a delta needs a base version below its version")


def _dropped(old: m.CatalogHeader, new: m.CatalogHeader) -> list[str]:
    gone = sorted(old.provider_by_id.keys() - new.provider_by_id.keys())
    gone += sorted(old.service_type_by_code.keys() - new.service_type_by_code.keys())
    return gone


def _check_header_keeps_references(old: m.CatalogHeader, new: m.CatalogHeader) -> None:
    # Accounts a delta does not touch may still refer to any provider or service
    # code of the old header. Checking them all would read the whole store, so a
    # delta may add providers and codes but never remove one: removing takes a
    # snapshot. build_delta enforces the same rule on central's side.
    gone = _dropped(old, new)
    if gone:
        raise MalformedReleaseError(
            f"delta removes providers or service codes ({', '.join(gone[:5])}); needs a snapshot"
        )


def _info(v: _Verified) -> ReleaseInfo:
    mf = v.manifest
    return ReleaseInfo(
        kind=v.kind,
        version=mf.version,
        base_version=mf.base_version,
        published_at_ms=mf.published_at_ms,
        expires_at_ms=mf.expires_at_ms,
        accounts=mf.accounts,
        records=mf.records,
        chunks=len(mf.chunks),
        payload_bytes=sum(c[0] for c in mf.chunks),
        release_sha256=v.release_sha256,
        header=v.header,
    )


def read_release_info(
    data: ReleaseSource,
    *,
    central_public_key: bytes,
    limits: ReleaseLimits = DEFAULT_LIMITS,
) -> ReleaseInfo:
    """Verify a release's manifest (signature, format, bounds) without reading its payload."""
    source = _Source(data)
    try:
        return _info(_read_manifest(source, central_public_key, limits))
    finally:
        source.close()


# --------------------------------------------------------------------------- apply


def inflate_chunk(data: bytes, raw_bytes: int, index: int) -> bytes:
    """Inflate a hash-checked chunk, refusing any other size than the signed one."""
    inflater = zlib.decompressobj()
    try:
        # max_length bounds the output by what the signed manifest promised, so a
        # chunk cannot expand into more memory than we agreed to.
        raw = inflater.decompress(data, raw_bytes + 1)
    except zlib.error:
        raise MalformedReleaseError(f"chunk {index} is not valid zlib data") from None
    if len(raw) != raw_bytes or not inflater.eof or inflater.unconsumed_tail:
        raise MalformedReleaseError(f"chunk {index} does not inflate to its signed size")
    if inflater.unused_data:
        raise MalformedReleaseError(f"chunk {index} has bytes after its zlib stream")
    return raw


def split_lines(raw: bytes, records: int, index: int, record_bytes_max: int) -> list[bytes]:
    """The record lines of an inflated chunk, checked against the signed count and bound."""
    if not raw.endswith(b"\n"):
        raise MalformedReleaseError(f"chunk {index} does not end with a newline")
    lines = raw[:-1].split(b"\n")
    if len(lines) != records:
        raise MalformedReleaseError(
            f"chunk {index} has {len(lines)} lines, manifest says {records}"
        )
    for n, line in enumerate(lines):
        if not line or len(line) > record_bytes_max:
            raise MalformedReleaseError(f"chunk {index} line {n + 1} is empty or too long")
    return lines


SnapshotRows = tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]


def check_snapshot_lines(
    checker: wire.RecordChecker, lines: list[bytes], index: int
) -> SnapshotRows:
    """Validate a snapshot chunk's lines.

    Returns the account rows ``(vn, record line)`` and card rows ``(vn, 32-byte hash)``.
    """
    rows: list[tuple[str, bytes]] = []
    cards: list[tuple[str, bytes]] = []
    check = checker.check_account
    for n, line in enumerate(lines):
        try:
            rec = check(line)
        except MalformedReleaseError as exc:
            raise MalformedReleaseError(f"chunk {index} line {n + 1}: {exc}") from None
        vn = rec[0]
        rows.append((vn, line))
        for h in rec[5]:
            cards.append((vn, bytes.fromhex(h)))
    return rows, cards


class _Chunks:
    """Reads a release's chunks in order, checking each against the signed manifest."""

    def __init__(self, source: _Source, manifest: _Manifest) -> None:
        self._source = source
        self._manifest = manifest
        self._payload = hashlib.sha256()

    def __iter__(self) -> Iterator[tuple[int, bytes, int, int]]:
        """(index, compressed bytes, raw_bytes, records) of each hash-checked chunk."""
        for index, (size, raw_bytes, records, sha) in enumerate(self._manifest.chunks):
            data = self._source.read_exact(size, f"chunk {index}")
            if hashlib.sha256(data).hexdigest() != sha:
                raise ReleaseHashMismatchError(f"chunk {index} does not match its hash")
            self._payload.update(data)
            yield index, data, raw_bytes, records

    def check_end(self) -> None:
        if not self._source.at_end():
            raise MalformedReleaseError("release has bytes after its last chunk")
        if self._payload.hexdigest() != self._manifest.payload_sha256:
            raise ReleaseHashMismatchError("payload does not match its hash")


def _snapshot_rows(
    chunks: _Chunks, checker: wire.RecordChecker, record_bytes_max: int
) -> Iterator[SnapshotRows]:
    for index, data, raw_bytes, records in chunks:
        lines = split_lines(inflate_chunk(data, raw_bytes, index), records, index, record_bytes_max)
        yield check_snapshot_lines(checker, lines, index)


def apply_release(
    store: CatalogStore,
    data: ReleaseSource,
    *,
    central_public_key: bytes,
    now_ms: int,
    limits: ReleaseLimits = DEFAULT_LIMITS,
) -> ApplyResult:
    """Verify a release and apply it to ``store`` atomically.

    ``data`` is the release's bytes, an open binary file, or a file's path.
    Refuses with a :class:`~central_sync.catalog.errors.ReleaseRefusedError`
    subclass, and changes nothing, when the release is badly signed, of an
    unknown version, malformed, oversized, not newer than the store (rollback),
    already expired, a delta on another base, or when any chunk's bytes differ
    from the signed hashes.
    """
    source = _Source(data)
    started = time.monotonic()
    try:
        result = _apply(store, source, central_public_key, now_ms, limits)
    except ReleaseRefusedError as exc:
        logger.warning("catalog_release_refused reason=%s error=%s", exc.reason, exc)
        raise
    finally:
        source.close()
    logger.info(
        "catalog_release_applied kind=%s version=%d accounts=%d records=%d bytes=%d seconds=%.2f",
        result.kind,
        result.version,
        result.accounts,
        result.records,
        result.release_bytes,
        time.monotonic() - started,
    )
    return result


def _apply(
    store: CatalogStore,
    source: _Source,
    central_public_key: bytes,
    now_ms: int,
    limits: ReleaseLimits,
) -> ApplyResult:
    verified = _read_manifest(source, central_public_key, limits)
    mf = verified.manifest
    current = store.version()
    if mf.version <= current:
        raise RollbackError(f"release version {mf.version} is not newer than {current}")
    if now_ms >= mf.expires_at_ms:
        raise ExpiredReleaseError(
            f"release {mf.version} expired at {mf.expires_at_ms} (now {now_ms})"
        )
    if verified.kind == "delta":
        if mf.base_version != current:
            raise BaseVersionMismatchError(
                f"delta is based on version {mf.base_version}, the store holds {current}"
            )
        _check_header_keeps_references(store.header(), verified.header)
    checker = wire.RecordChecker(verified.header)
    chunks = _Chunks(source, mf)
    bound = limits.record_bytes_max
    with store.begin_apply(verified.kind, expected_version=current) as txn:
        if verified.kind == "snapshot":
            for rows, cards in _snapshot_rows(chunks, checker, bound):
                txn.add_snapshot_rows(rows, cards)
        else:
            for index, data_bytes, raw_bytes, records in chunks:
                raw = inflate_chunk(data_bytes, raw_bytes, index)
                lines = split_lines(raw, records, index, bound)
                _apply_delta_lines(txn, checker, lines, index)
        chunks.check_end()
        txn.finish(
            ReleaseState(
                version=mf.version,
                published_at_ms=mf.published_at_ms,
                expires_at_ms=mf.expires_at_ms,
                accounts=mf.accounts,
                header=verified.header_bytes,
                release_sha256=verified.release_sha256,
            ),
            applied_at_ms=time.time_ns() // 1_000_000,
        )
    return ApplyResult(
        kind=verified.kind,
        version=mf.version,
        base_version=mf.base_version,
        accounts=mf.accounts,
        records=mf.records,
        release_bytes=source.consumed,
        release_sha256=verified.release_sha256,
    )


def _apply_delta_lines(
    txn: ApplyTransaction, checker: wire.RecordChecker, lines: list[bytes], index: int
) -> None:
    for n, line in enumerate(lines):
        try:
            rec = checker.check_delta(line)
            if rec[0] == "put":
                account = rec[1]
                txn.put(
                    account[0],
                    wire.encode_line(account),
                    [bytes.fromhex(h) for h in account[5]],
                )
            else:
                txn.delete(rec[1])
        except MalformedReleaseError as exc:
            raise MalformedReleaseError(f"chunk {index} line {n + 1}: {exc}") from None
