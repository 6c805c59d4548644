"""The fold from events to a run's state, and planning on top of it.

``WorkflowState`` is a cache of the event log: the same log always folds to
the same state, and a snapshot taken at cursor c plus the events after c
folds to exactly the state of the full log. It also plans: which tasks may
run now (``runnables``), which bookkeeping events follow from the log
(``advance``: skips, signals consumed, timers, map fan-out, completion) and
which events record a task's outcome (``success_events``/``failure_events``).
It never runs user code and never does I/O; the worker does (plan, execute,
apply). Pure: no Ray.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from runner import serialization
from runner.errors import FoldError, SnapshotMismatch
from runner.events import (
    SKIPPED,
    ErrorInfo,
    Event,
    FactProduced,
    FactRef,
    FactReused,
    MapExpanded,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunPaused,
    RunResumed,
    RunSubmitted,
    RunSuspended,
    SignalReceived,
    StepFailed,
    StepSkipped,
    StepStarted,
    StoredEvent,
    TimerFired,
    TimerScheduled,
)
from runner.workflow import Node, NodeKind, Workflow

TaskKey = tuple[str, "int | None"]

# Task statuses.
WAITING = "waiting"  # not started yet
RUNNING = "running"  # StepStarted recorded, no outcome yet
RETRY = "retry"  # failed, another attempt at retry_at
FALLBACK = "fallback"  # failed for good; its fallback is still to run
DONE = "done"  # FactProduced
SKIPPED_STATUS = "skipped"  # StepSkipped
FAILED = "failed"  # failed for good

_EXECUTABLE = (NodeKind.STEP, NodeKind.RULE, NodeKind.MAP)


class _NotTaken:
    """Returned by a rule's task when its condition was false."""

    def __repr__(self) -> str:
        return "NOT_TAKEN"

    def __reduce__(self) -> str:
        return "NOT_TAKEN"


NOT_TAKEN = _NotTaken()


@dataclass
class TaskRecord:
    """What the log says about one task: a step, or one item of a map."""

    status: str = WAITING
    attempt: int = 0
    value: Any = None
    error: ErrorInfo | None = None
    retry_at: float | None = None
    started_at: float | None = None  # the latest attempt's start
    finished_at: float | None = None
    first_started_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class Task:
    """One thing to execute: ``fn(*inputs)`` of ``node`` (item ``item`` of a map)."""

    node: str
    attempt: int
    inputs: tuple[Any, ...]
    item: int | None = None
    fallback: bool = False

    @property
    def key(self) -> TaskKey:
        return (self.node, self.item)


@dataclass(frozen=True, kw_only=True)
class StepInfo:
    """One component as the log tells it: status, attempts and timings (unix seconds).

    ``status``: pending (upstreams not done), ready, running, retrying,
    waiting (for a signal or a timer), done, skipped or failed. For a map,
    ``items`` and ``items_done`` count its tasks and ``attempts`` adds theirs up.
    """

    name: str
    kind: str
    status: str
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: ErrorInfo | None = None
    items: int | None = None
    items_done: int | None = None
    reused: bool = False

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class _Open:
    """Placeholder for a map item without a result yet."""

    def __repr__(self) -> str:
        return "OPEN"

    def __reduce__(self) -> str:
        return "_OPEN"


_OPEN = _Open()


@dataclass
class _MapSummary:
    """Attempts and timings of a map's resolved items, added up."""

    attempts: int = 0
    first_started_at: float | None = None
    finished_at: float | None = None
    error: ErrorInfo | None = None

    def add(self, rec: TaskRecord) -> None:
        self.attempts += rec.attempt
        if rec.first_started_at is not None:
            self.first_started_at = min(self.first_started_at or rec.first_started_at, rec.first_started_at)
        if rec.finished_at is not None:
            self.finished_at = max(self.finished_at or rec.finished_at, rec.finished_at)
        if rec.error is not None:
            self.error = rec.error


@dataclass
class _Data:
    """Everything the fold knows; compared for equality and pickled into snapshots."""

    run_id: str = ""
    definition_hash: str = ""
    cursor: int = 0
    submitted: bool = False
    input: Any = None
    parent_run_id: str | None = None
    tasks: dict[TaskKey, TaskRecord] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    map_counts: dict[str, int] = field(default_factory=dict)
    timers: dict[str, float] = field(default_factory=dict)
    signals: list[tuple[int, str, Any]] = field(default_factory=list)  # received, not consumed
    last_signal_id: int = 0
    paused: bool = False
    suspended: bool = False
    outcome: str | None = None  # completed | failed | cancelled
    result: Any = None
    error: ErrorInfo | None = None
    failed_node: str | None = None
    reused: set[str] = field(default_factory=set)  # resolved by FactReused (a fork)
    # Map items: a record only while an item is open; resolved items leave their value in
    # item_values and their attempts and timings in map_summary, so state (and snapshots)
    # stay small and every step costs O(1) however many items a map has.
    item_values: dict[str, list[Any]] = field(default_factory=dict)
    items_open: dict[str, int] = field(default_factory=dict)
    ready_items: dict[str, set[int]] = field(default_factory=dict)  # waiting, retrying or falling back
    map_summary: dict[str, _MapSummary] = field(default_factory=dict)
    running: set[TaskKey] = field(default_factory=set)


class WorkflowState:
    """The fold of one run's event log over its workflow definition.

    Besides ``_Data`` (what snapshots hold) it keeps indexes derived from it, so that
    planning costs what changed rather than the size of the workflow. They are built
    from ``_Data`` when the state is made (so a restored state has them too) and then
    kept up to date by the fold, only once an event has passed validation:

    - ``_frontier``: unresolved components whose upstreams are all resolved, the only
      ones planning looks at (a component resolves only after its upstreams did);
    - ``_open_waits``: the waits in the frontier;
    - ``_retry_times`` and ``_timer_times``: heaps of retry times and timer due times
      for ``next_wakeup``; entries that no longer hold are dropped when they reach the top.
    """

    def __init__(self, workflow: Workflow, data: _Data | None = None) -> None:
        self.workflow = workflow
        self._d = data or _Data()
        self._order = {name: i for i, name in enumerate(workflow.nodes)}
        self._by_order = list(workflow.nodes.values())
        self._downstream = _downstream(workflow)
        self._frontier: set[str] = set()
        self._open_waits: set[str] = set()
        self._retry_times: list[tuple[float, str, int]] = []  # (retry_at, node, item or -1)
        self._timer_times: list[tuple[float, str]] = []  # (due_at, node)
        self._build_indexes()

    # ------------------------------------------------------------ building
    @classmethod
    def from_events(
        cls, workflow: Workflow, events: Iterable[StoredEvent], snapshot: bytes | None = None
    ) -> WorkflowState:
        """Fold ``events`` (those after the snapshot's cursor, if one is given)."""
        state = cls.restore(workflow, snapshot) if snapshot is not None else cls(workflow)
        for stored in events:
            state.apply(stored)
        return state

    @classmethod
    def restore(cls, workflow: Workflow, snapshot: bytes) -> WorkflowState:
        """Rebuild a state from ``snapshot()``; SnapshotMismatch if it is for another definition."""
        try:
            definition_hash, data = serialization.loads(snapshot)
        except Exception as exc:
            raise SnapshotMismatch(f"snapshot cannot be read ({exc}); fold the full log instead") from exc
        if definition_hash != workflow.definition_hash() or not isinstance(data, _Data):
            raise SnapshotMismatch(
                f"snapshot was taken for definition {definition_hash[:12]}, not "
                f"{workflow.name!r} {workflow.definition_hash()[:12]}; fold the full log instead"
            )
        return cls(workflow, data)

    def snapshot(self) -> bytes:
        """The state as bytes, valid at ``self.cursor``."""
        return serialization.dumps((self.workflow.definition_hash(), self._d))

    def copy(self) -> WorkflowState:
        return WorkflowState.restore(self.workflow, self.snapshot())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkflowState):
            return NotImplemented
        return self.workflow is other.workflow and self._d == other._d

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<WorkflowState {self.workflow.name} run={self._d.run_id!r} cursor={self._d.cursor} status={self.status}>"
        )

    # ------------------------------------------------------------- indexes
    def _build_indexes(self) -> None:
        """Derive the planning indexes from ``_Data``."""
        d = self._d
        for node in self.workflow.nodes.values():
            if node.name not in d.results and all(up in d.results for up in node.after):
                self._enter_frontier(node)
        for (name, item), rec in d.tasks.items():
            if rec.status == RETRY and rec.retry_at is not None:
                self._push_retry(name, item, rec.retry_at)
        for name, due in d.timers.items():
            if name not in d.results:
                heapq.heappush(self._timer_times, (due, name))

    def _enter_frontier(self, node: Node) -> None:
        self._frontier.add(node.name)
        if node.kind is NodeKind.WAIT:
            self._open_waits.add(node.name)

    def _push_retry(self, name: str, item: int | None, retry_at: float) -> None:
        heapq.heappush(self._retry_times, (retry_at, name, -1 if item is None else item))

    def _resolve(self, name: str, value: Any) -> None:
        """Record ``name``'s result: it leaves the frontier, and what it unblocks downstream enters it."""
        results = self._d.results
        results[name] = value
        self._frontier.discard(name)
        self._open_waits.discard(name)
        for child in self._downstream[name]:
            if child.name not in results and all(up in results for up in child.after):
                self._enter_frontier(child)

    def _in_order(self, names: Iterable[str]) -> list[Node]:
        """The components ``names`` in definition (topological) order."""
        return [self._by_order[i] for i in sorted(self._order[name] for name in names)]

    # ------------------------------------------------------------- reading
    @property
    def run_id(self) -> str:
        return self._d.run_id

    @property
    def cursor(self) -> int:
        """Sequence number of the last event folded (0: none)."""
        return self._d.cursor

    @property
    def input(self) -> Any:
        return self._d.input

    @property
    def status(self) -> str:
        """completed, failed, cancelled, paused, suspended or running (pending before RunSubmitted)."""
        d = self._d
        if d.outcome:
            return d.outcome
        if not d.submitted:
            return "pending"
        if d.paused:
            return "paused"
        if d.suspended:
            return "suspended"
        return "running"

    @property
    def is_finished(self) -> bool:
        return self._d.outcome is not None

    @property
    def result(self) -> Any:
        """The run's result once completed (may hold FactRefs for the caller to load)."""
        return self._d.result

    @property
    def error(self) -> ErrorInfo | None:
        return self._d.error

    @property
    def failed_node(self) -> str | None:
        return self._d.failed_node

    @property
    def last_signal_id(self) -> int:
        """The highest inbox id already taken into the log."""
        return self._d.last_signal_id

    def task(self, node: str, item: int | None = None) -> TaskRecord | None:
        """The record of a step, or of a map item that has no result yet (resolved items keep only their value)."""
        return self._d.tasks.get((node, item))

    def item_value(self, node: str, item: int) -> Any:
        """A map item's result (SKIPPED if skipped); KeyError while it has none."""
        d = self._d
        values = d.results.get(node) if node in d.results else d.item_values.get(node)
        if values is None or not 0 <= item < len(values) or values[item] is _OPEN:
            raise KeyError((node, item))
        return values[item]

    def tasks(self) -> dict[TaskKey, TaskRecord]:
        return {key: replace(rec) for key, rec in self._d.tasks.items()}

    def results(self) -> dict[str, Any]:
        """Results of the components resolved so far (SKIPPED for skipped ones)."""
        return dict(self._d.results)

    def is_resolved(self, node: str) -> bool:
        return node in self._d.results

    def started(self) -> list[TaskKey]:
        """Tasks with a StepStarted and no outcome yet."""
        return sorted(self._d.running, key=lambda key: (self._order[key[0]], -1 if key[1] is None else key[1]))

    def ran(self) -> set[str]:
        """Components that have started at least once (their code ran, or may have)."""
        d = self._d
        names = {name for (name, _), rec in d.tasks.items() if rec.attempt > 0 or rec.status == RUNNING}
        return names | {name for name, summary in d.map_summary.items() if summary.attempts > 0}

    def steps(self) -> list[StepInfo]:
        """Every component's status, attempts and timings, in definition order."""
        return [self._step_info(node) for node in self.workflow.nodes.values()]

    def _step_info(self, node: Node) -> StepInfo:
        d = self._d
        name = node.name
        summary = d.map_summary.get(name, _MapSummary())
        if node.kind is NodeKind.MAP and name in d.map_counts:
            records = [rec for (n, i), rec in d.tasks.items() if n == name and i is not None]
        else:
            records = [rec for rec in (d.tasks.get((name, None)),) if rec is not None]
        starts = [t for t in [r.first_started_at for r in records] + [summary.first_started_at] if t is not None]
        ends = [t for t in [r.finished_at for r in records] + [summary.finished_at] if t is not None]
        errors = [e for e in [summary.error] + [r.error for r in records] if e is not None]
        resolved = name in d.results
        if resolved:
            status = "skipped" if d.results[name] is SKIPPED else "done"
            finished = max(ends) if ends else None
        else:
            statuses = {r.status for r in records}
            inputs = self._inputs(node)
            if FAILED in statuses:
                status = "failed"
            elif RUNNING in statuses or FALLBACK in statuses:
                status = "running"
            elif RETRY in statuses:
                status = "retrying"
            elif inputs is None:
                status = "pending"
            elif node.kind in (NodeKind.WAIT, NodeKind.SLEEP):
                status = "waiting"
            else:
                status = "ready"
            finished = max(ends) if status == "failed" and ends else None
        return StepInfo(
            name=name,
            kind=node.kind.value,
            status=status,
            attempts=sum(r.attempt for r in records) + summary.attempts,
            started_at=min(starts) if starts else None,
            finished_at=finished,
            error=errors[-1] if errors else None,
            items=d.map_counts.get(name) if node.kind is NodeKind.MAP else None,
            items_done=(d.map_counts[name] - len(records) if name in d.map_counts else None),
            reused=name in d.reused,
        )

    def waiting_for(self) -> list[str]:
        """Signal names the run is blocked on now."""
        return [node.signal or "" for node in self._in_order(self._open_waits)]

    def next_wakeup(self) -> float | None:
        """The earliest time a retry or timer becomes due, if any."""
        times = [due for due in (self._next_retry(), self._next_timer()) if due is not None]
        return min(times) if times else None

    def _next_retry(self) -> float | None:
        """The earliest ``retry_at`` of a task waiting to retry (stale heap entries are dropped)."""
        heap = self._retry_times
        while heap:
            retry_at, name, item = heap[0]
            rec = self._d.tasks.get((name, None if item < 0 else item))
            if rec is not None and rec.status == RETRY and rec.retry_at == retry_at:
                return retry_at
            heapq.heappop(heap)
        return None

    def _next_timer(self) -> float | None:
        """The earliest due time of a timer whose sleep has not fired (fired ones are dropped)."""
        heap = self._timer_times
        while heap and heap[0][1] in self._d.results:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # ---------------------------------------------------------------- fold
    def apply(self, stored: StoredEvent) -> None:
        """Fold one stored event; FoldError if it cannot follow the log so far."""
        d = self._d
        if stored.seq != d.cursor + 1:
            raise FoldError(f"event seq {stored.seq} does not follow cursor {d.cursor}: the log has a gap or repeat")
        if d.run_id and stored.run_id != d.run_id:
            raise FoldError(f"event of run {stored.run_id!r} folded into run {d.run_id!r}")
        event = stored.event
        if not d.submitted and not isinstance(event, RunSubmitted):
            raise FoldError(f"the log must start with RunSubmitted, not {type(event).__name__}")
        if d.outcome is not None:
            raise FoldError(f"{type(event).__name__} after the run ended ({d.outcome})")
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise FoldError(f"unknown event type {type(event).__name__}")
        handler(self, stored.run_id, event)
        d.cursor = stored.seq

    def _on_submitted(self, run_id: str, e: RunSubmitted) -> None:
        if self._d.submitted:
            raise FoldError("RunSubmitted twice in one log")
        if e.workflow != self.workflow.name:
            raise FoldError(f"log is for workflow {e.workflow!r}, not {self.workflow.name!r}")
        self._d.submitted = True
        self._d.run_id = run_id
        self._d.input = e.input
        self._d.definition_hash = e.definition_hash
        self._d.parent_run_id = e.parent_run_id

    def _on_started(self, run_id: str, e: StepStarted) -> None:
        node = self._executable(e.node, e.item)
        if self._inputs(node) is None:
            raise FoldError(f"StepStarted for {e.node!r} before its upstream components resolved")
        if e.item is None and self.is_resolved(e.node):
            raise FoldError(f"StepStarted for {e.node!r} which already has a result")
        rec = self._open_record(e.node, e.item, "StepStarted")
        if rec.status == FALLBACK:  # the fallback of the last attempt starts; it stays FALLBACK until its outcome
            if e.attempt != rec.attempt:
                raise FoldError(
                    f"StepStarted attempt {e.attempt} for the fallback of {_label(e.node, e.item)}, "
                    f"whose last attempt was {rec.attempt}"
                )
            rec.started_at = e.at
            return
        if rec.status not in (WAITING, RETRY, RUNNING):
            raise FoldError(f"StepStarted for {_label(e.node, e.item)} which is already {rec.status}")
        if e.attempt < max(rec.attempt, 1):
            raise FoldError(f"StepStarted attempt {e.attempt} for {_label(e.node, e.item)} after attempt {rec.attempt}")
        self._d.tasks[(e.node, e.item)] = rec
        self._set_status((e.node, e.item), rec, RUNNING)
        rec.attempt, rec.retry_at, rec.started_at = e.attempt, None, e.at
        if rec.first_started_at is None:
            rec.first_started_at = e.at

    def _on_fact(self, run_id: str, e: FactProduced) -> None:
        node = self._node(e.node)
        if node.kind is NodeKind.WAIT:
            if self.is_resolved(e.node) or self._inputs(node) is None:
                raise FoldError(f"FactProduced for wait {e.node!r} which is not waiting")
            index = next((i for i, s in enumerate(self._d.signals) if s[1] == node.signal), None)
            if index is None:
                raise FoldError(f"FactProduced for wait {e.node!r} with no {node.signal!r} signal received")
            self._d.signals.pop(index)
            self._resolve(e.node, e.value)
            return
        self._executable(e.node, e.item)
        rec = self._open_record(e.node, e.item, "FactProduced")
        expected = FALLBACK if e.fallback else RUNNING
        if rec.status != expected:
            raise FoldError(f"FactProduced for {_label(e.node, e.item)} which is {rec.status}, not {expected}")
        self._set_status((e.node, e.item), rec, DONE)
        rec.value, rec.finished_at = e.value, e.at
        self._resolve_task(e.node, e.item, e.value)

    def _on_expanded(self, run_id: str, e: MapExpanded) -> None:
        node = self._node(e.node)
        if node.kind is not NodeKind.MAP or e.node in self._d.map_counts or self.is_resolved(e.node):
            raise FoldError(f"MapExpanded for {e.node!r}, which is not an unexpanded map")
        if e.count < 0:
            raise FoldError(f"MapExpanded with negative count {e.count}")
        if self._inputs(node) is None:
            raise FoldError(f"MapExpanded for {e.node!r} before its upstream component resolved")
        d = self._d
        d.map_counts[e.node] = e.count
        d.tasks.pop((e.node, None), None)
        for i in range(e.count):
            d.tasks[(e.node, i)] = TaskRecord()
        d.ready_items[e.node] = set(range(e.count))
        d.item_values[e.node] = [_OPEN] * e.count
        d.items_open[e.node] = e.count
        d.map_summary[e.node] = _MapSummary()
        if e.count == 0:
            self._finish_map(e.node)

    def _on_failed(self, run_id: str, e: StepFailed) -> None:
        node = self._node(e.node)
        key = (e.node, e.item)
        if node.kind is NodeKind.MAP and e.item is None:
            if e.node in self._d.map_counts:  # a map whose input was not a list fails before expanding
                raise FoldError(f"StepFailed for map {e.node!r} as a whole after it expanded")
            if self._inputs(node) is None:
                raise FoldError(f"StepFailed for map {e.node!r} before its upstream component resolved")
            rec = self._d.tasks.setdefault(key, TaskRecord(status=RUNNING, attempt=1))
        else:
            self._executable(e.node, e.item)
            rec = self._open_record(e.node, e.item, "StepFailed")
        if rec.status not in (RUNNING, FALLBACK):
            raise FoldError(f"StepFailed for {_label(e.node, e.item)} which is {rec.status}, not running")
        rec.error, rec.finished_at = e.error, e.at
        if rec.status == FALLBACK:
            status = FAILED
        elif e.retry_at is not None:
            status, rec.retry_at = RETRY, e.retry_at
            self._push_retry(e.node, e.item, e.retry_at)
        elif node.policy.fallback is not None and not (node.kind is NodeKind.MAP and e.item is None):
            status = FALLBACK
        else:
            status = FAILED
        self._set_status(key, rec, status)

    def _on_skipped(self, run_id: str, e: StepSkipped) -> None:
        node = self._node(e.node)
        if e.item is not None:
            self._executable(e.node, e.item)
            rec = self._open_record(e.node, e.item, "StepSkipped")
            self._set_status((e.node, e.item), rec, SKIPPED_STATUS)
            rec.value, rec.finished_at = SKIPPED, e.at
            self._resolve_task(e.node, e.item, SKIPPED)
            return
        if self.is_resolved(e.node):
            raise FoldError(f"StepSkipped for {e.node!r} which already has a result")
        if self._inputs(node) is None:
            raise FoldError(f"StepSkipped for {e.node!r} before its upstream components resolved")
        whole = self._d.tasks.get((e.node, None))
        if whole is not None:
            self._set_status((e.node, None), whole, SKIPPED_STATUS)
            whole.value, whole.finished_at = SKIPPED, e.at
        self._resolve(e.node, SKIPPED)

    def _on_signal(self, run_id: str, e: SignalReceived) -> None:
        if e.signal_id <= self._d.last_signal_id:
            raise FoldError(f"signal {e.signal_id} received again (last was {self._d.last_signal_id})")
        self._d.signals.append((e.signal_id, e.name, e.payload))
        self._d.last_signal_id = e.signal_id

    def _on_timer_scheduled(self, run_id: str, e: TimerScheduled) -> None:
        node = self._node(e.node)
        if node.kind is not NodeKind.SLEEP or e.node in self._d.timers or self._inputs(node) is None:
            raise FoldError(f"TimerScheduled for {e.node!r}, which is not a sleep ready to start")
        self._d.timers[e.node] = e.due_at
        heapq.heappush(self._timer_times, (e.due_at, e.node))

    def _on_timer_fired(self, run_id: str, e: TimerFired) -> None:
        node = self._node(e.node)
        inputs = self._inputs(node)
        if e.node not in self._d.timers or self.is_resolved(e.node) or inputs is None:
            raise FoldError(f"TimerFired for {e.node!r}, which has no pending timer")
        self._resolve(e.node, inputs[0] if inputs else None)

    def _on_suspended(self, run_id: str, e: RunSuspended) -> None:
        self._d.suspended = True

    def _on_resumed(self, run_id: str, e: RunResumed) -> None:
        self._d.suspended = False
        self._d.paused = False

    def _on_paused(self, run_id: str, e: RunPaused) -> None:
        self._d.paused = True

    def _on_reused(self, run_id: str, e: FactReused) -> None:
        node = self._node(e.node)
        if self.is_resolved(e.node) or self._inputs(node) is None or (e.node, None) in self._d.tasks:
            raise FoldError(f"FactReused for {e.node!r}, which has already started or whose upstreams are unresolved")
        if node.kind in _EXECUTABLE and node.kind is not NodeKind.MAP:
            self._d.tasks[(e.node, None)] = TaskRecord(status=DONE, value=e.value, finished_at=e.at)
        self._resolve(e.node, e.value)
        self._d.reused.add(e.node)

    def _on_cancelled(self, run_id: str, e: RunCancelled) -> None:
        self._d.outcome = "cancelled"

    def _on_completed(self, run_id: str, e: RunCompleted) -> None:
        self._d.outcome, self._d.result = "completed", e.result

    def _on_run_failed(self, run_id: str, e: RunFailed) -> None:
        self._d.outcome, self._d.error, self._d.failed_node = "failed", e.error, e.node

    # ------------------------------------------------------------ planning
    def runnables(self, in_flight: Collection[TaskKey] = (), now: float | None = None) -> list[Task]:
        """Tasks that may start now, highest priority first.

        A task recorded as started but not in ``in_flight`` is returned again
        (its worker died): a step runs at least once. Retries are returned once
        ``now`` reaches their ``retry_at`` (``now=None``: ignore the clock).
        """
        d = self._d
        if d.outcome or d.paused or not d.submitted:
            return []
        tasks: list[Task] = []
        orphans: dict[str, list[TaskKey]] = {}  # map items started by a worker that is gone
        for key in d.running.difference(in_flight) if len(d.running) else ():
            if key[1] is not None:
                orphans.setdefault(key[0], []).append(key)
        for name in self._frontier:  # the order does not matter: tasks are sorted below
            node = self.workflow.nodes[name]
            if node.kind not in _EXECUTABLE:
                continue
            inputs = self._inputs(node)
            if inputs is None or (node.after and all(v is SKIPPED for v in inputs)):
                continue
            if node.kind is NodeKind.MAP:
                if node.name not in d.map_counts:
                    continue
                keys: list[TaskKey] = [(node.name, i) for i in sorted(d.ready_items.get(node.name, ()))]
                keys += orphans.get(node.name, [])
            else:
                keys = [(node.name, None)]
            for key in keys:
                if key in in_flight:
                    continue
                rec = d.tasks.get(key) or TaskRecord()
                if rec.status == WAITING:
                    tasks.append(Task(node=key[0], item=key[1], attempt=1, inputs=inputs))
                elif rec.status == RUNNING:
                    tasks.append(Task(node=key[0], item=key[1], attempt=rec.attempt, inputs=inputs))
                elif rec.status == RETRY and (now is None or (rec.retry_at or 0) <= now):
                    tasks.append(Task(node=key[0], item=key[1], attempt=rec.attempt + 1, inputs=inputs))
                elif rec.status == FALLBACK:
                    tasks.append(Task(node=key[0], item=key[1], attempt=rec.attempt, inputs=inputs, fallback=True))
        order = self._order
        tasks.sort(key=lambda t: (-self.workflow.nodes[t.node].policy.priority, order[t.node], t.item or 0))
        return tasks

    def advance(self, now: float) -> list[Event]:
        """Bookkeeping events that follow from the log as it stands, in order.

        Skips whose upstreams were all skipped, waits whose signal is here,
        timers to schedule or fire, maps to expand, and finally RunCompleted.
        Apply them (after appending) and call again until it returns nothing
        new; one call already follows chains, since nodes are in topological order.
        """
        d = self._d
        if d.outcome or d.paused or not d.submitted:
            return []
        events: list[Event] = []
        overlay: dict[str, Any] = {}
        taken_signals: set[int] = set()

        def result(name: str) -> Any:
            return overlay[name] if name in overlay else d.results[name]

        def resolved(name: str) -> bool:
            return name in overlay or name in d.results

        # the frontier in topological order; what resolves here lets its downstream components in
        queue = [self._order[name] for name in self._frontier]
        heapq.heapify(queue)

        def settle(name: str, value: Any) -> None:
            overlay[name] = value
            for child in self._downstream[name]:
                if all(resolved(up) for up in child.after):
                    heapq.heappush(queue, self._order[child.name])

        while queue:
            node = self._by_order[heapq.heappop(queue)]
            name = node.name
            inputs = tuple(result(up) for up in node.after) if node.after else self._root_inputs(node)
            if node.after and all(v is SKIPPED for v in inputs):
                events.append(StepSkipped(node=name, reason="all upstream components were skipped", at=now))
                settle(name, SKIPPED)
            elif node.kind is NodeKind.WAIT:
                signal = next((s for s in d.signals if s[1] == node.signal and s[0] not in taken_signals), None)
                if signal is not None:
                    taken_signals.add(signal[0])
                    events.append(FactProduced(node=name, value=signal[2], at=now))
                    settle(name, signal[2])
            elif node.kind is NodeKind.SLEEP:
                due = d.timers.get(name)
                if due is None:
                    due = now + (node.seconds or 0.0)
                    events.append(TimerScheduled(node=name, due_at=due, at=now))
                if due <= now:
                    events.append(TimerFired(node=name, at=now))
                    settle(name, inputs[0] if inputs else None)
            elif node.kind is NodeKind.MAP and name not in d.map_counts and (name, None) not in d.tasks:
                count = _length(inputs[0])
                if count is None:
                    error = ErrorInfo(
                        type="TypeError",
                        message=f"map {name!r} needs a list or tuple from {node.after[0]!r}, got {type(inputs[0]).__name__}",
                        non_retryable=True,
                    )
                    events.append(StepFailed(node=name, attempt=1, error=error, at=now))
                    events += self._final_failure(node, None, error, now)
                    if node.policy.on_failure == "skip":
                        settle(name, SKIPPED)
                    else:
                        return events
                else:
                    events.append(MapExpanded(node=name, count=count, at=now))
                    if count == 0:
                        settle(name, [])
        if len(d.results) + len(overlay) == len(self._by_order):  # every component resolved
            events.append(RunCompleted(result=self._run_result(result), at=now))
        return events

    def success_events(self, task: Task, value: Any, now: float) -> list[Event]:
        """Events recording that ``task`` returned ``value`` (NOT_TAKEN: a rule that did not fire)."""
        if value is NOT_TAKEN:
            return [StepSkipped(node=task.node, item=task.item, reason="rule condition was false", at=now)]
        return [
            FactProduced(
                node=task.node, item=task.item, value=value, attempt=task.attempt, fallback=task.fallback, at=now
            )
        ]

    def failure_events(self, task: Task, error: ErrorInfo, now: float, rng: random.Random | None = None) -> list[Event]:
        """Events recording that ``task`` failed: a retry, a fallback to run, a skip or the run's failure."""
        node = self.workflow.nodes[task.node]
        policy = node.policy
        if not task.fallback and not error.non_retryable and task.attempt < policy.max_attempts:
            retry_at = now + policy.retry_delay(task.attempt, rng)
            return [
                StepFailed(node=task.node, item=task.item, attempt=task.attempt, error=error, retry_at=retry_at, at=now)
            ]
        events: list[Event] = [StepFailed(node=task.node, item=task.item, attempt=task.attempt, error=error, at=now)]
        if policy.fallback is not None and not task.fallback:
            return events  # runnables() offers the fallback next
        return events + self._final_failure(node, task.item, error, now)

    # ------------------------------------------------------------- helpers
    def _final_failure(self, node: Node, item: int | None, error: ErrorInfo, now: float) -> list[Event]:
        if node.policy.on_failure == "skip":
            return [StepSkipped(node=node.name, item=item, reason=f"failed: {error}", at=now)]
        return [RunFailed(error=error, node=node.name, at=now)]

    def _node(self, name: str) -> Node:
        node = self.workflow.nodes.get(name)
        if node is None:
            raise FoldError(f"event names component {name!r}, which workflow {self.workflow.name!r} does not have")
        return node

    def _executable(self, name: str, item: int | None) -> Node:
        node = self._node(name)
        if node.kind not in _EXECUTABLE:
            raise FoldError(f"{node.kind.value} {name!r} is not executed as a task")
        if node.kind is NodeKind.MAP:
            count = self._d.map_counts.get(name)
            if item is None or count is None or not 0 <= item < count:
                raise FoldError(f"{_label(name, item)} is not an item of expanded map {name!r}")
        elif item is not None:
            raise FoldError(f"{node.kind.value} {name!r} has no items, got item {item}")
        return node

    def _root_inputs(self, node: Node) -> tuple[Any, ...]:
        return (self._d.input,) if node.takes_input else ()

    def _inputs(self, node: Node) -> tuple[Any, ...] | None:
        """Upstream values in ``after`` order, or None while any is unresolved."""
        if not node.after:
            return self._root_inputs(node)
        results = self._d.results
        if not all(up in results for up in node.after):
            return None
        return tuple(results[up] for up in node.after)

    def _resolve_task(self, name: str, item: int | None, value: Any) -> None:
        d = self._d
        if item is None:
            self._resolve(name, value)
            return
        rec = d.tasks.pop((name, item))
        d.map_summary[name].add(rec)
        d.item_values[name][item] = value
        d.items_open[name] -= 1
        if d.items_open[name] == 0:
            self._finish_map(name)

    def _finish_map(self, name: str) -> None:
        d = self._d
        self._resolve(name, d.item_values.pop(name))
        d.items_open.pop(name)
        d.ready_items.pop(name, None)

    def _set_status(self, key: TaskKey, rec: TaskRecord, status: str) -> None:
        """Change a task's status, keeping the running set and the ready-items index in step."""
        d = self._d
        if rec.status == RUNNING:
            d.running.discard(key)
        rec.status = status
        if status == RUNNING:
            d.running.add(key)
        name, item = key
        if item is not None and name in d.ready_items:
            if status in (WAITING, RETRY, FALLBACK):
                d.ready_items[name].add(item)
            else:
                d.ready_items[name].discard(item)

    def _open_record(self, name: str, item: int | None, what: str) -> TaskRecord:
        """The record of an unresolved task (a step not started yet gets a fresh one)."""
        rec = self._d.tasks.get((name, item))
        if rec is not None:
            return rec
        if item is not None:  # items have records from MapExpanded until they resolve
            raise FoldError(f"{what} for {_label(name, item)} which already has a result")
        return TaskRecord()

    def _run_result(self, result: Any) -> Any:
        if self.workflow.output is not None:
            return result(self.workflow.output)
        sinks = self.workflow.sinks()
        if len(sinks) == 1:
            return result(sinks[0])
        return {name: result(name) for name in sinks if result(name) is not SKIPPED}


def _downstream(workflow: Workflow) -> dict[str, tuple[Node, ...]]:
    """Each component's direct downstream components."""
    children: dict[str, list[Node]] = {name: [] for name in workflow.nodes}
    for node in workflow.nodes.values():
        for up in node.after:
            children[up].append(node)
    return {name: tuple(nodes) for name, nodes in children.items()}


def _label(node: str, item: int | None) -> str:
    return repr(node) if item is None else f"{node!r}[{item}]"


def _length(value: Any) -> int | None:
    if isinstance(value, FactRef):
        return value.length
    if isinstance(value, (list, tuple)):
        return len(value)
    return None


_HANDLERS: dict[type, Any] = {
    RunSubmitted: WorkflowState._on_submitted,
    StepStarted: WorkflowState._on_started,
    FactProduced: WorkflowState._on_fact,
    MapExpanded: WorkflowState._on_expanded,
    StepFailed: WorkflowState._on_failed,
    StepSkipped: WorkflowState._on_skipped,
    SignalReceived: WorkflowState._on_signal,
    TimerScheduled: WorkflowState._on_timer_scheduled,
    TimerFired: WorkflowState._on_timer_fired,
    RunSuspended: WorkflowState._on_suspended,
    RunResumed: WorkflowState._on_resumed,
    RunPaused: WorkflowState._on_paused,
    RunCancelled: WorkflowState._on_cancelled,
    FactReused: WorkflowState._on_reused,
    RunCompleted: WorkflowState._on_completed,
    RunFailed: WorkflowState._on_run_failed,
}
