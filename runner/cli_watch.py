"""``runner watch RUN_ID``: a run's progress, live, until it ends (rich progress bars).

Reads through the same reader as ``list`` and ``show`` (the Store actor while a
cluster holds the store, else the file read-only, where nothing moves: the
display is drawn once). Each round reads only the events after the cursor it
has folded, then redraws: one bar for the run's components, one per map with
its items, and the components running now with their attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from runner import serialization
from runner.reader import StoreReader
from runner.state import WorkflowState
from runner.step_view import StepInfo, StepStatus

POLL_SECONDS = 0.3
_SETTLED = (StepStatus.DONE, StepStatus.SKIPPED)
_ACTIVE = (StepStatus.RUNNING, StepStatus.RETRYING, StepStatus.WAITING)


def _doing(steps: list[StepInfo]) -> str:
    return ", ".join(
        f"{s.name} ({s.status.value}, attempt {s.attempts})" if s.attempts > 1 else f"{s.name} ({s.status.value})"
        for s in steps
        if s.status in _ACTIVE
    )


def watch(
    reader: StoreReader,
    run_id: str,
    console: Console,
    *,
    timeout: float | None = None,
    follow: bool = True,
    pause: Callable[[], object] = lambda: time.sleep(POLL_SECONDS),
    transient: bool = False,
) -> WorkflowState:
    """Show ``run_id``'s progress until it ends (or ``timeout`` seconds pass; ``follow=False``: once).
    Returns the state as last read. ``pause`` waits between rounds (a caller with a client passes
    one that returns early when the run ends); ``transient``: the bars vanish once it returns."""
    record = reader.get_run(run_id)  # RunNotFound first
    state = WorkflowState(serialization.loads(record.definition))
    deadline = None if timeout is None else time.monotonic() + timeout
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    ) as progress:
        overall = progress.add_task(f"run {run_id}", total=len(state.workflow.nodes), note="")
        maps: dict[str, TaskID] = {}
        while True:
            for stored in reader.history(run_id, after=state.cursor):
                state.apply(stored)
            steps = state.steps()
            done = sum(1 for s in steps if s.status in _SETTLED)
            progress.update(overall, completed=done, note=f"{state.status.value}  {_doing(steps)}")
            for step in steps:
                if step.items is None:
                    continue
                if step.name not in maps:
                    maps[step.name] = progress.add_task(f"  map {step.name}", total=step.items, note="")
                failed = " (failed)" if step.status is StepStatus.FAILED else ""
                progress.update(
                    maps[step.name],
                    total=step.items,
                    completed=step.items_done or 0,
                    note=f"attempts {step.attempts}{failed}",
                )
            if state.is_finished or not follow:
                return state
            if deadline is not None and time.monotonic() > deadline:
                return state
            pause()
