"""DuckDB-only behaviour: the file itself (durability, permissions, bad files, locking, SQL)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from adapters import open_store, store_path
from adapters.duckdb import MIGRATIONS, DuckDBStore
from runner.errors import InvalidArgument, StoreError
from runner.events import FactProduced, RunSubmitted, StepStarted
from runner.store import NewRun


def _new_run(run_id: str = "r1") -> NewRun:
    submitted = RunSubmitted(workflow="wf", input={"n": 1}, definition_hash="h")
    return NewRun(run_id=run_id, workflow="wf", definition=b"def", definition_hash="h", events=(submitted,))


def test_data_survives_closing_and_reopening(tmp_path):
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    store.create_run(_new_run())
    lease = store.acquire_lease("r1", "w", 30)
    store.append(
        "r1", [StepStarted(node="a", attempt=1, lease=lease.token), FactProduced(node="a", value=[1, 2])], lease.token
    )
    store.save_fact("a" * 64, b"blob")
    store.close()

    reopened = DuckDBStore(path)
    events = [s.event for s in reopened.stream("r1")]
    assert [type(e).__name__ for e in events] == ["RunSubmitted", "StepStarted", "FactProduced"]
    assert events[2].value == [1, 2]
    assert reopened.get_run("r1").last_seq == 3
    assert reopened.get_run("r1").lease == lease.token
    assert reopened.load_fact("a" * 64) == b"blob"
    reopened.close()


def test_file_and_new_folder_are_owner_only(tmp_path):
    path = tmp_path / "fresh" / "store.duckdb"
    DuckDBStore(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


@pytest.mark.parametrize("content", [b"this is not a database" * 100, b""])
def test_a_file_that_is_not_duckdb_gives_store_error_naming_the_path(tmp_path, content):
    path = tmp_path / "notes.duckdb"
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        DuckDBStore(path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is not None  # the driver's error is chained


def test_a_duckdb_file_of_another_program_is_refused(tmp_path):
    import duckdb

    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not a ray-runner store") as info:
        DuckDBStore(path, read_only=True)
    assert str(path) in str(info.value)


def test_schema_version_is_recorded_and_migrations_are_numbered(tmp_path):
    store = DuckDBStore(tmp_path / "s.duckdb")
    columns, rows = store.sql("SELECT version FROM schema_version ORDER BY version")
    assert columns == ["version"]
    assert [r[0] for r in rows] == [v for v, _ in MIGRATIONS]
    assert [v for v, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    store.close()


def test_a_newer_schema_is_refused_with_advice(tmp_path):
    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path)
    with store._transaction() as con:
        con.execute("INSERT INTO schema_version VALUES (99, 0)")
    store.close()
    with pytest.raises(StoreError, match="upgrade ray-runner"):
        DuckDBStore(path)


def test_read_only_open_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        DuckDBStore(tmp_path / "missing.duckdb", read_only=True)


def test_read_only_store_refuses_writes(tmp_path):
    path = tmp_path / "s.duckdb"
    DuckDBStore(path).close()
    store = DuckDBStore(path, read_only=True)
    with pytest.raises(StoreError):
        store.create_run(_new_run())
    store.close()


def test_a_second_process_gets_a_clear_error_while_the_file_is_held(tmp_path):
    path = tmp_path / "held.duckdb"
    store = DuckDBStore(path)
    code = (
        "import sys\n"
        "from adapters.duckdb import DuckDBStore\n"
        "from runner.errors import StoreError\n"
        "try:\n"
        f"    DuckDBStore({str(path)!r})\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    store.close()
    assert proc.returncode == 3, proc.stderr
    assert "in use by another process" in proc.stdout
    assert str(path) in proc.stdout


def test_sql_is_read_only_and_reads_the_history(tmp_path):
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.create_run(_new_run("r1"))
    columns, rows = store.sql("SELECT run_id, seq, kind FROM events ORDER BY seq")
    assert columns == ["run_id", "seq", "kind"]
    assert rows == [("r1", 1, "RunSubmitted")]
    store.sql("DELETE FROM events")  # rolled back
    assert len(list(store.stream("r1"))) == 1
    with pytest.raises(InvalidArgument):
        store.sql("  ")
    store.close()


def test_store_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert store_path("memory://") is None
    assert str(store_path("duckdb:///.runner/store.duckdb")) == ".runner/store.duckdb"
    assert str(store_path("duckdb:////abs/x.duckdb")) == "/abs/x.duckdb"
    for bad in ("postgres://x", "duckdb://", "duckdb:///", "duckdb:///dir/", 42):
        with pytest.raises(InvalidArgument):
            store_path(bad)  # type: ignore[arg-type]
    store = open_store("duckdb:///nested/s.duckdb")
    assert isinstance(store, DuckDBStore)
    store.close()
    assert (tmp_path / "nested" / "s.duckdb").exists()
