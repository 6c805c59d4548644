"""The SQL the store runs, and the conversion between rows and records.

Bulk writes pass whole columns as list parameters and ``unnest`` them, so a
statement costs the same for one row or thousands: DuckDB takes ~100x more
rows/s this way than row by row.

The statements on the hot paths run through :func:`execute`, which parses each
query text once: DuckDB's parser costs 0.2-0.4 ms of CPU a statement on the
2-core dev machine, a tenth of a small commit.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import duckdb

from runner import metadata
from runner.events import Event
from runner.store import RunRecord, RunStatus

RUN_COLUMNS = (
    "run_id, workflow, status, definition, definition_hash, created_at, updated_at, last_seq, "
    "lease, lease_owner, lease_expires_at, idempotency_key, parent_run_id, error, metadata, "
    "queue, queue_key, priority, started_at"
)
SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?"
STREAM_CHUNK = 5_000
SELECT_EVENTS = "SELECT seq, kind, payload FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
SELECT_REQUEST_ID = "SELECT request_id FROM events WHERE run_id = ? AND seq = ?"


_parser: duckdb.DuckDBPyConnection | None = None
_parser_lock = threading.Lock()


@functools.lru_cache(maxsize=512)
def parsed(query: str) -> Any:
    """``query`` (one statement) parsed once; DuckDB runs a parsed statement on any connection.

    Parsing needs no database: a private in-memory one, with no access outside it, does it."""
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(":memory:", config={"enable_external_access": False})
        [statement] = _parser.extract_statements(query)
    return statement


def execute(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] = ()) -> duckdb.DuckDBPyConnection:
    """``con.execute(query, params)`` without parsing ``query`` again (see :func:`parsed`)."""
    return con.execute(parsed(query), list(params))


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] = ()) -> Any:
    row = execute(con, query, params).fetchone()
    return None if row is None else row[0]


def record_of(row: tuple[Any, ...]) -> RunRecord:
    """The record of a ``runs`` row selected as :data:`RUN_COLUMNS`."""
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
        metadata=metadata.from_json(row[14]),
        queue=row[15],
        queue_key=row[16],
        priority=row[17],
        started_at=row[18],
    )


class EventRows:
    """Rows for ``events``, gathered column by column and inserted in one statement."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        # run_id, seq, kind, node, recorded_at, payload, request_id
        self.columns: list[list[Any]] = [[], [], [], [], [], [], []]

    def add(
        self,
        run_id: str,
        first: int,
        events: Sequence[Event],
        encoded: Sequence[tuple[str, str]],
        request_id: str | None = None,
    ) -> None:
        """``events`` of ``run_id`` numbered from ``first``; ``encoded``: their (kind, payload);
        ``request_id``: the append's identity, stored with its last event."""
        run_ids, seqs, kinds, nodes, times, payloads, request_ids = self.columns
        for offset, (event, (kind, payload)) in enumerate(zip(events, encoded, strict=False)):
            run_ids.append(run_id)
            seqs.append(first + offset)
            kinds.append(kind)
            nodes.append(getattr(event, "node", None))
            times.append(event.at)
            payloads.append(payload)
            request_ids.append(None)
        if events:
            request_ids[-1] = request_id

    def insert(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.columns[0]:
            return
        execute(
            con,
            "INSERT INTO events (run_id, seq, kind, node, recorded_at, payload, request_id) "
            "SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
            self.columns,
        )


def insert_runs(con: duckdb.DuckDBPyConnection, records: Sequence[RunRecord]) -> None:
    """New run rows, in one statement however many there are."""
    if not records:
        return
    execute(
        con,
        f"INSERT INTO runs ({RUN_COLUMNS}) SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
        "unnest(?::BLOB[]), unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), unnest(?::DOUBLE[]), unnest(?::BIGINT[]), "
        "0, NULL, NULL, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), NULL, unnest(?::VARCHAR[])::JSON, "
        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BIGINT[]), NULL",
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
            [metadata.to_json(r.metadata) for r in records],
            [r.queue for r in records],
            [r.queue_key for r in records],
            [r.priority for r in records],
        ],
    )


def metadata_conditions(wanted: dict[str, metadata.FilterValue]) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their parameters) selecting runs whose ``metadata`` column holds each
    key of ``wanted`` with an equal value, by the rule of :func:`runner.metadata.matches`."""
    where: list[str] = []
    params: list[Any] = []
    for key, value in wanted.items():
        pointer = metadata.json_pointer(key)
        if value is None:
            where.append("json_type(metadata, ?) = 'NULL'")
            params.append(pointer)
        elif isinstance(value, bool):
            where.append("json_type(metadata, ?) = 'BOOLEAN' AND json_extract_string(metadata, ?) = ?")
            params += [pointer, pointer, "true" if value else "false"]
        elif isinstance(value, str):
            where.append("json_type(metadata, ?) = 'VARCHAR' AND json_extract_string(metadata, ?) = ?")
            params += [pointer, pointer, value]
        else:
            where.append(
                "json_type(metadata, ?) IN ('UBIGINT', 'BIGINT', 'DOUBLE') "
                "AND TRY_CAST(json_extract_string(metadata, ?) AS DOUBLE) = ?"
            )
            params += [pointer, pointer, float(value)]
    return where, params


def select_existing(
    con: duckdb.DuckDBPyConnection, run_ids: Sequence[str], keys: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The rows of runs whose id is in ``run_ids`` or whose idempotency key is in ``keys``."""
    return execute(
        con,
        f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[])) "
        "OR idempotency_key IN (SELECT unnest(?::VARCHAR[]))",
        [list(run_ids), list(keys)],
    ).fetchall()


# Columns of ``runs`` that writes after creation change: SQL type and value from a record.
_RUN_FIELDS: dict[str, tuple[str, Callable[[RunRecord], Any]]] = {
    "last_seq": ("BIGINT", lambda r: r.last_seq),
    "status": ("VARCHAR", lambda r: r.status.value),
    "updated_at": ("DOUBLE", lambda r: r.updated_at),
    "error": ("VARCHAR", lambda r: r.error),
    "lease": ("BIGINT", lambda r: r.lease),
    "lease_owner": ("VARCHAR", lambda r: r.lease_owner),
    "lease_expires_at": ("DOUBLE", lambda r: r.lease_expires_at),
    "started_at": ("DOUBLE", lambda r: r.started_at),
}
CURSOR_AND_STATUS = ("last_seq", "status", "updated_at", "error")
LEASE = ("lease", "lease_owner", "lease_expires_at")
LEASE_AND_STATUS = ("lease", "lease_owner", "lease_expires_at", "status", "updated_at", "started_at")


def update_runs(
    con: duckdb.DuckDBPyConnection, records: Sequence[RunRecord], columns: tuple[str, ...] = CURSOR_AND_STATUS
) -> None:
    """Write ``columns`` of the runs' rows from their records, in one statement however many runs there are."""
    if not records:
        return
    if len(records) == 1:
        r = records[0]
        execute(
            con,
            f"UPDATE runs SET {', '.join(f'{c} = ?' for c in columns)} WHERE run_id = ?",
            [*(_RUN_FIELDS[c][1](r) for c in columns), r.run_id],
        )
        return
    unnested = ", ".join(f"unnest(?::{_RUN_FIELDS[c][0]}[]) AS {c}" for c in columns)
    execute(
        con,
        f"UPDATE runs SET {', '.join(f'{c} = u.{c}' for c in columns)} "
        f"FROM (SELECT unnest(?::VARCHAR[]) AS run_id, {unnested}) AS u WHERE runs.run_id = u.run_id",
        [[r.run_id for r in records], *([_RUN_FIELDS[c][1](r) for r in records] for c in columns)],
    )
