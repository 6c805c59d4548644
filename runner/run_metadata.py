"""What ``RunHandle.metadata()`` answers: a run's metadata, status and times, and each step's.

Read from the run's record (the metadata given at submit, the status) and its
log (what steps added through ``runner.context().set_metadata``, the run's
start and end) with the step view (:mod:`runner.step_view`) for each step's
status, attempts and times. Plain frozen dataclasses of plain values, so that
they map one to one onto other tools' shapes (Ray Workflows' ``get_metadata``:
``metadata`` is its ``user_metadata``, ``started_at``/``finished_at`` its
``stats.start_time``/``end_time``). Times are unix seconds. Pure: no Ray, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runner.events import (
    RunCancelled,
    RunCompleted,
    RunContinuedAsNew,
    RunFailed,
    RunReopened,
    StepMetadataAdded,
    StepStarted,
    StoredEvent,
)
from runner.metadata import Metadata
from runner.step_view import StepInfo, StepStatus
from runner.store import RunRecord, RunStatus

_ENDS = (RunCompleted, RunFailed, RunCancelled, RunContinuedAsNew)


@dataclass(frozen=True, kw_only=True)
class StepMetadata:
    """One component: its status, attempts (a map's add up its items'), times, and the metadata its
    attempts added (later values for a key replace earlier ones)."""

    name: str
    kind: str
    status: StepStatus
    attempts: int
    started_at: float | None
    finished_at: float | None
    metadata: Metadata


@dataclass(frozen=True, kw_only=True)
class RunMetadata:
    """A run's metadata and times.

    ``metadata``: what was given at submit (``submit_metadata``), updated with what steps added,
    in the order the log recorded it. ``created_at``: when it was submitted; ``started_at``: when
    its first step started (None before); ``finished_at``: when it ended (None while it has not).
    ``steps``: every component of its workflow, by name, in definition order."""

    run_id: str
    workflow: str
    status: RunStatus
    metadata: Metadata
    submit_metadata: Metadata
    created_at: float
    started_at: float | None
    finished_at: float | None
    steps: dict[str, StepMetadata]


def run_metadata(record: RunRecord, events: Sequence[StoredEvent], steps: Sequence[StepInfo]) -> RunMetadata:
    """The :class:`RunMetadata` of the run whose record is ``record``, log ``events`` and step view ``steps``."""
    merged: Metadata = dict(record.metadata)
    by_step: dict[str, Metadata] = {}
    started_at: float | None = None
    finished_at: float | None = None
    for stored in events:
        event = stored.event
        if isinstance(event, StepMetadataAdded):
            merged.update(event.values)
            by_step.setdefault(event.node, {}).update(event.values)
        elif isinstance(event, StepStarted) and started_at is None:
            started_at = event.at
        elif isinstance(event, _ENDS):
            finished_at = event.at
        elif isinstance(event, RunReopened):  # resumed after it ended: it ends again later
            finished_at = None
    return RunMetadata(
        run_id=record.run_id,
        workflow=record.workflow,
        status=record.status,
        metadata=merged,
        submit_metadata=dict(record.metadata),
        created_at=record.created_at,
        started_at=started_at,
        finished_at=finished_at if record.status.is_terminal else None,
        steps={
            info.name: StepMetadata(
                name=info.name,
                kind=info.kind,
                status=info.status,
                attempts=info.attempts,
                started_at=info.started_at,
                finished_at=info.finished_at,
                metadata=by_step.get(info.name, {}),
            )
            for info in steps
        },
    )
