"""When a run's worker turn fails, restart it after a backoff or give up (pure: no Ray, no asyncio).

The restart intensity is OTP's: at most ``limit`` restarts of one run within
``window`` seconds. Each restart inside the window waits twice as long as the
one before (``backoff``, ``2 * backoff``, ...; at most ``backoff_max``). The
restart that goes over the limit is refused with a message that says what
happened and what to do about it.

A turn that ended because the store could not write (``TurnFailure.STORE``: a
full disk) is no worker's fault: it is counted apart from worker losses, with
its own window and limit of the same size, and over the limit the run is to be
paused (the Runner does that), not failed.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from runner.vocabulary import Vocabulary


class TurnFailure(Vocabulary):
    """How a worker turn with a run failed."""

    WORKER_DIED = "worker_died"  # the worker process died under the run (killed, crashed, node lost)
    WORKER_RAISED = "worker_raised"  # the worker is alive but could not load or fold the run
    STORE = "store"  # the worker is fine; the store could not write (disk full, file not writable)


_ADVICE = {
    TurnFailure.WORKER_RAISED: (
        "The worker could not load or fold the run (its code is missing or changed where the "
        "workers run, or its history does not fit its definition); fix that and replay the run"
    ),
    TurnFailure.WORKER_DIED: (
        "A step that kills its process (inline=True code, native crashes, out of memory) "
        "is the usual cause; fix it and replay the run"
    ),
    TurnFailure.STORE: (
        "The run is paused with every recorded result kept: free disk space or fix the store file's "
        "permissions, then resume it (`runner resume RUN_ID` or client.resume(run_id))"
    ),
}


@dataclass(frozen=True, kw_only=True)
class Restart:
    """Start the run again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, kw_only=True)
class GiveUp:
    """The run is over its restart limit: fail it with ``message`` (pause it, for a STORE failure)."""

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
        self._failures: dict[tuple[str, bool], collections.deque[float]] = {}  # (run, store failure?) -> times
        self.restarts = 0  # worker turns lost (the worker died or raised), over all runs
        self.store_outages = 0  # turns ended by a store that could not write, over all runs

    def after_failure(self, run_id: str, reason: str, failure: TurnFailure) -> RestartDecision:
        """Record a failed turn of ``run_id`` (``reason``: what happened, for the message)."""
        now = self._clock()
        store = failure is TurnFailure.STORE
        key = (run_id, store)
        history = self._failures.setdefault(key, collections.deque())
        while history and now - history[0] > self.window:
            history.popleft()
        history.append(now)
        if store:
            self.store_outages += 1
        else:
            self.restarts += 1
        if len(history) > self.limit:
            del self._failures[key]
            what, verb = ("failed store writes", "paused") if store else ("failed worker turns", "stopped")
            return GiveUp(
                message=(
                    f"run {verb}: {reason}; that is {len(history)} {what} within "
                    f"{self.window:g}s, over the restart limit of {self.limit}. {_ADVICE[failure]}"
                )
            )
        return Restart(delay=min(self.backoff * (2 ** (len(history) - 1)), self.backoff_max))

    def forget(self, run_id: str) -> None:
        """The run ended: its failures no longer count."""
        self._failures.pop((run_id, False), None)
        self._failures.pop((run_id, True), None)
