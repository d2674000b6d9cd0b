"""Synthetic terminal journals for tests, benchmarks and the demo.

Builds realistic chains of journal entries (a payment-intent and its
payment-result per payment, now and then a meter reading) linked with the
journal's own :func:`central_sync.journal.entry_hash`, without a journal file.
Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from central_sync.journal import (
    GENESIS_HASH,
    KIND_METER_READING,
    KIND_PAYMENT_INTENT,
    KIND_PAYMENT_RESULT,
    Entry,
    EntryState,
    entry_hash,
)

PROVIDERS = (
    ("HW", "Vodokanal"),
    ("CW", "Vodokanal"),
    ("HEAT", "Teploset"),
    ("EL", "Energosbyt"),
    ("MGMT", "UK Dom-Service"),
    ("GAS", "Gazprom Mezhregiongaz"),
)
CARD_BRANDS = ("MIR", "VISA", "MASTERCARD")
START_TS_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def payment_bodies(
    rng: random.Random, receipt_no: int, *, gateway: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One payment's intent and result bodies (money in kopecks)."""
    payment_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    services: list[dict[str, Any]] = []
    for code, provider in rng.sample(PROVIDERS, rng.randint(1, 3)):
        services.append(
            {"code": code, "provider": provider, "amount_minor": rng.randint(1, 900_000)}
        )
    amount = sum(s["amount_minor"] for s in services)
    intent: dict[str, Any] = {
        "payment_id": payment_id,
        "amount_minor": amount,
        "currency": "RUB",
        "account": str(rng.randint(10**9, 10**10 - 1)),
        "channel": "gateway" if gateway else "kiosk",
        "services": services,
        "surcharge_minor": 0,
    }
    if gateway:
        intent["agent"] = "sber-atm"
        intent["txn_id"] = str(rng.randint(10**11, 10**12 - 1))
    result: dict[str, Any] = {
        "payment_id": payment_id,
        "outcome": "approved",
        "auth_code": f"{rng.randint(0, 999_999):06d}",
        "rrn": f"{rng.randint(0, 10**12 - 1):012d}",
        "receipt_no": str(receipt_no),
        "masked_pan": f"220220******{rng.randint(0, 9999):04d}",
        "card_brand": rng.choice(CARD_BRANDS),
        "offline": False,
    }
    return intent, result


def chain(
    bodies: Iterator[tuple[str, Mapping[str, Any]]],
    *,
    start_seq: int = 1,
    prev_hash: bytes = GENESIS_HASH,
    ts_ms: int = START_TS_MS,
    step_ms: int = 1500,
) -> list[Entry]:
    """Link (kind, body) pairs into journal entries starting at ``start_seq``."""
    out: list[Entry] = []
    seq = start_seq
    for kind, body in bodies:
        digest = entry_hash(prev_hash, seq=seq, kind=kind, ts_ms=ts_ms, body=body)
        out.append(
            Entry(
                seq=seq,
                kind=kind,
                ts_ms=ts_ms,
                body=dict(body),
                prev_hash=prev_hash,
                hash=digest,
                state=EntryState.PENDING,
            )
        )
        prev_hash = digest
        seq += 1
        ts_ms += step_ms
    return out


def payment_stream(
    rng: random.Random, payments: int, *, gateway_share: float = 0.0, meter_every: int = 0
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(kind, body) pairs for ``payments`` payments, with a meter reading every N payments."""
    for n in range(payments):
        intent, result = payment_bodies(rng, n + 1, gateway=rng.random() < gateway_share)
        yield KIND_PAYMENT_INTENT, intent
        yield KIND_PAYMENT_RESULT, result
        if meter_every and (n + 1) % meter_every == 0:
            yield (
                KIND_METER_READING,
                {
                    "account": intent["account"],
                    "meter_id": f"M{rng.randint(10**6, 10**7 - 1)}",
                    "value": rng.randint(0, 10**7),
                    "reading_ts_ms": START_TS_MS + n * 1000,
                },
            )


def synthetic_entries(
    seed: int,
    payments: int,
    *,
    start_seq: int = 1,
    prev_hash: bytes = GENESIS_HASH,
    gateway_share: float = 0.0,
    meter_every: int = 0,
) -> list[Entry]:
    """A chain of ``payments`` payments (two entries each) from ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - synthetic test data, not secrets
    return chain(
        payment_stream(rng, payments, gateway_share=gateway_share, meter_every=meter_every),
        start_seq=start_seq,
        prev_hash=prev_hash,
    )
