"""The status changes the Runner records itself (runner.lifecycle): events, target status,
the legal-move table, and the fold refusing an event before it could be appended."""

from __future__ import annotations

import pytest

from runner.errors import FoldError, IllegalTransition
from runner.events import RunCancelled, RunCompleted, RunFailed, RunPaused, RunSubmitted, number
from runner.lifecycle import CANCEL_REASON, WORKER_LOST, cancel, fail_worker_lost, pause
from runner.state import WorkflowState
from runner.store import TERMINAL, RunStatus
from runner.workflow import Workflow

RUN = "run-1"
OPEN = [s for s in RunStatus if s not in TERMINAL]


def _workflow() -> Workflow:
    wf = Workflow("moves")

    @wf.step()
    def double(x: int) -> int:
        return 2 * x

    return wf


def _submitted_state(*more: object) -> WorkflowState:
    wf = _workflow()
    first = RunSubmitted(workflow=wf.name, input=1, definition_hash=wf.definition_hash(), at=0.0)
    return WorkflowState.from_events(wf, number(RUN, [first, *more]))  # type: ignore[list-item]


# ------------------------------------------------------------------- cancel
@pytest.mark.parametrize("status", [RunStatus.PENDING, RunStatus.PAUSED, RunStatus.CANCELLING])
def test_cancel_goes_straight_to_cancelled_where_the_table_allows(status: RunStatus) -> None:
    move = cancel(RUN, status)
    assert (move.origin, move.via, move.to) == (status, None, RunStatus.CANCELLED)
    assert len(move.events) == 1 and isinstance(move.events[0], RunCancelled)
    assert move.events[0].reason == CANCEL_REASON


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.SUSPENDED])
def test_cancel_of_a_running_or_suspended_run_passes_through_cancelling(status: RunStatus) -> None:
    move = cancel(RUN, status)
    assert (move.via, move.to) == (RunStatus.CANCELLING, RunStatus.CANCELLED)


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_cancel_of_an_ended_run_is_an_illegal_transition(status: RunStatus) -> None:
    with pytest.raises(IllegalTransition) as caught:
        cancel(RUN, status)
    assert (caught.value.run_id, caught.value.from_status, caught.value.to_status) == (RUN, status.value, "cancelled")


# -------------------------------------------------------------------- pause
def test_pause_of_a_running_run_records_run_paused() -> None:
    move = pause(RUN, RunStatus.RUNNING)
    assert (move.origin, move.via, move.to) == (RunStatus.RUNNING, None, RunStatus.PAUSED)
    assert [type(e) for e in move.events] == [RunPaused]


def test_a_pause_the_runner_makes_on_its_own_carries_its_reason_into_the_fold() -> None:
    state = _submitted_state()
    reason = "run paused: the store file /data/s.duckdb cannot be written (ENOSPC: No space left on device)"
    move = pause(RUN, RunStatus.RUNNING, state, reason=reason)
    assert move.events == (RunPaused(reason=reason, at=move.events[0].at),)
    assert state.status is RunStatus.PAUSED and state.pause_reason == reason
    assert pause(RUN, RunStatus.RUNNING).events[0].reason == ""  # a user's pause has none


@pytest.mark.parametrize("status", [s for s in RunStatus if s is not RunStatus.RUNNING])
def test_only_a_running_run_can_be_paused(status: RunStatus) -> None:
    with pytest.raises(IllegalTransition) as caught:
        pause(RUN, status)
    assert (caught.value.from_status, caught.value.to_status) == (status.value, "paused")


# --------------------------------------------------------------------- fail
@pytest.mark.parametrize("status", OPEN)
def test_failing_an_open_run_records_a_worker_lost_error(status: RunStatus) -> None:
    move = fail_worker_lost(RUN, status, "run stopped: its worker died")
    assert move.to is RunStatus.FAILED and move.via is None
    (event,) = move.events
    assert isinstance(event, RunFailed)
    assert (event.error.type, event.error.message) == (WORKER_LOST, "run stopped: its worker died")
    assert WORKER_LOST == "runner.errors.WorkerLost"


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_an_ended_run_cannot_be_failed(status: RunStatus) -> None:
    with pytest.raises(IllegalTransition):
        fail_worker_lost(RUN, status, "late")


# ---------------------------------------------------------------- the fold
def test_with_a_state_the_events_are_folded_into_it() -> None:
    state = _submitted_state()
    move = pause(RUN, RunStatus.RUNNING, state)
    assert state.status == RunStatus.PAUSED.value and state.cursor == 2
    move = cancel(RUN, RunStatus.PAUSED, state)
    assert move.to is RunStatus.CANCELLED
    assert state.status == RunStatus.CANCELLED.value and state.cursor == 3


def test_failing_folds_the_error_into_the_state() -> None:
    state = _submitted_state()
    fail_worker_lost(RUN, RunStatus.PENDING, "gone", state)
    assert state.status == RunStatus.FAILED.value
    assert state.error is not None and state.error.type == WORKER_LOST


@pytest.mark.parametrize(
    "make_move",
    [
        lambda state: cancel(RUN, RunStatus.RUNNING, state),
        lambda state: pause(RUN, RunStatus.RUNNING, state),
        lambda state: fail_worker_lost(RUN, RunStatus.RUNNING, "gone", state),
    ],
)
def test_a_move_the_fold_refuses_is_refused_before_anything_is_returned(make_move: object) -> None:
    # the record still says running, but the log has already ended: the fold has the last word
    state = _submitted_state(RunCompleted(result=2, at=1.0))
    with pytest.raises(FoldError):
        make_move(state)  # type: ignore[operator]
    assert state.cursor == 2
