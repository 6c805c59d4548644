"""Continuations into a whole workflow on Ray: the sub-workflow runs as a child run in the step's
place, its result flows on, and a step that continues into its own workflow recurses level by level."""

from __future__ import annotations

from typing import Any

import pytest
from ray_support import assert_gapless

import runner
from runner.events import ChildRunEnded, ChildRunStarted, StepStarted

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 90
LEVELS = 2


def _countdown() -> runner.Workflow:
    """Each run adds its ``n`` and continues into this same workflow with ``n - 1`` until 0."""
    wf = runner.Workflow("countdown_ray")

    @wf.step()
    def go(state: dict[str, int]) -> Any:
        if state["n"] == 0:
            return state["total"]
        return runner.continuation(wf, {"n": state["n"] - 1, "total": state["total"] + state["n"]})

    return wf


def _parent() -> runner.Workflow:
    wf = runner.Workflow("continues_into_countdown")

    @wf.step()
    def start(n: int) -> Any:
        return runner.continuation(_countdown(), {"n": n, "total": 0})

    @wf.step(after=start)
    def report(total: int) -> str:
        return f"total {total}"

    return wf


def test_a_step_continues_into_a_workflow_that_recurses(shared_client: runner.Client) -> None:
    client = shared_client
    handle = client.submit(_parent(), LEVELS)
    assert handle.result(timeout=RESULT_TIMEOUT) == f"total {sum(range(LEVELS + 1))}"
    history = handle.history()
    assert_gapless(history)
    [start] = [s.event for s in history if isinstance(s.event, ChildRunStarted)]
    assert start.node == "start" and start.sub_workflow is not None
    [ended] = [s.event for s in history if isinstance(s.event, ChildRunEnded)]
    assert ended.status == "completed" and ended.result == sum(range(LEVELS + 1))
    assert sum(isinstance(s.event, StepStarted) and s.event.node == "start" for s in history) == 1
    # one child run per level, each linked to the one before, each with a short history of its own
    run_id, depth = start.child_run_id, 0
    while True:
        child = client.get(run_id)
        assert child.status() is runner.RunStatus.COMPLETED
        events = child.history()
        assert len(events) <= 8  # submitted, started, continued (a child), suspended, resumed, ended, completed
        nested = [s.event for s in events if isinstance(s.event, ChildRunStarted)]
        if not nested:
            break
        run_id, depth = nested[0].child_run_id, depth + 1
    assert depth == LEVELS
