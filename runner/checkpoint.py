"""Checkpoint strategies: how often a worker appends the events it has buffered.

A worker folds every event into the run's state at once and buffers it for
the store; the strategy says when the buffer is appended (a *checkpoint*):

- ``Checkpoint.EVERY_STEP`` (the default): every cycle, so a step's result is
  appended before anything downstream starts. After a crash only the steps
  running at that moment run again.
- ``every_n(n)``: once ``n`` step results are buffered. Downstream steps are
  dispatched at once, without waiting for a commit. After a crash, the steps
  whose results were buffered (at most ``n - 1``) and the steps running then
  run again.
- ``Checkpoint.ON_COMPLETE``: only at the boundaries below. After a crash,
  every step since the last boundary runs again.

Whatever the strategy, the buffer is appended at a *boundary*: before the run
ends (its terminal event), suspends (a signal, approval or timer), pauses or
is cancelled, before the worker waits with nothing in flight (idle), and with
a child run, a continuation level (StepContinued), a continue-as-new, or the
event that resumes a suspended, paused or reopened run.

A step may also say ``checkpoint=False``: its result is never a reason to
append. It is carried in memory to its dependants, which are dispatched at
once, and is appended together with the next checkpoint (a dependant's result
under ``every_step``, the next boundary at the latest); if the worker crashes
before that, the step runs again. Pure: no Ray, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Union

from runner.errors import InvalidArgument
from runner.events import ChildRunStarted, Event, RunContinuedAsNew, RunReopened, RunResumed, StepContinued
from runner.vocabulary import Vocabulary


class Checkpoint(Vocabulary):
    """The strategies that need no number (``every_n(n)`` is :class:`EveryN`)."""

    EVERY_STEP = "every_step"  # a step's result is appended before anything downstream starts
    ON_COMPLETE = "on_complete"  # appended only at boundaries (end, suspend, pause, cancel, idle)


@dataclass(frozen=True)
class EveryN:
    """Append once ``n`` step results are buffered (and at every boundary)."""

    n: int

    def __post_init__(self) -> None:
        n = self.n
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidArgument(f"checkpoint every_n(n) needs a whole number n >= 1, got {n!r}")

    def __str__(self) -> str:
        return f"every_n:{self.n}"


CheckpointStrategy = Union[Checkpoint, EveryN]
DEFAULT = Checkpoint.EVERY_STEP
_EVERY_N_PREFIX = "every_n:"

BOUNDARY_EVENTS: tuple[type[Event], ...] = (
    ChildRunStarted,
    StepContinued,
    RunContinuedAsNew,
    RunResumed,
    RunReopened,
)
"""Events after which the buffer is appended at once: a child run is created only once its
start is committed, a continuation loop must not hold its levels in memory, and a suspended,
paused or reopened run must show as running in the store as soon as a worker drives it."""


def every_n(n: int) -> EveryN:
    """The strategy that appends every ``n`` step results (``n >= 1``; ``every_n(1)`` appends each)."""
    return EveryN(n)


def as_strategy(value: object) -> CheckpointStrategy:
    """``value`` as a strategy: a :class:`Checkpoint`, an :class:`EveryN`, or their stored names
    ("every_step", "on_complete", "every_n:3"). InvalidArgument names the option otherwise."""
    if isinstance(value, (Checkpoint, EveryN)):
        return value
    if isinstance(value, str):
        if value.startswith(_EVERY_N_PREFIX):
            try:
                n = int(value[len(_EVERY_N_PREFIX) :])
            except ValueError:
                pass
            else:
                return EveryN(n)
        else:
            try:
                return Checkpoint(value)
            except ValueError:
                pass
    known = ", ".join(repr(c.value) for c in Checkpoint)
    raise InvalidArgument(
        f"unknown checkpoint strategy {value!r}: use runner.Checkpoint.EVERY_STEP, "
        f"runner.Checkpoint.ON_COMPLETE or runner.every_n(n) (or their names {known}, 'every_n:<n>')"
    )


def stored_name(strategy: CheckpointStrategy | None) -> str | None:
    """How a strategy is written in RunSubmitted (None: the workflow's own)."""
    return None if strategy is None else str(strategy)


class CheckpointBuffer:
    """Counts the step results buffered since the last append and says when to append.

    The worker (and the in-process runtime) calls :meth:`note_result` for each step outcome it
    buffers, :meth:`due` after planning a cycle, and :meth:`appended` once it sent the buffer."""

    def __init__(self, strategy: CheckpointStrategy = DEFAULT) -> None:
        self.strategy = strategy
        self.results = 0  # buffered results of steps that checkpoint
        self.unchecked = 0  # buffered results of steps with checkpoint=False
        self.boundary = False  # a buffered event asks for an append at once

    def note_result(self, *, checkpointed: bool) -> None:
        if checkpointed:
            self.results += 1
        else:
            self.unchecked += 1

    def note_events(self, events: Iterable[Event]) -> None:
        """Look at events about to be buffered: a boundary event makes the next append due."""
        if not self.boundary:
            self.boundary = any(isinstance(event, BOUNDARY_EVENTS) for event in events)

    def due(self, *, stopping: bool = False, idle: bool = False) -> bool:
        """Whether to append the buffer now. ``stopping``: the turn ends (the run ended, suspends,
        pauses or is cancelled); ``idle``: nothing is in flight or about to start, so the worker
        would wait with the buffer held."""
        if stopping or idle or self.boundary:
            return True
        strategy = self.strategy
        if strategy is Checkpoint.EVERY_STEP:  # as every cycle, unless only checkpoint=False results wait
            return self.results > 0 or self.unchecked == 0
        if isinstance(strategy, EveryN):
            return self.results >= strategy.n
        return False  # ON_COMPLETE

    def appended(self) -> None:
        """The buffer was sent: start counting again."""
        self.results = self.unchecked = 0
        self.boundary = False
