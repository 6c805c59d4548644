"""Signals and timers survive restarts: a suspended run gets a signal sent after its Runner
restarted, and a durable sleep goes on across a full Ray restart and fires once.

This module manages its own Ray lifecycle (it kills the Runner and shuts Ray down mid-test).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray_support import assert_gapless, eventually, kill_runner, lines, start_ray

import runner
from runner.client import connect
from runner.events import RunSuspended, SignalReceived, StepStarted, TimerFired, TimerScheduled
from runner.runner import RunnerConfig
from runner.store_handle import StoreHandle
from runner.testing.sideeffects import mark as _mark
from runner.worker import WorkerConfig

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 90


def _events(handle: runner.RunHandle, kind: type) -> list[Any]:
    return [s.event for s in handle.history() if isinstance(s.event, kind)]


@pytest.fixture
def no_ray() -> Iterator[None]:
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def _approval(log: str) -> runner.Workflow:
    wf = runner.Workflow("approval")

    @wf.step()
    def prepare(x: int) -> int:
        _mark(log, f"prepare{x}")
        return x

    decision = wf.wait_for("approve", after=prepare)

    @wf.step(after=[prepare, decision])
    def finish(x: int, payload: str) -> str:
        _mark(log, f"finish{x}")
        return f"{x}:{payload}"

    return wf


def _restarted(client: runner.Client, old_store_id: Any) -> bool:
    """True once the Runner answering is a new incarnation (it made a new Store actor) and has recovered."""
    store = ray.get(client.runner.store_handle.remote(), timeout=5)
    if store._actor_id == old_store_id:
        return False  # the kill has not reached the old Runner yet
    ray.get(client.runner.ready.remote(), timeout=30)
    return True


def test_a_suspended_run_gets_a_signal_after_its_runner_restarted(no_ray: None, tmp_path: Path) -> None:
    log = str(tmp_path / "effects.log")
    store = "duckdb:///" + str(tmp_path / "s.duckdb")
    start_ray()
    client = connect(store=store, namespace=f"rs-{uuid.uuid4().hex[:12]}")
    try:
        wf = _approval(log)
        told_after = client.submit(wf, 1)  # signalled through the restarted Runner
        told_before = client.submit(wf, 2)  # its signal reaches the store while no Runner looks
        for handle in (told_after, told_before):
            eventually(lambda h=handle: h.status() is runner.RunStatus.SUSPENDED, what=f"{handle.run_id} to suspend")
        # a signal put straight into the inbox: the Runner is not told, so the run stays suspended
        ray.get(StoreHandle(client.store).post_signal(told_before.run_id, "approve", "from the inbox"))
        assert told_before.status() is runner.RunStatus.SUSPENDED

        old_store_id = client.store._actor_id
        ray.kill(client.runner, no_restart=False)  # Ray restarts it; its Store and Worker actors go with it
        eventually(lambda: _restarted(client, old_store_id), timeout=60, what="the Runner to restart")
        report = client.recovery_report()
        assert told_before.run_id in report.woken  # recovery found the signal that came while it was away
        assert told_after.run_id not in report.woken + report.resumed  # still waiting: nothing to do for it

        assert told_before.result(timeout=RESULT_TIMEOUT) == "2:from the inbox"
        assert told_after.status() is runner.RunStatus.SUSPENDED

        client.signal(told_after.run_id, "approve", "after the restart")

        assert told_after.result(timeout=RESULT_TIMEOUT) == "1:after the restart"
        for handle, payload in ((told_after, "after the restart"), (told_before, "from the inbox")):
            assert_gapless(handle.history())
            assert [e.payload for e in _events(handle, SignalReceived)] == [payload]
        assert sorted(lines(log)) == ["finish1", "finish2", "prepare1", "prepare2"]  # nothing ran twice
    finally:
        kill_runner(client)


def _napper(log: str, seconds: float) -> runner.Workflow:
    wf = runner.Workflow("napper")

    @wf.step()
    def before(x: int) -> int:
        _mark(log, "before")
        return x + 1

    nap = wf.sleep(seconds, name="nap", after=before)

    @wf.step(after=nap)
    def wake(x: int) -> int:
        _mark(log, "wake")
        return x * 100

    return wf


@pytest.mark.parametrize(
    "suspend_after",
    [
        pytest.param(
            0.5, id="suspended-sleep", marks=pytest.mark.slow
        ),  # the run released its worker: the Runner re-arms its timer
        # its worker waited in place: the run is resumed as running (a second Ray restart: in make chaos)
        pytest.param(30.0, id="in-place-sleep", marks=pytest.mark.slow),
    ],
)
def test_sleep_goes_on_across_a_ray_restart_and_fires_once(no_ray: None, tmp_path: Path, suspend_after: float) -> None:
    log = str(tmp_path / "effects.log")
    store = "duckdb:///" + str(tmp_path / "s.duckdb")
    namespace = f"sleep-{uuid.uuid4().hex[:12]}"
    config = RunnerConfig(worker=WorkerConfig(suspend_after=suspend_after))

    start_ray()
    client = connect(store=store, namespace=namespace, config=config)
    handle = client.submit(_napper(log, 3.0), 1)
    run_id = handle.run_id
    eventually(lambda: _events(handle, TimerScheduled), what="the timer to be scheduled")
    if suspend_after < 3.0:
        eventually(lambda: handle.status() is runner.RunStatus.SUSPENDED, what="the run to suspend")
    else:
        assert handle.status() is runner.RunStatus.RUNNING
    due = _events(handle, TimerScheduled)[0].due_at
    assert time.time() < due, "the restart must happen while the run sleeps"

    ray.shutdown()  # the whole cluster goes while the run sleeps
    start_ray()
    client = connect(store=store, namespace=namespace, config=config)
    try:
        report = client.recovery_report()
        if suspend_after < 3.0:
            assert run_id in report.timers + report.woken  # re-armed, or due already and woken
        else:
            assert run_id in report.resumed
        handle = client.get(run_id)

        assert handle.result(timeout=RESULT_TIMEOUT) == 200

        history = handle.history()
        assert_gapless(history)
        scheduled, fired = _events(handle, TimerScheduled), _events(handle, TimerFired)
        assert len(scheduled) == 1 and scheduled[0].due_at == due  # not scheduled again after the restart
        assert len(fired) == 1 and fired[0].at >= due  # fired once, and not early
        wake_started = [s.event.at for s in history if isinstance(s.event, StepStarted) and s.event.node == "wake"]
        assert len(wake_started) == 1 and wake_started[0] >= due
        assert lines(log) == ["before", "wake"]
        if suspend_after < 3.0:
            assert len(_events(handle, RunSuspended)) == 1
    finally:
        kill_runner(client)
