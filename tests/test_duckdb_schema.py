"""The DuckDB file enforces identity (migration 2) and keeps the identities of retried calls
(migration 3), old files are upgraded in place, and every bulk write path works with the keys in place."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from adapters.duckdb import MIGRATIONS, DuckDBStore, schema, statements
from runner import serialization
from runner.errors import AppendConflict, StoreError
from runner.events import FactProduced, RunCompleted, RunSubmitted, StepStarted
from runner.store import AppendRequest, NewRun, RunRecord, RunStatus

T0 = 1_700_000_000.0
# the columns of ``runs`` at schema version 1 (later migrations add more)
VERSION_1_RUN_COLUMNS = (
    "run_id, workflow, status, definition, definition_hash, created_at, updated_at, last_seq, "
    "lease, lease_owner, lease_expires_at, idempotency_key, parent_run_id, error"
)


def _submitted(workflow: str = "wf") -> RunSubmitted:
    return RunSubmitted(workflow=workflow, input={"n": 1}, definition_hash="h", at=T0)


def _version_1_file(path: Path, runs: list[tuple[str, str | None]]) -> None:
    """A store file as the code of schema version 1 left it: its tables, runs (id, key), one event each,
    one run's row lagging its events (a crash before the lazy row write), a snapshot, a fact, a signal."""
    con = duckdb.connect(str(path))
    con.execute("BEGIN TRANSACTION")
    schema.migrate(con, T0, MIGRATIONS[:1])
    con.execute("COMMIT")
    kind, payload = serialization.encode_event(_submitted())
    for run_id, key in runs:
        con.execute(
            f"INSERT INTO runs ({VERSION_1_RUN_COLUMNS}) VALUES (?, 'wf', 'pending', ?, 'h', ?, ?, 1, 0, NULL, NULL, ?, NULL, NULL)",
            [run_id, b"def", T0, T0, key],
        )
    for run_id in dict.fromkeys(run_id for run_id, _ in runs):
        con.execute("INSERT INTO events VALUES (?, 1, ?, NULL, ?, ?)", [run_id, kind, T0, payload])
    first = runs[0][0]
    kind, payload = serialization.encode_event(FactProduced(node="a", value=7, at=T0 + 1))
    con.execute("INSERT INTO events VALUES (?, 2, ?, 'a', ?, ?)", [first, kind, T0 + 1, payload])
    con.execute("INSERT INTO snapshots VALUES (?, 1, ?, ?)", [first, b"snap", T0])
    con.execute("INSERT INTO facts VALUES (?, ?, 4, ?)", ["f" * 64, b"fact", T0])
    con.execute("INSERT INTO signals VALUES (?, 1, 'go', '{\"json\": 1}', ?)", [first, T0])
    con.close()


def _constraints(store: DuckDBStore) -> set[tuple[str, str]]:
    _, rows = store.sql(
        "SELECT constraint_type, array_to_string(constraint_column_names, ',') FROM duckdb_constraints() "
        "WHERE table_name = 'runs' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
    )
    _, indexes = store.sql("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'runs' AND is_unique")
    return {(kind, columns) for kind, columns in rows} | {("UNIQUE INDEX", name) for (name,) in indexes}


def test_the_schema_has_identity_constraints(tmp_path):
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        assert ("PRIMARY KEY", "run_id") in _constraints(store)
        assert ("UNIQUE INDEX", "runs_idempotency_key") in _constraints(store)


def test_a_version_1_file_is_upgraded_with_its_data_intact_and_the_constraints_hold(tmp_path):
    path = tmp_path / "old.duckdb"
    _version_1_file(path, [("r1", "key-1"), ("r2", None), ("r3", None)])
    with pytest.raises(StoreError, match=f"open it once writable to migrate it to {schema.LATEST}"):
        DuckDBStore(path, read_only=True)

    store = DuckDBStore(path)
    try:
        assert store.sql("SELECT version FROM schema_version ORDER BY version")[1] == [
            (version,) for version in range(1, schema.LATEST + 1)
        ]
        assert {("PRIMARY KEY", "run_id"), ("UNIQUE INDEX", "runs_idempotency_key")} <= _constraints(store)
        # the data is intact (and r1's lagging row was caught up)
        r1 = store.get_run("r1")
        assert (r1.workflow, r1.status, r1.last_seq, r1.idempotency_key, r1.definition) == (
            "wf",
            RunStatus.PENDING,
            2,
            "key-1",
            b"def",
        )
        assert [s.event for s in store.stream("r1")] == [_submitted(), FactProduced(node="a", value=7, at=T0 + 1)]
        assert [store.get_run(r).last_seq for r in ("r2", "r3")] == [1, 1]
        snapshot = store.load_snapshot("r1")
        assert snapshot is not None and (snapshot.cursor, snapshot.blob) == (1, b"snap")
        assert store.load_fact("f" * 64) == b"fact"
        assert [(s.name, s.payload) for s in store.signals("r1")] == [("go", 1)]
        # the file itself now refuses a second row for a run id or an idempotency key
        before = store.sql("SELECT * FROM runs ORDER BY run_id")
        for run_id, key in (("r1", None), ("r4", "key-1")):
            with pytest.raises(StoreError, match="ConstraintException") as info, store._db.transaction() as con:
                con.execute(
                    f"INSERT INTO runs ({VERSION_1_RUN_COLUMNS}) "
                    "VALUES (?, 'wf', 'pending', 'd', 'h', 0, 0, 1, 0, NULL, NULL, ?, NULL, NULL)",
                    [run_id, key],
                )
            assert isinstance(info.value.__cause__, duckdb.ConstraintException)
        assert store.sql("SELECT * FROM runs ORDER BY run_id") == before
        # and the store works on the upgraded runs
        again, created = store.create_run(
            NewRun(
                run_id="r9",
                workflow="wf",
                definition=b"d",
                definition_hash="h",
                events=(_submitted(),),
                idempotency_key="key-1",
            )
        )
        assert (again.run_id, created) == ("r1", False)
        taken = store.take_over(["r1", "r2", "r3"], "w", 30)
        assert all(isinstance(r, RunRecord) and r.status is RunStatus.RUNNING for r in taken)
        token = store.get_run("r1").lease
        assert store.append("r1", [RunCompleted(result=1)], token, status=RunStatus.COMPLETED).first_seq == 3
    finally:
        store.close()


def test_a_version_1_file_with_a_duplicate_run_id_is_left_as_it_was(tmp_path):
    path = tmp_path / "old.duckdb"
    _version_1_file(path, [("r1", None), ("r1", None)])
    with pytest.raises(StoreError) as info:
        DuckDBStore(path)
    assert str(path) in str(info.value)
    con = duckdb.connect(str(path), read_only=True)
    try:  # the migration was rolled back whole
        assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(2,)]
    finally:
        con.close()


def _version_2_file(path: Path) -> None:
    """A store file as the code of schema version 2 left it: a run with two events and a signal."""
    _version_1_file(path, [("r1", None)])
    con = duckdb.connect(str(path))
    con.execute("BEGIN TRANSACTION")
    schema.migrate(con, T0, MIGRATIONS[:2])
    con.execute("UPDATE runs SET status = 'running', lease = 4, lease_owner = 'w', lease_expires_at = ?", [T0 + 30])
    con.execute("COMMIT")
    con.close()


def test_a_version_2_file_is_upgraded_and_keeps_retried_calls_from_writing_twice(tmp_path):
    path = tmp_path / "v2.duckdb"
    _version_2_file(path)
    with pytest.raises(StoreError, match=f"open it once writable to migrate it to {schema.LATEST}"):
        DuckDBStore(path, read_only=True)

    with DuckDBStore(path, clock=lambda: T0) as store:
        assert store.sql("SELECT version FROM schema_version ORDER BY version")[1] == [
            (version,) for version in range(1, schema.LATEST + 1)
        ]
        _, columns = store.sql(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE column_name IN ('request_id', 'dedupe_key')"
        )
        assert sorted(columns) == [("events", "request_id"), ("signals", "dedupe_key")]
        _, indexes = store.sql("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'signals' AND is_unique")
        assert indexes == [("signals_dedupe_key",)]
        # old rows carry no identity, and nothing breaks on them
        assert store.sql("SELECT count(*) FROM events WHERE request_id IS NOT NULL")[1] == [(0,)]
        assert [(s.signal_id, s.name, s.payload) for s in store.signals("r1")] == [(1, "go", 1)]
        with pytest.raises(AppendConflict):  # the log ends at 2: seq 2 was not this request's
            store.append("r1", [FactProduced(node="a", value=7, at=T0 + 1)], 4, after_seq=1, request_id="r")
        receipt = store.append("r1", [FactProduced(node="b", value=1)], 4, after_seq=2, request_id="req-b")
        assert store.append("r1", [FactProduced(node="b", value=1)], 4, after_seq=2, request_id="req-b") == receipt
        first = store.post_signal("r1", "go", 2, dedupe_key="call")
        assert store.post_signal("r1", "go", 2, dedupe_key="call") == first
        assert first.signal_id == 2
        assert store.sql("SELECT seq, request_id FROM events WHERE run_id = 'r1' ORDER BY seq")[1] == [
            (1, None),
            (2, None),
            (3, "req-b"),
        ]
        assert store.sql("SELECT count(*) FROM signals")[1] == [(2,)]


# ------------------------------------------------------ bulk writes with the keys
RUNS = 3_000


def _row(store: DuckDBStore, run_id: str) -> RunRecord:
    with store._db.read() as con:
        row = con.execute(statements.SELECT_RUN, [run_id]).fetchone()
    assert row is not None
    return statements.record_of(row)


def test_every_bulk_write_path_works_on_many_runs_with_the_keys(tmp_path):
    path = tmp_path / "many.duckdb"
    store = DuckDBStore(path)
    ids = [f"run-{i}" for i in range(RUNS)]
    news = [
        NewRun(
            run_id=run_id,
            workflow="wf",
            definition=b"d",
            definition_hash="h",
            events=(_submitted(),),
            idempotency_key=f"key-{i}" if i % 2 else None,
        )
        for i, run_id in enumerate(ids)
    ]
    assert all(created for _, created in store.create_runs(news))
    assert not any(created for _, created in store.create_runs(news))  # ids and keys both found
    # take_over: one bulk UPDATE of the lease columns, then again by a new owner
    first = store.take_over(ids, "w1", 30)
    second = store.take_over(ids, "w2", 30)
    tokens = {r.run_id: r.lease for r in second if isinstance(r, RunRecord)}
    assert len(tokens) == RUNS and all(
        isinstance(a, RunRecord) and t == a.lease + 1 for a, t in zip(first, tokens.values(), strict=True)
    )
    # appends without a status change (rows written lazily), then all written in one bulk UPDATE
    results = store.append_many(
        [
            AppendRequest(run_id=r, events=(StepStarted(node="a", attempt=1, lease=tokens[r]),), lease=tokens[r])
            for r in ids
        ]
    )
    assert all(not isinstance(r, Exception) for r in results)
    assert store._records.stale_count == RUNS
    store.list_runs()
    assert store._records.stale_count == 0
    # appends that change every run's status: one bulk UPDATE of cursor and status in the commit
    results = store.append_many(
        [
            AppendRequest(run_id=r, events=(RunCompleted(result=1),), lease=tokens[r], status=RunStatus.COMPLETED)
            for r in ids[: RUNS // 2]
        ]
        + [
            AppendRequest(run_id=r, events=(FactProduced(node="a", value=1),), lease=tokens[r])
            for r in ids[RUNS // 2 :]
        ]
    )
    assert all(not isinstance(r, Exception) for r in results)
    # two bulk UPDATEs of the same rows in one transaction
    records = [store.get_run(r) for r in ids[RUNS // 2 :]]
    with store._db.transaction() as con:
        statements.update_runs(con, records, statements.LEASE_AND_STATUS)
        statements.update_runs(con, records)
    # a crash before the lazy rows were written: the next open repairs them in one UPDATE ... FROM
    store._db.close()
    store = DuckDBStore(path)
    try:
        _, counts = store.sql("SELECT count(*), count(DISTINCT run_id), count(idempotency_key) FROM runs")
        assert counts == [(RUNS, RUNS, RUNS // 2)]
        for i in (0, 1, RUNS // 2 - 1, RUNS // 2, RUNS - 1):
            record = store.get_run(ids[i])
            assert _row(store, ids[i]) == record
            ended = i < RUNS // 2
            assert record.status is (RunStatus.COMPLETED if ended else RunStatus.RUNNING)
            assert record.last_seq == 3 and record.lease == tokens[ids[i]]
    finally:
        store.close()
