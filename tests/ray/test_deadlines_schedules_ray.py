"""On Ray: a step's deadline cancels its attempt and ends its retries; a run's deadline fails a
run that runs or waits (a suspended run is woken by the Runner's timer); policies given at submit
reach the workers; an every-second cron schedule starts one run per tick until removed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_support import alive, eventually, lines

import runner
from runner.events import RunFailed, RunSubmitted, RunSuspended, StepFailed
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file
from runner.worker import WorkerConfig

pytestmark = pytest.mark.ray


def test_a_step_deadline_cancels_the_attempt_and_ends_the_retries(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, never = str(tmp_path / "effects.log"), str(tmp_path / "never")
    wf = runner.Workflow("step_deadline")

    # The deadline counts from dispatch, so on a busy machine the attempt may not have started by then.
    @wf.step(deadline=4.0, retries=5, backoff="none")
    def slow(x: int) -> int:
        _mark(log, f"pid-{os.getpid()}")
        _wait_for_file(never)  # hangs until cancelled
        return x

    handle = client.submit(wf, 1)
    with pytest.raises(runner.DeadlineExceeded, match="'slow' passed its deadline of 4s"):
        handle.result(timeout=60)
    failed = [e.event for e in handle.history() if isinstance(e.event, StepFailed)]
    assert [(e.attempt, e.retry_at) for e in failed] == [(1, None)]  # no retry after the deadline
    for line in lines(log):  # the attempt, if it started, was cancelled: its process is killed
        pid = int(line.split("-")[1])
        eventually(lambda pid=pid: not alive(pid), what="the attempt's process to be killed")


def test_run_deadlines_fail_running_and_suspended_runs(
    make_client: Callable[..., runner.Client], tmp_path: Path
) -> None:
    client = make_client(config=RunnerConfig(worker=WorkerConfig(suspend_after=0.5)))
    never = str(tmp_path / "never")
    waiting = runner.Workflow("waits")
    waiting.wait_for("go", name="gate")
    busy = runner.Workflow("busy")

    @busy.step()
    def hang(x: int) -> int:
        _wait_for_file(never)
        return x

    suspended = client.submit(waiting, deadline=3.0)
    running = client.submit(busy, 1, deadline=3.0)
    for handle in (suspended, running):
        with pytest.raises(runner.RunDeadlineExceeded, match="passed its deadline"):
            handle.result(timeout=60)
    history = [e.event for e in suspended.history()]
    submitted, failed = history[0], history[-1]
    assert isinstance(submitted, RunSubmitted) and submitted.deadline_at is not None
    assert isinstance(failed, RunFailed) and failed.at >= submitted.deadline_at
    # Unless its first worker came after the deadline (a busy machine), it suspended with a
    # wake-up at the deadline, and the Runner's timer brought it back to fail then.
    assert all(e.wake_at == submitted.deadline_at for e in history if isinstance(e, RunSuspended))


def test_policies_given_at_submit_reach_the_workers(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log = str(tmp_path / "attempts.log")
    wf = runner.Workflow("overridden")

    @wf.step()  # no retries in the definition
    def flaky(x: int) -> int:
        _mark(log, "attempt")
        if Path(log).read_text().count("attempt") < 3:
            raise ConnectionError("down")
        return x * 2

    handle = client.submit(wf, 4, policies={"fla*": {"retries": 3, "backoff": "none"}})
    assert handle.result(timeout=60) == 8
    submitted = handle.history()[0].event
    assert isinstance(submitted, RunSubmitted) and submitted.policies == {"flaky": "fla*"}
    with pytest.raises(runner.UnknownPolicyTarget, match="flakey"):
        client.submit(wf, 4, policies={"flakey": runner.Policy(retries=3)})


def test_an_every_second_schedule_starts_one_run_per_tick_until_removed(shared_client: runner.Client) -> None:
    client = shared_client
    wf = runner.Workflow("ticker")

    @wf.step()
    def tick(x: dict) -> int:
        return x["n"] + 1

    with pytest.raises(runner.InvalidCron, match="field 1 .minute."):
        client.schedule(wf, cron="99 * * * *", name="bad")
    client.schedule(wf, cron="* * * * * *", input={"n": 1}, name="every-second")
    assert [s.name for s in client.list_schedules()] == ["every-second"]

    def ticked() -> list[runner.RunRecord] | None:
        runs = client.list_runs(workflow="ticker")
        return runs if len(runs) >= 2 else None

    runs = eventually(ticked, timeout=60, what="two ticks to start runs")
    client.unschedule("every-second")
    assert client.list_schedules() == []
    assert all(r.run_id.startswith("every-second-") for r in runs)
    assert len({r.run_id for r in runs}) == len(runs)
    assert client.results([client.get(r.run_id) for r in runs], timeout=60) == [2] * len(runs)
    with pytest.raises(runner.ScheduleNotFound):
        client.unschedule("every-second")
