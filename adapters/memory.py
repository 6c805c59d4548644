"""InMemoryStore: the store contract in a dict, for tests and throwaway runs.

Events and signal payloads are kept encoded, exactly as the DuckDB store
keeps them, so a value that would not survive the durable store fails here
too, and no caller can change stored history by mutating an object later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from runner import metadata, serialization
from runner.errors import (
    FactNotFound,
    FencedError,
    InvalidArgument,
    RunClosed,
    RunNotFound,
    ScheduleNotFound,
    StoreError,
)
from runner.events import Event, RunReopened, StoredEvent
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
    append_through_many,
    as_status,
    check_append_cursor,
    check_cursor,
    check_dedupe_key,
    check_events,
    check_fact,
    check_lease_request,
    check_reopen,
    check_run_id,
    check_schedule_name,
    check_signal_name,
    check_transition,
    check_ttl,
    check_write,
    error_summary,
    grant_lease,
    lease_state,
    signal_of_row,
    taken_over,
)

_Encoded = tuple[tuple[str, str], ...]


class InMemoryStore:
    """A thread-safe, process-local store. Everything is lost when the process ends."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._runs: dict[str, RunRecord] = {}
        self._keys: dict[str, str] = {}
        self._events: dict[str, list[tuple[str, str]]] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._facts: dict[str, bytes] = {}
        self._signals: dict[str, list[tuple[int, str, str, float, str | None]]] = {}  # id, name, payload, at, call id
        self._schedules: dict[str, Schedule] = {}  # by name, input encoded
        self._request_ids: dict[
            str, dict[int, str]
        ] = {}  # per run: the seq of an append's last event -> its request id
        self._signal_keys: dict[str, dict[str, int]] = {}  # per run: dedupe key -> signal id
        self._closed = False

    # ------------------------------------------------------------------ runs
    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        return self.create_runs([new])[0]

    def create_runs(self, news: Sequence[NewRun]) -> list[tuple[RunRecord, bool]]:
        for new in news:
            if not isinstance(new, NewRun):
                raise InvalidArgument(f"create_runs takes NewRun values, got {new!r}")
        encoded = [_encode(new.events) for new in news]
        with self._lock:
            self._check_open()
            out: list[tuple[RunRecord, bool]] = []
            for new, rows in zip(news, encoded, strict=False):
                existing = self._runs.get(new.run_id) or self._runs.get(self._keys.get(new.idempotency_key or "", ""))
                if existing is not None:
                    out.append((existing, False))
                    continue
                now = self._clock()
                record = new.pending_record(now, len(rows))
                self._runs[new.run_id] = record
                if new.idempotency_key:
                    self._keys[new.idempotency_key] = new.run_id
                self._events[new.run_id] = list(rows)
                self._signals[new.run_id] = []
                self._request_ids[new.run_id] = {}
                self._signal_keys[new.run_id] = {}
                out.append((record, True))
            return out

    def get_run(self, run_id: str) -> RunRecord:
        check_run_id(run_id)
        with self._lock:
            self._check_open()
            return self._record(run_id)

    def exists(self, run_id: str) -> bool:
        check_run_id(run_id)
        with self._lock:
            self._check_open()
            return run_id in self._runs

    def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]:
        f = run_filter or RunFilter()
        if not isinstance(f, RunFilter):
            raise InvalidArgument(f"list_runs takes a RunFilter, got {f!r}")
        with self._lock:
            self._check_open()
            records = [
                r
                for r in self._runs.values()
                if (f.workflow is None or r.workflow == f.workflow)
                and (not f.statuses or r.status in f.statuses)
                and (f.created_after is None or r.created_at >= f.created_after)
                and (f.created_before is None or r.created_at < f.created_before)
                and (not f.metadata or metadata.matches(r.metadata, f.metadata))
                and (f.queue is None or r.queue == f.queue)
                and (f.started_after is None or (r.started_at is not None and r.started_at >= f.started_after))
            ]
        records.sort(key=lambda r: (r.created_at, r.run_id), reverse=f.newest_first)
        return records[: f.limit]

    def delete(self, run_id: str) -> None:
        check_run_id(run_id)
        with self._lock:
            self._check_open()
            record = self._record(run_id)
            del self._runs[run_id]
            if record.idempotency_key:
                self._keys.pop(record.idempotency_key, None)
            self._events.pop(run_id, None)
            self._snapshots.pop(run_id, None)
            self._signals.pop(run_id, None)
            self._request_ids.pop(run_id, None)
            self._signal_keys.pop(run_id, None)

    def transition(self, run_id: str, to: RunStatus, *, lease: int) -> RunRecord:
        check_run_id(run_id)
        target = as_status(to)
        with self._lock:
            self._check_open()
            record = self._record(run_id)
            check_write(record, lease, None)
            check_transition(record, target)  # moving to the same status is refused too
            record = replace(record, status=target, updated_at=self._clock())
            self._runs[run_id] = record
            return record

    def reopen(self, run_id: str, event: RunReopened, *, after_seq: int, request_id: str) -> RunRecord:
        check_run_id(run_id)
        rows = _encode((event,)) if isinstance(event, RunReopened) else ()
        with self._lock:
            self._check_open()
            record = self._record(run_id)
            request_ids = self._request_ids[run_id]
            reopened = check_reopen(record, event, after_seq, request_id, request_ids.get, self._clock())
            if reopened is None:  # committed before: a retry
                return record
            self._events[run_id].extend(rows)
            request_ids[reopened.last_seq] = request_id
            self._runs[run_id] = reopened
            return reopened

    # ---------------------------------------------------------------- leases
    def acquire_lease(self, run_id: str, owner: str, ttl: float, *, force: bool = False) -> Lease:
        check_run_id(run_id)
        with self._lock:
            self._check_open()
            record = self._record(run_id)
            lease = grant_lease(record, owner, ttl, self._clock(), force)
            self._runs[run_id] = replace(
                record, lease=lease.token, lease_owner=owner, lease_expires_at=lease.expires_at
            )
            return lease

    def take_over(self, run_ids: Sequence[str], owner: str, ttl: float) -> list[RunRecord | Exception]:
        check_lease_request(owner, ttl)
        results: list[RunRecord | Exception] = []
        with self._lock:
            self._check_open()
            now = self._clock()
            for run_id in run_ids:
                try:
                    check_run_id(run_id)
                    record = taken_over(self._record(run_id), owner, ttl, now)
                except (StoreError, InvalidArgument) as exc:
                    results.append(exc)
                    continue
                self._runs[run_id] = record
                results.append(record)
        return results

    def renew_lease(self, run_id: str, token: int, ttl: float) -> Lease:
        check_run_id(run_id)
        check_ttl(ttl)
        with self._lock:
            self._check_open()
            record = self._record(run_id)
            check_write(record, token, None)
            expires_at = self._clock() + ttl
            self._runs[run_id] = replace(record, lease_expires_at=expires_at)
            return Lease(run_id=run_id, token=token, owner=record.lease_owner or "", expires_at=expires_at)

    def release_lease(self, run_id: str, token: int) -> None:
        check_run_id(run_id)
        with self._lock:
            self._check_open()
            record = self._record(run_id)
            if token != record.lease:
                raise FencedError(run_id, token, record.lease)
            self._runs[run_id] = replace(record, lease_owner=None, lease_expires_at=None)

    def leases(self, run_ids: Sequence[str]) -> list[LeaseState]:
        for run_id in run_ids:
            check_run_id(run_id)
        with self._lock:
            self._check_open()
            return [lease_state(self._runs[run_id]) for run_id in run_ids if run_id in self._runs]

    # --------------------------------------------------------------- the log
    def append(
        self,
        run_id: str,
        events: Sequence[Event],
        lease: int,
        *,
        status: RunStatus | None = None,
        after_seq: int | None = None,
        request_id: str | None = None,
    ) -> Receipt:
        return append_through_many(
            self.append_many, run_id, events, lease, status=status, after_seq=after_seq, request_id=request_id
        )

    def append_many(self, requests: Sequence[AppendRequest]) -> list[Receipt | Exception]:
        prepared: list[tuple[AppendRequest, _Encoded] | Exception] = []
        for request in requests:
            try:
                check_run_id(request.run_id)
                prepared.append((request, _encode(check_events(request.events))))
            except Exception as exc:  # a bad batch fails alone
                prepared.append(exc)
        results: list[Receipt | Exception] = []
        with self._lock:
            self._check_open()
            for item in prepared:
                if isinstance(item, Exception):
                    results.append(item)
                    continue
                request, rows = item
                try:
                    record = self._record(request.run_id)
                    earlier = check_append_cursor(request, record, self._request_ids[request.run_id].get)
                    if earlier is not None:  # a retry of a committed append: nothing to write
                        results.append(earlier)
                        continue
                    check_write(record, request.lease, request.status, request.events)
                except (StoreError, InvalidArgument) as exc:
                    results.append(exc)
                    continue
                first = record.last_seq + 1
                self._events[request.run_id].extend(rows)
                if request.request_id is not None:
                    self._request_ids[request.run_id][record.last_seq + len(rows)] = request.request_id
                error = error_summary(request.events)
                self._runs[request.run_id] = replace(
                    record,
                    last_seq=record.last_seq + len(rows),
                    status=request.status or record.status,
                    updated_at=self._clock(),
                    error=error if error is not None else record.error,
                )
                results.append(Receipt(run_id=request.run_id, first_seq=first, last_seq=first + len(rows) - 1))
        return results

    def stream(self, run_id: str, after: int = 0) -> Iterator[StoredEvent]:
        check_run_id(run_id)
        check_cursor(after)
        with self._lock:
            self._check_open()
            self._record(run_id)
            rows = self._events[run_id][after:]
        return (
            StoredEvent(run_id=run_id, seq=after + 1 + offset, event=serialization.decode_event(kind, payload))
            for offset, (kind, payload) in enumerate(rows)
        )

    # ---------------------------------------------------- snapshots and facts
    def save_snapshot(self, run_id: str, cursor: int, blob: bytes) -> None:
        check_run_id(run_id)
        check_cursor(cursor, "cursor")
        if not isinstance(blob, bytes):
            raise InvalidArgument("snapshot blob must be bytes")
        with self._lock:
            self._check_open()
            record = self._record(run_id)
            if cursor > record.last_seq:
                raise InvalidArgument(f"snapshot cursor {cursor} is past the run's last event {record.last_seq}")
            current = self._snapshots.get(run_id)
            if current is None or cursor >= current.cursor:
                self._snapshots[run_id] = Snapshot(run_id=run_id, cursor=cursor, blob=blob)

    def load_snapshot(self, run_id: str) -> Snapshot | None:
        check_run_id(run_id)
        with self._lock:
            self._check_open()
            self._record(run_id)
            return self._snapshots.get(run_id)

    def save_fact(self, fact_hash: str, blob: bytes) -> None:
        check_fact(fact_hash, blob)
        with self._lock:
            self._check_open()
            self._facts.setdefault(fact_hash, blob)

    def load_fact(self, fact_hash: str) -> bytes:
        check_fact(fact_hash)
        with self._lock:
            self._check_open()
            try:
                return self._facts[fact_hash]
            except KeyError:
                raise FactNotFound(fact_hash) from None

    # --------------------------------------------------------------- signals
    def post_signal(
        self, run_id: str, name: str, payload: object, *, dedupe_key: str | None = None, call_id: str | None = None
    ) -> Signal:
        check_run_id(run_id)
        check_signal_name(name)
        check_dedupe_key(dedupe_key)
        check_dedupe_key(call_id, "call_id")
        encoded = serialization.json_value(payload)
        with self._lock:
            self._check_open()
            record = self._record(run_id)
            inbox = self._signals[run_id]
            keys = self._signal_keys[run_id]
            if dedupe_key is not None and dedupe_key in keys:  # sent before: the stored one
                return signal_of_row(run_id, inbox[keys[dedupe_key] - 1])
            if record.status.is_terminal:
                raise RunClosed(run_id, record.status.value)
            signal_id = len(inbox) + 1
            sent_at = self._clock()
            inbox.append((signal_id, name, encoded, sent_at, call_id))
            if dedupe_key is not None:
                keys[dedupe_key] = signal_id
        return Signal(run_id=run_id, signal_id=signal_id, name=name, payload=payload, sent_at=sent_at, call_id=call_id)

    def signals(self, run_id: str, after: int = 0) -> list[Signal]:
        check_run_id(run_id)
        check_cursor(after)
        with self._lock:
            self._check_open()
            self._record(run_id)
            rows = [row for row in self._signals[run_id] if row[0] > after]
        return [signal_of_row(run_id, row) for row in rows]

    # -------------------------------------------------------------- schedules
    # kept with their input encoded, as the DuckDB store keeps them
    def save_schedule(self, schedule: Schedule) -> Schedule:
        encoded = replace(schedule, input=serialization.json_value(schedule.input))
        with self._lock:
            self._check_open()
            self._schedules[schedule.name] = encoded
        return schedule

    def list_schedules(self) -> list[Schedule]:
        with self._lock:
            self._check_open()
            rows = [self._schedules[name] for name in sorted(self._schedules)]
        return [replace(row, input=serialization.from_json_value(row.input)) for row in rows]

    def delete_schedule(self, name: str) -> None:
        check_schedule_name(name)
        with self._lock:
            self._check_open()
            if self._schedules.pop(name, None) is None:
                raise ScheduleNotFound(name)

    def mark_tick(self, name: str, tick: float) -> Schedule:
        check_schedule_name(name)
        with self._lock:
            self._check_open()
            rows = self._schedules
            row = rows.get(name)
            if row is None:
                raise ScheduleNotFound(name)
            if row.last_tick is None or tick > row.last_tick:
                row = rows[name] = replace(row, last_tick=tick)
        return replace(row, input=serialization.from_json_value(row.input))

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -------------------------------------------------------------- helpers
    def _record(self, run_id: str) -> RunRecord:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFound(run_id) from None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this store was closed; open a new one with adapters.open_store(url)")


def _encode(events: Sequence[Event]) -> _Encoded:
    return tuple(serialization.encode_event(e) for e in events)
