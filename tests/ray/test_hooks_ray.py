"""Hooks on Ray: a workflow's hooks run in its worker, a client's in the driver; one that raises
breaks nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ray_support import eventually, lines

import runner
from runner import HookEvent, HookKind, Hooks
from runner.client import Client

pytestmark = pytest.mark.ray


def test_workflow_hooks_run_in_the_worker_and_client_hooks_in_the_driver(shared_client: Client, tmp_path: Path) -> None:
    client = shared_client
    marks = str(tmp_path / "marks")

    def mark(event: HookEvent) -> None:  # in the Worker actor: its process id tells where it ran
        with open(marks, "a") as f:
            f.write(f"{event.kind.value}:{event.node or '-'}:{os.getpid()}\n")

    def broken(event: HookEvent) -> None:
        raise RuntimeError("a hook bug")

    wf = runner.Workflow("hooked")
    first = wf.step(lambda x: x + 1, name="first")
    wf.step(lambda x: x * 2, name="second", after=first)
    wf.add_hooks(Hooks(on_run_start=mark, on_step_end=(broken, mark), on_run_end=mark))

    seen: list[HookEvent] = []
    client.add_hooks(Hooks(on_step_start=seen.append, on_run_end=seen.append))
    try:
        handle = client.submit(wf, 1)
        assert handle.result(timeout=90) == 4  # the raising hook broke nothing
        ended = eventually(lambda: [e for e in seen if e.kind is HookKind.RUN_END], what="the driver's on_run_end")
    finally:
        client.remove_hooks()
    assert [(e.run_id, e.status) for e in ended] == [(handle.run_id, "completed")]
    assert [e.node for e in seen if e.kind is HookKind.STEP_START] == ["first", "second"]

    worker_marks = eventually(lambda: lines(marks) if len(lines(marks)) == 4 else None, what="the worker's hooks")
    assert [m.rsplit(":", 1)[0] for m in worker_marks] == [
        "on_run_start:-",
        "on_step_end:first",
        "on_step_end:second",
        "on_run_end:-",
    ]
    assert {int(m.rsplit(":", 1)[1]) for m in worker_marks} != {os.getpid()}  # not this driver
