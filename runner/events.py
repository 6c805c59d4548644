"""Events: the only things ever persisted about a run.

Every change to a run is one of these frozen dataclasses, appended to the
run's log. The store gives each a gapless per-run sequence number (its
cursor) and hands it back as a :class:`StoredEvent`. Events are never
changed in place; a new kind of change gets a new event class.
Pure: no Ray, no I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Union


def _now() -> float:
    return time.time()


@dataclass(frozen=True, kw_only=True)
class FactRef:
    """A value stored once in the store's facts table, by content hash (sha256)."""

    hash: str
    size: int
    length: int | None = None  # len() of a stored list or tuple, so a map can fan out without loading it


@dataclass(frozen=True, kw_only=True)
class ErrorInfo:
    """A failure as recorded: type name, message, traceback and, when it pickles, the exception."""

    type: str
    message: str
    traceback: str = ""
    non_retryable: bool = False
    pickled: bytes | None = None

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class RunSubmitted:
    """A run's first event. ``deadline_at``: the wall-clock time (epoch seconds) past which the run
    fails with RunDeadlineExceeded (None: no deadline). ``policies``: for each step whose policy a
    submit-time policy set, the name, pattern or "default" that set it (the stored definition
    carries the policies themselves; see runner.policy_overrides)."""

    workflow: str
    input: Any
    definition_hash: str
    parent_run_id: str | None = None
    at: float = field(default_factory=_now)
    deadline_at: float | None = None
    policies: dict[str, str] | None = None
    checkpoint: str | None = None  # the submit's checkpoint strategy (runner.checkpoint); None: the workflow's
    trace_context: dict[str, str] | None = None  # the submit's trace context, W3C headers (runner.tracing)


@dataclass(frozen=True, kw_only=True)
class StepStarted:
    node: str
    attempt: int
    lease: int
    item: int | None = None
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class FactProduced:
    """A step's result: the value itself or a :class:`FactRef` to it."""

    node: str
    value: Any
    attempt: int = 1
    item: int | None = None
    fallback: bool = False
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class FactReused:
    """A result taken over from run ``source_run_id`` (a fork): the component is resolved without running."""

    node: str
    value: Any
    source_run_id: str
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class MapExpanded:
    """A map found its input list: ``count`` items will each run as a task."""

    node: str
    count: int
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class StepFailed:
    """An attempt failed; ``retry_at`` is when the next attempt may start, None if none will."""

    node: str
    attempt: int
    error: ErrorInfo
    retry_at: float | None = None
    item: int | None = None
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class StepLost:
    """An attempt lost to the system, not failed by the step: the task's node or worker process
    died, or it was killed for memory. The task runs again with the same attempt number, without
    spending the step's retries (``fallback``: it was the step's fallback that was lost)."""

    node: str
    attempt: int
    error: ErrorInfo
    item: int | None = None
    fallback: bool = False
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class StepContinued:
    """Attempt ``attempt`` of a task returned a continuation: the call stored as fact ``call`` runs
    in the task's place next, at ``level`` (1: the step's own continuation, 2: that call's, ...),
    and its result will be the task's (see :mod:`runner.continuation`)."""

    node: str
    attempt: int
    call: FactRef
    level: int
    item: int | None = None
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class ChildRunStarted:
    """Child-run component ``node`` started its child run ``child_run_id`` (an id derived from the
    parent's id and the component, so a retry or a recovery finds the same child)."""

    node: str
    child_run_id: str
    at: float = field(default_factory=_now)
    sub_workflow: FactRef | None = None  # a step continued into a workflow: it and its input, as a fact


@dataclass(frozen=True, kw_only=True)
class ChildRunEnded:
    """The child run of component ``node`` ended with ``status`` ("completed", "failed" or
    "cancelled"; "refused": its workflow refused the input, so it was never created):
    ``result`` is its result when it completed, ``error`` why it did not otherwise."""

    node: str
    child_run_id: str
    status: str
    result: Any = None
    error: ErrorInfo | None = None
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class StepMetadataAdded:
    """Attempt ``attempt`` of task ``node`` (item ``item``) added ``values`` to the run's metadata
    through ``runner.context().set_metadata``; recorded just before the attempt's outcome."""

    node: str
    attempt: int
    values: dict[str, Any]
    item: int | None = None
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class StepSkipped:
    node: str
    reason: str
    item: int | None = None
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class SignalReceived:
    """A signal taken from the run's inbox (``signal_id`` is the inbox id)."""

    signal_id: int
    name: str
    payload: Any
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class ApprovalDecided:
    """The wait ``node`` took the decision on approval ``approval`` from the inbox (signal
    ``signal_id``): approved or rejected, by whom, when (``decided_at``) and why."""

    node: str
    approval: str
    signal_id: int
    approved: bool
    by: str
    comment: str = ""
    decided_at: float = 0.0
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class TimerScheduled:
    node: str
    due_at: float
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class TimerFired:
    node: str
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunSuspended:
    """The run holds no worker until a signal arrives or ``wake_at`` (a timer or retry) comes."""

    reason: str
    wake_at: float | None = None
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunResumed:
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunReopened:
    """A failed or cancelled run goes on in place, under the same run id (``client.resume``):
    ``from_status`` is the status it ended with ("failed" or "cancelled"); every recorded
    result is kept, and each step that had failed for good gets a fresh retry budget."""

    from_status: str
    reason: str = ""
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunPaused:
    """No new step starts until the run is resumed. ``reason``: why, when the Runner paused it
    (the store could not write); empty for a pause a user asked for (and in logs written before
    the field existed)."""

    reason: str = ""
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunCancelled:
    reason: str = ""
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunCompleted:
    result: Any
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunContinuedAsNew:
    """Task ``node`` (item ``item``) returned ``runner.continue_as_new(input)``: the run ends here and
    run ``successor_run_id``, of the same workflow, starts with ``input`` (see :mod:`runner.continue_as_new`)."""

    node: str
    successor_run_id: str
    input: Any
    item: int | None = None
    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunFailed:
    error: ErrorInfo
    node: str | None = None
    at: float = field(default_factory=_now)


Event = Union[
    RunSubmitted,
    StepStarted,
    FactProduced,
    FactReused,
    MapExpanded,
    StepFailed,
    StepLost,
    StepSkipped,
    SignalReceived,
    ApprovalDecided,
    TimerScheduled,
    TimerFired,
    RunSuspended,
    RunResumed,
    RunPaused,
    RunCancelled,
    RunCompleted,
    RunFailed,
    StepContinued,
    RunReopened,
    RunContinuedAsNew,
    ChildRunStarted,
    ChildRunEnded,
    StepMetadataAdded,
]

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        RunSubmitted,
        StepStarted,
        FactProduced,
        FactReused,
        MapExpanded,
        StepFailed,
        StepLost,
        StepSkipped,
        SignalReceived,
        ApprovalDecided,
        TimerScheduled,
        TimerFired,
        RunSuspended,
        RunResumed,
        RunPaused,
        RunCancelled,
        RunCompleted,
        RunFailed,
        StepContinued,
        RunReopened,
        RunContinuedAsNew,
        ChildRunStarted,
        ChildRunEnded,
        StepMetadataAdded,
    )
}


def kind_of(event: Event) -> str:
    """The event's kind as stored (its class name)."""
    return type(event).__name__


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """An event as the store returns it: with its run and gapless sequence number."""

    run_id: str
    seq: int
    event: Event


def number(run_id: str, events: list[Event], first: int = 1) -> list[StoredEvent]:
    """Give events consecutive sequence numbers, as a store would (for tests and tools)."""
    return [StoredEvent(run_id=run_id, seq=first + i, event=e) for i, e in enumerate(events)]


class _Skipped:
    """The value a skipped component passes downstream (``runner.SKIPPED``)."""

    _instance: _Skipped | None = None

    def __new__(cls) -> _Skipped:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SKIPPED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "SKIPPED"


SKIPPED = _Skipped()
