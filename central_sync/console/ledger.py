"""What the console reads from the ledger: batches, daily volume and payouts.

Each query is bounded (a page, a span of days, ``export_rows_max`` payments) and
runs on the ledger's indexes (``payments_ts``, the batches' primary key and
``batches_terminal``). Only approved payments that were not reversed count as
money moved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from central_sync.central.sql import SqlConnection
from central_sync.central.storage import Storage
from central_sync.console import db
from central_sync.console.days import DAY_MS
from central_sync.console.errors import ConsoleInputError

PayoutBy = Literal["provider", "terminal", "agent"]
PAYOUT_BY: tuple[PayoutBy, ...] = ("provider", "terminal", "agent")


def parse_payout_by(value: object) -> PayoutBy:
    """``provider``, ``terminal`` or ``agent``; ConsoleInputError for anything else."""
    for by in PAYOUT_BY:
        if value == by:
            return by
    raise ConsoleInputError(f"payouts are per {', '.join(PAYOUT_BY)}")


_MOVED = "p.outcome = 'approved' AND p.reversed_seq IS NULL"

# An empty terminal id selects every terminal's batches.
_BATCHES_WHERE = (
    " FROM batches b JOIN terminals t ON t.key = b.terminal_key WHERE (? = '' OR t.terminal_id = ?)"
)
_COUNT_BATCHES = "SELECT COUNT(*)" + _BATCHES_WHERE
_SELECT_BATCHES = (
    "SELECT b.id, t.terminal_id, b.from_seq, b.to_seq, b.applied, b.outcome, b.wire_bytes,"
    " b.received_ms" + _BATCHES_WHERE + " ORDER BY b.id DESC LIMIT ? OFFSET ?"
)
_DAILY_VOLUME = (
    "SELECT (p.ts_ms + ?) / ? AS d, COUNT(*), CAST(SUM(p.amount_minor) AS BIGINT)"  # noqa: S608
    f" FROM payments p WHERE p.ts_ms >= ? AND p.ts_ms < ? AND {_MOVED} GROUP BY d ORDER BY d"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRow:
    batch_id: int
    terminal_id: str
    from_seq: int
    to_seq: int
    applied: int
    outcome: str
    wire_bytes: int
    received_ms: int


async def batches(
    storage: Storage, *, terminal_id: str | None, limit: int, offset: int
) -> tuple[int, list[BatchRow]]:
    """(how many batches match, one page of them, newest first)."""

    async def op(conn: SqlConnection) -> tuple[int, list[BatchRow]]:
        total = await conn.fetchval(_COUNT_BATCHES, terminal_id or "", terminal_id or "")
        rows = await conn.fetch(
            _SELECT_BATCHES, terminal_id or "", terminal_id or "", limit, offset
        )
        return int(total), [
            BatchRow(
                batch_id=r[0],
                terminal_id=r[1],
                from_seq=r[2],
                to_seq=r[3],
                applied=r[4],
                outcome=r[5],
                wire_bytes=r[6],
                received_ms=r[7],
            )
            for r in rows
        ]

    return await db.read(storage, op)


@dataclass(frozen=True, slots=True, kw_only=True)
class DayVolume:
    day_index: int
    """Days since the epoch at the console's offset."""
    payments: int
    amount_minor: int


async def daily_volume(
    storage: Storage, *, from_ms: int, to_ms: int, offset_min: int
) -> list[DayVolume]:
    """Approved, not reversed payments per day in [from_ms, to_ms) (days with none left out)."""
    offset_ms = offset_min * 60_000

    async def op(conn: SqlConnection) -> list[DayVolume]:
        rows = await conn.fetch(
            _DAILY_VOLUME,
            offset_ms,
            DAY_MS,
            from_ms,
            to_ms,
        )
        return [
            DayVolume(day_index=int(r[0]), payments=int(r[1]), amount_minor=int(r[2])) for r in rows
        ]

    return await db.read(storage, op)


async def newest_payment_ms(storage: Storage) -> int | None:
    async def op(conn: SqlConnection) -> int | None:
        value = await conn.fetchval("SELECT MAX(ts_ms) FROM payments")
        return None if value is None else int(value)

    return await db.read(storage, op)


@dataclass(frozen=True, slots=True, kw_only=True)
class PayoutLine:
    """What is owed to (or by) one recipient in one currency."""

    key: str
    currency: str
    payments: int
    amount_minor: int


async def payouts(
    storage: Storage, by: PayoutBy, *, from_ms: int, to_ms: int, rows_max: int
) -> list[PayoutLine]:
    """Payouts in [from_ms, to_ms) per service provider, terminal or agent, by key.

    Per provider, each payment's services (from its intent entry) are split out;
    a surcharge stays with the operator and is in no provider's payout. Per
    terminal, a payment's amount is counted for the terminal that took it; per
    agent, only payments taken by an agent (the gateway's) are counted.
    """
    window = f" WHERE p.ts_ms >= ? AND p.ts_ms < ? AND {_MOVED}"
    if by == "provider":
        return await _provider_payouts(storage, window, from_ms, to_ms, rows_max)
    key = "t.terminal_id" if by == "terminal" else "p.agent"
    extra = " AND p.agent IS NOT NULL" if by == "agent" else ""
    sql = (
        f"SELECT {key}, p.currency, COUNT(*), CAST(SUM(p.amount_minor) AS BIGINT)"  # noqa: S608
        " FROM payments p JOIN terminals t ON t.key = p.terminal_key"
        + window
        + extra
        + f" GROUP BY {key}, p.currency ORDER BY {key}, p.currency"
    )

    async def op(conn: SqlConnection) -> list[PayoutLine]:
        rows = await conn.fetch(sql, from_ms, to_ms)
        return [
            PayoutLine(key=r[0], currency=r[1], payments=int(r[2]), amount_minor=int(r[3]))
            for r in rows
        ]

    return await db.read(storage, op)


async def _provider_payouts(
    storage: Storage, window: str, from_ms: int, to_ms: int, rows_max: int
) -> list[PayoutLine]:
    sql = (
        "SELECT p.currency, e.data FROM payments p JOIN entries e"  # noqa: S608
        " ON e.terminal_key = p.terminal_key AND e.seq = p.seq" + window + " LIMIT ?"
    )

    async def op(conn: SqlConnection) -> Sequence[Sequence[Any]]:
        return await conn.fetch(sql, from_ms, to_ms, rows_max + 1)

    rows = await db.read(storage, op)
    if len(rows) > rows_max:
        raise ConsoleInputError(f"more than {rows_max} payments: choose fewer days")
    totals: dict[tuple[str, str], list[int]] = {}
    for currency, data in rows:
        services = json.loads(bytes(data))["body"].get("services") or []
        seen: set[str] = set()
        for service in services:
            provider = str(service.get("provider") or service.get("code") or "?")
            amount = service.get("amount_minor")
            if type(amount) is not int:
                continue  # the protocol checked amounts; an entry without one moves nothing
            line = totals.setdefault((provider, currency), [0, 0])
            line[1] += amount
            if provider not in seen:
                line[0] += 1
                seen.add(provider)
    return [
        PayoutLine(key=k, currency=c, payments=v[0], amount_minor=v[1])
        for (k, c), v in sorted(totals.items())
    ]
