"""The fold: one stored event at a time into a run's :class:`~runner.run_data.RunData`.

Every event is checked against the log so far before anything changes: an
event that cannot follow (a gap in the sequence, a step started before its
upstreams resolved, a result for a task that is not running ...) raises
:class:`~runner.errors.FoldError` and leaves the data as it was. Once it
passes, its handler updates the data and the :class:`PlanningIndex`.
The same log always folds to the same data. Pure: no Ray, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.approvals import Decision, OnReject
from runner.errors import FoldError
from runner.events import (
    SKIPPED,
    ApprovalDecided,
    ChildRunEnded,
    ChildRunStarted,
    FactProduced,
    FactRef,
    FactReused,
    MapExpanded,
    RunCancelled,
    RunCompleted,
    RunContinuedAsNew,
    RunFailed,
    RunPaused,
    RunReopened,
    RunResumed,
    RunSubmitted,
    RunSuspended,
    SignalReceived,
    StepContinued,
    StepFailed,
    StepLost,
    StepMetadataAdded,
    StepSkipped,
    StepStarted,
    StoredEvent,
    TimerFired,
    TimerScheduled,
)
from runner.planning_index import PlanningIndex
from runner.run_data import (
    EXECUTABLE_KINDS,
    OPEN,
    READY_STATUSES,
    MapSummary,
    RunData,
    TaskKey,
    TaskRecord,
    TaskStatus,
    label,
)
from runner.serialization import holds_fact_refs
from runner.store import REOPENABLE, RunStatus
from runner.workflow import Node, NodeKind, Workflow

WAITING, RUNNING, RETRY, FALLBACK = TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.RETRY, TaskStatus.FALLBACK
LOST = TaskStatus.LOST
DONE, SKIPPED_STATUS, FAILED = TaskStatus.DONE, TaskStatus.SKIPPED, TaskStatus.FAILED


class Fold:
    """Folds events into ``data`` over ``workflow``, keeping ``index`` in step."""

    def __init__(self, workflow: Workflow, data: RunData, index: PlanningIndex) -> None:
        self.workflow = workflow
        self._d = data
        self._index = index

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
        if d.outcome is not None and not isinstance(event, RunReopened):
            raise FoldError(f"{type(event).__name__} after the run ended ({d.outcome})")
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise FoldError(f"unknown event type {type(event).__name__}")
        handler(self, stored.run_id, event)
        d.cursor = stored.seq

    # ------------------------------------------------------------ handlers
    def _on_submitted(self, run_id: str, e: RunSubmitted) -> None:
        d = self._d
        if d.submitted:
            raise FoldError("RunSubmitted twice in one log")
        if e.workflow != self.workflow.name:
            raise FoldError(f"log is for workflow {e.workflow!r}, not {self.workflow.name!r}")
        d.submitted = True
        d.run_id = run_id
        d.input = e.input
        d.definition_hash = e.definition_hash
        d.parent_run_id = e.parent_run_id
        d.deadline_at = e.deadline_at
        d.checkpoint = e.checkpoint
        d.submitted_at = e.at
        d.trace_context = e.trace_context

    def _on_started(self, run_id: str, e: StepStarted) -> None:
        node = self._executable(e.node, e.item)
        if self._d.inputs(node) is None:
            raise FoldError(f"StepStarted for {e.node!r} before its upstream components resolved")
        if e.item is None and e.node in self._d.results:
            raise FoldError(f"StepStarted for {e.node!r} which already has a result")
        rec = self._open_record(e.node, e.item, "StepStarted")
        if rec.status is FALLBACK:  # the fallback of the last attempt starts; it stays FALLBACK until its outcome
            if e.attempt != rec.attempt:
                raise FoldError(
                    f"StepStarted attempt {e.attempt} for the fallback of {label(e.node, e.item)}, "
                    f"whose last attempt was {rec.attempt}"
                )
            rec.started_at = e.at
            return
        if rec.status not in (WAITING, RETRY, RUNNING, LOST):
            raise FoldError(f"StepStarted for {label(e.node, e.item)} which is already {rec.status}")
        if rec.status is LOST and e.attempt != rec.attempt:
            raise FoldError(
                f"StepStarted attempt {e.attempt} for {label(e.node, e.item)}, whose attempt {rec.attempt} "
                "was lost to the system and starts again as it was"
            )
        if e.attempt < max(rec.attempt, 1):
            raise FoldError(f"StepStarted attempt {e.attempt} for {label(e.node, e.item)} after attempt {rec.attempt}")
        self._d.tasks[(e.node, e.item)] = rec
        self._set_status((e.node, e.item), rec, RUNNING)
        rec.attempt, rec.retry_at, rec.started_at = e.attempt, None, e.at
        if rec.first_started_at is None:
            rec.first_started_at = e.at

    def _on_fact(self, run_id: str, e: FactProduced) -> None:
        node = self._node(e.node)
        if node.kind is NodeKind.WAIT:
            if node.approval is not None:
                raise FoldError(f"FactProduced for approval {e.node!r}: an approval resolves by ApprovalDecided")
            if e.node in self._d.results or self._d.inputs(node) is None:
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
        if rec.status is not expected:
            raise FoldError(f"FactProduced for {label(e.node, e.item)} which is {rec.status}, not {expected}")
        self._set_status((e.node, e.item), rec, DONE)
        rec.value, rec.finished_at = e.value, e.at
        self._resolve_task(e.node, e.item, e.value)

    def _on_metadata(self, run_id: str, e: StepMetadataAdded) -> None:
        """Metadata a running attempt added: checked against the log, kept only in it (the run's
        metadata is read from the log: runner.run_metadata)."""
        self._executable(e.node, e.item)
        rec = self._d.tasks.get((e.node, e.item))
        if rec is None or rec.status not in (RUNNING, FALLBACK):
            raise FoldError(f"StepMetadataAdded for {label(e.node, e.item)}, which is not running")
        if e.attempt != rec.attempt:
            raise FoldError(f"StepMetadataAdded attempt {e.attempt} for {label(e.node, e.item)}, running {rec.attempt}")

    def _on_expanded(self, run_id: str, e: MapExpanded) -> None:
        node = self._node(e.node)
        d = self._d
        if node.kind is not NodeKind.MAP or e.node in d.map_counts or e.node in d.results:
            raise FoldError(f"MapExpanded for {e.node!r}, which is not an unexpanded map")
        if e.count < 0:
            raise FoldError(f"MapExpanded with negative count {e.count}")
        if d.inputs(node) is None:
            raise FoldError(f"MapExpanded for {e.node!r} before its upstream component resolved")
        d.map_counts[e.node] = e.count
        d.tasks.pop((e.node, None), None)
        for i in range(e.count):
            d.tasks[(e.node, i)] = TaskRecord()
        d.ready_items[e.node] = set(range(e.count))
        d.item_values[e.node] = [OPEN] * e.count
        d.items_open[e.node] = e.count
        d.map_summary[e.node] = MapSummary()
        if e.count == 0:
            self._finish_map(e.node)

    def _on_failed(self, run_id: str, e: StepFailed) -> None:
        node = self._node(e.node)
        d = self._d
        key = (e.node, e.item)
        if node.kind is NodeKind.MAP and e.item is None:
            if e.node in d.map_counts:  # a map whose input was not a list fails before expanding
                raise FoldError(f"StepFailed for map {e.node!r} as a whole after it expanded")
            if d.inputs(node) is None:
                raise FoldError(f"StepFailed for map {e.node!r} before its upstream component resolved")
            rec = d.tasks.setdefault(key, TaskRecord(status=RUNNING, attempt=1))
        else:
            self._executable(e.node, e.item)
            rec = self._open_record(e.node, e.item, "StepFailed")
        if rec.status is not RUNNING and rec.status is not FALLBACK:
            raise FoldError(f"StepFailed for {label(e.node, e.item)} which is {rec.status}, not running")
        rec.error, rec.finished_at = e.error, e.at
        if rec.status is FALLBACK:
            status = FAILED
        elif e.retry_at is not None:
            status, rec.retry_at = RETRY, e.retry_at
            self._index.push_retry(e.node, e.item, e.retry_at)
        elif node.policy.fallback is not None and not (node.kind is NodeKind.MAP and e.item is None):
            status = FALLBACK
        else:
            status = FAILED
        self._set_status(key, rec, status)

    def _on_lost(self, run_id: str, e: StepLost) -> None:
        self._executable(e.node, e.item)
        rec = self._open_record(e.node, e.item, "StepLost")
        expected = FALLBACK if e.fallback else RUNNING
        if rec.status is not expected:
            raise FoldError(f"StepLost for {label(e.node, e.item)} which is {rec.status}, not {expected}")
        if e.attempt != rec.attempt:
            raise FoldError(
                f"StepLost of attempt {e.attempt} for {label(e.node, e.item)}, whose attempt is {rec.attempt}"
            )
        rec.lost += 1
        if not e.fallback:  # a lost fallback stays FALLBACK: it is offered again as it was
            self._set_status((e.node, e.item), rec, LOST)

    def _on_continued(self, run_id: str, e: StepContinued) -> None:
        """The task's attempt returned a continuation: the task waits to run that call, one level deeper."""
        self._executable(e.node, e.item)
        rec = self._open_record(e.node, e.item, "StepContinued")
        if rec.status is not RUNNING:
            raise FoldError(f"StepContinued for {label(e.node, e.item)} which is {rec.status}, not running")
        if e.attempt != rec.attempt or e.level != rec.level + 1:
            raise FoldError(
                f"StepContinued of attempt {e.attempt} at level {e.level} for {label(e.node, e.item)}, "
                f"whose attempt {rec.attempt} runs at level {rec.level}"
            )
        self._set_status((e.node, e.item), rec, WAITING)
        rec.call, rec.level, rec.attempt, rec.retry_at = e.call, e.level, 0, None

    def _on_skipped(self, run_id: str, e: StepSkipped) -> None:
        node = self._node(e.node)
        d = self._d
        if e.item is not None:
            self._executable(e.node, e.item)
            rec = self._open_record(e.node, e.item, "StepSkipped")
            self._set_status((e.node, e.item), rec, SKIPPED_STATUS)
            rec.value, rec.finished_at = SKIPPED, e.at
            self._resolve_task(e.node, e.item, SKIPPED)
            return
        if e.node in d.results:
            raise FoldError(f"StepSkipped for {e.node!r} which already has a result")
        if d.inputs(node) is None:
            raise FoldError(f"StepSkipped for {e.node!r} before its upstream components resolved")
        whole = d.tasks.get((e.node, None))
        if whole is not None:
            self._set_status((e.node, None), whole, SKIPPED_STATUS)
            whole.value, whole.finished_at = SKIPPED, e.at
        self._resolve(e.node, SKIPPED)

    def _on_signal(self, run_id: str, e: SignalReceived) -> None:
        d = self._d
        if e.signal_id <= d.last_signal_id:
            raise FoldError(f"signal {e.signal_id} received again (last was {d.last_signal_id})")
        d.signals.append((e.signal_id, e.name, e.payload))
        d.last_signal_id = e.signal_id

    def _on_approval(self, run_id: str, e: ApprovalDecided) -> None:
        """Take the decision out of the inbox; the approval's value follows from it and on_reject
        (a rejection that fails the run resolves nothing: RunFailed follows)."""
        node = self._node(e.node)
        d = self._d
        if node.approval is None or node.approval != e.approval:
            raise FoldError(f"ApprovalDecided for {e.node!r}, which is not the wait for approval {e.approval!r}")
        if e.node in d.results or d.inputs(node) is None:
            raise FoldError(f"ApprovalDecided for {e.node!r}, which is not waiting")
        index = next((i for i, s in enumerate(d.signals) if s[0] == e.signal_id and s[1] == node.signal), None)
        if index is None:
            raise FoldError(
                f"ApprovalDecided for {e.node!r} names signal {e.signal_id}, not a received {node.signal!r}"
            )
        d.signals.pop(index)
        if e.approved or node.on_reject is OnReject.BRANCH:
            self._resolve(e.node, Decision.of(e))
        elif node.on_reject is OnReject.SKIP:
            self._resolve(e.node, SKIPPED)

    def _on_timer_scheduled(self, run_id: str, e: TimerScheduled) -> None:
        node = self._node(e.node)
        if node.kind is not NodeKind.SLEEP or e.node in self._d.timers or self._d.inputs(node) is None:
            raise FoldError(f"TimerScheduled for {e.node!r}, which is not a sleep ready to start")
        self._d.timers[e.node] = e.due_at
        self._index.push_timer(e.node, e.due_at)

    def _on_timer_fired(self, run_id: str, e: TimerFired) -> None:
        node = self._node(e.node)
        inputs = self._d.inputs(node)
        if e.node not in self._d.timers or e.node in self._d.results or inputs is None:
            raise FoldError(f"TimerFired for {e.node!r}, which has no pending timer")
        if node.after and node.after[0] in self._d.nested_facts:  # a sleep passes its upstream's value on
            self._d.nested_facts.add(e.node)
        self._resolve(e.node, inputs[0] if inputs else None)

    def _on_suspended(self, run_id: str, e: RunSuspended) -> None:
        self._d.suspended = True

    def _on_resumed(self, run_id: str, e: RunResumed) -> None:
        self._d.suspended = False
        self._d.paused = False
        self._d.pause_reason = ""

    def _on_paused(self, run_id: str, e: RunPaused) -> None:
        self._d.paused = True
        self._d.pause_reason = e.reason

    def _on_reused(self, run_id: str, e: FactReused) -> None:
        node = self._node(e.node)
        d = self._d
        if e.node in d.results or d.inputs(node) is None or (e.node, None) in d.tasks:
            raise FoldError(f"FactReused for {e.node!r}, which has already started or whose upstreams are unresolved")
        if node.kind in EXECUTABLE_KINDS and node.kind is not NodeKind.MAP:
            d.tasks[(e.node, None)] = TaskRecord(status=DONE, value=e.value, finished_at=e.at)
        if not isinstance(e.value, FactRef) and holds_fact_refs(e.value):
            d.nested_facts.add(e.node)
        self._resolve(e.node, e.value)
        d.reused.add(e.node)

    def _on_reopened(self, run_id: str, e: RunReopened) -> None:
        """The run goes on after it failed or was cancelled: every result stays; a step that had
        failed for good is retried with a fresh budget; a map whose input was not a list is
        expanded again; steps that were running when it ended are dispatched again."""
        d = self._d
        if d.outcome not in REOPENABLE or e.from_status != d.outcome.value:
            ended = "has not ended" if d.outcome is None else f"ended {d.outcome.value}"
            raise FoldError(f"RunReopened from {e.from_status!r} of a run that {ended}")
        d.outcome, d.error, d.failed_node = None, None, None
        d.paused, d.pause_reason, d.suspended = False, "", False
        d.deadline_at, d.reopened_at = None, e.at  # a reopened run has no deadline; its steps' count anew
        for key, rec in list(d.tasks.items()):
            if rec.status is not FAILED:
                continue
            name, item = key
            if item is None and self._node(name).kind is NodeKind.MAP:
                del d.tasks[key]  # failed before it expanded: planning expands it again
                continue
            rec.attempts_before_reopen, rec.lost_before_reopen, rec.retry_at = rec.attempt, rec.lost, None
            self._set_status(key, rec, RETRY)
        d.child_errors.clear()  # the children are looked at again: resumed meanwhile, they carry on

    def _on_child_started(self, run_id: str, e: ChildRunStarted) -> None:
        if e.sub_workflow is not None:
            self._on_continued_in_child(e, e.sub_workflow)
            return
        node = self._node(e.node)
        d = self._d
        if node.kind is not NodeKind.CHILD or e.node in d.children or e.node in d.results:
            raise FoldError(f"ChildRunStarted for {e.node!r}, which is not a child-run component yet to start")
        if d.inputs(node) is None:
            raise FoldError(f"ChildRunStarted for {e.node!r} before its upstream component resolved")
        d.children[e.node] = e.child_run_id

    def _on_continued_in_child(self, e: ChildRunStarted, sub_workflow: FactRef) -> None:
        """A running step continued into a workflow (runner.continuation): its task is done, and
        the step resolves with the child run's result (its ChildRunEnded)."""
        node = self._executable(e.node, None)
        d = self._d
        rec = d.tasks.get((e.node, None))
        if node.kind is NodeKind.MAP or rec is None or rec.status is not RUNNING or e.node in d.children:
            raise FoldError(f"ChildRunStarted with a sub-workflow for {e.node!r}, which is not a running step")
        self._set_status((e.node, None), rec, DONE)
        d.children[e.node] = e.child_run_id
        d.sub_workflows[e.node] = sub_workflow

    def _on_child_ended(self, run_id: str, e: ChildRunEnded) -> None:
        d = self._d
        if d.open_children().get(e.node) != e.child_run_id:
            raise FoldError(f"ChildRunEnded for {e.node!r} child {e.child_run_id!r}, which is not an open child")
        if e.status == RunStatus.COMPLETED.value:
            if not isinstance(e.result, FactRef) and holds_fact_refs(e.result):
                d.nested_facts.add(e.node)
            continued = d.tasks.get((e.node, None))  # a step that continued into the child
            if continued is not None:
                continued.value, continued.finished_at = e.result, e.at
            self._resolve(e.node, e.result)
        elif e.error is None:
            raise FoldError(f"ChildRunEnded {e.status!r} for {e.node!r} without an error")
        else:
            d.child_errors[e.node] = e.error

    def _on_cancelled(self, run_id: str, e: RunCancelled) -> None:
        self._d.outcome = RunStatus.CANCELLED

    def _on_completed(self, run_id: str, e: RunCompleted) -> None:
        self._d.outcome, self._d.result = RunStatus.COMPLETED, e.result

    def _on_continued_as_new(self, run_id: str, e: RunContinuedAsNew) -> None:
        """A running task ended the run by starting its successor."""
        self._executable(e.node, e.item)
        rec = self._d.tasks.get((e.node, e.item))
        if rec is None or rec.status not in (RUNNING, FALLBACK):
            raise FoldError(f"RunContinuedAsNew from {label(e.node, e.item)}, which is not running")
        self._d.outcome, self._d.successor_run_id = RunStatus.CONTINUED, e.successor_run_id

    def _on_run_failed(self, run_id: str, e: RunFailed) -> None:
        self._d.outcome, self._d.error, self._d.failed_node = RunStatus.FAILED, e.error, e.node

    # ------------------------------------------------------------- helpers
    def _node(self, name: str) -> Node:
        node = self.workflow.nodes.get(name)
        if node is None:
            raise FoldError(f"event names component {name!r}, which workflow {self.workflow.name!r} does not have")
        return node

    def _executable(self, name: str, item: int | None) -> Node:
        node = self._node(name)
        if node.kind not in EXECUTABLE_KINDS:
            raise FoldError(f"{node.kind.value} {name!r} is not executed as a task")
        if node.kind is NodeKind.MAP:
            count = self._d.map_counts.get(name)
            if item is None or count is None or not 0 <= item < count:
                raise FoldError(f"{label(name, item)} is not an item of expanded map {name!r}")
        elif item is not None:
            raise FoldError(f"{node.kind.value} {name!r} has no items, got item {item}")
        return node

    def _open_record(self, name: str, item: int | None, what: str) -> TaskRecord:
        """The record of an unresolved task (a step not started yet gets a fresh one)."""
        rec = self._d.tasks.get((name, item))
        if rec is not None:
            return rec
        if item is not None:  # items have records from MapExpanded until they resolve
            raise FoldError(f"{what} for {label(name, item)} which already has a result")
        return TaskRecord()

    def _set_status(self, key: TaskKey, rec: TaskRecord, status: TaskStatus) -> None:
        """Change a task's status, keeping the running set and the ready-items index in step."""
        d = self._d
        if rec.status is RUNNING:
            d.running.discard(key)
        rec.status = status
        if status is RUNNING:
            d.running.add(key)
        name, item = key
        if item is not None and name in d.ready_items:
            if status in READY_STATUSES:
                d.ready_items[name].add(item)
            else:
                d.ready_items[name].discard(item)

    def _resolve(self, name: str, value: Any) -> None:
        """Record ``name``'s result and let the index unblock what is downstream."""
        self._d.results[name] = value
        self._index.resolved(name)

    def _resolve_task(self, name: str, item: int | None, value: Any) -> None:
        d = self._d
        if item is None:
            self._resolve(name, value)
            return
        rec = d.tasks.pop((name, item))
        d.map_summary[name].add(rec)
        d.item_values[name][item] = value
        if isinstance(value, FactRef):  # the map's list will hold a reference
            d.nested_facts.add(name)
        d.items_open[name] -= 1
        if d.items_open[name] == 0:
            self._finish_map(name)

    def _finish_map(self, name: str) -> None:
        d = self._d
        self._resolve(name, d.item_values.pop(name))
        d.items_open.pop(name)
        d.ready_items.pop(name, None)


_HANDLERS: dict[type, Callable[[Fold, str, Any], None]] = {
    RunSubmitted: Fold._on_submitted,
    StepStarted: Fold._on_started,
    FactProduced: Fold._on_fact,
    MapExpanded: Fold._on_expanded,
    StepFailed: Fold._on_failed,
    StepLost: Fold._on_lost,
    StepContinued: Fold._on_continued,
    StepSkipped: Fold._on_skipped,
    SignalReceived: Fold._on_signal,
    ApprovalDecided: Fold._on_approval,
    TimerScheduled: Fold._on_timer_scheduled,
    TimerFired: Fold._on_timer_fired,
    RunSuspended: Fold._on_suspended,
    RunResumed: Fold._on_resumed,
    RunPaused: Fold._on_paused,
    RunReopened: Fold._on_reopened,
    RunCancelled: Fold._on_cancelled,
    ChildRunStarted: Fold._on_child_started,
    ChildRunEnded: Fold._on_child_ended,
    FactReused: Fold._on_reused,
    RunCompleted: Fold._on_completed,
    RunFailed: Fold._on_run_failed,
    RunContinuedAsNew: Fold._on_continued_as_new,
    StepMetadataAdded: Fold._on_metadata,
}
