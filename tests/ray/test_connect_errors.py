"""connect() with a store that cannot be opened, or with settings other than the running Runner's.

A failed start raises the adapter's own error and leaves nothing registered, so the next
connect() in the same namespace (the same process) starts afresh; a differing config is
refused with the fields that differ, never silently ignored.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

import runner
from runner.client import _runner_actor, absolute_store_url, connect
from runner.errors import ConfigMismatch, StoreCorrupt, StoreError, StorePathInvalid
from runner.runner import RUNNER_NAME, RunnerConfig
from runner.worker import WorkerConfig

pytestmark = pytest.mark.ray


def _namespace() -> str:
    return f"connect-{uuid.uuid4().hex[:12]}"


def _registered(namespace: str) -> bool:
    try:
        ray.get_actor(RUNNER_NAME, namespace=namespace)
    except ValueError:
        return False
    return True


def _add_one() -> runner.Workflow:
    wf = runner.Workflow("connect-check")

    @wf.step()
    def add(x: int) -> int:
        return x + 1

    return wf


@pytest.fixture
def namespaces(ray_instance: None) -> Iterator[list[str]]:
    used: list[str] = []
    yield used
    for namespace in used:
        with contextlib.suppress(ValueError):  # removed already
            ray.kill(ray.get_actor(RUNNER_NAME, namespace=namespace), no_restart=True)


def _bad_paths(tmp_path: Path) -> list[tuple[Path, type[StoreError]]]:
    text = tmp_path / "notduck.duckdb"
    text.write_text("these are my notes, not a database\n" * 50)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where a directory would have to be")
    return [(text, StoreCorrupt), (folder, StorePathInvalid), (blocker / "sub" / "s.duckdb", StorePathInvalid)]


@pytest.mark.parametrize(
    "which",
    [
        "not a database",
        # each path is one more Runner start that fails and one that succeeds: make chaos
        pytest.param("a folder", marks=pytest.mark.slow),
        pytest.param("under a file", marks=pytest.mark.slow),
    ],
)
def test_a_store_that_cannot_be_opened_raises_its_own_error_and_leaves_nothing(
    namespaces: list[str], tmp_path: Path, which: str
) -> None:
    good = "duckdb:///" + str(tmp_path / "good.duckdb")
    paths = dict(zip(["not a database", "a folder", "under a file"], _bad_paths(tmp_path), strict=True))
    bad, error = paths[which]
    namespace = _namespace()
    namespaces.append(namespace)
    with pytest.raises(error) as caught:
        connect(store="duckdb:///" + str(bad), namespace=namespace)
    assert type(caught.value) is error  # the adapter's error itself, no Ray wrapper
    assert str(bad) in str(caught.value)
    assert not _registered(namespace)  # no Runner (nor its Store actor) left behind

    client = connect(store=good, namespace=namespace)  # the right path, same process, same namespace
    assert client.store_path == tmp_path / "good.duckdb"
    assert client.submit(_add_one(), 1).result(timeout=60) == 2
    ray.kill(client.runner, no_restart=True)


def test_a_runner_left_behind_with_a_broken_store_is_replaced(namespaces: list[str], tmp_path: Path) -> None:
    namespace = _namespace()
    namespaces.append(namespace)
    text = tmp_path / "notduck.duckdb"
    text.write_text("not a database\n" * 50)
    # what a connect() that died before it could clean up leaves: a Runner on the broken path
    _runner_actor(namespace, absolute_store_url("duckdb:///" + str(text)), RunnerConfig())

    client = connect(store="duckdb:///" + str(tmp_path / "good.duckdb"), namespace=namespace)

    assert client.submit(_add_one(), 41).result(timeout=60) == 42


def test_connect_with_other_settings_than_the_running_runner_is_refused(namespaces: list[str], tmp_path: Path) -> None:
    namespace = _namespace()
    namespaces.append(namespace)
    store = "duckdb:///" + str(tmp_path / "s.duckdb")
    first = connect(store=store, namespace=namespace, max_workers=2)

    with pytest.raises(ConfigMismatch) as caught:
        connect(store=store, namespace=namespace, max_workers=3)
    assert caught.value.namespace == namespace
    assert caught.value.differences == {"max_workers": "running 2, asked 3"}
    assert "connect without config= and max_workers=" in str(caught.value)

    asked = RunnerConfig(max_workers=2, restart_limit=5, worker=WorkerConfig(lease_ttl=10.0))
    with pytest.raises(ConfigMismatch) as caught:
        connect(store=store, namespace=namespace, config=asked)
    assert set(caught.value.differences) == {"restart_limit", "worker.lease_ttl"}

    # no settings given: the running Runner as it is; the same settings: fine as well
    for again in (
        connect(store=store, namespace=namespace),
        connect(store=store, namespace=namespace, max_workers=2),
        connect(store=store, namespace=namespace, config=RunnerConfig(max_workers=2)),
    ):
        assert again.submit(_add_one(), 1).result(timeout=60) == 2
    assert first.stats().live_workers <= 2
