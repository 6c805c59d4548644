"""Continue-as-new: a run that ends by starting its successor, a new run of the same workflow.

A step returns ``runner.continue_as_new(input)``: the run ends at once with
status CONTINUED and a ``RunContinuedAsNew`` event naming its successor, a new
run of the same definition whose input is ``input`` (checked against the
workflow's input type like a submit's). The successor's record and first event
link back to it (``parent_run_id``). A loop that must run for ever (poll,
process, repeat) writes each round as a run of its own, so no run's history
grows without bound.

The successor's id is derived from its predecessor's (``r`` -> ``r:c1`` ->
``r:c2`` ...), so a retry or a recovery that continues the same run again finds
the successor already created (``create_run`` is idempotent by id) and never
makes a second one. The worker creates the successor *before* it appends the
event that closes the run: a crash in between re-runs the step, and its
second continue-as-new lands on the run already there (with the input the
first one recorded).
Pure: no Ray, no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runner.events import Event, RunContinuedAsNew, RunSubmitted
from runner.store import NewRun, RunStatus

_GENERATION = re.compile(r"^(?P<root>.+):c(?P<n>[0-9]+)$")
_MAX_RUN_ID = 128


@dataclass(frozen=True)
class ContinueAsNew:
    """Returned by a step: end this run and start its successor with ``input``."""

    input: Any = None


def continue_as_new(input: Any = None) -> ContinueAsNew:
    """Return this from a step to end the run and start its successor, a new run of the same
    workflow with ``input``; ``result()`` of this run gives the last successor's result."""
    return ContinueAsNew(input)


def successor_run_id(run_id: str) -> str:
    """The id of the run that ``run_id`` continues as: ``r`` -> ``r:c1``, ``r:c1`` -> ``r:c2``.
    An id too long to grow keeps its generation on a hash of its root, still deterministic."""
    match = _GENERATION.match(run_id)
    root, generation = (match["root"], int(match["n"])) if match else (run_id, 0)
    candidate = f"{root}:c{generation + 1}"
    if len(candidate) <= _MAX_RUN_ID:
        return candidate
    return f"{hashlib.sha256(root.encode()).hexdigest()[:32]}:c{generation + 1}"


def successor_run(
    predecessor_id: str,
    workflow: str,
    definition: bytes,
    definition_hash: str,
    event: RunContinuedAsNew,
    checkpoint: str | None = None,
    trace_context: dict[str, str] | None = None,
) -> NewRun:
    """The run ``event`` starts: the same definition, the event's input, linked to its predecessor
    (``checkpoint``: the predecessor's submitted checkpoint strategy, which the chain keeps;
    ``trace_context``: its submit's trace context, which the chain keeps too)."""
    submitted = RunSubmitted(
        workflow=workflow,
        input=event.input,
        definition_hash=definition_hash,
        parent_run_id=predecessor_id,
        at=event.at,
        checkpoint=checkpoint,
        trace_context=trace_context,
    )
    return NewRun(
        run_id=event.successor_run_id,
        workflow=workflow,
        definition=definition,
        definition_hash=definition_hash,
        events=(submitted,),
        parent_run_id=predecessor_id,
    )


def continued_in(events: Iterable[Event]) -> list[RunContinuedAsNew]:
    """The RunContinuedAsNew events among ``events`` (at most one in a run's log)."""
    return [event for event in events if isinstance(event, RunContinuedAsNew)]


def successor_of(status: RunStatus, last: Event | None) -> str | None:
    """The run to follow for the result of a run with ``status`` whose last event is ``last``."""
    if status is RunStatus.CONTINUED and isinstance(last, RunContinuedAsNew):
        return last.successor_run_id
    return None
