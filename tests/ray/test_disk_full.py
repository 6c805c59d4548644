"""A store that cannot write (a full disk) on a real Ray instance: the fault point STORE_COMMIT
raises ENOSPC at every commit of one run, for a few commits or until disarmed.

A short outage: the run is retried after a backoff and completes, each result recorded once, and
no worker is counted lost. A long one: over the restart limit the run is paused (not failed) with
a reason that names the full disk; once the disk has room, ``resume`` completes it and no result
recorded before the outage is produced again.

This module starts its own Ray with ``RUNNER_FAULTS`` in the environment, so the Store actor obeys
the armings of these tests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from ray_support import assert_gapless, eventually, facts, has_fact, has_started, kill_runner, lines, touch

import runner
from runner import cli, faults
from runner.client import Client, connect
from runner.errors import ResultTimeout
from runner.events import RunPaused, RunResumed
from runner.faults import Action, FaultPoint
from runner.runner import RunnerConfig
from runner.store import RunStatus

pytestmark = pytest.mark.ray

# over the limit after two failed turns; a blocked pause is tried again every half second
CONFIG = RunnerConfig(restart_limit=1, restart_window=60.0, restart_backoff=0.05, restart_backoff_max=0.5)


@pytest.fixture
def make_client(fault_dir: Path, tmp_path: Path) -> Iterator[Callable[[RunnerConfig | None], Client]]:
    made: list[Client] = []

    def make(config: RunnerConfig | None = None) -> Client:
        faults.disarm(fault_dir)
        namespace = f"disk-{uuid.uuid4().hex[:12]}"
        client = connect(store="duckdb:///" + str(tmp_path / f"{namespace}.duckdb"), namespace=namespace, config=config)
        made.append(client)
        return client

    yield make
    faults.disarm(fault_dir)
    for client in made:
        kill_runner(client)


def _chain(log_dir: Path) -> runner.Workflow:
    """a, then b; each step notes each time it runs; b waits for a go file (at most 30 s)."""
    wf = runner.Workflow("disk-chain")
    go = log_dir / "go"

    @wf.step()
    def a(x: int) -> int:
        with open(log_dir / "a.log", "a") as f:
            f.write("a\n")
        return x + 1

    @wf.step(after=a)
    def b(x: int) -> int:
        deadline = time.monotonic() + 30
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        with open(log_dir / "b.log", "a") as f:
            f.write("b\n")
        return x * 10

    return wf


def _run_id() -> str:
    return f"disk-chain-{uuid.uuid4().hex[:12]}"


def _store_commit_firings(fault_dir: Path, run_id: str) -> int:
    return len([f for f in faults.fired(fault_dir, FaultPoint.STORE_COMMIT) if run_id in f.run_ids])


def test_a_short_outage_is_retried_and_no_worker_is_counted_lost(
    make_client: Callable[[RunnerConfig | None], Client], fault_dir: Path, tmp_path: Path
) -> None:
    client = make_client(None)  # the default limit (3) outlasts two failed commits
    touch(tmp_path / "go")
    run_id = _run_id()
    faults.arm(fault_dir, FaultPoint.STORE_COMMIT, Action.RAISE, run_id=run_id, times=2)
    handle = client.submit(_chain(tmp_path), 1, run_id=run_id)

    assert handle.result(timeout=60) == 20

    assert _store_commit_firings(fault_dir, run_id) == 2
    history = handle.history()
    assert_gapless(history)
    assert sorted(facts(history)) == [("a", None), ("b", None)]  # each result recorded once
    stats = client.stats()
    assert (stats.restarts, stats.store_outages) == (0, 2)  # outages, not worker losses
    assert stats.workers_started == 1  # the worker was healthy: it stayed and drove every turn
    assert not any(isinstance(s.event, RunPaused) for s in history)


def test_a_long_outage_pauses_the_run_with_the_reason_and_resume_completes_it(
    make_client: Callable[[RunnerConfig | None], Client], fault_dir: Path, tmp_path: Path
) -> None:
    client = make_client(CONFIG)
    run_id = _run_id()
    handle = client.submit(_chain(tmp_path), 1, run_id=run_id)
    # a's result is recorded and b runs: now the disk fills, and stays full
    eventually(lambda: has_fact(handle.history(), "a") and has_started(handle.history(), "b"), what="b to start")
    faults.arm(fault_dir, FaultPoint.STORE_COMMIT, Action.RAISE, run_id=run_id, times=None)
    touch(tmp_path / "go")

    # b's result cannot be recorded, twice (the limit is 1); nor can the pause: the run is
    # blocked, left running in the store, and the recovery report says why
    blocked = eventually(lambda: client.recovery_report().blocked.get(run_id), what="the run to be blocked")
    assert "No space left on device" in blocked and "its pause could not be recorded" in blocked
    assert handle.status() is RunStatus.RUNNING
    with pytest.raises(ResultTimeout):  # it has not ended: result() waits
        handle.result(timeout=0.2)

    faults.disarm(fault_dir)  # the disk has room again: the pause is recorded at its next try
    eventually(lambda: handle.status() is RunStatus.PAUSED, what="the run to be paused")
    paused = handle.history()[-1].event
    assert isinstance(paused, RunPaused)
    assert paused.reason.startswith("run paused: the store file ")
    assert "No space left on device" in paused.reason and "2 failed store writes" in paused.reason
    assert "free disk space" in paused.reason and "client.resume(run_id)" in paused.reason
    # the Runner clears the entry when it records the turn's end, just after the pause's commit
    eventually(lambda: client.recovery_report().blocked == {}, what="the Runner to clear the blocked entry")
    with pytest.raises(ResultTimeout, match="still paused"):  # paused is not ended: result() still waits
        handle.result(timeout=0.2)
    shown = CliRunner().invoke(cli.main, ["show", run_id, "--store", client.store_url, "--namespace", client.namespace])
    assert shown.exit_code == 0, shown.output
    assert f"paused    {paused.reason}" in shown.output.splitlines()

    client.resume(run_id)
    assert handle.result(timeout=60) == 20

    history = handle.history()
    assert_gapless(history)
    assert sorted(facts(history)) == [("a", None), ("b", None)]  # no result recorded twice
    assert lines(tmp_path / "a.log") == ["a"]  # a's result, recorded before the outage, was kept
    assert len(lines(tmp_path / "b.log")) >= 2  # b's was not recorded: it ran again (at least once)
    kinds = [type(s.event).__name__ for s in history]
    assert kinds.index("RunPaused") < kinds.index("RunResumed") < kinds.index("RunCompleted")
    assert any(isinstance(s.event, RunResumed) for s in history)
    stats = client.stats()
    assert stats.restarts == 0 and stats.store_outages >= 2
    assert _store_commit_firings(fault_dir, run_id) >= 3  # two turns' appends and the first try of the pause


@pytest.mark.slow  # make chaos: the short and long outages stay in make test
def test_a_signal_that_cannot_be_recorded_still_wakes_the_suspended_run_once_the_disk_has_room(
    make_client: Callable[[RunnerConfig | None], Client], fault_dir: Path
) -> None:
    client = make_client(CONFIG)
    wf = runner.Workflow("disk-approval")

    @wf.step()
    def ask(x: str) -> str:
        return f"approve {x}?"

    wf.wait_for("answer", after=ask)
    run_id = f"disk-approval-{uuid.uuid4().hex[:12]}"
    handle = client.submit(wf, "plan", run_id=run_id)
    eventually(lambda: handle.status() is RunStatus.SUSPENDED, what="the run to suspend")

    # the disk fills; the signal is stored, but no turn it wakes can record it: over the limit
    # (two failed turns) the Runner gives up, and the run, suspended, cannot be paused
    faults.arm(fault_dir, FaultPoint.STORE_COMMIT, Action.RAISE, run_id=run_id, times=None)
    handle.signal("answer", {"approved": True})
    eventually(lambda: client.stats().store_outages >= 2, what="the woken turns to fail")
    assert handle.status() is RunStatus.SUSPENDED
    faults.disarm(fault_dir)  # the disk has room again: the run's wake-up is tried again

    assert handle.result(timeout=20) == {"approved": True}
    kinds = [type(s.event).__name__ for s in handle.history()]
    assert kinds.count("SignalReceived") == 1 and kinds[-1] == "RunCompleted"
