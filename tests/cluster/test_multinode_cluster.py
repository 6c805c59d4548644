"""A head and two more nodes on this machine: where the parts run, what Ray shows, a lost node.

- The Runner and the Store actor live on the head; worker actors spread over every node, and
  so do the step tasks (three runs whose one-CPU steps wait for each other need all three
  nodes' CPUs at once); a step that asks for a custom resource runs on the node offering it.
- Ray's metrics endpoints (one per node) show the runtime's counters and histograms for the
  runs: submitted and completed by workflow, step durations by step, group commits.
- Ray's state API shows the actors by name (``runner:<namespace>:store:...``,
  ``runner:<namespace>:worker-...``) and the step tasks as ``<workflow>.<step>@<run id>``.
- A node removed without warning while every run's step runs on it loses nothing: each
  step is recorded lost (StepLost), dispatched again without spending its own retries, and
  every run completes with each result recorded once.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.util.state import list_actors, list_tasks

import runner
from runner.client import Client
from runner.events import FactProduced, StepFailed, StepLost, StepStarted
from runner.testing.polling import eventually
from runner.testing.sideeffects import executions, mark, wait_for_file, wait_for_marks

from .conftest import GPU_RESOURCE, Nodes

pytestmark = pytest.mark.ray

RUNS = 3  # one per node: their first steps need a CPU each, and each node has one


def _spread(barrier: str) -> runner.Workflow:
    wf = runner.Workflow("spread")

    @wf.step(num_cpus=1)
    def where(x: int) -> str:
        mark(barrier, str(x))
        wait_for_marks(barrier, RUNS)  # all three hold a CPU at once: one on each node
        return str(ray.get_runtime_context().get_node_id())

    @wf.step(after=where, num_cpus=0, resources={GPU_RESOURCE: 1})
    def on_gpu(first: str) -> list[str]:
        return [first, str(ray.get_runtime_context().get_node_id())]

    return wf


def _actors(nodes: Nodes, namespace: str) -> dict[str, Any]:
    alive_here = [("ray_namespace", "=", namespace), ("state", "=", "ALIVE")]
    return {a.name: a for a in list_actors(address=nodes.dashboard, filters=alive_here)}


def _task_node(nodes: Nodes, name: str) -> str | None:
    tasks = list_tasks(address=nodes.dashboard, filters=[("name", "=", name)])
    return next((t.node_id for t in tasks if t.node_id), None)


SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


def _ray_metrics(nodes: Nodes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every ``ray_runner_*`` sample of the nodes' endpoints, summed over nodes and processes,
    keyed by name and the labels this project sets (workflow, step, status) and a bucket's bound."""
    sums: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for url in nodes.metrics:
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        for line in text.splitlines():
            found = SAMPLE.match(line)
            if found is None or not found.group(1).startswith("ray_runner_"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group(2)))
            ours = frozenset((k, v) for k, v in labels.items() if k in ("workflow", "step", "status", "le"))
            key = (found.group(1), ours)
            sums[key] = sums.get(key, 0.0) + float(found.group(3))
    return sums


def _metric(sums: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return sums.get((name, frozenset(labels.items())), 0.0)


def test_parts_spread_over_the_nodes_and_ray_shows_them_by_name(
    nodes: Nodes, make_client: Callable[..., Client], tmp_path: Path
) -> None:
    client = make_client(max_workers=RUNS)
    ns = client.namespace
    handles = [client.submit(_spread(str(tmp_path / "barrier")), i) for i in range(RUNS)]
    results = client.results(handles, timeout=90)

    assert {first for first, _ in results} == nodes.all  # steps ran on every node
    assert {gpu for _, gpu in results} == {nodes.gpu}  # the custom resource's steps where it is

    actors = _actors(nodes, ns)
    store = [name for name in actors if name.startswith(f"runner:{ns}:store:")]
    workers = [name for name in actors if name.startswith(f"runner:{ns}:worker-")]
    assert len(store) == 1 and len(workers) == RUNS, sorted(actors)
    assert actors["runner"].class_name == "Runner" and actors[store[0]].class_name == "StoreActor"
    assert actors["runner"].node_id == nodes.head and actors[store[0]].node_id == nodes.head
    assert {actors[name].node_id for name in workers} == nodes.all  # a worker on every node

    run_id = handles[0].run_id
    where = eventually(lambda: _task_node(nodes, f"spread.where@{run_id}"), what="the step task in Ray's state API")
    assert where == results[0][0]
    on_gpu = eventually(
        lambda: _task_node(nodes, f"spread.on_gpu@{run_id}"), what="the gpu step task in Ray's state API"
    )
    assert on_gpu == nodes.gpu

    # Ray's metrics endpoints: this test's runs counted by the processes that recorded them (each
    # process reports on its own schedule: wait until every figure is in, then compare them all)
    def figures() -> dict[str, float]:
        sums = _ray_metrics(nodes)
        found = {
            "submitted": _metric(sums, "ray_runner_runs_submitted_total", workflow="spread"),
            "completed": _metric(sums, "ray_runner_runs_ended_total", workflow="spread", status="completed"),
            "commits": min(_metric(sums, "ray_runner_commit_seconds_count"), 1.0),
        }
        for step in ("where", "on_gpu"):  # Ray's histogram sums are bucket estimates: read counts
            found[f"{step} durations"] = _metric(sums, "ray_runner_step_seconds_count", workflow="spread", step=step)
            found[f"{step} first attempts"] = _metric(
                sums, "ray_runner_step_attempts_bucket", workflow="spread", step=step, le="1.0"
            )
        return found

    expected = {name: (1.0 if name == "commits" else float(RUNS)) for name in figures()}
    eventually(lambda: figures() == expected, timeout=60, what="the runs' metrics at Ray's endpoints")
    assert figures() == expected


LOST_TYPES = {
    "ray.exceptions.NodeDiedError",
    "ray.exceptions.WorkerCrashedError",
    "ray.exceptions.LocalRayletDiedError",
    "ray.exceptions.ObjectLostError",
    "ray.exceptions.OwnerDiedError",
}
LOSS_RUNS = 4


def _on_side(log: str, gate: str) -> runner.Workflow:
    wf = runner.Workflow("node_loss")

    @wf.step(num_cpus=0, resources={"side": 1}, retries=2)
    def remote(x: int) -> int:  # runs on the side node only
        mark(log, str(x))
        wait_for_file(gate)
        return x * 10

    @wf.step(after=remote, inline=True)
    def finish(x: int) -> int:
        return x + 3

    return wf


def _alive_with(resource: str) -> bool:
    return any(node["Alive"] and resource in node["Resources"] for node in ray.nodes())


def test_a_node_lost_mid_run_loses_nothing(nodes: Nodes, make_client: Callable[..., Client], tmp_path: Path) -> None:
    log, gate = str(tmp_path / "started.log"), str(tmp_path / "gate")
    client = make_client(max_workers=1)
    warm = runner.Workflow("warm")  # the only worker starts now, on a node that stays
    warm.step(lambda x: x, name="echo", inline=True)
    assert client.submit(warm, 1).result(timeout=60) == 1

    side = nodes.cluster.add_node(num_cpus=1, resources={"side": LOSS_RUNS})
    eventually(lambda: _alive_with("side"), what="the side node to join")
    handles = [client.submit(_on_side(log, gate), i) for i in range(LOSS_RUNS)]
    eventually(lambda: len(executions(log)) == LOSS_RUNS, timeout=60, what="every step to run on the side node")

    nodes.cluster.remove_node(side, allow_graceful=False)
    eventually(lambda: not _alive_with("side"), what="the side node to be seen gone")
    replacement = nodes.cluster.add_node(num_cpus=1, resources={"side": LOSS_RUNS})
    try:
        with open(gate, "w"):
            pass
        assert client.results(handles, timeout=90) == [i * 10 + 3 for i in range(LOSS_RUNS)]
    finally:
        nodes.cluster.remove_node(replacement)
    for handle in handles:
        events = [stored.event for stored in handle.history()]
        facts = sorted(e.node for e in events if isinstance(e, FactProduced))
        assert facts == ["finish", "remote"]  # each result recorded once
        lost = [e for e in events if isinstance(e, StepLost)]
        assert lost and all(e.node == "remote" and e.attempt == 1 for e in lost)
        assert {e.error.type for e in lost} <= LOST_TYPES
        assert not [e for e in events if isinstance(e, StepFailed)]  # none of the step's own retries spent
        assert {e.attempt for e in events if isinstance(e, StepStarted)} == {1}
