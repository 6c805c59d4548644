"""Continue-as-new on Ray: a chain of runs gives its last result, and a worker killed while it
continues a run leaves exactly one successor."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_support import alive, assert_gapless, eventually

import runner
from runner import faults
from runner.events import RunContinuedAsNew, RunSubmitted
from runner.faults import Action, FaultPoint
from runner.store import RunStatus

pytestmark = pytest.mark.ray


def _rounds(last: int) -> runner.Workflow:
    """Each run adds its round to the total and continues with the next round, until ``last``."""
    wf = runner.Workflow("rounds")

    @wf.step()
    def work(state: dict[str, int]) -> dict[str, int]:
        return {"round": state["round"], "total": state["total"] + state["round"]}

    @wf.step(after=work)
    def next_round(done: dict[str, int]) -> object:
        if done["round"] >= last:
            return done["total"]
        return runner.continue_as_new({"round": done["round"] + 1, "total": done["total"]})

    return wf


def _chain(client: runner.Client, first: str) -> list[str]:
    """The run ids of ``first``'s chain, following each RunContinuedAsNew."""
    chain = [first]
    while True:
        last = client.get(chain[-1]).history()[-1].event
        if not isinstance(last, RunContinuedAsNew):
            return chain
        chain.append(last.successor_run_id)


def test_a_chain_of_three_successors_gives_the_last_runs_result(shared_client: runner.Client) -> None:
    client = shared_client
    run_id = f"rounds-{uuid.uuid4().hex[:8]}"
    handle = client.submit(_rounds(4), {"round": 1, "total": 0}, run_id=run_id)
    assert handle.result(timeout=90) == 1 + 2 + 3 + 4
    chain = _chain(client, run_id)
    assert chain == [run_id, f"{run_id}:c1", f"{run_id}:c2", f"{run_id}:c3"]
    records = [client.get(r).record() for r in chain]
    assert [r.status for r in records] == [RunStatus.CONTINUED] * 3 + [RunStatus.COMPLETED]
    assert [r.parent_run_id for r in records] == [None, *chain[:-1]]
    for r in chain:
        history = client.get(r).history()
        assert_gapless(history)
        assert len(history) <= 6  # each round's history is its own: no run holds the whole loop
    first_event = client.get(chain[2]).history()[0].event
    assert isinstance(first_event, RunSubmitted) and first_event.input == {"round": 3, "total": 3}
    assert client.get(chain[-1]).result(timeout=10) == 10
    assert client.results([handle, client.get(chain[1])], timeout=10) == [10, 10]


def test_a_worker_killed_after_creating_the_successor_leaves_exactly_one(
    make_client: Callable[..., runner.Client], fault_dir: Path
) -> None:
    faults.disarm(fault_dir)
    client = make_client()
    run_id = f"rounds-{uuid.uuid4().hex[:8]}"
    faults.arm(fault_dir, FaultPoint.SUCCESSOR_CREATED, Action.CRASH, run_id=run_id)
    handle = client.submit(_rounds(2), {"round": 1, "total": 0}, run_id=run_id)

    [firing] = faults.wait_fired(fault_dir, FaultPoint.SUCCESSOR_CREATED, timeout=60)
    eventually(lambda: not alive(firing.pid), what="the worker process to die")
    assert handle.result(timeout=90) == 3

    runs = client.list_runs(workflow="rounds")
    mine = sorted(r.run_id for r in runs if r.run_id.startswith(run_id))
    assert mine == [run_id, f"{run_id}:c1"]  # the step ran again and found its successor there
    history = handle.history()
    assert_gapless(history)
    assert [type(s.event).__name__ for s in history].count("RunContinuedAsNew") == 1
    assert handle.status() is RunStatus.CONTINUED
