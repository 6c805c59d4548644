"""An in-process, synchronous runtime: plan, execute, apply without Ray.

``drive`` runs a workflow to the end (or until it waits for a signal) with a
fake clock, producing the same events the Ray worker would: it plans each
cycle with the worker's :func:`~runner.cycle.plan_cycle`, then starts and runs
the cycle's tasks one by one. Tests of the core and of user workflows use it;
it is also how property tests generate realistic event logs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from runner import serialization
from runner.continuation import Continuation, store_call
from runner.continue_as_new import continued_in
from runner.cycle import outcome_events, plan_cycle, started_event
from runner.events import Event, RunSubmitted, SignalReceived, StoredEvent
from runner.execution import StepResult, call_step, failure
from runner.planning import DEFAULT_SYSTEM_RETRIES, Task
from runner.state import WorkflowState
from runner.workflow import Workflow

Interceptor = Callable[[Task], Any]

LEASE = 1


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
    ):
        self.workflow = workflow
        self.system_retries = system_retries
        self.now = now
        self.rng = random.Random(seed)
        self.state = WorkflowState(workflow)
        self.run_id = run_id
        submitted = RunSubmitted(
            workflow=workflow.name, input=input, definition_hash=workflow.definition_hash(), at=now
        )
        first = StoredEvent(run_id=run_id, seq=1, event=submitted)
        self.state.apply(first)
        self.log: list[StoredEvent] = [first]
        self.facts: dict[str, bytes] = {}  # the calls of continuations, by hash
        self.load = serialization.FactLoader(self.facts.__getitem__)

    def record(self, event: Event) -> None:
        self.log.append(self.state.record(event))

    def step(self, intercept: Interceptor | None = None) -> bool:
        """One cycle: bookkeeping, then every runnable task once. False when nothing happened."""
        plan = plan_cycle(self.state, self.now)
        self.log += plan.events
        for task in plan.tasks:
            if self.state.is_finished:
                break
            self.record(started_event(task, LEASE, self.now))
            result = self._execute(task, intercept)
            for event in outcome_events(self.state, task, result, self.now, self.rng, self.system_retries):
                self.record(event)
        return bool(plan.events or plan.tasks)

    def _execute(self, task: Task, intercept: Interceptor | None) -> StepResult:
        """The task's outcome. An interceptor stands in for the step's code: its value is the
        step's, its exception the step's failure, and a StepResult it returns is the outcome
        itself (``StepResult(error=..., lost=True)``: a task lost to the system). A continuation's
        call (``task.call``) always runs as it is: the interceptor stands in for the step's own code."""
        node = self.workflow.nodes[task.node]
        try:
            if intercept is not None and task.call is None:
                value = intercept(task)
            else:
                value = call_step(node, task, task.inputs, self.load)
            if isinstance(value, Continuation):  # its call is kept as a fact, as the worker's store would
                value, blob = store_call(value, serialization.dumps)
                self.facts[value.call.hash] = blob
        except Exception as exc:
            return failure(node, exc)
        return value if isinstance(value, StepResult) else StepResult(value=value)

    def run(self, intercept: Interceptor | None = None, max_cycles: int = 10_000) -> WorkflowState:
        """Cycle until the run ends or waits for a signal; jumps the clock to due retries and timers."""
        for _ in range(max_cycles):
            if self.state.is_finished:
                return self.state
            if self.step(intercept):
                continue
            wakeup = self.state.next_wakeup()
            if wakeup is None:
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
