"""The Store actor commits concurrent appends together, each caller getting its own answer."""

from __future__ import annotations

import pytest
import ray

from runner.errors import FencedError
from runner.events import FactProduced, RunSubmitted, StepStarted
from runner.store import NewRun
from runner.store_actor import RemoteStoreActor

pytestmark = pytest.mark.ray


@pytest.fixture
def store_actor(ray_instance, tmp_path):
    actor = RemoteStoreActor.options(max_concurrency=64).remote(f"duckdb:///{tmp_path}/s.duckdb")
    yield actor
    ray.get(actor.close.remote())
    ray.kill(actor)


def _create(actor, run_id):
    submitted = RunSubmitted(workflow="wf", input=None, definition_hash="h")
    new = NewRun(run_id=run_id, workflow="wf", definition=b"d", definition_hash="h", events=(submitted,))
    ray.get(actor.create_run.remote(new))
    return ray.get(actor.acquire_lease.remote(run_id, "w", 60)).token


def test_concurrent_appends_share_commits_and_stay_gapless(store_actor):
    runs = [f"run-{i}" for i in range(8)]
    leases = {run_id: _create(store_actor, run_id) for run_id in runs}
    per_run = 25
    refs = {
        run_id: [
            store_actor.append.remote(run_id, [FactProduced(node=f"n{k}", value=k)], leases[run_id])
            for k in range(per_run)
        ]
        for run_id in runs
    }
    for run_id in runs:
        receipts = ray.get(refs[run_id])
        # concurrent calls may commit in any order, but each receipt names where its event went
        assert sorted(r.first_seq for r in receipts) == list(range(2, per_run + 2))
        assert all(r.first_seq == r.last_seq for r in receipts)
        events = ray.get(store_actor.read_events.remote(run_id, 0, 1000))
        assert [e.seq for e in events] == list(range(1, per_run + 2))
        by_seq = {e.seq: e.event.value for e in events[1:]}
        assert {k: by_seq[r.first_seq] for k, r in enumerate(receipts)} == {k: k for k in range(per_run)}
    stats = ray.get(store_actor.stats.remote())
    assert stats.batches == len(runs) * per_run
    assert stats.commits < stats.batches  # appends that met an in-flight commit were grouped
    assert stats.largest_commit > 1


def test_one_fenced_caller_does_not_fail_the_others_in_its_commit(store_actor):
    good = _create(store_actor, "good")
    stale = _create(store_actor, "stolen")
    ray.get(store_actor.acquire_lease.remote("stolen", "new-owner", 60, force=True))
    refs = []
    for _k in range(20):
        refs.append(("good", store_actor.append.remote("good", [StepStarted(node="a", attempt=1, lease=good)], good)))
        refs.append(
            ("stolen", store_actor.append.remote("stolen", [StepStarted(node="a", attempt=1, lease=stale)], stale))
        )
    for run_id, ref in refs:
        if run_id == "good":
            assert ray.get(ref).run_id == "good"
        else:
            with pytest.raises(FencedError):
                ray.get(ref)
    assert ray.get(store_actor.get_run.remote("good")).last_seq == 21
    assert ray.get(store_actor.get_run.remote("stolen")).last_seq == 1
