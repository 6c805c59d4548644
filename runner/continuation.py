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

A step may also continue into a whole workflow: ``runner.continuation(other,
input)`` runs ``other`` with ``input`` in the step's place, as a child run
(:mod:`runner.child_runs`: its id is fixed by the parent's id and the step's
name, the parent suspends until it ends, cancelling the parent cancels it),
and the child's result becomes the step's result. The sub-workflow and its
input are pickled into a fact and recorded by ``ChildRunStarted(...,
sub_workflow=<fact>)`` in the parent's log, so recovery creates the same
child (never a second one) and never runs the step again. A step of the
sub-workflow may continue into a workflow in turn (recursion): each level is
a run of its own, with its own short history. A child that fails or is
cancelled fails the step, without retries (resume the child, then the
parent); ``on_failure="skip"`` skips it. A map item or a fallback may not
continue into a workflow.
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


@dataclass(frozen=True)
class SubWorkflow:
    """``workflow`` run with ``input`` in place of the step that returned it, as a child run."""

    workflow: Workflow
    input: Any = None


def continuation(fn: Callable[..., Any] | Workflow, *args: Any, **kwargs: Any) -> Continuation | SubWorkflow:
    """Return this from a step: ``fn(*args, **kwargs)`` runs in the step's place and its result
    (or the result of the continuation it returns in turn) becomes the step's result.
    ``continuation(workflow, input)``: the sub-workflow runs as a child run in the step's place."""
    if isinstance(fn, Workflow):
        if kwargs or len(args) > 1:
            raise InvalidArgument(
                f"continuation of workflow {fn.name!r} takes one input, continuation(workflow, input); "
                f"got {len(args)} positional and {len(kwargs)} keyword argument(s) (pass a dict or a "
                "dataclass for several values; to start this run's workflow again as a new run in the "
                "same chain, return runner.continue_as_new(input))"
            )
        fn.validate()
        return SubWorkflow(fn, args[0] if args else None)
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


@dataclass(frozen=True, slots=True)
class ContinuedInChild:
    """What a task that continued into a sub-workflow hands back: the SubWorkflow, stored as fact
    ``sub_workflow`` (saved before the ChildRunStarted that names it is appended)."""

    sub_workflow: FactRef


def store_sub_workflow(value: SubWorkflow, pickle: Callable[[SubWorkflow], bytes]) -> tuple[ContinuedInChild, bytes]:
    """The sub-workflow ``value`` as a fact: the marker a task returns and the bytes to save."""
    blob = pickle(value)
    return ContinuedInChild(sub_workflow=FactRef(hash=fact_hash(blob), size=len(blob))), blob


def load_sub_workflow(ref: FactRef, load: Callable[[FactRef], Any]) -> SubWorkflow:
    """The SubWorkflow stored as fact ``ref``."""
    value = load(ref)
    if not isinstance(value, SubWorkflow):
        raise RuntimeError(f"fact {ref.hash[:12]} holds {type(value).__name__}, not a sub-workflow")
    return value


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
