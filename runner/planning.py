"""Planning: what follows from a run's log as it stands.

A :class:`Planner` reads the fold's data and index and answers three
questions, without changing anything:

- ``runnables``: which tasks may start now;
- ``advance``: which bookkeeping events follow (skips, signals consumed,
  timers scheduled or fired, maps expanded, the run's completion);
- ``success_events`` / ``failure_events`` / ``lost_events``: which events
  record a task's outcome (a result, a retry under the step's policy, a
  fallback, a skip or the run's failure; a task lost to the system runs again
  under a budget of its own).

It never runs user code and never does I/O. Pure: no Ray.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from runner import deadlines, serialization
from runner.approvals import Decision, OnReject
from runner.child_runs import child_run_id
from runner.continuation import Continued, ContinuedInChild
from runner.continue_as_new import ContinueAsNew, successor_run_id
from runner.errors import ApprovalRejected, StepLostError
from runner.events import (
    SKIPPED,
    ApprovalDecided,
    ChildRunStarted,
    ErrorInfo,
    Event,
    FactProduced,
    FactRef,
    MapExpanded,
    RunCompleted,
    RunContinuedAsNew,
    RunFailed,
    StepContinued,
    StepFailed,
    StepLost,
    StepSkipped,
    TimerFired,
    TimerScheduled,
)
from runner.planning_index import PlanningIndex
from runner.run_data import EXECUTABLE_KINDS, RunData, TaskKey, TaskRecord, TaskStatus, label
from runner.workflow import Node, NodeKind, Workflow


def _ascending(items: Collection[int]) -> Iterator[int]:
    """``items`` smallest first, sorted only as far as they are read (a heap: O(n) to start)."""
    heap = list(items)
    heapq.heapify(heap)
    while heap:
        yield heapq.heappop(heap)


def _item(key: TaskKey) -> int:
    return key[1] or 0


class _NotTaken:
    """Returned by a rule's task when its condition was false."""

    def __repr__(self) -> str:
        return "NOT_TAKEN"

    def __reduce__(self) -> str:
        return "NOT_TAKEN"


NOT_TAKEN = _NotTaken()

DEFAULT_SYSTEM_RETRIES = 5
"""How many times a task may be lost to the system (its node or worker process died) and run
again before its step fails with StepLostError (``WorkerConfig.system_retries``)."""


@dataclass(frozen=True, kw_only=True)
class Task:
    """One thing to execute: ``fn(*inputs)`` of ``node`` (item ``item`` of a map)."""

    node: str
    attempt: int
    inputs: tuple[Any, ...]
    item: int | None = None
    fallback: bool = False
    nested_facts: bool = False  # some input holds FactRefs inside a list or dict (a map's large items)
    call: FactRef | None = None  # a continuation's call to run instead of the step's code
    level: int = 0  # how many continuations deep ``call`` is

    @property
    def key(self) -> TaskKey:
        return (self.node, self.item)


class Planner:
    """Plans one run over ``workflow`` from the fold's ``data`` and ``index`` (read only)."""

    def __init__(self, workflow: Workflow, data: RunData, index: PlanningIndex) -> None:
        self.workflow = workflow
        self._d = data
        self._index = index

    def runnables(
        self, in_flight: Collection[TaskKey] = (), now: float | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks that may start now, highest priority first (then definition order, then item).

        A task recorded as started but not in ``in_flight`` is returned again
        (its worker died): a step runs at least once. Retries are returned once
        ``now`` reaches their ``retry_at`` (``now=None``: ignore the clock).
        ``limit``: the first ``limit`` of them only (a workflow's ``max_concurrency``);
        a map's items beyond it are not even looked at, so a large map costs no more.
        """
        d = self._d
        if d.outcome is not None or d.paused or not d.submitted:
            return []
        nodes = self.workflow.nodes
        tasks: list[Task] = []
        orphans: dict[str, list[TaskKey]] = {}  # map items started by a worker that is gone
        for key in d.running.difference(in_flight) if len(d.running) else ():
            if key[1] is not None:
                orphans.setdefault(key[0], []).append(key)
        for name in self._index.frontier:  # the order does not matter: tasks are sorted below
            node = nodes[name]
            if node.kind not in EXECUTABLE_KINDS:
                continue
            inputs = d.inputs(node)
            if inputs is None or (node.after and all(v is SKIPPED for v in inputs)):
                continue
            if node.kind is NodeKind.MAP:
                if node.name not in d.map_counts:
                    continue
                # made one by one: with a limit, only the first few are looked at
                ready = d.ready_items.get(node.name, ())
                keys: Iterable[TaskKey] = (
                    (node.name, i) for i in (sorted(ready) if limit is None else _ascending(ready))
                )
                if node.name in orphans:
                    keys = heapq.merge(keys, sorted(orphans[node.name], key=_item), key=_item)
            else:
                keys = [(node.name, None)]
            nested = bool(d.nested_facts) and any(up in d.nested_facts for up in node.after)
            taken = 0  # tasks of this node so far: with a limit, its first ``limit`` items are enough
            for key in keys:
                if limit is not None and taken >= limit:
                    break
                if key in in_flight:
                    continue
                rec = d.tasks.get(key) or TaskRecord()
                status = rec.status
                if status is TaskStatus.WAITING:
                    attempt, fallback = 1, False
                elif status is TaskStatus.RUNNING or status is TaskStatus.LOST:
                    attempt, fallback = rec.attempt, False
                elif status is TaskStatus.RETRY and (now is None or (rec.retry_at or 0) <= now):
                    attempt, fallback = rec.attempt + 1, False
                elif status is TaskStatus.FALLBACK:
                    attempt, fallback = rec.attempt, True
                else:
                    continue
                task = Task(
                    node=key[0],
                    item=key[1],
                    attempt=attempt,
                    inputs=inputs,
                    fallback=fallback,
                    nested_facts=nested,
                    call=None if fallback else rec.call,
                    level=rec.level,
                )
                tasks.append(task)
                taken += 1
        order = self._index.order
        tasks.sort(key=lambda t: (-nodes[t.node].policy.priority, order[t.node], t.item or 0))
        return tasks if limit is None else tasks[: max(0, limit)]

    def advance(self, now: float) -> list[Event]:
        """Bookkeeping events that follow from the log as it stands, in order.

        Skips whose upstreams were all skipped, waits whose signal is here,
        timers to schedule or fire, maps to expand, and finally RunCompleted.
        Apply them (after appending) and call again until it returns nothing
        new; one call already follows chains, since nodes are in topological order.
        """
        d = self._d
        if d.outcome is not None or d.paused or not d.submitted:
            return []
        index = self._index
        events: list[Event] = []
        overlay: dict[str, Any] = {}
        taken_signals: set[int] = set()

        def result(name: str) -> Any:
            return overlay[name] if name in overlay else d.results[name]

        def resolved(name: str) -> bool:
            return name in overlay or name in d.results

        # the frontier in topological order; what resolves here lets its downstream components in
        queue = [index.order[name] for name in index.frontier]
        heapq.heapify(queue)

        def settle(name: str, value: Any) -> None:
            overlay[name] = value
            for child in index.downstream[name]:
                if all(resolved(up) for up in child.after):
                    heapq.heappush(queue, index.order[child.name])

        while queue:
            node = index.by_order[heapq.heappop(queue)]
            name = node.name
            inputs = tuple(result(up) for up in node.after) if node.after else d.root_inputs(node)
            if node.after and all(v is SKIPPED for v in inputs):
                events.append(StepSkipped(node=name, reason="all upstream components were skipped", at=now))
                settle(name, SKIPPED)
            elif node.kind is NodeKind.WAIT and node.approval is not None:
                decided = _take_decision(node, d.signals, taken_signals, now)
                if decided is not None:
                    taken_signals.add(decided.signal_id)
                    events.append(decided)
                    if decided.approved or node.on_reject is OnReject.BRANCH:
                        settle(name, Decision.of(decided))
                    elif node.on_reject is OnReject.SKIP:
                        settle(name, SKIPPED)
                    else:
                        rejected = ApprovalRejected(node.approval, decided.by, decided.comment)
                        events.append(RunFailed(error=serialization.error_info(rejected), node=name, at=now))
                        return events
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
            elif node.kind is NodeKind.CHILD:
                error = d.child_errors.get(name)
                if name not in d.children:
                    events.append(ChildRunStarted(node=name, child_run_id=child_run_id(d.run_id, name), at=now))
                elif error is not None:  # the child ended without a result: no retries (see runner.child_runs)
                    events += _final_failure(node, None, error, now)
                    if node.policy.on_failure == "skip":
                        settle(name, SKIPPED)
                    else:
                        return events
            elif name in d.sub_workflows and name in d.child_errors:  # its sub-workflow's child ended unresolved
                events += _final_failure(node, None, d.child_errors[name], now)
                if node.policy.on_failure == "skip":
                    settle(name, SKIPPED)
                else:
                    return events
            elif node.kind is NodeKind.MAP and name not in d.map_counts and (name, None) not in d.tasks:
                count = list_length(inputs[0])
                if count is None:
                    error = ErrorInfo(
                        type="TypeError",
                        message=f"map {name!r} needs a list or tuple from {node.after[0]!r}, got {type(inputs[0]).__name__}",
                        non_retryable=True,
                    )
                    events.append(StepFailed(node=name, attempt=1, error=error, at=now))
                    events += _final_failure(node, None, error, now)
                    if node.policy.on_failure == "skip":
                        settle(name, SKIPPED)
                    else:
                        return events
                else:
                    events.append(MapExpanded(node=name, count=count, at=now))
                    if count == 0:
                        settle(name, [])
        if len(d.results) + len(overlay) == len(index.by_order):  # every component resolved
            events.append(RunCompleted(result=run_result(self.workflow, result), at=now))
        return events

    def success_events(self, task: Task, value: Any, now: float) -> list[Event]:
        """Events recording that ``task`` returned ``value`` (NOT_TAKEN: a rule that did not fire)."""
        if value is NOT_TAKEN:
            return [StepSkipped(node=task.node, item=task.item, reason="rule condition was false", at=now)]
        if isinstance(value, Continued):
            return self._continued_events(task, value, now)
        if isinstance(value, ContinuedInChild):
            return self._continued_in_child_events(task, value, now)
        if isinstance(value, ContinueAsNew):
            return self._continued_as_new_events(task, value, now)
        return [
            FactProduced(
                node=task.node, item=task.item, value=value, attempt=task.attempt, fallback=task.fallback, at=now
            )
        ]

    def _continued_events(self, task: Task, value: Continued, now: float) -> list[Event]:
        """A task returned a continuation: it runs next, one level deeper (a fallback may not continue)."""
        if task.fallback:
            error = ErrorInfo(
                type="runner.errors.InvalidArgument",
                message=f"the fallback of {label(task.node, task.item)} returned a continuation; "
                "a fallback must return the step's value",
                non_retryable=True,
            )
            return self.failure_events(task, error, now)
        return [
            StepContinued(
                node=task.node, item=task.item, attempt=task.attempt, call=value.call, level=task.level + 1, at=now
            )
        ]

    def _continued_in_child_events(self, task: Task, value: ContinuedInChild, now: float) -> list[Event]:
        """A task continued into a workflow: its child run starts, under an id fixed by this run and
        the step (a map item or a fallback may not: it fails, without retries)."""
        if task.fallback or task.item is not None:
            what = "the fallback of" if task.fallback else "map item"
            error = ErrorInfo(
                type="runner.errors.InvalidArgument",
                message=f"{what} {label(task.node, task.item)} returned a continuation of a workflow; only "
                "a step's own code may continue into a workflow (run a child workflow that maps instead)",
                non_retryable=True,
            )
            return self.failure_events(task, error, now)
        child = child_run_id(self._d.run_id, task.node)
        return [ChildRunStarted(node=task.node, child_run_id=child, sub_workflow=value.sub_workflow, at=now)]

    def _continued_as_new_events(self, task: Task, value: ContinueAsNew, now: float) -> list[Event]:
        """A task returned continue_as_new: the run ends and its successor starts with the checked
        input (an input the workflow refuses fails the step, without retries)."""
        try:
            checked = self.workflow.check_input(value.input)
            serialization.encode_value(checked)  # an input that cannot be stored is refused here
        except Exception as exc:
            return self.failure_events(task, replace(serialization.error_info(exc), non_retryable=True), now)
        successor = successor_run_id(self._d.run_id)
        return [RunContinuedAsNew(node=task.node, item=task.item, successor_run_id=successor, input=checked, at=now)]

    def failure_events(self, task: Task, error: ErrorInfo, now: float, rng: random.Random | None = None) -> list[Event]:
        """Events recording that ``task`` failed: a retry, a fallback to run, a skip or the run's failure."""
        node = self.workflow.nodes[task.node]
        policy = node.policy
        rec = self._d.tasks.get(task.key)
        spent = task.attempt - (rec.attempts_before_reopen if rec is not None else 0)  # since the last reopen
        final = error
        if not task.fallback and not error.non_retryable and spent < policy.max_attempts:
            retry_at = now + policy.retry_delay(spent, rng)
            due = deadlines.step_deadline_at(policy, rec, self._d.reopened_at)
            if due is None or retry_at < due:
                return [
                    StepFailed(
                        node=task.node, item=task.item, attempt=task.attempt, error=error, retry_at=retry_at, at=now
                    )
                ]
            final = deadlines.step_deadline_error(task.node, policy)  # the retry would start past the deadline
        events: list[Event] = [StepFailed(node=task.node, item=task.item, attempt=task.attempt, error=error, at=now)]
        if policy.fallback is not None and not task.fallback:
            return events  # runnables() offers the fallback next
        return events + _final_failure(node, task.item, final, now)

    def lost_events(self, task: Task, error: ErrorInfo, now: float, system_retries: int) -> list[Event]:
        """Events recording that ``task`` was lost to the system (``error``: how Ray reported it).
        While the task has been lost fewer than ``system_retries`` times: StepLost, and the same
        attempt runs again without spending the step's retries. After that the step fails, with
        no retry, with a :class:`~runner.errors.StepLostError` (its fallback still stands in)."""
        rec = self._d.tasks.get(task.key)
        lost = rec.lost - rec.lost_before_reopen if rec is not None else 0  # since the last reopen
        if lost < system_retries:
            return [
                StepLost(
                    node=task.node, item=task.item, attempt=task.attempt, error=error, fallback=task.fallback, at=now
                )
            ]
        failure = serialization.error_info(StepLostError(label(task.node, task.item), lost + 1, str(error)))
        return self.failure_events(task, replace(failure, non_retryable=True), now)


def _take_decision(
    node: Node, signals: list[tuple[int, str, Any]], taken: set[int], now: float
) -> ApprovalDecided | None:
    """The event taking the first decision in the inbox for ``node``'s approval (a payload
    that holds no decision, sent by hand under the approval's signal name, is passed over)."""
    approval = node.approval or ""
    for signal_id, name, payload in signals:
        if name != node.signal or signal_id in taken:
            continue
        decision = Decision.from_payload(approval, payload)
        if decision is not None:
            return ApprovalDecided(
                node=node.name,
                approval=approval,
                signal_id=signal_id,
                approved=decision.approved,
                by=decision.by,
                comment=decision.comment,
                decided_at=decision.decided_at,
                at=now,
            )
    return None


def _final_failure(node: Node, item: int | None, error: ErrorInfo, now: float) -> list[Event]:
    """After a component's last failure: skip it (``on_failure="skip"``) or fail the run."""
    if node.policy.on_failure == "skip":
        return [StepSkipped(node=node.name, item=item, reason=f"failed: {error}", at=now)]
    return [RunFailed(error=error, node=node.name, at=now)]


def run_result(workflow: Workflow, result: Callable[[str], Any]) -> Any:
    """The run's result from its components' results: the output's, the only sink's, or every sink's by name."""
    if workflow.output is not None:
        return result(workflow.output)
    sinks = workflow.sinks()
    if len(sinks) == 1:
        return result(sinks[0])
    return {name: result(name) for name in sinks if result(name) is not SKIPPED}


def list_length(value: Any) -> int | None:
    """How many items a map fans out over: the length of a list, tuple or stored list (None: not a list)."""
    if isinstance(value, FactRef):
        return value.length
    if isinstance(value, (list, tuple)):
        return len(value)
    return None
