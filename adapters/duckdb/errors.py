"""Where ``duckdb`` errors become ray-runner errors: the one translation in this adapter.

:func:`translate` decides; the open (through :func:`driver_errors`) and the
connection's read, transaction and users' query blocks hand it every
``duckdb.Error`` (and a transaction block any ``OSError``), so no other module
looks at one. The translated error names the file and chains the driver's.

A write the file system refuses (a full disk, a spent quota, a read-only file)
is :class:`~runner.errors.StoreWriteFailed`. Measured with DuckDB 2.0.1 on a
full tmpfs: the commit raises ``duckdb.TransactionException`` ("Failed to
commit: Could not write file ...wal: No space left on device"), the
transaction is rolled back, nothing of it is stored, and once space is freed
the same connection commits again; other write paths raise
``duckdb.IOException``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from adapters.duckdb import users_sql
from runner.errors import (
    WRITE_ERRNOS,
    InvalidArgument,
    RunnerError,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreWriteFailed,
    write_failure,
)

# DuckDB 2.0 reports a file held by another process, and a file that is not a DuckDB
# database, only as an ``IOException`` whose text says so, and a damaged block (checksum
# mismatch) as a bare ``duckdb.Error``: the Python exceptions carry no errno and no
# structured fields (their ``args`` are the message alone). These phrases are therefore
# the only text this adapter looks at, and only on those two exception types.
_HELD_BY_ANOTHER_PROCESS = "Could not set lock on file"
_NOT_A_DUCKDB_FILE = ("not a valid DuckDB database file", "Corrupt database file")


# Errors of the store itself, even while it runs a user's query; any other error raised
# by a user's query is that query's fault.
_STORE_FAILURES = (
    duckdb.IOException,
    duckdb.FatalException,
    duckdb.InternalException,
    duckdb.OutOfMemoryException,
    duckdb.ConnectionException,
)
# What DuckDB raises when a write of the store's own cannot reach the file (past the lock and
# corruption cases above): the commit failed, nothing of the transaction was stored.
_WRITE_FAILURES = (duckdb.IOException, duckdb.TransactionException)
# What DuckDB raises when a user's query reaches for what users_sql.py's controls deny:
# a file or extension (external access is off) or a write (the transaction is read-only).
_DENIED = (duckdb.PermissionException, duckdb.TransactionException)


def translate(
    exc: duckdb.Error | OSError, path: Path, *, users_query: bool = False, writing: bool = False
) -> RunnerError:
    """The ray-runner error for a driver error raised while using the store at ``path``.

    ``users_query``: the error was raised by a query a user sent (``DuckDBStore.sql``).
    ``writing``: it was raised by one of the store's own write transactions."""
    if isinstance(exc, OSError):
        if writing and exc.errno in WRITE_ERRNOS:
            return write_failure(str(path), exc)
        return StoreError(f"store {path}: {type(exc).__name__}: {exc}")
    if isinstance(exc, duckdb.IOException) or type(exc) is duckdb.Error:
        text = str(exc)
        if _HELD_BY_ANOTHER_PROCESS in text:
            return StoreLocked(str(path), text)
        if any(phrase in text for phrase in _NOT_A_DUCKDB_FILE):
            return StoreCorrupt(str(path), text)
    if writing and not users_query and isinstance(exc, _WRITE_FAILURES):
        return StoreWriteFailed(str(path), str(exc))
    if users_query and not isinstance(exc, _STORE_FAILURES):
        if isinstance(exc, _DENIED):
            return users_sql.refused(f"DuckDB refused it: {exc}")
        return InvalidArgument(f"the query failed: {exc}")
    return StoreError(f"store {path}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def driver_errors(path: Path) -> Iterator[None]:
    """Raise the translation of any ``duckdb.Error`` the block raises, with the driver's chained."""
    try:
        yield
    except duckdb.Error as exc:
        raise translate(exc, path) from exc
