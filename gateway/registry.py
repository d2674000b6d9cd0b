"""The daily payment registry of one agent, as CSV and JSON (docs/gateway.md, "Registry").

A bank reconciles what its ATMs took against what the gateway accepted, per
calendar day in ``gateway.registry_timezone``. One row per accepted payment in
journal order; amounts both as kopecks and as a decimal string, never as a
float. The JSON form adds the count and the total.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from typing import Any, Final

from gateway.index import PaymentRecord
from gateway.money import format_minor

__all__ = ["CSV_COLUMNS", "payment_json", "registry_csv", "registry_json"]

CSV_COLUMNS: Final = (
    "registry_date",
    "agent",
    "txn_id",
    "txn_date",
    "payment_id",
    "prv_txn",
    "account",
    "amount",
    "amount_minor",
    "currency",
    "accepted_at",
    "protocol",
)


def accepted_at(ts_ms: int) -> str:
    """RFC 3339 UTC time with milliseconds."""
    moment = dt.datetime.fromtimestamp(ts_ms // 1000, dt.UTC).replace(
        microsecond=(ts_ms % 1000) * 1000
    )
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payment_json(record: PaymentRecord) -> dict[str, Any]:
    """A payment as the JSON API shows it; a pure function of the record, so a
    repeated request gets byte-for-byte the same answer."""
    return {
        "payment_id": record.payment_id,
        "prv_txn": record.seq,
        "agent": record.agent,
        "txn_id": record.txn_id,
        "txn_date": record.txn_date,
        "account": record.account,
        "amount_minor": record.amount_minor,
        "currency": record.currency,
        "protocol": record.protocol,
        "status": "accepted",
        "accepted_at": accepted_at(record.ts_ms),
        "registry_date": record.day,
    }


def registry_json(
    agent: str, day: str, timezone: str, records: Sequence[PaymentRecord]
) -> dict[str, Any]:
    totals: dict[str, int] = {}
    for r in records:
        totals[r.currency] = totals.get(r.currency, 0) + r.amount_minor
    return {
        "agent": agent,
        "date": day,
        "timezone": timezone,
        "count": len(records),
        "total_minor": totals,
        "payments": [payment_json(r) for r in records],
    }


def registry_json_bytes(
    agent: str, day: str, timezone: str, records: Sequence[PaymentRecord]
) -> bytes:
    return json.dumps(
        registry_json(agent, day, timezone, records), ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def registry_csv(records: Sequence[PaymentRecord]) -> str:
    """CSV (RFC 4180, CRLF line ends) with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            (
                r.day,
                r.agent,
                r.txn_id,
                r.txn_date or "",
                r.payment_id,
                r.seq,
                r.account,
                format_minor(r.amount_minor),
                r.amount_minor,
                r.currency,
                accepted_at(r.ts_ms),
                r.protocol,
            )
        )
    return out.getvalue()
