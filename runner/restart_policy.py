"""When a run's worker turn fails, restart it after a backoff or give up (pure: no Ray, no asyncio).

The restart intensity is OTP's: at most ``limit`` restarts of one run within
``window`` seconds. Each restart inside the window waits twice as long as the
one before (``backoff``, ``2 * backoff``, ...; at most ``backoff_max``). The
restart that goes over the limit is refused with a message that says what
happened and what to do about it.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass


class TurnFailure(str, enum.Enum):
    """How a worker turn with a run failed."""

    WORKER_DIED = "worker_died"  # the worker process died under the run (killed, crashed, node lost)
    WORKER_RAISED = "worker_raised"  # the worker is alive but could not load or fold the run


_ADVICE = {
    TurnFailure.WORKER_RAISED: (
        "The worker could not load or fold the run (its code is missing or changed where the "
        "workers run, or its history does not fit its definition); fix that and replay the run"
    ),
    TurnFailure.WORKER_DIED: (
        "A step that kills its process (inline=True code, native crashes, out of memory) "
        "is the usual cause; fix it and replay the run"
    ),
}


@dataclass(frozen=True, kw_only=True)
class Restart:
    """Start the run again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, kw_only=True)
class GiveUp:
    """The run is over its restart limit: fail it with ``message``."""

    message: str


RestartDecision = Restart | GiveUp


class RestartPolicy:
    """Counts each run's failed worker turns in a sliding window and decides what comes next.

    ``clock``: seconds that only go forward (``time.monotonic``; tests pass a fake one)."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        backoff: float,
        backoff_max: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._clock = clock
        self._failures: dict[str, collections.deque[float]] = {}
        self.restarts = 0  # failed turns seen, over all runs (each one asked for a restart)

    def after_failure(self, run_id: str, reason: str, failure: TurnFailure) -> RestartDecision:
        """Record a failed turn of ``run_id`` (``reason``: what happened, for the message)."""
        now = self._clock()
        history = self._failures.setdefault(run_id, collections.deque())
        while history and now - history[0] > self.window:
            history.popleft()
        history.append(now)
        self.restarts += 1
        if len(history) > self.limit:
            del self._failures[run_id]
            return GiveUp(
                message=(
                    f"run stopped: {reason}; that is {len(history)} failed worker turns within "
                    f"{self.window:g}s, over the restart limit of {self.limit}. {_ADVICE[failure]}"
                )
            )
        return Restart(delay=min(self.backoff * (2 ** (len(history) - 1)), self.backoff_max))

    def forget(self, run_id: str) -> None:
        """The run ended: its failures no longer count."""
        self._failures.pop(run_id, None)
