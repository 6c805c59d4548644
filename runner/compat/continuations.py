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

from typing import Any

import runner
from runner.continuation import Continuation
from runner.errors import InvalidArgument
from runner.object_refs import resolve_object_refs
from runner.workflow import NodeKind, Workflow


def continue_with(workflow: Workflow) -> Continuation:
    """The native continuation that runs ``workflow`` in the step's place."""
    try:
        whole: Continuation = runner.continuation(workflow, None)  # type: ignore[arg-type]
    except InvalidArgument:  # the native API takes single calls only
        return runner.continuation(run_here, workflow)
    return whole


def run_here(workflow: Workflow) -> Any:
    """Run ``workflow``'s steps in order in this process; its output's value."""
    results: dict[str, Any] = {}
    for name, node in workflow.nodes.items():
        if node.kind is not NodeKind.STEP or node.fn is None:
            raise InvalidArgument(
                f"{name!r} is a {node.kind.value}: a sleep or event wait inside a continuation is not supported "
                "yet; put it in the DAG given to ray_workflows.run"
            )
        values = [results[upstream] for upstream in node.after]
        try:
            value = node.fn(*values)
            while isinstance(value, Continuation):
                value = value.call()
            value = resolve_object_refs(value)
        except Exception as exc:
            if not node.policy.catch_exceptions:
                raise
            results[name] = (None, exc)
            continue
        results[name] = (value, None) if node.policy.catch_exceptions else value
    return results[workflow.output or list(workflow.nodes)[-1]]
