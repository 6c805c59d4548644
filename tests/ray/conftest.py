"""Fixtures for the Ray integration tests: one Ray instance per module, one Runner per test.

Every test gets its own namespace (so its own detached Runner actor) and its
own DuckDB file under ``tmp_path``; the Runner is killed at teardown, which
takes its Store actor and Worker actors with it (they are owned by it).
Tests never sleep to wait for state: they poll with :func:`eventually`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray
from ray_support import kill_runner, start_ray

from runner.client import Client, connect
from runner.runner import RunnerConfig


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    if ray.is_initialized():
        ray.shutdown()
    start_ray()
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def make_client(ray_instance: None, tmp_path: Path) -> Iterator[Callable[..., Client]]:
    """``make_client(config=None, max_workers=None)``: a Client on a fresh namespace and DuckDB file."""
    clients: list[Client] = []

    def make(config: RunnerConfig | None = None, max_workers: int | None = None) -> Client:
        namespace = f"t-{uuid.uuid4().hex[:12]}"
        store = "duckdb:///" + str(tmp_path / f"{namespace}.duckdb")
        client = connect(store=store, namespace=namespace, config=config, max_workers=max_workers)
        clients.append(client)
        return client

    yield make
    for client in clients:
        kill_runner(client)


@pytest.fixture
def client(make_client: Callable[..., Client]) -> Client:
    return make_client()
