"""The kiosk UI for ``lobbypay demo``: the demo catalog, simulated devices, how to pay.

:func:`prepare_demo_kiosk` gives a data directory what a real kiosk gets from
provisioning and the sync agent: the deployment's card-hash key and the demo
catalog (:func:`central_sync.catalog.generator.demo_catalog`) as a signed
snapshot applied by :func:`central_sync.catalog.apply_release`. The devices
are the simulators: the ZVT terminal, the ESC/POS printer, a card reader with
the demo cards (F5, F6) and a QR scanner with a demo bill (F7).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from firmware_config.settings import Settings

__all__ = ["DEMO_PIN", "instructions", "prepare_demo_kiosk", "run_demo_kiosk"]

DEMO_PIN = "2468"
"""The demo's technician PIN (tap the staff line at the bottom for service mode)."""
CATALOG_VALID_S = 30 * 86_400


def prepare_demo_kiosk(root: Path, *, lang: str = "ru") -> Settings:
    """Write the card-hash key and the signed demo catalog under ``root``; return settings."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from central_sync.catalog import CatalogStore, apply_release, build_snapshot
    from central_sync.catalog.generator import DEMO_CARD_HASH_KEY, demo_catalog
    from kiosk.pin import hash_pin

    root.mkdir(parents=True, exist_ok=True)
    keys = root / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "card-hash.key").write_bytes(DEMO_CARD_HASH_KEY)
    catalog = root / "catalog.db"
    if not catalog.exists():
        # A throwaway "central" key: the demo's catalog is signed and verified
        # exactly like a real release, by a key that exists only for this run.
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        now_ms = int(time.time() * 1000)
        release = build_snapshot(
            demo_catalog(),
            1,
            key,
            published_at_ms=now_ms - 60_000,
            expires_at_ms=now_ms + CATALOG_VALID_S * 1000,
        )
        with CatalogStore.open(catalog) as store:
            apply_release(store, release, central_public_key=public, now_ms=now_ms)
    languages = [lang, "en" if lang == "ru" else "ru"]
    return Settings.model_validate(
        {
            "terminal": {"data_dir": str(root), "label": "lobbypay demo"},
            "deployment": {"id": "demo"},
            "kiosk": {
                "languages": languages,
                "service_pin_hash": hash_pin(DEMO_PIN, iterations=20_000),
                "receipt_header": ["lobbypay demo", "ООО «Расчётный центр»"],
                "idle_timeout_s": 120,
            },
        }
    )


def instructions(lang: str) -> list[str]:
    """How to pay as a resident in the demo kiosk."""
    if lang == "ru":
        return [
            "Киоск жителя (Ctrl+Q — выход):",
            "  номера лицевых счетов: 1000000008 (долги, рассрочка, счётчики),",
            "  1000000016 (переплата, домофон с комиссией), 1000000024 (всё оплачено);",
            "  F5 / F6 — приложить демо-карту жителя, F7 — отсканировать QR квитанции;",
            f"  сервисный режим: нажмите строку состояния внизу, ПИН {DEMO_PIN}.",
        ]
    return [
        "Resident kiosk (Ctrl+Q quits):",
        "  account numbers: 1000000008 (debts, instalments, meters),",
        "  1000000016 (overpaid, intercom with a fee), 1000000024 (all paid);",
        "  F5 / F6 tap a demo resident card, F7 scans a bill's QR code;",
        f"  service mode: tap the status line at the bottom, PIN {DEMO_PIN}.",
    ]


def run_demo_kiosk(
    root: Path,
    *,
    lang: str,
    say: Callable[[str], None],
    wait: Callable[[str], object] | None = input,
) -> int:
    """Prepare ``root``, print the instructions and run the kiosk until it is quit.

    ``wait`` (default :func:`input`) lets the reader see the instructions before
    the kiosk takes over the terminal.
    """
    from kiosk.app import KioskApp
    from kiosk.app_cli import log_to_file
    from kiosk.devices import DeviceChoice

    settings = prepare_demo_kiosk(root, lang=lang)
    for line in instructions(lang):
        say(line)
    if wait is not None:
        wait("Enter — открыть киоск. " if lang == "ru" else "Press Enter to open the kiosk. ")
    log_to_file(settings)
    app = KioskApp(settings, devices=DeviceChoice(card_reader="simulator", scanner="simulator"))
    app.run()
    return 0
