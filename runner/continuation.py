"""Continuations: a step that hands its work on to another call, whose result becomes its own.

A step returns ``runner.continuation(fn, *args, **kwargs)`` instead of a value:
``fn(*args, **kwargs)`` then runs in the step's place, as the same task (the
same component, the same map item), and what it returns is the step's result.
It may return a continuation again: that is how a loop or a recursion is
written, each call one *level* deeper (the step's own code is level 0).

Durable: the call is pickled (with the user's code, by value) into a
content-addressed fact, and a ``StepContinued`` event records it before it
runs. Recovery dispatches the latest recorded call; nothing before it runs
again. A task keeps only its current call and level, so a loop of any number
of levels holds constant state.

A failure of a call is the step's failure: the step's retry policy retries
the *current* call (its attempts count from 1 at each level), and after the
last failure its fallback (called with the step's inputs) or ``on_failure``
applies as for any step. A fallback may not return a continuation.
Pure: no Ray, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.errors import InvalidArgument
from runner.events import FactRef
from runner.serialization import fact_hash
from runner.workflow import Workflow


@dataclass(frozen=True)
class Continuation:
    """``fn(*args, **kwargs)``, to run in place of the step that returned it."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def call(self) -> Any:
        return self.fn(*self.args, **self.kwargs)


def continuation(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Continuation:
    """Return this from a step: ``fn(*args, **kwargs)`` runs in the step's place and its result
    (or the result of the continuation it returns in turn) becomes the step's result."""
    if isinstance(fn, Workflow):
        raise InvalidArgument(
            f"continuation got workflow {fn.name!r}: a continuation is a single call, "
            "continuation(fn, *args); call the next step's function instead of a whole workflow "
            "(to start this run's workflow again with a new input, return runner.continue_as_new(input))"
        )
    if not callable(fn):
        raise InvalidArgument(
            f"continuation needs a function to call in the step's place, got {type(fn).__name__} {fn!r}; "
            "write `return runner.continuation(fn, *args)`"
        )
    return Continuation(fn, args, dict(kwargs))


@dataclass(frozen=True, slots=True)
class Continued:
    """What a task that returned a continuation hands back: the call, stored as fact ``call``
    (its bytes saved by whoever made this, before the StepContinued event is appended)."""

    call: FactRef


def store_call(value: Continuation, pickle: Callable[[Continuation], bytes]) -> tuple[Continued, bytes]:
    """The call ``value`` as a fact: the marker a task returns and the bytes to save under its hash."""
    blob = pickle(value)
    return Continued(call=FactRef(hash=fact_hash(blob), size=len(blob))), blob


def run_call(call: FactRef, load: Callable[[FactRef], Any] | None) -> Any:
    """Run the stored call ``call`` (``load`` gives the Continuation it names)."""
    if load is None:
        raise RuntimeError("a continuation's call is stored as a fact: run it with a fact loader")
    value = load(call)
    if not isinstance(value, Continuation):
        raise RuntimeError(f"fact {call.hash[:12]} holds {type(value).__name__}, not a continuation")
    return value.call()
