"""What the fold knows about one run: the data a snapshot holds.

:class:`RunData` is everything folded from the log so far; the fold
(:mod:`runner.fold`) is the only writer, planning and the read models only
read it. It is compared for equality and pickled into snapshots, so it holds
plain values only. Pure: no Ray, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.events import ErrorInfo, FactRef
from runner.store import RunStatus
from runner.vocabulary import Vocabulary
from runner.workflow import Node, NodeKind

TaskKey = tuple[str, "int | None"]
"""A task's identity: (component name, map item or None)."""

EXECUTABLE_KINDS = (NodeKind.STEP, NodeKind.RULE, NodeKind.MAP)
"""Component kinds that run user code as tasks (waits and sleeps do not)."""


class TaskStatus(Vocabulary):
    """Where one task stands in the log."""

    WAITING = "waiting"  # not started yet
    RUNNING = "running"  # StepStarted recorded, no outcome yet
    RETRY = "retry"  # failed, another attempt at retry_at
    LOST = "lost"  # lost to the system (StepLost): the same attempt starts again
    FALLBACK = "fallback"  # failed for good; its fallback is still to run
    DONE = "done"  # FactProduced
    SKIPPED = "skipped"  # StepSkipped
    FAILED = "failed"  # failed for good


READY_STATUSES = frozenset({TaskStatus.WAITING, TaskStatus.RETRY, TaskStatus.LOST, TaskStatus.FALLBACK})
"""Statuses of a task that planning may start (a retry once it is due)."""


@dataclass
class TaskRecord:
    """What the log says about one task: a step, or one item of a map."""

    status: TaskStatus = TaskStatus.WAITING
    attempt: int = 0
    value: Any = None
    error: ErrorInfo | None = None
    retry_at: float | None = None
    started_at: float | None = None  # the latest attempt's start
    finished_at: float | None = None
    first_started_at: float | None = None
    lost: int = 0  # times its attempts were lost to the system (StepLost), all attempts together
    call: FactRef | None = None  # the continuation that runs in the step's place (StepContinued)
    level: int = 0  # how many continuations deep that call is (0: the step's own code)
    # attempts and losses spent before the run was last reopened (RunReopened): a step that had
    # failed for good gets a fresh budget of retries and system retries from there
    attempts_before_reopen: int = 0
    lost_before_reopen: int = 0


class _Open:
    """Placeholder for a map item without a result yet."""

    def __repr__(self) -> str:
        return "OPEN"

    def __reduce__(self) -> str:
        return "OPEN"


OPEN = _Open()


@dataclass
class MapSummary:
    """Attempts and timings of a map's resolved items, added up."""

    attempts: int = 0
    first_started_at: float | None = None
    finished_at: float | None = None
    error: ErrorInfo | None = None
    lost: int = 0

    def add(self, rec: TaskRecord) -> None:
        self.attempts += rec.attempt
        self.lost += rec.lost
        if rec.first_started_at is not None:
            self.first_started_at = min(self.first_started_at or rec.first_started_at, rec.first_started_at)
        if rec.finished_at is not None:
            self.finished_at = max(self.finished_at or rec.finished_at, rec.finished_at)
        if rec.error is not None:
            self.error = rec.error


@dataclass
class RunData:
    """Everything the fold knows; compared for equality and pickled into snapshots."""

    run_id: str = ""
    definition_hash: str = ""
    cursor: int = 0
    submitted: bool = False
    input: Any = None
    parent_run_id: str | None = None
    checkpoint: str | None = None  # the submit's checkpoint strategy, by name (None: the workflow's)
    submitted_at: float | None = None  # RunSubmitted's time
    trace_context: dict[str, str] | None = None  # the submit's trace context (runner.tracing)
    tasks: dict[TaskKey, TaskRecord] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    map_counts: dict[str, int] = field(default_factory=dict)
    timers: dict[str, float] = field(default_factory=dict)
    signals: list[tuple[int, str, Any]] = field(default_factory=list)  # received, not consumed
    last_signal_id: int = 0
    paused: bool = False
    pause_reason: str = ""  # the RunPaused's reason while paused
    suspended: bool = False
    outcome: RunStatus | None = None  # COMPLETED, FAILED, CANCELLED or CONTINUED
    result: Any = None
    successor_run_id: str | None = None  # the run it continued as (RunContinuedAsNew)
    error: ErrorInfo | None = None
    failed_node: str | None = None
    reused: set[str] = field(default_factory=set)  # resolved by FactReused (a fork)
    # Map items: a record only while an item is open; resolved items leave their value in
    # item_values and their attempts and timings in map_summary, so state (and snapshots)
    # stay small and every step costs O(1) however many items a map has.
    item_values: dict[str, list[Any]] = field(default_factory=dict)
    items_open: dict[str, int] = field(default_factory=dict)
    ready_items: dict[str, set[int]] = field(default_factory=dict)  # waiting, retrying or falling back
    map_summary: dict[str, MapSummary] = field(default_factory=dict)
    running: set[TaskKey] = field(default_factory=set)
    # Components whose result holds fact references inside a list or dict (a map whose items
    # were large, a fork's reused list of them): the tasks downstream open their inputs to
    # load them. Kept here so that inputs without any cost nothing to check.
    nested_facts: set[str] = field(default_factory=set)
    # Child runs (runner.child_runs): each child-run component's child, once started, and the
    # error of each child that ended without a result (until the run is reopened)
    children: dict[str, str] = field(default_factory=dict)
    child_errors: dict[str, ErrorInfo] = field(default_factory=dict)
    # Deadlines (runner.deadlines): the run's, from RunSubmitted (a reopen drops it), and when the
    # run was last reopened (step deadlines count from their first start after it)
    deadline_at: float | None = None
    reopened_at: float | None = None
    sub_workflows: dict[str, FactRef] = field(default_factory=dict)  # steps continued into a workflow

    def open_children(self) -> dict[str, str]:
        """Children started and not ended yet, by component."""
        return {
            node: child
            for node, child in self.children.items()
            if node not in self.results and node not in self.child_errors
        }

    @property
    def status(self) -> RunStatus:
        """COMPLETED, FAILED, CANCELLED, PAUSED, SUSPENDED or RUNNING (PENDING before RunSubmitted)."""
        if self.outcome is not None:
            return self.outcome
        if not self.submitted:
            return RunStatus.PENDING
        if self.paused:
            return RunStatus.PAUSED
        if self.suspended:
            return RunStatus.SUSPENDED
        return RunStatus.RUNNING

    def root_inputs(self, node: Node) -> tuple[Any, ...]:
        """What a component with no upstream gets: the run's input, if it takes it."""
        return (self.input,) if node.takes_input else ()

    def inputs(self, node: Node) -> tuple[Any, ...] | None:
        """Upstream values in ``after`` order, or None while any is unresolved."""
        if not node.after:
            return self.root_inputs(node)
        results = self.results
        if not all(up in results for up in node.after):
            return None
        return tuple(results[up] for up in node.after)


def label(node: str, item: int | None) -> str:
    """A task's name for messages: 'node' or 'node'[item]."""
    return repr(node) if item is None else f"{node!r}[{item}]"
