"""Fixtures for the CLI tests: one Ray head per module, a DuckDB file and a namespace (see cli_support)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli, RayHead


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    head = RayHead()
    try:
        yield head
    finally:
        head.cleanup()


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("store") / "runs.duckdb"
    return "duckdb:///" + str(path.resolve())  # duckdb:////abs/path.duckdb


@pytest.fixture(scope="module")
def cli(ray_head: RayHead, store_url: str) -> Cli:
    return Cli(store_url, f"cli-{uuid.uuid4().hex[:12]}", ray_head.env)


@pytest.fixture
def gates(tmp_path: Path) -> dict[str, str]:
    """Input of flows.gated: the files its steps mark when they start and wait for before they end."""
    return {name: str(tmp_path / name) for name in ("started1", "gate1", "started2", "gate2")}
