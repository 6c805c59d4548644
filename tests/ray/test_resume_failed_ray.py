"""Resume of a failed or cancelled run in place, on Ray: the run goes on under the same run id
from where it ended, every recorded result kept; only the step that failed runs again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ray_support import assert_gapless, eventually, lines, touch

import runner
from runner.events import RunCancelled, RunFailed, RunReopened, StoredEvent
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 60


def _kinds(history: list[StoredEvent]) -> list[str]:
    return [type(s.event).__name__ for s in history]


def _needs_fix(log: str, fixed: str) -> runner.Workflow:
    """fetch -> charge (raises until the file ``fixed`` exists) -> receipt."""
    wf = runner.Workflow("needs_fix")

    @wf.step()
    def fetch(x: int) -> int:
        _mark(log, "fetch")
        return x + 1

    @wf.step(after=fetch)
    def charge(x: int) -> int:
        _mark(log, "charge")
        if not os.path.exists(fixed):
            raise ConnectionError("payment gateway down")
        return x * 10

    @wf.step(after=charge)
    def receipt(x: int) -> str:
        _mark(log, "receipt")
        return f"receipt {x}"

    return wf


def test_resume_of_a_failed_run_after_the_fix_reruns_only_the_failed_step(
    shared_client: runner.Client, tmp_path: Path
) -> None:
    client = shared_client
    log, fixed = str(tmp_path / "effects.log"), str(tmp_path / "fixed")
    handle = client.submit(_needs_fix(log, fixed), 1)
    with pytest.raises(ConnectionError):  # the step's own error
        handle.result(timeout=RESULT_TIMEOUT)
    assert handle.status() is runner.RunStatus.FAILED

    touch(fixed)
    record = handle.resume(reason="gateway back")
    assert record.run_id == handle.run_id
    assert handle.result(timeout=RESULT_TIMEOUT) == "receipt 20"
    assert lines(log) == ["fetch", "charge", "charge", "receipt"]  # fetch's result was kept

    history = handle.history()
    assert_gapless(history)
    kinds = _kinds(history)
    assert kinds.index("RunFailed") < kinds.index("RunReopened") < kinds.index("RunCompleted")
    reopened = [s.event for s in history if isinstance(s.event, RunReopened)]
    assert [(e.from_status, e.reason) for e in reopened] == [("failed", "gateway back")]
    assert sum(isinstance(s.event, RunFailed) for s in history) == 1

    with pytest.raises(runner.ResumeRefused):  # completed now: replay or fork it instead
        handle.resume()


def test_resume_of_a_cancelled_run_goes_on_from_where_it_stopped(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    wf = runner.Workflow("cancel_then_resume")

    @wf.step()
    def first(x: int) -> int:
        _mark(log, "first")
        return x + 1

    @wf.step(after=first)
    def slow(x: int) -> int:
        _mark(log, "slow")
        _wait_for_file(gate)
        return x * 10

    handle = client.submit(wf, 1)
    eventually(lambda: "slow" in lines(log), what="the slow step to start")
    assert handle.cancel().status is runner.RunStatus.CANCELLED

    touch(gate)
    handle.resume()
    assert handle.result(timeout=RESULT_TIMEOUT) == 20
    assert lines(log).count("first") == 1
    history = handle.history()
    assert_gapless(history)
    kinds = _kinds(history)
    assert kinds.index("RunCancelled") < kinds.index("RunReopened") < kinds.index("RunCompleted")
    assert [s.event.from_status for s in history if isinstance(s.event, RunReopened)] == ["cancelled"]
    assert sum(isinstance(s.event, RunCancelled) for s in history) == 1
