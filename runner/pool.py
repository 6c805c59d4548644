"""The Runner's pool of Worker actors: which worker drives which run, and where the next run goes.

A run goes to an idle worker, else to a new worker while the pool is under
``max_workers``, else to the least busy worker with room (fewer than
``runs_per_worker`` runs). The one exception is the *alone* rule: a run
whose worker died under it is suspected of killing its process (inline code,
a native crash, out of memory), so its next turn is on a worker of its own,
and a worker that drives such a run takes no other. While such a run waits
for a worker to become free, the least busy worker drains: it takes nothing
new, so it is the first to become idle.

The pool does no I/O itself: it is given how to start a worker and how to
kill one. It remembers when each run was given to its worker, for the
Runner's supervision (:mod:`runner.supervision`).
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runner.supervision import Drive

if TYPE_CHECKING:
    from ray.actor import ActorHandle

    from runner.worker import Worker

    WorkerHandle = ActorHandle[Worker]

START_ORDER_KEPT = 100_000  # the run starts remembered for stats, newest last


@dataclass(eq=False)
class WorkerSlot:
    """One Worker actor in the pool and the runs it drives now."""

    worker_id: str
    handle: WorkerHandle
    runs: set[str] = field(default_factory=set)
    turns: int = 0  # run turns it has finished: > 0 means it was reused
    alone: bool = False  # it drives a run that must not share its worker
    seen_alive: bool = False  # it has answered, or taken a lease: it has started
    pid: int | None = None  # its process id, once asked


class WorkerPool:
    """Worker slots, the runs they drive, and the counts the Runner's stats report."""

    def __init__(
        self,
        *,
        max_workers: int,
        runs_per_worker: int,
        spawn: Callable[[str], WorkerHandle],
        kill: Callable[[WorkerHandle], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_workers = max_workers
        self.runs_per_worker = runs_per_worker
        self._spawn = spawn
        self._kill = kill
        self._clock = clock
        self.workers: list[WorkerSlot] = []
        self._driving: dict[str, WorkerSlot] = {}
        self._since: dict[str, float] = {}  # when each run driven now was given to its worker
        self._alone: set[str] = set()  # runs whose last worker died under them
        self.peak = 0
        self.started = 0
        self.start_order: collections.deque[str] = collections.deque(maxlen=START_ORDER_KEPT)

    # ------------------------------------------------------------ reading
    def slot_of(self, run_id: str) -> WorkerSlot | None:
        """The slot whose worker drives ``run_id`` now, if any."""
        return self._driving.get(run_id)

    def is_driving(self, run_id: str) -> bool:
        return run_id in self._driving

    @property
    def busy(self) -> int:
        return sum(1 for slot in self.workers if slot.runs)

    def room(self) -> int:
        """How many more runs the pool could take now: an upper bound (a run that must be
        alone needs a worker of its own)."""
        shared = sum(self.runs_per_worker - len(s.runs) for s in self.workers if not s.alone)
        return max(0, shared) + (self.max_workers - len(self.workers)) * self.runs_per_worker

    def drives(self) -> list[Drive]:
        """Every run a worker drives now, for supervision."""
        return [
            Drive(worker_id=slot.worker_id, run_id=run_id, since=self._since[run_id], seen_alive=slot.seen_alive)
            for run_id, slot in self._driving.items()
        ]

    def slot_by_id(self, worker_id: str) -> WorkerSlot | None:
        """The live slot of worker ``worker_id``, if it is still in the pool."""
        return next((slot for slot in self.workers if slot.worker_id == worker_id), None)

    # --------------------------------------------------------- placement
    def place(self, pending: collections.deque[str]) -> list[tuple[str, WorkerSlot]]:
        """Take runs off the front of ``pending`` while workers have room, in order, and give
        each a slot; a run that must be alone and finds no free worker stays queued without
        holding back the runs behind it. The runs given a slot, with it."""
        placed: list[tuple[str, WorkerSlot]] = []
        waiting_alone: list[str] = []
        while pending:
            run_id = pending.popleft()
            if run_id in self._driving:
                continue
            slot = self._slot_for(run_id, draining=bool(waiting_alone))
            if slot is None:
                if run_id in self._alone:
                    waiting_alone.append(run_id)
                    continue
                pending.appendleft(run_id)
                break
            slot.runs.add(run_id)
            slot.alone = run_id in self._alone
            self._driving[run_id] = slot
            self._since[run_id] = self._clock()
            self.start_order.append(run_id)
            self.peak = max(self.peak, len(self.workers))
            placed.append((run_id, slot))
        pending.extendleft(reversed(waiting_alone))
        return placed

    def _slot_for(self, run_id: str, *, draining: bool) -> WorkerSlot | None:
        """An idle worker, else a new one under the cap, else (unless the run must be alone)
        the least busy worker with room. ``draining``: a run waits for a worker of its own,
        so the least busy worker takes nothing new until it is idle."""
        idle = [slot for slot in self.workers if not slot.runs]
        if idle:
            return idle[-1]
        if len(self.workers) < self.max_workers:
            worker_id = f"worker-{uuid.uuid4().hex[:12]}"
            slot = WorkerSlot(worker_id=worker_id, handle=self._spawn(worker_id))
            self.started += 1
            self.workers.append(slot)
            return slot
        if run_id in self._alone:
            return None
        shared = sorted(
            (s for s in self.workers if not s.alone and len(s.runs) < self.runs_per_worker),
            key=lambda s: len(s.runs),
        )
        if draining:
            shared = shared[1:]  # the least busy one drains
        return shared[0] if shared else None

    # ------------------------------------------------------- turn endings
    def turn_ended(self, run_id: str, slot: WorkerSlot, *, finished: bool) -> None:
        """``slot``'s turn with ``run_id`` is over; ``finished``: the worker gave an outcome
        (rather than dying or raising), so it was reused and the run may share again."""
        del self._driving[run_id]
        del self._since[run_id]
        slot.runs.discard(run_id)
        if not slot.runs:
            slot.alone = False
        if finished:
            slot.turns += 1
            slot.seen_alive = True  # it answered: it has started
            self._alone.discard(run_id)

    def retire(self, slot: WorkerSlot) -> None:
        """Take a lost worker out of the pool and kill it (the first of its runs to learn of
        the loss does this; the others find it gone)."""
        if slot in self.workers:
            self.workers.remove(slot)
            self._kill(slot.handle)

    def keep_alone(self, run_id: str) -> None:
        """``run_id``'s worker died under it: its next turn is on a worker of its own."""
        self._alone.add(run_id)

    def forget(self, run_id: str) -> None:
        """``run_id`` will not be started again soon (failed, cancelled, paused): drop its alone mark."""
        self._alone.discard(run_id)
