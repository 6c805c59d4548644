"""Continuations on Ray: a recursive loop survives its worker's SIGKILL, no recorded level runs again."""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path

from ray_support import alive, assert_gapless, eventually, facts, lines, touch, worker_pid

import runner
from runner.events import StepContinued
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

LEVELS = 6
GATED = 3  # the level that waits for the gate: the worker is killed while it runs


def _level(n: int, total: int, log: str, gate: str) -> object:
    """One level of the loop: marks itself, adds n, continues with n + 1 until LEVELS."""
    _mark(log, f"level-{n}")
    if n == GATED:
        _wait_for_file(gate)
    if n == LEVELS:
        return total
    return runner.continuation(_level, n + 1, total + n, log, gate)


def _looping(log: str, gate: str) -> runner.Workflow:
    wf = runner.Workflow("looping")

    @wf.step()
    def start(n: int) -> object:
        _mark(log, "start")
        return runner.continuation(_level, n, 0, log, gate)

    @wf.step(after=start)
    def done(total: int) -> int:
        return total * 10

    return wf


def test_a_recursive_continuation_survives_a_worker_sigkill(client: runner.Client, tmp_path: Path) -> None:
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_looping(log, gate), 1)
    eventually(lambda: f"level-{GATED}" in lines(log), what="the gated level to start")
    pid = eventually(lambda: worker_pid(client, handle.run_id), what="the worker's pid")

    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not alive(pid), what="the worker process to die")
    eventually(lambda: (worker_pid(client, handle.run_id) or pid) != pid, what="a replacement worker")
    touch(gate)

    assert handle.result(timeout=90) == sum(range(1, LEVELS)) * 10
    effects = collections.Counter(lines(log))
    recorded = ["start"] + [f"level-{n}" for n in range(1, GATED)]
    assert all(effects[name] == 1 for name in recorded), effects  # recorded before the kill: never again
    assert 1 <= effects[f"level-{GATED}"] <= 2  # the call in flight at the kill runs at least once
    history = handle.history()
    assert_gapless(history)
    levels = [s.event.level for s in history if isinstance(s.event, StepContinued)]
    assert levels == list(range(1, LEVELS + 1))
    assert facts(history) == [("start", None), ("done", None)]
