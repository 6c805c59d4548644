"""Executing one task: the only place a step's user code is called.

The worker (in a Ray task or inline) and the in-process test runtime both
call :func:`run_task`, so a step behaves the same everywhere, and both hand
its outcome on as a :class:`StepResult`. A task's inputs may hold fact
references (a large upstream result, or a map's list of large items): given
a ``load``, :func:`task_args` replaces each with its value, so user code only
ever sees values. No Ray here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from runner import serialization
from runner.context import StepContext
from runner.continuation import Continuation, SubWorkflow, run_call
from runner.continue_as_new import ContinueAsNew
from runner.events import ErrorInfo, FactRef
from runner.planning import NOT_TAKEN, Task
from runner.workflow import Node, NodeKind

Load = Callable[[FactRef], Any]
"""Gives the value a fact reference names (see :class:`runner.serialization.FactLoader`)."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """A task's outcome: its ``value`` (possibly a FactRef, or NOT_TAKEN), or the ``error`` it failed
    with; ``lost``: the error is the system's (the task's node or process died), not the step's.
    ``metadata``: what the attempt added through ``runner.context().set_metadata`` (None: nothing)."""

    value: Any = None
    error: ErrorInfo | None = None
    lost: bool = False
    metadata: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __reduce__(self) -> tuple[type[StepResult], tuple[Any, ...]]:
        # every task's result crosses processes: keep it lean
        if self.metadata:
            return (StepResult, (self.value, self.error, self.lost, self.metadata))
        return (StepResult, (self.value, self.error, True) if self.lost else (self.value, self.error))

    def with_metadata(self, step_context: StepContext) -> StepResult:
        """This outcome carrying what ``step_context``'s attempt added to the run's metadata."""
        added = step_context.metadata
        return replace(self, metadata=added) if added else self


def run_task(node: Node, task: Task, inputs: tuple[Any, ...], load: Load | None = None) -> Any:
    """Call the user code ``task`` stands for and return its value (NOT_TAKEN: a rule that did not fire).
    ``load``: gives the value a FactRef among the inputs names (None: pass the inputs as they are)."""
    if task.call is not None and not task.fallback:  # a continuation runs in the step's place
        return run_call(task.call, load)
    args = task_args(node, task, inputs, load)
    if task.fallback:
        assert node.policy.fallback is not None
        return node.policy.fallback(*args)
    if node.kind is NodeKind.RULE:
        assert node.when is not None
        if not node.when(*args):
            return NOT_TAKEN
    assert node.fn is not None
    return node.fn(*args)


def call_step(node: Node, task: Task, inputs: tuple[Any, ...], load: Load | None = None) -> Any:
    """:func:`run_task` under the step's ``catch_exceptions``: its value as ``(value, None)``, or
    ``(None, exception)`` once no attempt is left to retry the exception (while one is, it is
    raised, and the attempt fails and is retried as any other)."""
    if not node.policy.catch_exceptions or task.fallback:
        return run_task(node, task, inputs, load)
    try:
        value = run_task(node, task, inputs, load)
    except Exception as exc:
        if node.policy.retries_error(exc) and task.attempt < node.policy.max_attempts:
            raise
        return (None, exc)
    if value is NOT_TAKEN or isinstance(
        value, (Continuation, SubWorkflow, ContinueAsNew)
    ):  # a continuation's call: in its turn
        return value
    return (value, None)


def failure(node: Node, exc: BaseException) -> StepResult:
    """The outcome of an attempt whose code raised ``exc``: not retried if the step's
    ``retry_exceptions`` leaves ``exc`` out (recorded as a non-retryable error)."""
    error = serialization.error_info(exc)
    if not error.non_retryable and not node.policy.retries_error(exc):
        error = replace(error, non_retryable=True)
    return StepResult(error=error)


def task_args(node: Node, task: Task, inputs: tuple[Any, ...], load: Load | None = None) -> tuple[Any, ...]:
    """The arguments ``task``'s code is called with: its inputs (a map item: its item of the list),
    with every FactRef among them loaded by ``load``. Only a task whose inputs hold references
    inside a list or dict (``task.nested_facts``) has them opened; for the others a look at each
    argument is enough, so values without references cost nothing to pass."""
    if node.kind is NodeKind.MAP:
        assert task.item is not None
        items = inputs[0]
        if load is not None and isinstance(items, FactRef):
            items = load(items)  # a large list, stored whole: the item is a plain value inside it
        args: tuple[Any, ...] = (items[task.item],)
    else:
        args = inputs
    if load is None:
        return args
    if task.nested_facts:
        return tuple(serialization.resolve_facts(arg, load) for arg in args)
    return tuple(load(arg) if isinstance(arg, FactRef) else arg for arg in args)


def idempotency_key(run_id: str, task: Task) -> str:
    """``run_id:node[:item]:input-hash``: the same for every attempt of a task with the same inputs."""
    digest = hashlib.sha256(serialization.dumps(task.inputs)).hexdigest()[:16]
    item = "" if task.item is None else f":{task.item}"
    level = f":{task.level}" if task.level else ""  # each continuation's call has a key of its own
    return f"{run_id}:{task.node}{item}{level}:{digest}"


def step_context(run_id: str, task: Task) -> StepContext:
    return StepContext(
        run_id=run_id,
        step=task.node,
        attempt=task.attempt,
        item=task.item,
        make_key=lambda: idempotency_key(run_id, task),
    )
