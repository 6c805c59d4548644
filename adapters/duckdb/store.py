"""DuckDBStore: the store contract over one DuckDB file.

Each method checks its arguments, runs its statements in one transaction
(or one self-committing write), then updates what the store remembers
(caches.py) once the commit succeeded. Reads consult the caches first.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from adapters.duckdb import schedules, schema, statements, users_sql
from adapters.duckdb.caches import CacheLimits, RecordCache, TailCache
from adapters.duckdb.connection import Connection
from runner import serialization
from runner.errors import FactNotFound, FencedError, InvalidArgument, RunClosed, RunNotFound, StoreError
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


class _StoredAlready(Exception):
    """A run inserted without a lookup was stored already: the transaction is rolled back."""


class DuckDBStore:
    """The durable store: one DuckDB file, opened by one process at a time."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        cache_limits: CacheLimits | None = None,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._clock = clock
        limits = cache_limits or CacheLimits()
        self._records = RecordCache(limits.ended_records, enabled=not read_only)
        self._tails = TailCache(limits.tail_events)
        self._db = Connection(self.path, read_only=read_only)
        try:
            if not read_only:
                with self._db.transaction() as con:
                    schema.migrate(con, self._clock())
                    schema.repair_cursors(con)
            with self._db.read() as con:
                version = schema.version_of(con)
            schema.check_version(self.path, version)
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------- lifecycle
    def close(self) -> None:
        with self._db.lock:
            if not self._db.closed:
                with contextlib.suppress(StoreError):
                    self._write_stale_rows()
                self._db.close()
            self._records.clear()
            self._tails.clear()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sql(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only query over the store's tables: (column names, rows); the CLI's ``runner sql``.

        Anything else (writes, files, ATTACH, settings, several statements) is refused with
        InvalidArgument, by DuckDB's own controls (see users_sql.py)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("sql needs a query string")
        if not self.read_only:
            self._write_stale_rows()
        with self._db.users_query() as cursor:
            return users_sql.run(cursor, query, params)

    # ------------------------------------------------------------------ runs
    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        return self.create_runs([new])[0]

    def create_runs(self, news: Sequence[NewRun]) -> list[tuple[RunRecord, bool]]:
        """Store the runs that are new; a run whose id or idempotency key is stored already is
        answered with the stored record (and False). New runs, the usual case, are inserted
        without looking first: the file's keys refuse a duplicate, and then the batch is
        stored again after a lookup."""
        for new in news:
            if not isinstance(new, NewRun):
                raise InvalidArgument(f"create_runs takes NewRun values, got {new!r}")
        encoded = [[serialization.encode_event(e) for e in new.events] for new in news]
        with self._db.lock:
            out: list[tuple[RunRecord, bool]] | None = None
            if self._may_all_be_new(news):
                out = self._insert_runs(news, encoded, None)
            if out is None:
                out = self._insert_runs(news, encoded, self._existing)
            assert out is not None  # with a lookup, every run is inserted or found
            for (record, created), new in zip(out, news, strict=True):
                if created:
                    self._records.put(record)
                    self._records.note_no_snapshot(record.run_id)
                    self._tails.remember(record.run_id, 1, new.events)
        return out

    def _may_all_be_new(self, news: Sequence[NewRun]) -> bool:
        """False when ``news`` repeat an id or a key among themselves, or one is a run this store
        remembers: then they are looked up before inserting."""
        ids = {new.run_id for new in news}
        keys = [new.idempotency_key for new in news if new.idempotency_key]
        return len(ids) == len(news) and len(set(keys)) == len(keys) and not any(self._records.get(i) for i in ids)

    def _insert_runs(
        self,
        news: Sequence[NewRun],
        encoded: list[list[tuple[str, str]]],
        lookup: Callable[
            [duckdb.DuckDBPyConnection, Sequence[NewRun]], tuple[dict[str, RunRecord], dict[str, RunRecord]]
        ]
        | None,
    ) -> list[tuple[RunRecord, bool]] | None:
        """Insert the runs ``lookup`` does not find stored, in one transaction. ``lookup`` None:
        insert them all without looking; None if one was stored already (nothing is written)."""
        out: list[tuple[RunRecord, bool]] = []
        created: list[RunRecord] = []
        event_rows = statements.EventRows()
        try:
            with self._db.transaction() as con:
                now = self._clock()
                by_id, by_key = lookup(con, news) if lookup is not None else ({}, {})
                for new, rows in zip(news, encoded, strict=True):
                    existing = by_id.get(new.run_id) or (
                        by_key.get(new.idempotency_key) if new.idempotency_key else None
                    )
                    if existing is not None:
                        out.append((existing, False))
                        continue
                    record = new.pending_record(now, len(rows))
                    event_rows.add(new.run_id, 1, new.events, rows)
                    by_id[new.run_id] = record
                    if new.idempotency_key:
                        by_key[new.idempotency_key] = record
                    created.append(record)
                    out.append((record, True))
                try:
                    statements.insert_runs(con, created)
                except duckdb.ConstraintException:
                    if lookup is not None:
                        raise
                    raise _StoredAlready from None
                event_rows.insert(con)
        except _StoredAlready:
            return None
        return out

    def _existing(
        self, con: duckdb.DuckDBPyConnection, news: Sequence[NewRun]
    ) -> tuple[dict[str, RunRecord], dict[str, RunRecord]]:
        """Stored runs that share an id or an idempotency key with ``news``, in one query."""
        ids = [new.run_id for new in news]
        keys = [new.idempotency_key for new in news if new.idempotency_key]
        rows = statements.select_existing(con, ids, keys)
        records = [self._records.get(row[0]) or statements.record_of(row) for row in rows]
        by_key = {r.idempotency_key: r for r in records if r.idempotency_key}
        return {r.run_id: r for r in records}, by_key

    def get_run(self, run_id: str) -> RunRecord:
        check_run_id(run_id)
        with self._db.read() as con:
            return self._record(con, run_id)

    def exists(self, run_id: str) -> bool:
        check_run_id(run_id)
        with self._db.read() as con:
            if self._records.get(run_id) is not None:
                return True
            return bool(statements.scalar(con, "SELECT count(*) FROM runs WHERE run_id = ?", [run_id]))

    def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]:
        f = run_filter or RunFilter()
        if not isinstance(f, RunFilter):
            raise InvalidArgument(f"list_runs takes a RunFilter, got {f!r}")
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if f.workflow is not None:
            where.append("workflow = ?")
            params.append(f.workflow)
        if f.statuses:
            where.append(f"status IN ({', '.join('?' for _ in f.statuses)})")
            params.extend(s.value for s in f.statuses)
        if f.created_after is not None:
            where.append("created_at >= ?")
            params.append(f.created_after)
        if f.created_before is not None:
            where.append("created_at < ?")
            params.append(f.created_before)
        if f.metadata:
            metadata_where, metadata_params = statements.metadata_conditions(f.metadata)
            where += metadata_where
            params += metadata_params
        if f.queue is not None:
            where.append("queue = ?")
            params.append(f.queue)
        if f.started_after is not None:
            where.append("started_at >= ?")
            params.append(f.started_after)
        order = "DESC" if f.newest_first else "ASC"
        query = (
            f"SELECT {statements.RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} "
            f"ORDER BY created_at {order}, run_id {order} LIMIT {int(f.limit)}"
        )
        if not self.read_only:
            self._write_stale_rows()  # rows are ordered and filtered in SQL, so they must be current
        with self._db.read() as con:
            rows = con.execute(query, params).fetchall()
        return [statements.record_of(row) for row in rows]

    def delete(self, run_id: str) -> None:
        check_run_id(run_id)
        with self._db.lock:
            with self._db.transaction() as con:
                self._record(con, run_id)
                for table in ("events", "snapshots", "signals", "runs"):
                    con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            self._records.forget(run_id)
            self._tails.forget(run_id)

    def transition(self, run_id: str, to: RunStatus, *, lease: int) -> RunRecord:
        check_run_id(run_id)
        target = as_status(to)
        with self._db.lock:
            with self._db.transaction() as con:
                record = self._record(con, run_id)
                check_write(record, lease, None)
                check_transition(record, target)  # moving to the same status is refused too
                now = self._clock()
                con.execute(
                    "UPDATE runs SET status = ?, updated_at = ?, last_seq = ? WHERE run_id = ?",
                    [target.value, now, record.last_seq, run_id],
                )
            self._records.mark_written(run_id)  # the row is current: an ended run's record may leave the cache
            return self._records.put(replace(record, status=target, updated_at=now))

    def reopen(self, run_id: str, event: RunReopened, *, after_seq: int, request_id: str) -> RunRecord:
        check_run_id(run_id)
        rows = [serialization.encode_event(event)] if isinstance(event, RunReopened) else []
        with self._db.lock:
            with self._db.transaction() as con:
                record = self._record(con, run_id)
                recorded = functools.partial(self._request_id, con, run_id)
                reopened = check_reopen(record, event, after_seq, request_id, recorded, self._clock())
                if reopened is None:  # committed before: a retry
                    return record
                event_rows = statements.EventRows()
                event_rows.add(run_id, reopened.last_seq, (event,), rows, request_id)
                event_rows.insert(con)
                statements.update_runs(con, [reopened], statements.CURSOR_AND_STATUS + statements.LEASE)
            self._records.put(reopened)
            self._records.mark_written(run_id)
            self._tails.remember(run_id, reopened.last_seq, (event,))
        return reopened

    # ---------------------------------------------------------------- leases
    def acquire_lease(self, run_id: str, owner: str, ttl: float, *, force: bool = False) -> Lease:
        check_run_id(run_id)
        with self._db.lock:
            with self._db.transaction() as con:
                record = self._record(con, run_id)
                lease = grant_lease(record, owner, ttl, self._clock(), force)
                con.execute(
                    "UPDATE runs SET lease = ?, lease_owner = ?, lease_expires_at = ? WHERE run_id = ?",
                    [lease.token, owner, lease.expires_at, run_id],
                )
            self._records.put(replace(record, lease=lease.token, lease_owner=owner, lease_expires_at=lease.expires_at))
        return lease

    def take_over(self, run_ids: Sequence[str], owner: str, ttl: float) -> list[RunRecord | Exception]:
        check_lease_request(owner, ttl)
        results: list[RunRecord | Exception] = []
        changed: list[RunRecord] = []
        with self._db.lock:
            with self._db.transaction(one_write=True) as con:  # one UPDATE for all runs
                now = self._clock()
                for run_id in run_ids:
                    try:
                        check_run_id(run_id)
                        record = self._record(con, run_id)
                    except (StoreError, InvalidArgument) as exc:
                        results.append(exc)
                        continue
                    new = taken_over(record, owner, ttl, now)
                    if new is not record:
                        changed.append(new)
                    results.append(new)
                statements.update_runs(con, changed, statements.LEASE_AND_STATUS)
            for record in changed:
                self._records.put(record)
        return results

    def renew_lease(self, run_id: str, token: int, ttl: float) -> Lease:
        check_run_id(run_id)
        check_ttl(ttl)
        with self._db.lock:
            with self._db.transaction() as con:
                record = self._record(con, run_id)
                check_write(record, token, None)
                expires_at = self._clock() + ttl
                con.execute("UPDATE runs SET lease_expires_at = ? WHERE run_id = ?", [expires_at, run_id])
            self._records.put(replace(record, lease_expires_at=expires_at))
        return Lease(run_id=run_id, token=token, owner=record.lease_owner or "", expires_at=expires_at)

    def release_lease(self, run_id: str, token: int) -> None:
        check_run_id(run_id)
        with self._db.lock:
            with self._db.transaction() as con:
                record = self._record(con, run_id)
                if token != record.lease:
                    raise FencedError(run_id, token, record.lease)
                con.execute("UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE run_id = ?", [run_id])
            self._records.put(replace(record, lease_owner=None, lease_expires_at=None))

    def leases(self, run_ids: Sequence[str]) -> list[LeaseState]:
        """From the record cache, without SQL (every run that has not ended is there once read);
        the rows of runs not cached yet are read once, and cached."""
        for run_id in run_ids:
            check_run_id(run_id)
        with self._db.lock:  # a closed store has no cache: its read raises StoreError
            records = {run_id: self._records.get(run_id) for run_id in run_ids}
            missing = [run_id for run_id, record in records.items() if record is None]
            if missing:
                with self._db.read() as con:
                    for run_id in missing:
                        with contextlib.suppress(RunNotFound):
                            records[run_id] = self._record(con, run_id)
        return [lease_state(record) for record in (records[run_id] for run_id in run_ids) if record is not None]

    # ---------------------------------------------------------------- the log
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
        """All accepted batches in one transaction; a rejected one gets its own error."""
        # each accepted request with its encoded rows and the error text it records (if any)
        prepared: list[tuple[AppendRequest, list[tuple[str, str]], str | None] | Exception] = []
        for request in requests:
            try:
                check_run_id(request.run_id)
                rows = [serialization.encode_event(e) for e in check_events(request.events)]
                prepared.append((request, rows, error_summary(request.events)))
            except Exception as exc:
                prepared.append(exc)
        results: list[Receipt | Exception] = []
        # Only batches that change a run's status or error rewrite its row here; other rows
        # catch up lazily. Without row updates the commit is one INSERT, committed on its own.
        changes_rows = any(
            not isinstance(item, Exception) and (item[0].status is not None or item[2] is not None) for item in prepared
        )
        with self._db.lock:
            try:
                with self._db.transaction(one_write=not changes_rows) as con:
                    now = self._clock()
                    pending: dict[str, RunRecord] = {}
                    rewrite: set[str] = set()
                    written: list[tuple[str, int, Sequence[Event]]] = []
                    event_rows = statements.EventRows()
                    for item in prepared:
                        if isinstance(item, Exception):
                            results.append(item)
                            continue
                        request, rows, error = item
                        try:
                            record = pending.get(request.run_id) or self._record(con, request.run_id)
                            earlier = check_append_cursor(
                                request, record, functools.partial(self._request_id, con, request.run_id)
                            )
                            if earlier is not None:  # a retry of a committed append: nothing to write
                                results.append(earlier)
                                continue
                            check_write(record, request.lease, request.status, request.events)
                        except (StoreError, InvalidArgument) as exc:
                            results.append(exc)
                            continue
                        first = record.last_seq + 1
                        event_rows.add(request.run_id, first, request.events, rows, request.request_id)
                        written.append((request.run_id, first, request.events))
                        if request.status is not None or error is not None:
                            rewrite.add(request.run_id)
                        pending[request.run_id] = replace(
                            record,
                            last_seq=record.last_seq + len(rows),
                            status=request.status or record.status,
                            updated_at=now,
                            error=error if error is not None else record.error,
                        )
                        results.append(Receipt(run_id=request.run_id, first_seq=first, last_seq=first + len(rows) - 1))
                    event_rows.insert(con)
                    statements.update_runs(con, [record for run_id, record in pending.items() if run_id in rewrite])
            except StoreError as exc:
                if not results and not prepared:
                    raise
                if self._db.closed:  # closed: every caller is told so
                    raise
                # the commit failed: no batch was stored, every caller gets an answer
                stored_none: list[Receipt | Exception] = [exc if isinstance(r, Receipt) else r for r in results]
                return stored_none + [exc] * (len(prepared) - len(results))
            for run_id, record in pending.items():
                self._records.put(record)
                if run_id in rewrite:
                    self._records.mark_written(run_id)
                else:
                    self._records.mark_stale(run_id)
            for run_id, first, events in written:
                self._tails.remember(run_id, first, events)
        return results

    def stream(self, run_id: str, after: int = 0) -> Iterator[StoredEvent]:
        check_run_id(run_id)
        check_cursor(after)
        with self._db.read() as con:
            self._record(con, run_id)
            cached = self._tails.after(run_id, after)
            if cached is not None:
                return iter(cached)
        return self._stream(run_id, after)

    def _stream(self, run_id: str, after: int) -> Iterator[StoredEvent]:
        """The run's events after ``after``, read from the file in chunks."""
        cursor = after
        while True:
            with self._db.read() as con:
                rows = statements.execute(
                    con, statements.SELECT_EVENTS, [run_id, cursor, statements.STREAM_CHUNK]
                ).fetchall()
            for seq, kind, payload in rows:
                yield StoredEvent(run_id=run_id, seq=seq, event=serialization.decode_event(kind, payload))
            if len(rows) < statements.STREAM_CHUNK:
                return
            cursor = rows[-1][0]

    # ------------------------------------------------------ snapshots and facts
    def save_snapshot(self, run_id: str, cursor: int, blob: bytes) -> None:
        check_run_id(run_id)
        check_cursor(cursor, "cursor")
        if not isinstance(blob, bytes):
            raise InvalidArgument("snapshot blob must be bytes")
        with self._db.lock:
            with self._db.transaction() as con:
                record = self._record(con, run_id)
                if cursor > record.last_seq:
                    raise InvalidArgument(f"snapshot cursor {cursor} is past the run's last event {record.last_seq}")
                row = con.execute("SELECT cursor FROM snapshots WHERE run_id = ?", [run_id]).fetchone()
                if row is None:
                    con.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?)", [run_id, cursor, blob, self._clock()])
                elif cursor >= row[0]:
                    con.execute(
                        "UPDATE snapshots SET cursor = ?, blob = ?, saved_at = ? WHERE run_id = ?",
                        [cursor, blob, self._clock(), run_id],
                    )
            self._records.note_snapshot(run_id)

    def load_snapshot(self, run_id: str) -> Snapshot | None:
        check_run_id(run_id)
        with self._db.read() as con:
            self._record(con, run_id)
            if self._records.has_no_snapshot(run_id):
                return None
            row = con.execute("SELECT cursor, blob FROM snapshots WHERE run_id = ?", [run_id]).fetchone()
        return None if row is None else Snapshot(run_id=run_id, cursor=row[0], blob=bytes(row[1]))

    def save_fact(self, fact_hash: str, blob: bytes) -> None:
        check_fact(fact_hash, blob)
        with self._db.transaction() as con:
            con.execute(
                "INSERT INTO facts SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM facts WHERE hash = ?)",
                [fact_hash, blob, len(blob), self._clock(), fact_hash],
            )

    def load_fact(self, fact_hash: str) -> bytes:
        check_fact(fact_hash)
        with self._db.read() as con:
            row = con.execute("SELECT blob FROM facts WHERE hash = ?", [fact_hash]).fetchone()
        if row is None:
            raise FactNotFound(fact_hash)
        return bytes(row[0])

    # ---------------------------------------------------------------- signals
    def post_signal(
        self, run_id: str, name: str, payload: object, *, dedupe_key: str | None = None, call_id: str | None = None
    ) -> Signal:
        check_run_id(run_id)
        check_signal_name(name)
        check_dedupe_key(dedupe_key)
        check_dedupe_key(call_id, "call_id")
        encoded = serialization.json_value(payload)
        with self._db.transaction() as con:
            record = self._record(con, run_id)
            if dedupe_key is not None:
                row = con.execute(
                    "SELECT signal_id, name, payload, sent_at, call_id FROM signals WHERE run_id = ? AND dedupe_key = ?",
                    [run_id, dedupe_key],
                ).fetchone()
                if row is not None:  # sent before: the stored one
                    return signal_of_row(run_id, row)
            if record.status.is_terminal:
                raise RunClosed(run_id, record.status.value)
            signal_id = statements.scalar(
                con, "SELECT coalesce(max(signal_id), 0) + 1 FROM signals WHERE run_id = ?", [run_id]
            )
            sent_at = self._clock()
            con.execute(
                "INSERT INTO signals (run_id, signal_id, name, payload, sent_at, dedupe_key, call_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, signal_id, name, encoded, sent_at, dedupe_key, call_id],
            )
        return Signal(run_id=run_id, signal_id=signal_id, name=name, payload=payload, sent_at=sent_at, call_id=call_id)

    def signals(self, run_id: str, after: int = 0) -> list[Signal]:
        check_run_id(run_id)
        check_cursor(after)
        with self._db.read() as con:
            self._record(con, run_id)
            rows = con.execute(
                "SELECT signal_id, name, payload, sent_at, call_id FROM signals "
                "WHERE run_id = ? AND signal_id > ? ORDER BY signal_id",
                [run_id, after],
            ).fetchall()
        return [signal_of_row(run_id, row) for row in rows]

    # -------------------------------------------------------------- schedules
    def save_schedule(self, schedule: Schedule) -> Schedule:
        serialization.json_value(schedule.input)  # an input that cannot be stored fails before the write
        with self._db.transaction() as con:
            schedules.save(con, schedule)
        return schedule

    def list_schedules(self) -> list[Schedule]:
        with self._db.read() as con:
            return schedules.list_all(con)

    def delete_schedule(self, name: str) -> None:
        check_schedule_name(name)
        with self._db.transaction() as con:
            schedules.delete(con, name)

    def mark_tick(self, name: str, tick: float) -> Schedule:
        check_schedule_name(name)
        with self._db.transaction() as con:
            return schedules.mark_tick(con, name, tick)

    # ---------------------------------------------------------------- helpers
    def _record(self, con: duckdb.DuckDBPyConnection, run_id: str) -> RunRecord:
        """The run's record, from memory when known, else from its row; RunNotFound if none."""
        cached = self._records.get(run_id)
        if cached is not None:
            return cached
        row = statements.execute(con, statements.SELECT_RUN, [run_id]).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return self._records.put(statements.record_of(row))

    @staticmethod
    def _request_id(con: duckdb.DuckDBPyConnection, run_id: str, seq: int) -> str | None:
        """The request id stored with the run's event at ``seq`` (None: none, or no such event)."""
        found: str | None = statements.scalar(con, statements.SELECT_REQUEST_ID, [run_id, seq])
        return found

    def _write_stale_rows(self) -> None:
        """Bring the rows of runs appended to without a status change up to date."""
        with self._db.lock:
            records = self._records.stale_records()
            if not records:
                return
            with self._db.transaction() as con:
                statements.update_runs(con, records)
            self._records.all_written()
