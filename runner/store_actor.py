"""The Store actor: one Ray actor owns one store adapter, with group commit.

Workers append through this actor. Appends that arrive while a commit is
in flight wait in a queue; the next commit takes the whole queue as one
``append_many`` transaction, so many workers' batches cost one commit, and
each caller still gets its own receipt or its own error (one worker's
FencedError never fails another's batch). With no load an append is
committed at once: batching costs no added latency.

All adapter calls run on one thread, in arrival order. The actor is thin:
the contract lives in the adapter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ray

from adapters import open_store
from runner.errors import StoreError
from runner.events import Event, StoredEvent
from runner.store import AppendRequest, Lease, NewRun, Receipt, RunFilter, RunRecord, RunStatus, Signal, Snapshot

MAX_BATCH = 1024
OPEN_RETRY_SECONDS = 20.0


@dataclass(frozen=True, kw_only=True)
class CommitStats:
    commits: int
    batches: int
    events: int
    largest_commit: int


@dataclass(frozen=True, kw_only=True)
class Turn:
    """What ``open_turn`` hands a worker. ``complete``: ``events`` reach the end of the log."""

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
        except StoreError as exc:
            if "in use by another process" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class StoreActor:
    """Wraps a Store adapter; created by the Runner as a named Ray actor."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store = open_with_retry(url)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._queue: list[tuple[AppendRequest, asyncio.Future[Receipt]]] = []
        self._flushing = False
        self._commits = 0
        self._batches = 0
        self._events = 0
        self._largest = 0

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: getattr(self._store, method)(*args, **kwargs))

    # ----------------------------------------------------------- the log
    async def append(
        self, run_id: str, events: Sequence[Event], lease: int, status: RunStatus | None = None
    ) -> Receipt:
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._queue.append((AppendRequest(run_id=run_id, events=tuple(events), lease=lease, status=status), future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                requests = [request for request, _ in batch]
                try:
                    results = await self._call("append_many", requests)
                except Exception as exc:  # the adapter itself failed: every caller learns it
                    results = [exc] * len(batch)
                self._commits += 1
                self._batches += len(batch)
                size = sum(len(r.events) for r in requests)
                self._events += size
                self._largest = max(self._largest, size)
                for (_, future), result in zip(batch, results, strict=False):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._flushing = False

    async def read_events(self, run_id: str, after: int = 0, limit: int = 5_000) -> list[StoredEvent]:
        """Up to ``limit`` events after cursor ``after``, in order."""

        def read() -> list[StoredEvent]:
            out: list[StoredEvent] = []
            for stored in self._store.stream(run_id, after):
                out.append(stored)
                if len(out) >= limit:
                    break
            return out

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, read)

    async def last_event(self, run_id: str) -> StoredEvent | None:
        record: RunRecord = await self._call("get_run", run_id)
        if record.last_seq == 0:
            return None
        events = await self.read_events(run_id, record.last_seq - 1, 1)
        return events[0] if events else None

    async def open_turn(self, run_id: str, owner: str, ttl: float, limit: int = 5_000) -> Turn:
        """Everything a worker needs to take a run over, in one call: a new lease (forced: the
        Runner gives the run to this owner), the record, the latest snapshot and the first
        events after it; a pending run is moved to running under the new lease."""

        def open_() -> Turn:
            store = self._store
            record = store.get_run(run_id)
            if record.status.is_terminal:  # nothing to take over
                return Turn(lease=None, record=record, snapshot=None, events=[], complete=True)
            lease = store.acquire_lease(run_id, owner, ttl, force=True)
            if record.status is RunStatus.PENDING:
                record = store.transition(run_id, RunStatus.RUNNING, lease=lease.token)
            snapshot = store.load_snapshot(run_id)
            events: list[StoredEvent] = []
            for stored in store.stream(run_id, snapshot.cursor if snapshot else 0):
                events.append(stored)
                if len(events) >= limit:
                    break
            return Turn(lease=lease, record=record, snapshot=snapshot, events=events, complete=len(events) < limit)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, open_)

    async def outcome(self, run_id: str) -> tuple[RunRecord, StoredEvent | None]:
        """The run's record and its last event, in one call."""

        def read() -> tuple[RunRecord, StoredEvent | None]:
            record = self._store.get_run(run_id)
            last = next(iter(self._store.stream(run_id, max(0, record.last_seq - 1))), None)
            return record, last

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, read)

    async def outcomes(self, run_ids: Sequence[str]) -> list[tuple[RunRecord, StoredEvent | None]]:
        return [await self.outcome(run_id) for run_id in run_ids]

    # ------------------------------------------------------------- runs
    async def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        result: tuple[RunRecord, bool] = await self._call("create_run", new)
        return result

    async def create_runs(self, news: Sequence[NewRun]) -> list[tuple[RunRecord, bool]]:
        result: list[tuple[RunRecord, bool]] = await self._call("create_runs", list(news))
        return result

    async def get_run(self, run_id: str) -> RunRecord:
        record: RunRecord = await self._call("get_run", run_id)
        return record

    async def exists(self, run_id: str) -> bool:
        return bool(await self._call("exists", run_id))

    async def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]:
        result: list[RunRecord] = await self._call("list_runs", run_filter)
        return result

    async def delete(self, run_id: str) -> None:
        await self._call("delete", run_id)

    async def transition(self, run_id: str, to: RunStatus, lease: int | None = None) -> RunRecord:
        record: RunRecord = await self._call("transition", run_id, to, lease=lease)
        return record

    async def acquire_lease(self, run_id: str, owner: str, ttl: float, force: bool = False) -> Lease:
        lease: Lease = await self._call("acquire_lease", run_id, owner, ttl, force=force)
        return lease

    async def renew_lease(self, run_id: str, token: int, ttl: float) -> Lease:
        lease: Lease = await self._call("renew_lease", run_id, token, ttl)
        return lease

    async def release_lease(self, run_id: str, token: int) -> None:
        await self._call("release_lease", run_id, token)

    async def save_snapshot(self, run_id: str, cursor: int, blob: bytes) -> None:
        await self._call("save_snapshot", run_id, cursor, blob)

    async def load_snapshot(self, run_id: str) -> Snapshot | None:
        snapshot: Snapshot | None = await self._call("load_snapshot", run_id)
        return snapshot

    async def save_fact(self, fact_hash: str, blob: bytes) -> None:
        await self._call("save_fact", fact_hash, blob)

    async def load_fact(self, fact_hash: str) -> bytes:
        blob: bytes = await self._call("load_fact", fact_hash)
        return blob

    async def post_signal(self, run_id: str, name: str, payload: object) -> Signal:
        signal: Signal = await self._call("post_signal", run_id, name, payload)
        return signal

    async def signals(self, run_id: str, after: int = 0) -> list[Signal]:
        result: list[Signal] = await self._call("signals", run_id, after)
        return result

    async def sql(self, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        if not hasattr(self._store, "sql"):
            raise StoreError(f"the store at {self.url} does not speak SQL; use a duckdb:/// store")
        result: tuple[list[str], list[tuple[Any, ...]]] = await self._call("sql", query)
        return result

    async def stats(self) -> CommitStats:
        return CommitStats(
            commits=self._commits, batches=self._batches, events=self._events, largest_commit=self._largest
        )

    async def ping(self) -> str:
        return self.url

    async def close(self) -> None:
        await self._call("close")


RemoteStoreActor = ray.remote(StoreActor)
