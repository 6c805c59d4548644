"""Crashes on a real Ray instance: SIGKILLed workers, zombies, restart intensity, snapshot recovery."""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import ray
from ray_support import (
    alive,
    assert_gapless,
    eventually,
    facts,
    has_fact,
    has_started,
    last_outcome,
    lines,
    touch,
    worker_pid,
)

import runner
from runner.events import FactProduced, RunFailed, StepStarted
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file
from runner.worker import Outcome, WorkerConfig

pytestmark = pytest.mark.ray


def _gated_chain(log: str, gate: str) -> runner.Workflow:
    """a -> b -> slow (blocks until ``gate`` exists) -> d."""
    wf = runner.Workflow("gated")

    @wf.step()
    def a(x: int) -> int:
        _mark(log, "a")
        return x + 1

    @wf.step(after=a)
    def b(x: int) -> int:
        _mark(log, "b")
        return x * 10

    @wf.step(after=b)
    def slow(x: int) -> int:
        _mark(log, "slow")
        _wait_for_file(gate)
        return x + 5

    @wf.step(after=slow)
    def d(x: int) -> int:
        _mark(log, "d")
        return x * 2

    return wf


def _last_outcome(client: runner.Client, run_id: str) -> Outcome | None:
    outcome: Outcome | None = last_outcome(client, run_id)
    return outcome


# --------------------------------------------------------------- SIGKILL
def test_sigkilled_worker_is_replaced_and_completed_steps_do_not_rerun(client: runner.Client, tmp_path: Path) -> None:
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_gated_chain(log, gate), 1)
    eventually(lambda: lines(log).count("slow") == 1, what="the slow step to start")
    assert has_fact(handle.history(), "b")
    pid = eventually(lambda: worker_pid(client, handle.run_id), what="the worker's pid")

    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not alive(pid), what="the worker process to die")
    # a new worker (another process) takes the run over and re-dispatches the step that was in flight
    eventually(lambda: (worker_pid(client, handle.run_id) or pid) != pid, what="a replacement worker")
    touch(gate)

    assert handle.result(timeout=90) == ((1 + 1) * 10 + 5) * 2
    effects = collections.Counter(lines(log))
    assert effects["a"] == 1 and effects["b"] == 1 and effects["d"] == 1  # completed before the kill: never again
    assert 1 <= effects["slow"] <= 2  # the step in flight at the kill runs at least once
    history = handle.history()
    assert_gapless(history)
    assert sorted(facts(history)) == [("a", None), ("b", None), ("d", None), ("slow", None)]
    assert client.stats().restarts == 1
    outcome = _last_outcome(client, handle.run_id)
    assert outcome is not None and outcome.status == "completed"
    assert [key for key in outcome.recovery.redispatched] == [("slow", None)]


# ---------------------------------------------------------------- zombie
def test_zombie_worker_with_superseded_lease_cannot_append(client: runner.Client, tmp_path: Path) -> None:
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_gated_chain(log, gate), 1)
    run_id = handle.run_id
    eventually(lambda: lines(log).count("slow") == 1, what="the slow step to start")
    history = eventually(lambda: (h := handle.history()) and has_started(h, "slow") and h, what="StepStarted(slow)")
    old_lease = next(s.event.lease for s in history if isinstance(s.event, StepStarted) and s.event.node == "slow")
    assert ray.get(client.store.get_run.remote(run_id)).lease == old_lease

    lease = ray.get(client.store.acquire_lease.remote(run_id, "intruder", 30, force=True))
    assert lease.token > old_lease
    # the store fences the old token off ...
    with pytest.raises(runner.FencedError):
        ray.get(client.store.append.remote(run_id, [FactProduced(node="slow", value=0)], old_lease))
    # ... so when the old worker's step finishes, its append is refused and it stops
    touch(gate)
    outcome = eventually(lambda: _last_outcome(client, run_id), what="the old worker's outcome")
    assert outcome.status == "fenced"
    after = handle.history()
    assert [s.seq for s in after] == [s.seq for s in history]  # nothing appended after the takeover
    assert not has_fact(after, "slow")
    assert "d" not in lines(log)
    record = ray.get(client.store.get_run.remote(run_id))
    assert record.lease == lease.token and record.lease_owner == "intruder"
    assert record.status is runner.RunStatus.RUNNING


# ------------------------------------------------------- restart intensity
def _suicidal_workflow() -> runner.Workflow:
    wf = runner.Workflow("suicidal")

    @wf.step()
    def prepare(x: int) -> int:
        return x

    @wf.step(after=prepare, inline=True)
    def crash(x: int) -> int:
        os.kill(os.getpid(), signal.SIGKILL)  # kills the worker that runs it inline
        return x

    return wf


@pytest.mark.slow  # make chaos: the restart limit's rule is tested pure in tests/test_restart_policy.py
def test_restart_intensity_limit_fails_the_run(make_client: Any) -> None:
    config = RunnerConfig(max_workers=2, restart_limit=2, restart_window=60, restart_backoff=0.05)
    client = make_client(config=config)
    handle = client.submit(_suicidal_workflow(), 1)

    with pytest.raises(runner.WorkflowFailed, match="restart limit"):
        handle.result(timeout=120)

    assert handle.status() is runner.RunStatus.FAILED
    last = handle.history()[-1].event
    assert isinstance(last, RunFailed)
    assert "restart limit of 2" in last.error.message
    assert client.stats().restarts == 3  # two restarts allowed, the third loss fails the run
    crash_starts = [s for s in handle.history() if isinstance(s.event, StepStarted) and s.event.node == "crash"]
    assert len(crash_starts) == 3


# ------------------------------------------------------ snapshot recovery
CHAIN = 28  # the log is 2 + 2 * CHAIN events when the slow step starts: 58, so the last snapshot (at 52) is behind it


def _long_chain(gate: str) -> runner.Workflow:
    wf = runner.Workflow("long-chain")
    previous = None
    for i in range(CHAIN):

        def step(x: int) -> int:
            return x + 1

        previous = wf.step(step, name=f"s{i:02d}", after=previous, inline=True)

    @wf.step(after=previous)
    def slow(x: int) -> int:
        _wait_for_file(gate)
        return x * 100

    return wf


@pytest.mark.slow  # make chaos: recovery from a snapshot on Ray is also in tests/ray/test_snapshot_format.py
def test_recovery_starts_from_the_latest_snapshot(make_client: Any, tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    client = make_client(
        config=RunnerConfig(max_workers=2, restart_backoff=0.05, worker=WorkerConfig(snapshot_every=10))
    )
    handle = client.submit(_long_chain(gate), 0)
    run_id = handle.run_id
    history = eventually(lambda: (h := handle.history()) and has_started(h, "slow") and h, what="StepStarted(slow)")
    assert len(history) >= 20
    snapshot = ray.get(client.store.load_snapshot.remote(run_id))
    assert snapshot is not None and snapshot.cursor >= 10
    old_lease = max(s.event.lease for s in history if isinstance(s.event, StepStarted))
    pid = eventually(lambda: worker_pid(client, run_id), what="the worker's pid")

    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not alive(pid), what="the worker process to die")
    touch(gate)

    assert handle.result(timeout=90) == CHAIN * 100
    outcome = _last_outcome(client, run_id)
    assert outcome is not None and outcome.status == "completed"
    stats = outcome.recovery
    print(f"recovery: {stats}, log before the kill: {len(history)} events")
    # While the slow step ran the old worker appended nothing more, so the log the new
    # worker recovered from is exactly the one read above; what follows is the new lease's.
    cursor_at_recovery = len(history)
    final = handle.history()
    assert all(s.event.lease > old_lease for s in final[cursor_at_recovery:] if isinstance(s.event, StepStarted))
    assert stats.snapshot_cursor >= 10
    assert stats.snapshot_cursor == snapshot.cursor  # no snapshot was taken while the slow step ran
    assert stats.events_streamed == cursor_at_recovery - stats.snapshot_cursor
    assert stats.events_streamed > 0, "the chain is sized so that recovery streams events after the snapshot"
    assert stats.redispatched == (("slow", None),)
    assert_gapless(final)


# ------------------------------------------------------ idle worker death
def test_worker_that_died_idle_is_not_charged_to_the_next_run(make_client: Any, tmp_path: Path) -> None:
    # restart_limit=0: any worker loss charged to a run fails it at once
    client = make_client(config=RunnerConfig(max_workers=1, restart_limit=0))
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    workflow = _gated_chain(log, gate)
    first = client.submit(workflow, 1)
    pid = eventually(lambda: worker_pid(client, first.run_id), what="the worker's pid")
    touch(gate)
    assert first.result(timeout=60) == 50
    eventually(lambda: client.stats().busy_workers == 0, what="the worker to go back to the pool")
    assert client.stats().live_workers == 1  # kept, idle, for the next run

    os.kill(pid, signal.SIGKILL)  # the pooled worker dies while it has no run
    eventually(lambda: not alive(pid), what="the idle worker to die")
    second = client.submit(workflow, 2)

    assert second.result(timeout=60) == 70
    stats = client.stats()
    assert stats.restarts == 0
    assert stats.workers_started == 2
