"""How the console runs its queries on the ledger's storage (SQLite or PostgreSQL).

The console's tables live in the ledger's database (migration ``0002_console``
in ``central/sql.py``); its queries are operations on a :class:`SqlConnection`,
written once for both backends, like the ledger's own. Statements use ``?``
placeholders and integer money; ``CAST(... AS BIGINT)`` keeps PostgreSQL's sums
integers.
"""

from __future__ import annotations

from typing import TypeVar

from central_sync.central.sql import Operation, SqlStorage
from central_sync.central.storage import Storage

T = TypeVar("T")


def _sql(storage: Storage) -> SqlStorage:
    # Both backends are SqlStorage; the console needs their shared SQL layer.
    assert isinstance(storage, SqlStorage), type(storage)
    return storage


async def read(storage: Storage, operation: Operation[T]) -> T:
    """Run a read-only ``operation`` on the ledger's storage."""
    return await _sql(storage)._read(operation)


async def write(storage: Storage, operation: Operation[T]) -> T:
    """Run ``operation`` in one write transaction (all of it commits, or none)."""
    return await _sql(storage)._write(operation)
