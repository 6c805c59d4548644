"""Fixtures for the Ray integration tests: one Ray instance per module, one Runner per test.

Every test gets its own namespace (so its own detached Runner actor) and its
own DuckDB file under ``tmp_path``; the Runner is killed at teardown, which
takes its Store actor and Worker actors with it (they are owned by it).
Tests never sleep to wait for state: they poll with :func:`eventually`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray
from ray_support import kill_runner, start_ray

from runner import faults
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


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A module's Ray instance started with fault points armable from ``fault_dir``
    (:mod:`runner.faults`): every Ray process inherits the directory through the environment."""
    directory = tmp_path_factory.mktemp("faults")
    if ray.is_initialized():
        ray.shutdown()
    before = os.environ.get(faults.ENV_VAR)
    os.environ[faults.ENV_VAR] = str(directory)
    try:
        start_ray()
        yield directory
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop(faults.ENV_VAR, None)
        else:
            os.environ[faults.ENV_VAR] = before


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
