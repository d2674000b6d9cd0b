"""Fixtures for the central ledger tests: one storage per backend (SQLite, PostgreSQL).

PostgreSQL comes from ``LOBBYPAY_TEST_PG_DSN`` (default: the local server). Each
test gets its own schema, created and dropped around it, so parallel runs never
collide. With ``CI=true`` an unreachable server fails the test instead of
skipping it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from central_sync.central.sqlite import SqliteStorage
from central_sync.central.storage import Storage
from tests.central_sync.central_support import must_run_pg, pg_dsn, pg_url_with_schema

_pg_reachable: bool | None = None


async def _pg_is_reachable() -> bool:
    global _pg_reachable
    if _pg_reachable is None:
        import asyncpg

        try:
            conn = await asyncpg.connect(pg_dsn(), timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            _pg_reachable = False
        else:
            await conn.close()
            _pg_reachable = True
    return _pg_reachable


async def require_pg() -> None:
    """Skip (or, under CI=true, fail) when PostgreSQL is not reachable."""
    if not await _pg_is_reachable():
        message = f"PostgreSQL not reachable at LOBBYPAY_TEST_PG_DSN={pg_dsn()!r}"
        if must_run_pg():
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)


@pytest.fixture(params=["sqlite", "postgres"])
async def ledger_storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A migrated, empty ledger storage, once per backend."""
    # Imported here, so the other tests in this directory never need asyncpg.
    from central_sync.central.postgres import PostgresStorage

    storage: Storage
    if request.param == "sqlite":
        storage = SqliteStorage(tmp_path / "central.db")
    else:
        await require_pg()
        storage = PostgresStorage(pg_url_with_schema(), pool_size_max=4)
    await storage.open()
    try:
        await storage.migrate()
        yield storage
    finally:
        if isinstance(storage, PostgresStorage):
            await storage.drop_schema()
        await storage.close()
