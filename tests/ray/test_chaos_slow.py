"""Chaos (slow, `make chaos`): workers that drive many runs are SIGKILLed again and again while a
batch of runs executes; every run finishes with the right result and every step result is
recorded exactly once."""

from __future__ import annotations

import collections
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import ray
from ray_support import assert_gapless, facts, lines

import runner
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STEPS = ("a", "b", "c", "d")
RUNS = 30
KILLS = 6


def _chain(log: str) -> runner.Workflow:
    wf = runner.Workflow("chaos")
    previous = None
    for name in STEPS:

        def step(x: int, name: str = name) -> int:
            _mark(log, f"{name}-{x // 1000}")
            time.sleep(0.05)  # long enough for kills to land mid-run
            return x + 1

        previous = wf.step(step, name=name, after=previous)
    return wf


def _worker_pids(client: runner.Client) -> list[int]:
    pids = []
    for handle in ray.get(client.runner.worker_handles.remote()):
        try:
            pids.append(ray.get(handle.pid.remote(), timeout=5))
        except Exception:  # dying already
            continue
    return pids


def test_repeated_worker_kills_lose_nothing_and_record_each_result_once(make_client: Any, tmp_path: Path) -> None:
    config = RunnerConfig(max_workers=2, runs_per_worker=8, restart_limit=50, restart_backoff=0.05)
    client = make_client(config=config)
    log = str(tmp_path / "effects.log")
    handles = [client.submit(_chain(log), i * 1000) for i in range(RUNS)]
    rng = random.Random(7)

    killed = 0
    deadline = time.monotonic() + 120
    while killed < KILLS and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.2, 0.5))
        if all(h.status().is_terminal for h in handles):
            break
        pids = _worker_pids(client)
        if pids:
            os.kill(rng.choice(pids), signal.SIGKILL)
            killed += 1

    results = client.results(handles, timeout=300)
    assert results == [i * 1000 + len(STEPS) for i in range(RUNS)]
    assert killed >= 3, "the runs finished before the chaos could start; make them longer"
    executions = collections.Counter(lines(log))
    for i, handle in enumerate(handles):
        history = handle.history()
        assert_gapless(history)
        assert sorted(facts(history)) == sorted((name, None) for name in STEPS)  # each result once
        for name in STEPS:
            assert executions[f"{name}-{i}"] >= 1
    assert client.stats().restarts >= killed  # every kill cost at least one run a restart
