"""Checkpoint strategies: fewer appends for a chain of small steps, and what a crash then re-runs.

    .venv/bin/python examples/checkpoints.py

First, on Ray with the embedded DuckDB store: a 30-step chain of inline steps
runs under each strategy (the workflow's ``every_step`` default, then
``every_n(10)`` and ``on_complete`` chosen at submit, then a workflow whose
steps say ``checkpoint=False``); the result and the recorded history are the
same, the time per step is not. Then, in process (no Ray): a worker "crash"
between checkpoints, showing which steps run again under each strategy. It
starts a local Ray instance of its own (it never joins a cluster already
running on the machine).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import ray

import runner
from runner.planning import Task
from runner.testing.inprocess import InProcessRun

STEPS = 30


def add_one(x: int) -> int:
    return x + 1


def chain(name: str, *, steps: int = STEPS, unchecked: bool = False, inline: bool = True) -> runner.Workflow:
    wf = runner.Workflow(name)
    previous = None
    for i in range(steps):
        previous = wf.step(add_one, name=f"s{i}", after=previous, inline=inline, checkpoint=not unchecked)
    return wf


def on_ray() -> None:
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    client = runner.connect()
    plain, unchecked = chain("chain30"), chain("chain30_unchecked", unchecked=True)
    runs: list[tuple[str, runner.Workflow, Any]] = [
        ("every_step (default)", plain, None),
        ("every_n(10)", plain, runner.every_n(10)),
        ("on_complete", plain, runner.Checkpoint.ON_COMPLETE),
        ("checkpoint=False steps", unchecked, None),
    ]
    client.submit(plain, 0).result(timeout=120)  # warm the worker
    for label, workflow, strategy in runs:
        start = time.perf_counter()
        handle = client.submit(workflow, 0, checkpoint=strategy)
        result = handle.result(timeout=120)
        per_step = (time.perf_counter() - start) / STEPS * 1000
        print(f"{label:24} result {result}, {len(handle.history())} events, {per_step:.2f} ms/step submit to result")


class Counting:
    """Runs each step's code and counts how often each step ran."""

    def __init__(self, workflow: runner.Workflow) -> None:
        self.workflow, self.ran = workflow, Counter[str]()

    def __call__(self, task: Task) -> Any:
        self.ran[task.node] += 1
        return add_one(*task.inputs)


def crash_demo() -> None:
    print("\na crash after 7 of 10 steps finished (in process):")
    for label, strategy in [("every_step", None), ("every_n(3)", runner.every_n(3)), ("on_complete", "on_complete")]:
        workflow = chain("chain10", steps=10, inline=False)
        counting = Counting(workflow)
        run = InProcessRun(workflow, 0, checkpoint=strategy)
        while sum(counting.ran.values()) < 7:
            run.step(counting)
        run.crash()  # what was buffered is lost; the run recovers from what was appended
        run.run(counting)
        again = sorted((name for name, times in counting.ran.items() if times > 1), key=lambda n: int(n[1:]))
        print(f"  {label:12} result {run.state.result}; ran again: {', '.join(again) or 'nothing'}")


if __name__ == "__main__":
    on_ray()
    crash_demo()
