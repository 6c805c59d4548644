"""Continuations into a whole workflow, in the pure core: the expansion recorded as a child run's
start, the child's result as the step's, recovery that never runs the step again, recursion."""

from __future__ import annotations

from typing import Any

import pytest

import runner
from runner.continuation import SubWorkflow
from runner.errors import DefinitionError, InvalidArgument
from runner.events import ChildRunEnded, ChildRunStarted, FactRef, StepStarted, kind_of
from runner.serialization import decode_event, encode_event
from runner.state import WorkflowState
from runner.testing.inprocess import InProcessRun, drive

# ------------------------------------------------------------- workflows
billing = runner.Workflow("billing")


@billing.step()
def price(order: dict) -> float:
    return order["qty"] * 2.5


@billing.step(after=price)
def charge(amount: float) -> dict:
    return {"charged": amount}


orders = runner.Workflow("orders")


@orders.step()
def prepare(order: dict) -> Any:
    return runner.continuation(billing, {"qty": order["qty"] + 1})


@orders.step(after=prepare)
def confirm(payment: dict) -> str:
    return f"charged {payment['charged']}"


countdown = runner.Workflow("countdown")


@countdown.step()
def go(state: dict) -> Any:
    """Recursion: each level continues into this same workflow, one run deeper."""
    if state["n"] == 0:
        return state["total"]
    return runner.continuation(countdown, {"n": state["n"] - 1, "total": state["total"] + state["n"]})


failing = runner.Workflow("failing")


@failing.step()
def broken(x: Any) -> Any:
    raise runner.NonRetryableError("the card was declined")


def continuing_into_failure(on_failure: str = "halt") -> runner.Workflow:
    wf = runner.Workflow("parent_of_failure")
    first = wf.step(lambda x: runner.continuation(failing, x), name="first", on_failure=on_failure)
    wf.step(lambda v: "after", name="after", after=first)
    return wf


def started(run: InProcessRun) -> list[ChildRunStarted]:
    return [s.event for s in run.log if isinstance(s.event, ChildRunStarted)]


# ---------------------------------------------------------------- the API
def test_a_continuation_of_a_workflow_takes_one_input():
    assert runner.continuation(billing, {"qty": 1}) == SubWorkflow(billing, {"qty": 1})
    assert runner.continuation(billing) == SubWorkflow(billing, None)
    with pytest.raises(InvalidArgument, match=r"takes one input, continuation\(workflow, input\)"):
        runner.continuation(billing, 1, 2)
    with pytest.raises(InvalidArgument, match="takes one input"):
        runner.continuation(billing, qty=1)
    with pytest.raises(DefinitionError, match="has no components"):
        runner.continuation(runner.Workflow("empty"), 1)


# ------------------------------------------------------------- running it
def test_the_sub_workflow_runs_as_a_child_and_its_result_is_the_steps():
    run = drive(orders, {"qty": 3})
    assert run.state.status == "completed" and run.state.result == "charged 10.0"
    [start] = started(run)
    assert start.node == "prepare" and start.child_run_id == "run-1:prepare"
    assert isinstance(start.sub_workflow, FactRef)
    assert decode_event(*encode_event(start)) == start
    ended = [s.event for s in run.log if isinstance(s.event, ChildRunEnded)]
    assert [(e.node, e.status, e.result) for e in ended] == [("prepare", "completed", {"charged": 10.0})]
    assert run.state.children() == {"prepare": "run-1:prepare"}
    child = run.children["prepare"]
    assert child.state.parent_run_id == "run-1" and child.state.input == {"qty": 4}
    assert run.state.results()["prepare"] == {"charged": 10.0}


def test_recovery_after_the_expansion_never_runs_the_step_again():
    run = drive(orders, {"qty": 3})
    cut = next(s.seq for s in run.log if isinstance(s.event, ChildRunStarted))
    recovered = WorkflowState.from_events(orders, run.log[:cut])
    assert recovered.runnables() == []  # the step's task is done: it waits for its child only
    assert recovered.open_children() == {"prepare": "run-1:prepare"}
    assert recovered.sub_workflow("prepare") == started(run)[0].sub_workflow
    assert {s.name: s.status for s in recovered.steps()}["prepare"] == "waiting"
    restored = WorkflowState.restore(orders, recovered.snapshot())
    assert restored.runnables() == [] and restored.sub_workflow("prepare") == recovered.sub_workflow("prepare")
    assert sum(isinstance(s.event, StepStarted) and s.event.node == "prepare" for s in run.log) == 1


def test_recursion_runs_one_short_run_per_level():
    run = drive(countdown, {"n": 20, "total": 0})
    assert run.state.result == sum(range(21))
    depth, level = 0, run
    while "go" in level.children:
        level = level.children["go"]
        depth += 1
        assert len(level.log) <= 6  # each level's own history stays short however deep it goes
    assert depth == 20
    assert max(len(r.log) for r in (run, level)) <= 6


def test_a_failed_sub_workflow_fails_the_step_without_retries():
    run = drive(continuing_into_failure(), 1)
    assert run.state.status == "failed"
    assert run.state.error is not None and run.state.error.type == "runner.errors.ChildRunFailed"
    assert "the card was declined" in run.state.error.message
    skipped = drive(continuing_into_failure("skip"), 1)
    assert skipped.state.status == "completed"
    assert skipped.state.results()["first"] is runner.SKIPPED


def test_a_map_item_may_not_continue_into_a_workflow():
    wf = runner.Workflow("mapping")
    items = wf.step(lambda x: [1, 2], name="items")
    wf.map(lambda i: runner.continuation(billing, {"qty": i}), name="each", after=items)
    run = drive(wf, None)
    assert run.state.status == "failed"
    assert run.state.error is not None and "only a step's own code may continue into a workflow" in (
        run.state.error.message
    )
    assert not started(run)


def test_the_expansion_is_a_checkpoint_boundary():
    run = InProcessRun(orders, {"qty": 1}, checkpoint="on_complete")
    run.run()
    assert run.state.result == "charged 5.0"
    assert "ChildRunStarted" in [kind_of(s.event) for s in run.log[: run.appended]]
