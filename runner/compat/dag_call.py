"""How a Ray DAG node's bound arguments are rebuilt when its step runs.

A converted DAG node becomes a step whose function is
``functools.partial(call_bound, fn, args, kwargs)``: ``args`` and ``kwargs``
are the node's bound arguments with every upstream node replaced by an
:class:`Upstream` placeholder (its position among the step's upstream values)
and every ObjectRef bound inside a container replaced by :class:`NestedValue`
(its value, read when the DAG was converted). When the step runs, the
placeholders are filled in, following Ray's rule for task arguments: a value
at the top level of the arguments arrives as the value; one inside a list,
tuple or dict arrives as an ObjectRef (``ray.get`` it), as it did under Ray
Workflows, where it had been computed and recorded before the step started.

Bound arguments are kept as tuples (keyword arguments as ``(name, value)``
pairs) so that the definition's hash covers plain constants too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray


@dataclass(frozen=True)
class Upstream:
    """The value of the step's upstream number ``position``; ``nested``: inside a container;
    ``timer``: the upstream is a sleep, whose value is None (as Ray Workflows' timers gave)."""

    position: int
    nested: bool
    timer: bool = False


@dataclass(frozen=True)
class InputValue:
    """The DAG's input (``InputNode``; ``key``: ``inp[key]`` or ``inp.key``), read from the step's
    upstream number ``position`` (the step handing out the run's ``(args, kwargs)``)."""

    position: int
    nested: bool
    key: int | str | None = None
    by_attribute: bool = False

    def read(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """As a Ray DAG's ``execute(*args, **kwargs)`` reads its input."""
        single = len(args) == 1 and not kwargs
        if self.key is None:
            return args[0] if single else (args, kwargs)
        if single:
            value = args[0]
            return getattr(value, self.key) if self.by_attribute and isinstance(self.key, str) else value[self.key]
        return args[self.key] if isinstance(self.key, int) else kwargs[self.key]


@dataclass(frozen=True)
class NestedValue:
    """An ObjectRef bound inside a container: its value, handed to the step as a new ObjectRef."""

    value: Any


Arguments = tuple[Any, ...]
KeywordArguments = tuple[tuple[str, Any], ...]


def call_root(fn: Callable[..., Any], args: Arguments, kwargs: KeywordArguments) -> Any:
    """A DAG node with no upstream nodes (the step takes no run input)."""
    return call_bound(fn, args, kwargs)


def call_bound(fn: Callable[..., Any], args: Arguments, kwargs: KeywordArguments, *values: Any) -> Any:
    """``fn`` called with its bound arguments, placeholders filled from the upstream ``values``."""
    filled_args = [fill(arg, values) for arg in args]
    filled_kwargs = {name: fill(value, values) for name, value in kwargs}
    return fn(*filled_args, **filled_kwargs)


def fill(template: Any, values: tuple[Any, ...]) -> Any:
    """``template`` with its placeholders replaced (lists, tuples and dicts opened at any depth)."""
    if isinstance(template, Upstream):
        value = None if template.timer else values[template.position]
        return ray.put(value) if template.nested else value
    if isinstance(template, InputValue):
        value = template.read(*values[template.position])
        return ray.put(value) if template.nested else value
    if isinstance(template, NestedValue):
        return ray.put(template.value)
    if type(template) is list:
        return [fill(item, values) for item in template]
    if type(template) is tuple:
        return tuple(fill(item, values) for item in template)
    if type(template) is dict:
        return {key: fill(item, values) for key, item in template.items()}
    return template
