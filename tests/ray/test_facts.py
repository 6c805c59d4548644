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


def test_large_map_items_reach_every_kind_of_step_after_the_map_as_values(make_client: Any) -> None:
    """A map whose items are each stored as a fact: its list holds references, and the reduce,
    join, rule and inline step after it, a map over it, and the run's result get values."""
    client = make_client(config=RunnerConfig(worker=WorkerConfig(fact_threshold=1_000)))
    wf = runner.Workflow("large_items", output="report")

    @wf.step()
    def ids(n: int) -> list[int]:
        return list(range(n))

    @wf.map(after=ids)
    def rows(i: int) -> list[int]:
        return [i] * 2_000  # each item over the threshold: a fact

    @wf.reduce(after=rows)
    def sizes(xs: list[list[int]]) -> list[int]:  # a Ray task
        return [len(x) for x in xs]

    @wf.step(after=rows, inline=True)
    def first_row(xs: list[list[int]]) -> int:  # inside the worker
        return len(xs[0])

    @wf.rule(after=[ids, rows], when=lambda i, xs: len(xs) == len(i) and len(xs[-1]) == 2_000)
    def checked(i: list[int], xs: list[list[int]]) -> int:  # a join, and a rule's condition and reaction
        return sum(len(x) for x in xs)

    @wf.map(after=rows)
    def heads(x: list[int]) -> int:  # a map over the list of references
        return x[0] + len(x)

    @wf.step(after=[sizes, first_row, checked, heads, rows])
    def report(s: list[int], f: int, c: int, h: list[int], xs: list[list[int]]) -> dict[str, Any]:
        return {"sizes": s, "first": f, "checked": c, "heads": h, "rows": xs}

    handle = client.submit(wf, 3)

    result = handle.result(timeout=60)
    rows_ = [[i] * 2_000 for i in range(3)]
    assert result == {
        "sizes": [2_000] * 3,
        "first": 2_000,
        "checked": 6_000,
        "heads": [2_000, 2_001, 2_002],
        "rows": rows_,
    }
    produced = [e.event for e in handle.history() if isinstance(e.event, FactProduced) and e.event.node == "rows"]
    assert len(produced) == 3 and all(isinstance(e.value, FactRef) for e in produced)


def test_result_of_a_run_whose_output_is_a_list_of_large_items(make_client: Any) -> None:
    client = make_client(config=RunnerConfig(worker=WorkerConfig(fact_threshold=1_000)))
    wf = runner.Workflow("large_output")

    @wf.step()
    def ids(n: int) -> list[int]:
        return list(range(n))

    @wf.map(after=ids)
    def rows(i: int) -> str:
        return str(i) * 5_000

    @wf.step(after=ids)
    def small(i: list[int]) -> int:
        return len(i)

    handle = client.submit(wf, 2)
    # two sinks: the result names each; the map's list of references is loaded inside it
    assert handle.result(timeout=60) == {"rows": ["0" * 5_000, "1" * 5_000], "small": 2}
    wf.set_output("rows")
    assert client.submit(wf, 2).result(timeout=60) == ["0" * 5_000, "1" * 5_000]
