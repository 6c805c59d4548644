"""Timers: runs are handed back when their time comes, earliest first; cancelled ones never are."""

from __future__ import annotations

import asyncio
import time

from runner.timers import Timers


def test_due_runs_are_woken_earliest_first_and_cancelled_ones_never() -> None:
    async def scenario() -> list[str]:
        woken: list[str] = []
        all_due = asyncio.Event()

        def wake(run_id: str) -> None:
            woken.append(run_id)
            if run_id == "last":
                all_due.set()

        timers = Timers(wake)
        timers.start()
        now = time.time()
        timers.add(now + 0.2, "last")
        timers.add(now + 0.1, "second")
        timers.add(now + 0.15, "cancelled")
        timers.add(now - 1.0, "overdue")
        timers.cancel("cancelled")
        await asyncio.wait_for(all_due.wait(), timeout=10)
        assert len(timers) == 0
        return woken

    assert asyncio.run(scenario()) == ["overdue", "second", "last"]


def test_a_timer_added_later_but_due_sooner_is_not_held_back_by_an_earlier_wait() -> None:
    async def scenario() -> float:
        fired = asyncio.Event()
        timers = Timers(lambda run_id: fired.set() if run_id == "soon" else None)
        timers.start()
        timers.add(time.time() + 3600, "much-later")
        await asyncio.sleep(0)  # the loop now waits for the hour-long timer
        started = time.monotonic()
        timers.add(time.time() + 0.05, "soon")
        await asyncio.wait_for(fired.wait(), timeout=10)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 5
