"""Fixtures for the gateway tests: a data directory with a real catalog and agents file,
and a factory that starts the app from ``create_app`` behind aiohttp's test client."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from central_sync.journal import Journal
from firmware_config.settings import Settings
from gateway.app import create_app
from tests.gateway.support import Gateway, Release, agents_toml, build_release, install_catalog

MakeGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture(scope="session")
def release() -> Release:
    return build_release(time.time_ns() // 1_000_000 - 60_000)


@pytest.fixture(scope="session")
def agents_text() -> str:
    return agents_toml()


@pytest.fixture
def data_dir(tmp_path: Path, release: Release, agents_text: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    install_catalog(data / "catalog.db", release)
    agents = tmp_path / "agents.toml"
    agents.write_text(agents_text)
    os.chmod(agents, 0o600)
    return data


def make_settings(
    data_dir: Path, *, journal: dict[str, Any] | None = None, **gateway: Any
) -> Settings:
    return Settings.model_validate(
        {
            "terminal": {"data_dir": str(data_dir), "role": "gateway"},
            "gateway": {"agents_path": str(data_dir.parent / "agents.toml"), **gateway},
            "journal": journal or {},
        }
    )


@pytest.fixture
def make_gateway(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], data_dir: Path
) -> MakeGateway:
    async def make(
        *,
        clock_ms: Callable[[], int] | None = None,
        open_journal: Callable[[Settings], Awaitable[Journal]] | None = None,
        journal: dict[str, Any] | None = None,
        **gateway: Any,
    ) -> Gateway:
        settings = make_settings(data_dir, journal=journal, **gateway)
        clock = clock_ms or (lambda: time.time_ns() // 1_000_000)
        app = create_app(settings, open_journal=open_journal, clock_ms=clock)
        client = await aiohttp_client(app)
        return Gateway(client=client, settings=settings, clock_ms=clock, data_dir=data_dir)

    return make
