"""Large step results become facts: saved once by the step's task, read back by the steps after it."""

from __future__ import annotations

from typing import Any

import pytest

import runner
from runner.events import FactProduced, FactRef
from runner.runner import RunnerConfig
from runner.worker import WorkerConfig

pytestmark = pytest.mark.ray


def test_a_large_result_is_a_fact_that_downstream_tasks_and_inline_steps_read(make_client: Any) -> None:
    client = make_client(config=RunnerConfig(worker=WorkerConfig(fact_threshold=1_000)))
    wf = runner.Workflow("facts")

    @wf.step()
    def big(n: int) -> list[int]:
        return list(range(n))

    @wf.step(after=big)
    def total(values: list[int]) -> int:  # a Ray task: loads the fact from the Store actor
        return sum(values)

    @wf.step(after=big, inline=True)
    def count(values: list[int]) -> int:  # inside the worker
        return len(values)

    @wf.step(after=[total, count])
    def both(t: int, c: int) -> tuple[int, int]:
        return t, c

    handle = client.submit(wf, 5_000)

    assert handle.result(timeout=60) == (sum(range(5_000)), 5_000)
    produced = {e.event.node: e.event.value for e in handle.history() if isinstance(e.event, FactProduced)}
    assert isinstance(produced["big"], FactRef) and produced["big"].length == 5_000
    assert produced["total"] == sum(range(5_000))  # small results stay in the log
    _, rows = client.reader.sql(f"SELECT count(*) FROM facts WHERE hash = '{produced['big'].hash}'")
    assert rows == [(1,)]
