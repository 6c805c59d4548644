"""Which workers the Runner treats as lost though they have not died (pure: no Ray, no I/O).

A worker renews the lease of every run it drives every ``lease_ttl / 3``
seconds. A worker that stops answering without dying (SIGSTOP, a network
partition, native code that holds the GIL) stops renewing, and Ray reports
nothing: its ``execute`` calls simply never return. So the Runner looks at the
leases of the runs its workers drive every :func:`period` seconds (one light
Store call, ``Store.leases``) and :func:`judge` decides:

- a lease the worker holds that expired more than :data:`MARGIN` seconds ago:
  the worker is lost;
- a run given to the worker that it has not taken over (the lease is not the
  worker's) within ``lease_ttl + MARGIN`` seconds (:data:`WORKER_START`
  seconds for a worker never seen alive, which may still be starting): the
  worker is probed, a call it must answer within :data:`ANSWER_TIMEOUT`
  seconds; one that does not answer is lost.

No lease is judged while the store itself was not answering promptly until a
moment ago (``store_steady_for``): a worker cannot renew through a store that
is down, so it gets a full renewal interval after the store is back.

So a frozen worker's runs are taken over about ``lease_ttl + MARGIN +
period`` seconds after its last renewal at worst, plus the restart backoff
and a new worker's start. The Runner kills a lost worker and restarts each of
its runs as after a worker death; their new workers take new leases, so a
zombie the kill did not reach is fenced by the store when it wakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runner.store import LeaseState

MARGIN = 0.5  # seconds a lease may be past its expiry before its holder is lost (clock skew, a late renewal)
WORKER_START = 60.0  # seconds a worker never seen alive gets to take over its first run
ANSWER_TIMEOUT = 2.0  # seconds the Runner waits for a worker to answer a probe, a poke or a request


def period(lease_ttl: float) -> float:
    """How often (seconds) the Runner looks at the leases: ``min(1, lease_ttl / 4)``."""
    return min(1.0, lease_ttl / 4)


def steady_needed(lease_ttl: float) -> float:
    """How long (seconds) the store must have answered promptly before leases are judged:
    one renewal interval and the margin."""
    return lease_ttl / 3 + MARGIN


@dataclass(frozen=True, kw_only=True)
class Drive:
    """One run a worker drives now, as the Runner's pool knows it."""

    worker_id: str
    run_id: str
    since: float  # unix time the run was given to the worker
    seen_alive: bool  # the worker has shown it lives (an answer, or a lease it took)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What to do about the workers: ``lost`` (worker id -> why), ``probe`` (ask whether they
    answer), ``alive`` (they hold a valid lease: they have started and renew)."""

    lost: dict[str, str]
    probe: frozenset[str]
    alive: frozenset[str]


def judge(
    drives: Sequence[Drive],
    leases: Mapping[str, LeaseState],
    *,
    now: float,
    lease_ttl: float,
    store_steady_for: float,
) -> Verdict:
    """Judge the workers of ``drives`` at unix time ``now`` from the runs' ``leases``."""
    lost: dict[str, str] = {}
    probe: set[str] = set()
    alive: set[str] = set()
    judging = store_steady_for >= steady_needed(lease_ttl)
    for drive in drives:
        lease = leases.get(drive.run_id)
        if lease is not None and lease.owner == drive.worker_id:
            expired_for = lease.expired_for(now)
            if expired_for is None:
                alive.add(drive.worker_id)
            elif expired_for > MARGIN and judging and drive.worker_id not in lost:
                lost[drive.worker_id] = (
                    f"its worker stopped answering: it held run {drive.run_id!r}'s lease, which expired "
                    f"{expired_for:.1f}s ago without being renewed (a frozen or stopped process, a network "
                    "partition, or native code holding the GIL); the worker was killed"
                )
            continue
        claim_within = lease_ttl + MARGIN if drive.seen_alive else max(lease_ttl + MARGIN, WORKER_START)
        if judging and now - drive.since > claim_within:
            probe.add(drive.worker_id)
    alive -= set(lost)
    return Verdict(lost=lost, probe=frozenset(probe - set(lost)), alive=frozenset(alive))


def unanswered(worker_id: str, seconds: float) -> str:
    """Why a worker that did not answer a probe is lost."""
    return (
        f"its worker stopped answering: it did not take the run over, nor answer within {seconds:g}s "
        f"(a frozen or stopped process, or a network partition); the worker ({worker_id}) was killed"
    )
