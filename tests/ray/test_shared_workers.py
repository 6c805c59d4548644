"""One worker drives several runs at once; losing it restarts each of them on a worker of its own."""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from ray_support import assert_gapless, eventually, lines, touch, worker_pid

import runner
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = pytest.mark.ray


def _gated(log: str, gate: str) -> runner.Workflow:
    """first -> slow (blocks until ``gate`` exists) -> last."""
    wf = runner.Workflow("shared")

    @wf.step()
    def first(x: int) -> int:
        _mark(log, f"first-{x}")
        return x + 1

    @wf.step(after=first)
    def slow(x: int) -> int:
        _mark(log, "slow")
        _wait_for_file(gate)
        return x * 10

    @wf.step(after=slow)
    def last(x: int) -> int:
        return x + 5

    return wf


def test_one_worker_drives_up_to_runs_per_worker_runs_at_once(make_client: Any, tmp_path: Path) -> None:
    client = make_client(config=RunnerConfig(max_workers=1, runs_per_worker=3))
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handles = [client.submit(_gated(log, gate), i) for i in range(5)]

    eventually(lambda: lines(log).count("slow") == 3, what="three runs to be in their slow step")
    stats = client.stats()
    assert (stats.live_workers, stats.busy_workers, stats.pending) == (1, 1, 2)
    pids = {worker_pid(client, h.run_id) for h in handles[:3]}
    assert len(pids) == 1 and None not in pids  # the same worker process drives all three
    assert [h.status() for h in handles[3:]] == [runner.RunStatus.PENDING] * 2

    touch(gate)
    assert [h.result(timeout=60) for h in handles] == [(i + 1) * 10 + 5 for i in range(5)]
    stats = client.stats()
    assert stats.workers_started == 1 and stats.peak_workers == 1
    assert stats.start_order == tuple(h.run_id for h in handles)
    for handle in handles:
        assert_gapless(handle.history())


def test_a_lost_worker_restarts_each_of_its_runs_on_a_worker_of_its_own(make_client: Any, tmp_path: Path) -> None:
    client = make_client(config=RunnerConfig(max_workers=1, runs_per_worker=4, restart_backoff=0.05))
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    one, two = client.submit(_gated(log, gate), 1), client.submit(_gated(log, gate), 2)
    eventually(lambda: lines(log).count("slow") == 2, what="both runs to be in their slow step")
    pid = worker_pid(client, one.run_id)
    assert pid is not None and pid == worker_pid(client, two.run_id)

    os.kill(pid, signal.SIGKILL)

    # Both runs are restarted; the first back runs alone, the other waits for a worker of its own
    # (max_workers=1) instead of sharing, even though runs_per_worker would allow it.
    eventually(lambda: lines(log).count("slow") == 3, what="one run's slow step to be dispatched again")
    stats = client.stats()
    assert (stats.live_workers, stats.pending, stats.restarts) == (1, 1, 2)
    statuses = collections.Counter(h.status() for h in (one, two))
    assert statuses == {runner.RunStatus.RUNNING: 2}  # the waiting one is still a running run, between workers

    touch(gate)
    assert (one.result(timeout=60), two.result(timeout=60)) == (25, 35)
    effects = collections.Counter(lines(log))
    assert effects["first-1"] == 1 and effects["first-2"] == 1  # recorded before the kill: never again
    assert effects["slow"] == 4  # each slow step was in flight at the kill and ran again
    for handle in (one, two):
        assert_gapless(handle.history())
