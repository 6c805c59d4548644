"""ray-runner: durable, event-sourced workflows for Python on Ray.

The public surface is exactly ``__all__``; everything else is internal.
"""

from runner.errors import (
    DefinitionError,
    FactNotFound,
    FencedError,
    FoldError,
    IllegalTransition,
    InvalidArgument,
    InvalidInput,
    LeaseHeld,
    NonRetryableError,
    RunClosed,
    RunnerError,
    RunNotFound,
    SnapshotMismatch,
    StepTimeout,
    StoreError,
    WorkflowFailed,
)
from runner.events import SKIPPED, FactRef
from runner.policy import Policy, Resources
from runner.state import WorkflowState
from runner.store import RunFilter, RunRecord, RunStatus, Store
from runner.workflow import Node, NodeKind, Workflow

__version__ = "0.1.0"

__all__ = [
    "SKIPPED",
    "DefinitionError",
    "FactNotFound",
    "FactRef",
    "FencedError",
    "FoldError",
    "IllegalTransition",
    "InvalidArgument",
    "InvalidInput",
    "LeaseHeld",
    "Node",
    "NodeKind",
    "NonRetryableError",
    "Policy",
    "Resources",
    "RunClosed",
    "RunFilter",
    "RunNotFound",
    "RunRecord",
    "RunStatus",
    "RunnerError",
    "SnapshotMismatch",
    "StepTimeout",
    "Store",
    "StoreError",
    "Workflow",
    "WorkflowFailed",
    "WorkflowState",
    "__version__",
]
