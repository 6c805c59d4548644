"""The run list the web view shows: filters, and keyset paging that stays fast at any size.

A page is read with one SQL query over the ``runs`` table when the store speaks
SQL (DuckDB): only the columns the list shows (never the pickled definition),
ordered by ``(created_at, run_id)`` newest first, and the next page starts
strictly below the last row's pair (a keyset cursor, not OFFSET, so page 1,000
costs what page 1 does). Stores without SQL (``memory://``, small and in one
process) are read through ``list_runs`` and paged the same way in Python.

Optional columns other parts of the project may add to ``runs`` (``queue``,
``metadata``) are shown and filtered on when the file has them: see
:data:`OPTIONAL_COLUMNS` and :func:`_metadata_clause`, the one place that knows
how metadata is stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from runner.errors import InvalidArgument, StoreError
from runner.reader import StoreReader
from runner.store import RunFilter, RunRecord, RunStatus, as_status

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
BASE_COLUMNS = ("run_id", "workflow", "status", "created_at", "updated_at", "last_seq", "error", "parent_run_id")
OPTIONAL_COLUMNS = ("queue", "metadata")  # shown when the store's runs table has them
WORKFLOWS_TTL = 30.0
_MEMORY_SCAN = 1_000_000  # a store without SQL is read whole (it lives in one process's memory)


@dataclass(frozen=True, kw_only=True)
class Cursor:
    """Where the next page starts: strictly after this (created_at, run_id), newest first."""

    created_at: float
    run_id: str

    def encode(self) -> str:
        return f"{self.created_at!r}~{self.run_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        created, sep, run_id = text.partition("~")
        try:
            return cls(created_at=float(created), run_id=run_id) if sep else _bad_cursor(text)
        except ValueError:
            return _bad_cursor(text)


def _bad_cursor(text: str) -> Cursor:
    raise InvalidArgument(f"page cursor {text!r} is not one this view made; open the list from its first page")


@dataclass(frozen=True, kw_only=True)
class RunQuery:
    """What the list shows: each filter is optional; ``after`` is the page cursor."""

    statuses: tuple[RunStatus, ...] = ()
    workflow: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    metadata_key: str | None = None  # ``key`` (present) or ``key=value``
    after: Cursor | None = None
    limit: int = PAGE_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "statuses", tuple(as_status(s) for s in self.statuses))
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"a page holds 1 to {MAX_PAGE_SIZE} runs, got {self.limit}")


@dataclass(frozen=True, kw_only=True)
class RunRow:
    """One run as the list shows it (no definition, no history)."""

    run_id: str
    workflow: str
    status: RunStatus
    created_at: float
    updated_at: float
    last_seq: int
    error: str | None = None
    parent_run_id: str | None = None
    queue: str | None = None
    metadata: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status.is_terminal

    def duration(self, now: float | None = None) -> float:
        """Seconds from submit to the end (to ``now`` while the run is not over)."""
        end = self.updated_at if self.is_finished else (time.time() if now is None else now)
        return max(0.0, end - self.created_at)

    @classmethod
    def of_record(cls, record: RunRecord) -> RunRow:
        return cls(
            run_id=record.run_id,
            workflow=record.workflow,
            status=record.status,
            created_at=record.created_at,
            updated_at=record.updated_at,
            last_seq=record.last_seq,
            error=record.error,
            parent_run_id=record.parent_run_id,
        )


@dataclass(frozen=True, kw_only=True)
class RunPage:
    rows: list[RunRow]
    next: Cursor | None  # None: this is the last page
    columns: tuple[str, ...] = field(default=BASE_COLUMNS)


class RunQueries:
    """The web view's reads of the run list (and of a run's descendants) over one reader."""

    def __init__(self, reader: StoreReader) -> None:
        self.reader = reader
        self._columns: tuple[str, ...] | None = None
        self._workflows: tuple[float, list[str]] | None = None  # (when read, names)

    # ---------------------------------------------------------- capabilities
    def columns(self) -> tuple[str, ...]:
        """The list columns this store has: the base ones and any optional ones present; () without SQL."""
        if self._columns is None:
            try:
                _, rows = self.reader.sql(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = 'runs'"
                )
            except StoreError:
                self._columns = ()
            else:
                present = {str(row[0]) for row in rows}
                self._columns = BASE_COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in present)
        return self._columns

    # ------------------------------------------------------------------ list
    def page(self, query: RunQuery) -> RunPage:
        columns = self.columns()
        if not columns:
            return self._page_without_sql(query)
        where, params = _where(query, columns)
        sql = (
            f"SELECT {', '.join(columns)} FROM runs WHERE {' AND '.join(where)} "
            f"ORDER BY created_at DESC, run_id DESC LIMIT {query.limit + 1}"
        )
        _, rows = self.reader.sql(sql, params)
        runs = [_row(columns, row) for row in rows]
        return _paged(runs, query.limit, columns)

    def _page_without_sql(self, query: RunQuery) -> RunPage:
        if query.metadata_key:
            raise InvalidArgument("this store keeps no run metadata to filter on; use a duckdb:/// store")
        records = self.reader.list_runs(
            RunFilter(
                workflow=query.workflow,
                status=query.statuses,
                created_after=query.created_after,
                created_before=query.created_before,
                limit=_MEMORY_SCAN,
            )
        )
        after = query.after
        if after is not None:
            records = [r for r in records if (r.created_at, r.run_id) < (after.created_at, after.run_id)]
        return _paged([RunRow.of_record(r) for r in records[: query.limit + 1]], query.limit, BASE_COLUMNS)

    # ----------------------------------------------------------- descendants
    def descendants(self, run_id: str, limit: int = 100) -> list[RunRow]:
        """Runs whose parent is ``run_id`` (its replays, forks, children and continuation), oldest first."""
        columns = self.columns()
        if not columns:
            records = self.reader.list_runs(RunFilter(limit=_MEMORY_SCAN, newest_first=False))
            return [RunRow.of_record(r) for r in records if r.parent_run_id == run_id][:limit]
        _, rows = self.reader.sql(
            f"SELECT {', '.join(columns)} FROM runs WHERE parent_run_id = ? "
            f"ORDER BY created_at, run_id LIMIT {int(limit)}",
            [run_id],
        )
        return [_row(columns, row) for row in rows]

    def workflows(self, limit: int = 200) -> list[str]:
        """The workflow names runs were submitted under (for the filter's choices); read again at
        most every WORKFLOWS_TTL seconds, since a live list page is drawn again as runs move."""
        if not self.columns():
            return []
        now = time.monotonic()
        if self._workflows is None or now - self._workflows[0] > WORKFLOWS_TTL:
            _, rows = self.reader.sql(f"SELECT DISTINCT workflow FROM runs ORDER BY workflow LIMIT {int(limit)}")
            self._workflows = (now, [str(row[0]) for row in rows])
        return self._workflows[1]


def _where(query: RunQuery, columns: Sequence[str]) -> tuple[list[str], list[Any]]:
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if query.statuses:
        where.append(f"status IN ({', '.join('?' for _ in query.statuses)})")
        params.extend(s.value for s in query.statuses)
    if query.workflow:
        where.append("workflow = ?")
        params.append(query.workflow)
    if query.created_after is not None:
        where.append("created_at >= ?")
        params.append(float(query.created_after))
    if query.created_before is not None:
        where.append("created_at < ?")
        params.append(float(query.created_before))
    if query.metadata_key:
        clause, values = _metadata_clause(query.metadata_key, columns)
        where.append(clause)
        params.extend(values)
    if query.after is not None:
        where.append("(created_at < ? OR (created_at = ? AND run_id < ?))")
        params.extend([query.after.created_at, query.after.created_at, query.after.run_id])
    return where, params


def _metadata_clause(filter_text: str, columns: Sequence[str]) -> tuple[str, list[Any]]:
    """``key`` (the run's metadata has it) or ``key=value`` as SQL over a JSON ``metadata`` column.

    This is the one place that knows how run metadata is stored: adjust it here
    if the store keeps metadata another way."""
    if "metadata" not in columns:
        raise InvalidArgument("this store keeps no run metadata yet; filter by status, workflow or time instead")
    key, sep, value = filter_text.partition("=")
    path = "$." + '"' + key.strip().replace('"', '\\"') + '"'
    if sep:
        return "json_extract_string(CAST(metadata AS JSON), ?) = ?", [path, value.strip()]
    return "json_extract(CAST(metadata AS JSON), ?) IS NOT NULL", [path]


def _row(columns: Sequence[str], row: Sequence[Any]) -> RunRow:
    values = dict(zip(columns, row, strict=True))
    values["status"] = as_status(values["status"])
    if "metadata" in values and values["metadata"] is not None and not isinstance(values["metadata"], str):
        values["metadata"] = str(values["metadata"])
    if "queue" in values and values["queue"] is not None:
        values["queue"] = str(values["queue"])
    return RunRow(**values)


def _paged(runs: list[RunRow], limit: int, columns: tuple[str, ...]) -> RunPage:
    if len(runs) <= limit:
        return RunPage(rows=runs, next=None, columns=columns)
    last = runs[limit - 1]
    return RunPage(rows=runs[:limit], next=Cursor(created_at=last.created_at, run_id=last.run_id), columns=columns)


def with_cursor(query: RunQuery, cursor: Cursor | None) -> RunQuery:
    return replace(query, after=cursor)
