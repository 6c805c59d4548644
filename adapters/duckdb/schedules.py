"""The ``schedules`` table: cron schedules (runner.cron), one row per name.

Functions over a connection inside the caller's transaction or read; the
store's methods (store.py) open those and call them.
"""

from __future__ import annotations

from typing import Any

import duckdb

from runner import serialization
from runner.errors import ScheduleNotFound
from runner.store import Schedule

_COLUMNS = "name, workflow, cron, definition, definition_hash, input, created_at, last_tick"


def _schedule_of(row: tuple[Any, ...]) -> Schedule:
    name, workflow, cron, definition, definition_hash, encoded, created_at, last_tick = row
    return Schedule(
        name=name,
        workflow=workflow,
        cron=cron,
        definition=bytes(definition),
        definition_hash=definition_hash,
        input=serialization.from_json_value(encoded),
        created_at=created_at,
        last_tick=last_tick,
    )


def save(con: duckdb.DuckDBPyConnection, schedule: Schedule) -> None:
    """Insert ``schedule``, or replace the row of the same name."""
    con.execute("DELETE FROM schedules WHERE name = ?", [schedule.name])
    con.execute(
        f"INSERT INTO schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            schedule.name,
            schedule.workflow,
            schedule.cron,
            schedule.definition,
            schedule.definition_hash,
            serialization.json_value(schedule.input),
            schedule.created_at,
            schedule.last_tick,
        ],
    )


def list_all(con: duckdb.DuckDBPyConnection) -> list[Schedule]:
    rows = con.execute(f"SELECT {_COLUMNS} FROM schedules ORDER BY name").fetchall()
    return [_schedule_of(row) for row in rows]


def get(con: duckdb.DuckDBPyConnection, name: str) -> Schedule:
    row = con.execute(f"SELECT {_COLUMNS} FROM schedules WHERE name = ?", [name]).fetchone()
    if row is None:
        raise ScheduleNotFound(name)
    return _schedule_of(row)


def delete(con: duckdb.DuckDBPyConnection, name: str) -> None:
    get(con, name)
    con.execute("DELETE FROM schedules WHERE name = ?", [name])


def mark_tick(con: duckdb.DuckDBPyConnection, name: str, tick: float) -> Schedule:
    get(con, name)
    con.execute(
        "UPDATE schedules SET last_tick = ? WHERE name = ? AND (last_tick IS NULL OR last_tick < ?)",
        [tick, name, tick],
    )
    return get(con, name)
