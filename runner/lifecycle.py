"""The status changes the Runner itself records, as pure functions (no Ray, no I/O).

Workers record most status changes as they drive a run. The Runner records
four for a run no worker drives: the reopening of a failed or cancelled run
(RunReopened, written by ``Store.reopen``, see :func:`reopen`); a cancel (RunCancelled), a pause
(RunPaused: asked by a user, or with a reason when the run's store writes kept
failing) and the failure of a run over its restart limit (RunFailed with a
``runner.errors.WorkerLost`` error). Each function here takes the run's
current status and, when it could be loaded, its folded state; it returns the
move to record (the events, the status they move the run to, and a status the
store passes through first, if any), or raises ``IllegalTransition`` when
``runner.store.TRANSITIONS`` forbids it. Given a state, the events are folded
into it first (``FoldError`` if the fold refuses one), so an event the fold
would refuse is never appended; afterwards ``state`` is the run after the move.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.errors import IllegalTransition, ResumeRefused
from runner.events import ErrorInfo, Event, RunCancelled, RunFailed, RunPaused, RunReopened, number
from runner.state import WorkflowState
from runner.store import REOPENABLE, TRANSITIONS, RunStatus

WORKER_LOST = "runner.errors.WorkerLost"  # the ErrorInfo type of a run failed over its restart limit
CANCEL_REASON = "cancelled on request"


@dataclass(frozen=True, kw_only=True)
class StatusMove:
    """Events to append under the run's lease, moving it from ``origin`` to ``to``; ``via``:
    a status to move to first, without an event (running -> cancelling -> cancelled)."""

    run_id: str
    origin: RunStatus
    to: RunStatus
    events: tuple[Event, ...]
    via: RunStatus | None = None


def cancel(run_id: str, status: RunStatus, state: WorkflowState | None = None) -> StatusMove:
    """Cancel a run no worker drives. A run that was running or suspended passes through
    cancelling (its steps would be cancelled there); a pending, paused or cancelling one
    goes straight to cancelled."""
    via = None
    if RunStatus.CANCELLED not in TRANSITIONS[status]:
        if RunStatus.CANCELLING not in TRANSITIONS[status]:
            raise IllegalTransition(run_id, status.value, RunStatus.CANCELLED.value)
        via = RunStatus.CANCELLING
    move = StatusMove(
        run_id=run_id,
        origin=status,
        to=RunStatus.CANCELLED,
        events=(RunCancelled(reason=CANCEL_REASON),),
        via=via,
    )
    return _folded(move, state)


def pause(run_id: str, status: RunStatus, state: WorkflowState | None = None, reason: str = "") -> StatusMove:
    """Pause a running run no worker drives now (a worker that drives one records the pause itself).
    ``reason``: why, when the Runner pauses it on its own (its store writes kept failing)."""
    _check(run_id, status, RunStatus.PAUSED)
    event = RunPaused(reason=reason)
    return _folded(StatusMove(run_id=run_id, origin=status, to=RunStatus.PAUSED, events=(event,)), state)


def fail_worker_lost(run_id: str, status: RunStatus, message: str, state: WorkflowState | None = None) -> StatusMove:
    """Fail a run whose worker turns failed more often than the restart limit allows."""
    _check(run_id, status, RunStatus.FAILED)
    error = ErrorInfo(type=WORKER_LOST, message=message)
    return _folded(
        StatusMove(run_id=run_id, origin=status, to=RunStatus.FAILED, events=(RunFailed(error=error),)), state
    )


def reopen(run_id: str, status: RunStatus, state: WorkflowState | None = None, reason: str = "") -> StatusMove:
    """Resume a failed or cancelled run in place (``runner.store.REOPENABLE``); ResumeRefused for
    any other status. ``reason``: why it may go on now (the cause that was fixed)."""
    if status not in REOPENABLE:
        raise ResumeRefused(run_id, status.value)
    event = RunReopened(from_status=status.value, reason=reason)
    return _folded(StatusMove(run_id=run_id, origin=status, to=RunStatus.RUNNING, events=(event,)), state)


def _check(run_id: str, status: RunStatus, to: RunStatus) -> None:
    if to not in TRANSITIONS[status]:
        raise IllegalTransition(run_id, status.value, to.value)


def _folded(move: StatusMove, state: WorkflowState | None) -> StatusMove:
    if state is not None:
        for stored in number(move.run_id, list(move.events), first=state.cursor + 1):
            state.apply(stored)
    return move
