"""An in-process, synchronous runtime: plan, execute, apply without Ray.

``drive`` runs a workflow to the end (or until it waits for a signal) with a
fake clock, producing the same events the Ray worker would. Tests of the
core and of user workflows use it; it is also how property tests generate
realistic event logs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from runner import serialization
from runner.events import Event, RunSubmitted, StepStarted, StoredEvent
from runner.execution import run_task
from runner.state import Task, WorkflowState
from runner.workflow import Workflow

Interceptor = Callable[[Task], Any]


class InProcessRun:
    """One run folded in memory; ``log`` is every event it recorded, numbered."""

    def __init__(
        self, workflow: Workflow, input: Any = None, *, run_id: str = "run-1", now: float = 0.0, seed: int = 0
    ):
        self.workflow = workflow
        self.now = now
        self.rng = random.Random(seed)
        self.state = WorkflowState(workflow)
        self.log: list[StoredEvent] = []
        self.run_id = run_id
        self.record(
            RunSubmitted(workflow=workflow.name, input=input, definition_hash=workflow.definition_hash(), at=now)
        )

    def record(self, event: Event) -> None:
        stored = StoredEvent(run_id=self.run_id, seq=len(self.log) + 1, event=event)
        self.state.apply(stored)
        self.log.append(stored)

    def step(self, intercept: Interceptor | None = None) -> bool:
        """One cycle: bookkeeping, then every runnable task once. False when nothing happened."""
        progressed = False
        for event in self.state.advance(self.now):
            self.record(event)
            progressed = True
        for task in self.state.runnables(now=self.now):
            if self.state.is_finished:
                break
            self.record(StepStarted(node=task.node, item=task.item, attempt=task.attempt, lease=1, at=self.now))
            node = self.workflow.nodes[task.node]
            try:
                value = intercept(task) if intercept is not None else run_task(node, task, task.inputs)
            except Exception as exc:
                events = self.state.failure_events(task, serialization.error_info(exc), self.now, self.rng)
            else:
                events = self.state.success_events(task, value, self.now)
            for event in events:
                self.record(event)
            progressed = True
        return progressed

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
        from runner.events import SignalReceived

        self.record(SignalReceived(signal_id=signal_id, name=name, payload=payload, at=self.now))


def drive(workflow: Workflow, input: Any = None, **kwargs: Any) -> InProcessRun:
    run = InProcessRun(workflow, input, **kwargs)
    run.run()
    return run
