"""The Store actor: one Ray actor owns one store adapter, with group commit.

Workers append through this actor. It is an async actor: every call runs
on its one event loop thread, so adapter calls never contend for a lock
(a threaded actor measured ~0.7 ms more per call on the 2-core dev
machine). An append joins a queue and the commit is scheduled for the
loop's next turn: appends that arrive together, or while a commit blocks
the loop, go in one ``append_many`` transaction, so many workers' batches
cost one commit, and each caller still gets its own receipt or its own
error (one worker's FencedError never fails another's batch). With no load
an append is committed at once: batching adds no waiting.

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
import collections
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ray

from adapters import open_store, store_path
from runner import faults
from runner.errors import QueueFull, RunnerError, StoreError, StoreLocked, write_failure
from runner.events import Event, RunReopened, StoredEvent
from runner.faults import FaultPoint
from runner.metrics import METRICS
from runner.queues import Queue, QueueTicket, Waiting, check_pending_room
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

MAX_BATCH = 1024
Created = tuple[RunRecord, bool]  # a submitted run's record, and whether this call created it
OPEN_RETRY_SECONDS = 20.0


@dataclass(frozen=True, kw_only=True)
class CommitStats:
    commits: int
    batches: int
    events: int
    largest_commit: int


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


class _Pending:
    """One caller's append waiting for the commit that carries it."""

    __slots__ = ("request", "answer")

    def __init__(self, request: AppendRequest, answer: asyncio.Future[Receipt | Exception]) -> None:
        self.request = request
        self.answer = answer  # resolved with the receipt, or with the error as a value


class _Creating:
    """One caller's new runs waiting for the commit that stores them."""

    __slots__ = ("news", "answer", "queues")

    def __init__(
        self, news: list[NewRun], answer: asyncio.Future[list[Created] | Exception], queues: Sequence[Queue] = ()
    ) -> None:
        self.news = news
        self.answer = answer  # resolved with (record, created) per run, or with the error as a value
        self.queues = {q.name: q for q in queues}  # whose max_pending is checked before storing


class StoreActor:
    """Wraps a Store adapter; created by the Runner as a named, async Ray actor.

    Appends are group-committed: each call queues its requests and waits; the
    commit, scheduled once per loop turn, takes everything queued so far.
    Submits (``create_run(s)``) have a lane of their own: the same commit turn
    stores every queued submit first, in one transaction, before any batch of
    appends, so a submit never waits behind a long queue of workers' appends.

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
        self._queue: list[_Pending] = []
        self._creating: list[_Creating] = []
        self._commit_scheduled = False
        self._run_ended = Waiters()
        self._incarnation = uuid.uuid4().hex
        self._submitted: list[str] = []  # runs this actor created, from cursor _submitted_base on
        self._queued: dict[str, Waiting] = {}  # the queued ones of _submitted, with their place
        self._submitted_base = 0
        self._new_submits = asyncio.Event()
        self._commits = 0
        self._batches = 0
        self._events = 0
        self._largest = 0

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
        result = (await self._group_commit([request]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[Receipt | Exception]:
        """Several runs' appends from one caller (a worker batches the runs it drives): each
        gets its own receipt or error, in order; they commit with whatever else is queued."""
        return await self._group_commit(list(requests))

    async def append_each(self, requests: Sequence[AppendRequest]) -> list[Any]:
        """``append_batch`` with each request's answer also as a return value of its own: called
        with ``num_returns=len(requests) + 1`` (:meth:`StoreHandle.append_each`), it gives each
        caller an ObjectRef to its own receipt or error, which a task can depend on, and a last
        one to all the answers, in order."""
        answers = await self._group_commit(list(requests))
        return [*answers, answers]

    async def _group_commit(self, requests: list[AppendRequest]) -> list[Receipt | Exception]:
        loop = asyncio.get_running_loop()
        mine = [_Pending(request, loop.create_future()) for request in requests]
        self._queue.extend(mine)
        if mine:
            self._schedule_commit(loop)
        return [await pending.answer for pending in mine]

    def _schedule_commit(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._commit_scheduled:
            self._commit_scheduled = True
            loop.call_soon(self._commit_queued)  # after the calls that are ready now have queued theirs

    def _commit_queued(self) -> None:
        self._commit_scheduled = False
        self._create_queued()
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            for pending, result in zip(batch, self._commit(batch), strict=True):
                if not pending.answer.done():
                    pending.answer.set_result(result)
                if isinstance(result, Receipt):
                    self._ended_by(pending.request.run_id, pending.request.status)
                    self._count_end(pending.request.run_id, pending.request.status)

    def _commit(self, batch: list[_Pending]) -> list[Receipt | Exception]:
        requests = [pending.request for pending in batch]
        started = time.perf_counter()
        try:
            results = self._append_many(requests)
            # committed, not yet answered: a crash here loses the replies, never the events
            faults.hit_any(FaultPoint.STORE_COMMITTED, (r.run_id for r in requests))
        except Exception as exc:  # the adapter itself failed (StoreWriteFailed: a full disk): every caller learns it
            results = [exc] * len(batch)
        size = sum(len(r.events) for r in requests)
        METRICS.commit(time.perf_counter() - started, size, len(batch))
        self._commits += 1
        self._batches += len(batch)
        self._events += size
        self._largest = max(self._largest, size)
        return results

    def _append_many(self, requests: list[AppendRequest]) -> list[Receipt | Exception]:
        """The adapter's ``append_many``; an ``OSError`` on the way (the file system refused the
        write past the adapter's own translation, or the fault point says so) is StoreWriteFailed."""
        try:
            faults.hit_any(FaultPoint.STORE_COMMIT, (r.run_id for r in requests))  # e.g. a full disk
            results: list[Receipt | Exception] = self._store.append_many(requests)
        except OSError as exc:
            raise write_failure(self._path, exc) from exc
        return results

    def _count_end(self, run_id: str, status: RunStatus | None) -> None:
        """Count a run that an append ended, by workflow and status (runner.metrics)."""
        if status is None or not RunStatus(status).is_terminal:
            return
        try:
            workflow = self._store.get_run(run_id).workflow
        except Exception:  # deleted meanwhile: nothing to count it under
            return
        METRICS.ended(workflow, RunStatus(status).value)

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

    def last_event(self, run_id: str) -> StoredEvent | None:
        return self.outcome(run_id)[1]

    def open_turns(self, run_ids: Sequence[str], owner: str, ttl: float, limit: int = 5_000) -> list[Turn | Exception]:
        """Everything a worker needs to take runs over (it batches the runs it is given): a new
        lease for each, forced (the Runner gives the run to this owner), all in one commit, a
        pending run moved to running under it; then each run's record, latest snapshot and
        first events after it. Each run gets its own Turn or its own error."""
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

    def outcome(self, run_id: str) -> tuple[RunRecord, StoredEvent | None]:
        """The run's record and its last event, in one call."""
        record = self._store.get_run(run_id)
        last = next(iter(self._store.stream(run_id, max(0, record.last_seq - 1))), None)
        return record, last

    def outcomes(self, run_ids: Sequence[str]) -> list[tuple[RunRecord, StoredEvent | None]]:
        return [self.outcome(run_id) for run_id in run_ids]

    async def wait_outcomes(
        self, run_ids: Sequence[str], timeout: float | None
    ) -> list[tuple[RunRecord, StoredEvent | None]]:
        """Each run's record and last event once all have ended, or after ``timeout`` seconds
        (then some may not have ended), in one call. Waiters are registered before the first
        read, with no await in between, so a run that ends meanwhile still wakes them."""
        futures = {run_id: self._run_ended.add(run_id) for run_id in dict.fromkeys(run_ids)}
        try:
            records = self.get_runs(run_ids)
            open_runs = {record.run_id for record in records if not record.status.is_terminal}
            if open_runs and (timeout is None or timeout > 0):
                await asyncio.wait([futures[run_id] for run_id in open_runs], timeout=timeout)
            return self.outcomes(run_ids)
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
        loop = asyncio.get_running_loop()
        mine = _Creating(list(news), loop.create_future(), queues)
        self._creating.append(mine)
        self._schedule_commit(loop)
        result = await mine.answer
        if isinstance(result, Exception):
            raise result
        return result

    def _create_queued(self) -> None:
        """Store every queued submit: all callers' runs in one ``create_runs`` transaction; should
        that fail (one caller's invalid run, a full disk), each caller's runs alone, so each
        caller gets its own answer or its own error."""
        creating, self._creating = self._creating, []
        creating = self._refuse_full_queues(creating)
        if not creating:
            return
        try:
            created: list[Created] = self._store.create_runs([new for c in creating for new in c.news])
        except Exception as exc:
            if len(creating) == 1:
                _answer(creating[0], exc)
                return
            for one in creating:
                try:
                    alone: list[Created] = self._store.create_runs(one.news)
                except Exception as own:
                    _answer(one, own)
                else:
                    _answer(one, alone)
                    self._note_submitted(alone)
            return
        start = 0
        for one in creating:
            _answer(one, created[start : start + len(one.news)])
            start += len(one.news)
        self._note_submitted(created)

    def _refuse_full_queues(self, creating: list[_Creating]) -> list[_Creating]:
        """Answer QueueFull to each caller whose runs would take a queue over its max_pending
        (counting the runs of the callers before it in this commit); the callers left."""
        if not any(one.queues for one in creating):
            return creating
        stored: dict[str, int] = {}
        added: collections.Counter[str] = collections.Counter()

        def pending_in(queue: str, at_most: int) -> int:
            if queue not in stored:
                waiting = RunFilter(queue=queue, status=RunStatus.PENDING, limit=at_most)
                stored[queue] = len(self._store.list_runs(waiting))
            return stored[queue] + added[queue]

        kept: list[_Creating] = []
        for one in creating:
            tickets = [QueueTicket(queue=n.queue) if n.queue is not None else None for n in one.news]
            try:
                check_pending_room(tickets, one.queues, pending_in)
            except QueueFull as exc:
                _answer(one, exc)
                continue
            added.update(t.queue for t in tickets if t is not None)
            kept.append(one)
        return kept

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

    def get_run(self, run_id: str) -> RunRecord:
        record: RunRecord = self._store.get_run(run_id)
        return record

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        """Several runs' records in one call (RunNotFound names the first unknown one)."""
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

    def renew_lease(self, run_id: str, token: int, ttl: float) -> Lease:
        lease: Lease = self._store.renew_lease(run_id, token, ttl)
        return lease

    def release_lease(self, run_id: str, token: int) -> None:
        self._store.release_lease(run_id, token)

    def leases(self, run_ids: Sequence[str]) -> list[LeaseState]:
        result: list[LeaseState] = self._store.leases(list(run_ids))
        return result

    def save_snapshot(self, run_id: str, cursor: int, blob: bytes) -> None:
        self._store.save_snapshot(run_id, cursor, blob)

    def load_snapshot(self, run_id: str) -> Snapshot | None:
        snapshot: Snapshot | None = self._store.load_snapshot(run_id)
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
        return CommitStats(
            commits=self._commits, batches=self._batches, events=self._events, largest_commit=self._largest
        )

    def ping(self) -> str:
        return self.url

    def address(self) -> tuple[str, str]:
        """This actor's (name, namespace), for callers that look it up by name."""
        context = ray.get_runtime_context()
        return context.get_actor_name() or "", context.namespace

    def close(self) -> None:
        self._store.close()


def _answer(creating: _Creating, result: list[Created] | Exception) -> None:
    if not creating.answer.done():
        creating.answer.set_result(result)


RemoteStoreActor = ray.remote(StoreActor)
