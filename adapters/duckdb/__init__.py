"""DuckDBStore: the store contract in one DuckDB file (the default store).

Tables (see docs/sql.md for queries users can run):

- ``runs``: one row per run: status, lease, pickled definition, times (unix seconds).
- ``events``: ``(run_id, seq)`` gapless per run; ``kind``, ``node``, ``at`` and the
  JSON ``payload`` of the event.
- ``snapshots``: the latest snapshot per run and its cursor.
- ``facts``: content-addressed values by sha256.
- ``signals``: each run's inbox.

The modules, one job each:

- ``store``: :class:`DuckDBStore`, the contract's methods;
- ``connection``: the one connection to the file, its lock, reads and transactions;
- ``errors``: the one place where ``duckdb`` errors become ray-runner errors;
- ``users_sql``: the read-only SQL users run (``runner sql``) and what keeps it read-only;
- ``schema``: the tables, as numbered migrations recorded in ``schema_version``;
- ``statements``: the bulk SQL the store runs, rows to records;
- ``caches``: what a writable store remembers so that most reads skip SQL.
"""

from __future__ import annotations

from adapters.duckdb.caches import ENDED_RECORDS, TAIL_EVENTS, CacheLimits
from adapters.duckdb.schema import MIGRATIONS, Migration
from adapters.duckdb.store import DuckDBStore

__all__ = ["ENDED_RECORDS", "MIGRATIONS", "TAIL_EVENTS", "CacheLimits", "DuckDBStore", "Migration"]
