"""The supervision decision (pure): from the leases of the runs the workers drive and the time,
which workers are lost, which are to be probed, which showed they live."""

from __future__ import annotations

import collections

import pytest

from runner import supervision
from runner.pool import WorkerPool
from runner.store import LeaseState
from runner.supervision import MARGIN, WORKER_START, Drive, judge

TTL = 3.0
T0 = 1_700_000_000.0
STEADY = 3600.0  # the store has answered promptly for an hour


def _drive(worker: str, run: str, since: float = T0, seen_alive: bool = True) -> Drive:
    return Drive(worker_id=worker, run_id=run, since=since, seen_alive=seen_alive)


def _lease(run: str, owner: str | None, expires_at: float | None, token: int = 1) -> LeaseState:
    return LeaseState(run_id=run, token=token, owner=owner, expires_at=expires_at)


def _leases(*leases: LeaseState) -> dict[str, LeaseState]:
    return {lease.run_id: lease for lease in leases}


def test_a_worker_whose_lease_is_valid_is_alive() -> None:
    verdict = judge(
        [_drive("w1", "a"), _drive("w1", "b")],
        _leases(_lease("a", "w1", T0 + 10 + TTL), _lease("b", "w1", T0 + 10 + 1)),
        now=T0 + 10,
        lease_ttl=TTL,
        store_steady_for=STEADY,
    )
    assert verdict.lost == {} and verdict.probe == frozenset()
    assert verdict.alive == {"w1"}


@pytest.mark.parametrize(
    ("past_expiry", "lost"),
    [(0.0, False), (MARGIN, False), (MARGIN + 0.01, True), (60.0, True)],
)
def test_a_worker_is_lost_once_a_lease_it_holds_is_past_expiry_by_more_than_the_margin(
    past_expiry: float, lost: bool
) -> None:
    expires = T0 + TTL
    verdict = judge(
        [_drive("w1", "a"), _drive("w2", "b")],
        _leases(_lease("a", "w1", expires), _lease("b", "w2", expires + 100)),
        now=expires + past_expiry,
        lease_ttl=TTL,
        store_steady_for=STEADY,
    )
    assert set(verdict.lost) == ({"w1"} if lost else set())
    assert "w2" in verdict.alive and "w2" not in verdict.lost
    if lost:
        assert "'a'" in verdict.lost["w1"] and "expired" in verdict.lost["w1"]
        assert "w1" not in verdict.alive


def test_one_expired_lease_loses_the_worker_even_if_another_is_valid() -> None:
    now = T0 + 10
    verdict = judge(
        [_drive("w1", "a"), _drive("w1", "b")],
        _leases(_lease("a", "w1", now + 1), _lease("b", "w1", now - 5)),
        now=now,
        lease_ttl=TTL,
        store_steady_for=STEADY,
    )
    assert set(verdict.lost) == {"w1"} and verdict.alive == frozenset()


def test_no_lease_is_judged_until_the_store_has_answered_for_a_renewal_interval() -> None:
    """After a store outage every lease has expired; the workers get one interval to renew."""
    now = T0 + 100
    drives = [_drive("w1", "a"), _drive("w2", "b", since=T0)]
    leases = _leases(_lease("a", "w1", now - 50), _lease("b", "w0", None))
    needed = supervision.steady_needed(TTL)
    assert needed == pytest.approx(TTL / 3 + MARGIN)
    early = judge(drives, leases, now=now, lease_ttl=TTL, store_steady_for=needed - 0.01)
    assert early.lost == {} and early.probe == frozenset()
    later = judge(drives, leases, now=now, lease_ttl=TTL, store_steady_for=needed)
    assert set(later.lost) == {"w1"} and later.probe == {"w2"}


def test_a_run_not_taken_over_in_time_gets_its_worker_probed() -> None:
    """The worker was given the run but the lease is still someone else's (or free)."""
    drives = [
        _drive("w1", "a", since=T0),  # seen alive: ttl + margin to take the run over
        _drive("w2", "b", since=T0, seen_alive=False),  # may still be starting
        _drive("w3", "c", since=T0),  # took it over
    ]
    leases = _leases(_lease("a", None, None), _lease("b", "previous", T0 - 1), _lease("c", "w3", T0 + 100))
    in_time = judge(drives, leases, now=T0 + TTL + MARGIN, lease_ttl=TTL, store_steady_for=STEADY)
    assert in_time.probe == frozenset() and in_time.lost == {}
    late = judge(drives, leases, now=T0 + TTL + MARGIN + 0.1, lease_ttl=TTL, store_steady_for=STEADY)
    assert late.probe == {"w1"} and late.lost == {} and late.alive == {"w3"}
    starting = judge(drives, leases, now=T0 + WORKER_START + 0.1, lease_ttl=TTL, store_steady_for=STEADY)
    assert starting.probe == {"w1", "w2"}


def test_a_run_the_store_no_longer_knows_is_treated_as_not_taken_over() -> None:
    verdict = judge([_drive("w1", "gone")], {}, now=T0 + 60, lease_ttl=TTL, store_steady_for=STEADY)
    assert verdict.probe == {"w1"} and verdict.lost == {}


def test_a_lost_worker_is_not_probed_as_well() -> None:
    now = T0 + 60
    verdict = judge(
        [_drive("w1", "a"), _drive("w1", "b")],
        _leases(_lease("a", "w1", now - 10), _lease("b", None, None)),
        now=now,
        lease_ttl=TTL,
        store_steady_for=STEADY,
    )
    assert set(verdict.lost) == {"w1"} and verdict.probe == frozenset()


def test_period_is_a_quarter_lease_at_most_a_second() -> None:
    assert supervision.period(3.0) == 0.75
    assert supervision.period(30.0) == 1.0


def test_lease_state_expired_for() -> None:
    assert _lease("a", "w1", T0).expired_for(T0 - 1) is None
    assert _lease("a", "w1", T0).expired_for(T0 + 2) == 2
    assert _lease("a", None, None).expired_for(T0) is None


def test_the_pool_reports_what_each_worker_drives_and_since_when() -> None:
    now = [T0]
    pool = WorkerPool(
        max_workers=2,
        runs_per_worker=2,
        spawn=lambda worker_id: f"handle-{worker_id}",  # type: ignore[arg-type, return-value]
        kill=lambda handle: None,
        clock=lambda: now[0],
    )
    placed = dict(pool.place(collections.deque(["a", "b"])))
    now[0] += 5
    placed.update(pool.place(collections.deque(["c"])))
    placed["a"].seen_alive = True
    drives = {d.run_id: d for d in pool.drives()}
    assert set(drives) == {"a", "b", "c"}
    assert drives["a"] == Drive(worker_id=placed["a"].worker_id, run_id="a", since=T0, seen_alive=True)
    assert drives["c"].since == T0 + 5
    assert pool.slot_by_id(placed["b"].worker_id) is placed["b"]
    pool.turn_ended("a", placed["a"], finished=True)
    assert {d.run_id for d in pool.drives()} == {"b", "c"}
    pool.retire(placed["b"])
    assert pool.slot_by_id(placed["b"].worker_id) is None
