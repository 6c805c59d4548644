"""The step read model: each component's status, attempts and timings, as the log tells them.

What ``runner show``, ``RunHandle.steps()`` and the CLI's progress display
read. Computed on demand from the fold's data; nothing here is kept up to
date per event. Pure: no Ray, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.events import SKIPPED, ErrorInfo
from runner.run_data import MapSummary, RunData, TaskStatus
from runner.vocabulary import Vocabulary
from runner.workflow import Node, NodeKind, Workflow


class StepStatus(Vocabulary):
    """Where a component stands, as shown to users."""

    PENDING = "pending"  # upstream components not done
    READY = "ready"  # may start
    RUNNING = "running"  # an attempt (or its fallback) is running
    RETRYING = "retrying"  # failed, another attempt is due later
    WAITING = "waiting"  # for a signal or a timer
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class StepInfo:
    """One component as the log tells it: status, attempts and timings (unix seconds).

    ``status``: pending (upstreams not done), ready, running, retrying,
    waiting (for a signal or a timer), done, skipped or failed. For a map,
    ``items`` and ``items_done`` count its tasks and ``attempts`` adds theirs up.
    ``lost``: how often its tasks were lost to the system (a node or worker
    process died under them) and ran again; these are not counted as attempts.
    """

    name: str
    kind: str
    status: StepStatus
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: ErrorInfo | None = None
    items: int | None = None
    items_done: int | None = None
    reused: bool = False
    lost: int = 0

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def step_infos(workflow: Workflow, data: RunData) -> list[StepInfo]:
    """Every component's status, attempts and timings, in definition order."""
    return [step_info(node, data) for node in workflow.nodes.values()]


def step_info(node: Node, data: RunData) -> StepInfo:
    """One component's :class:`StepInfo`."""
    d = data
    name = node.name
    summary = d.map_summary.get(name, MapSummary())
    if node.kind is NodeKind.MAP and name in d.map_counts:
        records = [rec for (n, i), rec in d.tasks.items() if n == name and i is not None]
    else:
        records = [rec for rec in (d.tasks.get((name, None)),) if rec is not None]
    starts = [t for t in [r.first_started_at for r in records] + [summary.first_started_at] if t is not None]
    ends = [t for t in [r.finished_at for r in records] + [summary.finished_at] if t is not None]
    errors = [e for e in [summary.error] + [r.error for r in records] + [d.child_errors.get(name)] if e is not None]
    if name in d.results:
        status = StepStatus.SKIPPED if d.results[name] is SKIPPED else StepStatus.DONE
        finished = max(ends) if ends else None
    else:
        statuses = {r.status for r in records}
        if TaskStatus.FAILED in statuses or (not records and d.failed_node == name) or name in d.child_errors:
            status = StepStatus.FAILED
        elif TaskStatus.RUNNING in statuses or TaskStatus.FALLBACK in statuses:
            status = StepStatus.RUNNING
        elif TaskStatus.RETRY in statuses:
            status = StepStatus.RETRYING
        elif d.inputs(node) is None:
            status = StepStatus.PENDING
        elif node.kind in (NodeKind.WAIT, NodeKind.SLEEP, NodeKind.CHILD) or name in d.sub_workflows:
            status = StepStatus.WAITING  # a step that continued into a workflow waits for that child
        else:
            status = StepStatus.READY
        finished = max(ends) if status is StepStatus.FAILED and ends else None
    return StepInfo(
        name=name,
        kind=node.kind.value,
        status=status,
        attempts=sum(r.attempt for r in records) + summary.attempts,
        started_at=min(starts) if starts else None,
        finished_at=finished,
        error=errors[-1] if errors else None,
        items=d.map_counts.get(name) if node.kind is NodeKind.MAP else None,
        items_done=(d.map_counts[name] - len(records) if name in d.map_counts else None),
        reused=name in d.reused,
        lost=sum(r.lost for r in records) + summary.lost,
    )
