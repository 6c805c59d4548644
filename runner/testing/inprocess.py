"""An in-process, synchronous runtime: plan, execute, apply without Ray.

``drive`` runs a workflow to the end (or until it waits for a signal) with a
fake clock, producing the same events the Ray worker would: it plans each
cycle with the worker's :func:`~runner.cycle.plan_cycle`, then starts and runs
the cycle's tasks one by one. Tests of the core and of user workflows use it;
it is also how property tests generate realistic event logs.

A child-run component (``Workflow.child_run``) runs its child here too, as an
``InProcessRun`` of its own under the id the worker would give it (in
``children``, by component), driven to its end with the same interceptor and
clock; the parent records ``ChildRunEnded`` once the child ends. A child that
waits for a signal leaves the parent waiting: signal the child, then run the
parent again.

A run's checkpoint strategy (:mod:`runner.checkpoint`) is followed as the
worker follows it: ``appended`` counts the events of ``log`` a store would
hold, and :meth:`InProcessRun.crash` forgets the rest, as a worker's crash
would, so a test sees which steps run again.

Traces (:mod:`runner.tracing`) are recorded as on Ray when the process has a TracerProvider: the
run takes the context current when it is made (as ``submit`` does), each attempt has its span
(worker ``in-process``), and a run span is recorded when its end is appended.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from runner import serialization
from runner.checkpoint import CheckpointBuffer, CheckpointStrategy, as_strategy, stored_name
from runner.child_runs import child_ended, child_failed
from runner.context import installed
from runner.continuation import Continuation, SubWorkflow, load_sub_workflow, store_call, store_sub_workflow
from runner.continue_as_new import continued_in
from runner.cycle import outcome_events, plan_cycle, started_event
from runner.errors import InvalidArgument
from runner.events import Event, RunSubmitted, SignalReceived, StoredEvent
from runner.execution import StepResult, call_step, failure, step_context
from runner.planning import DEFAULT_SYSTEM_RETRIES, Task
from runner.state import WorkflowState
from runner.tracing import StepTrace, current_context, run_spans, step_span
from runner.workflow import Workflow

Interceptor = Callable[[Task], Any]

LEASE = 1
WORKER = "in-process"  # the worker named in this runtime's spans


class InProcessRun:
    """One run folded in memory; ``log`` is every event it recorded, numbered."""

    def __init__(
        self,
        workflow: Workflow,
        input: Any = None,
        *,
        run_id: str = "run-1",
        now: float = 0.0,
        seed: int = 0,
        system_retries: int = DEFAULT_SYSTEM_RETRIES,
        parent_run_id: str | None = None,
        deadline_at: float | None = None,
        checkpoint: CheckpointStrategy | str | None = None,
    ):
        self.workflow = workflow
        self.system_retries = system_retries
        self.now = now
        self.rng = random.Random(seed)
        self.state = WorkflowState(workflow)
        self.run_id = run_id
        submitted = RunSubmitted(
            workflow=workflow.name,
            input=input,
            definition_hash=workflow.definition_hash(),
            parent_run_id=parent_run_id,
            at=now,
            deadline_at=deadline_at,
            checkpoint=stored_name(None if checkpoint is None else as_strategy(checkpoint)),
            trace_context=current_context(),
        )
        first = StoredEvent(run_id=run_id, seq=1, event=submitted)
        self.state.apply(first)
        self.log: list[StoredEvent] = [first]
        self.facts: dict[str, bytes] = {}  # the calls of continuations, by hash
        self.load = serialization.FactLoader(self.facts.__getitem__)
        self.children: dict[str, InProcessRun] = {}  # child runs, by child-run component
        self.checkpoints = CheckpointBuffer(self.state.checkpoint_strategy())
        self.appended = 1  # how many events of ``log`` a store holds (the rest is buffered)
        self.appends = 1  # how many appends that took (RunSubmitted's included)

    def record(self, event: Event) -> None:
        self.log.append(self.state.record(event))

    def step(self, intercept: Interceptor | None = None) -> bool:
        """One cycle: bookkeeping, then every runnable task once. False when nothing happened."""
        plan = plan_cycle(self.state, self.now)
        self.log += plan.events
        self.checkpoints.note_events(stored.event for stored in plan.events)
        ended = self._run_children(intercept)
        for task in plan.tasks:
            if self.state.is_finished:
                break
            self.record(started_event(task, LEASE, self.now))
            result = self._execute(task, intercept)
            events = outcome_events(self.state, task, result, self.now, self.rng, self.system_retries)
            for event in events:
                self.record(event)
            if events:
                self.checkpoints.note_result(checkpointed=self.workflow.nodes[task.node].checkpoint)
                self.checkpoints.note_events(events)
        # the worker's next cycle appends here if due (a crash before it loses what is buffered)
        if self.checkpoints.due(stopping=plan.stop is not None or self.state.is_finished, idle=not plan.tasks):
            self.append()
        return bool(plan.events or plan.tasks or ended)

    def append(self) -> None:
        """Store what is buffered (a checkpoint)."""
        if self.appended < len(self.log):
            state = self.state
            run_spans(
                self.run_id,
                self.workflow.name,
                state.submitted_at,
                state.trace_context,
                self.log[self.appended :],
                WORKER,
            )
            self.appended = len(self.log)
            self.appends += 1
        self.checkpoints.appended()

    def crash(self) -> None:
        """Lose what is buffered, as a worker's crash would, and recover from what is stored."""
        self.log = self.log[: self.appended]
        self.state = WorkflowState.from_events(self.workflow, self.log)
        self.checkpoints = CheckpointBuffer(self.state.checkpoint_strategy())

    def _run_children(self, intercept: Interceptor | None) -> bool:
        """Drive each open child run as far as it goes; record the end of each that ended."""
        ended = False
        for node_name, child_id in self.state.open_children().items():
            child = self.children.get(node_name)
            if child is None:
                workflow, value = self._child_of(node_name)
                try:
                    value = workflow.check_input(value)
                except InvalidArgument as exc:  # never created, as on Ray
                    self.record(child_failed(node_name, child_id, "refused", str(exc)))
                    ended = True
                    continue
                child = InProcessRun(
                    workflow,
                    value,
                    run_id=child_id,
                    now=self.now,
                    seed=self.rng.randrange(1 << 30),
                    system_retries=self.system_retries,
                    parent_run_id=self.run_id,
                )
                self.children[node_name] = child
            child.now = max(child.now, self.now)
            child.run(intercept)
            self.now = max(self.now, child.now)
            if child.state.is_finished:
                last = child.log[-1].event
                self.record(child_ended(node_name, child_id, last, child.state.status))
                ended = True
        return ended

    def _child_of(self, node_name: str) -> tuple[Workflow, Any]:
        """The workflow and input of a child-run component's child, or of the sub-workflow a step
        continued into (read from its fact, as the worker reads it)."""
        sub_workflow = self.state.sub_workflow(node_name)
        if sub_workflow is not None:
            sub = load_sub_workflow(sub_workflow, self.load)
            return sub.workflow, sub.input
        node = self.workflow.nodes[node_name]
        assert node.child is not None
        return node.child, self.state.results()[node.after[0]] if node.after else self.state.input

    def _execute(self, task: Task, intercept: Interceptor | None) -> StepResult:
        """The task's outcome. An interceptor stands in for the step's code: its value is the
        step's, its exception the step's failure, and a StepResult it returns is the outcome
        itself (``StepResult(error=..., lost=True)``: a task lost to the system). A continuation's
        call (``task.call``) always runs as it is: the interceptor stands in for the step's own code."""
        trace = StepTrace(self.state.trace_context, WORKER)
        with step_span(self.run_id, self.workflow.name, task, trace) as span:
            result, raised = self._outcome(task, intercept)
            if not result.ok:
                span.failed(raised, result.error)
            return result

    def _outcome(self, task: Task, intercept: Interceptor | None) -> tuple[StepResult, Exception | None]:
        """The task's outcome and the exception it failed with, if it raised one."""
        node = self.workflow.nodes[task.node]
        context = step_context(self.run_id, task)  # runner.context() works here as in a Ray task
        try:
            with installed(context):
                if intercept is not None and task.call is None:
                    value = intercept(task)
                else:
                    value = call_step(node, task, task.inputs, self.load)
            if isinstance(value, Continuation):  # its call is kept as a fact, as the worker's store would
                value, blob = store_call(value, serialization.dumps)
                self.facts[value.call.hash] = blob
            elif isinstance(value, SubWorkflow):
                value, blob = store_sub_workflow(value, serialization.dumps)
                self.facts[value.sub_workflow.hash] = blob
        except Exception as exc:
            return failure(node, exc).with_metadata(context), exc
        result = value if isinstance(value, StepResult) else StepResult(value=value)
        return result.with_metadata(context), None

    def run(self, intercept: Interceptor | None = None, max_cycles: int = 10_000) -> WorkflowState:
        """Cycle until the run ends or waits for a signal; jumps the clock to due retries and timers."""
        for _ in range(max_cycles):
            if self.state.is_finished:
                self.append()
                return self.state
            if self.step(intercept):
                continue
            wakeup = min((t for t in (self.state.next_wakeup(), self.state.deadline_at) if t is not None), default=None)
            if wakeup is None:
                self.append()
                return self.state  # waiting for a signal
            self.now = max(self.now, wakeup)
        raise RuntimeError(f"run did not settle in {max_cycles} cycles")

    def signal(self, signal_id: int, name: str, payload: Any) -> None:
        self.record(SignalReceived(signal_id=signal_id, name=name, payload=payload, at=self.now))


def drive(workflow: Workflow, input: Any = None, **kwargs: Any) -> InProcessRun:
    run = InProcessRun(workflow, input, **kwargs)
    run.run()
    return run


def drive_chain(workflow: Workflow, input: Any = None, *, max_runs: int = 1_000, **kwargs: Any) -> list[InProcessRun]:
    """Drive a run and every successor it continues as (continue-as-new), in order."""
    runs = [drive(workflow, input, **kwargs)]
    while runs[-1].state.successor_run_id is not None:
        if len(runs) >= max_runs:
            raise RuntimeError(f"the chain of runs did not end in {max_runs} runs")
        last = runs[-1]
        kwargs.update(run_id=last.state.successor_run_id, now=last.now)
        [continued] = continued_in(stored.event for stored in last.log)
        runs.append(drive(workflow, continued.input, **kwargs))
    return runs
