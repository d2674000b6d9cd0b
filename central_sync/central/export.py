"""Exports for the billing center: payments and meter readings, as CSV or JSON.

Money stays in integer minor units (``amount_minor``, kopecks) with its
currency; the billing center's importer converts if it must. Only the masked
PAN the terminal reported is exported, never more (the ledger holds no more).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

PAYMENT_COLUMNS = (
    "payment_id",
    "terminal_id",
    "seq",
    "ts_ms",
    "amount_minor",
    "currency",
    "account",
    "channel",
    "agent",
    "txn_id",
    "surcharge_minor",
    "services",
    "outcome",
    "auth_code",
    "rrn",
    "masked_pan",
    "card_brand",
    "offline",
    "reversed",
    "reversal_reason",
)
METER_COLUMNS = ("terminal_id", "seq", "ts_ms", "account", "meter_id", "value", "reading_ts_ms")

ExportKind = Literal["payments", "meter-readings"]
ExportFormat = Literal["csv", "json"]


def columns_for(kind: ExportKind) -> tuple[str, ...]:
    return PAYMENT_COLUMNS if kind == "payments" else METER_COLUMNS


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


def render(
    rows: Sequence[Mapping[str, Any]],
    *,
    kind: ExportKind,
    fmt: ExportFormat,
    from_ms: int,
    to_ms: int,
) -> str:
    """The export document for ``rows`` (in the order given)."""
    columns = columns_for(kind)
    if fmt == "json":
        document = {
            "kind": kind,
            "from_ms": from_ms,
            "to_ms": to_ms,
            "count": len(rows),
            "rows": [{c: row.get(c) for c in columns} for row in rows],
        }
        return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=False) + "\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()
