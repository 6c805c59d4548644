"""ray-runner: durable, event-sourced workflows for Python on Ray.

The public surface is exactly ``__all__``; everything else is internal.
The names that need Ray (``connect``, ``Client``, ``RunHandle``) load it on
first use, so the pure core imports without Ray.
"""

from typing import TYPE_CHECKING, Any

from runner.approvals import Decision
from runner.checkpoint import Checkpoint, EveryN, every_n
from runner.context import StepContext, context
from runner.continuation import Continuation, continuation
from runner.continue_as_new import ContinueAsNew, continue_as_new
from runner.errors import (
    AppendConflict,
    ApprovalAlreadyDecided,
    ApprovalRejected,
    ChildRunFailed,
    ConfigMismatch,
    DeadlineExceeded,
    DefinitionError,
    DefinitionUnavailable,
    FactNotFound,
    FencedError,
    FoldError,
    IllegalTransition,
    InvalidArgument,
    InvalidCron,
    InvalidInput,
    JobAddressUnreachable,
    JobFailed,
    LeaseHeld,
    NonRetryableError,
    QueueConfigError,
    QueueFull,
    ReplayRefused,
    ResultTimeout,
    ResumeRefused,
    RunClosed,
    RunDeadlineExceeded,
    RunnerError,
    RunnerUnavailable,
    RunNotFound,
    RunWasCancelled,
    ScheduleNotFound,
    SnapshotMismatch,
    StepLostError,
    StepTimeout,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StorePathInvalid,
    StoreWriteFailed,
    UnknownApproval,
    UnknownPolicyTarget,
    UnknownQueue,
    WorkerLost,
    WorkflowFailed,
)
from runner.events import SKIPPED, FactRef
from runner.hooks import HookEvent, HookKind, Hooks
from runner.policy import Policy, Resources
from runner.queues import Queue, Rate
from runner.run_metadata import RunMetadata, StepMetadata
from runner.signal_id import SignalId
from runner.state import StepInfo, WorkflowState
from runner.store import RunFilter, RunRecord, RunStatus, Schedule, Store
from runner.workflow import Node, NodeKind, Workflow

if TYPE_CHECKING:
    from runner.client import Client, RunHandle, connect
    from runner.runner_config import RunnerConfig
    from runner.worker import WorkerConfig

__version__ = "0.1.0"

_LAZY = {
    "connect": "runner.client",
    "Client": "runner.client",
    "RunHandle": "runner.client",
    "RunnerConfig": "runner.runner_config",
    "WorkerConfig": "runner.worker",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "every_n",
    "EveryN",
    "SKIPPED",
    "AppendConflict",
    "ApprovalAlreadyDecided",
    "ApprovalRejected",
    "Checkpoint",
    "Client",
    "RunHandle",
    "StepContext",
    "StepInfo",
    "RunMetadata",
    "StepMetadata",
    "SignalId",
    "connect",
    "context",
    "ConfigMismatch",
    "Continuation",
    "continuation",
    "Decision",
    "ContinueAsNew",
    "continue_as_new",
    "DefinitionError",
    "DefinitionUnavailable",
    "FactNotFound",
    "FactRef",
    "FencedError",
    "FoldError",
    "HookEvent",
    "HookKind",
    "Hooks",
    "IllegalTransition",
    "InvalidArgument",
    "InvalidInput",
    "JobAddressUnreachable",
    "JobFailed",
    "LeaseHeld",
    "Node",
    "NodeKind",
    "NonRetryableError",
    "Policy",
    "Resources",
    "ReplayRefused",
    "ResultTimeout",
    "ResumeRefused",
    "RunClosed",
    "RunFilter",
    "RunNotFound",
    "RunWasCancelled",
    "RunRecord",
    "RunStatus",
    "RunnerConfig",
    "RunnerError",
    "RunnerUnavailable",
    "SnapshotMismatch",
    "ChildRunFailed",
    "StepLostError",
    "StepTimeout",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StorePathInvalid",
    "StoreWriteFailed",
    "UnknownApproval",
    "Queue",
    "QueueConfigError",
    "QueueFull",
    "Rate",
    "UnknownQueue",
    "WorkerLost",
    "Workflow",
    "WorkflowFailed",
    "WorkerConfig",
    "WorkflowState",
    "__version__",
    "DeadlineExceeded",
    "RunDeadlineExceeded",
    "UnknownPolicyTarget",
    "InvalidCron",
    "ScheduleNotFound",
    "Schedule",
]
