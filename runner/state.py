"""``WorkflowState``: one run's state, folded from its event log, and the front the worker plans with.

``WorkflowState`` is a cache of the event log: the same log always folds to
the same state, and a snapshot taken at cursor c plus the events after c
folds to exactly the state of the full log. It is a front over these
parts, each in its own module:

- :mod:`runner.run_data`: what the fold knows (what a snapshot holds);
- :mod:`runner.fold`: events into that data, validated one by one;
- :mod:`runner.planning_index`: the frontier and wake-up heaps planning reads;
- :mod:`runner.planning`: runnable tasks, bookkeeping events, outcome events;
- :mod:`runner.step_view`: each component's status for users.

It never runs user code and never does I/O; the worker does (plan, execute,
apply). Pure: no Ray.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import Any

from runner import deadlines, serialization
from runner.checkpoint import DEFAULT as DEFAULT_CHECKPOINT
from runner.checkpoint import CheckpointStrategy, as_strategy
from runner.errors import SnapshotMismatch
from runner.events import ErrorInfo, Event, FactRef, StoredEvent
from runner.fold import Fold
from runner.planning import NOT_TAKEN, Planner, Task
from runner.planning_index import PlanningIndex
from runner.run_data import OPEN, RunData, TaskKey, TaskRecord, TaskStatus
from runner.step_view import StepInfo, StepStatus, step_infos
from runner.store import RunStatus
from runner.workflow import Workflow

__all__ = [
    "NOT_TAKEN",
    "SNAPSHOT_FORMAT",
    "StepInfo",
    "StepStatus",
    "Task",
    "TaskKey",
    "TaskRecord",
    "TaskStatus",
    "WorkflowState",
]

SNAPSHOT_FORMAT = 8
"""The layout of a snapshot's bytes: ``(SNAPSHOT_FORMAT, definition hash, RunData)``.
Raise it whenever RunData (or anything it holds) changes shape: a snapshot of another
format is not read, and recovery folds the full log instead. (1: the unversioned
``(definition hash, data)`` pairs before this number existed; 2: before
``RunData.nested_facts`` and ``TaskRecord.lost``; 3: before ``TaskRecord.call`` and ``level``;
4: before ``TaskRecord.attempts_before_reopen`` and ``lost_before_reopen``; 5: before
``RunData.successor_run_id``; 6: before the child-run fields of RunData; 7: before
``RunData.deadline_at``, ``reopened_at``, ``checkpoint`` and ``sub_workflows``.)"""


class WorkflowState:
    """The fold of one run's event log over its workflow definition, and planning on top of it."""

    def __init__(self, workflow: Workflow, data: RunData | None = None) -> None:
        self.workflow = workflow
        self._data = data or RunData()
        self._index = PlanningIndex(workflow, self._data)
        self._fold = Fold(workflow, self._data, self._index)
        self._planner = Planner(workflow, self._data, self._index)

    # ------------------------------------------------------------ building
    @classmethod
    def from_events(
        cls, workflow: Workflow, events: Iterable[StoredEvent], snapshot: bytes | None = None
    ) -> WorkflowState:
        """Fold ``events`` (those after the snapshot's cursor, if one is given)."""
        state = cls.restore(workflow, snapshot) if snapshot is not None else cls(workflow)
        apply = state._fold.apply
        for stored in events:
            apply(stored)
        return state

    @classmethod
    def restore(cls, workflow: Workflow, snapshot: bytes) -> WorkflowState:
        """Rebuild a state from ``snapshot()``; SnapshotMismatch if it is of another format or definition."""
        try:
            content = serialization.loads(snapshot)
        except Exception as exc:
            raise SnapshotMismatch(f"snapshot cannot be read ({exc}); fold the full log instead") from exc
        if not (isinstance(content, tuple) and len(content) == 3 and content[0] == SNAPSHOT_FORMAT):
            found = content[0] if isinstance(content, tuple) and len(content) == 3 else "without a number"
            raise SnapshotMismatch(
                f"snapshot is of format {found}, this version reads format {SNAPSHOT_FORMAT}; fold the full log instead"
            )
        _, definition_hash, data = content
        if definition_hash != workflow.definition_hash() or not isinstance(data, RunData):
            raise SnapshotMismatch(
                f"snapshot was taken for definition {str(definition_hash)[:12]}, not "
                f"{workflow.name!r} {workflow.definition_hash()[:12]}; fold the full log instead"
            )
        return cls(workflow, data)

    def snapshot(self) -> bytes:
        """The state as bytes, valid at ``self.cursor``."""
        return serialization.dumps((SNAPSHOT_FORMAT, self.workflow.definition_hash(), self._data))

    def copy(self) -> WorkflowState:
        return WorkflowState.restore(self.workflow, self.snapshot())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkflowState):
            return NotImplemented
        return self.workflow is other.workflow and self._data == other._data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        d = self._data
        return f"<WorkflowState {self.workflow.name} run={d.run_id!r} cursor={d.cursor} status={self.status}>"

    # ---------------------------------------------------------------- fold
    def apply(self, stored: StoredEvent) -> None:
        """Fold one stored event; FoldError if it cannot follow the log so far."""
        self._fold.apply(stored)

    def record(self, event: Event) -> StoredEvent:
        """Fold ``event`` as the log's next one (numbered ``cursor + 1``) and return it numbered."""
        stored = StoredEvent(run_id=self._data.run_id, seq=self._data.cursor + 1, event=event)
        self._fold.apply(stored)
        return stored

    # ------------------------------------------------------------- reading
    @property
    def run_id(self) -> str:
        return self._data.run_id

    @property
    def cursor(self) -> int:
        """Sequence number of the last event folded (0: none)."""
        return self._data.cursor

    @property
    def input(self) -> Any:
        return self._data.input

    @property
    def status(self) -> RunStatus:
        """COMPLETED, FAILED, CANCELLED, PAUSED, SUSPENDED or RUNNING (PENDING before RunSubmitted)."""
        return self._data.status

    @property
    def pause_reason(self) -> str:
        """Why the run is paused, as its RunPaused says (empty: paused on request, or not paused)."""
        return self._data.pause_reason

    @property
    def is_finished(self) -> bool:
        return self._data.outcome is not None

    @property
    def result(self) -> Any:
        """The run's result once completed (may hold FactRefs for the caller to load)."""
        return self._data.result

    @property
    def successor_run_id(self) -> str | None:
        """The run this one continued as (status CONTINUED), else None."""
        return self._data.successor_run_id

    @property
    def error(self) -> ErrorInfo | None:
        return self._data.error

    @property
    def failed_node(self) -> str | None:
        return self._data.failed_node

    @property
    def last_signal_id(self) -> int:
        """The highest inbox id already taken into the log."""
        return self._data.last_signal_id

    def task(self, node: str, item: int | None = None) -> TaskRecord | None:
        """The record of a step, or of a map item that has no result yet (resolved items keep only their value)."""
        return self._data.tasks.get((node, item))

    def item_value(self, node: str, item: int) -> Any:
        """A map item's result (SKIPPED if skipped); KeyError while it has none."""
        d = self._data
        values = d.results.get(node) if node in d.results else d.item_values.get(node)
        if values is None or not 0 <= item < len(values) or values[item] is OPEN:
            raise KeyError((node, item))
        return values[item]

    def tasks(self) -> dict[TaskKey, TaskRecord]:
        return {key: replace(rec) for key, rec in self._data.tasks.items()}

    def results(self) -> dict[str, Any]:
        """Results of the components resolved so far (SKIPPED for skipped ones)."""
        return dict(self._data.results)

    def is_resolved(self, node: str) -> bool:
        return node in self._data.results

    def started(self) -> list[TaskKey]:
        """Tasks with a StepStarted and no outcome yet."""
        order = self._index.order
        return sorted(self._data.running, key=lambda key: (order[key[0]], -1 if key[1] is None else key[1]))

    def ran(self) -> set[str]:
        """Components that have started at least once (their code ran, or may have)."""
        d = self._data
        names = {
            name
            for (name, _), rec in d.tasks.items()
            if rec.attempt > 0 or rec.level > 0 or rec.status is TaskStatus.RUNNING
        }
        return names | {name for name, summary in d.map_summary.items() if summary.attempts > 0}

    def steps(self) -> list[StepInfo]:
        """Every component's status, attempts and timings, in definition order."""
        return step_infos(self.workflow, self._data)

    def waiting_for(self) -> list[str]:
        """Signal names the run is blocked on now."""
        return self._index.waiting_for()

    @property
    def parent_run_id(self) -> str | None:
        """The run this one was started from (a child run's parent, a replay's or fork's source)."""
        return self._data.parent_run_id

    @property
    def submitted_checkpoint(self) -> str | None:
        """The checkpoint strategy the run was submitted with, by name (None: the workflow's)."""
        return self._data.checkpoint

    @property
    def submitted_at(self) -> float | None:
        """When the run was submitted (RunSubmitted's time; None before it)."""
        return self._data.submitted_at

    @property
    def trace_context(self) -> dict[str, str] | None:
        """The submit's trace context, as W3C headers (None: the submit was not traced)."""
        return self._data.trace_context

    def checkpoint_strategy(self) -> CheckpointStrategy:
        """How this run's worker appends results: the submit's strategy, else the workflow's,
        else every step (runner.checkpoint)."""
        if self._data.checkpoint is not None:
            return as_strategy(self._data.checkpoint)
        own = getattr(self.workflow, "checkpoint", None)  # a definition pickled before the option existed
        return own if own is not None else DEFAULT_CHECKPOINT

    def sub_workflow(self, node: str) -> FactRef | None:
        """The fact holding the workflow (and input) step ``node`` continued into, if it did."""
        return self._data.sub_workflows.get(node)

    def open_children(self) -> dict[str, str]:
        """Child runs started and not ended yet: component -> child run id."""
        return self._data.open_children()

    def children(self) -> dict[str, str]:
        """Every child run this run started: component -> child run id."""
        return dict(self._data.children)

    def next_wakeup(self) -> float | None:
        """The earliest time a retry or timer becomes due, if any."""
        return self._index.next_wakeup()

    @property
    def deadline_at(self) -> float | None:
        """When the run fails if it has not ended (RunSubmitted's deadline; None: no deadline)."""
        return self._data.deadline_at

    def step_deadline_at(self, node: str, item: int | None = None) -> float | None:
        """When the task ``node`` (item ``item``) runs out of time: its step's deadline counted from
        its first start (None: no deadline, or it has not started)."""
        policy = self.workflow.nodes[node].policy
        return deadlines.step_deadline_at(policy, self._data.tasks.get((node, item)), self._data.reopened_at)

    def expired_events(self, now: float, in_flight: Collection[TaskKey] = ()) -> list[Event]:
        """Events failing what is past its deadline at ``now`` (see :func:`runner.deadlines.expired_events`)."""
        return deadlines.expired_events(self.workflow, self._data, now, in_flight)

    # ------------------------------------------------------------ planning
    def runnables(
        self, in_flight: Collection[TaskKey] = (), now: float | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks that may start now, highest priority first (see :meth:`Planner.runnables`)."""
        return self._planner.runnables(in_flight, now, limit)

    def advance(self, now: float) -> list[Event]:
        """Bookkeeping events that follow from the log as it stands (see :meth:`Planner.advance`)."""
        return self._planner.advance(now)

    def success_events(self, task: Task, value: Any, now: float) -> list[Event]:
        """Events recording that ``task`` returned ``value`` (NOT_TAKEN: a rule that did not fire)."""
        return self._planner.success_events(task, value, now)

    def failure_events(self, task: Task, error: ErrorInfo, now: float, rng: random.Random | None = None) -> list[Event]:
        """Events recording that ``task`` failed: a retry, a fallback to run, a skip or the run's failure."""
        return self._planner.failure_events(task, error, now, rng)

    def lost_events(self, task: Task, error: ErrorInfo, now: float, system_retries: int) -> list[Event]:
        """Events recording that ``task`` was lost to the system (see :meth:`Planner.lost_events`)."""
        return self._planner.lost_events(task, error, now, system_retries)
