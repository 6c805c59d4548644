"""A run whose definition the workers cannot load fails with an error that says so, and a Runner
that finds such a run at start-up reports it as not resumed."""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from ray_support import eventually, kill_runner, lines, touch

import runner
from runner.client import connect
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = pytest.mark.ray


class _NeedsMissingModule:
    """Unpickles by importing a module nobody has: as a step whose code or dependency is missing
    where the workers run."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return importlib.import_module, ("missing_dependency_of_a_step",)


def _unloadable_workflow() -> runner.Workflow:
    wf = runner.Workflow("unloadable")
    dependency = _NeedsMissingModule()

    def double(x: int, _dependency: Any = dependency) -> int:
        return 2 * x

    wf.step(double, name="double")
    return wf


def _blocker(log: str, gate: str) -> runner.Workflow:
    wf = runner.Workflow("blocker")

    @wf.step()
    def hold(x: int) -> int:
        _mark(log, "hold")
        _wait_for_file(gate)
        return x

    return wf


def test_a_run_whose_code_the_workers_lack_fails_saying_so(make_client: Any, tmp_path: Path) -> None:
    client = make_client(config=RunnerConfig(restart_limit=1, restart_backoff=0.05))
    handle = client.submit(_unloadable_workflow(), 2)

    with pytest.raises(runner.WorkflowFailed) as caught:
        handle.result(timeout=60)

    text = str(caught.value)
    assert "ModuleNotFoundError" in text and "missing_dependency_of_a_step" in text
    assert "could not load or fold the run" in text and "restart limit of 1" in text
    assert handle.status() is runner.RunStatus.FAILED


@pytest.mark.slow  # make chaos: the report's content is tested pure in tests/test_startup_recovery.py
def test_a_runner_reports_a_run_it_found_but_could_not_resume(ray_instance: None, tmp_path: Path) -> None:
    store = "duckdb:///" + str(tmp_path / "s.duckdb")
    namespace = f"unloadable-{uuid.uuid4().hex[:12]}"
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    one_slot = RunnerConfig(max_workers=1, runs_per_worker=1, restart_limit=0)
    client = connect(store=store, namespace=namespace, config=one_slot)
    try:
        blocker = client.submit(_blocker(log, gate), 7)
        eventually(lambda: "hold" in lines(log), what="the blocker to hold the only worker")
        bad = client.submit(_unloadable_workflow(), 2)
        assert bad.status() is runner.RunStatus.PENDING
    finally:
        kill_runner(client)

    client = connect(store=store, namespace=namespace, config=one_slot)
    try:
        report = client.recovery_report()
        assert set(report.resumed) == {blocker.run_id, bad.run_id}
        touch(gate)  # only now: the old worker, dying with its Runner, must not finish the blocker first
        assert client.get(blocker.run_id).result(timeout=60) == 7
        with pytest.raises(runner.WorkflowFailed):
            client.get(bad.run_id).result(timeout=60)
        report = eventually(lambda: client.recovery_report(), what="the report")
        assert list(report.not_resumed) == [bad.run_id]
        assert "ModuleNotFoundError" in report.not_resumed[bad.run_id]
    finally:
        kill_runner(client)
