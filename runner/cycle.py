"""One cycle of a run, planned: what to record, what to start, whether to stop.

Whoever drives a run (the Worker's :class:`~runner.worker.RunExecutor`, the
in-process test runtime) repeats the same cycle: plan, execute, apply the
outcomes. :func:`plan_cycle` is the plan, and the only place it is decided:

1. a run that has ended stops with its outcome;
2. a cancel request ends the run cancelled;
3. the bookkeeping events that follow from the log are recorded (skips,
   signals consumed, timers, map fan-out, completion), then whatever is past
   its deadline fails (:mod:`runner.deadlines`);
4. a pause request stops the run paused once nothing is in flight (running
   steps finish and are recorded first); until then no new task starts;
5. the runnable tasks are started (their StepStarted recorded, under the
   caller's lease) or, without a lease, handed over for the caller to start;
6. with nothing to start and nothing in flight, a run whose next retry or
   timer is further than ``suspend_after`` away (or that waits for a signal
   only) is suspended; otherwise the caller waits until ``wake_at`` (never
   later than the run's deadline).

Every event planned is folded into the state at once (the state is the log
plus the events about to be appended) and handed back in ``events``, in order,
for the caller to append. Pure: no Ray, no I/O, no clock (``now`` is given).
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass

from runner.child_runs import CHILD_WAIT_REASON
from runner.events import Event, RunCancelled, RunPaused, RunSuspended, StepMetadataAdded, StepStarted, StoredEvent
from runner.execution import StepResult
from runner.planning import DEFAULT_SYSTEM_RETRIES, Task
from runner.run_data import TaskKey
from runner.state import WorkflowState
from runner.vocabulary import Vocabulary


class StopRequest(Vocabulary):
    """What a user asked of a running run."""

    CANCEL = "cancel"  # running steps are cancelled, the run ends cancelled
    PAUSE = "pause"  # running steps finish first, then the run pauses and releases its worker


class TurnEnd(Vocabulary):
    """Why a worker's turn with a run ended: the run's status then, or FENCED (another owner has it),
    or STORE_FAILED (the store could not write; the run is as its last successful write left it)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CONTINUED = "continued"  # the run ended by starting its successor
    SUSPENDED = "suspended"
    PAUSED = "paused"
    FENCED = "fenced"
    STORE_FAILED = "store_failed"


@dataclass(frozen=True, kw_only=True)
class CyclePlan:
    """What one cycle does.

    ``events``: folded into the state already; append them, in this order.
    ``tasks``: to run now (their StepStarted is in ``events`` when a lease was given).
    ``stop``: end the turn (None: go on). ``wake_at``: with SUSPENDED, when the run
    wants to be brought back; otherwise the latest time to look again if nothing
    happens before (None: only when something happens: a task finishes, a signal).
    """

    events: tuple[StoredEvent, ...] = ()
    tasks: tuple[Task, ...] = ()
    stop: TurnEnd | None = None
    wake_at: float | None = None


def plan_cycle(
    state: WorkflowState,
    now: float,
    *,
    in_flight: Collection[TaskKey] = (),
    requested: StopRequest | None = None,
    suspend_after: float | None = None,
    lease: int | None = None,
) -> CyclePlan:
    """Plan one cycle of ``state``'s run at time ``now`` (see the module's docstring).

    ``in_flight``: tasks started by this caller and not finished yet.
    ``suspend_after``: None never suspends (the caller jumps its clock to ``wake_at``).
    ``lease``: record each task's StepStarted under it; None leaves starting the
    tasks to the caller (the in-process runtime starts and runs them one by one).
    """
    if state.is_finished:
        return CyclePlan(stop=TurnEnd(state.status))
    if requested is StopRequest.CANCEL:
        return CyclePlan(
            events=(state.record(RunCancelled(reason="cancelled on request", at=now)),), stop=TurnEnd.CANCELLED
        )
    events = [state.record(event) for event in state.advance(now)]
    if not state.is_finished:  # what is past its deadline fails before anything starts
        events += [state.record(event) for event in state.expired_events(now, in_flight)]
    if state.is_finished:
        return CyclePlan(events=tuple(events), stop=TurnEnd(state.status))
    if requested is StopRequest.PAUSE:
        if in_flight:  # running steps finish and are recorded first
            return CyclePlan(events=tuple(events))
        events.append(state.record(RunPaused(at=now)))
        return CyclePlan(events=tuple(events), stop=TurnEnd.PAUSED)
    tasks = state.runnables(in_flight, now, step_room(state, in_flight))
    if lease is not None:
        events += [state.record(started_event(task, lease, now)) for task in tasks]
    wake_at = _earliest(state.next_wakeup(), state.deadline_at)  # woken at the run's deadline at the latest
    if tasks or in_flight:
        return CyclePlan(events=tuple(events), tasks=tuple(tasks), wake_at=wake_at)
    if suspend_after is None or (wake_at is not None and wake_at - now <= suspend_after):
        return CyclePlan(events=tuple(events), wake_at=wake_at)  # nothing to do before wake_at: wait in place
    waiting = state.waiting_for()
    children = state.open_children()
    if children:  # the Runner wakes the run when one ends (a Runner start wakes it too: runner.child_runs)
        reason = f"{CHILD_WAIT_REASON} " + ", ".join(children.values())
    elif waiting:
        reason = "waiting for signal " + ", ".join(waiting)
    else:
        reason = "waiting for a timer"
    events.append(state.record(RunSuspended(reason=reason, wake_at=wake_at, at=now)))
    return CyclePlan(events=tuple(events), stop=TurnEnd.SUSPENDED, wake_at=wake_at)


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def step_room(state: WorkflowState, in_flight: Collection[TaskKey]) -> int | None:
    """How many more of the run's steps may start now under its workflow's ``max_concurrency``
    (at most that many in flight at once, chosen by step priority, then definition order);
    None: no limit."""
    limit = getattr(state.workflow, "max_concurrency", None)  # a definition pickled before it existed has none
    return None if limit is None else max(0, limit - len(in_flight))


def started_event(task: Task, lease: int, now: float) -> StepStarted:
    """The event that records ``task`` starting under ``lease``."""
    return StepStarted(node=task.node, item=task.item, attempt=task.attempt, lease=lease, at=now)


def outcome_events(
    state: WorkflowState,
    task: Task,
    result: StepResult,
    now: float,
    rng: random.Random | None = None,
    system_retries: int = DEFAULT_SYSTEM_RETRIES,
) -> list[Event]:
    """The events that record ``task``'s result: none once the run has ended (a late result is dropped).
    A task lost to the system runs again up to ``system_retries`` times before its step fails."""
    if state.is_finished:
        return []
    added: list[Event] = []
    if result.metadata:  # what the attempt added to the run's metadata, recorded just before its outcome
        added.append(
            StepMetadataAdded(node=task.node, item=task.item, attempt=task.attempt, values=result.metadata, at=now)
        )
    if result.error is None:
        return added + state.success_events(task, result.value, now)
    if result.lost:
        return added + state.lost_events(task, result.error, now, system_retries)
    return added + state.failure_events(task, result.error, now, rng)
