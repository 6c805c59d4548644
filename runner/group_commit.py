"""Group commit for the Store actor: callers queue on the actor's event loop, one writer thread commits.

Appends and submits queue on the event loop. One group at a time goes to a dedicated writer
thread, which stores every queued submit (one ``create_runs`` transaction) and then every
queued append batch (``append_many`` transactions of up to ``MAX_BATCH`` batches). The
adapter's driver releases the GIL while it writes and syncs the file, so the loop goes on
receiving calls meanwhile; when the group's commit returns, the next group takes everything
that arrived in between. A commit bound by the disk sync then costs one sync per group,
however many callers joined it, and no caller waits behind a sync to be *received*.

Guarantees kept: a caller is answered only after the commit that carries its request
returned (durable before ack); each caller gets its own receipt, record or error (one
caller's FencedError or invalid run never fails another's); batches of one run keep the
order they arrived in; a commit the disk refuses answers every caller in it with
``StoreWriteFailed`` and stores nothing.

Other adapter calls go through :meth:`GroupCommitter.call`: a write always runs on the writer
thread (its sync does not hold up the loop); a read runs at once on the loop when the writer
is idle (no hop), else on the writer thread after what is queued there, so it never blocks
the loop waiting for the adapter's lock. Either way the adapter is only ever used by one
thread at a time.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import ray

from runner import faults
from runner.errors import QueueFull, write_failure
from runner.faults import FaultPoint
from runner.metrics import METRICS
from runner.queues import Queue, QueueTicket, check_pending_room
from runner.store import AppendRequest, NewRun, Receipt, RunFilter, RunRecord, RunStatus

MAX_BATCH = 1024
# How long a thread that wants the GIL waits before the holder is asked to let go (Python's
# default: 5 ms). The writer thread takes the GIL back after each DuckDB call; with the loop
# thread busy receiving calls, at the default it waits up to 5 ms each time.
GIL_SWITCH_SECONDS = 0.0005
Created = tuple[RunRecord, bool]  # a submitted run's record, and whether this call created it
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class CommitStats:
    commits: int
    batches: int
    events: int
    largest_commit: int


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


@dataclass(frozen=True, kw_only=True)
class _GroupResult:
    """What the writer thread hands back to the loop: each submit's and each append's answer, in order."""

    created: list[list[Created] | Exception]
    appended: list[Receipt | Exception]


class GroupCommitter:
    """Queues callers' submits and appends and commits them on one writer thread, a group at a time.

    ``store`` gives the adapter (read at each commit: the actor may swap it); ``path`` names the
    store in a ``StoreWriteFailed``. ``on_created`` and ``on_appended`` run on the loop after a
    commit, before its callers are answered: how the actor learns of new runs and ended ones."""

    def __init__(
        self,
        store: Callable[[], Any],
        path: str,
        *,
        on_created: Callable[[list[Created]], None],
        on_appended: Callable[[AppendRequest], None],
    ) -> None:
        if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:
            sys.setswitchinterval(GIL_SWITCH_SECONDS)  # the Store actor's own process: nobody else's setting
        self._store = store
        self._path = path
        self._on_created = on_created
        self._on_appended = on_appended
        self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._appends: list[_Pending] = []
        self._creating: list[_Creating] = []
        self._scheduled = False
        self._group_in_flight = False
        self._jobs = 0  # calls handed to the writer thread and not yet seen back on the loop
        self._commits = 0
        self._batches = 0
        self._events = 0
        self._largest = 0

    # ------------------------------------------------------------ the loop's side
    async def append(self, requests: list[AppendRequest]) -> list[Receipt | Exception]:
        """Each request's receipt or error, once the commit that carries it returned."""
        loop = asyncio.get_running_loop()
        mine = [_Pending(request, loop.create_future()) for request in requests]
        self._appends.extend(mine)
        if mine:
            self._schedule(loop)
        return [await pending.answer for pending in mine]

    async def create(self, news: list[NewRun], queues: Sequence[Queue] = ()) -> list[Created]:
        """Store new runs in the next group's submit transaction (stored before any append of it);
        ``queues``: QueueFull, and nothing stored, if the runs would take one over its max_pending."""
        loop = asyncio.get_running_loop()
        mine = _Creating(news, loop.create_future(), queues)
        self._creating.append(mine)
        self._schedule(loop)
        result = await mine.answer
        if isinstance(result, Exception):
            raise result
        return result

    async def call(self, fn: Callable[..., T], *args: Any, writes: bool) -> T:
        """``fn(*args)`` on the adapter: on the writer thread if it ``writes`` or the writer is
        busy, else at once on the loop."""
        if not writes and self._jobs == 0:
            return fn(*args)
        self._jobs += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._writer, lambda: fn(*args))
        finally:
            self._jobs -= 1

    def stats(self) -> CommitStats:
        return CommitStats(
            commits=self._commits, batches=self._batches, events=self._events, largest_commit=self._largest
        )

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and not self._group_in_flight:
            self._scheduled = True
            loop.call_soon(self._start_group, loop)  # after the calls that are ready now have queued theirs

    def _start_group(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if self._group_in_flight or not (self._appends or self._creating):
            return
        creating, self._creating = self._creating, []
        appends, self._appends = self._appends, []
        self._group_in_flight = True
        self._jobs += 1
        work = loop.run_in_executor(self._writer, self._write_group, creating, appends)
        work.add_done_callback(lambda done: self._finish_group(loop, creating, appends, done))

    def _finish_group(
        self,
        loop: asyncio.AbstractEventLoop,
        creating: list[_Creating],
        appends: list[_Pending],
        done: asyncio.Future[_GroupResult],
    ) -> None:
        """On the loop: answer every caller of the group, then start the next group."""
        self._jobs -= 1
        self._group_in_flight = False
        try:
            result = done.result()
        except BaseException as exc:  # the writer itself failed: every caller learns it
            failure = exc if isinstance(exc, Exception) else RuntimeError(f"the store's writer stopped: {exc!r}")
            result = _GroupResult(created=[failure] * len(creating), appended=[failure] * len(appends))
        for one, answer in zip(creating, result.created, strict=True):
            if not isinstance(answer, Exception):
                self._on_created(answer)
            if not one.answer.done():
                one.answer.set_result(answer)
        for pending, receipt in zip(appends, result.appended, strict=True):
            if isinstance(receipt, Receipt):
                self._on_appended(pending.request)
            if not pending.answer.done():
                pending.answer.set_result(receipt)
        if self._appends or self._creating:
            self._schedule(loop)

    # ---------------------------------------------------------- the writer thread
    def _write_group(self, creating: list[_Creating], appends: list[_Pending]) -> _GroupResult:
        created = self._create(creating) if creating else []
        appended: list[Receipt | Exception] = []
        for start in range(0, len(appends), MAX_BATCH):
            appended.extend(self._commit([pending.request for pending in appends[start : start + MAX_BATCH]]))
        return _GroupResult(created=created, appended=appended)

    def _create(self, creating: list[_Creating]) -> list[list[Created] | Exception]:
        """Every queued submit: all callers' runs in one ``create_runs`` transaction; should that
        fail (one caller's invalid run, a full disk), each caller's runs alone, so each caller
        gets its own answer or its own error."""
        refused = self._full_queues(creating)
        answers: list[list[Created] | Exception] = [refused.get(i, []) for i in range(len(creating))]
        kept = [i for i in range(len(creating)) if i not in refused]
        if not kept:
            return answers
        store = self._store()
        try:
            created: list[Created] = store.create_runs([new for i in kept for new in creating[i].news])
        except Exception as exc:
            if len(kept) == 1:
                answers[kept[0]] = exc
                return answers
            for i in kept:
                try:
                    answers[i] = store.create_runs(creating[i].news)
                except Exception as own:
                    answers[i] = own
            return answers
        start = 0
        for i in kept:
            answers[i] = created[start : start + len(creating[i].news)]
            start += len(creating[i].news)
        return answers

    def _full_queues(self, creating: list[_Creating]) -> dict[int, Exception]:
        """QueueFull for each caller whose runs would take a queue over its max_pending
        (counting the runs of the callers before it in this group), by caller index."""
        if not any(one.queues for one in creating):
            return {}
        stored: dict[str, int] = {}
        added: collections.Counter[str] = collections.Counter()

        def pending_in(queue: str, at_most: int) -> int:
            if queue not in stored:
                waiting = RunFilter(queue=queue, status=RunStatus.PENDING, limit=at_most)
                stored[queue] = len(self._store().list_runs(waiting))
            return stored[queue] + added[queue]

        refused: dict[int, Exception] = {}
        for i, one in enumerate(creating):
            tickets = [QueueTicket(queue=n.queue) if n.queue is not None else None for n in one.news]
            try:
                check_pending_room(tickets, one.queues, pending_in)
            except QueueFull as exc:
                refused[i] = exc
                continue
            added.update(t.queue for t in tickets if t is not None)
        return refused

    def _commit(self, requests: list[AppendRequest]) -> list[Receipt | Exception]:
        started = time.perf_counter()
        try:
            results = self._append_many(requests)
            # committed, not yet answered: a crash here loses the replies, never the events
            faults.hit_any(FaultPoint.STORE_COMMITTED, (r.run_id for r in requests))
        except Exception as exc:  # the adapter itself failed (StoreWriteFailed: a full disk): every caller learns it
            results = [exc] * len(requests)
        size = sum(len(r.events) for r in requests)
        METRICS.commit(time.perf_counter() - started, size, len(requests))
        self._commits += 1
        self._batches += len(requests)
        self._events += size
        self._largest = max(self._largest, size)
        return results

    def _append_many(self, requests: list[AppendRequest]) -> list[Receipt | Exception]:
        """The adapter's ``append_many``; an ``OSError`` on the way (the file system refused the
        write past the adapter's own translation, or the fault point says so) is StoreWriteFailed."""
        try:
            faults.hit_any(FaultPoint.STORE_COMMIT, (r.run_id for r in requests))  # e.g. a full disk
            results: list[Receipt | Exception] = self._store().append_many(requests)
        except OSError as exc:
            raise write_failure(self._path, exc) from exc
        return results
