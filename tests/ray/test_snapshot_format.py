"""A snapshot of a format this version does not read is ignored: recovery folds the full log."""

from __future__ import annotations

from typing import Any

import pytest
import ray
from ray_support import assert_gapless, eventually, last_outcome

import runner
from runner import serialization
from runner.events import RunSuspended
from runner.runner import RunnerConfig
from runner.state import SNAPSHOT_FORMAT
from runner.store_handle import StoreHandle
from runner.worker import Outcome, WorkerConfig

pytestmark = pytest.mark.ray

CHAIN = 8


def _chain_then_wait() -> runner.Workflow:
    wf = runner.Workflow("chain-then-wait")
    previous = None
    for i in range(CHAIN):

        def step(x: int) -> int:
            return x + 1

        previous = wf.step(step, name=f"s{i}", after=previous, inline=True)
    go = wf.wait_for("go", after=previous)

    @wf.step(after=[previous, go])
    def finish(x: int, payload: Any) -> tuple[int, Any]:
        return x, payload

    return wf


def test_a_snapshot_of_an_unknown_format_is_ignored_and_the_full_log_is_folded(make_client: Any) -> None:
    client = make_client(config=RunnerConfig(max_workers=1, worker=WorkerConfig(snapshot_every=5)))
    store = client.store if isinstance(client.store, StoreHandle) else StoreHandle(client.store)
    handle = client.submit(_chain_then_wait(), 0)
    run_id = handle.run_id
    eventually(lambda: handle.status() is runner.RunStatus.SUSPENDED, what="the run to wait for its signal")
    eventually(lambda: client.stats().busy_workers == 0, what="the worker to be released")
    history = handle.history()
    assert isinstance(history[-1].event, RunSuspended)
    snapshot = ray.get(store.load_snapshot(run_id))
    assert snapshot is not None and snapshot.cursor >= 5

    version, definition_hash, data = serialization.loads(snapshot.blob)
    assert version == SNAPSHOT_FORMAT
    unknown = serialization.dumps((SNAPSHOT_FORMAT + 1, definition_hash, data))
    ray.get(store.save_snapshot(run_id, snapshot.cursor, unknown))  # same cursor: it replaces the snapshot

    handle.signal("go", "now")
    assert handle.result(timeout=60) == (CHAIN, "now")
    # the Runner records the completing turn just after its commit: until then it holds the suspended one
    outcome: Outcome = eventually(
        lambda: found if (found := last_outcome(client, run_id)).status == "completed" else None,
        what="the Runner to record the completing turn",
    )
    assert outcome.recovery.snapshot_cursor == 0  # the snapshot was not used
    assert outcome.recovery.events_streamed == len(history)  # every event up to the suspension was folded
    assert_gapless(handle.history())
