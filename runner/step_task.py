"""A step as a Ray task: what runs on the cluster for each task a worker dispatches.

The worker sends a task the run id, the definition's hash, the task and the
Store actor's *address* (not its handle, nor the definition: both cost every
task a registration or a fetch). The task finds the definition in a
per-process cache (on a miss it reads it once from the run's record), runs
the step under its context with the fact references among its inputs loaded
(at any depth: see :func:`runner.execution.task_args`), saves a
large result as a fact, and returns a :class:`~runner.execution.StepResult`.
A step's own exception is a failed StepResult, never a raised error.

A task is dispatched before the append that records its start has returned,
with that append's ObjectRef as its ``gate`` argument: Ray starts it only once
the commit has returned, and a task whose append was refused raises that
error without running its step (:func:`check_gate`). A cycle's lone task gets
the ObjectRef in a :class:`HeldGate` instead: Ray places and ships it while
the commit runs, and the task itself waits for the commit before its step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from runner import serialization
from runner.context import installed
from runner.continuation import Continuation, SubWorkflow, store_call, store_sub_workflow
from runner.continue_as_new import ContinueAsNew
from runner.execution import StepResult, call_step, failure, step_context
from runner.object_refs import resolve_object_refs
from runner.planning import Task
from runner.shipping import pickle_call, pickle_sub_workflow
from runner.store import Receipt, RunRecord
from runner.store_handle import StoreHandle
from runner.tracing import StepTrace, step_span
from runner.workflow import Node, Workflow

# ------------------------------------------------------- per-process caches
_DEFINITIONS: dict[str, Workflow] = {}


def definition_key(blob: bytes) -> str:
    """What a run's pickled definition is cached under: the digest of the bytes themselves. Not the
    definition hash, which covers the graph and its functions' code but not the values they
    close over: two workflows built by one factory with different settings share a definition
    hash, and a cache keyed on it would run one's steps with the other's values."""
    return serialization.fact_hash(blob)


def definition(key: str, blob: bytes) -> Workflow:
    """The workflow pickled in ``blob`` (``key`` = ``definition_key(blob)``), unpickled once per process."""
    workflow = _DEFINITIONS.get(key)
    if workflow is None:
        if len(_DEFINITIONS) > 64:
            _DEFINITIONS.clear()
        workflow = serialization.loads(blob)
        _DEFINITIONS[key] = workflow
    return workflow


@dataclass(frozen=True)
class StoreAddress:
    """The Store actor's name: what a step task gets instead of its handle. A handle costs
    a registration on both sides of every task; most tasks never touch the store, and the
    ones that do (a large input or result) look it up once per process."""

    name: str
    namespace: str

    def handle(self) -> StoreHandle:
        if not self.name:
            raise RuntimeError("this Store actor has no name: create it through the Runner (runner.connect)")
        handle = _STORE_HANDLES.get(self)
        if handle is None:
            handle = _STORE_HANDLES[self] = StoreHandle(ray.get_actor(self.name, namespace=self.namespace))
        return handle


_STORE_HANDLES: dict[StoreAddress, StoreHandle] = {}


# ------------------------------------------------------------- running one
def execute_step(
    run_id: str,
    workflow: Workflow,
    task: Task,
    store: Callable[[], StoreHandle],
    fact_threshold: int,
    deferred_facts: list[tuple[str, bytes]] | None = None,
    trace: StepTrace | None = None,
) -> StepResult:
    """Run one task: its value (or FactRef) or the error it failed with. Never raises for user errors.
    ``store`` gives the Store actor's handle, asked for only when a fact is read or saved.

    A large result is saved as a fact before the ref is returned, or, given ``deferred_facts``
    (an inline step inside the worker), left there for the worker to save before its next append.
    ``trace``: the run's trace context and worker, for the attempt's span (:mod:`runner.tracing`)."""
    with step_span(run_id, workflow.name, task, trace, _node_id) as span:
        result, exc = _execute(run_id, workflow, task, store, fact_threshold, deferred_facts)
        if exc is not None:
            span.failed(exc)
        return result


def _execute(
    run_id: str,
    workflow: Workflow,
    task: Task,
    store: Callable[[], StoreHandle],
    fact_threshold: int,
    deferred_facts: list[tuple[str, bytes]] | None,
) -> tuple[StepResult, Exception | None]:
    node = workflow.nodes[task.node]
    context = step_context(run_id, task)
    try:
        load = serialization.FactLoader(lambda fact_hash: ray.get(store().load_fact(fact_hash)))
        with installed(context):
            value = resolve_object_refs(call_step(node, task, task.inputs, load))  # values, not refs
        stored: Any
        blob: bytes | None
        if isinstance(value, Continuation):  # the call is saved as a fact: it runs next, in the step's place
            stored, blob = store_call(value, pickle_call)
            fact_hash = stored.call.hash
        elif isinstance(value, SubWorkflow):  # the workflow and its input are saved as a fact: it runs as a child
            stored, blob = store_sub_workflow(value, pickle_sub_workflow)
            fact_hash = stored.sub_workflow.hash
        elif isinstance(value, ContinueAsNew):  # its input goes into the successor's first event as it is
            stored, blob, fact_hash = value, None, ""
        else:
            stored, blob = serialization.externalize(value, fact_threshold)
            fact_hash = stored.hash if blob is not None else ""
        if blob is not None and deferred_facts is not None:
            deferred_facts.append((fact_hash, blob))
        elif blob is not None:
            ray.get(store().save_fact(fact_hash, blob))
        return StepResult(value=stored).with_metadata(context), None
    except Exception as exc:
        return failure(node, exc).with_metadata(context), exc


def _node_id() -> str | None:
    """The Ray node this process runs on (for a step's span)."""
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


@dataclass(frozen=True)
class HeldGate:
    """An append's ObjectRef inside a value, so that Ray does not wait for it before starting the
    task: the task is placed and shipped while the commit runs, and waits for it itself
    (:func:`check_gate`). For a cycle's lone task (a chain's next step); many tasks waiting like
    this would each hold a worker process, so a fan-out's tasks get the ref itself."""

    ref: Any  # ray.ObjectRef[Receipt | Exception]


Gate = Receipt | Exception | HeldGate | None
"""What a task dispatched on its run's append gets for that append: its receipt, or the error the
store answered it with (Ray resolved the append's ObjectRef before starting the task), or a
:class:`HeldGate` to wait for."""


def check_gate(run_id: str, gate: Gate) -> None:
    """Raise unless the append the task was dispatched on committed: a task whose StepStarted was
    never recorded (a fenced or failed append) must not run its step. (An append whose call failed
    outright fails the task in Ray before it starts, or raises here from ``ray.get``.)"""
    if isinstance(gate, HeldGate):
        gate = ray.get(gate.ref)
    if isinstance(gate, BaseException):
        raise gate
    if isinstance(gate, Receipt) and gate.run_id != run_id:
        raise RuntimeError(f"task of run {run_id!r} was gated on an append of run {gate.run_id!r}")


@ray.remote(max_retries=0)
def _step_task(
    run_id: str,
    definition_key: str,
    task: Task,
    store: StoreAddress,
    fact_threshold: int,
    gate: Gate = None,
    trace: StepTrace | None = None,
) -> StepResult:
    check_gate(run_id, gate)
    workflow = _task_definition(run_id, definition_key, store)
    return execute_step(run_id, workflow, task, store.handle, fact_threshold, trace=trace)


def _task_definition(run_id: str, key: str, store: StoreAddress) -> Workflow:
    """The run's definition, cached per process by ``definition_key``; on a miss, read once from
    the run's record. Tasks do not carry it: an object-store argument costs every task a fetch."""
    workflow = _DEFINITIONS.get(key)
    if workflow is not None:
        return workflow
    record: RunRecord = ray.get(store.handle().get_run(run_id))
    stored_key = definition_key(record.definition)
    if stored_key != key:
        raise RuntimeError(f"run {run_id!r} has definition {stored_key[:12]}, not {key[:12]}")
    return definition(key, record.definition)


def remote_step(node: Node, name: str) -> NamedStepTask:
    """What runs one of ``node``'s tasks, with its Ray options (resources) and ``name``, the task's
    name in Ray's state API and timeline (:mod:`runner.ray_names`). Call
    ``.remote(run_id, definition_key, task, address, fact_threshold, gate[, trace])``, ``gate`` the
    ObjectRef of the append that recorded the task's start (the task runs once it committed),
    ``trace`` the run's :class:`~runner.tracing.StepTrace` (given only when the run is traced)."""
    resources = node.resources.ray_options()
    key = tuple(sorted((k, repr(v)) for k, v in resources.items()))
    options = _OPTIONS.get(key)
    if options is None:
        _step_task.options(**resources)  # Ray checks them once: a bad option raises here
        if len(_OPTIONS) > 256:
            _OPTIONS.clear()
        options = _OPTIONS[key] = {**_STEP_FUNCTION._default_options, **resources}
        options.pop("max_calls", None)  # not a per-call option (Ray drops it the same way)
    return NamedStepTask(options, name)


@dataclass(frozen=True)
class NamedStepTask:
    """``_step_task`` with its options and a per-task name. Sent through the remote function's
    ``_remote`` with options checked once per set of resources: ``.options(name=...)`` checks
    every option again on each call, which measured ~135 us more per dispatch (against ~210 us
    for the submit itself) on the 2-core dev machine."""

    options: dict[str, Any]
    name: str

    def remote(self, *args: Any) -> Any:
        return _STEP_FUNCTION._remote(args=list(args), kwargs={}, name=self.name, **self.options)


_STEP_FUNCTION: Any = _step_task  # its private `_remote` and `_default_options` are not in Ray's stubs
_OPTIONS: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}  # a set of resources -> the task's Ray options
