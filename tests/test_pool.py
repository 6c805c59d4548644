"""WorkerPool: where each run goes (idle worker, new worker under the cap, least busy with room),
the alone rule for runs whose worker died, and the counts the Runner's stats report."""

from __future__ import annotations

import collections

from runner.pool import WorkerPool, WorkerSlot


class _Actors:
    """Stands in for starting and killing Worker actors."""

    def __init__(self) -> None:
        self.spawned: list[str] = []
        self.killed: list[object] = []

    def spawn(self, worker_id: str) -> object:
        self.spawned.append(worker_id)
        return f"handle-{worker_id}"

    def kill(self, handle: object) -> None:
        self.killed.append(handle)


def _pool(max_workers: int = 2, runs_per_worker: int = 2) -> tuple[WorkerPool, _Actors]:
    actors = _Actors()
    pool = WorkerPool(
        max_workers=max_workers,
        runs_per_worker=runs_per_worker,
        spawn=actors.spawn,  # type: ignore[arg-type]
        kill=actors.kill,
    )
    return pool, actors


def _place(pool: WorkerPool, *run_ids: str) -> tuple[dict[str, WorkerSlot], list[str]]:
    pending = collections.deque(run_ids)
    placed = dict(pool.place(pending))
    return placed, list(pending)


def test_new_workers_under_the_cap_then_the_least_busy_with_room() -> None:
    pool, actors = _pool(max_workers=2, runs_per_worker=2)
    placed, left = _place(pool, "a", "b", "c", "d", "e")
    assert left == ["e"]  # 2 workers x 2 runs
    assert placed["a"] is not placed["b"]
    assert {placed["c"], placed["d"]} == {placed["a"], placed["b"]}
    assert len(actors.spawned) == 2 and pool.started == 2 and pool.peak == 2
    assert list(pool.start_order) == ["a", "b", "c", "d"]
    assert pool.busy == 2 and all(pool.is_driving(r) for r in "abcd")


def test_an_idle_worker_is_reused_before_a_new_one_is_started() -> None:
    pool, actors = _pool(max_workers=4)
    placed, _ = _place(pool, "a")
    pool.turn_ended("a", placed["a"], finished=True)
    again, _ = _place(pool, "b")
    assert again["b"] is placed["a"] and placed["a"].turns == 1
    assert len(actors.spawned) == 1


def test_a_run_already_driven_is_not_placed_twice() -> None:
    pool, _ = _pool()
    _place(pool, "a")
    placed, left = _place(pool, "a", "b")
    assert list(placed) == ["b"] and left == []


def test_a_run_whose_worker_died_gets_a_worker_of_its_own() -> None:
    pool, actors = _pool(max_workers=2, runs_per_worker=4)
    first, _ = _place(pool, "a", "b")
    dead, survivor = first["a"], first["b"]
    pool.turn_ended("a", dead, finished=False)
    pool.retire(dead)
    pool.keep_alone("a")
    assert actors.killed == [dead.handle]
    pool.retire(dead)  # the second of its runs to learn of the loss finds it gone
    assert actors.killed == [dead.handle]

    placed, left = _place(pool, "a", "c")  # one slot left under the cap: "a" takes a new worker alone
    assert left == [] and placed["a"] is not placed["c"]
    assert placed["a"].alone and placed["c"] is survivor
    more, _ = _place(pool, "d")
    assert more["d"] is survivor  # never next to the run that must be alone


def test_a_run_waiting_alone_does_not_hold_back_the_runs_behind_it_and_the_least_busy_drains() -> None:
    pool, _ = _pool(max_workers=2, runs_per_worker=4)
    placed, _ = _place(pool, "x", "y", "z")  # x and z share one worker, y has the other
    pool.keep_alone("lone")
    more, left = _place(pool, "lone", "n1", "n2")
    assert left == ["lone"]  # no worker is free for it: it waits at the front
    least_busy = placed["y"]
    assert more["n1"] is not least_busy and more["n2"] is not least_busy  # the least busy one drains
    pool.turn_ended("y", least_busy, finished=True)
    placed_lone, left = _place(pool, "lone")
    assert left == [] and placed_lone["lone"] is least_busy and least_busy.alone


def test_a_finished_turn_lifts_the_alone_rule_and_forget_drops_it() -> None:
    pool, _ = _pool(max_workers=1, runs_per_worker=4)
    pool.keep_alone("a")
    placed, _ = _place(pool, "a")
    slot = placed["a"]
    assert slot.alone
    _, left = _place(pool, "b")
    assert left == ["b"]  # the only worker drives a run that must be alone
    pool.turn_ended("a", slot, finished=True)
    assert not slot.alone
    placed, _ = _place(pool, "a", "b")
    assert placed["a"] is placed["b"] is slot  # "a" shares again
    pool.keep_alone("c")
    pool.forget("c")
    placed, left = _place(pool, "c")
    assert placed["c"] is slot and left == []


def test_a_worker_that_finished_a_turn_counts_as_started_for_supervision() -> None:
    """A worker that gave an outcome has started, even if no lease check fell inside its turn:
    its next run is judged with the short claim window, not the one for a starting worker."""
    pool, _ = _pool()
    placed, _ = _place(pool, "a")
    assert [d.seen_alive for d in pool.drives()] == [False]
    pool.turn_ended("a", placed["a"], finished=True)
    _place(pool, "b")
    assert [(d.run_id, d.seen_alive) for d in pool.drives()] == [("b", True)]


def test_a_worker_whose_turn_ended_without_an_outcome_is_not_counted_as_started() -> None:
    pool, _ = _pool(max_workers=1)
    placed, _ = _place(pool, "a")
    pool.turn_ended("a", placed["a"], finished=False)
    _place(pool, "b")
    assert [(d.run_id, d.seen_alive) for d in pool.drives()] == [("b", False)]
