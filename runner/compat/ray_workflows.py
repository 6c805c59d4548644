"""Ray Workflows' API on the native runner: ``from runner.compat import ray_workflows as workflow``.

Programs written for Ray Workflows (Ray 2.47 and before) run with only their
import changed: Ray DAGs built from ``@ray.remote`` functions with ``.bind()``
are converted to native workflows (:mod:`runner.compat.dag_workflow`) and every
call maps onto the native client (``runner.connect`` / ``Client`` /
``RunHandle``). Where Ray Workflows returned an ObjectRef (``run_async``,
``get_output_async``, ``resume_async``), a small Ray task (``num_cpus=0``)
waits for the run's result, so ``ray.get`` raises a failed run's error as Ray
Workflows did (a ``RayTaskError`` that is also the step's own exception type).
docs/migrating-from-ray-workflows.md lists each call's native equivalent and
what differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import ray

from adapters import DEFAULT_STORE_URL
from runner import serialization
from runner.client import Client, connect
from runner.compat import exceptions
from runner.compat.continuations import continue_with
from runner.compat.dag_workflow import check_dag, encode_options, to_workflow
from runner.compat.events import EventListener, HTTPListener, SignalListener, TimerListener, sleep_node, wait_node
from runner.compat.metadata import metadata_of
from runner.compat.run_input import RayWorkflowsRun
from runner.compat.status import WorkflowStatus, native_statuses, parse_status_filter, workflow_status
from runner.context import context
from runner.errors import IllegalTransition, InvalidArgument, RunnerError, RunNotFound
from runner.object_refs import resolve_object_refs
from runner.state import WorkflowState
from runner.store import RunStatus

NONE = WorkflowStatus.NONE
RUNNING = WorkflowStatus.RUNNING
CANCELED = WorkflowStatus.CANCELED
SUCCESSFUL = WorkflowStatus.SUCCESSFUL
FAILED = WorkflowStatus.FAILED
RESUMABLE = WorkflowStatus.RESUMABLE
PENDING = WorkflowStatus.PENDING
LIST_LIMIT = 100_000  # list_all returns at most this many runs (newest first)
_STOPPED = (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PAUSED)

_client: Client | None = None


# --------------------------------------------------------------------- setup
def init(
    *,
    max_running_workflows: int | None = None,
    max_pending_workflows: int | None = None,
    client: Client | None = None,
    store: str = DEFAULT_STORE_URL,
    namespace: str = "runner",
    address: str | None = None,
) -> None:
    """Connect this process to the runner (starting Ray and the Runner if need be).

    ``client``: use a connection made with ``runner.connect`` instead; else
    ``store``, ``namespace`` and ``address`` are ``runner.connect``'s. Ray
    Workflows' ``max_running_workflows`` / ``max_pending_workflows`` have no
    equivalent here (give None or -1): size the Runner with
    ``runner.connect(config=runner.RunnerConfig(max_workers=..., runs_per_worker=...))``."""
    global _client
    for option, value in (
        ("max_running_workflows", max_running_workflows),
        ("max_pending_workflows", max_pending_workflows),
    ):
        if value not in (None, -1):
            raise InvalidArgument(
                f"{option}={value!r} is not supported: the Runner caps workers, not runs; "
                "connect with runner.connect(config=runner.RunnerConfig(max_workers=..., runs_per_worker=...)) "
                "and pass init(client=...)"
            )
    _client = client if client is not None else connect(address, store=store, namespace=namespace)


def native_client() -> Client:
    """The native client these calls go through (connecting first if need be): for what only the
    native API has (``pause``, ``fork``, ``history``, approvals ...)."""
    return _connected()


def _connected() -> Client:
    if _client is None:
        init()
    assert _client is not None
    return _client


# ---------------------------------------------------------------- running
def run(
    dag: Any, *args: Any, workflow_id: str | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """Run the DAG durably and return its output (``ray.get(run_async(...))``)."""
    return ray.get(run_async(dag, *args, workflow_id=workflow_id, metadata=metadata, **kwargs))


def run_async(
    dag: Any, *args: Any, workflow_id: str | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any
) -> ray.ObjectRef:
    """Store a run of the DAG (durably, before returning) and return an ObjectRef of its output.

    An existing ``workflow_id`` is not run twice: a failed, cancelled or paused run of
    that id is resumed, any other gives its output."""
    try:
        json.dumps(metadata or {})
    except (TypeError, ValueError):
        raise InvalidArgument(f"metadata must be a dict of JSON values, got {metadata!r}") from None
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgument(f"metadata must be a dict of JSON values, got {metadata!r}")
    check_dag(dag)  # before connecting: a wrong argument starts nothing and stores nothing
    client = _connected()
    converted = to_workflow(dag, load=ray.get)
    kept = RayWorkflowsRun(
        args=resolve_object_refs(args),
        kwargs=resolve_object_refs(kwargs),
        user_metadata=dict(metadata or {}),
        task_metadata=converted.task_metadata,
        task_options=converted.task_options,
    )
    handle = client.submit(converted.workflow, kept, run_id=workflow_id)
    if handle.status() in _STOPPED:
        client.resume(handle.run_id, reason="ray_workflows.run of an existing workflow id")
    return _output_ref(client, handle.run_id, None)


def resume(workflow_id: str) -> Any:
    """Go on with a stopped run and return its output (``ray.get(resume_async(...))``)."""
    return ray.get(resume_async(workflow_id))


def resume_async(workflow_id: str) -> ray.ObjectRef:
    """Resume a failed, cancelled or paused run (every recorded result is kept; what failed runs
    again); a run still going, or completed, just gives its output. RunNotFound if there is none."""
    client = _connected()
    if client.get(_checked(workflow_id)).status() in _STOPPED:
        client.resume(workflow_id, reason="ray_workflows.resume")
    return _output_ref(client, workflow_id, None)


def resume_all(include_failed: bool = False) -> list[tuple[str, ray.ObjectRef]]:
    """Resume every paused run (and failed ones with ``include_failed``): ``[(workflow_id, output ref)]``."""
    wanted = {RESUMABLE, FAILED} if include_failed else {RESUMABLE}
    return [(workflow_id, resume_async(workflow_id)) for workflow_id, _ in list_all(wanted)]


# ---------------------------------------------------------------- reading
def get_output(workflow_id: str, *, task_id: str | None = None) -> Any:
    """The run's output, or one task's (waiting for it if need be)."""
    return ray.get(get_output_async(workflow_id, task_id=task_id))


def get_output_async(workflow_id: str, *, task_id: str | None = None) -> ray.ObjectRef:
    client = _connected()
    client.get(_checked(workflow_id))  # RunNotFound here, not inside the ref
    return _output_ref(client, workflow_id, task_id)


def get_status(workflow_id: str) -> WorkflowStatus:
    """The run's status in Ray Workflows' terms (see runner.compat.status); NONE if there is no such run."""
    try:
        record = _connected().reader.get_run(_checked(workflow_id))
    except RunNotFound:
        return WorkflowStatus.NONE
    return workflow_status(record.status)


def get_metadata(workflow_id: str, task_id: str | None = None) -> dict[str, Any]:
    """Ray Workflows' metadata dict of a run or one of its tasks (see runner.compat.metadata)."""
    return metadata_of(_connected(), _checked(workflow_id), task_id)


def list_all(status_filter: Any = None) -> list[tuple[str, WorkflowStatus]]:
    """``[(workflow_id, status)]`` of the store's workflows, newest first, optionally only those with
    the given status(es). Runs made by other runs (the child runs of continuations, replays,
    forks) have a parent and are not listed, as Ray Workflows listed only the workflows started."""
    statuses = native_statuses(parse_status_filter(status_filter))
    if not statuses:  # only NONE: no stored run has it
        return []
    records = _connected().list_runs(status=statuses, limit=LIST_LIMIT)
    return [(record.run_id, workflow_status(record.status)) for record in records if record.parent_run_id is None]


# ------------------------------------------------------------ stopping
def cancel(workflow_id: str) -> None:
    """Cancel a run (its running steps are cancelled; its history stays). An ended run is left as it is."""
    client = _connected()
    if client.get(_checked(workflow_id)).status().is_terminal:
        return
    try:
        client.cancel(workflow_id)
    except IllegalTransition:
        if not client.get(workflow_id).status().is_terminal:
            raise


def delete(workflow_id: str) -> None:
    """Delete an ended run and its history: WorkflowNotFoundError (RunNotFound) if there is none,
    WorkflowStillActiveError (IllegalTransition) while it has not ended."""
    _connected().delete(_checked(workflow_id))


# ------------------------------------------------------- inside a DAG
def sleep(duration: float) -> Any:
    """A DAG node that waits ``duration`` seconds, durably (a native timer; holds no worker)."""
    return sleep_node(duration)


def wait_for_event(event_listener_type: type, *args: Any, **kwargs: Any) -> Any:
    """A DAG node that waits for an event (see runner.compat.events for the listeners supported)."""
    return wait_node(event_listener_type, args, dict(kwargs))


def send_event(workflow_id: str, event_key: str, payload: Any = None) -> None:
    """Deliver event ``event_key`` to a run (stored before this returns; a wait takes it when reached)."""
    _connected().signal(_checked(workflow_id), event_key, payload)


def continuation(dag_node: Any) -> Any:
    """Return this from a task: the DAG runs in the task's place and its output becomes the task's.
    Outside a workflow the DAG is just executed by Ray and its value returned."""
    try:
        context()
    except RunnerError:
        return ray.get(dag_node.execute())
    return continue_with(to_workflow(dag_node, load=ray.get).workflow)


class options(Mapping[str, Any]):  # noqa: N801  (Ray Workflows' name)
    """Workflow options for a task (``task_id``, ``metadata``, ``catch_exceptions``, ``checkpoint``):
    ``fn.options(**workflow.options(task_id="x"))`` or ``@workflow.options(...)`` above ``@ray.remote``."""

    def __init__(self, **workflow_options: Any) -> None:
        self._ray_options = encode_options(**workflow_options)

    def __getitem__(self, key: str) -> Any:
        return self._ray_options[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ray_options)

    def __len__(self) -> int:
        return len(self._ray_options)

    def __call__(self, remote_function: Any) -> Any:
        if not isinstance(remote_function, ray.remote_function.RemoteFunction):
            raise InvalidArgument("workflow.options(...) decorates a @ray.remote function: put it above @ray.remote")
        remote_function._default_options.update(self._ray_options)
        return remote_function


# ------------------------------------------------------------- internals
def _checked(workflow_id: object) -> str:
    if not isinstance(workflow_id, str):
        raise InvalidArgument(f"workflow_id must be a string, got {type(workflow_id).__name__}")
    return workflow_id


def _output_ref(client: Client, run_id: str, task_id: str | None) -> ray.ObjectRef:
    ref: ray.ObjectRef = _await_output.remote(client.namespace, client.store_url, run_id, task_id)
    return ref


_TASK_CLIENTS: dict[tuple[str, str], Client] = {}


@ray.remote(num_cpus=0, max_retries=3)
def _await_output(namespace: str, store_url: str, run_id: str, task_id: str | None) -> Any:
    """In a Ray task: wait for the run (or its task) and return the value, or raise its error."""
    client = _TASK_CLIENTS.get((namespace, store_url))
    if client is None:
        client = _TASK_CLIENTS[(namespace, store_url)] = connect(store=store_url, namespace=namespace)
    handle = client.get(run_id)
    if task_id is None:
        return handle.result()
    found, value = _task_value(client, run_id, task_id)
    if not found:
        handle.wait()
        found, value = _task_value(client, run_id, task_id)
    if not found:
        raise InvalidArgument(f"task {task_id!r} of workflow {run_id!r} ended without a result")
    return value


def _task_value(client: Client, run_id: str, task_id: str) -> tuple[bool, Any]:
    handle = client.get(run_id)
    workflow = serialization.loads(handle.record().definition)
    if task_id not in workflow.nodes:
        raise InvalidArgument(f"workflow {run_id!r} has no task {task_id!r}; its tasks: {', '.join(workflow.nodes)}")
    results = WorkflowState.from_events(workflow, handle.history()).results()
    if task_id not in results:
        return False, None
    return True, client.load_value(results[task_id])


__all__ = [
    "CANCELED",
    "FAILED",
    "NONE",
    "PENDING",
    "RESUMABLE",
    "RUNNING",
    "SUCCESSFUL",
    "EventListener",
    "HTTPListener",
    "SignalListener",
    "TimerListener",
    "WorkflowStatus",
    "cancel",
    "continuation",
    "delete",
    "exceptions",
    "get_metadata",
    "get_output",
    "get_output_async",
    "get_status",
    "init",
    "list_all",
    "native_client",
    "options",
    "resume",
    "resume_all",
    "resume_async",
    "run",
    "run_async",
    "send_event",
    "sleep",
    "wait_for_event",
]
