"""Executing one task: the only place a step's user code is called.

The worker (in a Ray task or inline) and the in-process test runtime both
call :func:`run_task`, so a step behaves the same everywhere, and both hand
its outcome on as a :class:`StepResult`. Inputs arrive resolved: fact
references already loaded. No Ray here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from runner import serialization
from runner.context import StepContext
from runner.events import ErrorInfo
from runner.planning import NOT_TAKEN, Task
from runner.workflow import Node, NodeKind


@dataclass(frozen=True, slots=True)
class StepResult:
    """A task's outcome: its ``value`` (possibly a FactRef, or NOT_TAKEN), or the ``error`` it failed with."""

    value: Any = None
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __reduce__(self) -> tuple[type[StepResult], tuple[Any, ErrorInfo | None]]:
        return (StepResult, (self.value, self.error))  # every task's result crosses processes: keep it lean


def run_task(node: Node, task: Task, inputs: tuple[Any, ...]) -> Any:
    """Call the user code ``task`` stands for and return its value (NOT_TAKEN: a rule that did not fire)."""
    if task.fallback:
        assert node.policy.fallback is not None
        return node.policy.fallback(*_call_args(node, task, inputs))
    if node.kind is NodeKind.RULE:
        assert node.when is not None
        if not node.when(*inputs):
            return NOT_TAKEN
    assert node.fn is not None
    return node.fn(*_call_args(node, task, inputs))


def _call_args(node: Node, task: Task, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    if node.kind is NodeKind.MAP:
        assert task.item is not None
        return (inputs[0][task.item],)
    return inputs


def idempotency_key(run_id: str, task: Task) -> str:
    """``run_id:node[:item]:input-hash``: the same for every attempt of a task with the same inputs."""
    digest = hashlib.sha256(serialization.dumps(task.inputs)).hexdigest()[:16]
    item = "" if task.item is None else f":{task.item}"
    return f"{run_id}:{task.node}{item}:{digest}"


def step_context(run_id: str, task: Task) -> StepContext:
    return StepContext(
        run_id=run_id,
        step=task.node,
        attempt=task.attempt,
        item=task.item,
        make_key=lambda: idempotency_key(run_id, task),
    )
