"""The store's one DuckDB connection: opening the file, reads, transactions.

Every statement runs inside :meth:`Connection.read` or :meth:`Connection.transaction`,
which hold the connection's lock and pass any driver error (and, from a transaction,
any ``OSError``: a write the file system refused) to ``errors.translate``
(inline rather than through ``errors.driver_errors``: a second context manager
per call would cost a cached ``get_run`` most of its speed).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb

from adapters.duckdb.errors import driver_errors, translate
from runner.errors import StoreError, StorePathInvalid

# Settings of the whole database (every connection and cursor to it), fixed at open. The
# store reads and writes only its own file, which DuckDB allows with external access off;
# users' queries (users_sql.py) must not reach anything else, nor turn these back on.
DATABASE_CONFIG: dict[str, str | bool] = {
    "enable_external_access": False,
    "python_enable_replacements": False,
    "lock_configuration": True,
}


class Connection:
    """One DuckDB connection to the store's file, guarded by a lock."""

    def __init__(self, path: Path, *, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self.lock = threading.RLock()  # callers hold it around a commit and the cache updates after it
        self._con: duckdb.DuckDBPyConnection | None = _open(path, read_only)
        self._users_cursor: duckdb.DuckDBPyConnection | None = None  # see users_query

    @contextlib.contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read: one statement is its own transaction, so no BEGIN/COMMIT round trips."""
        with self.lock:
            con = self._open_connection()
            try:
                yield con
            except duckdb.Error as exc:
                raise translate(exc, self.path) from exc

    @contextlib.contextmanager
    def transaction(self, *, one_write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction, committed when the block ends; a block that raises is rolled back.

        ``one_write``: the block makes at most one write statement, which DuckDB commits on its
        own (atomic alone), so BEGIN and COMMIT, a third of a small append's cost, are skipped."""
        with self.lock:
            con = self._open_connection()
            if one_write:
                try:
                    yield con
                except (duckdb.Error, OSError) as exc:
                    raise translate(exc, self.path, writing=True) from exc
                return
            try:
                con.begin()  # the methods, not SQL text: no statement to parse
                yield con
                con.commit()
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                if isinstance(exc, (duckdb.Error, OSError)):
                    raise translate(exc, self.path, writing=True) from exc
                raise

    @contextlib.contextmanager
    def users_query(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for a user's query, in a READ ONLY transaction that is rolled back.

        Driver errors are translated as the query's (see ``errors.translate``)."""
        with self.lock:
            con = self._open_connection()
            if self._users_cursor is None:
                self._users_cursor = con.cursor()
            cursor = self._users_cursor
            try:
                cursor.execute("BEGIN TRANSACTION READ ONLY")
                try:
                    yield cursor
                finally:
                    with contextlib.suppress(duckdb.Error):
                        cursor.execute("ROLLBACK")
            except duckdb.Error as exc:
                raise translate(exc, self.path, users_query=True) from exc

    @property
    def closed(self) -> bool:
        return self._con is None

    def close(self) -> None:
        with self.lock:
            if self._users_cursor is not None:
                with contextlib.suppress(duckdb.Error):
                    self._users_cursor.close()
                self._users_cursor = None
            if self._con is not None:
                with contextlib.suppress(duckdb.Error):
                    self._con.close()
                self._con = None

    def _open_connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreError(f"store {self.path} was closed; open it again with adapters.open_store(url)")
        return self._con


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    if path.is_dir():
        raise StorePathInvalid(str(path), "it is a directory")
    if read_only and not path.exists():
        raise StoreError(f"store file {path} does not exist; nothing has been run with this store yet")
    if not read_only and not path.parent.exists():
        try:
            path.parent.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise StorePathInvalid(str(path), f"its directory cannot be created: {exc.strerror or exc}") from exc
    created = not path.exists()
    with driver_errors(path):
        con = duckdb.connect(str(path), read_only=read_only, config=dict(DATABASE_CONFIG))
    if created:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
    return con
