"""Named queues: their limits, and the one decision of which waiting runs start now.

A run submitted with ``queue=`` waits in its queue until :class:`QueueBook`
admits it. A queue limits

- ``concurrency``: runs of the queue started and not ended, across the cluster
  (a run holds its place from its first start until it ends: suspended,
  sleeping and paused runs keep it, so a wake-up never waits for a place);
- ``per_key``: the same, per value of the ``queue_key`` given at submit;
- ``rate``: at most ``Rate.limit`` first starts in any ``Rate.per`` seconds, as
  the store records them (``started_at``); a run admitted counts as a start to
  come until the caller reports its recorded start, so a late take-over never
  squeezes more starts into a period;
- ``max_pending``: runs waiting to start (a submit over it raises ``QueueFull``;
  checked where runs are stored, see :func:`check_pending_room`).

Among the runs a queue may start, higher ``priority`` goes first, then the
store's order (``created_at``, then run id): the order :class:`Waiting` sorts
by, so a Runner that restarts and reads the waiting runs back from the store
starts them in the same order.

Pure: no Ray, no I/O; the clock is passed in. The Runner is a thin caller
(it tells the book of new, started and ended runs, and asks :meth:`QueueBook.admit`).
"""

from __future__ import annotations

import bisect
import collections
import heapq
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field

from runner.errors import QueueConfigError, QueueFull, UnknownQueue

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def _check_limit(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise QueueConfigError(name, f"must be a whole number >= 1 or None (no limit), got {value!r}")


def check_queue_name(name: object, field_name: str = "queue") -> str:
    if not isinstance(name, str) or not QUEUE_NAME.match(name):
        raise QueueConfigError(field_name, f"a queue name is 1-64 letters, digits or '_.:-', got {name!r}")
    return name


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` runs of a queue start in any ``per`` seconds."""

    limit: int
    _: KW_ONLY
    per: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise QueueConfigError("rate.limit", f"must be a whole number >= 1, got {self.limit!r}")
        per = self.per
        if isinstance(per, bool) or not isinstance(per, (int, float)) or not math.isfinite(per) or per <= 0:
            raise QueueConfigError("rate.per", f"must be a positive number of seconds, got {per!r}")


@dataclass(frozen=True)
class Queue:
    """A named queue's limits; None: no limit. See the module's docstring for what each means."""

    name: str
    _: KW_ONLY
    concurrency: int | None = None
    per_key: int | None = None
    rate: Rate | None = None
    max_pending: int | None = None

    def __post_init__(self) -> None:
        check_queue_name(self.name, "name")
        _check_limit("concurrency", self.concurrency)
        _check_limit("per_key", self.per_key)
        _check_limit("max_pending", self.max_pending)
        if self.rate is not None and not isinstance(self.rate, Rate):
            raise QueueConfigError("rate", f"must be a runner.Rate or None, got {self.rate!r}")


def check_queues(queues: object) -> tuple[Queue, ...]:
    """``RunnerConfig.queues`` as a tuple, each a Queue, no name twice."""
    if isinstance(queues, (str, bytes)) or not isinstance(queues, Iterable):
        raise QueueConfigError("queues", f"must be a list of runner.Queue, got {queues!r}")
    out = tuple(queues)
    seen: set[str] = set()
    for queue in out:
        if not isinstance(queue, Queue):
            raise QueueConfigError("queues", f"must hold runner.Queue values, got {queue!r}")
        if queue.name in seen:
            raise QueueConfigError("queues", f"queue {queue.name!r} is declared twice")
        seen.add(queue.name)
    return out


@dataclass(frozen=True, kw_only=True)
class QueueTicket:
    """What a submit stores about a run's place in a queue (the run record's queue fields)."""

    queue: str
    key: str | None = None
    priority: int = 0

    def __post_init__(self) -> None:
        check_queue_name(self.queue)
        if self.key is not None and (not isinstance(self.key, str) or not self.key or len(self.key) > 256):
            raise QueueConfigError(
                "queue_key", f"must be a non-empty string of at most 256 characters, got {self.key!r}"
            )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or abs(self.priority) > 1 << 31:
            raise QueueConfigError("priority", f"must be a whole number (|priority| < 2**31), got {self.priority!r}")


def ticket_for(queue: str | None, queue_key: str | None, priority: int) -> QueueTicket | None:
    """The ticket of a submit's queue arguments (None: no queue); a key or priority without a queue is refused."""
    if queue is None:
        if queue_key is not None:
            raise QueueConfigError("queue_key", "is given without queue=; name the queue the key limits")
        if priority != 0:
            raise QueueConfigError("priority", "is given without queue=; priority orders runs within a queue")
        return None
    return QueueTicket(queue=queue, key=queue_key, priority=priority)


def limits_of(name: str, declared: Mapping[str, Queue], *, declared_only: bool) -> Queue:
    """The limits of queue ``name``: declared, else (unless ``declared_only``) no limits."""
    found = declared.get(name)
    if found is not None:
        return found
    if declared_only:
        raise UnknownQueue(name, sorted(declared))
    return Queue(name)


def check_pending_room(
    tickets: Sequence[QueueTicket | None],
    declared: Mapping[str, Queue],
    pending_in: Callable[[str, int], int],
) -> None:
    """QueueFull if storing runs with ``tickets`` would take a queue over its ``max_pending``.
    ``pending_in(queue, at_most)``: the queue's runs waiting now (counted up to ``at_most``)."""
    wanted = collections.Counter(t.queue for t in tickets if t is not None)
    for name, count in wanted.items():
        queue = declared.get(name)
        if queue is None or queue.max_pending is None:
            continue
        pending = pending_in(name, queue.max_pending + 1)
        if pending + count > queue.max_pending:
            raise QueueFull(name, queue.max_pending, pending)


@dataclass(frozen=True, kw_only=True, order=True)
class Waiting:
    """A run waiting in a queue. Sorts in start order: higher priority, then the store's order."""

    sort_key: tuple[int, float, str] = field(init=False, repr=False)
    run_id: str = field(compare=False)
    ticket: QueueTicket = field(compare=False)
    created_at: float = field(compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sort_key", (-self.ticket.priority, self.created_at, self.run_id))


@dataclass(frozen=True, kw_only=True)
class Admission:
    """What :meth:`QueueBook.admit` decided: runs to start now, in order, and when to ask
    again because a rate limit holds runs back (None: nothing waits on the clock)."""

    start: tuple[str, ...]
    look_again_at: float | None


@dataclass
class _QueueState:
    limits: Queue
    waiting: list[Waiting] = field(default_factory=list)  # a heap
    running: set[str] = field(default_factory=set)
    per_key: collections.Counter[str] = field(default_factory=collections.Counter)
    starts: list[float] = field(default_factory=list)  # first starts the store recorded, oldest first
    unstarted: set[str] = field(default_factory=set)  # admitted, first start not seen yet (rate limits only)


class QueueBook:
    """The runs waiting in and started from each queue, and the admission decision."""

    def __init__(self, declared: Iterable[Queue] = (), *, declared_only: bool = False) -> None:
        self.declared = {q.name: q for q in declared}
        self.declared_only = declared_only
        self._queues: dict[str, _QueueState] = {}
        self._waiting: dict[str, Waiting] = {}
        self._running: dict[str, QueueTicket] = {}

    # ------------------------------------------------------------ reading
    def is_waiting(self, run_id: str) -> bool:
        return run_id in self._waiting

    def is_running(self, run_id: str) -> bool:
        return run_id in self._running

    @property
    def waiting(self) -> int:
        """Runs waiting in every queue."""
        return len(self._waiting)

    def waiting_count(self, queue: str) -> int:
        state = self._queues.get(queue)
        return 0 if state is None else len(state.waiting)

    def running_count(self, queue: str, key: str | None = None) -> int:
        state = self._queues.get(queue)
        if state is None:
            return 0
        return len(state.running) if key is None else state.per_key[key]

    # ----------------------------------------------------------- changes
    def add(self, waiting: Waiting) -> None:
        """A run waits to start (a new submit, or a pending run found at start-up)."""
        if waiting.run_id in self._waiting or waiting.run_id in self._running:
            return
        self._waiting[waiting.run_id] = waiting
        heapq.heappush(self._state(waiting.ticket.queue).waiting, waiting)

    def started(self, run_id: str, ticket: QueueTicket) -> None:
        """A run of the queue has started (found so at start-up): it holds a place."""
        if run_id in self._running:
            return
        self.withdraw(run_id)
        state = self._state(ticket.queue)
        state.running.add(run_id)
        if ticket.key is not None:
            state.per_key[ticket.key] += 1
        self._running[run_id] = ticket

    def counted_start(self, queue: str, at: float) -> None:
        """A run of ``queue`` first started at ``at``, as the store recorded it (``started_at``):
        its rate limit counts it."""
        state = self._state(queue)
        if state.limits.rate is not None:
            bisect.insort(state.starts, at)

    def first_started(self, run_id: str, at: float) -> None:
        """An admitted run's first start, as the store recorded it: it counts from then on,
        instead of as a start to come."""
        ticket = self._running.get(run_id)
        if ticket is None:
            return
        state = self._state(ticket.queue)
        if run_id in state.unstarted:
            state.unstarted.discard(run_id)
            self.counted_start(ticket.queue, at)

    @property
    def unstarted(self) -> list[str]:
        """Admitted runs of rate-limited queues whose first start the store has not shown yet:
        the caller reads their ``started_at`` and reports it (:meth:`first_started`)."""
        return [run_id for state in self._queues.values() for run_id in state.unstarted]

    def ended(self, run_id: str) -> None:
        """A run ended (or is gone): its place is free."""
        self.withdraw(run_id)
        ticket = self._running.pop(run_id, None)
        if ticket is None:
            return
        state = self._state(ticket.queue)
        state.running.discard(run_id)
        state.unstarted.discard(run_id)  # ended without starting (cancelled): it never counts
        if ticket.key is not None:
            state.per_key[ticket.key] -= 1
            if state.per_key[ticket.key] <= 0:
                del state.per_key[ticket.key]

    def withdraw(self, run_id: str) -> None:
        """A waiting run will not start from the queue (cancelled, failed before it started)."""
        waiting = self._waiting.pop(run_id, None)
        if waiting is not None:
            state = self._state(waiting.ticket.queue)
            state.waiting.remove(waiting)
            heapq.heapify(state.waiting)

    # ---------------------------------------------------------- decision
    def admit(self, now: float, room: int) -> Admission:
        """Start at most ``room`` waiting runs now, as every queue's limits allow, best first
        across queues. They hold their places from now; in a rate-limited queue each counts
        as a start to come until :meth:`first_started` reports when it started."""
        candidates: list[Waiting] = []
        look_again: float | None = None
        for state in self._queues.values():
            chosen, again = _choose(state, now, room)
            candidates.extend(chosen)
            if again is not None:
                look_again = again if look_again is None else min(look_again, again)
        candidates.sort()
        start, put_back = candidates[:room], candidates[room:]
        for waiting in put_back:
            heapq.heappush(self._state(waiting.ticket.queue).waiting, waiting)
        for waiting in start:
            del self._waiting[waiting.run_id]
            self.started(waiting.run_id, waiting.ticket)
            state = self._state(waiting.ticket.queue)
            if state.limits.rate is not None:
                state.unstarted.add(waiting.run_id)
        return Admission(start=tuple(w.run_id for w in start), look_again_at=look_again)

    def _state(self, name: str) -> _QueueState:
        state = self._queues.get(name)
        if state is None:
            state = self._queues[name] = _QueueState(limits_of(name, self.declared, declared_only=False))
        return state


def _choose(state: _QueueState, now: float, room: int) -> tuple[list[Waiting], float | None]:
    """Pop the runs ``state``'s queue may start now (at most ``room``), best first; runs
    whose key is at its limit stay. With the time its rate limit next frees a start, if
    runs wait on it."""
    limits = state.limits
    allowed = room
    if limits.concurrency is not None:
        allowed = min(allowed, limits.concurrency - len(state.running))
    look_again: float | None = None
    if limits.rate is not None:
        # a start to come counts now: it will be recorded at or after now, so every window of
        # ``per`` seconds of recorded starts holds at most ``limit`` (see the tests)
        expired = 0
        while expired < len(state.starts) and state.starts[expired] + limits.rate.per <= now:
            expired += 1  # (s + per <= now, not s <= now - per: the very sum look_again_at gives)
        del state.starts[:expired]
        free = limits.rate.limit - len(state.starts) - len(state.unstarted)
        if free < allowed and state.waiting and state.starts:
            look_again = state.starts[0] + limits.rate.per  # starts to come: the caller looks when they are seen
        allowed = min(allowed, free)
    chosen: list[Waiting] = []
    held: list[Waiting] = []
    keys: collections.Counter[str] = collections.Counter()
    while state.waiting and len(chosen) < allowed:
        waiting = heapq.heappop(state.waiting)
        key = waiting.ticket.key
        if key is not None and limits.per_key is not None and state.per_key[key] + keys[key] >= limits.per_key:
            held.append(waiting)
            continue
        if key is not None:
            keys[key] += 1
        chosen.append(waiting)
    for waiting in held:
        heapq.heappush(state.waiting, waiting)
    if look_again is not None and len(chosen) < allowed:
        look_again = None  # not held back by the rate: nothing else to start
    return chosen, look_again
