"""A Ray DAG (``@ray.remote`` functions joined with ``.bind()``) as a native :class:`~runner.Workflow`.

Each function node becomes one step, named by its ``task_id`` option or its
function's name (``name_1``, ``name_2``... when names repeat, as Ray Workflows
numbered them). A node bound as an argument of another becomes an upstream
component; the step calls the remote function's own Python function with the
arguments it was bound with (see :mod:`runner.compat.dag_call` for how upstream
values and ObjectRefs are passed). A node used in several places is one step.

Options, read from the node's Ray options:

- ``num_cpus``, ``num_gpus``, ``memory``, ``resources``: the step's Ray resources;
- ``max_retries`` (default 3) and ``retry_exceptions`` (default False), Ray
  Workflows' rule: the step's own exceptions are retried only when
  ``retry_exceptions`` is True (or lists the exception's class), up to
  ``max_retries`` times, at once (no backoff). A step lost to the system (its
  process or node died) always runs again, as every native step does.
- ``name``, ``_labels``, ``enable_task_events``: accepted (Ray task metadata);
- from ``workflow.options(...)`` (carried in ``_labels``): ``task_id``,
  ``catch_exceptions``, ``metadata`` and ``checkpoint`` (passed to the native
  step when it takes a ``checkpoint`` option; accepted and ignored until then);
- anything else is refused with a DefinitionError naming the task and option.

Sleep and event-wait nodes (:mod:`runner.compat.events`) become native sleep
and wait components. A DAG that reads ``InputNode`` gets one inline root step,
``dag_input``, that hands the run's input arguments to the steps reading them. Pure but for reading the DAG's structure: the only Ray
call is ``load``, passed in, which reads the value of an ObjectRef bound as an
argument (the value goes into the definition, as Ray Workflows checkpointed it).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.dag import DAGNode, FunctionNode, InputAttributeNode, InputNode

from runner.compat import events
from runner.compat.dag_call import InputValue, NestedValue, Upstream, call_bound, call_root
from runner.compat.run_input import read_dag_input
from runner.errors import DefinitionError, InvalidArgument
from runner.workflow import NAME, Workflow

OPTIONS_LABEL = "workflow.io/options"  # the _labels key workflow.options(...) travels under
WORKFLOW_OPTIONS = ("task_id", "metadata", "catch_exceptions", "checkpoint")
RESOURCE_OPTIONS = ("num_cpus", "num_gpus", "memory", "resources")
ACCEPTED_RAY_OPTIONS = frozenset({*RESOURCE_OPTIONS, "max_retries", "retry_exceptions", "name", "_labels"}) | {
    "enable_task_events",
    "num_returns",
}
DEFAULT_MAX_RETRIES = 3  # Ray Workflows' default
NATIVE_CHECKPOINT_OPTION = "checkpoint" in inspect.signature(Workflow.step).parameters
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-]")


def encode_options(**options: Any) -> dict[str, Any]:
    """``workflow.options(...)`` as Ray task options: ``{"_labels": {OPTIONS_LABEL: json}}``
    (Ray 2.48+ checks option names, and ``_labels`` is the one that carries data)."""
    unknown = sorted(set(options) - set(WORKFLOW_OPTIONS))
    if unknown:
        raise InvalidArgument(
            f"unknown workflow option(s) {', '.join(unknown)}; workflow.options takes {', '.join(WORKFLOW_OPTIONS)} "
            "(max_retries and retry_exceptions are Ray options: give them to @ray.remote or .options)"
        )
    for flag in ("catch_exceptions", "checkpoint"):
        if options.get(flag) is not None and not isinstance(options[flag], bool):
            raise InvalidArgument(f"{flag} must be True or False, got {options[flag]!r}")
    task_id = options.get("task_id")
    if task_id is not None and not (isinstance(task_id, str) and NAME.match(task_id)):
        raise InvalidArgument(
            f"task_id must be letters, digits, '_', '-' or '.', starting with a letter or '_'; got {task_id!r}"
        )
    try:
        encoded = json.dumps(options, sort_keys=True)
    except (TypeError, ValueError):
        raise InvalidArgument(f"workflow options must be JSON values (metadata too), got {options!r}") from None
    return {"_labels": {OPTIONS_LABEL: encoded}}


def decode_options(ray_options: Mapping[str, Any]) -> dict[str, Any]:
    labels = ray_options.get("_labels") or {}
    encoded = labels.get(OPTIONS_LABEL)
    return dict(json.loads(encoded)) if encoded else {}


@dataclass(frozen=True, kw_only=True)
class ConvertedDag:
    """The native workflow, and per task what Ray Workflows' metadata reported."""

    workflow: Workflow
    task_metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    task_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def to_workflow(dag: Any, *, load: Callable[[Any], Any]) -> ConvertedDag:
    """Convert ``dag`` (its output node); ``load(ref)`` reads an ObjectRef bound as an argument."""
    check_dag(dag)
    return _Converter(load).convert(dag)


def check_dag(dag: Any) -> None:
    """InvalidArgument, with advice, unless ``dag`` is a function node built with ``.bind()``."""
    if isinstance(dag, FunctionNode):
        return
    if isinstance(dag, ray.remote_function.RemoteFunction):
        advice = "bind its arguments first: fn.bind(...) builds the DAG node to run"
    elif isinstance(dag, ray.ObjectRef):
        advice = "that is a running Ray task (.remote()); build the DAG with .bind() instead"
    elif isinstance(dag, DAGNode):
        advice = f"{type(dag).__name__} nodes (actors, a bare InputNode) cannot be run; use @ray.remote functions"
    elif callable(dag):
        advice = "decorate the function with @ray.remote and pass fn.bind(...)"
    else:
        advice = "pass the output node of a DAG built with @ray.remote functions and .bind()"
    raise InvalidArgument(f"expected a Ray DAG node, got {type(dag).__name__}: {advice}")


class _Converter:
    def __init__(self, load: Callable[[Any], Any]) -> None:
        self._load = load
        self._names: dict[int, str] = {}  # id(node) -> step name
        self._used: set[str] = set()
        self._workflow: Workflow | None = None
        self._metadata: dict[str, Mapping[str, Any]] = {}
        self._options: dict[str, Mapping[str, Any]] = {}
        self._input_step: str | None = None  # the step handing out the run's input arguments

    def convert(self, dag: FunctionNode) -> ConvertedDag:
        self._workflow = Workflow(_base_name(dag))
        output = self._visit(dag)
        self._workflow.set_output(output)
        return ConvertedDag(workflow=self._workflow, task_metadata=self._metadata, task_options=self._options)

    # ------------------------------------------------------------------ nodes
    def _visit(self, node: FunctionNode) -> str:
        known = self._names.get(id(node))
        if known is not None:
            return known
        assert self._workflow is not None
        options = dict(node._bound_options)
        wanted = decode_options(options)
        name = self._unique(wanted.get("task_id") or _base_name(node))
        if node._body is events.TIMER_BODY:
            self._workflow.sleep(node._bound_args[0], name=name)
        elif node._body is events.SIGNAL_BODY:
            self._workflow.wait_for(node._bound_args[0], name=name)
        else:
            self._add_step(node, name, options, wanted)
        self._names[id(node)] = name
        return name

    def _add_step(self, node: FunctionNode, name: str, options: dict[str, Any], wanted: dict[str, Any]) -> None:
        assert self._workflow is not None
        after: list[str] = []
        found: set[int] = set()
        args = tuple(self._template(arg, False, name, after, found) for arg in node._bound_args)
        kwargs = tuple((key, self._template(v, False, name, after, found)) for key, v in node._bound_kwargs.items())
        hidden = [child for child in node._get_all_child_nodes() if id(child) not in found]
        if hidden:
            raise DefinitionError(
                name,
                f"a bound {type(hidden[0]).__name__} is inside an object other than a list, tuple or dict; "
                "pass it as an argument itself or inside a list, tuple or dict",
            )
        fn = (
            functools.partial(call_bound, node._body, args, kwargs)
            if after
            else functools.partial(call_root, node._body, args, kwargs)
        )
        self._workflow.step(fn, name=name, after=after, **_step_options(name, options, wanted))
        self._metadata[name] = dict(wanted.get("metadata") or {})
        self._options[name] = {**{k: v for k, v in options.items() if k != "_labels"}, **wanted}

    def _template(self, value: Any, nested: bool, name: str, after: list[str], found: set[int]) -> Any:
        if isinstance(value, FunctionNode):
            found.add(id(value))
            upstream = self._visit(value)
            if upstream not in after:
                after.append(upstream)
            timer = value._body is events.TIMER_BODY
            return Upstream(after.index(upstream), nested, timer)
        if isinstance(value, (InputNode, InputAttributeNode)):
            found.add(id(value))
            if self._input_step is None:
                assert self._workflow is not None
                self._input_step = self._unique("dag_input")
                self._workflow.step(read_dag_input, name=self._input_step, inline=True)
            if self._input_step not in after:
                after.append(self._input_step)
            if isinstance(value, InputNode):
                return InputValue(after.index(self._input_step), nested)
            key = value._key
            if not isinstance(key, (int, str)):
                raise DefinitionError(name, f"read the DAG's input by an int index or a name, got {key!r}")
            by_attribute = getattr(value, "_accessor_method", "__getitem__") == "__getattr__"
            return InputValue(after.index(self._input_step), nested, key, by_attribute)
        if isinstance(value, DAGNode):
            raise DefinitionError(
                name, f"{type(value).__name__} arguments (actors, classes) are not supported; use @ray.remote functions"
            )
        if isinstance(value, ray.ObjectRef):
            loaded = self._load(value)
            return NestedValue(loaded) if nested else loaded
        if type(value) in (list, tuple):
            return type(value)(self._template(item, True, name, after, found) for item in value)
        if type(value) is dict:
            return {key: self._template(item, True, name, after, found) for key, item in value.items()}
        return value

    def _unique(self, base: str) -> str:
        name, count = base, 0
        while name in self._used:
            count += 1
            name = f"{base}_{count}"
        self._used.add(name)
        return name


def _base_name(node: FunctionNode) -> str:
    """A node's task id before numbering: its task_id option, else its function's name."""
    wanted = decode_options(node._bound_options).get("task_id")
    if wanted:
        return str(wanted)
    if node._body is events.TIMER_BODY:
        return "sleep"
    if node._body is events.SIGNAL_BODY:
        return f"wait_{_NOT_NAME.sub('_', str(node._bound_args[0]))}"
    name = _NOT_NAME.sub("_", getattr(node._body, "__name__", "task"))
    return name if re.match(r"[A-Za-z_]", name) else f"task_{name}"


def _step_options(name: str, options: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The native ``Workflow.step`` options for a node's Ray options and workflow options."""
    refused = sorted(set(options) - ACCEPTED_RAY_OPTIONS)
    if refused:
        raise DefinitionError(
            name,
            f"Ray option(s) {', '.join(refused)} are not supported for workflow tasks; drop them "
            f"(supported: {', '.join(sorted(ACCEPTED_RAY_OPTIONS))})",
        )
    if options.get("num_returns") not in (None, 1):
        raise DefinitionError(name, "a workflow task returns one value (num_returns=1); return a tuple instead")
    max_retries = options.get("max_retries", DEFAULT_MAX_RETRIES)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < -1:
        raise DefinitionError(name, f"max_retries must be -1, 0 or a positive whole number, got {max_retries!r}")
    retry_exceptions = options.get("retry_exceptions", False)
    if isinstance(retry_exceptions, list):
        retry_exceptions = tuple(retry_exceptions)
    step: dict[str, Any] = {key: options[key] for key in RESOURCE_OPTIONS if options.get(key) is not None}
    if retry_exceptions is not False:
        if max_retries == -1:
            raise DefinitionError(
                name, "max_retries=-1 (retry for ever) with retry_exceptions is not supported; give a number"
            )
        step.update(retries=max_retries, backoff="none", retry_exceptions=retry_exceptions)
    if wanted.get("catch_exceptions"):
        step["catch_exceptions"] = True
    if wanted.get("checkpoint") is not None and NATIVE_CHECKPOINT_OPTION:
        step["checkpoint"] = wanted["checkpoint"]
    return step
