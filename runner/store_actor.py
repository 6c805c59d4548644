"""The Store actor: one Ray actor owns one store adapter, with group commit.

Workers append through this actor. It is an async actor: calls arrive on
its one event loop (a threaded actor measured ~0.7 ms more per call on the
2-core dev machine). Appends and submits queue there and are committed by
one writer thread, a group at a time (runner/group_commit.py): while a
group's commit syncs the file, the loop goes on receiving calls, and the
next group takes all that arrived meanwhile, so many workers' batches cost
one commit, and each caller still gets its own receipt or its own error
(one worker's FencedError never fails another's batch). With no load an
append is committed at once: batching adds no waiting. The hot reads and
writes (takeovers, results, snapshots, leases) go through the same writer
when it is busy, so they never block the loop on the adapter's lock.

The actor is thin: the contract lives in the adapter.

The Runner creates it with ``max_restarts=-1, max_task_retries=-1``: when its
process dies, Ray starts it again under the same name (the constructor reopens
the file, waiting for the dead process's lock) and sends the calls that were in
flight again. So every mutating call must be safe to repeat: appends carry
their cursor and a request id (a committed one is answered with its receipt),
signals a dedupe key; the other writes are idempotent as they are.

A store that cannot be opened (a typo in its path, a file that is not a
database) does not kill the actor in its constructor: the actor stays up and
answers every call with the adapter's error, so its Runner can report it as a
value and be removed instead of leaving a dead actor behind.

A commit the disk refuses (full, read-only, no permission) answers every
caller in it with :class:`~runner.errors.StoreWriteFailed`: the adapter
translates its driver's error, and a raw ``OSError`` that reaches the commit is
translated here. Nothing of that commit is stored; the actor lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ray

from adapters import open_store, store_path
from runner.errors import RunnerError, StoreError, StoreLocked
from runner.events import Event, RunReopened, StoredEvent
from runner.group_commit import MAX_BATCH, CommitStats, Created, GroupCommitter
from runner.metrics import METRICS
from runner.queues import Queue, QueueTicket, Waiting
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
    lease_of,
)
from runner.waiters import Waiters

__all__ = ["MAX_BATCH", "CommitStats", "Created", "RemoteStoreActor", "StoreActor", "Submitted", "Turn"]

OPEN_RETRY_SECONDS = 20.0


@dataclass(frozen=True, kw_only=True)
class Submitted:
    """What ``submitted_since`` answers: the runs stored since cursor ``after`` of this actor's
    ``incarnation`` (it starts again at 0 when the actor restarts), and the cursor after them."""

    incarnation: str
    cursor: int
    run_ids: tuple[str, ...]
    queued: tuple[Waiting, ...] = ()  # those of ``run_ids`` submitted to a named queue, with their place


@dataclass(frozen=True, kw_only=True)
class Turn:
    """What ``open_turns`` hands a worker for one run. ``complete``: ``events`` reach the end of the log."""

    lease: Lease | None  # None: the run has ended, there is nothing to take over
    record: RunRecord
    snapshot: Snapshot | None
    events: list[StoredEvent]
    complete: bool


def open_with_retry(url: str, deadline_seconds: float = OPEN_RETRY_SECONDS) -> Any:
    """Open the store, waiting while a dying process still holds the file's lock."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            return open_store(url)
        except StoreLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _file_of(url: str) -> str:
    """The store's file, or its URL when it has none (``memory://``) or the URL is not valid."""
    try:
        path = store_path(url)
    except RunnerError:
        return url
    return str(path) if path is not None else url


class _Unopened:
    """Stands for a store that could not be opened: every call raises the error it failed with."""

    def __init__(self, error: RunnerError) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        raise self.error

    def close(self) -> None:
        pass


class StoreActor:
    """Wraps a Store adapter; created by the Runner as a named, async Ray actor.

    Appends are group-committed (runner/group_commit.py): each call queues its
    requests and waits; the next group, committed on the writer thread, takes
    everything queued so far. Submits (``create_run(s)``) have a lane of their
    own: each group stores every queued submit first, in one transaction,
    before any batch of appends, so a submit never waits behind a long queue
    of workers' appends.

    Callers waiting for runs to end (``wait_outcomes``) are answered when a
    commit ends them: every status change is written through this actor."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._path = _file_of(url)  # what a StoreWriteFailed names
        try:
            self._store: Any = open_with_retry(url)
        except RunnerError as exc:
            self._store = _Unopened(exc)
        except Exception as exc:  # not the adapter's own error: still a value, never a dead actor
            self._store = _Unopened(StoreError(f"the store {url} could not be opened: {type(exc).__name__}: {exc}"))
        self._committer = GroupCommitter(
            lambda: self._store, self._path, on_created=self._note_submitted, on_appended=self._appended
        )
        self._run_ended = Waiters()
        self._incarnation = uuid.uuid4().hex
        self._submitted: list[str] = []  # runs this actor created, from cursor _submitted_base on
        self._queued: dict[str, Waiting] = {}  # the queued ones of _submitted, with their place
        self._submitted_base = 0
        self._new_submits = asyncio.Event()

    # ----------------------------------------------------------- the log
    def opened(self) -> None:
        """Nothing if the store is open; else the error that kept it from opening (e.g. StoreCorrupt)."""
        if isinstance(self._store, _Unopened):
            raise self._store.error

    async def append(
        self,
        run_id: str,
        events: Sequence[Event],
        lease: int,
        status: RunStatus | None = None,
        after_seq: int | None = None,
        request_id: str | None = None,
    ) -> Receipt:
        request = AppendRequest(
            run_id=run_id, events=tuple(events), lease=lease, status=status, after_seq=after_seq, request_id=request_id
        )
        result = (await self._committer.append([request]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[Receipt | Exception]:
        """Several runs' appends from one caller (a worker batches the runs it drives): each
        gets its own receipt or error, in order; they commit with whatever else is queued."""
        return await self._committer.append(list(requests))

    async def append_each(self, requests: Sequence[AppendRequest]) -> list[Any]:
        """``append_batch`` with each request's answer also as a return value of its own: called
        with ``num_returns=len(requests) + 1`` (:meth:`StoreHandle.append_each`), it gives each
        caller an ObjectRef to its own receipt or error, which a task can depend on, and a last
        one to all the answers, in order."""
        answers = await self._committer.append(list(requests))
        return [*answers, answers]

    def _appended(self, request: AppendRequest) -> None:
        """A commit stored ``request``: if its status ends the run, answer whoever waits for it,
        and count the end (runner.metrics) once the run's workflow is read."""
        self._ended_by(request.run_id, request.status)
        if request.status is not None and RunStatus(request.status).is_terminal:
            asyncio.get_running_loop().create_task(self._count_end(request.run_id, RunStatus(request.status)))

    async def _count_end(self, run_id: str, status: RunStatus) -> None:
        """Count a run that an append ended, by workflow and status."""
        try:
            record: RunRecord = await self._committer.call(self._store.get_run, run_id, writes=False)
        except Exception:  # deleted meanwhile: nothing to count it under
            return
        METRICS.ended(record.workflow, status.value)

    def _ended_by(self, run_id: str, status: RunStatus | None) -> None:
        """A write moved ``run_id`` to ``status``: if that ends it, answer whoever waits for it."""
        if status is not None and RunStatus(status).is_terminal:
            self._run_ended.wake(run_id)

    def read_events(self, run_id: str, after: int = 0, limit: int = 5_000) -> list[StoredEvent]:
        """Up to ``limit`` events after cursor ``after``, in order."""
        out: list[StoredEvent] = []
        for stored in self._store.stream(run_id, after):
            out.append(stored)
            if len(out) >= limit:
                break
        return out

    async def last_event(self, run_id: str) -> StoredEvent | None:
        return (await self.outcome(run_id))[1]

    async def open_turns(
        self, run_ids: Sequence[str], owner: str, ttl: float, limit: int = 5_000
    ) -> list[Turn | Exception]:
        """Everything a worker needs to take runs over (it batches the runs it is given): a new
        lease for each, forced (the Runner gives the run to this owner), all in one commit, a
        pending run moved to running under it; then each run's record, latest snapshot and
        first events after it. Each run gets its own Turn or its own error."""
        return await self._committer.call(self._open_turns, run_ids, owner, ttl, limit, writes=True)

    def _open_turns(self, run_ids: Sequence[str], owner: str, ttl: float, limit: int) -> list[Turn | Exception]:
        turns: list[Turn | Exception] = []
        for run_id, taken in zip(run_ids, self._store.take_over(list(run_ids), owner, ttl), strict=True):
            if isinstance(taken, Exception):
                turns.append(taken)
            elif taken.status.is_terminal:  # nothing to take over
                turns.append(Turn(lease=None, record=taken, snapshot=None, events=[], complete=True))
            else:
                try:
                    snapshot = self._store.load_snapshot(run_id)
                    events = self.read_events(run_id, snapshot.cursor if snapshot else 0, limit)
                except Exception as exc:
                    turns.append(exc)
                    continue
                turns.append(
                    Turn(
                        lease=lease_of(taken),
                        record=taken,
                        snapshot=snapshot,
                        events=events,
                        complete=len(events) < limit,
                    )
                )
        return turns

    async def outcome(self, run_id: str) -> tuple[RunRecord, StoredEvent | None]:
        """The run's record and its last event, in one call."""
        return (await self.outcomes([run_id]))[0]

    async def outcomes(self, run_ids: Sequence[str]) -> list[tuple[RunRecord, StoredEvent | None]]:
        return await self._committer.call(self._outcomes, run_ids, writes=False)

    def _outcomes(self, run_ids: Sequence[str]) -> list[tuple[RunRecord, StoredEvent | None]]:
        out: list[tuple[RunRecord, StoredEvent | None]] = []
        for run_id in run_ids:
            record = self._store.get_run(run_id)
            out.append((record, next(iter(self._store.stream(run_id, max(0, record.last_seq - 1))), None)))
        return out

    async def wait_outcomes(
        self, run_ids: Sequence[str], timeout: float | None
    ) -> list[tuple[RunRecord, StoredEvent | None]]:
        """Each run's record and last event once all have ended, or after ``timeout`` seconds
        (then some may not have ended), in one call. Waiters are registered before the first
        read, with no await in between, so a run that ends meanwhile still wakes them."""
        futures = {run_id: self._run_ended.add(run_id) for run_id in dict.fromkeys(run_ids)}
        try:
            records = await self.get_runs(run_ids)
            open_runs = {record.run_id for record in records if not record.status.is_terminal}
            if open_runs and (timeout is None or timeout > 0):
                await asyncio.wait([futures[run_id] for run_id in open_runs], timeout=timeout)
            return await self.outcomes(run_ids)
        finally:
            for run_id, future in futures.items():
                self._run_ended.remove(run_id, future)

    # ------------------------------------------------------------- runs
    async def create_run(self, new: NewRun) -> Created:
        """Store a new run (durable when this returns); an existing run with its id or key is
        returned instead, with ``False``. Committed in the submit lane (see the class)."""
        return (await self.create_runs([new]))[0]

    async def create_runs(self, news: Sequence[NewRun], queues: Sequence[Queue] = ()) -> list[Created]:
        """Several new runs, in one commit with whatever other submits are queued. ``queues``:
        QueueFull, and nothing stored, if the runs would take one over its ``max_pending``."""
        return await self._committer.create(list(news), queues)

    def _note_submitted(self, created: list[Created]) -> None:
        fresh = [record.run_id for record, new in created if new]
        METRICS.submitted(record.workflow for record, new in created if new)
        for record, new in created:
            if new and record.queue is not None:
                ticket = QueueTicket(queue=record.queue, key=record.queue_key, priority=record.priority)
                self._queued[record.run_id] = Waiting(run_id=record.run_id, ticket=ticket, created_at=record.created_at)
        if fresh:
            self._submitted.extend(fresh)
            self._new_submits.set()

    async def submitted_since(self, incarnation: str | None, after: int, timeout: float) -> Submitted:
        """The runs created since cursor ``after`` (this actor's own count), once there is one or
        after ``timeout`` seconds: how the Runner learns of every submit without being called.
        ``incarnation`` other than this actor's (it restarted; None: the first call): every run
        it still holds, and the caller reads the rest from the store. Runs before ``after`` are
        forgotten: they have been handed over (one follower: the Runner)."""
        if incarnation != self._incarnation:
            after = self._submitted_base
        if after > self._submitted_base:
            drop = min(after, self._submitted_base + len(self._submitted)) - self._submitted_base
            for run_id in self._submitted[:drop]:
                self._queued.pop(run_id, None)
            del self._submitted[:drop]
            self._submitted_base += drop
        if self._submitted_base + len(self._submitted) <= after and timeout > 0:
            self._new_submits.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._new_submits.wait(), timeout)
        start = max(0, after - self._submitted_base)
        run_ids = tuple(self._submitted[start:])
        return Submitted(
            incarnation=self._incarnation,
            cursor=self._submitted_base + len(self._submitted),
            run_ids=run_ids,
            queued=tuple(self._queued[r] for r in run_ids if r in self._queued),
        )

    async def get_run(self, run_id: str) -> RunRecord:
        return (await self.get_runs([run_id]))[0]

    async def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        """Several runs' records in one call (RunNotFound names the first unknown one)."""
        return await self._committer.call(self._get_runs, run_ids, writes=False)

    def _get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        return [self._store.get_run(run_id) for run_id in run_ids]

    def exists(self, run_id: str) -> bool:
        return bool(self._store.exists(run_id))

    def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]:
        result: list[RunRecord] = self._store.list_runs(run_filter)
        return result

    def delete(self, run_id: str) -> None:
        self._store.delete(run_id)
        self._run_ended.wake(run_id)  # whoever waits for it learns it is gone (RunNotFound)

    def transition(self, run_id: str, to: RunStatus, lease: int) -> RunRecord:
        record: RunRecord = self._store.transition(run_id, to, lease=lease)
        self._ended_by(run_id, record.status)
        return record

    def reopen(self, run_id: str, event: RunReopened, after_seq: int, request_id: str) -> RunRecord:
        record: RunRecord = self._store.reopen(run_id, event, after_seq=after_seq, request_id=request_id)
        return record

    def acquire_lease(self, run_id: str, owner: str, ttl: float, force: bool = False) -> Lease:
        lease: Lease = self._store.acquire_lease(run_id, owner, ttl, force=force)
        return lease

    async def renew_lease(self, run_id: str, token: int, ttl: float) -> Lease:
        lease: Lease = await self._committer.call(self._store.renew_lease, run_id, token, ttl, writes=True)
        return lease

    def release_lease(self, run_id: str, token: int) -> None:
        self._store.release_lease(run_id, token)

    async def leases(self, run_ids: Sequence[str]) -> list[LeaseState]:
        result: list[LeaseState] = await self._committer.call(self._store.leases, list(run_ids), writes=False)
        return result

    async def save_snapshot(self, run_id: str, cursor: int, blob: bytes) -> None:
        await self._committer.call(self._store.save_snapshot, run_id, cursor, blob, writes=True)

    async def load_snapshot(self, run_id: str) -> Snapshot | None:
        snapshot: Snapshot | None = await self._committer.call(self._store.load_snapshot, run_id, writes=False)
        return snapshot

    def save_fact(self, fact_hash: str, blob: bytes) -> None:
        self._store.save_fact(fact_hash, blob)

    def load_fact(self, fact_hash: str) -> bytes:
        blob: bytes = self._store.load_fact(fact_hash)
        return blob

    def post_signal(
        self, run_id: str, name: str, payload: object, dedupe_key: str | None = None, call_id: str | None = None
    ) -> Signal:
        signal: Signal = self._store.post_signal(run_id, name, payload, dedupe_key=dedupe_key, call_id=call_id)
        return signal

    def signals(self, run_id: str, after: int = 0) -> list[Signal]:
        result: list[Signal] = self._store.signals(run_id, after)
        return result

    # schedules (runner.cron, runner.scheduler)
    def save_schedule(self, schedule: Schedule) -> Schedule:
        saved: Schedule = self._store.save_schedule(schedule)
        return saved

    def list_schedules(self) -> list[Schedule]:
        schedules: list[Schedule] = self._store.list_schedules()
        return schedules

    def delete_schedule(self, name: str) -> None:
        self._store.delete_schedule(name)

    def mark_tick(self, name: str, tick: float) -> Schedule:
        marked: Schedule = self._store.mark_tick(name, tick)
        return marked

    def sql(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        if not hasattr(self._store, "sql"):
            raise StoreError(f"the store at {self.url} does not speak SQL; use a duckdb:/// store")
        result: tuple[list[str], list[tuple[Any, ...]]] = self._store.sql(query, params)
        return result

    def stats(self) -> CommitStats:
        return self._committer.stats()

    def ping(self) -> str:
        return self.url

    def address(self) -> tuple[str, str]:
        """This actor's (name, namespace), for callers that look it up by name."""
        context = ray.get_runtime_context()
        return context.get_actor_name() or "", context.namespace

    def close(self) -> None:
        self._store.close()


RemoteStoreActor = ray.remote(StoreActor)
