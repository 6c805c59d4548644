"""Deadlines: when a step or a run has run out of time, and the events that record it.

Two kinds, as Temporal and DBOS users know them:

- a **step deadline** (``Policy.deadline``, seconds) bounds the step across all
  its attempts and retries, counted from its first start (from its first start
  after a reopen, for a reopened run): an attempt still running then is cancelled
  (by the worker, as a timeout is), no retry is scheduled to start after it, and
  the step fails for good with DeadlineExceeded (for a map, each item has its own);
- a **run deadline** (``submit(..., deadline=...)``: seconds from submit, or an
  absolute ``datetime``) is stored as a wall-clock time in RunSubmitted: past it
  the run fails with RunDeadlineExceeded and its running steps are cancelled.

Both are stored (the step's first StepStarted and its policy in the stored
definition; the run's RunSubmitted), so a restart changes nothing: a run
suspended while waiting asks to be woken at its deadline at the latest (the
RunSuspended's ``wake_at``, which the Runner sets as a timer, and sets again on
start), and recovery fails whatever is past its deadline before it dispatches
anything. A run still pending (no worker free) when its deadline passes fails
when a worker takes it. Pure: no Ray, no I/O.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Collection
from typing import Any

from runner import serialization
from runner.errors import DeadlineExceeded, InvalidArgument, RunDeadlineExceeded
from runner.events import ErrorInfo, Event, RunFailed, StepSkipped
from runner.policy import Policy
from runner.run_data import RunData, TaskKey, TaskRecord, TaskStatus
from runner.workflow import Workflow

# tasks that are not running and would start again: past their deadline, they must not
_WOULD_START = (TaskStatus.WAITING, TaskStatus.RETRY, TaskStatus.LOST, TaskStatus.RUNNING)


def run_deadline_at(deadline: Any, now: float | None = None) -> float | None:
    """The wall-clock time a run's ``deadline=`` stands for: seconds from ``now`` (a positive
    number or a ``timedelta``) or an absolute ``datetime`` (an aware one, or naive in UTC)."""
    if deadline is None:
        return None
    now = time.time() if now is None else now
    if isinstance(deadline, datetime.datetime):
        moment = deadline if deadline.tzinfo is not None else deadline.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()
    if isinstance(deadline, datetime.timedelta):
        deadline = deadline.total_seconds()
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not math.isfinite(deadline):
        raise InvalidArgument(
            f"deadline must be seconds from now, a timedelta or a datetime, got {deadline!r}; nothing was stored"
        )
    if deadline <= 0:
        raise InvalidArgument(f"deadline must be more than 0 seconds from now, got {deadline!r}; nothing was stored")
    return now + float(deadline)


def step_deadline_at(policy: Policy, rec: TaskRecord | None, reopened_at: float | None) -> float | None:
    """When the task of ``rec`` runs out of time (None: no deadline, or it never started)."""
    if policy.deadline is None or rec is None or rec.first_started_at is None:
        return None
    start = rec.first_started_at
    if reopened_at is not None and reopened_at > start:
        start = reopened_at  # a reopened run's steps get their time again
    return start + policy.deadline


def step_deadline_error(node: str, policy: Policy) -> ErrorInfo:
    return serialization.error_info(DeadlineExceeded(node, policy.deadline or 0.0))


def expired_events(workflow: Workflow, d: RunData, now: float, in_flight: Collection[TaskKey] = ()) -> list[Event]:
    """The events that fail what is past its deadline at ``now``: the run (RunFailed), or each
    task not in flight that would start again after its step's deadline (its step fails for
    good: skipped with ``on_failure="skip"``, else the run fails). Tasks in flight are the
    worker's to cancel (:mod:`runner.in_flight`)."""
    if d.outcome is not None or not d.submitted:
        return []
    if d.deadline_at is not None and now >= d.deadline_at:
        error = serialization.error_info(RunDeadlineExceeded(d.run_id, d.deadline_at))
        return [RunFailed(error=error, at=now)]
    bounded = {name for name, node in workflow.nodes.items() if node.policy.deadline is not None}
    if not bounded:  # the common case costs one look at the (few) components, not one per task
        return []
    events: list[Event] = []
    for key, rec in list(d.tasks.items()):
        name, item = key
        if name not in bounded or key in in_flight or rec.status not in _WOULD_START:
            continue
        node = workflow.nodes[name]
        due = step_deadline_at(node.policy, rec, d.reopened_at)
        if due is None or now < due:
            continue
        error = step_deadline_error(name, node.policy)
        if node.policy.on_failure == "skip":
            events.append(StepSkipped(node=name, item=item, reason=f"failed: {error}", at=now))
            continue
        events.append(RunFailed(error=error, node=name, at=now))
        return events
    return events
