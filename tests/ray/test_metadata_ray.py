"""Run metadata and keyed signals on Ray: metadata given at submit and added by steps is read back
after the Runner restarts; a signal key is stored once even when the Store actor restarted in
between; submits say whether they created the run."""

from __future__ import annotations

from typing import Any

import pytest
import ray
from ray_support import sigkill_actor, wait_restarted

import runner
from runner.store_handle import StoreHandle

pytestmark = pytest.mark.ray
RESULT_TIMEOUT = 90


def _tagged() -> runner.Workflow:
    wf = runner.Workflow("meta-tagged")

    @wf.step()
    def load(n: int) -> int:
        runner.context().set_metadata(rows=n, source="db")
        return n

    @wf.step(after=load)
    def double(n: int) -> int:
        return n * 2

    return wf


def _waiting() -> runner.Workflow:
    wf = runner.Workflow("meta-waiting")
    wf.step(lambda x: x, name="prepare")
    wf.wait_for("approve", name="approval", after="prepare")

    @wf.step(after="approval")
    def finish(decision: Any) -> Any:
        return decision

    return wf


def test_metadata_is_stored_filtered_and_read_back_after_a_runner_restart(client: runner.Client) -> None:
    wf = _tagged()
    handle = client.submit(wf, 3, idempotency_key="order-3", metadata={"tenant": "t-7", "source": "api"})
    other = client.submit(wf, 4, metadata={"tenant": "t-8"})
    assert (handle.created, other.created) == (True, True)
    again = client.submit(wf, 99, idempotency_key="order-3", metadata={"tenant": "ignored"})
    assert (again.run_id, again.created) == (handle.run_id, False)
    assert client.get(handle.run_id).created is None
    # a submit sent again (its reply lost to a Store actor restart) still says it created the run
    new = client.new_run(wf, 7, run_id=f"{handle.run_id}-retried")
    assert [created for _, created in client._create_runs([new])] == [True]
    assert [created for _, created in client._create_runs([new])] == [True]
    assert client.results([handle, other], timeout=RESULT_TIMEOUT) == [6, 8]
    with pytest.raises(runner.InvalidArgument, match=r"metadata\['when'\]"):
        client.submit(wf, 5, metadata={"when": object()})
    assert [r.run_id for r in client.list_runs(metadata={"tenant": "t-7"})] == [handle.run_id]

    sigkill_actor(client.runner)  # its Store actor goes with it: the new one reads the file again
    wait_restarted(client.runner, 1)

    meta = handle.metadata()
    assert meta.metadata == {"tenant": "t-7", "source": "db", "rows": 3}
    assert meta.submit_metadata == {"tenant": "t-7", "source": "api"}
    assert meta.status is runner.RunStatus.COMPLETED
    assert meta.started_at is not None and meta.finished_at is not None
    assert meta.created_at <= meta.started_at <= meta.finished_at
    assert {name: (s.attempts, s.metadata) for name, s in meta.steps.items()} == {
        "load": (1, {"rows": 3, "source": "db"}),
        "double": (1, {}),
    }
    assert all(s.started_at is not None and s.finished_at is not None for s in meta.steps.values())
    assert [r.run_id for r in client.list_runs(metadata={"tenant": "t-8"})] == [other.run_id]
    replayed = handle.replay()  # keeps the metadata its parent was submitted with
    assert replayed.created and replayed.record().metadata == {"tenant": "t-7", "source": "api"}


@pytest.mark.slow  # make chaos: keyed signals are in the contract suite; Store actor restarts in test_actor_restarts
def test_a_signal_key_is_stored_once_across_a_store_actor_restart(client: runner.Client) -> None:
    handle = client.submit(_waiting(), 1)
    first = handle.signal("approve", "yes", key="decision-1")
    assert (first, first.duplicate) == (1, False)

    store = client.store
    sigkill_actor(store)
    wait_restarted(store, 1)

    again = client.signal(handle.run_id, "approve", "no", key="decision-1")
    assert (int(again), again.duplicate) == (int(first), True)
    assert handle.result(timeout=RESULT_TIMEOUT) == "yes"
    inbox = ray.get(StoreHandle(client.store).signals(handle.run_id))
    assert [(s.name, s.payload) for s in inbox] == [("approve", "yes")]
    # after the run ended, the same key still answers with the stored signal
    assert client.signal(handle.run_id, "approve", "late", key="decision-1").duplicate
