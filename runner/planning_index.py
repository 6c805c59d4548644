"""Indexes that let planning cost what changed rather than the size of the workflow.

A :class:`PlanningIndex` is derived from a run's :class:`~runner.run_data.RunData`:
built from it when a state is made (so a state restored from a snapshot has
it too) and then kept up to date by the fold, only once an event has passed
validation. It holds

- the workflow's order: each component's position and its direct downstream;
- ``frontier``: unresolved components whose upstreams are all resolved, the
  only ones planning looks at (a component resolves only after its upstreams did);
- ``open_waits``: the waits in the frontier;
- heaps of retry times and timer due times for :meth:`next_wakeup`; entries
  that no longer hold are dropped when they reach the top.

Pure: no Ray, no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from runner.run_data import RunData, TaskStatus
from runner.workflow import Node, NodeKind, Workflow


class PlanningIndex:
    """The frontier, the open waits and the wake-up heaps of one run."""

    def __init__(self, workflow: Workflow, data: RunData) -> None:
        self._data = data
        self.order = {name: i for i, name in enumerate(workflow.nodes)}
        self.by_order = list(workflow.nodes.values())
        self.downstream = _downstream(workflow)
        self.frontier: set[str] = set()
        self.open_waits: set[str] = set()
        self._retry_times: list[tuple[float, str, int]] = []  # (retry_at, node, item or -1)
        self._timer_times: list[tuple[float, str]] = []  # (due_at, node)
        for node in self.by_order:
            if node.name not in data.results and all(up in data.results for up in node.after):
                self._enter_frontier(node)
        for (name, item), rec in data.tasks.items():
            if rec.status is TaskStatus.RETRY and rec.retry_at is not None:
                self.push_retry(name, item, rec.retry_at)
        for name, due in data.timers.items():
            if name not in data.results:
                self.push_timer(name, due)

    # ------------------------------------------------------------ updates
    def resolved(self, name: str) -> None:
        """``name`` has its result now: it leaves the frontier, and what it unblocks downstream enters it."""
        results = self._data.results
        self.frontier.discard(name)
        self.open_waits.discard(name)
        for child in self.downstream[name]:
            if child.name not in results and all(up in results for up in child.after):
                self._enter_frontier(child)

    def push_retry(self, name: str, item: int | None, retry_at: float) -> None:
        heapq.heappush(self._retry_times, (retry_at, name, -1 if item is None else item))

    def push_timer(self, name: str, due_at: float) -> None:
        heapq.heappush(self._timer_times, (due_at, name))

    def _enter_frontier(self, node: Node) -> None:
        self.frontier.add(node.name)
        if node.kind is NodeKind.WAIT:
            self.open_waits.add(node.name)

    # ------------------------------------------------------------ queries
    def in_order(self, names: Iterable[str]) -> list[Node]:
        """The components ``names`` in definition (topological) order."""
        return [self.by_order[i] for i in sorted(self.order[name] for name in names)]

    def waiting_for(self) -> list[str]:
        """Signal names the run is blocked on now."""
        return [node.signal or "" for node in self.in_order(self.open_waits)]

    def next_wakeup(self) -> float | None:
        """The earliest time a retry or timer becomes due, if any."""
        times = [due for due in (self._next_retry(), self._next_timer()) if due is not None]
        return min(times) if times else None

    def _next_retry(self) -> float | None:
        """The earliest ``retry_at`` of a task waiting to retry (stale heap entries are dropped)."""
        heap = self._retry_times
        tasks = self._data.tasks
        while heap:
            retry_at, name, item = heap[0]
            rec = tasks.get((name, None if item < 0 else item))
            if rec is not None and rec.status is TaskStatus.RETRY and rec.retry_at == retry_at:
                return retry_at
            heapq.heappop(heap)
        return None

    def _next_timer(self) -> float | None:
        """The earliest due time of a timer whose sleep has not fired (fired ones are dropped)."""
        heap = self._timer_times
        results = self._data.results
        while heap and heap[0][1] in results:
            heapq.heappop(heap)
        return heap[0][0] if heap else None


def _downstream(workflow: Workflow) -> dict[str, tuple[Node, ...]]:
    """Each component's direct downstream components."""
    children: dict[str, list[Node]] = {name: [] for name in workflow.nodes}
    for node in workflow.nodes.values():
        for up in node.after:
            children[up].append(node)
    return {name: tuple(nodes) for name, nodes in children.items()}
