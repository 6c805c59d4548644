"""Losing a node fails no run: its tasks are recorded as lost (StepLost) and run again elsewhere.

A two-node cluster on this machine (``ray.cluster_utils.Cluster``): the head holds the Runner,
the Store actor and the one Worker actor; a second node offers a custom resource ("side") the
gated step of every run needs. With all eight runs' gated tasks running on it, the node is
removed without warning and a replacement joins. Every run must complete with the right result,
each step's result recorded once, the loss in the history, and none of the step's own retries
spent. This module manages its own Ray instance.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster
from ray_support import assert_gapless, eventually, lines, touch

import runner
from runner.client import connect
from runner.events import FactProduced, StepFailed, StepLost, StepStarted
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
]  # a second Ray node: make chaos (bench/chaos.py measures node loss too)

RUNS = 8
SIDE = {"side": RUNS}  # room for every run's gated task at once
LOST_TYPES = {
    "ray.exceptions.NodeDiedError",
    "ray.exceptions.WorkerCrashedError",
    "ray.exceptions.LocalRayletDiedError",
    "ray.exceptions.ObjectLostError",
    "ray.exceptions.OwnerDiedError",
}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """A head node with one CPU; the health checks lowered so a lost node is noticed in about a second."""
    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("RAY_health_check_initial_delay_ms", "0")
    monkeypatch.setenv("RAY_health_check_period_ms", "300")
    monkeypatch.setenv("RAY_health_check_timeout_ms", "300")
    monkeypatch.setenv("RAY_health_check_failure_threshold", "3")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _workflow(log: str, gate: str) -> runner.Workflow:
    wf = runner.Workflow("node_loss")

    @wf.step(inline=True)
    def prepare(x: int) -> int:
        return x + 1

    @wf.step(after=prepare, num_cpus=0, resources={"side": 1}, retries=2)
    def remote(x: int) -> int:  # runs on the side node only
        _mark(log, str(x))
        _wait_for_file(gate)
        return x * 10

    @wf.step(after=remote, inline=True)
    def finish(x: int) -> int:
        return x + 3

    return wf


def _alive_with(resource: str) -> bool:
    return any(node["Alive"] and resource in node["Resources"] for node in ray.nodes())


def test_runs_survive_the_loss_of_the_node_their_tasks_run_on(cluster: Cluster, tmp_path: Path) -> None:
    log, gate = str(tmp_path / "started.log"), str(tmp_path / "gate")
    client = connect(
        store="duckdb:///" + str(tmp_path / "s.duckdb"),
        namespace=f"node-loss-{uuid.uuid4().hex[:8]}",
        config=RunnerConfig(max_workers=1),
    )
    # the only worker starts now, on the head: it is not lost with the side node
    warm = runner.Workflow("warm")
    warm.step(lambda x: x, name="echo", inline=True)
    assert client.submit(warm, 1).result(timeout=60) == 1

    side = cluster.add_node(num_cpus=1, resources=SIDE)
    eventually(lambda: _alive_with("side"), what="the side node to join")
    handles = [client.submit(_workflow(log, gate), i) for i in range(RUNS)]
    eventually(lambda: len(lines(log)) == RUNS, timeout=60, what="every gated task to run on the side node")

    cluster.remove_node(side, allow_graceful=False)
    eventually(lambda: not _alive_with("side"), what="the side node to be seen gone")
    cluster.add_node(num_cpus=1, resources=SIDE)
    touch(gate)

    assert [h.result(timeout=60) for h in handles] == [(i + 1) * 10 + 3 for i in range(RUNS)]
    for handle in handles:
        history = handle.history()
        assert_gapless(history)
        events = [s.event for s in history]
        facts = [(e.node, e.item) for e in events if isinstance(e, FactProduced)]
        assert sorted(facts) == [("finish", None), ("prepare", None), ("remote", None)]  # each recorded once
        lost = [e for e in events if isinstance(e, StepLost)]
        assert lost and all(e.node == "remote" and e.attempt == 1 for e in lost)
        assert {e.error.type for e in lost} <= LOST_TYPES
        assert not [e for e in events if isinstance(e, StepFailed)]  # no retry of the step's own spent
        assert {e.attempt for e in events if isinstance(e, StepStarted)} == {1}
        remote = {s.name: s for s in handle.steps()}["remote"]
        assert (remote.status, remote.attempts, remote.lost) == ("done", 1, len(lost))
    assert all(h.status() is runner.RunStatus.COMPLETED for h in handles)
    assert os.path.exists(gate)
