"""SQL users run over the store (``runner sql``): reads of the store's tables, nothing else.

Three of DuckDB's own controls keep it so, each covering what the others do not:

1. The parser: the text must be exactly one statement, of type SELECT. COPY,
   ATTACH, CREATE, INSERT, DELETE, SET, PRAGMA, CALL, EXPORT, INSTALL, LOAD and
   transaction statements are refused before anything runs, and so is a second
   statement after the first.
2. The database is opened with ``enable_external_access = false`` and
   ``lock_configuration = true`` (connection.py): no statement may read or write a
   file other than the store's own, attach a database or load an extension
   (``read_csv('/etc/passwd')`` is refused by DuckDB), and no query can turn that
   back on. Python replacement scans are off, so a query cannot read the store
   process's Python objects either.
3. The query runs on a cursor of its own, in a ``READ ONLY`` transaction that is
   rolled back: a SELECT that would write (``WITH d AS (DELETE FROM runs RETURNING *)
   SELECT * FROM d``) is refused by DuckDB.

What is left to read is the store's database: its tables (:data:`schema.TABLES`)
and DuckDB's catalog functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from adapters.duckdb.schema import TABLES
from runner.errors import InvalidArgument

ALLOWED_STATEMENTS = frozenset({duckdb.StatementType.SELECT})
READ_ONLY = (
    f"sql runs read-only queries: only one SELECT-style read of the store's tables ({', '.join(TABLES)}) is allowed"
)


def refused(what: str) -> InvalidArgument:
    """The error for a query that is not a plain read of the store."""
    return InvalidArgument(f"{READ_ONLY}; {what}")


def run(
    cursor: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Check ``query`` and run it on ``cursor`` (already in a read-only transaction): (columns, rows)."""
    statements = cursor.extract_statements(query)
    if not statements:
        raise InvalidArgument("sql needs a query string")
    if len(statements) > 1:
        raise refused(f"the query has {len(statements)} statements; send one at a time")
    kind = statements[0].type
    if kind not in ALLOWED_STATEMENTS:
        raise refused(f"a {kind.name} statement was refused")
    result = cursor.execute(query, list(params))
    columns = [d[0] for d in result.description or ()]
    return columns, result.fetchall()
