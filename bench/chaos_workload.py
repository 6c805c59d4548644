"""The small mixed workload the chaos harness (bench/chaos.py) breaks things under.

Six runs a trial: three 4-step chains, a fan-out map of six items and its
reduce, a run that waits for a signal, and a run with a short durable sleep.
Every step that runs user code appends ``run_id|step|item`` to a side-effect
log as it starts, so the harness counts how often each step's code really
ran, whatever the event log says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import runner
from runner.testing.sideeffects import mark

STEP_SECONDS = 0.4  # long enough for a fault to land while steps are in flight
SLEEP_SECONDS = 1.5  # the durable sleep (shorter than suspend_after: the worker waits in place)
FAN_ITEMS = 6
SIGNAL = "go"
SIGNAL_PAYLOAD = 7


@dataclass(frozen=True)
class Planned:
    """One run of the workload: what to submit and the result it must end with."""

    kind: str
    workflow: runner.Workflow
    input: Any
    expected: Any
    signalled: bool = False  # the harness sends it SIGNAL


def _effect(log: str) -> None:
    here = runner.context()
    mark(log, f"{here.run_id}|{here.step}|{'' if here.item is None else here.item}")
    time.sleep(STEP_SECONDS)


def chain(log: str) -> runner.Workflow:
    wf = runner.Workflow("chaos-chain")
    previous = None
    for name in ("s1", "s2", "s3", "s4"):

        def step(x: int) -> int:
            _effect(log)
            return x + 1

        previous = wf.step(step, name=name, after=previous)
    return wf


def fan_out(log: str) -> runner.Workflow:
    wf = runner.Workflow("chaos-fanout")

    @wf.step()
    def items(n: int) -> list[int]:
        _effect(log)
        return list(range(n))

    @wf.map(after=items)
    def square(item: int) -> int:
        _effect(log)
        return item * item

    @wf.reduce(after=square)
    def total(values: list[int]) -> int:
        _effect(log)
        return sum(values)

    return wf


def approval(log: str) -> runner.Workflow:
    wf = runner.Workflow("chaos-approval")

    @wf.step()
    def prepare(x: int) -> int:
        _effect(log)
        return x + 1

    decision = wf.wait_for(SIGNAL, after=prepare)

    @wf.step(after=[prepare, decision])
    def finish(prepared: int, payload: int) -> int:
        _effect(log)
        return prepared + payload

    return wf


def sleeper(log: str) -> runner.Workflow:
    wf = runner.Workflow("chaos-sleeper")

    @wf.step()
    def before(x: int) -> int:
        _effect(log)
        return x * 2

    pause = wf.sleep(SLEEP_SECONDS, after=before)

    @wf.step(after=pause)
    def after(x: int) -> int:
        _effect(log)
        return x + 1

    return wf


def plan(log: str) -> list[Planned]:
    """The runs of one trial, in submit order."""
    chained = chain(log)
    return [
        *(Planned("chain", chained, i * 100, i * 100 + 4) for i in range(3)),
        Planned("fan-out", fan_out(log), FAN_ITEMS, sum(i * i for i in range(FAN_ITEMS))),
        Planned("wait_for", approval(log), 10, 10 + 1 + SIGNAL_PAYLOAD, signalled=True),
        Planned("sleep", sleeper(log), 5, 5 * 2 + 1),
    ]


def steps_per_trial() -> int:
    """How many side effects a trial logs when every step's code runs exactly once."""
    return 3 * 4 + (1 + FAN_ITEMS + 1) + 2 + 2
