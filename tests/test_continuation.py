"""Continuations in the pure core: the expansion as an event, its fold, its planning and recovery."""

from __future__ import annotations

import pytest

import runner
from runner.errors import FoldError, InvalidArgument
from runner.events import FactRef, RunSubmitted, StepContinued, StepStarted, kind_of, number
from runner.run_data import TaskStatus
from runner.serialization import decode_event, encode_event
from runner.state import WorkflowState
from runner.testing.inprocess import InProcessRun, drive
from runner.workflow import Workflow


# ----------------------------------------------------------- user code
def count_down(n: int, total: int) -> object:
    """A loop: one level per number, the running total carried along."""
    if n == 0:
        return total
    return runner.continuation(count_down, n - 1, total + n)


def factorial(n: int, acc: int = 1) -> object:
    return acc if n <= 1 else runner.continuation(factorial, n - 1, acc=acc * n)


FLAKY_CALLS: list[int] = []  # module level: a call is pickled, a local list would be copied


def flaky(x: int) -> int:
    FLAKY_CALLS.append(x)
    if len(FLAKY_CALLS) < 3:
        raise ConnectionError("not yet")
    return x * 10


def looping() -> Workflow:
    wf = Workflow("looping")

    @wf.step()
    def start(n):
        return runner.continuation(count_down, n, 0)

    @wf.step(after=start)
    def double(total):
        return 2 * total

    return wf


def kinds(run: InProcessRun) -> list[str]:
    return [kind_of(s.event) for s in run.log]


# ---------------------------------------------------------------- API
def test_continuation_rejects_what_it_cannot_call():
    with pytest.raises(InvalidArgument, match="continuation needs a function"):
        runner.continuation(42)
    # a workflow is continued into with one input (tests/test_sub_workflow_continuation.py)
    with pytest.raises(InvalidArgument, match=r"takes one input, continuation\(workflow, input\)"):
        runner.continuation(Workflow("other"), 1, 2)


# ------------------------------------------------------- running it
def test_a_continuation_result_becomes_the_step_result():
    wf = Workflow("fact")
    wf.step(lambda n: runner.continuation(factorial, n), name="fact")
    run = drive(wf, 6)
    assert run.state.status == "completed" and run.state.result == 720
    continued = [s.event for s in run.log if isinstance(s.event, StepContinued)]
    assert [e.level for e in continued] == [1, 2, 3, 4, 5, 6]
    assert kinds(run)[:4] == ["RunSubmitted", "StepStarted", "StepContinued", "StepStarted"]
    assert kinds(run)[-2:] == ["FactProduced", "RunCompleted"]


def test_thousands_of_levels_keep_the_state_bounded():
    run = InProcessRun(looping(), 3000)
    snapshots = []
    for _ in range(20_000):
        if run.state.is_finished:
            break
        run.step()
        if run.state.cursor in (101, 5001):  # early in the loop and deep in it
            snapshots.append(len(run.state.snapshot()))
    assert run.state.result == 2 * sum(range(3001))
    assert sum(isinstance(s.event, StepContinued) for s in run.log) == 3001
    assert len(snapshots) == 2 and snapshots[1] <= snapshots[0] + 64  # the task holds one call, however deep
    rec = run.state.task("start")
    assert (rec.status, rec.level, rec.attempt) == (TaskStatus.DONE, 3001, 1)


def test_recovery_runs_the_latest_recorded_call_and_nothing_before_it():
    """Fold the log cut after a StepContinued: the next task is that call, not the step's code."""
    run = InProcessRun(looping(), 5)
    for _ in range(6):  # start, continue a few levels
        run.step()
    cut = max(i for i, s in enumerate(run.log) if isinstance(s.event, StepContinued)) + 1
    state = WorkflowState.from_events(run.workflow, run.log[:cut])
    (task,) = state.runnables()
    last = run.log[cut - 1].event
    assert (task.node, task.call, task.level, task.attempt) == ("start", last.call, last.level, 1)
    assert state.ran() == {"start"}


def test_a_failed_call_is_retried_as_the_same_call_under_the_step_policy():
    FLAKY_CALLS.clear()
    wf = Workflow("flaky")
    wf.step(lambda x: runner.continuation(flaky, x + 1), name="go", retries=2, backoff="none")
    run = drive(wf, 1)
    assert run.state.result == 20 and FLAKY_CALLS == [2, 2, 2]
    started = [s.event.attempt for s in run.log if isinstance(s.event, StepStarted)]
    assert started == [1, 1, 2, 3]  # the step's attempt 1, then the call's attempts 1..3
    assert kinds(run).count("StepContinued") == 1  # the step's own code did not run again


def test_a_call_that_fails_for_good_fails_the_step_and_the_run():
    def broken(x):
        raise ValueError(f"bad {x}")

    wf = Workflow("broken")
    wf.step(lambda x: runner.continuation(broken, x), name="go")
    run = drive(wf, 3)
    assert run.state.status == "failed" and run.state.failed_node == "go"
    assert run.state.error.type == "ValueError" and run.state.error.message == "bad 3"


def test_a_fallback_may_not_continue():
    def fails(x):
        raise ValueError("no")

    wf = Workflow("fb")
    wf.step(fails, name="go", fallback=lambda x: runner.continuation(count_down, x, 0))
    run = drive(wf, 2)
    assert run.state.status == "failed"
    assert "returned a continuation" in run.state.error.message


def test_map_items_continue_on_their_own():
    wf = Workflow("mapped")
    wf.step(lambda n: list(range(n)), name="items")
    wf.map(lambda i: runner.continuation(count_down, i, 0), name="each", after="items")
    run = drive(wf, 4)
    assert run.state.result == [0, 1, 3, 6]
    continued = {(s.event.item, s.event.level) for s in run.log if isinstance(s.event, StepContinued)}
    assert (3, 4) in continued and (0, 1) in continued


# ---------------------------------------------------------------- fold
def test_the_fold_refuses_a_continuation_that_cannot_follow():
    wf = looping()
    submitted = RunSubmitted(workflow=wf.name, input=1, definition_hash=wf.definition_hash(), at=0.0)
    ref = FactRef(hash="a" * 64, size=10)
    with pytest.raises(FoldError, match="not running"):
        WorkflowState.from_events(
            wf, number("r", [submitted, StepContinued(node="start", attempt=1, call=ref, level=1)])
        )
    started = StepStarted(node="start", attempt=1, lease=1)
    with pytest.raises(FoldError, match="at level 2"):
        WorkflowState.from_events(
            wf, number("r", [submitted, started, StepContinued(node="start", attempt=1, call=ref, level=2)])
        )


def test_step_continued_round_trips_through_its_encoding():
    event = StepContinued(node="start", item=2, attempt=3, call=FactRef(hash="b" * 64, size=99), level=7, at=1.5)
    assert decode_event(*encode_event(event)) == event
