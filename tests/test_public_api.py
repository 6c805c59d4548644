"""The public surface of ``runner`` is exactly ``__all__``; changing it is a deliberate act."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import runner

EXPECTED = [
    "AppendConflict",
    "ApprovalAlreadyDecided",
    "ApprovalRejected",
    "Checkpoint",
    "ChildRunFailed",
    "Client",
    "ConfigMismatch",
    "Continuation",
    "ContinueAsNew",
    "DeadlineExceeded",
    "Decision",
    "DefinitionError",
    "DefinitionUnavailable",
    "EveryN",
    "FactNotFound",
    "FactRef",
    "FencedError",
    "FoldError",
    "HookEvent",
    "HookKind",
    "Hooks",
    "IllegalTransition",
    "InvalidArgument",
    "InvalidCron",
    "InvalidInput",
    "JobAddressUnreachable",
    "JobFailed",
    "LeaseHeld",
    "Node",
    "NodeKind",
    "NonRetryableError",
    "Policy",
    "Queue",
    "QueueConfigError",
    "QueueFull",
    "Rate",
    "ReplayRefused",
    "Resources",
    "ResultTimeout",
    "ResumeRefused",
    "RunClosed",
    "RunDeadlineExceeded",
    "RunFilter",
    "RunHandle",
    "RunMetadata",
    "RunNotFound",
    "RunRecord",
    "RunStatus",
    "RunWasCancelled",
    "RunnerConfig",
    "RunnerError",
    "RunnerUnavailable",
    "SKIPPED",
    "Schedule",
    "ScheduleNotFound",
    "SignalId",
    "SnapshotMismatch",
    "StepContext",
    "StepInfo",
    "StepLostError",
    "StepMetadata",
    "StepTimeout",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StorePathInvalid",
    "StoreWriteFailed",
    "UnknownApproval",
    "UnknownPolicyTarget",
    "UnknownQueue",
    "WorkerConfig",
    "WorkerLost",
    "Workflow",
    "WorkflowFailed",
    "WorkflowState",
    "__version__",
    "connect",
    "context",
    "continuation",
    "continue_as_new",
    "every_n",
]

# Names that need Ray; ``runner`` loads their module on first use.
LAZY = {"Client", "RunHandle", "RunnerConfig", "WorkerConfig", "connect"}


def test_all_is_pinned():
    assert sorted(runner.__all__) == EXPECTED
    assert len(set(runner.__all__)) == len(runner.__all__), "a name is listed twice in __all__"


def test_every_eager_name_is_importable_without_ray():
    for name in sorted(set(runner.__all__) - LAZY):
        assert name in vars(runner), f"runner.{name} is not defined at import"
        namespace: dict[str, object] = {}
        exec(f"from runner import {name}", namespace)
        assert namespace[name] is vars(runner)[name]


def test_lazy_names_are_defined_where_runner_loads_them_from():
    """Checked from source, so this test does not import Ray."""
    assert {name for name in runner._LAZY} == LAZY
    for name, module_name in runner._LAZY.items():
        spec = importlib.util.find_spec(module_name)
        assert spec is not None and spec.origin, module_name
        tree = ast.parse(Path(spec.origin).read_text())
        defined = {
            node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        }
        defined |= {
            t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
        }
        assert name in defined, f"{module_name} does not define {name}"


def test_unknown_attributes_raise_attribute_error():
    try:
        runner.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no attribute 'no_such_name'" in str(exc)
    else:
        raise AssertionError("runner.no_such_name resolved")


def test_importing_runner_does_not_import_ray():
    code = "import sys, runner, runner.state, runner.testing.inprocess; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_exports_are_the_real_objects():
    from runner.errors import ResultTimeout
    from runner.events import SKIPPED, FactRef
    from runner.state import WorkflowState
    from runner.workflow import Workflow

    assert runner.SKIPPED is SKIPPED
    assert runner.FactRef is FactRef
    assert runner.Workflow is Workflow
    assert runner.WorkflowState is WorkflowState
    assert runner.ResultTimeout is ResultTimeout
    assert isinstance(runner.__version__, str) and runner.__version__.count(".") == 2
    assert importlib.import_module("runner") is runner
