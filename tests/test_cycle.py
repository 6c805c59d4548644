"""The cycle planner on its own: what one cycle records, starts, and whether it stops.

Each test folds a hand-built log and asks ``plan_cycle`` once; no Ray, no clock.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from runner.cycle import CyclePlan, StopRequest, TurnEnd, outcome_events, plan_cycle, started_event
from runner.events import (
    ErrorInfo,
    FactProduced,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunPaused,
    RunSubmitted,
    RunSuspended,
    StepFailed,
    StepStarted,
    TimerScheduled,
    kind_of,
    number,
)
from runner.execution import StepResult
from runner.state import Task, WorkflowState
from runner.store import RunStatus
from runner.workflow import Workflow

RUN = "run-1"
LEASE = 7


def fold(wf: Workflow, *events: Any) -> WorkflowState:
    submitted = RunSubmitted(workflow=wf.name, input=1, definition_hash=wf.definition_hash(), at=0.0)
    return WorkflowState.from_events(wf, number(RUN, [submitted, *events]))


def kinds(plan: CyclePlan) -> list[str]:
    return [kind_of(s.event) for s in plan.events]


def pair() -> Workflow:
    """a and b, both roots; c after both."""
    wf = Workflow("pair")
    wf.step(lambda x: x + 1, name="a")
    wf.step(lambda x: x + 2, name="b")
    wf.step(lambda a, b: a + b, name="c", after=["a", "b"])
    return wf


def retrying(delay: float) -> Workflow:
    wf = Workflow("retrying")
    wf.step(lambda x: x, name="a", retries=2, backoff="none" if delay == 0 else "linear", backoff_base=delay or 1.0)
    return wf


def failed_a(retry_at: float | None) -> StepFailed:
    return StepFailed(
        node="a", attempt=1, error=ErrorInfo(type="ValueError", message="boom"), retry_at=retry_at, at=0.0
    )


def started(node: str, attempt: int = 1) -> StepStarted:
    return StepStarted(node=node, attempt=attempt, lease=1, at=0.0)


# ------------------------------------------------------------------ starting
def test_a_cycle_starts_the_runnable_tasks_under_the_lease():
    state = fold(pair())
    plan = plan_cycle(state, 5.0, lease=LEASE, suspend_after=5.0)
    assert [t.key for t in plan.tasks] == [("a", None), ("b", None)]
    assert [(s.event.node, s.event.lease, s.event.at) for s in plan.events] == [("a", LEASE, 5.0), ("b", LEASE, 5.0)]
    assert plan.stop is None and plan.wake_at is None
    # the events are folded already, numbered after the log
    assert [s.seq for s in plan.events] == [2, 3] and state.cursor == 3
    assert state.started() == [("a", None), ("b", None)]


def test_without_a_lease_the_tasks_are_left_for_the_caller_to_start():
    state = fold(pair())
    plan = plan_cycle(state, 5.0)
    assert [t.key for t in plan.tasks] == [("a", None), ("b", None)]
    assert plan.events == () and state.cursor == 1


def test_tasks_in_flight_are_not_started_again_and_the_run_waits_for_them():
    state = fold(pair(), started("a"), started("b"))
    plan = plan_cycle(state, 5.0, in_flight={("a", None), ("b", None)}, lease=LEASE, suspend_after=0.0)
    assert plan == CyclePlan()  # nothing to record or start, no stop: wait for a task to finish
    orphaned = plan_cycle(state, 5.0, in_flight={("a", None)}, lease=LEASE, suspend_after=0.0)
    assert [t.key for t in orphaned.tasks] == [("b", None)]  # started by a worker that is gone: again


def test_bookkeeping_comes_before_the_starts_it_unlocks():
    wf = Workflow("map")
    wf.step(lambda x: [1, 2], name="items")
    wf.map(lambda x: x, name="each", after="items")
    state = fold(wf, started("items"), FactProduced(node="items", value=[1, 2], at=0.0))
    plan = plan_cycle(state, 5.0, lease=LEASE, suspend_after=5.0)
    assert kinds(plan) == ["MapExpanded", "StepStarted", "StepStarted"]
    assert [t.key for t in plan.tasks] == [("each", 0), ("each", 1)]


# ------------------------------------------------------------------ stopping
def test_a_cancel_request_ends_the_run_cancelled_without_starting_anything():
    state = fold(pair())
    plan = plan_cycle(state, 5.0, requested=StopRequest.CANCEL, lease=LEASE, suspend_after=5.0)
    assert plan.stop is TurnEnd.CANCELLED and plan.tasks == ()
    assert [s.event for s in plan.events] == [RunCancelled(reason="cancelled on request", at=5.0)]
    assert state.status is RunStatus.CANCELLED


def test_a_run_that_ended_stops_with_its_outcome_even_when_a_cancel_was_asked():
    state = fold(retrying(0), started("a"), failed_a(None), RunFailed(error=ErrorInfo(type="E", message="m"), at=0.0))
    plan = plan_cycle(state, 5.0, requested=StopRequest.CANCEL, lease=LEASE)
    assert plan == CyclePlan(stop=TurnEnd.FAILED)


def test_the_cycle_that_resolves_the_last_component_finishes_the_run():
    state = fold(pair(), started("a"), started("b"))
    state.apply(number(RUN, [FactProduced(node="a", value=2, at=0.0)], first=4)[0])
    state.apply(number(RUN, [FactProduced(node="b", value=3, at=0.0)], first=5)[0])
    plan = plan_cycle(state, 5.0, lease=LEASE, suspend_after=5.0)
    assert kinds(plan) == ["StepStarted"] and plan.stop is None
    state.apply(number(RUN, [FactProduced(node="c", value=5, at=0.0)], first=7)[0])
    done = plan_cycle(state, 6.0, lease=LEASE, suspend_after=5.0)
    assert done.stop is TurnEnd.COMPLETED and done.tasks == ()
    assert [s.event for s in done.events] == [RunCompleted(result=5, at=6.0)]


def test_a_pause_waits_for_the_tasks_in_flight_and_starts_nothing_new():
    state = fold(pair(), started("a"))
    waiting = plan_cycle(state, 5.0, in_flight={("a", None)}, requested=StopRequest.PAUSE, lease=LEASE)
    assert waiting == CyclePlan()  # b is runnable but does not start; no timer to wake for
    paused = plan_cycle(state, 6.0, requested=StopRequest.PAUSE, lease=LEASE)
    assert paused.stop is TurnEnd.PAUSED and paused.tasks == ()
    assert [s.event for s in paused.events] == [RunPaused(at=6.0)]
    assert state.status is RunStatus.PAUSED


def test_a_retry_far_away_suspends_the_run_until_it_is_due():
    state = fold(retrying(60.0), started("a"), failed_a(60.0))
    plan = plan_cycle(state, 1.0, lease=LEASE, suspend_after=5.0)
    assert plan.stop is TurnEnd.SUSPENDED and plan.wake_at == 60.0
    assert [s.event for s in plan.events] == [RunSuspended(reason="waiting for a timer", wake_at=60.0, at=1.0)]


def test_a_retry_due_soon_is_waited_for_in_place():
    state = fold(retrying(3.0), started("a"), failed_a(3.0))
    plan = plan_cycle(state, 1.0, lease=LEASE, suspend_after=5.0)
    assert plan == CyclePlan(wake_at=3.0)
    due = plan_cycle(state, 3.0, lease=LEASE, suspend_after=5.0)
    assert [(t.key, t.attempt) for t in due.tasks] == [(("a", None), 2)]
    assert due.wake_at is None  # the retry started: nothing left to wake for


def test_a_run_waiting_for_a_signal_only_is_suspended_with_no_wake_time():
    wf = Workflow("approval")
    wf.wait_for("approved", name="approval")
    wf.step(lambda x: x, name="ship", after="approval")
    state = fold(wf)
    plan = plan_cycle(state, 1.0, lease=LEASE, suspend_after=5.0)
    assert plan.stop is TurnEnd.SUSPENDED and plan.wake_at is None
    assert plan.events[-1].event == RunSuspended(reason="waiting for signal approved", wake_at=None, at=1.0)


def test_nothing_in_flight_does_not_suspend_while_tasks_run():
    state = fold(retrying(60.0), started("a"), failed_a(60.0))
    plan = plan_cycle(state, 1.0, in_flight={("other", None)}, lease=LEASE, suspend_after=5.0)
    assert plan.stop is None and plan.wake_at == 60.0


def test_without_suspend_after_the_run_never_suspends():
    state = fold(retrying(60.0), started("a"), failed_a(60.0))
    assert plan_cycle(state, 1.0) == CyclePlan(wake_at=60.0)
    sleeper = Workflow("sleeper")
    sleeper.sleep(30.0, name="nap")
    state = fold(sleeper)
    plan = plan_cycle(state, 1.0)
    assert [s.event for s in plan.events] == [TimerScheduled(node="nap", due_at=31.0, at=1.0)]
    assert plan.stop is None and plan.wake_at == 31.0


# ------------------------------------------------------------------ outcomes
def test_outcome_events_record_a_value_or_a_failure_under_the_policy():
    state = fold(retrying(2.0), started("a"))
    task = Task(node="a", attempt=1, inputs=(1,))
    assert outcome_events(state, task, StepResult(value=4), 1.0) == [FactProduced(node="a", value=4, attempt=1, at=1.0)]
    error = ErrorInfo(type="ValueError", message="boom")
    [event] = outcome_events(state, task, StepResult(error=error), 1.0, random.Random(0))
    assert event == StepFailed(node="a", attempt=1, error=error, retry_at=3.0, at=1.0)


def test_a_result_that_arrives_after_the_run_ended_records_nothing():
    state = fold(retrying(0), started("a"), failed_a(None), RunCancelled(at=0.0))
    assert outcome_events(state, Task(node="a", attempt=1, inputs=(1,)), StepResult(value=1), 1.0) == []


def test_started_event_and_step_result():
    task = Task(node="m", item=3, attempt=2, inputs=())
    assert started_event(task, LEASE, 9.0) == StepStarted(node="m", item=3, attempt=2, lease=LEASE, at=9.0)
    assert StepResult(value=None).ok and not StepResult(error=ErrorInfo(type="E", message="m")).ok


@pytest.mark.parametrize("value", ["cancel", "pause"])
def test_vocabularies_keep_their_strings(value):
    assert StopRequest(value) == value and str(StopRequest(value)) == value
    assert TurnEnd.SUSPENDED == "suspended" and f"{TurnEnd.FENCED}" == "fenced"
