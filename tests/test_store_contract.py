"""Every store adapter passes the one contract suite in runner.testing.store_contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adapters.memory import InMemoryStore
from runner.store import Store
from runner.testing.store_contract import StoreContract


class TestInMemoryStore(StoreContract):
    def make_store(self, tmp_path: Path, clock: Callable[[], float]) -> Store:
        return InMemoryStore(clock=clock)


class TestDuckDBStore(StoreContract):
    persistent = True

    def make_store(self, tmp_path: Path, clock: Callable[[], float]) -> Store:
        from adapters.duckdb import DuckDBStore

        return DuckDBStore(tmp_path / "store.duckdb", clock=clock)
