"""The store's tables, created and upgraded by numbered migrations.

``schema_version`` records each migration applied (its number and when). A
store opened for writing applies the migrations it lacks, in order, in one
transaction; a store opened read-only must already be at :data:`LATEST`.
Add a change as a new :class:`Migration` at the end; never edit one that was
released, since files out there already ran it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import duckdb

from runner.errors import StoreError


class Migration(NamedTuple):
    version: int
    statements: tuple[str, ...]


MIGRATIONS: list[Migration] = [
    Migration(
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
    # Identity enforced by the file, not only by the code: one row per run id, and one run
    # per idempotency key (NULL keys are not compared, so runs without one are unaffected).
    Migration(
        2,
        (
            "ALTER TABLE runs ADD PRIMARY KEY (run_id)",
            "CREATE UNIQUE INDEX runs_idempotency_key ON runs (idempotency_key)",
        ),
    ),
    # Retried calls write nothing twice: an append's request id is stored with its last event
    # (runner.store.check_append_cursor), a signal's dedupe key with the signal, one per run.
    Migration(
        3,
        (
            "ALTER TABLE events ADD COLUMN request_id VARCHAR",
            "ALTER TABLE signals ADD COLUMN dedupe_key VARCHAR",
            "CREATE UNIQUE INDEX signals_dedupe_key ON signals (run_id, dedupe_key)",
        ),
    ),
    # Cron schedules (runner.cron): one row per schedule name; ``last_tick`` is the latest tick
    # whose run was started, ``input`` tagged JSON as signal payloads are.
    Migration(
        4,
        (
            """CREATE TABLE schedules (
                name VARCHAR PRIMARY KEY,
                workflow VARCHAR NOT NULL,
                cron VARCHAR NOT NULL,
                definition BLOB NOT NULL,
                definition_hash VARCHAR NOT NULL,
                input VARCHAR NOT NULL,
                created_at DOUBLE NOT NULL,
                last_tick DOUBLE
            )""",
        ),
    ),
    # Run metadata (JSON given at submit, queryable in SQL; runner.metadata), and the identity of
    # the call that stored a signal, so that a signal sent with a key another call used already
    # is told apart from a retry of the same call (runner.store.Store.post_signal).
    Migration(
        5,
        (
            "ALTER TABLE runs ADD COLUMN metadata JSON",
            "ALTER TABLE signals ADD COLUMN call_id VARCHAR",
        ),
    ),
    # Named queues (runner.queues): a run's queue, key and priority, and when it first started
    # (a queue's rate limit counts first starts, so it holds across Runner restarts).
    Migration(
        6,
        (
            "ALTER TABLE runs ADD COLUMN queue VARCHAR",
            "ALTER TABLE runs ADD COLUMN queue_key VARCHAR",
            "ALTER TABLE runs ADD COLUMN priority BIGINT DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN started_at DOUBLE",
        ),
    ),
]
LATEST = MIGRATIONS[-1].version

# The tables users may read with ``sql`` (docs/sql.md describes them).
TABLES = ("runs", "events", "snapshots", "facts", "signals", "schema_version", "schedules")


def migrate(con: duckdb.DuckDBPyConnection, now: float, migrations: list[Migration] = MIGRATIONS) -> None:
    """Apply the ``migrations`` the file lacks, inside the caller's transaction."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at DOUBLE NOT NULL)")
    current = version_of(con) or 0
    for migration in migrations:
        if migration.version <= current:
            continue
        for statement in migration.statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [migration.version, now])


def version_of(con: duckdb.DuckDBPyConnection) -> int | None:
    """The file's schema version; None when it has no ``schema_version`` table (not a store)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'schema_version'"
    ).fetchone()
    if not found or not found[0]:
        return None
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def check_version(path: Path, version: int | None) -> None:
    """Refuse a file this code cannot use, saying what to do."""
    if version is None:
        raise StoreError(f"{path} is a DuckDB file but not a ray-runner store (no schema_version table)")
    if version > LATEST:
        raise StoreError(
            f"store {path} has schema version {version}, newer than this ray-runner knows ({LATEST}); upgrade ray-runner"
        )
    if version < LATEST:
        raise StoreError(f"store {path} has schema version {version}; open it once writable to migrate it to {LATEST}")


def repair_cursors(con: duckdb.DuckDBPyConnection) -> None:
    """After a crash, rows may lag their events' cursor (written lazily): catch them up."""
    con.execute(
        "UPDATE runs SET last_seq = e.last_seq, updated_at = greatest(runs.updated_at, e.recorded_at) "
        "FROM (SELECT run_id, max(seq) AS last_seq, max(recorded_at) AS recorded_at FROM events GROUP BY run_id) AS e "
        "WHERE runs.run_id = e.run_id AND runs.last_seq < e.last_seq"
    )
