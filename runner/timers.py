"""The Runner's timers: runs to wake at a wall-clock time (a sleep or a retry that is due later).

A heap of (wake_at, run_id) and one loop that sleeps until the earliest is due,
then hands every due run to ``wake``. Adding a timer wakes the loop, so it
sleeps until the new earliest.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable


class Timers:
    """``wake(run_id)`` is called, on the event loop, for each timer that comes due."""

    def __init__(self, wake: Callable[[str], None], clock: Callable[[], float] = time.time) -> None:
        self._wake = wake
        self._clock = clock
        self._heap: list[tuple[float, str]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the wake loop on the running event loop (once)."""
        if self._task is None:
            self._task = asyncio.get_event_loop().create_task(self._run())

    def add(self, wake_at: float, run_id: str) -> None:
        heapq.heappush(self._heap, (wake_at, run_id))
        self._changed.set()

    def cancel(self, run_id: str) -> None:
        """Drop every timer of ``run_id``."""
        self._heap = [(t, r) for t, r in self._heap if r != run_id]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    async def _run(self) -> None:
        while True:
            timeout = None
            if self._heap:
                timeout = max(0.0, self._heap[0][0] - self._clock())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
            self._changed.clear()
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                _, run_id = heapq.heappop(self._heap)
                self._wake(run_id)
