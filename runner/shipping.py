"""What a definition carries to the workers: the user's own code, pickled by value.

A run's definition is cloudpickled into its record at submit and unpickled
by the Worker actors and step tasks, which may run anywhere in the cluster.
Functions and classes are normally pickled by *reference* (module and name),
so a worker would have to import the module they live in; the workflow's own
modules (a test module, a helper file beside a notebook, a script's package)
often exist only where the driver runs. So every module of the user's code a
definition reaches is registered to be pickled by *value* while it is being
pickled: the bytes then carry the code itself.

The code is found by following each step's callables down to the functions
and classes inside them: a ``functools.partial`` (nested ones too, and
callables among its arguments), a bound method (its function and its
instance's class), a callable instance (its class), a lambda or a closure
(its function, and callables in its closure and defaults). Modules of the
standard library and of installed packages are left to be imported, as the
workers have them too.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import types
from collections.abc import Iterable, Iterator
from typing import Any

import cloudpickle
import ray

from runner import serialization
from runner.continuation import Continuation, SubWorkflow
from runner.workflow import Workflow

# Registration is process-wide and submits may run on several threads at once: count the users
# of each module so that one thread's exit never unregisters a module another is still pickling.
_BY_VALUE_LOCK = threading.Lock()
_BY_VALUE_USERS: dict[str, int] = {}

_CONTAINERS = (list, tuple, set, frozenset)
_LIBRARY_PACKAGES = frozenset({"runner", "adapters"})
_MAX_PARTS = 10_000  # how many objects one definition's callables are followed through, at most


def pickle_definition(workflow: Workflow) -> bytes:
    """The bytes stored with a run: it always recovers with the code it started with."""
    workflow.validate()
    with by_value(workflow):
        return serialization.dumps(workflow)


def pickle_call(call: Continuation) -> bytes:
    """The bytes of a continuation's call, its function and arguments' code carried by value
    (the worker that runs it next may not import the module it came from)."""
    with by_value_of([call.fn, call.args, call.kwargs]):
        return serialization.dumps(call)


def pickle_sub_workflow(sub: SubWorkflow) -> bytes:
    """The bytes of a step's continuation into a workflow: the workflow's code and the input's
    carried by value, as a stored definition's are."""
    with by_value(sub.workflow), by_value_of([sub.input]):
        return serialization.dumps(sub)


def by_value(workflow: Workflow) -> contextlib.AbstractContextManager[None]:
    """Pickle the modules of the workflow's own code by value, so Ray workers need not import them.

    Registered with both cloudpickle (the stored definition) and Ray's copy of it (a submit's
    arguments, such as an input of the workflow's ``input_type`` defined in the same module)."""
    return by_value_of(definition_parts(workflow))


@contextlib.contextmanager
def by_value_of(objects: Iterable[Any]) -> Iterator[None]:
    """Pickle the user's modules that ``objects`` reach by value while in this block (see :func:`by_value`)."""
    modules = user_modules(objects)
    registered = []
    with _BY_VALUE_LOCK:
        for module in modules:
            if not _BY_VALUE_USERS.get(module.__name__):
                if pickled_by_value(module):
                    continue  # registered by the user: leave it as it is
                try:
                    cloudpickle.register_pickle_by_value(module)
                    ray.cloudpickle.register_pickle_by_value(module)
                except ValueError:
                    continue
            _BY_VALUE_USERS[module.__name__] = _BY_VALUE_USERS.get(module.__name__, 0) + 1
            registered.append(module)
    try:
        yield
    finally:
        with _BY_VALUE_LOCK:
            for module in registered:
                _BY_VALUE_USERS[module.__name__] -= 1
                if not _BY_VALUE_USERS[module.__name__]:
                    del _BY_VALUE_USERS[module.__name__]
                    for pickler in (cloudpickle, ray.cloudpickle):
                        with contextlib.suppress(ValueError):
                            pickler.unregister_pickle_by_value(module)


def definition_parts(workflow: Workflow) -> list[Any]:
    """The callables and types a definition holds: each component's function, condition and
    fallback, and the input type."""
    parts: list[Any] = [workflow.input_type]
    for node in workflow.nodes.values():
        parts += [node.fn, node.when, node.policy.fallback]
    return [part for part in parts if part is not None]


def user_modules(objects: Iterable[Any]) -> list[types.ModuleType]:
    """The user's modules (not ``__main__``, the standard library or installed packages) whose
    functions and classes ``objects`` reach, followed as the module's docstring says."""
    modules: dict[str, types.ModuleType] = {}
    for obj in code_objects(objects):
        module = user_module(obj)
        if module is not None:
            modules.setdefault(module.__name__, module)
    return list(modules.values())


def code_objects(objects: Iterable[Any]) -> Iterator[Any]:
    """The functions and classes inside ``objects``: partials, bound methods, callable
    instances, closures and the plain data among their arguments are opened up."""
    stack = list(objects)
    seen: set[int] = set()
    while stack and len(seen) < _MAX_PARTS:
        obj = stack.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            stack += [obj.func, *obj.args, *obj.keywords.values()]
        elif isinstance(obj, types.MethodType):
            stack += [obj.__func__, obj.__self__]  # __self__: an instance, or a class (a classmethod)
        elif isinstance(obj, types.FunctionType):
            yield obj
            stack += _closure_values(obj)
            stack += list(obj.__defaults__ or ()) + list((obj.__kwdefaults__ or {}).values())
        elif isinstance(obj, type):
            yield obj
        elif isinstance(obj, _CONTAINERS):
            stack += list(obj)
        elif isinstance(obj, dict):
            stack += list(obj.values())
        elif not isinstance(obj, (str, bytes, int, float, complex, bool, types.ModuleType)):
            stack.append(type(obj))  # an instance (a callable one, or data among a partial's arguments)


def _closure_values(fn: types.FunctionType) -> list[Any]:
    values = []
    for cell in fn.__closure__ or ():
        with contextlib.suppress(ValueError):  # an empty cell
            values.append(cell.cell_contents)
    return values


def user_module(obj: Any) -> types.ModuleType | None:
    """The module ``obj`` was defined in, if it is the user's own (see :func:`user_modules`)."""
    name = getattr(obj, "__module__", None)
    module = sys.modules.get(name) if isinstance(name, str) else None
    if module is None or name == "__main__" or not is_user_module(module):
        return None
    return module


def pickled_by_value(module: types.ModuleType) -> bool:
    """Whether ``module`` is registered to be pickled by value already."""
    return any(
        module.__name__ in getattr(pickler.cloudpickle, "_PICKLE_BY_VALUE_MODULES", ())
        for pickler in (cloudpickle, ray.cloudpickle)
    )


def is_user_module(module: types.ModuleType) -> bool:
    """A module loaded from a file outside the standard library, the installed packages and
    this library itself (whose classes, SKIPPED say, must stay the workers' own)."""
    path = getattr(module, "__file__", None) or ""
    if not path or module.__name__.partition(".")[0] in _LIBRARY_PACKAGES:
        return False
    prefixes = {sys.prefix, sys.base_prefix, os.path.dirname(os.__file__)}
    return not any(path.startswith(p) for p in prefixes if p) and "site-packages" not in path
