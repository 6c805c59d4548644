"""Ray metrics (``ray.util.metrics``): what the runtime counts, seen at Ray's metrics endpoint.

Each process records its own part, where the fact is known first:

- Store actor: ``runner_runs_submitted_total{workflow}`` (new runs stored),
  ``runner_runs_ended_total{workflow,status}`` (completed, failed, cancelled,
  continued: an append moved the run there), ``runner_commit_seconds`` and
  ``runner_commit_events`` / ``runner_commit_calls`` (each group commit's
  latency and batch size).
- Worker actors: ``runner_step_seconds{workflow,step}`` (an attempt's start to
  its result or failure) and ``runner_step_attempts{workflow,step}`` (the
  attempt that produced a step's or map item's result).
- Runner actor: ``runner_pending_runs`` and ``runner_workers`` (gauges, set as
  it schedules).

The metric objects are made on first use in the recording process (Ray's
metrics are per process). Recording never raises: a metrics failure is
logged once and ignored. ``runner ui`` also serves ``/metrics`` from the store
for setups without Ray's endpoint (runner/ui/store_metrics.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from runner.events import FactProduced, StepFailed, StoredEvent
from runner.state import WorkflowState

log = logging.getLogger("runner.metrics")

SECONDS_BOUNDARIES: list[float] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0]
SIZE_BOUNDARIES: list[float] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
ATTEMPT_BOUNDARIES: list[float] = [1, 2, 3, 5, 10]


Factory = Callable[[str, str, str, tuple[str, ...], list[float] | None], Any]  # (kind, name, help, tags, bounds)


def ray_factory(kind: str, name: str, description: str, tags: tuple[str, ...], bounds: list[float] | None) -> Any:
    from ray.util import metrics

    if kind == "counter":
        return metrics.Counter(name, description=description, tag_keys=tags)
    if kind == "gauge":
        return metrics.Gauge(name, description=description, tag_keys=tags)
    return metrics.Histogram(name, description=description, boundaries=bounds or [], tag_keys=tags)


_DEFINITIONS: dict[str, tuple[str, str, tuple[str, ...], list[float] | None]] = {
    "runner_runs_submitted_total": ("counter", "Runs stored by submit", ("workflow",), None),
    "runner_runs_ended_total": ("counter", "Runs that ended, by final status", ("workflow", "status"), None),
    "runner_commit_seconds": ("histogram", "Group commit latency (s)", (), SECONDS_BOUNDARIES),
    "runner_commit_events": ("histogram", "Events per group commit", (), SIZE_BOUNDARIES),
    "runner_commit_calls": ("histogram", "Append calls per group commit", (), SIZE_BOUNDARIES),
    "runner_step_seconds": ("histogram", "Step attempt duration (s)", ("workflow", "step"), SECONDS_BOUNDARIES),
    "runner_step_attempts": ("histogram", "Attempts a step took to succeed", ("workflow", "step"), ATTEMPT_BOUNDARIES),
    "runner_pending_runs": ("gauge", "Runs waiting for a worker", (), None),
    "runner_workers": ("gauge", "Worker actors alive", (), None),
}


class RunnerMetrics:
    """The process's metric objects, made on first use; every call swallows its own errors."""

    def __init__(self, factory: Factory = ray_factory) -> None:
        self._factory = factory
        self._made: dict[str, Any] = {}
        self._broken = False

    def _metric(self, name: str) -> Any:
        metric = self._made.get(name)
        if metric is None:
            kind, description, tags, bounds = _DEFINITIONS[name]
            metric = self._made[name] = self._factory(kind, name, description, tags, bounds)
        return metric

    def _record(self, name: str, method: str, value: float, tags: dict[str, str] | None = None) -> None:
        if self._broken:
            return
        try:
            getattr(self._metric(name), method)(value, tags=tags or None)
        except Exception:
            self._broken = True  # e.g. no Ray metrics agent in this process: say so once, then stay quiet
            log.warning("recording metric %s failed; metrics are off in this process", name, exc_info=True)

    # ----------------------------------------------------------- Store actor
    def submitted(self, workflows: Iterable[str]) -> None:
        for workflow in workflows:
            self._record("runner_runs_submitted_total", "inc", 1, {"workflow": workflow})

    def ended(self, workflow: str, status: str) -> None:
        self._record("runner_runs_ended_total", "inc", 1, {"workflow": workflow, "status": status})

    def commit(self, seconds: float, events: int, calls: int) -> None:
        self._record("runner_commit_seconds", "observe", seconds)
        self._record("runner_commit_events", "observe", events)
        self._record("runner_commit_calls", "observe", calls)

    # --------------------------------------------------------------- Worker
    def steps(self, state: WorkflowState, committed: Iterable[StoredEvent]) -> None:
        """Durations and attempts of the step attempts ``committed`` ended (``state`` has folded them)."""
        workflow = state.workflow.name
        for stored in committed:
            event = stored.event
            if not isinstance(event, (FactProduced, StepFailed)):
                continue
            task = state.task(event.node, event.item)
            tags = {"workflow": workflow, "step": event.node}
            if task is not None and task.started_at is not None:
                self._record("runner_step_seconds", "observe", max(0.0, event.at - task.started_at), tags)
            if isinstance(event, FactProduced):
                self._record("runner_step_attempts", "observe", event.attempt, tags)

    # --------------------------------------------------------------- Runner
    def pool(self, workers: int, pending: int) -> None:
        self._record("runner_workers", "set", workers)
        self._record("runner_pending_runs", "set", pending)


METRICS = RunnerMetrics()  # this process's; actors record through it
