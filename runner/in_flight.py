"""The tasks one run has dispatched as Ray tasks and not collected yet.

Each task's Ray future gets one done-callback, which runs on a Ray thread:
it queues the task's key and wakes the run's event loop, once for all the
tasks that finish before the loop gets to run. So waiting costs the same
however many tasks are in flight, and results are collected in the order
the tasks finished. A heap of deadlines times out the tasks whose step has
a ``timeout`` or a ``deadline`` (:mod:`runner.deadlines`): they are cancelled
and collected as failed with StepTimeout, or DeadlineExceeded once the step's
deadline comes first.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import heapq
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ray
from ray.exceptions import (
    LocalRayletDiedError,
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayError,
    RayTaskError,
    WorkerCrashedError,
)

from runner import serialization
from runner.errors import DeadlineExceeded, StepTimeout
from runner.execution import StepResult
from runner.planning import Task
from runner.run_data import TaskKey

if TYPE_CHECKING:
    from ray import ObjectRef


LOST_TO_THE_SYSTEM: tuple[type[RayError], ...] = (
    NodeDiedError,  # the node the task ran on left the cluster
    WorkerCrashedError,  # the process running it died (killed, crashed)
    OutOfMemoryError,  # Ray's memory monitor killed it
    LocalRayletDiedError,  # the node's raylet died
    ObjectLostError,  # its result was lost with the node that held it (OwnerDiedError and kin too)
)
"""How Ray reports a task the system lost. Not among them: TaskCancelledError (our own timeout or
cancel) and RayTaskError (an exception raised in the task: the step's own failure)."""


def lost_to_the_system(exc: BaseException) -> bool:
    """Whether ``exc``, raised for a task's result, says the system lost the task rather than
    the task failing: it then runs again without spending the step's retries."""
    return isinstance(exc, LOST_TO_THE_SYSTEM) and not isinstance(exc, RayTaskError)


@dataclass(slots=True)
class _Flight:
    task: Task
    ref: ObjectRef[StepResult]
    future: concurrent.futures.Future[StepResult]  # completed on a Ray thread
    timeout: float | None
    deadline: float | None
    step_deadline: float | None = None  # seconds: the step's deadline, when it is what ``deadline`` is


class InFlight:
    """One run's dispatched tasks. ``wake`` is called on the event loop ``loop`` when tasks finish."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        self._loop = loop
        self._wake = wake
        self._flights: dict[TaskKey, _Flight] = {}
        self._finished: collections.deque[TaskKey] = collections.deque()  # keys, as their tasks finish
        self._deadlines: list[tuple[float, TaskKey]] = []  # heap of in-flight tasks' deadlines
        self._wake_pending = False

    @property
    def keys(self) -> Collection[TaskKey]:
        """The keys of the tasks in flight (a live view: do not change it)."""
        return self._flights

    def __len__(self) -> int:
        return len(self._flights)

    @property
    def has_finished(self) -> bool:
        """Whether some task finished and waits to be collected."""
        return bool(self._finished)

    def add(
        self,
        task: Task,
        ref: ObjectRef[StepResult],
        timeout: float | None,
        now: float,
        step_deadline: tuple[float, float] | None = None,
    ) -> None:
        """Track ``task``, dispatched as ``ref``; ``timeout`` seconds from ``now`` it times out.
        ``step_deadline``: (when, seconds) of its step's deadline; if that comes first, it fails
        with DeadlineExceeded instead."""
        future = ref.future()  # a plain Future and one callback: an asyncio wrapper per task cost ~0.2 ms
        deadline = now + timeout if timeout else None
        by_step: float | None = None
        if step_deadline is not None and (deadline is None or step_deadline[0] < deadline):
            deadline, by_step = step_deadline
        key = task.key
        self._flights[key] = _Flight(
            task=task, ref=ref, future=future, timeout=timeout, deadline=deadline, step_deadline=by_step
        )
        future.add_done_callback(lambda _: self._on_finished(key))
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, key))

    def next_deadline(self) -> float | None:
        """The earliest deadline of a task still in flight (entries of finished tasks are dropped)."""
        heap = self._deadlines
        while heap:
            deadline, key = heap[0]
            flight = self._flights.get(key)
            if flight is not None and flight.deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def collect(self, now: float) -> list[tuple[Task, StepResult]]:
        """The results of the tasks that finished, in the order they finished, then the tasks
        past their deadline at ``now`` (cancelled, failed with StepTimeout). They leave the set."""
        results: list[tuple[Task, StepResult]] = []
        while self._finished:
            key = self._finished.popleft()
            flight = self._flights.get(key)
            if flight is None or not flight.future.done():  # an earlier attempt's, timed out or cancelled
                continue
            del self._flights[key]
            try:
                result = flight.future.result()
            except RayError as exc:  # the task's node or process died, or the task was cancelled
                result = StepResult(error=serialization.error_info(exc), lost=lost_to_the_system(exc))
            results.append((flight.task, result))
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, key = heapq.heappop(self._deadlines)
            flight = self._flights.pop(key)
            ray.cancel(flight.ref, force=True)
            if flight.step_deadline is not None:
                error = serialization.error_info(DeadlineExceeded(flight.task.node, flight.step_deadline))
            else:
                error = serialization.error_info(StepTimeout(flight.task.node, flight.timeout or 0.0))
            results.append((flight.task, StepResult(error=error)))
        return results

    def cancel_all(self) -> None:
        """Cancel every task in flight and forget them."""
        for flight in self._flights.values():
            ray.cancel(flight.ref, force=True)
        self._flights.clear()
        self._finished.clear()
        self._deadlines.clear()

    def _on_finished(self, key: TaskKey) -> None:
        """A task's done-callback, on a Ray thread: queue its key and wake the loop, once for
        all the tasks that finish before the loop gets to run."""
        self._finished.append(key)
        if not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._wake_pending = False
        self._wake()
