"""Child runs on Ray: one child however the parent's worker dies, its result flows on, a cancel cascades."""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path

import pytest
from ray_support import alive, assert_gapless, eventually, lines, touch, worker_pid

import runner
from runner.events import ChildRunEnded, ChildRunStarted
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 90


def _family(log: str, gate: str) -> runner.Workflow:
    """A parent whose step ``hold`` and whose child's step ``bill`` both wait for ``gate``."""
    child = runner.Workflow("billing_child")

    @child.step()
    def bill(amount: int) -> int:
        _mark(log, "bill")
        _wait_for_file(gate)
        return amount * 2

    wf = runner.Workflow("family")

    @wf.step()
    def hold(amount: int) -> int:
        _mark(log, "hold")
        _wait_for_file(gate)
        return amount

    wf.child_run(child, name="billing")

    @wf.step(after=[hold, "billing"])
    def total(held: int, billed: int) -> str:
        return f"{held} + {billed}"

    return wf


def test_a_parent_whose_worker_is_killed_while_its_child_runs_gets_one_child_and_its_result(
    client: runner.Client, tmp_path: Path
) -> None:
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_family(log, gate), 21)
    eventually(lambda: {"hold", "bill"} <= set(lines(log)), what="the parent's step and the child's to run")
    pid = eventually(lambda: worker_pid(client, handle.run_id), what="the parent's worker pid")

    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not alive(pid), what="the worker process to die")
    touch(gate)

    assert handle.result(timeout=RESULT_TIMEOUT) == "21 + 42"
    child_id = f"{handle.run_id}:billing"
    children = [r.run_id for r in client.list_runs(workflow="billing_child")]
    assert children.count(child_id) == 1 and len(children) == 1
    assert client.get(child_id).record().parent_run_id == handle.run_id
    history = handle.history()
    assert_gapless(history)
    assert [s.event.child_run_id for s in history if isinstance(s.event, ChildRunStarted)] == [child_id]
    ended = [s.event for s in history if isinstance(s.event, ChildRunEnded)]
    assert [(e.status, e.result) for e in ended] == [("completed", 42)]
    assert 1 <= collections.Counter(lines(log))["bill"] <= 2  # a child step in flight at the kill may run again


def test_cancelling_the_parent_cancels_its_child(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_family(log, gate), 5)
    eventually(lambda: "bill" in lines(log), what="the child's step to run")
    child = client.get(f"{handle.run_id}:billing")

    assert handle.cancel().status is runner.RunStatus.CANCELLED
    eventually(lambda: child.status() is runner.RunStatus.CANCELLED, what="the child to be cancelled")
    touch(gate)
