"""Fixtures for the Ray integration tests: one Ray instance shared by the modules.

``client`` / ``make_client`` give a test its own namespace (so its own detached
Runner actor) and its own DuckDB file under ``tmp_path``; the Runner is killed
at teardown, which takes its Store actor and Worker actors with it (they are
owned by it). ``shared_client`` is one Runner for the whole session, for tests
that only touch their own runs (no kills, no special config, no counts over
the whole store): starting a Runner costs seconds, so sharing keeps the suite
short. Tests never sleep to wait for state: they poll with :func:`eventually`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray
from ray_support import kill_runner, start_ray

from runner import faults
from runner.client import Client, connect
from runner.runner import RunnerConfig


@pytest.fixture(scope="session", autouse=True)
def faults_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's fault directory (:mod:`runner.faults`): set in the environment before the
    first Ray instance starts, so every Ray process of the session inherits it; Ray is shut
    down at the end of the session."""
    directory = tmp_path_factory.mktemp("faults")
    before = os.environ.get(faults.ENV_VAR)
    os.environ[faults.ENV_VAR] = str(directory)
    try:
        yield directory
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if before is None:
            os.environ.pop(faults.ENV_VAR, None)
        else:
            os.environ[faults.ENV_VAR] = before


@pytest.fixture(scope="module")
def ray_instance(faults_root: Path) -> Iterator[None]:
    """A local Ray instance shared by the modules in turn (starting one costs seconds): started
    if none runs, e.g. because an earlier module restarted or replaced it."""
    if not ray.is_initialized():
        start_ray()
    yield


@pytest.fixture(scope="module")
def fault_dir(ray_instance: None, faults_root: Path) -> Iterator[Path]:
    """Where a module arms fault points; emptied at the module's end, which also opens any gate
    a test left shut, so the next module starts with nothing armed and nothing fired."""
    yield faults_root
    for part in ("armed", "fired"):
        shutil.rmtree(faults_root / part, ignore_errors=True)


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


class _SharedClients:
    """The session's shared Client: ``connect()`` on one namespace and store, which uses the
    namespace's Runner while it lives and starts a new one after a module restarted Ray."""

    def __init__(self, root: Path) -> None:
        namespace = f"shared-{uuid.uuid4().hex[:12]}"
        self.namespace, self.store = namespace, "duckdb:///" + str(root / f"{namespace}.duckdb")
        self.client: Client | None = None

    def get(self) -> Client:
        self.client = connect(store=self.store, namespace=self.namespace)
        return self.client

    def close(self) -> None:
        if self.client is not None and ray.is_initialized():
            kill_runner(self.client)


@pytest.fixture(scope="session")
def _shared_clients(faults_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_SharedClients]:
    clients = _SharedClients(tmp_path_factory.mktemp("shared"))
    yield clients
    clients.close()


@pytest.fixture
def shared_client(ray_instance: None, _shared_clients: _SharedClients) -> Client:
    """One Client (Runner, Store actor, workers) for every test of the session that asks for it:
    for tests that touch only their own runs, kill nothing, arm no fault, read no totals
    (``stats()``, ``list_runs()`` over the whole store) and need the default configuration."""
    return _shared_clients.get()
