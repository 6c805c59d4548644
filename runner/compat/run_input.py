"""What a run started by ``ray_workflows.run`` stores as its input.

The DAG's input arguments (``run(dag, *args, **kwargs)``, read through
``InputNode``) and what Ray Workflows kept as metadata: the user metadata given
to ``run(metadata=...)`` and each task's ``workflow.options(metadata=...)`` and
options, so that all of it comes back from the store alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class RayWorkflowsRun:
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    user_metadata: Mapping[str, Any] = field(default_factory=dict)
    task_metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    task_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def read_dag_input(run: RayWorkflowsRun) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The function of the step that hands the DAG's input arguments to the steps reading them."""
    return tuple(run.args), dict(run.kwargs)
