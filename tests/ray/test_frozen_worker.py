"""A worker that stops answering without dying (SIGSTOP) on a real Ray instance: its runs are
taken over once their leases expire, and the woken zombie writes nothing."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import ray
from ray_support import alive, assert_gapless, eventually, facts, last_outcome, lines, touch, worker_pid

import runner
from runner.events import StepStarted, StoredEvent
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file
from runner.worker import Outcome, WorkerConfig

pytestmark = pytest.mark.ray

LEASE_TTL = 3.0
# How long a test waits for a frozen worker's run to finish elsewhere: takeover comes about
# lease_ttl + MARGIN + one check period after the freeze, then a new worker starts (seconds on a
# loaded 2-core box). Well under supervision.WORKER_START (60 s), the window a worker never seen
# alive gets, so a worker wrongly treated as still starting fails these tests.
TAKEOVER_DEADLINE = 40.0


def _config(**kw: Any) -> RunnerConfig:
    return RunnerConfig(max_workers=2, worker=WorkerConfig(lease_ttl=LEASE_TTL), **kw)


def _chain(log: str, gate: str) -> runner.Workflow:
    """a -> b (blocks until ``gate`` exists) -> c."""
    wf = runner.Workflow("frozen")

    @wf.step()
    def a(x: int) -> int:
        _mark(log, "a")
        return x + 1

    @wf.step(after=a)
    def b(x: int) -> int:
        _mark(log, "b")
        _wait_for_file(gate)
        return x * 10

    @wf.step(after=b)
    def c(x: int) -> int:
        _mark(log, "c")
        return x + 3

    return wf


def _continue(pid: int) -> None:
    """SIGCONT ``pid`` if it still exists (the kill may have ended it already)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


def _leases_of_b(history: list[StoredEvent]) -> list[int]:
    return [s.event.lease for s in history if isinstance(s.event, StepStarted) and s.event.node == "b"]


def test_a_frozen_workers_run_is_taken_over_once_its_lease_expires(make_client: Any, tmp_path: Path) -> None:
    client = make_client(config=_config())
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_chain(log, gate), 1)
    eventually(lambda: "b" in lines(log), what="step b to start")
    pid = eventually(lambda: worker_pid(client, handle.run_id), what="the worker's pid")

    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        touch(gate)  # b finishes, but its result reaches only the frozen worker
        record = handle.wait(timeout=TAKEOVER_DEADLINE)
        took = time.monotonic() - frozen_at
        assert record.status is runner.RunStatus.COMPLETED, f"not finished {took:.1f}s after the freeze"
        print(f"\nfrozen worker: the run finished {took:.2f}s after the freeze (lease_ttl {LEASE_TTL:g}s)")
        assert handle.result(timeout=1) == (1 + 1) * 10 + 3
        history = handle.history()
        assert_gapless(history)
        assert sorted(facts(history)) == [("a", None), ("b", None), ("c", None)]  # each recorded once
        first, again = _leases_of_b(history)  # b was dispatched again under the new worker's lease
        assert again > first
        effects = collections.Counter(lines(log))
        assert effects["a"] == 1 and effects["c"] == 1 and 1 <= effects["b"] <= 2
        outcome: Outcome | None = last_outcome(client, handle.run_id)
        assert outcome is not None and outcome.status == "completed"
        assert [key for key in outcome.recovery.redispatched] == [("b", None)]
        assert client.stats().restarts == 1  # the frozen worker counts as a worker loss
    finally:
        _continue(pid)  # the zombie wakes (if the kill has not ended it yet) ...

    eventually(lambda: not alive(pid), what="the frozen worker's process to end")
    # ... and nothing it did landed: its result of b, its lease renewals, its appends were fenced
    assert handle.history() == history
    record = handle.wait(timeout=1)
    assert record.status is runner.RunStatus.COMPLETED and record.lease > first


@pytest.mark.slow  # make chaos; the pure rule is tested in tests/test_supervision.py and tests/test_pool.py
def test_a_frozen_idle_worker_given_a_run_is_found_by_a_probe(make_client: Any, tmp_path: Path) -> None:
    """A worker frozen while idle never takes its next run over (no lease of its own expires):
    it fails the Runner's probe, and the run goes to another worker without counting as a loss."""
    client = make_client(config=_config(), max_workers=1)
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    touch(gate)
    first = client.submit(_chain(log, gate), 1)
    assert first.result(timeout=60) == 23
    [idle] = ray.get(client.runner.worker_handles.remote())
    pid = ray.get(idle.pid.remote())

    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        second = client.submit(_chain(log, gate), 2)
        record = second.wait(timeout=TAKEOVER_DEADLINE)
        took = time.monotonic() - frozen_at
        assert record.status is runner.RunStatus.COMPLETED, f"not finished {took:.1f}s after the freeze"
        print(f"\nfrozen idle worker: the next run finished {took:.2f}s after the freeze")
        assert second.result(timeout=1) == 33
        assert sorted(facts(second.history())) == [("a", None), ("b", None), ("c", None)]
        stats = client.stats()
        assert stats.restarts == 0  # the run never ran on it: not the run's fault
        assert stats.workers_started == 2
    finally:
        _continue(pid)
    eventually(lambda: not alive(pid), what="the frozen worker's process to end")


@pytest.mark.slow  # make chaos: a frozen worker's run taken over stays in make test
def test_signal_and_cancel_of_a_run_on_a_frozen_worker_do_not_wait_for_it(make_client: Any, tmp_path: Path) -> None:
    """No Runner call waits on a worker without a bound: a signal is stored and answered at
    once, and a cancel ends the run under the Runner's own lease once the worker is found lost."""
    lease_ttl = 8.0  # the worker is not found lost before 8 s: a signal that waited for it would take that long
    client = make_client(config=RunnerConfig(max_workers=2, worker=WorkerConfig(lease_ttl=lease_ttl)))
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_chain(log, gate), 1)
    eventually(lambda: "b" in lines(log), what="step b to start")
    pid = eventually(lambda: worker_pid(client, handle.run_id), what="the worker's pid")

    os.kill(pid, signal.SIGSTOP)
    try:
        asked = time.monotonic()
        assert handle.signal("nudge", 1) >= 1
        answered = time.monotonic() - asked
        assert answered < lease_ttl - 1, f"the signal waited {answered:.1f}s: it waited for the frozen worker"
        assert alive(pid) and client.stats().restarts == 0  # answered while the worker was still frozen
        record = handle.cancel()
        assert record.status is runner.RunStatus.CANCELLED
        history = handle.history()
        assert_gapless(history)
        assert [n for n, _ in facts(history)] == ["a"]  # b's result never reached the log
        assert handle.status() is runner.RunStatus.CANCELLED
    finally:
        _continue(pid)
    eventually(lambda: not alive(pid), what="the frozen worker's process to end")
    assert handle.history() == history
