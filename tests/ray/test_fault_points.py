"""Fault points on a real Ray instance: the Store actor crashes right after a commit, or its disk is full.

This module starts its own Ray with ``RUNNER_FAULTS`` in the environment, so
every Ray process (the Store actor included) obeys the armings of this test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_support import alive, assert_gapless, eventually, facts, kill_runner

import runner
from runner import faults
from runner.client import Client, connect
from runner.events import StepStarted
from runner.faults import Action, FaultPoint

pytestmark = pytest.mark.ray


@pytest.fixture
def client(fault_dir: Path, tmp_path: Path) -> Iterator[Client]:
    faults.disarm(fault_dir)
    namespace = f"faults-{uuid.uuid4().hex[:12]}"
    made = connect(store="duckdb:///" + str(tmp_path / "s.duckdb"), namespace=namespace)
    yield made
    kill_runner(made)


def _chain() -> runner.Workflow:
    wf = runner.Workflow("fault-chain")

    @wf.step()
    def a(x: int) -> int:
        return x + 1

    @wf.step(after=a)
    def b(x: int) -> int:
        return x * 10

    return wf


def _run_id() -> str:
    return f"fault-chain-{uuid.uuid4().hex[:12]}"


def test_store_actor_killed_after_a_commit_keeps_the_committed_events(client: Client, fault_dir: Path) -> None:
    run_id = _run_id()
    faults.arm(fault_dir, FaultPoint.STORE_COMMITTED, Action.CRASH, run_id=run_id)
    handle = client.submit(_chain(), 1, run_id=run_id)

    [firing] = faults.wait_fired(fault_dir, FaultPoint.STORE_COMMITTED, timeout=60)
    assert run_id in firing.run_ids
    eventually(lambda: not alive(firing.pid), what="the Store actor process to die")

    # The crash came after the commit: the run's first append (its first step's start) is in the
    # store that the restarted Store actor opens, though its writer never got the receipt.
    history = eventually(lambda: handle.history(), timeout=60, what="the restarted Store actor to answer")
    starts = [s for s in history if isinstance(s.event, StepStarted)]
    assert starts and starts[0].seq == 2 and starts[0].event.node == "a"
    assert handle.result(timeout=90) == 20
    final = handle.history()
    assert_gapless(final)
    assert sorted(facts(final)) == [("a", None), ("b", None)]  # each result recorded once


def test_every_commit_of_a_run_crashing_before_its_reply_writes_nothing_twice(client: Client, fault_dir: Path) -> None:
    clean = client.submit(_chain(), 1, run_id=_run_id())
    assert clean.result(timeout=90) == 20
    run_id = _run_id()
    # the run makes three appends (a starts; a's result and b starts; b's result and the end):
    # the Store actor dies right after committing each one, before its caller hears of it
    faults.arm(fault_dir, FaultPoint.STORE_COMMITTED, Action.CRASH, run_id=run_id, times=3)
    handle = client.submit(_chain(), 1, run_id=run_id)

    assert handle.result(timeout=90) == 20

    assert len([f for f in faults.fired(fault_dir, FaultPoint.STORE_COMMITTED) if run_id in f.run_ids]) == 3
    history = handle.history()
    assert_gapless(history)
    # each committed batch is in the log once: the retried appends were answered with their
    # receipts, so the log reads exactly as a run without faults does
    assert [type(s.event).__name__ for s in history] == [type(s.event).__name__ for s in clean.history()]
    assert sorted(facts(history)) == [("a", None), ("b", None)]
    assert client.stats().restarts == 0  # the worker's calls were sent again; its turn never failed


def test_a_full_disk_at_commit_writes_nothing_of_that_commit(client: Client, fault_dir: Path) -> None:
    run_id = _run_id()
    faults.arm(fault_dir, FaultPoint.STORE_COMMIT, Action.RAISE, run_id=run_id)
    handle = client.submit(_chain(), 2, run_id=run_id)

    [firing] = faults.wait_fired(fault_dir, FaultPoint.STORE_COMMIT, timeout=60)
    assert firing.action is Action.RAISE and alive(firing.pid)  # the Store actor lives on
    # The refused commit wrote nothing; the disk has room again for the next worker turn.
    assert handle.result(timeout=90) == 30
    final = handle.history()
    assert_gapless(final)
    assert sorted(facts(final)) == [("a", None), ("b", None)]
    # the refused batch was the first step's start: it is in the log once, from the next turn
    starts = [s.event for s in final if isinstance(s.event, StepStarted)]
    assert [start.node for start in starts] == ["a", "b"]
    stats = client.stats()
    # the failed append ended that worker turn as a store outage, not as a lost worker
    assert (stats.restarts, stats.store_outages) == (0, 1)
