"""Helpers shared by the central ledger tests (keys, enrollment, batches)."""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import protocol
from central_sync.central.storage import Storage, TerminalRecord
from central_sync.journal import Entry
from firmware_config.identity import terminal_id_from_public_key

NOW_MS = 1_750_000_000_000
PG_DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
LOBBYPAY = str(Path(sys.executable).parent / "lobbypay")


def pg_dsn() -> str:
    return os.environ.get("LOBBYPAY_TEST_PG_DSN", PG_DEFAULT_DSN)


def pg_url_with_schema(schema: str | None = None) -> str:
    schema = schema or f"lp_test_{uuid.uuid4().hex[:12]}"
    dsn = pg_dsn()
    return f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"


def must_run_pg() -> bool:
    return os.environ.get("CI", "").lower() == "true"


class Key:
    """An Ed25519 signer with its public key and derived terminal id."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes_raw()
        self.terminal_id = terminal_id_from_public_key(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def enroll(
    storage: Storage, key: Key, *, location: str = "msk-lenina-5", label: str = "kiosk"
) -> TerminalRecord:
    code = f"CODE-{uuid.uuid4().hex[:10]}"
    await storage.add_registration_code(
        code_hash=code_hash(code),
        location=location,
        label=None,
        created_ms=NOW_MS,
        expires_ms=NOW_MS + 3_600_000,
        actor="test",
    )
    return await storage.enroll(
        terminal_id=key.terminal_id,
        public_key=key.public,
        code_hash=code_hash(code),
        location=location,
        label=label,
        now_ms=NOW_MS,
    )


def batch(entries: Sequence[Entry], key: Key) -> bytes:
    return protocol.build_batch(
        entries, terminal_id=key.terminal_id, signer=key, entries_max=100_000, bytes_max=64 << 20
    ).data


def batches(entries: Sequence[Entry], key: Key, size: int) -> list[bytes]:
    return [batch(entries[i : i + size], key) for i in range(0, len(entries), size)]


def start_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start `lobbypay central serve --port 0` and return it with its base URL.

    A thread keeps draining the server's stderr (its log) so it never blocks.
    """
    process = subprocess.Popen(
        [LOBBYPAY, "central", "serve", "--data-dir", str(data_dir), "--port", "0", *extra],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    stderr = process.stderr
    found: queue.Queue[str] = queue.Queue()
    lines: list[str] = []

    def drain() -> None:
        for line in stderr:
            lines.append(line)
            if "central listening on" in line:
                found.put(line.strip().rsplit(" ", 1)[-1])
        found.put("")

    threading.Thread(target=drain, daemon=True).start()
    try:
        url = found.get(timeout=30)
    except queue.Empty:
        url = ""
    if not url:
        process.kill()
        raise AssertionError("server did not start: " + "".join(lines[-20:]))
    return process, url


def stop_server(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
