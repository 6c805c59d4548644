"""Store adapters, and ``open_store(url)`` to pick one by URL.

``memory://`` gives an :class:`~adapters.memory.InMemoryStore` (lost when the
process ends); ``duckdb:///`` followed by a path gives a
:class:`~adapters.duckdb.DuckDBStore` in that one file. As in SQLAlchemy URLs,
three slashes start a relative path (``duckdb:///.runner/store.duckdb`` is
``./.runner/store.duckdb``) and four an absolute one (``duckdb:////tmp/x.duckdb``).
"""

from __future__ import annotations

from pathlib import Path

from runner.errors import InvalidArgument
from runner.store import Store

DEFAULT_STORE_URL = "duckdb:///.runner/store.duckdb"


def store_path(url: str) -> Path | None:
    """The file a ``duckdb://`` URL names (None for ``memory://``); InvalidArgument for others."""
    if not isinstance(url, str):
        raise InvalidArgument(f"store must be a URL string such as {DEFAULT_STORE_URL!r}, got {url!r}")
    if url == "memory://":
        return None
    if url.startswith("duckdb:///"):
        rest = url[len("duckdb:///") :]
        if not rest or rest.endswith("/"):
            raise InvalidArgument(f"store URL {url!r} names no file; use duckdb:///path/to/store.duckdb")
        return Path(rest).expanduser()
    raise InvalidArgument(f"unknown store URL {url!r}; use 'memory://' or 'duckdb:///path/to/store.duckdb'")


def open_store(url: str = DEFAULT_STORE_URL, *, read_only: bool = False) -> Store:
    """Open the store a URL names."""
    path = store_path(url)
    if path is None:
        from adapters.memory import InMemoryStore

        return InMemoryStore()
    from adapters.duckdb import DuckDBStore

    return DuckDBStore(path, read_only=read_only)
