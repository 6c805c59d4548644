"""What the Runner does with the runs it finds in the store when it starts.

Every pending, running or cancelling run is resumed (the ones that were
running first, then the pending ones in submit order), so a full cluster
restart loses nothing. A suspended run is started at once when a signal came
while it slept or its timer is already due; a timer due later is set; a run
waiting for a signal that has not come is left alone. The recovery report
says all of this, and later also how many steps each resumed run dispatched
again, which resumed runs could not be carried on, and why, and which runs
(resumed or not) are blocked: to be paused because the store could not write,
without even the pause recorded yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runner.child_runs import CHILD_WAIT_REASON
from runner.events import RunSuspended, StoredEvent
from runner.runner_config import RecoveryReport
from runner.store import RunFilter, RunRecord, RunStatus, Signal
from runner.store_handle import StoreHandle
from runner.vocabulary import Vocabulary
from runner.worker import Outcome

_ALL = 1 << 62  # "no limit" for list_runs
_UNFINISHED = (RunStatus.RUNNING, RunStatus.CANCELLING, RunStatus.PENDING)
_RESUME_RANK = {RunStatus.RUNNING: 0, RunStatus.CANCELLING: 0, RunStatus.PENDING: 1}


class AtStart(Vocabulary):
    """What start-up does with a suspended run."""

    WAKE = "wake"  # a signal came while it slept, or its timer is due: start it now
    SET_TIMER = "set_timer"  # its timer is due later: set it
    LEAVE = "leave"  # it waits for a signal that has not come


@dataclass(frozen=True, kw_only=True)
class StartupPlan:
    resume: tuple[str, ...]  # unfinished runs, in the order to start them
    wake: tuple[str, ...]  # suspended runs to start now, after the resumed ones
    timers: tuple[tuple[float, str], ...]  # (wake_at, run_id) for suspended runs due later
    leases_taken_over: tuple[str, ...]  # resumed runs whose lease was still held

    def report(self) -> RecoveryReport:
        return RecoveryReport(
            resumed=self.resume,
            timers=tuple(run_id for _, run_id in self.timers),
            woken=self.wake,
            leases_taken_over=self.leases_taken_over,
        )


def resume_order(records: Sequence[RunRecord], now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The unfinished runs in the order to resume them (running and cancelling ones first, then
    pending ones, each by submit time), and those among them whose lease is still held."""
    ordered = sorted(records, key=lambda r: (_RESUME_RANK[r.status], r.created_at))
    resumed = tuple(r.run_id for r in ordered)
    held = tuple(r.run_id for r in ordered if r.lease_owner is not None and (r.lease_expires_at or 0) > now)
    return resumed, held


def suspended_at_start(last: StoredEvent | None, signals: Sequence[Signal], now: float) -> tuple[AtStart, float | None]:
    """What to do with a suspended run whose last event is ``last`` and inbox holds ``signals``;
    with the time its timer is due, if it has one."""
    suspended_at = last.event.at if last is not None else 0.0
    wake_at = last.event.wake_at if last is not None and isinstance(last.event, RunSuspended) else None
    if any(s.sent_at >= suspended_at for s in signals) or (wake_at is not None and wake_at <= now):
        return AtStart.WAKE, wake_at
    if last is not None and isinstance(last.event, RunSuspended) and last.event.reason.startswith(CHILD_WAIT_REASON):
        return AtStart.WAKE, wake_at  # its child may have ended while no Runner was there to wake it
    if wake_at is not None:
        return AtStart.SET_TIMER, wake_at
    return AtStart.LEAVE, None


async def plan_startup(store: StoreHandle, clock: Callable[[], float] = time.time) -> StartupPlan:
    """Read the store and decide what to resume, wake and set timers for."""
    records = await store.list_runs(RunFilter(status=_UNFINISHED, newest_first=False, limit=_ALL))
    resumed, taken_over = resume_order(records, clock())
    suspended = await store.list_runs(RunFilter(status=RunStatus.SUSPENDED, newest_first=False, limit=_ALL))
    wake: list[str] = []
    timers: list[tuple[float, str]] = []
    for record in suspended:
        last = await store.last_event(record.run_id)
        signals = await store.signals(record.run_id)
        action, wake_at = suspended_at_start(last, signals, clock())
        if action is AtStart.WAKE:
            wake.append(record.run_id)
        elif action is AtStart.SET_TIMER and wake_at is not None:
            timers.append((wake_at, record.run_id))
    return StartupPlan(resume=resumed, wake=tuple(wake), timers=tuple(timers), leases_taken_over=taken_over)


class RecoveryLedger:
    """The recovery report as it grows: what start-up found, then what became of the resumed runs."""

    def __init__(self) -> None:
        self._found = RecoveryReport()
        self._resumed: set[str] = set()
        self._redispatched: dict[str, int] = {}
        self._not_resumed: dict[str, str] = {}
        self._blocked: dict[str, str] = {}

    def found(self, plan: StartupPlan) -> None:
        self._found = plan.report()
        self._resumed.update(plan.resume)

    def after_outcome(self, outcome: Outcome) -> None:
        """A worker turn ended: count the steps a resumed run dispatched again."""
        run_id = outcome.run_id
        if run_id in self._resumed and outcome.recovery.redispatched:
            self._redispatched[run_id] = self._redispatched.get(run_id, 0) + len(outcome.recovery.redispatched)

    def could_not_resume(self, run_id: str, message: str) -> None:
        """``run_id`` failed for good; if start-up had resumed it, the report says why."""
        if run_id in self._resumed:
            self._not_resumed[run_id] = message

    def blocked(self, run_id: str, why: str) -> None:
        """``run_id`` was to be paused (its store could not write), but not even its pause could be recorded."""
        self._blocked[run_id] = why

    def unblocked(self, run_id: str) -> None:
        self._blocked.pop(run_id, None)

    def report(self) -> RecoveryReport:
        return RecoveryReport(
            resumed=self._found.resumed,
            timers=self._found.timers,
            woken=self._found.woken,
            redispatched=dict(self._redispatched),
            leases_taken_over=self._found.leases_taken_over,
            not_resumed=dict(self._not_resumed),
            blocked=dict(self._blocked),
        )
