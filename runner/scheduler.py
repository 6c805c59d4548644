"""The Runner's schedule loop: starts each stored schedule's due ticks as runs.

One loop per Runner. Each round it reads the schedules from the store, asks
:mod:`runner.cron` which ticks are due at the clock's time, stores one run per
due tick (its id made from the schedule and the tick, so a tick stored twice
is one run: the store returns the existing run), records each tick
(``mark_tick``), then sleeps until the next tick of any schedule, or until
``poke`` says the schedules changed. The new runs reach the Runner's queue as
any submitted run does (the Store actor tells it).

A Runner that dies between storing a tick's run and recording the tick finds
the same tick due when it starts again, and stores the same run id: nothing
runs twice. Ticks missed while no Runner was up start only the latest
(:func:`runner.cron.due_tick`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from runner import cron
from runner.errors import ScheduleNotFound
from runner.store import NewRun, Schedule

log = logging.getLogger("runner")

RETRY_AFTER = 1.0  # seconds before trying again after the store could not answer
WAKE_MARGIN = 0.01  # seconds past a tick to wake, so the clock has reached it
LONGEST_SLEEP = 300.0  # look at the store at least this often (a schedule saved by another client)


class ScheduleStore(Protocol):
    """The Store actor calls the loop makes (a StoreHandle's ObjectRefs are awaitable)."""

    def list_schedules(self) -> Awaitable[list[Schedule]]: ...

    def create_runs(self, news: Sequence[NewRun]) -> Awaitable[Any]: ...

    def mark_tick(self, name: str, tick: float) -> Awaitable[Schedule]: ...


async def start_due(store: ScheduleStore, schedules: Sequence[Schedule], now: float) -> list[str]:
    """Store the runs of the ticks due at ``now`` and record the ticks; their run ids."""
    due = cron.due_ticks(schedules, now)
    if not due:
        return []
    news = [cron.tick_run(d.schedule, d.tick, now) for d in due]
    await store.create_runs(news)
    for d in due:
        with contextlib.suppress(ScheduleNotFound):  # removed meanwhile: its last run stays
            await store.mark_tick(d.schedule.name, d.tick)
    return [new.run_id for new in news]


class ScheduleLoop:
    """Starts due ticks on the running event loop until cancelled."""

    def __init__(self, store: ScheduleStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def poke(self) -> None:
        """The schedules changed: read them again now."""
        self._changed.set()

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            try:
                schedules = await self._store.list_schedules()
                now = self._clock()
                started = await start_due(self._store, schedules, now)
                if started:
                    log.info("schedules: started %s", ", ".join(started))
                wake = cron.next_wakeup(schedules, self._clock())
                timeout = (
                    LONGEST_SLEEP if wake is None else min(LONGEST_SLEEP, max(0.0, wake - self._clock()) + WAKE_MARGIN)
                )
            except Exception as exc:
                log.warning("schedules: could not start due ticks (%s: %s); trying again", type(exc).__name__, exc)
                timeout = RETRY_AFTER
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
