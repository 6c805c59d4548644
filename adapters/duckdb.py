"""DuckDBStore: the store contract in one DuckDB file (the default store).

One connection per store object, guarded by a lock; every write is one
transaction. The schema is created by numbered migrations recorded in
``schema_version``. Every ``duckdb`` error is translated at one place,
:meth:`DuckDBStore._transaction`, into :class:`~runner.errors.StoreError`
(or a subclass) that names the file, with the driver's error chained.

Tables (see docs/sql.md for queries users can run):

- ``runs``: one row per run: status, lease, pickled definition, times (unix seconds).
- ``events``: ``(run_id, seq)`` gapless per run; ``kind``, ``node``, ``at`` and the
  JSON ``payload`` of the event.
- ``snapshots``: the latest snapshot per run and its cursor.
- ``facts``: content-addressed values by sha256.
- ``signals``: each run's inbox.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from runner import serialization
from runner.errors import FactNotFound, FencedError, InvalidArgument, RunClosed, RunNotFound, StoreError
from runner.events import Event, StoredEvent
from runner.store import (
    AppendRequest,
    Lease,
    NewRun,
    Receipt,
    RunFilter,
    RunRecord,
    RunStatus,
    Signal,
    Snapshot,
    as_status,
    check_cursor,
    check_events,
    check_fact,
    check_lease_request,
    check_run_id,
    check_signal_name,
    check_transition,
    check_ttl,
    check_write,
    error_summary,
    grant_lease,
    taken_over,
)

MIGRATIONS: list[tuple[int, tuple[str, ...]]] = [
    (
        1,
        (
            """CREATE TABLE runs (
                run_id VARCHAR NOT NULL,
                workflow VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                definition BLOB NOT NULL,
                definition_hash VARCHAR NOT NULL,
                created_at DOUBLE NOT NULL,
                updated_at DOUBLE NOT NULL,
                last_seq BIGINT NOT NULL,
                lease BIGINT NOT NULL,
                lease_owner VARCHAR,
                lease_expires_at DOUBLE,
                idempotency_key VARCHAR,
                parent_run_id VARCHAR,
                error VARCHAR
            )""",
            """CREATE TABLE events (
                run_id VARCHAR NOT NULL,
                seq BIGINT NOT NULL,
                kind VARCHAR NOT NULL,
                node VARCHAR,
                recorded_at DOUBLE NOT NULL,
                payload VARCHAR NOT NULL,
                PRIMARY KEY (run_id, seq)
            )""",
            """CREATE TABLE snapshots (
                run_id VARCHAR PRIMARY KEY,
                cursor BIGINT NOT NULL,
                blob BLOB NOT NULL,
                saved_at DOUBLE NOT NULL
            )""",
            """CREATE TABLE facts (
                hash VARCHAR PRIMARY KEY,
                blob BLOB NOT NULL,
                size BIGINT NOT NULL,
                saved_at DOUBLE NOT NULL
            )""",
            """CREATE TABLE signals (
                run_id VARCHAR NOT NULL,
                signal_id BIGINT NOT NULL,
                name VARCHAR NOT NULL,
                payload VARCHAR NOT NULL,
                sent_at DOUBLE NOT NULL,
                PRIMARY KEY (run_id, signal_id)
            )""",
        ),
    ),
]

_RUN_COLUMNS = (
    "run_id, workflow, status, definition, definition_hash, created_at, updated_at, last_seq, "
    "lease, lease_owner, lease_expires_at, idempotency_key, parent_run_id, error"
)
_STREAM_CHUNK = 5_000
TAIL_EVENTS = 100_000  # recently written events kept in memory, over all runs (see _remember)
ENDED_RECORDS = 10_000  # records of ended runs kept in memory (runs still going are all kept)


class DuckDBStore:
    """The durable store: one DuckDB file, opened by one process at a time."""

    def __init__(
        self, path: str | os.PathLike[str], *, read_only: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._clock = clock
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        # This object is the file's only writer (DuckDB admits one writing process), so run
        # records are cached here, updated after each commit, and reads of them skip SQL:
        # every run that has not ended, and the ENDED_RECORDS most recently ended ones.
        self._cache: dict[str, RunRecord] = {}
        self._ended: collections.OrderedDict[str, RunRecord] = collections.OrderedDict()
        # Runs whose cursor (last_seq, updated_at) moved without a status change: their row is
        # written lazily (see _write_cursors), which saves an UPDATE on most appends.
        self._stale_rows: set[str] = set()
        # What this process wrote lately, so the reads that follow writes (a worker taking a
        # fresh run over, a client asking for a run's last event) skip SQL: each run's most
        # recent contiguous events, least recently written evicted first, and the runs known
        # to have no snapshot (created by this process, none saved since).
        self._tails: collections.OrderedDict[str, list[StoredEvent]] = collections.OrderedDict()
        self._tail_events = 0
        self._no_snapshot: set[str] = set()
        self._con = self._connect()
        if not read_only:
            self._migrate()
            self._repair_cursors()
        self._check_schema()

    # --------------------------------------------------------- connection
    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self.read_only and not self.path.exists():
            raise StoreError(f"store file {self.path} does not exist; nothing has been run with this store yet")
        if not self.read_only:
            parent = self.path.parent
            if not parent.exists():
                parent.mkdir(mode=0o700, parents=True)
        created = not self.path.exists()
        try:
            con = duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from exc
        if created:
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
        return con

    def _migrate(self) -> None:
        with self._transaction() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at DOUBLE NOT NULL)"
            )
            current = _scalar(con, "SELECT coalesce(max(version), 0) FROM schema_version")
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    con.execute(statement)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, self._clock()])

    def _repair_cursors(self) -> None:
        """After a crash, rows may lag their events' cursor (written lazily): catch them up."""
        with self._transaction() as con:
            con.execute(
                "UPDATE runs SET last_seq = e.last_seq, updated_at = greatest(runs.updated_at, e.recorded_at) "
                "FROM (SELECT run_id, max(seq) AS last_seq, max(recorded_at) AS recorded_at FROM events GROUP BY run_id) AS e "
                "WHERE runs.run_id = e.run_id AND runs.last_seq < e.last_seq"
            )

    def _write_cursors(self) -> None:
        """Bring the rows of runs appended to without a status change up to date."""
        with self._lock:
            if not self._stale_rows:
                return
            records = [r for r in map(self._known, self._stale_rows) if r is not None]
            with self._transaction() as con:
                _update_runs(con, records)
            self._stale_rows.clear()

    def _check_schema(self) -> None:
        latest = MIGRATIONS[-1][0]
        with self._transaction() as con:
            try:
                row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
            except duckdb.CatalogException as exc:
                raise StoreError(
                    f"{self.path} is a DuckDB file but not a ray-runner store (no schema_version table)"
                ) from exc
        version = row[0] if row else 0
        if version > latest:
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this ray-runner knows ({latest}); upgrade ray-runner"
            )
        if version < latest:
            raise StoreError(
                f"store {self.path} has schema version {version}; open it once writable to migrate it to {latest}"
            )

    @contextlib.contextmanager
    def _read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read: one statement is its own transaction, so no BEGIN/COMMIT round trips."""
        with self._lock:
            con = self._con
            if con is None:
                raise StoreError(f"store {self.path} was closed; open it again with adapters.open_store(url)")
            try:
                yield con
            except duckdb.Error as exc:
                raise StoreError(f"store {self.path}: {type(exc).__name__}: {exc}") from exc

    def _cached(self, record: RunRecord) -> RunRecord:
        if self.read_only:
            return record
        run_id = record.run_id
        if record.status.is_terminal:  # ended runs are read rarely: keep the latest few
            self._cache.pop(run_id, None)
            self._no_snapshot.discard(run_id)
            self._ended[run_id] = record
            self._ended.move_to_end(run_id)
            while len(self._ended) > ENDED_RECORDS:
                self._ended.popitem(last=False)
        else:
            self._ended.pop(run_id, None)
            self._cache[run_id] = record
        return record

    def _known(self, run_id: str) -> RunRecord | None:
        """The cached record of ``run_id``, if there is one."""
        return self._cache.get(run_id) or self._ended.get(run_id)

    @contextlib.contextmanager
    def _transaction(self, *, commit: bool = True, one_write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The one place driver errors become StoreError; a transaction that raises is rolled back.

        ``one_write``: the block makes at most one write statement, which DuckDB commits on its
        own (atomic alone), so BEGIN and COMMIT, a third of a small append's cost, are skipped."""
        with self._lock:
            con = self._con
            if con is None:
                raise StoreError(f"store {self.path} was closed; open it again with adapters.open_store(url)")
            if one_write:
                try:
                    yield con
                except duckdb.Error as exc:
                    raise StoreError(f"store {self.path}: {type(exc).__name__}: {exc}") from exc
                return
            try:
                con.execute("BEGIN TRANSACTION")
                yield con
                con.execute("COMMIT" if commit else "ROLLBACK")
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error):
                    raise StoreError(f"store {self.path}: {type(exc).__name__}: {exc}") from exc
                raise

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                with contextlib.suppress(StoreError):
                    self._write_cursors()
                with contextlib.suppress(duckdb.Error):
                    self._con.close()
                self._con = None
            self._cache.clear()
            self._ended.clear()
            self._stale_rows.clear()
            self._tails.clear()
            self._tail_events = 0
            self._no_snapshot.clear()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sql(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read-only query (column names, rows); the CLI's ``runner sql`` uses this."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("sql needs a query string")
        if not self.read_only:
            self._write_cursors()
        with self._transaction(commit=False) as con:  # rolled back: a query cannot change the store
            # ... unless it ends that transaction itself: "COMMIT; DELETE FROM runs" would write.
            if any(s.type == duckdb.StatementType.TRANSACTION for s in con.extract_statements(query)):
                raise InvalidArgument(
                    "sql runs read-only queries; transaction statements (BEGIN, COMMIT, ...) are refused"
                )
            cursor = con.execute(query, list(params))
            columns = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        return columns, rows

    # --------------------------------------------------------------- runs
    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        return self.create_runs([new])[0]

    def create_runs(self, news: Sequence[NewRun]) -> list[tuple[RunRecord, bool]]:
        for new in news:
            if not isinstance(new, NewRun):
                raise InvalidArgument(f"create_runs takes NewRun values, got {new!r}")
        encoded = [[serialization.encode_event(e) for e in new.events] for new in news]
        out: list[tuple[RunRecord, bool]] = []
        created: list[RunRecord] = []
        event_rows: list[list[Any]] = [[], [], [], [], [], []]
        with self._transaction() as con:
            now = self._clock()
            by_id, by_key = self._existing(con, news)
            for new, rows in zip(news, encoded, strict=True):
                existing = by_id.get(new.run_id) or (by_key.get(new.idempotency_key) if new.idempotency_key else None)
                if existing is not None:
                    out.append((existing, False))
                    continue
                record = RunRecord(
                    run_id=new.run_id,
                    workflow=new.workflow,
                    status=RunStatus.PENDING,
                    definition=new.definition,
                    definition_hash=new.definition_hash,
                    created_at=now,
                    updated_at=now,
                    last_seq=len(rows),
                    idempotency_key=new.idempotency_key,
                    parent_run_id=new.parent_run_id,
                )
                _collect_events(event_rows, new.run_id, 1, new.events, rows)
                by_id[new.run_id] = record
                if new.idempotency_key:
                    by_key[new.idempotency_key] = record
                created.append(record)
                out.append((record, True))
            _insert_runs(con, created)
            _insert_events(con, event_rows)
        for record, new in zip(created, [n for n, (_, made) in zip(news, out, strict=True) if made], strict=True):
            self._cached(record)
            self._no_snapshot.add(record.run_id)
            self._remember(record.run_id, 1, new.events)
        return out

    def _existing(
        self, con: duckdb.DuckDBPyConnection, news: Sequence[NewRun]
    ) -> tuple[dict[str, RunRecord], dict[str, RunRecord]]:
        """Stored runs that share an id or an idempotency key with ``news``, in one query."""
        ids = [new.run_id for new in news]
        keys = [new.idempotency_key for new in news if new.idempotency_key]
        rows = con.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[])) "
            "OR idempotency_key IN (SELECT unnest(?::VARCHAR[]))",
            [ids, keys],
        ).fetchall()
        records = [self._known(row[0]) or _record(row) for row in rows]
        by_key = {r.idempotency_key: r for r in records if r.idempotency_key}
        return {r.run_id: r for r in records}, by_key

    def get_run(self, run_id: str) -> RunRecord:
        check_run_id(run_id)
        with self._read() as con:
            return self._record(con, run_id)

    def exists(self, run_id: str) -> bool:
        check_run_id(run_id)
        with self._read() as con:
            if self._known(run_id) is not None:
                return True
            return bool(_scalar(con, "SELECT count(*) FROM runs WHERE run_id = ?", [run_id]))

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
        order = "DESC" if f.newest_first else "ASC"
        query = (
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} "
            f"ORDER BY created_at {order}, run_id {order} LIMIT {int(f.limit)}"
        )
        if not self.read_only:
            self._write_cursors()  # rows are ordered and filtered in SQL, so they must be current
        with self._read() as con:
            rows = con.execute(query, params).fetchall()
        return [_record(row) for row in rows]

    def delete(self, run_id: str) -> None:
        check_run_id(run_id)
        with self._transaction() as con:
            self._record(con, run_id)
            for table in ("events", "snapshots", "signals", "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        self._cache.pop(run_id, None)
        self._ended.pop(run_id, None)
        self._stale_rows.discard(run_id)
        self._no_snapshot.discard(run_id)
        self._forget_tail(run_id)

    def transition(self, run_id: str, to: RunStatus, *, lease: int | None = None) -> RunRecord:
        check_run_id(run_id)
        target = as_status(to)
        with self._transaction() as con:
            record = self._record(con, run_id)
            if lease is not None:
                check_write(record, lease, target)
            else:
                check_transition(record, target)
            now = self._clock()
            con.execute(
                "UPDATE runs SET status = ?, updated_at = ?, last_seq = ? WHERE run_id = ?",
                [target.value, now, record.last_seq, run_id],
            )
        self._stale_rows.discard(run_id)  # the row is current: an ended run's record may leave the cache
        return self._cached(replace(record, status=target, updated_at=now))

    # ------------------------------------------------------------- leases
    def acquire_lease(self, run_id: str, owner: str, ttl: float, *, force: bool = False) -> Lease:
        check_run_id(run_id)
        with self._transaction() as con:
            record = self._record(con, run_id)
            lease = grant_lease(record, owner, ttl, self._clock(), force)
            con.execute(
                "UPDATE runs SET lease = ?, lease_owner = ?, lease_expires_at = ? WHERE run_id = ?",
                [lease.token, owner, lease.expires_at, run_id],
            )
        self._cached(replace(record, lease=lease.token, lease_owner=owner, lease_expires_at=lease.expires_at))
        return lease

    def take_over(self, run_ids: Sequence[str], owner: str, ttl: float) -> list[RunRecord | Exception]:
        check_lease_request(owner, ttl)
        results: list[RunRecord | Exception] = []
        changed: list[RunRecord] = []
        with self._transaction(one_write=True) as con:  # one UPDATE for all runs
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
            _update_runs(con, changed, _LEASE_AND_STATUS)
        for record in changed:
            self._cached(record)
        return results

    def renew_lease(self, run_id: str, token: int, ttl: float) -> Lease:
        check_run_id(run_id)
        check_ttl(ttl)
        with self._transaction() as con:
            record = self._record(con, run_id)
            check_write(record, token, None)
            expires_at = self._clock() + ttl
            con.execute("UPDATE runs SET lease_expires_at = ? WHERE run_id = ?", [expires_at, run_id])
        self._cached(replace(record, lease_expires_at=expires_at))
        return Lease(run_id=run_id, token=token, owner=record.lease_owner or "", expires_at=expires_at)

    def release_lease(self, run_id: str, token: int) -> None:
        check_run_id(run_id)
        with self._transaction() as con:
            record = self._record(con, run_id)
            if token != record.lease:
                raise FencedError(run_id, token, record.lease)
            con.execute("UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE run_id = ?", [run_id])
        self._cached(replace(record, lease_owner=None, lease_expires_at=None))

    # ------------------------------------------------------------ the log
    def append(self, run_id: str, events: Sequence[Event], lease: int, *, status: RunStatus | None = None) -> Receipt:
        check_run_id(run_id)
        request = AppendRequest(run_id=run_id, events=check_events(events), lease=lease, status=status)
        result = self.append_many([request])[0]
        if isinstance(result, Exception):
            raise result
        return result

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
        try:
            with self._transaction(one_write=not changes_rows) as con:
                now = self._clock()
                pending: dict[str, RunRecord] = {}
                rewrite: set[str] = set()
                written: list[tuple[str, int, Sequence[Event]]] = []
                event_rows: list[list[Any]] = [[], [], [], [], [], []]
                for item in prepared:
                    if isinstance(item, Exception):
                        results.append(item)
                        continue
                    request, rows, error = item
                    try:
                        record = pending.get(request.run_id) or self._record(con, request.run_id)
                        check_write(record, request.lease, request.status)
                    except (StoreError, InvalidArgument) as exc:
                        results.append(exc)
                        continue
                    first = record.last_seq + 1
                    _collect_events(event_rows, request.run_id, first, request.events, rows)
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
                _insert_events(con, event_rows)
                _update_runs(con, [record for run_id, record in pending.items() if run_id in rewrite])
        except StoreError as exc:
            if not results and not prepared:
                raise
            if self._con is None:  # closed: every caller is told so
                raise
            # the commit failed: no batch was stored, every caller gets an answer
            stored_none: list[Receipt | Exception] = [exc if isinstance(r, Receipt) else r for r in results]
            return stored_none + [exc] * (len(prepared) - len(results))
        for run_id, record in pending.items():
            self._cached(record)
            if run_id in rewrite:
                self._stale_rows.discard(run_id)
            else:
                self._stale_rows.add(run_id)
        for run_id, first, events in written:
            self._remember(run_id, first, events)
        return results

    def stream(self, run_id: str, after: int = 0) -> Iterator[StoredEvent]:
        check_run_id(run_id)
        check_cursor(after)
        with self._read() as con:
            self._record(con, run_id)
            tail = self._tails.get(run_id)
            if tail and tail[0].seq <= after + 1:
                return iter(tail[after + 1 - tail[0].seq :])
        return self._stream(run_id, after)

    def _remember(self, run_id: str, first: int, events: Sequence[Event]) -> None:
        """Keep events ``first``.. of ``run_id`` (just committed) for reads that follow."""
        stored = [StoredEvent(run_id=run_id, seq=first + i, event=e) for i, e in enumerate(events)]
        tail = self._tails.get(run_id)
        if tail and tail[-1].seq == first - 1:
            tail.extend(stored)
            self._tails.move_to_end(run_id)
        else:
            self._forget_tail(run_id)
            self._tails[run_id] = stored
        self._tail_events += len(stored)
        while self._tail_events > TAIL_EVENTS and self._tails:
            _, evicted = self._tails.popitem(last=False)
            self._tail_events -= len(evicted)

    def _forget_tail(self, run_id: str) -> None:
        self._tail_events -= len(self._tails.pop(run_id, ()))

    def _stream(self, run_id: str, after: int) -> Iterator[StoredEvent]:
        cursor = after
        while True:
            with self._read() as con:
                rows = con.execute(
                    "SELECT seq, kind, payload FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    [run_id, cursor, _STREAM_CHUNK],
                ).fetchall()
            for seq, kind, payload in rows:
                yield StoredEvent(run_id=run_id, seq=seq, event=serialization.decode_event(kind, payload))
            if len(rows) < _STREAM_CHUNK:
                return
            cursor = rows[-1][0]

    # ---------------------------------------------- snapshots and facts
    def save_snapshot(self, run_id: str, cursor: int, blob: bytes) -> None:
        check_run_id(run_id)
        check_cursor(cursor, "cursor")
        if not isinstance(blob, bytes):
            raise InvalidArgument("snapshot blob must be bytes")
        with self._transaction() as con:
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
        self._no_snapshot.discard(run_id)

    def load_snapshot(self, run_id: str) -> Snapshot | None:
        check_run_id(run_id)
        with self._read() as con:
            self._record(con, run_id)
            if run_id in self._no_snapshot:
                return None
            row = con.execute("SELECT cursor, blob FROM snapshots WHERE run_id = ?", [run_id]).fetchone()
        return None if row is None else Snapshot(run_id=run_id, cursor=row[0], blob=bytes(row[1]))

    def save_fact(self, fact_hash: str, blob: bytes) -> None:
        check_fact(fact_hash, blob)
        with self._transaction() as con:
            con.execute(
                "INSERT INTO facts SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM facts WHERE hash = ?)",
                [fact_hash, blob, len(blob), self._clock(), fact_hash],
            )

    def load_fact(self, fact_hash: str) -> bytes:
        check_fact(fact_hash)
        with self._read() as con:
            row = con.execute("SELECT blob FROM facts WHERE hash = ?", [fact_hash]).fetchone()
        if row is None:
            raise FactNotFound(fact_hash)
        return bytes(row[0])

    # ------------------------------------------------------------ signals
    def post_signal(self, run_id: str, name: str, payload: object) -> Signal:
        check_run_id(run_id)
        check_signal_name(name)
        encoded = serialization.json_value(payload)
        with self._transaction() as con:
            record = self._record(con, run_id)
            if record.status.is_terminal:
                raise RunClosed(run_id, record.status.value)
            signal_id = _scalar(con, "SELECT coalesce(max(signal_id), 0) + 1 FROM signals WHERE run_id = ?", [run_id])
            sent_at = self._clock()
            con.execute("INSERT INTO signals VALUES (?, ?, ?, ?, ?)", [run_id, signal_id, name, encoded, sent_at])
        return Signal(run_id=run_id, signal_id=signal_id, name=name, payload=payload, sent_at=sent_at)

    def signals(self, run_id: str, after: int = 0) -> list[Signal]:
        check_run_id(run_id)
        check_cursor(after)
        with self._read() as con:
            self._record(con, run_id)
            rows = con.execute(
                "SELECT signal_id, name, payload, sent_at FROM signals WHERE run_id = ? AND signal_id > ? ORDER BY signal_id",
                [run_id, after],
            ).fetchall()
        return [
            Signal(run_id=run_id, signal_id=i, name=n, payload=serialization.from_json_value(p), sent_at=t)
            for i, n, p, t in rows
        ]

    # ------------------------------------------------------------ helpers
    def _record(self, con: duckdb.DuckDBPyConnection, run_id: str) -> RunRecord:
        cached = self._known(run_id)
        if cached is not None:
            return cached
        row = con.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return self._cached(_record(row))


def _scalar(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] = ()) -> Any:
    row = con.execute(query, list(params)).fetchone()
    return None if row is None else row[0]


def _record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        workflow=row[1],
        status=RunStatus(row[2]),
        definition=bytes(row[3]),
        definition_hash=row[4],
        created_at=row[5],
        updated_at=row[6],
        last_seq=row[7],
        lease=row[8],
        lease_owner=row[9],
        lease_expires_at=row[10],
        idempotency_key=row[11],
        parent_run_id=row[12],
        error=row[13],
    )


def _collect_events(
    columns: list[list[Any]], run_id: str, first: int, events: Sequence[Event], rows: Sequence[tuple[str, str]]
) -> None:
    for offset, (event, (kind, payload)) in enumerate(zip(events, rows, strict=False)):
        columns[0].append(run_id)
        columns[1].append(first + offset)
        columns[2].append(kind)
        columns[3].append(getattr(event, "node", None))
        columns[4].append(event.at)
        columns[5].append(payload)


def _insert_runs(con: duckdb.DuckDBPyConnection, records: list[RunRecord]) -> None:
    """New run rows, in one statement however many there are."""
    if not records:
        return
    con.execute(
        f"INSERT INTO runs ({_RUN_COLUMNS}) SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
        "unnest(?::BLOB[]), unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), unnest(?::DOUBLE[]), unnest(?::BIGINT[]), "
        "0, NULL, NULL, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), NULL",
        [
            [r.run_id for r in records],
            [r.workflow for r in records],
            [r.status.value for r in records],
            [r.definition for r in records],
            [r.definition_hash for r in records],
            [r.created_at for r in records],
            [r.updated_at for r in records],
            [r.last_seq for r in records],
            [r.idempotency_key for r in records],
            [r.parent_run_id for r in records],
        ],
    )


# Columns of ``runs`` that writes after creation change: SQL type and value from a record.
_RUN_FIELDS: dict[str, tuple[str, Callable[[RunRecord], Any]]] = {
    "last_seq": ("BIGINT", lambda r: r.last_seq),
    "status": ("VARCHAR", lambda r: r.status.value),
    "updated_at": ("DOUBLE", lambda r: r.updated_at),
    "error": ("VARCHAR", lambda r: r.error),
    "lease": ("BIGINT", lambda r: r.lease),
    "lease_owner": ("VARCHAR", lambda r: r.lease_owner),
    "lease_expires_at": ("DOUBLE", lambda r: r.lease_expires_at),
}
_CURSOR_AND_STATUS = ("last_seq", "status", "updated_at", "error")
_LEASE_AND_STATUS = ("lease", "lease_owner", "lease_expires_at", "status", "updated_at")


def _update_runs(
    con: duckdb.DuckDBPyConnection, records: list[RunRecord], columns: tuple[str, ...] = _CURSOR_AND_STATUS
) -> None:
    """Write ``columns`` of the runs' rows from their records, in one statement however many runs there are."""
    if not records:
        return
    if len(records) == 1:
        r = records[0]
        con.execute(
            f"UPDATE runs SET {', '.join(f'{c} = ?' for c in columns)} WHERE run_id = ?",
            [*(_RUN_FIELDS[c][1](r) for c in columns), r.run_id],
        )
        return
    unnested = ", ".join(f"unnest(?::{_RUN_FIELDS[c][0]}[]) AS {c}" for c in columns)
    con.execute(
        f"UPDATE runs SET {', '.join(f'{c} = u.{c}' for c in columns)} "
        f"FROM (SELECT unnest(?::VARCHAR[]) AS run_id, {unnested}) AS u WHERE runs.run_id = u.run_id",
        [[r.run_id for r in records], *([_RUN_FIELDS[c][1](r) for r in records] for c in columns)],
    )


def _insert_events(con: duckdb.DuckDBPyConnection, columns: list[list[Any]]) -> None:
    """Insert column lists in one statement: DuckDB takes ~100x more rows/s this way than row by row."""
    if not columns[0]:
        return
    con.execute(
        "INSERT INTO events SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), "
        "unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), unnest(?::VARCHAR[])",
        columns,
    )


def _open_error(path: Path, exc: duckdb.Error) -> StoreError:
    text = str(exc)
    if "lock" in text.lower():
        return StoreError(
            f"store file {path} is in use by another process ({text}). DuckDB lets one process open a file "
            "for writing: go through the cluster that holds it (connect to its address), or stop that process first"
        )
    if "not a valid DuckDB database" in text or "Corrupt" in text or "corrupt" in text:
        return StoreError(
            f"store file {path} is not a readable DuckDB database ({text}); point the store at another file or move this one away"
        )
    return StoreError(f"cannot open store file {path}: {text}")
