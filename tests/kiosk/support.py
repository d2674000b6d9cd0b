"""Shared set-up for the kiosk tests: a data directory with a real signed catalog and keys.

The catalog is :func:`central_sync.catalog.generator.demo_catalog`, published as
a signed snapshot by the real publisher and applied by the real
:func:`~central_sync.catalog.apply_release`, exactly as the sync agent does.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.catalog import CatalogStore, apply_release, build_snapshot
from central_sync.catalog.generator import DEMO_CARD_HASH_KEY, demo_catalog
from firmware_config.settings import Settings
from kiosk.pin import hash_pin

SERVICE_PIN = "2468"
# A fast hash for tests: the PIN check's cost is not what they measure.
SERVICE_PIN_HASH = hash_pin(SERVICE_PIN, iterations=1_000, salt=b"kiosk-test-salt!")
IVANOVA = "1000000008"  # debts on five services, instalments, two meters; card 04A1B2C3D4E580
PETROV = "1000000016"  # overpaid heating, intercom with a declinable fee; card 04F0E1D2C3B480
KUZNETSOVA = "1000000024"  # everything paid up
IVANOVA_CARD = "04A1B2C3D4E580"
# A fixed "now" so screens and snapshots do not depend on the day the tests run.
FROZEN_NOW = dt.datetime(2025, 6, 2, 10, 30, 0).timestamp()


def write_catalog(
    path: Path, *, published_at_ms: int | None = None, expires_in_ms: int = 30 * 86_400_000
) -> None:
    """Publish the demo catalog as a signed snapshot and apply it to a store at ``path``."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    now_ms = int(time.time() * 1000)
    published = published_at_ms if published_at_ms is not None else now_ms - 3_600_000
    release = build_snapshot(
        demo_catalog(),
        1,
        key,
        published_at_ms=published,
        expires_at_ms=now_ms + expires_in_ms,
    )
    with CatalogStore.open(path) as store:
        apply_release(store, release, central_public_key=public, now_ms=now_ms)


def make_settings(root: Path, **kiosk: Any) -> Settings:
    """Settings for a kiosk whose data directory is ``root`` (catalog and card key written)."""
    data = root / "data"
    (data / "keys").mkdir(parents=True, exist_ok=True)
    (data / "keys" / "card-hash.key").write_bytes(DEMO_CARD_HASH_KEY)
    if not (data / "catalog.db").exists():
        write_catalog(data / "catalog.db")
    kiosk_section: dict[str, Any] = {
        "service_pin_hash": SERVICE_PIN_HASH,
        "recovery_timeout_s": 10,
        "receipt_header": ["ООО «Расчётный центр»", "Барнаул"],
    }
    kiosk_section.update(kiosk)
    return Settings.model_validate(
        {
            "terminal": {"data_dir": str(data), "label": "Lobby 1"},
            "deployment": {"id": "brn", "virtual_number_length_max": 12},
            "kiosk": kiosk_section,
        }
    )
