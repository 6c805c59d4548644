"""Checkpoint strategies on Ray: the worker is SIGKILLed while results are buffered (the
RESULTS_HELD fault point); what was appended stays exactly as it was, the rest runs again."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ray_support import alive, assert_gapless, eventually, facts

import runner
from runner import faults
from runner.client import Client
from runner.faults import Action, FaultPoint
from runner.testing.sideeffects import executions
from runner.testing.sideeffects import mark as _mark

STEPS = ("a", "b", "c", "d", "e")


def _chain(
    log: str, fault_dir: str, crash_after: str, unchecked: tuple[str, ...] = (), inline: tuple[str, ...] = ()
) -> runner.Workflow:
    """a -> b -> c -> d -> e, each marking its execution in ``log``; the first execution of
    ``crash_after`` arms RESULTS_HELD, so the worker dies once that result is held in memory.
    An ``inline`` step returns a value large enough to be stored as a fact, which the next
    step (a Ray task, started before anything is appended) reads."""
    wf = runner.Workflow("checkpointed", checkpoint=runner.every_n(2))

    def make(name: str) -> Callable[[dict[str, str | int]], dict[str, str | int]]:
        def step(value: dict[str, str | int]) -> dict[str, str | int]:
            first = name not in executions(log)
            _mark(log, name)
            if name == crash_after and first:
                faults.arm(fault_dir, FaultPoint.RESULTS_HELD, Action.CRASH, run_id=str(value["run_id"]))
            padding = "x" * (64 * 1024) if name in inline else ""
            return {**value, "n": int(value["n"]) + 1, "padding": padding}

        step.__name__ = name
        return step

    previous = None
    for name in STEPS:
        previous = wf.step(
            make(name), name=name, after=previous, checkpoint=name not in unchecked, inline=name in inline
        )
    return wf


def _crash_and_finish(client: Client, fault_dir: Path, tmp_path: Path, **options: object) -> tuple[Counter[str], list]:
    faults.disarm(fault_dir)
    log = str(tmp_path / f"ran-{uuid.uuid4().hex[:8]}.log")
    run_id = f"checkpointed-{uuid.uuid4().hex[:12]}"
    crash_after = str(options.pop("crash_after"))
    unchecked = tuple(options.pop("unchecked", ()))  # type: ignore[call-overload]
    inline = tuple(options.pop("inline", ()))  # type: ignore[call-overload]
    workflow = _chain(log, str(fault_dir), crash_after, unchecked, inline)
    handle = client.submit(workflow, {"run_id": run_id, "n": 0}, run_id=run_id, **options)  # type: ignore[arg-type]
    [firing] = faults.wait_fired(fault_dir, FaultPoint.RESULTS_HELD, timeout=60)
    eventually(lambda: not alive(firing.pid), what="the worker to die at the fault point")
    assert handle.result(timeout=90)["n"] == len(STEPS)
    history = handle.history()
    assert_gapless(history)
    assert facts(history) == [(name, None) for name in STEPS]  # each result recorded once
    return Counter(executions(log)), history


def test_a_crash_between_checkpoints_reruns_only_the_buffered_steps(
    make_client: Callable[..., Client], fault_dir: Path, tmp_path: Path
) -> None:
    client = make_client()
    # every_n(2) (the workflow's): a and b are appended together; c's result is held when the worker dies
    ran, history = _crash_and_finish(client, fault_dir, tmp_path, crash_after="c")
    assert ran == Counter(a=1, b=1, c=2, d=1, e=1)
    submitted = history[0].event
    assert isinstance(submitted, runner.events.RunSubmitted) and submitted.checkpoint is None

    # on_complete (chosen at submit): nothing is appended before the run ends, so after the crash
    # (b's result held, its step marked checkpoint=False) a and b run again; c, d, e once. c reads
    # the large result of the inline step b: its fact is saved before c starts.
    ran, history = _crash_and_finish(
        client,
        fault_dir,
        tmp_path,
        crash_after="b",
        unchecked=("b",),
        inline=("b",),
        checkpoint="on_complete",
    )
    assert ran == Counter(a=2, b=2, c=1, d=1, e=1)
    assert history[0].event.checkpoint == "on_complete"
