"""The submit and result path: clients store runs in the Store actor and the Runner learns of
them from it; a result is one call, answered when the run ends."""

from __future__ import annotations

from typing import Any

import pytest
from ray_support import sigkill_actor, wait_restarted

import runner
from runner.ray_calls import StoreCalls

pytestmark = pytest.mark.ray
RESULT_TIMEOUT = 90


def _chain() -> runner.Workflow:
    wf = runner.Workflow("submit-chain")

    @wf.step()
    def one(x: int) -> int:
        return x + 1

    @wf.step(after=one)
    def two(x: int) -> int:
        return x * 2

    return wf


def _failing() -> runner.Workflow:
    wf = runner.Workflow("submit-failing")

    @wf.step()
    def boom(x: int) -> int:
        raise KeyError(f"no {x}")

    return wf


def _waiting() -> runner.Workflow:
    wf = runner.Workflow("submit-waiting")
    wf.wait_for("go")
    return wf


class CountedCalls(StoreCalls):
    """The client's Store actor calls, counted."""

    def __init__(self, inner: StoreCalls) -> None:
        super().__init__(inner.handle, find=inner._find)
        self.count = 0

    def call(self, send: Any) -> Any:
        self.count += 1
        return super().call(send)


def test_a_burst_of_submits_all_runs_even_when_the_runner_is_killed_right_after(client: runner.Client) -> None:
    wf = _chain()
    handles = [client.submit(wf, i) for i in range(12)]
    runner_actor = client.runner
    sigkill_actor(runner_actor)  # whatever it had not learnt of, its restart finds in the store
    wait_restarted(runner_actor, 1)
    handles += [client.submit(wf, i) for i in range(12, 16)]
    assert client.results(handles, timeout=RESULT_TIMEOUT) == [(i + 1) * 2 for i in range(16)]
    assert [h.result(timeout=RESULT_TIMEOUT) for h in handles[:3]] == [2, 4, 6]
    assert len(client.list_runs(workflow="submit-chain", limit=1000)) == 16


def test_the_outcome_of_an_ended_run_is_one_call_whatever_its_end(shared_client: runner.Client) -> None:
    client = shared_client  # a Client of its own (its store calls are swapped below), on the shared Runner
    done = client.submit(_chain(), 1)
    failed = client.submit(_failing(), 2)
    cancelled = client.submit(_waiting())
    assert done.result(timeout=RESULT_TIMEOUT) == 4
    with pytest.raises(KeyError):
        failed.result(timeout=RESULT_TIMEOUT)
    cancelled.cancel()

    counted = CountedCalls(client._store)
    client._store = counted
    client.reader.calls = counted
    assert done.result() == 4
    with pytest.raises(KeyError):
        failed.result()
    with pytest.raises(runner.RunWasCancelled):
        cancelled.result()
    assert counted.count == 3  # one call per result
    with pytest.raises(KeyError):
        client.results([done, failed])
    assert counted.count == 4  # one call for several runs
