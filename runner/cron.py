"""Cron schedules, computed: which ticks are due, when the next one comes, each tick's run id.

A schedule (:class:`runner.store.Schedule`) starts a run of its workflow at
each tick of its cron expression, read by ``croniter``: five fields (minute
hour day-of-month month day-of-week), or six with seconds last, or an alias
such as ``@hourly``; times are UTC.

Exactly once per tick: a tick's run id is made from the schedule's name and
the tick's time (:func:`tick_run_id`), and the store refuses a second run of
the same id, so a tick started twice (a Runner that died between starting it
and recording it) is the same run. Ticks missed while no Runner was up are
not all caught up: only the latest missed one is started (:func:`due_tick`).
A new schedule starts at its first tick after it was created.
Pure: no Ray, no I/O (the clock is given).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from croniter import croniter

from runner.errors import InvalidCron
from runner.events import RunSubmitted
from runner.store import NewRun, Schedule

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week", "second")


def check_cron(schedule: str, text: object) -> str:
    """``text`` if it is a cron expression croniter reads; InvalidCron naming the bad field."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidCron(schedule, str(text), "it must be a non-empty string")
    text = " ".join(text.split())
    if text.startswith("@"):
        if not croniter.is_valid(text):
            raise InvalidCron(schedule, text, f"unknown alias {text!r}; use @hourly, @daily, @weekly, ...")
        return text
    parts = text.split(" ")
    if len(parts) not in (5, 6):
        raise InvalidCron(schedule, text, f"it has {len(parts)} fields, not 5 or 6")
    for index, part in enumerate(parts):
        alone = ["*"] * len(parts)
        alone[index] = part
        if not croniter.is_valid(" ".join(alone)):
            raise InvalidCron(schedule, text, f"field {index + 1} ({FIELDS[index]}) {part!r} is not valid")
    if not croniter.is_valid(text):
        raise InvalidCron(schedule, text, "its fields do not make a valid expression together")
    return text


def _latest_at_or_before(cron: str, now: float) -> float:
    """The latest tick at or before ``now`` (ticks fall on whole seconds)."""
    return float(croniter(cron, math.floor(now) + 0.5).get_prev(float))


def next_tick(cron: str, after: float) -> float:
    """The first tick strictly after ``after``."""
    return float(croniter(cron, after).get_next(float))


def due_tick(schedule: Schedule, now: float) -> float | None:
    """The tick to start at ``now``: the latest one at or before ``now`` that is later than the
    schedule's ``last_tick`` and not before it was created (None: nothing is due). Ticks missed
    in between are skipped: only the latest starts."""
    latest = _latest_at_or_before(schedule.cron, now)
    floor = schedule.created_at if schedule.last_tick is None else schedule.last_tick
    return latest if latest > floor else None


@dataclass(frozen=True, kw_only=True)
class DueTick:
    schedule: Schedule
    tick: float


def due_ticks(schedules: Sequence[Schedule], now: float) -> list[DueTick]:
    """Every schedule's due tick at ``now``, in schedule order."""
    due = []
    for schedule in schedules:
        tick = due_tick(schedule, now)
        if tick is not None:
            due.append(DueTick(schedule=schedule, tick=tick))
    return due


def next_wakeup(schedules: Sequence[Schedule], now: float) -> float | None:
    """When the next tick of any schedule comes (None: no schedules)."""
    ticks = [next_tick(schedule.cron, now) for schedule in schedules]
    return min(ticks) if ticks else None


def tick_run_id(name: str, tick: float) -> str:
    """The run id of ``name``'s run for ``tick``: the same tick always gives the same id."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(tick))
    return f"{name}-{stamp}"


def tick_run(schedule: Schedule, tick: float, now: float) -> NewRun:
    """The run to store for ``schedule``'s ``tick``."""
    submitted = RunSubmitted(
        workflow=schedule.workflow, input=schedule.input, definition_hash=schedule.definition_hash, at=now
    )
    return NewRun(
        run_id=tick_run_id(schedule.name, tick),
        workflow=schedule.workflow,
        definition=schedule.definition,
        definition_hash=schedule.definition_hash,
        events=(submitted,),
    )
