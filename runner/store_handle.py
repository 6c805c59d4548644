"""A typed front for the Store actor's Ray handle.

Every call a worker, the Runner, a step task or a client makes to the Store
actor goes through :class:`StoreHandle`, so mypy checks the method names,
the arguments and what comes back. Each method sends the call and returns
the answer's ``ObjectRef``: ``await`` it inside an actor, ``ray.get`` it
(through the caller's own error translation) in a driver.

The handle pickles with its actor handle, so it can be passed to workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runner.events import Event, RunReopened, StoredEvent
from runner.queues import Queue
from runner.store import (
    AppendRequest,
    Lease,
    LeaseState,
    NewRun,
    Receipt,
    RunFilter,
    RunRecord,
    RunStatus,
    Schedule,
    Signal,
    Snapshot,
)

if TYPE_CHECKING:
    from ray import ObjectRef

    from runner.store_actor import CommitStats, Submitted, Turn


class StoreHandle:
    """The Store actor's calls, typed. ``actor``: the Ray actor handle."""

    __slots__ = ("actor",)

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def __reduce__(self) -> tuple[type[StoreHandle], tuple[Any]]:
        return (StoreHandle, (self.actor,))

    # ----------------------------------------------------------- the log
    def append(
        self,
        run_id: str,
        events: Sequence[Event],
        lease: int,
        status: RunStatus | None = None,
        after_seq: int | None = None,
        request_id: str | None = None,
    ) -> ObjectRef[Receipt]:
        return self.actor.append.remote(run_id, list(events), lease, status, after_seq, request_id)

    def append_batch(self, requests: Sequence[AppendRequest]) -> ObjectRef[list[Receipt | Exception]]:
        return self.actor.append_batch.remote(list(requests))

    def append_each(
        self, requests: Sequence[AppendRequest]
    ) -> tuple[list[ObjectRef[Receipt | Exception]], ObjectRef[list[Receipt | Exception]]]:
        """One ObjectRef per request, to its own receipt or error (a value, not raised), and
        one to all the answers in order (the one to await for the call's return)."""
        refs = self.actor.append_each.options(num_returns=len(requests) + 1).remote(list(requests))
        return list(refs[:-1]), refs[-1]

    def read_events(self, run_id: str, after: int = 0, limit: int = 5_000) -> ObjectRef[list[StoredEvent]]:
        return self.actor.read_events.remote(run_id, after, limit)

    def last_event(self, run_id: str) -> ObjectRef[StoredEvent | None]:
        return self.actor.last_event.remote(run_id)

    def open_turns(
        self, run_ids: Sequence[str], owner: str, ttl: float, limit: int = 5_000
    ) -> ObjectRef[list[Turn | Exception]]:
        return self.actor.open_turns.remote(list(run_ids), owner, ttl, limit)

    def outcome(self, run_id: str) -> ObjectRef[tuple[RunRecord, StoredEvent | None]]:
        return self.actor.outcome.remote(run_id)

    def outcomes(self, run_ids: Sequence[str]) -> ObjectRef[list[tuple[RunRecord, StoredEvent | None]]]:
        return self.actor.outcomes.remote(list(run_ids))

    def wait_outcomes(
        self, run_ids: Sequence[str], timeout: float | None
    ) -> ObjectRef[list[tuple[RunRecord, StoredEvent | None]]]:
        return self.actor.wait_outcomes.remote(list(run_ids), timeout)

    # ------------------------------------------------------------- runs
    def create_run(self, new: NewRun) -> ObjectRef[tuple[RunRecord, bool]]:
        return self.actor.create_run.remote(new)

    def create_runs(
        self, news: Sequence[NewRun], queues: Sequence[Queue] = ()
    ) -> ObjectRef[list[tuple[RunRecord, bool]]]:
        if queues:  # the queues whose max_pending the Store actor checks before storing
            return self.actor.create_runs.remote(list(news), tuple(queues))
        return self.actor.create_runs.remote(list(news))

    def submitted_since(self, incarnation: str | None, after: int, timeout: float) -> ObjectRef[Submitted]:
        return self.actor.submitted_since.remote(incarnation, after, timeout)

    def get_run(self, run_id: str) -> ObjectRef[RunRecord]:
        return self.actor.get_run.remote(run_id)

    def get_runs(self, run_ids: Sequence[str]) -> ObjectRef[list[RunRecord]]:
        return self.actor.get_runs.remote(list(run_ids))

    def exists(self, run_id: str) -> ObjectRef[bool]:
        return self.actor.exists.remote(run_id)

    def list_runs(self, run_filter: RunFilter | None = None) -> ObjectRef[list[RunRecord]]:
        return self.actor.list_runs.remote(run_filter)

    def delete(self, run_id: str) -> ObjectRef[None]:
        return self.actor.delete.remote(run_id)

    def transition(self, run_id: str, to: RunStatus, lease: int) -> ObjectRef[RunRecord]:
        return self.actor.transition.remote(run_id, to, lease)

    def reopen(self, run_id: str, event: RunReopened, after_seq: int, request_id: str) -> ObjectRef[RunRecord]:
        return self.actor.reopen.remote(run_id, event, after_seq, request_id)

    def acquire_lease(self, run_id: str, owner: str, ttl: float, force: bool = False) -> ObjectRef[Lease]:
        return self.actor.acquire_lease.remote(run_id, owner, ttl, force)

    def renew_lease(self, run_id: str, token: int, ttl: float) -> ObjectRef[Lease]:
        return self.actor.renew_lease.remote(run_id, token, ttl)

    def release_lease(self, run_id: str, token: int) -> ObjectRef[None]:
        return self.actor.release_lease.remote(run_id, token)

    def leases(self, run_ids: Sequence[str]) -> ObjectRef[list[LeaseState]]:
        return self.actor.leases.remote(list(run_ids))

    # ------------------------------------------------ snapshots and facts
    def save_snapshot(self, run_id: str, cursor: int, blob: bytes) -> ObjectRef[None]:
        return self.actor.save_snapshot.remote(run_id, cursor, blob)

    def load_snapshot(self, run_id: str) -> ObjectRef[Snapshot | None]:
        return self.actor.load_snapshot.remote(run_id)

    def save_fact(self, fact_hash: str, blob: bytes) -> ObjectRef[None]:
        return self.actor.save_fact.remote(fact_hash, blob)

    def load_fact(self, fact_hash: str) -> ObjectRef[bytes]:
        return self.actor.load_fact.remote(fact_hash)

    # ------------------------------------------------------------ signals
    def post_signal(
        self, run_id: str, name: str, payload: object, dedupe_key: str | None = None, call_id: str | None = None
    ) -> ObjectRef[Signal]:
        return self.actor.post_signal.remote(run_id, name, payload, dedupe_key, call_id)

    def signals(self, run_id: str, after: int = 0) -> ObjectRef[list[Signal]]:
        return self.actor.signals.remote(run_id, after)

    # ---------------------------------------------------------- schedules
    def save_schedule(self, schedule: Schedule) -> ObjectRef[Schedule]:
        return self.actor.save_schedule.remote(schedule)

    def list_schedules(self) -> ObjectRef[list[Schedule]]:
        return self.actor.list_schedules.remote()

    def delete_schedule(self, name: str) -> ObjectRef[None]:
        return self.actor.delete_schedule.remote(name)

    def mark_tick(self, name: str, tick: float) -> ObjectRef[Schedule]:
        return self.actor.mark_tick.remote(name, tick)

    # -------------------------------------------------------------- misc
    def sql(self, query: str, params: Sequence[Any] = ()) -> ObjectRef[tuple[list[str], list[tuple[Any, ...]]]]:
        return self.actor.sql.remote(query, params)

    def stats(self) -> ObjectRef[CommitStats]:
        return self.actor.stats.remote()

    def opened(self) -> ObjectRef[None]:
        return self.actor.opened.remote()

    def ping(self) -> ObjectRef[str]:
        return self.actor.ping.remote()

    def address(self) -> ObjectRef[tuple[str, str]]:
        return self.actor.address.remote()

    def close(self) -> ObjectRef[None]:
        return self.actor.close.remote()
