"""Step and run deadlines in the pure core: retries stop at a step's deadline, recovery fails
what is past it, a run fails at its own, and a waiting run asks to be woken then."""

from __future__ import annotations

import datetime

import pytest

from runner.cycle import TurnEnd, plan_cycle
from runner.deadlines import run_deadline_at
from runner.errors import DefinitionError, InvalidArgument
from runner.events import RunFailed, RunSubmitted, RunSuspended, StepFailed, StepSkipped, StepStarted, number
from runner.state import WorkflowState
from runner.testing.inprocess import InProcessRun, drive
from runner.workflow import Workflow


def always_failing(**options: object) -> Workflow:
    wf = Workflow("deadlines")

    @wf.step(retries=10, backoff="exponential", backoff_base=10.0, backoff_max=100.0, **options)
    def call(x: object) -> object:
        raise ConnectionError("down")

    return wf


def events(run: InProcessRun, kind: type) -> list:
    return [s.event for s in run.log if isinstance(s.event, kind)]


def test_a_step_deadline_stops_retries_that_would_start_after_it():
    run = drive(always_failing(deadline=25.0))
    assert run.state.status == "failed"
    failures = events(run, StepFailed)
    # attempt 1 at 0 (retry at 10), attempt 2 at 10 (a retry at 30 would pass the deadline at 25)
    assert [(f.attempt, f.retry_at) for f in failures] == [(1, 10.0), (2, None)]
    [failed] = events(run, RunFailed)
    assert failed.node == "call" and failed.error.type == "runner.errors.DeadlineExceeded"
    assert "deadline of 25s" in failed.error.message
    assert failures[-1].error.type == "ConnectionError"  # the attempt's own error stays on record


def test_without_a_deadline_the_same_step_uses_every_retry():
    run = drive(always_failing())
    assert len(events(run, StepFailed)) == 11


def test_a_step_deadline_with_on_failure_skip_skips_the_step():
    run = drive(always_failing(deadline=25.0, on_failure="skip"))
    assert run.state.status == "completed"
    [skipped] = events(run, StepSkipped)
    assert skipped.node == "call" and "DeadlineExceeded" in skipped.reason


def one_step() -> Workflow:
    wf = Workflow("one")

    @wf.step(deadline=30.0, retries=3)
    def call(x: object) -> object:
        return x

    return wf


def test_recovery_fails_a_started_step_past_its_deadline_instead_of_dispatching_it_again():
    wf = one_step()
    log = number(
        "r1",
        [
            RunSubmitted(workflow="one", input=1, definition_hash=wf.definition_hash(), at=0.0),
            StepStarted(node="call", attempt=1, lease=1, at=0.0),
        ],
    )
    state = WorkflowState.from_events(wf, log)
    before = plan_cycle(state.copy(), 29.0, lease=2)
    assert [t.node for t in before.tasks] == ["call"]  # within its deadline: dispatched again
    plan = plan_cycle(state, 31.0, lease=2)
    assert plan.stop is TurnEnd.FAILED and not plan.tasks
    assert state.error is not None and state.error.type == "runner.errors.DeadlineExceeded"
    assert state.failed_node == "call"


def test_the_step_deadline_is_known_once_the_step_started():
    wf = one_step()
    state = WorkflowState.from_events(
        wf,
        number(
            "r1",
            [
                RunSubmitted(workflow="one", input=1, definition_hash=wf.definition_hash(), at=0.0),
                StepStarted(node="call", attempt=1, lease=1, at=5.0),
            ],
        ),
    )
    assert state.step_deadline_at("call") == 35.0


def waiting() -> Workflow:
    wf = Workflow("waiting")
    wf.wait_for("go", name="gate")
    return wf


def test_a_run_deadline_fails_a_run_that_waits_for_a_signal():
    run = InProcessRun(waiting(), deadline_at=50.0)
    state = run.run()
    assert state.status == "failed"
    [failed] = events(run, RunFailed)
    assert failed.error.type == "runner.errors.RunDeadlineExceeded" and failed.at == 50.0
    assert failed.node is None


def test_a_waiting_run_suspends_until_its_deadline_at_the_latest():
    wf = waiting()
    state = WorkflowState.from_events(
        wf,
        number(
            "r1", [RunSubmitted(workflow="waiting", input=None, definition_hash=wf.definition_hash(), deadline_at=80.0)]
        ),
    )
    plan = plan_cycle(state, 10.0, suspend_after=5.0, lease=1)
    assert plan.stop is TurnEnd.SUSPENDED and plan.wake_at == 80.0
    assert isinstance(plan.events[-1].event, RunSuspended) and plan.events[-1].event.wake_at == 80.0


def test_a_run_deadline_caps_the_wait_of_a_running_run():
    wf = one_step()
    state = WorkflowState.from_events(
        wf, number("r1", [RunSubmitted(workflow="one", input=1, definition_hash=wf.definition_hash(), deadline_at=9.0)])
    )
    plan = plan_cycle(state, 1.0, lease=1)
    assert [t.node for t in plan.tasks] == ["call"] and plan.wake_at == 9.0
    late = plan_cycle(state, 9.0, in_flight={("call", None)}, lease=1)
    assert late.stop is TurnEnd.FAILED  # the worker cancels what is in flight


def test_run_deadline_forms():
    assert run_deadline_at(None) is None
    assert run_deadline_at(30, now=100.0) == 130.0
    assert run_deadline_at(datetime.timedelta(minutes=1), now=100.0) == 160.0
    moment = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    assert run_deadline_at(moment) == moment.timestamp()
    assert run_deadline_at(moment.replace(tzinfo=None)) == moment.timestamp()  # naive: UTC
    for bad in (0, -1, "soon", True, float("inf")):
        with pytest.raises(InvalidArgument, match="deadline"):
            run_deadline_at(bad)


def test_inline_steps_refuse_a_timeout_or_deadline_at_build_time():
    wf = Workflow("inline")
    for option in ("timeout", "deadline"):
        with pytest.raises(DefinitionError, match=f"inline step cannot have a {option}"):
            wf.step(lambda x: x, name=f"quick_{option}", inline=True, **{option: 1.0})
    with pytest.raises(DefinitionError, match="must be greater than 0"):
        wf.step(lambda x: x, name="bad", deadline=0)
