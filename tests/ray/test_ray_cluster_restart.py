"""A full cluster restart mid-run loses nothing: the next connect() on the same store resumes the run.

This module manages its own Ray lifecycle (it shuts Ray down in the middle of the test).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import ray
from ray_support import assert_gapless, eventually, facts, has_started, kill_runner, lines, start_ray, touch

import runner
from runner.client import connect
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a whole Ray restart: make chaos (bench/chaos.py measures it too)


def _workflow(log: str, gate: str) -> runner.Workflow:
    wf = runner.Workflow("restartable")

    @wf.step()
    def first(x: int) -> int:
        _mark(log, "first")
        return x + 1

    @wf.step(after=first)
    def slow(x: int) -> int:
        _mark(log, "slow")
        _wait_for_file(gate)
        return x * 3

    @wf.step(after=slow)
    def last(x: int) -> int:
        _mark(log, "last")
        return x - 1

    return wf


@pytest.fixture
def no_ray() -> object:
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def test_run_survives_a_full_cluster_restart(no_ray: object, tmp_path: Path) -> None:
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    store = "duckdb:///" + str(tmp_path / "s.duckdb")
    namespace = f"restart-{uuid.uuid4().hex[:12]}"

    start_ray()
    client = connect(store=store, namespace=namespace)
    handle = client.submit(_workflow(log, gate), 4)
    run_id = handle.run_id
    eventually(lambda: has_started(handle.history(), "slow") and "slow" in lines(log), what="the slow step to start")
    assert client.recovery_report().resumed == ()

    ray.shutdown()  # the whole cluster goes: Runner, Store actor, worker and the step in flight
    touch(gate)
    start_ray()
    client = connect(store=store, namespace=namespace)
    try:
        report = client.recovery_report()
        assert run_id in report.resumed
        assert run_id in report.leases_taken_over  # the dead worker's lease had not expired yet
        handle = client.get(run_id)

        assert handle.result(timeout=90) == (4 + 1) * 3 - 1

        assert handle.status() is runner.RunStatus.COMPLETED
        history = handle.history()
        assert_gapless(history)
        assert sorted(facts(history)) == [("first", None), ("last", None), ("slow", None)]
        assert lines(log).count("first") == 1 and lines(log).count("last") == 1
        assert 1 <= lines(log).count("slow") <= 2
        # the Runner counts it when the worker's turn returns, just after the commit the result came from
        eventually(lambda: client.recovery_report().redispatched == {run_id: 1}, what="the re-dispatch in the report")
    finally:
        kill_runner(client)
