"""``DuckDBStore.sql`` (``runner sql``) reads the store's tables and does nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.duckdb import DuckDBStore
from runner.errors import InvalidArgument
from runner.events import ErrorInfo, FactProduced, RunSubmitted, StepFailed, StepStarted
from runner.store import NewRun

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sql.md"


def _new_run(run_id: str, workflow: str = "orders") -> NewRun:
    submitted = RunSubmitted(workflow=workflow, input={"n": 1}, definition_hash="h")
    return NewRun(run_id=run_id, workflow=workflow, definition=b"def", definition_hash="h", events=(submitted,))


@pytest.fixture(params=[False, True], ids=["writable", "read-only"])
def store(request, tmp_path):
    """A store with two runs and a few events, opened writable or (after writing) read-only."""
    path = tmp_path / "store" / "store.duckdb"
    writer = DuckDBStore(path)
    writer.create_runs([_new_run("r1"), _new_run("r2", workflow="billing")])
    token = writer.acquire_lease("r1", "w", 30).token
    writer.append(
        "r1",
        [
            StepStarted(node="a", attempt=1, lease=token),
            FactProduced(node="a", value=1),
            StepStarted(node="b", attempt=1, lease=token),
            StepFailed(node="b", attempt=1, error=ErrorInfo(type="ValueError", message="boom")),
        ],
        token,
    )
    if request.param:
        writer.close()
        store = DuckDBStore(path, read_only=True)
    else:
        store = writer
    yield store
    store.close()


def _snapshot(store: DuckDBStore) -> tuple[object, ...]:
    """Everything a refused query must leave as it was."""
    return (
        store.sql("SELECT * FROM runs ORDER BY run_id")[1],
        store.sql("SELECT run_id, seq, kind, payload FROM events ORDER BY run_id, seq")[1],
        store.sql("SELECT database_name, schema_name, table_name FROM duckdb_tables() ORDER BY ALL")[1],
        store.sql("SELECT database_name, path FROM duckdb_databases() ORDER BY ALL")[1],
    )


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if not p.name.endswith((".wal", ".tmp"))}


def _refused(store: DuckDBStore, query: str) -> str:
    with pytest.raises(InvalidArgument) as info:
        store.sql(query)
    text = str(info.value)
    assert "read-only" in text and "runs, events, snapshots, facts, signals" in text, text
    return text


# ------------------------------------------------------------------ the attacks
def test_copy_to_a_file_is_refused_and_writes_no_file(store, tmp_path):
    before, files = _snapshot(store), _files(tmp_path)
    for target in (tmp_path / "out.csv", tmp_path / "store" / "out.parquet"):
        _refused(store, f"COPY (SELECT * FROM runs) TO '{target}'")
        _refused(store, f"COPY runs TO '{target}' (FORMAT csv)")
    _refused(store, f"EXPORT DATABASE '{tmp_path / 'exported'}'")
    assert _files(tmp_path) == files
    assert _snapshot(store) == before


def test_attach_is_refused_and_creates_no_database(store, tmp_path):
    before, files = _snapshot(store), _files(tmp_path)
    _refused(store, f"ATTACH '{tmp_path / 'evil.duckdb'}' AS evil")
    _refused(store, f"ATTACH '{tmp_path / 'evil2.duckdb'}'")
    assert _files(tmp_path) == files
    assert _snapshot(store) == before


def test_reading_a_file_outside_the_store_is_refused(store, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("secret,value\nkey,s3cr3t-value\n")
    for query in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_csv('{outside}')",
        f"SELECT * FROM read_csv_auto('{outside}')",
        f"SELECT * FROM '{outside}'",
        f"SELECT content FROM read_text('{outside}')",
        f"SELECT content FROM read_blob('{outside}')",
        f"SELECT * FROM glob('{tmp_path}/*')",
        f"SELECT r.run_id FROM runs r JOIN read_csv('{outside}') c ON true",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    ):
        text = _refused(store, query)
        assert "s3cr3t-value" not in text and "root:x:" not in text, (query, text)


def test_create_table_is_refused_and_nothing_is_created(store):
    before = _snapshot(store)
    _refused(store, "CREATE TABLE evil (x INTEGER)")
    _refused(store, "CREATE TEMP TABLE evil AS SELECT * FROM runs")
    _refused(store, "CREATE VIEW evil AS SELECT 1")
    _refused(store, "CREATE MACRO evil(x) AS x")
    assert _snapshot(store) == before


def test_delete_and_other_writes_are_refused_and_change_nothing(store):
    before = _snapshot(store)
    _refused(store, "DELETE FROM runs")
    _refused(store, "DELETE FROM events WHERE run_id = 'r1'")
    _refused(store, "UPDATE runs SET status = 'completed'")
    _refused(store, "INSERT INTO facts VALUES ('x', 'y', 1, 0)")
    _refused(store, "DROP TABLE events")
    _refused(store, "ALTER TABLE runs ADD COLUMN evil INTEGER")
    # a SELECT that writes: refused by the read-only transaction (or a read-only file, in its own words)
    for query in (
        "WITH gone AS (DELETE FROM runs RETURNING *) SELECT count(*) FROM gone",
        "WITH added AS (INSERT INTO facts VALUES ('x', 'y', 1, 0) RETURNING *) SELECT * FROM added",
    ):
        with pytest.raises(InvalidArgument, match="read-only"):
            store.sql(query)
    assert _snapshot(store) == before


def test_several_statements_are_refused_whole(store):
    before = _snapshot(store)
    for query in (
        "SELECT 1; SELECT 2",
        "SELECT count(*) FROM runs; DELETE FROM runs",
        "COMMIT; DELETE FROM events",
        "ROLLBACK; DROP TABLE runs",
    ):
        assert "statements" in _refused(store, query)
    assert _snapshot(store) == before


def test_settings_extensions_and_transactions_are_refused(store):
    for query in (
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "PRAGMA enable_profiling",
        "INSTALL httpfs",
        "LOAD httpfs",
        "BEGIN TRANSACTION",
        "CHECKPOINT",
        "CALL pragma_version()",
        "SET VARIABLE x = 1",
        "EXPLAIN ANALYZE DELETE FROM runs",
    ):
        _refused(store, query)
    assert store.sql("SELECT current_setting('enable_external_access')")[1] == [(False,)]


def test_the_store_keeps_working_after_refused_queries(store):
    _refused(store, "DELETE FROM runs")
    with pytest.raises(InvalidArgument, match="syntax error"):
        store.sql("SELEC kind FROM events")
    with pytest.raises(InvalidArgument, match="nope"):
        store.sql("SELECT * FROM nope")
    assert store.get_run("r1").last_seq == 5
    if not store.read_only:
        store.create_run(_new_run("r3"))
        assert store.sql("SELECT count(*) FROM runs")[1] == [(3,)]


# ---------------------------------------------------------------- plain reads
def test_selects_joins_and_aggregates_over_the_store_work(store):
    columns, rows = store.sql("SELECT run_id, seq, kind FROM events WHERE run_id = ? ORDER BY seq", ["r1"])
    assert columns == ["run_id", "seq", "kind"]
    assert [r[2] for r in rows] == ["RunSubmitted", "StepStarted", "FactProduced", "StepStarted", "StepFailed"]
    _, rows = store.sql(
        "SELECT r.workflow, count(e.seq) AS events, max(e.seq) FROM runs r "
        "JOIN events e USING (run_id) GROUP BY r.workflow ORDER BY r.workflow"
    )
    assert rows == [("billing", 1, 1), ("orders", 5, 5)]
    _, rows = store.sql(
        "WITH failed AS (SELECT run_id, node FROM events WHERE kind = 'StepFailed') "
        "SELECT f.node, json_extract_string(e.payload, '$.error.type') FROM failed f "
        "JOIN events e ON e.run_id = f.run_id AND e.kind = 'StepFailed'"
    )
    assert rows == [("b", "ValueError")]
    assert store.sql("SELECT count(*) FROM snapshots, facts, signals, schema_version")[1] == [(0,)]
    assert store.sql("DESCRIBE runs")[1][0][0] == "run_id"
    assert store.sql("SELECT 1;")[1] == [(1,)]


def test_every_query_in_the_sql_docs_runs(store):
    queries = re.findall(r"```sql\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert len(queries) >= 5
    for query in queries:
        columns, _ = store.sql(query)
        assert columns, query
