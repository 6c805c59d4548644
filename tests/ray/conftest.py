"""Fixtures for the Ray integration tests: one Ray instance per module, one Runner per test.

Every test gets its own namespace (so its own detached Runner actor) and its
own DuckDB file under ``tmp_path``; the Runner is killed at teardown, which
takes its Store actor and Worker actors with it (they are owned by it).
Tests never sleep to wait for state: they poll with :func:`eventually`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import ray

from runner.client import Client, connect
from runner.events import FactProduced, StepStarted, StoredEvent
from runner.runner import RunnerConfig
from runner.testing import polling

T = TypeVar("T")


def eventually(fn: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """``runner.testing.polling.eventually`` with this suite's default deadline."""
    return polling.eventually(fn, timeout, interval, what)


def start_ray(num_cpus: int = 4) -> None:
    """A fresh local Ray instance for this process (never joins a cluster someone else started)."""
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
        namespace="ray-runner-tests",
    )


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    if ray.is_initialized():
        ray.shutdown()
    start_ray()
    try:
        yield
    finally:
        ray.shutdown()


def kill_runner(client: Client) -> None:
    with contextlib.suppress(Exception):  # already gone
        ray.kill(client.runner, no_restart=True)


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


# ------------------------------------------------------------------ helpers
def lines(path: Path | str) -> list[str]:
    """The lines a step appended to a side-effect file (empty if it has none yet)."""
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def touch(path: Path | str) -> None:
    with open(path, "w"):
        pass
    assert os.path.exists(path)


def facts(history: list[StoredEvent]) -> list[tuple[str, int | None]]:
    return [(s.event.node, s.event.item) for s in history if isinstance(s.event, FactProduced)]


def has_fact(history: list[StoredEvent], node: str) -> bool:
    return any(isinstance(s.event, FactProduced) and s.event.node == node for s in history)


def has_started(history: list[StoredEvent], node: str) -> bool:
    return any(isinstance(s.event, StepStarted) and s.event.node == node for s in history)


def assert_gapless(history: list[StoredEvent]) -> None:
    assert [s.seq for s in history] == list(range(1, len(history) + 1))
