"""The Runner's settings and the two reports it gives back: stats and the recovery report."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.errors import InvalidArgument, QueueConfigError
from runner.queues import Queue, check_queues
from runner.worker import WorkerConfig


@dataclass(frozen=True, kw_only=True)
class RunnerConfig:
    """Supervision settings. ``max_workers`` (default: the CPU count, at least 2) caps the
    worker actors alive at once; ``runs_per_worker`` caps the runs one worker drives at once
    (its steps run as Ray tasks, so a worker only plans and records: many runs share it);
    ``restart_backoff`` doubles per restart inside the window."""

    max_workers: int = field(default_factory=lambda: max(2, os.cpu_count() or 2))
    runs_per_worker: int = 32
    restart_limit: int = 3
    restart_window: float = 60.0
    restart_backoff: float = 0.2
    restart_backoff_max: float = 10.0
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    # named queues (runner.queues): their limits; a submit to a queue not declared here gets
    # no limits, or UnknownQueue when declared_queues_only
    queues: tuple[Queue, ...] = ()
    declared_queues_only: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "queues", check_queues(self.queues))
        if not isinstance(self.declared_queues_only, bool):
            raise QueueConfigError("declared_queues_only", f"must be True or False, got {self.declared_queues_only!r}")
        if isinstance(self.max_workers, bool) or not isinstance(self.max_workers, int) or self.max_workers < 1:
            raise InvalidArgument(f"max_workers must be a whole number >= 1, got {self.max_workers!r}")
        if (
            isinstance(self.runs_per_worker, bool)
            or not isinstance(self.runs_per_worker, int)
            or self.runs_per_worker < 1
        ):
            raise InvalidArgument(f"runs_per_worker must be a whole number >= 1, got {self.runs_per_worker!r}")
        if not isinstance(self.restart_limit, int) or self.restart_limit < 0:
            raise InvalidArgument(f"restart_limit must be a whole number >= 0, got {self.restart_limit!r}")
        for name in ("restart_window", "restart_backoff", "restart_backoff_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidArgument(f"{name} must be a number of seconds >= 0, got {value!r}")


def config_differences(
    running: RunnerConfig, asked: RunnerConfig, names: Iterable[str] | None = None
) -> dict[str, tuple[Any, Any]]:
    """``{field: (running value, asked value)}`` for the fields (all, or ``names``) that differ;
    the worker's settings are compared one by one, as ``worker.lease_ttl`` and so on."""
    differences: dict[str, tuple[Any, Any]] = {}
    for name in names if names is not None else [f.name for f in dataclasses.fields(RunnerConfig)]:
        mine, theirs = getattr(running, name), getattr(asked, name)
        if dataclasses.is_dataclass(mine) and dataclasses.is_dataclass(theirs):
            for inner in dataclasses.fields(mine):
                a, b = getattr(mine, inner.name), getattr(theirs, inner.name)
                if a != b:
                    differences[f"{name}.{inner.name}"] = (a, b)
        elif mine != theirs:
            differences[name] = (mine, theirs)
    return differences


@dataclass(frozen=True, kw_only=True)
class RecoveryReport:
    """What the Runner found in the store when it started, and what it did about it."""

    resumed: tuple[str, ...] = ()
    timers: tuple[str, ...] = ()
    woken: tuple[str, ...] = ()
    redispatched: dict[str, int] = field(default_factory=dict)
    leases_taken_over: tuple[str, ...] = ()
    not_resumed: dict[str, str] = field(default_factory=dict)
    # runs the Runner had to pause (the store could not write) but could not even record the
    # pause of: still stored as running; the pause is tried again. Run id -> why.
    blocked: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunnerStats:
    live_workers: int
    peak_workers: int
    busy_workers: int
    pending: int
    restarts: int  # worker turns lost (the worker died or raised), each one restarted or given up on
    workers_started: int
    start_order: tuple[str, ...]
    store_outages: int = 0  # turns ended by a store that could not write (not worker losses)
