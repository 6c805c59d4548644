"""Child runs, pure: ids, planning, fold, suspension and reopen (runner.child_runs)."""

from __future__ import annotations

import pytest

from runner import DefinitionError, Workflow
from runner.child_runs import CHILD_WAIT_REASON, child_run_id
from runner.cycle import TurnEnd, plan_cycle
from runner.errors import ChildRunFailed
from runner.events import (
    SKIPPED,
    ChildRunEnded,
    ChildRunStarted,
    ErrorInfo,
    RunReopened,
    RunSubmitted,
    RunSuspended,
    StoredEvent,
    number,
)
from runner.serialization import exception_of
from runner.startup_recovery import AtStart, suspended_at_start
from runner.state import WorkflowState
from runner.store import RUN_ID

PARENT = "orders-1"


def child_workflow() -> Workflow:
    wf = Workflow("billing")

    @wf.step()
    def bill(order):
        return order["amount"] * 2

    return wf


def parent_workflow(on_failure: str = "halt") -> Workflow:
    wf = Workflow("orders")

    @wf.step()
    def prepare(order):
        return {"amount": order}

    wf.child_run(child_workflow(), name="billing", after=prepare, on_failure=on_failure)

    @wf.step(after="billing")
    def report(total):
        return f"billed {total}"

    return wf


def started(wf: Workflow) -> WorkflowState:
    """The parent with ``prepare`` done: its state and the cycle that starts the child."""
    submitted = RunSubmitted(workflow=wf.name, input=21, definition_hash=wf.definition_hash(), at=0.0)
    state = WorkflowState.from_events(wf, number(PARENT, [submitted]))
    plan = plan_cycle(state, 1.0, lease=1)
    (task,) = plan.tasks
    for event in state.success_events(task, {"amount": 21}, 2.0):
        state.record(event)
    return state


def test_child_run_id_is_the_parent_and_the_component_and_always_a_valid_run_id():
    assert child_run_id(PARENT, "billing") == "orders-1:billing"
    assert child_run_id(PARENT, "billing") == child_run_id(PARENT, "billing")
    long_parent = "p" * 120
    long_id = child_run_id(long_parent, "billing")
    assert RUN_ID.match(long_id) and long_id == child_run_id(long_parent, "billing")
    assert long_id != child_run_id("q" * 120, "billing")


def test_a_child_run_starts_under_its_fixed_id_and_the_parent_suspends_until_it_ends():
    state = started(parent_workflow())
    plan = plan_cycle(state, 3.0, lease=1, suspend_after=5.0)
    events = [stored.event for stored in plan.events]
    assert events[0] == ChildRunStarted(node="billing", child_run_id="orders-1:billing", at=3.0)
    assert isinstance(events[-1], RunSuspended) and events[-1].reason.startswith(CHILD_WAIT_REASON)
    assert "orders-1:billing" in events[-1].reason and plan.stop is TurnEnd.SUSPENDED
    assert state.open_children() == {"billing": "orders-1:billing"}
    # recovery plans no second child
    again = WorkflowState.restore(state.workflow, state.snapshot())
    assert [e for e in again.advance(4.0) if isinstance(e, ChildRunStarted)] == []


def test_the_childs_result_is_the_components_and_flows_downstream():
    state = started(parent_workflow())
    plan_cycle(state, 3.0, lease=1, suspend_after=5.0)
    state.record(ChildRunEnded(node="billing", child_run_id="orders-1:billing", status="completed", result=42))
    assert state.open_children() == {}
    assert state.results()["billing"] == 42
    plan = plan_cycle(state, 5.0, lease=1)
    (task,) = plan.tasks
    assert task.node == "report" and task.inputs == (42,)
    assert state.children() == {"billing": "orders-1:billing"}


def failed_end() -> ChildRunEnded:
    from runner.child_runs import child_failed

    return child_failed("billing", "orders-1:billing", "failed", "ValueError: card declined")


def test_a_failed_child_fails_the_parent_with_child_run_failed_and_no_retry():
    state = started(parent_workflow())
    plan_cycle(state, 3.0, lease=1, suspend_after=5.0)
    state.record(failed_end())
    plan = plan_cycle(state, 4.0, lease=1)
    assert plan.stop is TurnEnd.FAILED
    assert state.error is not None and state.error.type == "runner.errors.ChildRunFailed"
    error = exception_of(state.error)
    assert isinstance(error, ChildRunFailed) and error.child_run_id == "orders-1:billing"
    assert "card declined" in str(error) and "resume" in str(error)
    assert [s.status for s in state.steps() if s.name == "billing"] == ["failed"]


def test_a_failed_child_with_on_failure_skip_skips_the_component():
    state = started(parent_workflow(on_failure="skip"))
    plan_cycle(state, 3.0, lease=1, suspend_after=5.0)
    state.record(failed_end())
    plan = plan_cycle(state, 4.0, lease=1)
    assert state.results()["billing"] is SKIPPED
    assert plan.stop is TurnEnd.COMPLETED  # report skipped as well: all its upstreams were skipped


def test_reopening_the_parent_looks_at_the_child_again():
    state = started(parent_workflow())
    plan_cycle(state, 3.0, lease=1, suspend_after=5.0)
    state.record(failed_end())
    plan_cycle(state, 4.0, lease=1)
    state.record(RunReopened(from_status="failed", reason="child resumed", at=5.0))
    assert state.open_children() == {"billing": "orders-1:billing"}  # the same child, not a new one
    assert not [e for e in state.advance(6.0) if isinstance(e, ChildRunStarted)]
    state.record(ChildRunEnded(node="billing", child_run_id="orders-1:billing", status="completed", result=42))
    assert state.results()["billing"] == 42


def test_a_child_run_definition_is_checked():
    wf = Workflow("orders")
    with pytest.raises(DefinitionError, match="child_run takes a runner.Workflow"):
        wf.child_run("billing")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="cannot run itself"):
        wf.child_run(wf)
    a = wf.step(lambda x: x, name="a")
    b = wf.step(lambda x: x, name="b")
    with pytest.raises(DefinitionError, match="at most one upstream"):
        wf.child_run(child_workflow(), after=[a, b])
    with pytest.raises(DefinitionError, match="on_failure"):
        wf.child_run(child_workflow(), on_failure="explode")


def test_the_definition_hash_follows_the_childs_code():
    assert parent_workflow().definition_hash() == parent_workflow().definition_hash()
    other = Workflow("orders")
    other.step(lambda order: {"amount": order}, name="prepare")
    changed = Workflow("billing")
    changed.step(lambda order: order["amount"] * 3, name="bill")
    other.child_run(changed, name="billing", after="prepare")
    other.step(lambda total: f"billed {total}", name="report", after="billing")
    assert other.definition_hash() != parent_workflow().definition_hash()


def test_a_runner_start_wakes_a_parent_waiting_for_its_child():
    suspended = RunSuspended(reason=f"{CHILD_WAIT_REASON} orders-1:billing", at=10.0)
    last = StoredEvent(run_id=PARENT, seq=5, event=suspended)
    assert suspended_at_start(last, [], now=20.0)[0] is AtStart.WAKE
    waiting = StoredEvent(run_id=PARENT, seq=5, event=RunSuspended(reason="waiting for signal go", at=10.0))
    assert suspended_at_start(waiting, [], now=20.0)[0] is AtStart.LEAVE


def test_an_end_for_a_child_that_is_not_open_cannot_fold():
    from runner.errors import FoldError

    state = started(parent_workflow())
    with pytest.raises(FoldError, match="not an open child"):
        state.record(ChildRunEnded(node="billing", child_run_id="orders-1:billing", status="completed", result=1))
    error = ErrorInfo(type="X", message="m")
    plan_cycle(state, 3.0, lease=1, suspend_after=5.0)
    with pytest.raises(FoldError, match="not an open child"):
        state.record(ChildRunEnded(node="billing", child_run_id="other", status="failed", error=error))


def test_the_in_process_runtime_runs_a_child_and_records_its_end():
    from runner.testing.inprocess import drive

    run = drive(parent_workflow(), 21, run_id=PARENT)
    assert run.state.is_finished and run.state.result == "billed 42"
    ended = [s.event for s in run.log if isinstance(s.event, ChildRunEnded)]
    assert [(e.child_run_id, e.status, e.result) for e in ended] == [("orders-1:billing", "completed", 42)]
    child = run.children["billing"]
    assert child.run_id == "orders-1:billing" and child.state.result == 42
    assert isinstance(child.log[0].event, RunSubmitted) and child.log[0].event.parent_run_id == PARENT


def test_the_in_process_runtime_fails_the_parent_when_its_child_fails():
    from runner.testing.inprocess import InProcessRun

    def intercept(task):
        if task.node == "bill":
            raise ValueError("card declined")
        return {"amount": 21}

    run = InProcessRun(parent_workflow(), 21, run_id=PARENT)
    run.run(intercept)
    assert run.state.status.value == "failed"
    error = exception_of(run.state.error)
    assert isinstance(error, ChildRunFailed) and "card declined" in str(error)
    assert run.children["billing"].state.status.value == "failed"
