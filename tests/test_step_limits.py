"""A workflow's ``max_concurrency``: at most n steps of a run in flight at once, chosen by step
priority, then definition order. Driven through ``plan_cycle`` with a fake clock: pure."""

from __future__ import annotations

import random
from typing import Any

import pytest

from runner.cycle import outcome_events, plan_cycle
from runner.errors import DefinitionError
from runner.events import RunSubmitted, StepStarted, number
from runner.execution import StepResult
from runner.planning import Task
from runner.state import WorkflowState
from runner.store import RunStatus
from runner.workflow import Workflow

LEASE = 3


def drive(wf: Workflow, input: Any = None, *, seed: int = 1) -> tuple[WorkflowState, list[StepStarted], int]:
    """Run ``wf`` to its end: each cycle starts what ``plan_cycle`` gives, then a random few of
    the tasks in flight finish. The state, every StepStarted in order, and the most in flight."""
    rng = random.Random(seed)
    submitted = RunSubmitted(workflow=wf.name, input=input, definition_hash=wf.definition_hash(), at=0.0)
    state = WorkflowState.from_events(wf, number("run", [submitted]))
    in_flight: dict[tuple[str, int | None], Task] = {}
    starts: list[StepStarted] = []
    most = 0
    now = 0.0
    while not state.is_finished:
        plan = plan_cycle(state, now, in_flight=in_flight.keys(), lease=LEASE)
        starts += [s.event for s in plan.events if isinstance(s.event, StepStarted)]
        for task in plan.tasks:
            in_flight[task.key] = task
        most = max(most, len(in_flight))
        if plan.stop is not None:
            break
        assert in_flight, "nothing in flight and nothing started: the run is stuck"
        now += 1.0
        for key in rng.sample(sorted(in_flight, key=str), rng.randint(1, len(in_flight))):
            task = in_flight.pop(key)
            value = [task.inputs[0]] * task.inputs[0] if task.node == "source" else task.inputs[0]
            for event in outcome_events(state, task, StepResult(value=value), now):
                state.record(event)
    return state, starts, most


def check_a_map_never_has_more_than_n_in_flight(items: int) -> None:
    wf = Workflow("big_map", max_concurrency=7)
    wf.step(lambda n: n, name="source")
    wf.map(lambda item: item, name="each", after="source")
    state, starts, most = drive(wf, items)
    assert state.status is RunStatus.COMPLETED
    assert most == 7
    assert sorted(s.item for s in starts if s.node == "each") == list(range(items))


def test_a_map_of_a_thousand_items_never_has_more_than_n_in_flight() -> None:
    check_a_map_never_has_more_than_n_in_flight(1_000)


@pytest.mark.slow  # ~5 s: 20,000 events folded one by one
def test_a_map_of_ten_thousand_items_never_has_more_than_n_in_flight() -> None:
    check_a_map_never_has_more_than_n_in_flight(10_000)


def test_without_a_limit_every_runnable_step_starts_at_once() -> None:
    wf = Workflow("wide")
    wf.step(lambda n: n, name="source")
    wf.map(lambda item: item, name="each", after="source")
    _, _, most = drive(wf, 50)
    assert most == 50


def test_higher_priority_steps_start_first_then_definition_order() -> None:
    wf = Workflow("prio", max_concurrency=1)
    for name, priority in (("a", 0), ("b", 5), ("c", 0), ("d", 9), ("e", 5)):
        wf.step(lambda x: x, name=name, priority=priority)
    state, starts, most = drive(wf, 1)
    assert state.status is RunStatus.COMPLETED and most == 1
    assert [s.node for s in starts] == ["d", "b", "e", "a", "c"]


def test_a_limit_of_two_runs_two_branches_of_a_diamond_and_joins_them() -> None:
    wf = Workflow("diamond", max_concurrency=2)
    wf.step(lambda x: x, name="top")
    for name in ("l1", "l2", "l3"):
        wf.step(lambda x: x, name=name, after="top")
    wf.step(lambda a, b, c: a + b + c, name="join", after=["l1", "l2", "l3"])
    state, starts, most = drive(wf, 2)
    assert state.status is RunStatus.COMPLETED and most == 2
    assert [s.node for s in starts][-1] == "join"


@pytest.mark.parametrize("bad", [0, -3, True, 2.5, "4"])
def test_a_bad_max_concurrency_is_a_definition_error_naming_it(bad: Any) -> None:
    with pytest.raises(DefinitionError, match="max_concurrency") as caught:
        Workflow("w", max_concurrency=bad)
    assert caught.value.component == "max_concurrency"
