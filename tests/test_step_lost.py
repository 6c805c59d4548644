"""Tasks lost to the system (a node or worker process died under them): recorded as StepLost,
run again with the same attempt without spending the step's retries, under a budget of their
own (``system_retries``); past it the step fails with StepLostError. Pure: in-process runs and
hand-built logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runner.errors import FoldError, StepLostError
from runner.events import (
    ErrorInfo,
    FactProduced,
    MapExpanded,
    RunFailed,
    RunSubmitted,
    StepFailed,
    StepLost,
    StepStarted,
    StoredEvent,
    kind_of,
    number,
)
from runner.execution import StepResult, run_task
from runner.planning import Task
from runner.serialization import exception_of
from runner.state import WorkflowState
from runner.testing.inprocess import InProcessRun
from runner.workflow import Workflow

RUN = "run-1"
NODE_DIED = ErrorInfo(type="ray.exceptions.NodeDiedError", message="the node running the task died")


def lose(times: dict[tuple[str, int | None], int], wf: Workflow) -> Callable[[Task], Any]:
    """An interceptor: the first ``times[key]`` runs of each task are lost, later ones run the step."""
    runs: dict[tuple[str, int | None], int] = {}

    def intercept(task: Task) -> Any:
        runs[task.key] = runs.get(task.key, 0) + 1
        if runs[task.key] <= times.get(task.key, 0):
            return StepResult(error=NODE_DIED, lost=True)
        return run_task(wf.nodes[task.node], task, task.inputs)

    return intercept


def shape(log: list[StoredEvent]) -> list[tuple[str, str | None, int | None, int | None]]:
    return [
        (
            kind_of(s.event),
            getattr(s.event, "node", None),
            getattr(s.event, "item", None),
            getattr(s.event, "attempt", None),
        )
        for s in log
        if kind_of(s.event) in ("StepStarted", "StepLost", "StepFailed", "FactProduced")
    ]


def chain(retries: int = 0, fallback: Callable[..., Any] | None = None) -> Workflow:
    wf = Workflow("chain")

    @wf.step(retries=retries, fallback=fallback)
    def fetch(x):
        return x + 1

    @wf.step(after=fetch)
    def keep(x):
        return x * 10

    return wf


def fan() -> Workflow:
    wf = Workflow("fan")

    @wf.step()
    def items(n):
        return list(range(n))

    @wf.map(after=items)
    def square(i):
        return i * i

    @wf.reduce(after=square)
    def total(xs):
        return sum(xs)

    return wf


def test_a_lost_task_runs_again_with_the_same_attempt() -> None:
    wf = chain()
    run = InProcessRun(wf, 1)
    state = run.run(lose({("fetch", None): 2}, wf))

    assert state.status == "completed" and state.result == 20
    assert shape(run.log)[:6] == [
        ("StepStarted", "fetch", None, 1),
        ("StepLost", "fetch", None, 1),
        ("StepStarted", "fetch", None, 1),
        ("StepLost", "fetch", None, 1),
        ("StepStarted", "fetch", None, 1),
        ("FactProduced", "fetch", None, 1),
    ]
    lost = [s.event for s in run.log if isinstance(s.event, StepLost)]
    assert all(e.error == NODE_DIED and not e.fallback for e in lost)
    fetch = {s.name: s for s in state.steps()}["fetch"]
    assert (fetch.status, fetch.attempts, fetch.lost) == ("done", 1, 2)
    assert WorkflowState.from_events(wf, run.log) == state  # the log folds to the live state


def test_losses_do_not_spend_the_steps_retries() -> None:
    calls: list[int] = []

    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise ConnectionError("the step's own failure")
        return x

    wf = Workflow("flaky")
    wf.step(flaky, retries=1, backoff="none")
    run = InProcessRun(wf, 5)
    state = run.run(lose({("flaky", None): 3}, wf))

    assert state.status == "completed" and state.result == 5
    assert [k for k in shape(run.log) if k[0] != "StepStarted"] == [
        ("StepLost", "flaky", None, 1),
        ("StepLost", "flaky", None, 1),
        ("StepLost", "flaky", None, 1),
        ("StepFailed", "flaky", None, 1),  # its own failure spends its one retry
        ("FactProduced", "flaky", None, 2),
    ]


def test_past_its_budget_the_step_fails_with_step_lost_error_and_no_retry() -> None:
    wf = chain(retries=3)
    run = InProcessRun(wf, 1, system_retries=2)
    state = run.run(lose({("fetch", None): 100}, wf))

    assert state.status == "failed" and state.failed_node == "fetch"
    assert [k[0] for k in shape(run.log)] == [
        "StepStarted",
        "StepLost",
        "StepStarted",
        "StepLost",
        "StepStarted",
        "StepFailed",
    ]
    failed = [s.event for s in run.log if isinstance(s.event, StepFailed)][0]
    assert failed.retry_at is None and failed.error.non_retryable  # the step's 3 retries are not tried
    assert failed.error.type == "runner.errors.StepLostError"
    error = exception_of(failed.error)
    assert isinstance(error, StepLostError) and error.losses == 3
    assert "'fetch' was lost to the system 3 times" in str(error) and "NodeDiedError" in str(error)
    assert isinstance(run.log[-1].event, RunFailed) and run.log[-1].event.error == failed.error


def test_a_budget_of_zero_fails_the_first_loss_and_the_fallback_stands_in() -> None:
    wf = chain(fallback=lambda x: -1)
    run = InProcessRun(wf, 1, system_retries=0)
    state = run.run(lose({("fetch", None): 1}, wf))

    assert state.status == "completed" and state.result == -10
    assert [k[0] for k in shape(run.log)][:4] == ["StepStarted", "StepFailed", "StepStarted", "FactProduced"]
    fallback = [s.event for s in run.log if isinstance(s.event, FactProduced) and s.event.node == "fetch"][0]
    assert fallback.fallback and fallback.value == -1


def test_a_lost_fallback_runs_again_as_the_fallback() -> None:
    def broken(x: int) -> int:
        raise ValueError("no")

    wf = Workflow("fb")
    wf.step(broken, fallback=lambda x: 0)
    run = InProcessRun(wf, 1)
    lost = {"done": False}

    def intercept(task: Task) -> Any:
        if task.fallback and not lost["done"]:
            lost["done"] = True
            return StepResult(error=NODE_DIED, lost=True)
        return run_task(wf.nodes[task.node], task, task.inputs)

    state = run.run(intercept)
    assert state.status == "completed" and state.result == 0
    events = [s.event for s in run.log if isinstance(s.event, (StepLost, StepStarted, FactProduced, StepFailed))]
    assert [type(e).__name__ for e in events] == [
        "StepStarted",
        "StepFailed",
        "StepStarted",
        "StepLost",
        "StepStarted",
        "FactProduced",
    ]
    assert events[3].fallback and events[5].fallback


def test_a_lost_map_item_runs_again_and_the_others_are_untouched() -> None:
    wf = fan()
    run = InProcessRun(wf, 3)
    state = run.run(lose({("square", 1): 1}, wf))

    assert state.status == "completed" and state.result == 0 + 1 + 4
    square = [k for k in shape(run.log) if k[1] == "square"]
    assert square.count(("StepStarted", "square", 1, 1)) == 2
    assert square.count(("StepLost", "square", 1, 1)) == 1
    assert [k for k in square if k[0] == "FactProduced"] == [
        ("FactProduced", "square", 0, 1),
        ("FactProduced", "square", 2, 1),
        ("FactProduced", "square", 1, 1),
    ]
    info = {s.name: s for s in state.steps()}["square"]
    assert (info.attempts, info.lost) == (3, 1)


# ---------------------------------------------------------------- the fold
def lost(node: str, attempt: int = 1, item: int | None = None, fallback: bool = False) -> StepLost:
    return StepLost(node=node, attempt=attempt, item=item, error=NODE_DIED, fallback=fallback, at=0.0)


def started(node: str, attempt: int = 1, item: int | None = None) -> StepStarted:
    return StepStarted(node=node, attempt=attempt, lease=1, item=item, at=0.0)


def fold(wf: Workflow, *events: Any) -> WorkflowState:
    head = RunSubmitted(workflow=wf.name, input=1, definition_hash=wf.definition_hash(), at=0.0)
    return WorkflowState.from_events(wf, number(RUN, [head, *events]))


def test_the_fold_puts_a_lost_task_back_as_ready_with_its_attempt() -> None:
    wf = chain(retries=2)
    state = fold(wf, started("fetch"), StepFailed(node="fetch", attempt=1, error=NODE_DIED, retry_at=0.0, at=0.0))
    state.apply(number(RUN, [started("fetch", attempt=2), lost("fetch", attempt=2)], first=state.cursor + 1)[0])
    state.apply(number(RUN, [lost("fetch", attempt=2)], first=state.cursor + 1)[0])
    rec = state.task("fetch")
    assert rec is not None and (rec.status, rec.attempt, rec.lost) == ("lost", 2, 1)
    assert state.started() == []
    assert state.runnables() == [Task(node="fetch", attempt=2, inputs=(1,))]
    steps = {s.name: s for s in state.steps()}
    assert (steps["fetch"].status, steps["fetch"].attempts, steps["fetch"].lost) == ("ready", 2, 1)
    assert WorkflowState.restore(wf, state.snapshot()) == state  # lost counts survive a snapshot


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ((lost("fetch"),), "StepLost for 'fetch' which is waiting, not running"),
        ((started("fetch"), lost("fetch"), lost("fetch")), "StepLost for 'fetch' which is lost, not running"),
        (
            (started("fetch"), FactProduced(node="fetch", value=2, at=0.0), lost("fetch")),
            "already has a result|which is done",
        ),
        ((started("fetch"), lost("fetch", attempt=2)), "StepLost of attempt 2 for 'fetch', whose attempt is 1"),
        ((started("fetch"), lost("fetch", fallback=True)), "StepLost for 'fetch' which is running, not fallback"),
        ((started("fetch"), lost("fetch"), started("fetch", attempt=2)), "whose attempt 1 was lost to the system"),
        ((lost("keep"),), "StepLost for 'keep' which is waiting"),
        ((lost("nope"),), "does not have"),
    ],
    ids=[
        "not-started",
        "lost-twice",
        "done",
        "other-attempt",
        "not-a-fallback",
        "restart-as-a-retry",
        "downstream",
        "unknown",
    ],
)
def test_the_fold_refuses_a_step_lost_that_cannot_follow(events: tuple[Any, ...], message: str) -> None:
    wf = chain(retries=2)
    with pytest.raises(FoldError, match=message):
        fold(wf, *events)


def test_the_fold_refuses_a_lost_map_item_that_is_not_running() -> None:
    wf = fan()
    head = (
        started("items"),
        FactProduced(node="items", value=[0, 1], at=0.0),
        MapExpanded(node="square", count=2, at=0.0),
    )
    state = fold(wf, *head, started("square", item=0), lost("square", item=0))
    assert state.runnables() == [
        Task(node="square", item=0, attempt=1, inputs=([0, 1],)),
        Task(node="square", item=1, attempt=1, inputs=([0, 1],)),
    ]
    with pytest.raises(FoldError, match=r"StepLost for 'square'\[1\] which is waiting, not running"):
        fold(wf, *head, lost("square", item=1))
    with pytest.raises(FoldError, match=r"not an item of expanded map"):
        fold(wf, *head, lost("square", item=5))
