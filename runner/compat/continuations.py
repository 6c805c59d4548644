"""``workflow.continuation(dag)`` inside a step: the DAG's work replaces the step's.

The DAG is converted to a native workflow (:mod:`runner.compat.dag_workflow`)
and handed to the native ``runner.continuation``. When the native API takes a
whole workflow (``runner.continuation(workflow, input)``, each of its steps
recorded in the history), that is used. Until then the workflow runs as one
continuation call, :func:`run_here`: its steps run one after another inside
the step's task, so the continuation as a whole is recorded (and re-run after a
crash) as one call, its steps' Ray options and retries do not apply, and a
sleep or event wait inside it is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import runner
from runner.continuation import Continuation
from runner.errors import InvalidArgument
from runner.object_refs import resolve_object_refs
from runner.workflow import NodeKind, Workflow


def continue_with(workflow: Workflow) -> Any:
    """The native continuation that runs ``workflow`` in the step's place: the sub-workflow
    continuation where the native API has it, else :func:`run_here` as one call."""
    native: Callable[..., Any] = runner.continuation
    try:
        return native(workflow, None)  # runs the workflow as a child run, each step recorded
    except InvalidArgument:  # a native API that takes single calls only
        return native(run_here, steps_of(workflow), workflow.output)


# (name, upstream names, function, catch_exceptions): plain tuples, so that the call's pickling
# finds the user's functions among its arguments and carries their code by value
Step = tuple[str, tuple[str, ...], Callable[..., Any], bool]


def steps_of(workflow: Workflow) -> tuple[Step, ...]:
    steps: list[Step] = []
    for name, node in workflow.nodes.items():
        if node.kind is not NodeKind.STEP or node.fn is None:
            raise InvalidArgument(
                f"{name!r} is a {node.kind.value}: a sleep or event wait inside a continuation is not supported "
                "yet; put it in the DAG given to ray_workflows.run"
            )
        steps.append((name, node.after, node.fn, node.policy.catch_exceptions))
    return tuple(steps)


def run_here(steps: tuple[Step, ...], output: str | None) -> Any:
    """Run ``steps`` in order in this process; the value of ``output`` (else the last step)."""
    results: dict[str, Any] = {}
    for name, after, fn, catch_exceptions in steps:
        try:
            value = fn(*(results[upstream] for upstream in after))
            while isinstance(value, Continuation):
                value = value.call()
            value = resolve_object_refs(value)
        except Exception as exc:
            if not catch_exceptions:
                raise
            results[name] = (None, exc)
            continue
        results[name] = (value, None) if catch_exceptions else value
    return results[output if output is not None else steps[-1][0]]
