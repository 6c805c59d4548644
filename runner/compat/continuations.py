"""``workflow.continuation(dag)`` inside a step: the DAG's work replaces the step's.

The DAG is converted to a native workflow (:mod:`runner.compat.dag_workflow`)
and handed to the native ``runner.continuation(workflow, input)``: it runs as a
child run in the step's place, each of its steps recorded in the history, and
its result becomes the step's.
"""

from __future__ import annotations

from typing import Any

import runner
from runner.workflow import Workflow


def continue_with(workflow: Workflow) -> Any:
    """The native continuation that runs ``workflow`` in the step's place (as a child run)."""
    return runner.continuation(workflow, None)
