"""StoreReader: what the client and the CLI read from a store, over a store adapter (no Ray)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import open_store
from adapters.duckdb import DuckDBStore
from adapters.memory import InMemoryStore
from runner import serialization
from runner.errors import RunNotFound, RunWasCancelled, StoreError, WorkflowFailed
from runner.events import Event, FactRef, RunCancelled, RunCompleted, RunFailed, RunSubmitted
from runner.reader import FileStoreReader, RunFailure
from runner.store import RunFilter, RunStatus, Store
from runner.testing.store_contract import fact, new_run


class StepBroke(Exception):
    pass


@pytest.fixture
def store() -> Iterator[InMemoryStore]:
    store = InMemoryStore()
    yield store
    store.close()


def end(store: Store, run_id: str, events: list[Event], status: RunStatus) -> None:
    """A run with ``events`` after its RunSubmitted, appended as it moves to ``status``."""
    store.create_run(new_run(run_id))
    lease = store.acquire_lease(run_id, "w1", 30.0)
    store.transition(run_id, RunStatus.RUNNING, lease=lease.token)
    if status is RunStatus.CANCELLED:
        store.transition(run_id, RunStatus.CANCELLING, lease=lease.token)
    store.append(run_id, events, lease.token, status=status)


def big(store: Store, value: object) -> FactRef:
    ref, blob = serialization.externalize(value, threshold=0)
    assert isinstance(ref, FactRef) and blob is not None
    store.save_fact(ref.hash, blob)
    return ref


def test_history_reads_the_whole_log_in_chunks(store: InMemoryStore) -> None:
    nodes = [f"s{i}" for i in range(6)]
    end(store, "r1", [*(fact(n) for n in nodes), RunCompleted(result=1)], RunStatus.COMPLETED)
    reader = FileStoreReader(store)
    reader.chunk = 2

    history = reader.history("r1")

    assert [s.seq for s in history] == list(range(1, 9))
    assert isinstance(history[0].event, RunSubmitted)
    assert [getattr(s.event, "node", None) for s in history[1:7]] == nodes
    assert [s.seq for s in reader.history("r1", after=5)] == [6, 7, 8]
    assert reader.history("r1", after=8) == []


def test_reads_of_runs_and_outcomes(store: InMemoryStore) -> None:
    end(store, "r1", [fact("a"), RunCompleted(result=1)], RunStatus.COMPLETED)
    store.create_run(new_run("r2", workflow="other"))
    reader = FileStoreReader(store)

    assert reader.get_run("r1").status is RunStatus.COMPLETED
    assert [r.run_id for r in reader.list_runs(RunFilter(workflow="other"))] == ["r2"]
    record, last = reader.outcome("r1")
    assert record.run_id == "r1" and last is not None and last.seq == 3
    assert isinstance(last.event, RunCompleted)
    first = reader.last_event("r2")
    assert first is not None and first.seq == 1 and isinstance(first.event, RunSubmitted)
    assert [(r.run_id, e.seq if e else None) for r, e in reader.outcomes(["r2", "r1"])] == [("r2", 1), ("r1", 3)]
    with pytest.raises(RunNotFound):
        reader.get_run("nope")


def test_load_value_loads_facts_at_any_depth(store: InMemoryStore) -> None:
    reader = FileStoreReader(store)
    ref = big(store, list(range(10)))

    assert reader.load_value(ref) == list(range(10))
    assert reader.load_value({"a": ref, "b": 2}) == {"a": list(range(10)), "b": 2}
    assert reader.load_value([ref, 3]) == [list(range(10)), 3]
    assert reader.load_value({"deep": [ref]}) == {"deep": [list(range(10))]}  # a map's list inside a result
    assert reader.load_value({"m": ([ref, 1], (ref,))}) == {"m": ([list(range(10)), 1], (list(range(10)),))}
    assert reader.load_value(7) == 7


def test_result_of_a_completed_run_is_its_loaded_value(store: InMemoryStore) -> None:
    ref = big(store, {"total": 42})
    end(store, "r1", [RunCompleted(result={"x": ref})], RunStatus.COMPLETED)
    reader = FileStoreReader(store)

    assert reader.result_of(*reader.outcome("r1")) == {"x": {"total": 42}}


def test_result_of_a_failed_run_raises_the_steps_own_exception(store: InMemoryStore) -> None:
    error = serialization.error_info(StepBroke("no disk"))
    end(store, "r1", [RunFailed(error=error, node="save")], RunStatus.FAILED)
    reader = FileStoreReader(store)

    with pytest.raises(StepBroke, match="no disk") as raised:
        reader.result_of(*reader.outcome("r1"))
    if hasattr(raised.value, "__notes__"):
        assert raised.value.__notes__ == ["raised in step 'save' of run 'r1'"]


def test_result_of_a_failed_run_whose_exception_cannot_be_rebuilt(store: InMemoryStore) -> None:
    error = serialization.error_info(StepBroke("no disk"))
    error = type(error)(type=error.type, message=error.message, traceback=error.traceback, pickled=None)
    end(store, "r1", [RunFailed(error=error, node="save")], RunStatus.FAILED)
    reader = FileStoreReader(store)

    with pytest.raises(WorkflowFailed, match="no disk in step 'save'") as raised:
        reader.result_of(*reader.outcome("r1"))
    assert type(raised.value) is WorkflowFailed and raised.value.run_id == "r1"


def test_result_of_a_cancelled_run(store: InMemoryStore) -> None:
    end(store, "r1", [RunCancelled(reason="by the operator")], RunStatus.CANCELLED)
    end(store, "r2", [RunCancelled()], RunStatus.CANCELLED)
    reader = FileStoreReader(store)

    with pytest.raises(RunWasCancelled, match=r"cancelled \(by the operator\)"):
        reader.result_of(*reader.outcome("r1"))
    with pytest.raises(RunWasCancelled, match=r"cancelled \(cancelled\)"):
        reader.result_of(*reader.outcome("r2"))


def test_result_of_a_run_that_ended_without_saying_why(store: InMemoryStore) -> None:
    end(store, "r1", [fact("a")], RunStatus.FAILED)
    reader = FileStoreReader(store)
    record, last = reader.outcome("r1")

    failure = RunFailure.of(record, last)
    assert failure.event is None and failure.where == "" and failure.status is RunStatus.FAILED
    with pytest.raises(WorkflowFailed, match="run ended failed"):
        reader.result_of(record, last)


def test_run_failure_names_the_step_and_the_reason(store: InMemoryStore) -> None:
    error = serialization.error_info(ValueError("bad"))
    end(store, "r1", [RunFailed(error=error, node="parse")], RunStatus.FAILED)
    end(store, "r2", [RunFailed(error=error)], RunStatus.FAILED)
    end(store, "r3", [RunCancelled(reason="too slow")], RunStatus.CANCELLED)
    reader = FileStoreReader(store)

    assert RunFailure.of(*reader.outcome("r1")).where == " in step 'parse'"
    assert RunFailure.of(*reader.outcome("r2")).where == ""
    assert RunFailure.of(*reader.outcome("r3")).cancel_reason == "too slow"


def test_sql_needs_a_store_that_speaks_it(store: InMemoryStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="duckdb:///"):
        FileStoreReader(store).sql("SELECT 1")

    path = tmp_path / "s.duckdb"
    writer = DuckDBStore(path)
    end(writer, "r1", [RunCompleted(result=1)], RunStatus.COMPLETED)
    writer.close()
    reader = FileStoreReader(open_store("duckdb:///" + str(path), read_only=True))
    try:
        assert reader.sql("SELECT run_id, status FROM runs") == (["run_id", "status"], [("r1", "completed")])
        assert [s.seq for s in reader.history("r1")] == [1, 2]
    finally:
        reader.close()
