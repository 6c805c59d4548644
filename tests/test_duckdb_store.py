"""DuckDB-only behaviour: the file itself (durability, permissions, bad files, locking, SQL)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from adapters import open_store, store_path
from adapters.duckdb import MIGRATIONS, CacheLimits, DuckDBStore
from runner.errors import InvalidArgument, StoreCorrupt, StoreError, StoreLocked, StorePathInvalid
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


def test_a_run_stored_before_a_reopen_is_found_by_id_and_by_key_not_stored_again(tmp_path):
    """New runs are inserted without a lookup first; one the store no longer remembers (it was
    reopened) is refused by the file's keys, and the stored run is returned, nothing written."""
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    keyed = NewRun(
        run_id="r2",
        workflow="wf",
        definition=b"def",
        definition_hash="h",
        events=_new_run().events,
        idempotency_key="order-7",
    )
    store.create_runs([_new_run("r1"), keyed])
    store.close()

    reopened = DuckDBStore(path)
    again = NewRun(
        run_id="r3",
        workflow="wf",
        definition=b"def",
        definition_hash="h",
        events=_new_run().events,
        idempotency_key="order-7",
    )
    answers = reopened.create_runs([_new_run("r1"), again, _new_run("r4")])
    assert [(record.run_id, created) for record, created in answers] == [("r1", False), ("r2", False), ("r4", True)]
    assert [type(s.event).__name__ for s in reopened.stream("r1")] == ["RunSubmitted"]
    assert not reopened.exists("r3")
    assert reopened.sql("SELECT count(*) FROM runs")[1] == [(3,)]
    assert reopened.sql("SELECT count(*) FROM events WHERE run_id = 'r1'")[1] == [(1,)]
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
    assert isinstance(info.value, StoreCorrupt) and info.value.path == str(path)
    assert "not a readable DuckDB database" in str(info.value)


def test_a_store_with_damaged_blocks_is_store_corrupt(tmp_path):
    path = tmp_path / "damaged.duckdb"
    store = DuckDBStore(path)
    store.create_runs([_new_run(f"r{i}") for i in range(20_000)])
    store.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:  # scribble over part of every data block after the headers
        for offset in range(12_288 + 5_000, size, 262_144):
            f.seek(offset)
            f.write(b"\xff" * 64)
    with pytest.raises(StoreCorrupt) as info:
        reopened = DuckDBStore(path)  # the open or the first full read meets a bad checksum
        try:
            reopened.sql("SELECT count(*), max(octet_length(definition)), max(workflow) FROM runs")
            reopened.sql("SELECT count(*), max(payload) FROM events")
        finally:
            reopened.close()
    assert info.value.path == str(path) and "checksum" in info.value.detail


def test_a_broken_file_whose_path_says_lock_is_corrupt_not_locked(tmp_path):
    path = tmp_path / "locks" / "block.duckdb"
    path.parent.mkdir()
    path.write_bytes(b"x" * 10_000)
    with pytest.raises(StoreCorrupt):
        DuckDBStore(path)


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
    with store._db.transaction() as con:
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
        "from runner.errors import StoreError, StoreLocked\n"
        "try:\n"
        f"    DuckDBStore({str(path)!r})\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3 if isinstance(exc, StoreLocked) and exc.__cause__ is not None else 4)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    store.close()
    assert proc.returncode == 3, proc.stderr
    assert "in use by another process" in proc.stdout
    assert str(path) in proc.stdout


class _Holder:
    """Another process that holds a store file open until released."""

    def __init__(self, path: os.PathLike[str]) -> None:
        code = (
            "import sys\n"
            "from adapters.duckdb import DuckDBStore\n"
            f"store = DuckDBStore({str(path)!r})\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n"
            "store.close()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


def test_a_held_file_is_store_locked_for_writers_and_readers(tmp_path):
    path = tmp_path / "held.duckdb"
    holder = _Holder(path)
    try:
        for read_only in (False, True):
            with pytest.raises(StoreLocked) as info:
                DuckDBStore(path, read_only=read_only)
            assert info.value.path == str(path)
            assert "in use by another process" in str(info.value)
            assert isinstance(info.value.__cause__, duckdb.IOException)
    finally:
        holder.release()
    DuckDBStore(path).close()  # free again


def test_open_with_retry_waits_while_the_file_is_held_and_not_otherwise(tmp_path):
    from runner.store_actor import open_with_retry

    path = tmp_path / "held.duckdb"
    url = f"duckdb:///{path}"
    holder = _Holder(path)
    try:
        with pytest.raises(StoreLocked):
            open_with_retry(url, deadline_seconds=0)
        opened: list[object] = []
        waiting = threading.Thread(target=lambda: opened.append(open_with_retry(url, deadline_seconds=60)))
        waiting.start()
    finally:
        holder.release()
    waiting.join(timeout=60)
    assert len(opened) == 1 and isinstance(opened[0], DuckDBStore)
    opened[0].close()
    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(b"not a database" * 100)
    started = time.monotonic()
    with pytest.raises(StoreCorrupt):  # not a lock: no waiting
        open_with_retry(f"duckdb:///{broken}", deadline_seconds=60)
    assert time.monotonic() - started < 30


def test_sql_is_read_only_and_reads_the_history(tmp_path):
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.create_run(_new_run("r1"))
    columns, rows = store.sql("SELECT run_id, seq, kind FROM events ORDER BY seq")
    assert columns == ["run_id", "seq", "kind"]
    assert rows == [("r1", 1, "RunSubmitted")]
    with pytest.raises(InvalidArgument, match="read-only"):
        store.sql("DELETE FROM events")  # refused (tests/test_duckdb_sql.py has the rest)
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


# The runs row's cursor (last_seq, updated_at) is written lazily for appends that do not
# change the run's status; these tests pin that nothing ever observes a stale row.
def _append_steps(store: DuckDBStore, run_id: str, token: int, steps: int) -> None:
    for i in range(steps):
        store.append(
            run_id, [StepStarted(node=f"s{i}", attempt=1, lease=token), FactProduced(node=f"s{i}", value=i)], token
        )


def _row_cursor(store: DuckDBStore, run_id: str) -> int:
    with store._db.read() as con:
        row = con.execute("SELECT last_seq FROM runs WHERE run_id = ?", [run_id]).fetchone()
    assert row is not None
    return int(row[0])


def test_a_plain_append_defers_the_row_update_but_reads_see_the_cursor(tmp_path):
    store = DuckDBStore(tmp_path / "store.duckdb")
    store.create_run(_new_run())
    lease = store.acquire_lease("r1", "w", 30)
    _append_steps(store, "r1", lease.token, 3)
    assert _row_cursor(store, "r1") == 1  # the row was not rewritten: one statement per append
    assert store.get_run("r1").last_seq == 7
    assert [r.last_seq for r in store.list_runs()] == [7]
    _, rows = store.sql("SELECT last_seq FROM runs WHERE run_id = 'r1'")
    assert rows == [(7,)]
    store.close()


def test_a_status_change_writes_the_row_at_once(tmp_path):
    from runner.events import RunCompleted
    from runner.store import RunStatus

    store = DuckDBStore(tmp_path / "store.duckdb")
    store.create_run(_new_run())
    lease = store.acquire_lease("r1", "w", 30)
    store.transition("r1", RunStatus.RUNNING, lease=lease.token)
    _append_steps(store, "r1", lease.token, 1)
    store.append("r1", [RunCompleted(result=1)], lease.token, status=RunStatus.COMPLETED)
    assert _row_cursor(store, "r1") == 4
    store.close()


def test_a_crash_before_the_rows_are_written_is_repaired_on_the_next_open(tmp_path):
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    store.create_run(_new_run())
    store.create_run(_new_run("r2"))
    lease = store.acquire_lease("r1", "w", 30)
    _append_steps(store, "r1", lease.token, 2)
    store._db.close()  # the process dies: no store.close(), the cached cursors are lost

    reopened = DuckDBStore(path)
    assert _row_cursor(reopened, "r1") == 5
    assert reopened.get_run("r1").last_seq == 5
    assert reopened.get_run("r2").last_seq == 1
    reopened.append("r1", [StepStarted(node="x", attempt=1, lease=lease.token)], lease.token)
    assert [e.seq for e in reopened.stream("r1")] == [1, 2, 3, 4, 5, 6]
    reopened.close()


def test_closing_writes_the_deferred_rows(tmp_path):
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    store.create_run(_new_run())
    lease = store.acquire_lease("r1", "w", 30)
    _append_steps(store, "r1", lease.token, 2)
    store.close()
    reader = DuckDBStore(path, read_only=True)
    assert reader.get_run("r1").last_seq == 5
    reader.close()


# Recently written events and "no snapshot yet" are served from memory; they must agree with SQL.
def test_reads_after_writes_match_the_file(tmp_path):
    # a small tail: eviction happens in this test
    store = DuckDBStore(tmp_path / "store.duckdb", cache_limits=CacheLimits(tail_events=12))
    store.create_runs([_new_run(f"r{i}") for i in range(3)])
    leases = {f"r{i}": store.acquire_lease(f"r{i}", "w", 30).token for i in range(3)}
    for round_ in range(3):
        for run_id, token in leases.items():
            _append_steps(store, run_id, token, 1 + round_)
    assert store._tails.event_count <= 12
    store.save_snapshot("r1", 4, b"snap")
    for run_id in leases:
        for after in range(0, store.get_run(run_id).last_seq + 1):
            assert list(store.stream(run_id, after)) == list(store._stream(run_id, after)), (run_id, after)
    assert store.load_snapshot("r0") is None
    snapshot = store.load_snapshot("r1")
    assert snapshot is not None and (snapshot.cursor, snapshot.blob) == (4, b"snap")
    store.delete("r2")
    assert "r2" not in store._tails
    store.close()

    reopened = DuckDBStore(tmp_path / "store.duckdb")  # a fresh process knows nothing: reads go to SQL
    assert [s.seq for s in reopened.stream("r0")] == list(range(1, 14))
    assert reopened.load_snapshot("r1") is not None and reopened.load_snapshot("r0") is None
    reopened.close()


def test_records_of_ended_runs_leave_memory_and_are_read_back_exactly(tmp_path):
    from runner.events import RunCompleted
    from runner.store import RunStatus

    store = DuckDBStore(tmp_path / "store.duckdb", cache_limits=CacheLimits(ended_records=3))
    store.create_runs([_new_run(f"r{i}") for i in range(8)])
    for i in range(8):
        token = store.take_over([f"r{i}"], "w", 30)[0].lease  # type: ignore[union-attr]
        _append_steps(store, f"r{i}", token, 2)  # a lazily written cursor first
        if i % 2:
            store.append(f"r{i}", [RunCompleted(result=i)], token, status=RunStatus.COMPLETED)
        else:
            store.transition(f"r{i}", RunStatus.CANCELLING, lease=token)
            store.transition(f"r{i}", RunStatus.CANCELLED, lease=token)  # ends without an append
    records = store._records
    assert records.ended_count == 3 and not records.live_count and not records.stale_count
    assert not records.no_snapshot_count
    for i in range(8):
        record = store.get_run(f"r{i}")  # five of them from the file
        assert record.last_seq == (6 if i % 2 else 5)
        assert record.status is (RunStatus.COMPLETED if i % 2 else RunStatus.CANCELLED)
        assert _row_cursor(store, f"r{i}") == record.last_seq
    store.close()


def test_a_directory_or_an_uncreatable_folder_is_store_path_invalid(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(StorePathInvalid, match="it is a directory") as info:
        DuckDBStore(folder)
    assert info.value.path == str(folder) and isinstance(info.value, StoreError)
    blocker = tmp_path / "a-file"
    blocker.write_text("text")
    with pytest.raises(StorePathInvalid, match="its directory cannot be created"):
        DuckDBStore(blocker / "sub" / "s.duckdb")
    assert blocker.read_text() == "text"


def test_appends_that_follow_the_log_read_nothing_to_check_their_identity(tmp_path, monkeypatch):
    reads: list[int] = []
    lookup = DuckDBStore._request_id

    def counted(con, run_id, seq):
        reads.append(seq)
        return lookup(con, run_id, seq)

    monkeypatch.setattr(DuckDBStore, "_request_id", staticmethod(counted))
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.create_run(_new_run())
        token = store.acquire_lease("r1", "w", 30).token
        for seq in range(1, 51):
            store.append("r1", [FactProduced(node=f"n{seq}", value=seq)], token, after_seq=seq, request_id=f"q{seq}")
        assert reads == []  # the cursor is known in memory: no read per append
        store.append("r1", [FactProduced(node="n50", value=50)], token, after_seq=50, request_id="q50")
        assert reads == [51]  # a retry reads the one row its identity is kept on


def test_leases_of_runs_in_memory_are_answered_without_sql(tmp_path, monkeypatch):
    from runner.store import LeaseState

    store = DuckDBStore(tmp_path / "store.duckdb")
    store.create_runs([_new_run("r1"), _new_run("r2")])
    [taken] = store.take_over(["r1"], "w1", 30)
    store.close()
    store = DuckDBStore(tmp_path / "store.duckdb")  # a fresh process: nothing in memory yet
    first = store.leases(["r1", "r2", "ghost"])  # read from the file once, then kept
    assert [(lease.run_id, lease.token, lease.owner) for lease in first] == [("r1", taken.lease, "w1"), ("r2", 0, None)]

    def no_sql() -> None:
        raise AssertionError("leases() of runs in memory ran SQL")

    monkeypatch.setattr(store._db, "read", no_sql)
    assert store.leases(["r2", "r1"]) == [first[1], first[0]]
    assert isinstance(first[0], LeaseState)
    store.close()
