"""Hooks: user functions called as a run moves (run start and end, step start, end, failure, retry).

A hook takes one :class:`HookEvent`. Hooks are notifications, read off the
run's history once its events are committed; they never change a run: a hook
that raises is logged (logger ``runner.hooks``) and the run goes on.

Two places register them, and each runs its hooks in its own process:

- **per workflow** (``wf.add_hooks(Hooks(...))``): carried in the definition,
  run in the **Worker actor** that drives the run, right after the append that
  stored the events (on the worker's event loop: keep them quick, hand slow
  work to a thread or a queue). They see the events that worker appends;
  a status change made elsewhere (a cancel the Runner records for a run no
  worker holds) reaches only client hooks.
- **per client** (``client.add_hooks(Hooks(...))``): run in the **driver**, on a
  thread of the client that follows every run of the store created after the
  call, reading the new events of runs that moved (runner/hook_follower.py).

Which event fires which hook: a run's first event after RunSubmitted (it
started) -> ``on_run_start``; StepStarted -> ``on_step_start``; FactProduced
(the step or map item succeeded) -> ``on_step_end``; StepFailed with a retry
due -> ``on_step_retried``, without -> ``on_step_failed``; RunCompleted,
RunFailed, RunCancelled, RunContinuedAsNew -> ``on_run_end``. Delivery is at
least once per commit seen: a worker that crashes after a commit and before
its hooks ran does not run them; one whose run is recovered does not run them
again for events already stored. Pure but for logging: no Ray, no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace

from runner.events import (
    ErrorInfo,
    FactProduced,
    RunCancelled,
    RunCompleted,
    RunContinuedAsNew,
    RunFailed,
    StepFailed,
    StepStarted,
    StoredEvent,
)
from runner.vocabulary import Vocabulary

log = logging.getLogger("runner.hooks")


class HookKind(Vocabulary):
    RUN_START = "on_run_start"
    RUN_END = "on_run_end"
    STEP_START = "on_step_start"
    STEP_END = "on_step_end"
    STEP_FAILED = "on_step_failed"
    STEP_RETRIED = "on_step_retried"


@dataclass(frozen=True, kw_only=True)
class HookEvent:
    """What a hook is told: which run, which step (for step hooks) and what happened."""

    kind: HookKind
    run_id: str
    workflow: str
    seq: int  # the event's cursor in the run's history
    at: float  # unix time the event was recorded
    node: str | None = None
    item: int | None = None  # a map item's index
    attempt: int | None = None
    error: ErrorInfo | None = None  # on_step_failed, on_step_retried, on_run_end of a failed run
    retry_at: float | None = None  # on_step_retried
    status: str | None = None  # on_run_end: completed, failed, cancelled or continued


Hook = Callable[[HookEvent], object]


@dataclass(frozen=True, kw_only=True)
class Hooks:
    """The functions to call; each is optional. ``merged`` adds another set (both are called)."""

    on_run_start: Hook | tuple[Hook, ...] | None = None
    on_run_end: Hook | tuple[Hook, ...] | None = None
    on_step_start: Hook | tuple[Hook, ...] | None = None
    on_step_end: Hook | tuple[Hook, ...] | None = None
    on_step_failed: Hook | tuple[Hook, ...] | None = None
    on_step_retried: Hook | tuple[Hook, ...] | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            items = value if isinstance(value, tuple) else (() if value is None else (value,))
            for item in items:
                if not callable(item):
                    raise TypeError(f"hook {f.name} must be a function taking a HookEvent, got {item!r}")

    def of(self, kind: HookKind) -> tuple[Hook, ...]:
        value = getattr(self, kind.value)
        return value if isinstance(value, tuple) else (() if value is None else (value,))

    def merged(self, other: Hooks) -> Hooks:
        return replace(self, **{kind.value: self.of(kind) + other.of(kind) or None for kind in HookKind})

    def __bool__(self) -> bool:
        return any(self.of(kind) for kind in HookKind)


NO_HOOKS = Hooks()
_ENDS = {RunCompleted: "completed", RunFailed: "failed", RunCancelled: "cancelled", RunContinuedAsNew: "continued"}


def hook_events(workflow: str, stored: Iterable[StoredEvent]) -> list[HookEvent]:
    """The hook calls ``stored`` (committed events of one run, in order) stand for."""
    out: list[HookEvent] = []
    for s in stored:
        e = s.event
        base = HookEvent(kind=HookKind.RUN_START, run_id=s.run_id, workflow=workflow, seq=s.seq, at=e.at)
        if s.seq == 2:
            out.append(base)
        if isinstance(e, StepStarted):
            out.append(replace(base, kind=HookKind.STEP_START, node=e.node, item=e.item, attempt=e.attempt))
        elif isinstance(e, FactProduced):
            out.append(replace(base, kind=HookKind.STEP_END, node=e.node, item=e.item, attempt=e.attempt))
        elif isinstance(e, StepFailed):
            kind = HookKind.STEP_RETRIED if e.retry_at is not None else HookKind.STEP_FAILED
            out.append(
                replace(
                    base, kind=kind, node=e.node, item=e.item, attempt=e.attempt, error=e.error, retry_at=e.retry_at
                )
            )
        elif isinstance(e, (RunCompleted, RunFailed, RunCancelled, RunContinuedAsNew)):
            error = e.error if isinstance(e, RunFailed) else None
            node = e.node if isinstance(e, (RunFailed, RunContinuedAsNew)) else None
            out.append(replace(base, kind=HookKind.RUN_END, status=_ENDS[type(e)], error=error, node=node))
    return out


def fire(hooks: Hooks, workflow: str, stored: Iterable[StoredEvent]) -> int:
    """Call ``hooks`` for ``stored``; a hook that raises is logged and skipped. Returns the calls made."""
    if not hooks:
        return 0
    calls = 0
    for event in hook_events(workflow, stored):
        for hook in hooks.of(event.kind):
            calls += 1
            try:
                hook(event)
            except Exception:
                log.exception(
                    "hook %s %r raised on run %s (seq %d); the run goes on",
                    event.kind.value,
                    hook,
                    event.run_id,
                    event.seq,
                )
    return calls


def hooks_of(definition: object) -> Hooks:
    """A workflow's hooks (definitions stored before hooks existed have none)."""
    hooks = getattr(definition, "_hooks", None)
    return hooks if isinstance(hooks, Hooks) else NO_HOOKS
