"""``get_metadata``: Ray Workflows' metadata dicts, built from what a run's history says.

A run started through the compatibility layer stores
:class:`~runner.compat.run_input.RayWorkflowsRun` as its input: the user
metadata given to ``run(metadata=...)`` and each task's
``workflow.options(metadata=...)``, so both come back from the store alone.
:func:`metadata_of` is the one place that reads a run for it; it uses the
public read API (record, history, steps). Once ``RunHandle.metadata()``
exists, it can answer instead: ``stats`` from its ``created_at`` (or
``started_at``) and ``finished_at``, a task's from ``steps[task]`` (times and
attempts), and ``user_metadata`` from ``submit_metadata`` if ``run`` passes its
metadata to ``submit(metadata=...)``.
"""

from __future__ import annotations

from typing import Any

from runner import serialization
from runner.client import Client
from runner.compat.run_input import RayWorkflowsRun
from runner.compat.status import workflow_status
from runner.errors import InvalidArgument
from runner.events import RunSubmitted


def metadata_of(client: Client, run_id: str, task_id: str | None = None) -> dict[str, Any]:
    """Ray Workflows' metadata of a run (``task_id`` None) or of one of its tasks.

    Run: ``status``, ``user_metadata``, ``stats`` (``start_time``; ``end_time`` once ended).
    Task: ``task_id``, ``task_options``, ``user_metadata``, ``stats`` (``start_time``,
    ``end_time``, ``attempts``). RunNotFound for an unknown run, InvalidArgument for an
    unknown task."""
    handle = client.get(run_id)
    record = handle.record()
    history = handle.history()
    first = history[0].event if history else None
    started = first.input if isinstance(first, RunSubmitted) and isinstance(first.input, RayWorkflowsRun) else None
    kept = started or RayWorkflowsRun()
    if task_id is None:
        stats: dict[str, Any] = {"start_time": record.created_at}
        if record.status.is_terminal:
            stats["end_time"] = record.updated_at
        return {"status": workflow_status(record.status), "user_metadata": dict(kept.user_metadata), "stats": stats}
    steps = {step.name: step for step in handle.steps()}
    step = steps.get(task_id)
    if step is None:
        workflow = serialization.loads(record.definition)
        raise InvalidArgument(
            f"workflow {run_id!r} has no task {task_id!r}; its tasks: {', '.join(workflow.nodes) or 'none'}"
        )
    task_stats: dict[str, Any] = {"attempts": step.attempts}
    if step.started_at is not None:
        task_stats["start_time"] = step.started_at
    if step.finished_at is not None:
        task_stats["end_time"] = step.finished_at
    return {
        "task_id": task_id,
        "task_options": dict(kept.task_options.get(task_id, {})),
        "user_metadata": dict(kept.task_metadata.get(task_id, {})),
        "stats": task_stats,
    }
