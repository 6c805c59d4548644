"""The DuckDB store's caches keep their invariants, alone and against the file."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.duckdb import CacheLimits, DuckDBStore
from adapters.duckdb.caches import ENDED_RECORDS, TAIL_EVENTS, RecordCache, TailCache
from runner.events import FactProduced, RunSubmitted, StepStarted, StoredEvent
from runner.store import NewRun, RunRecord, RunStatus


def _record(run_id: str, status: RunStatus = RunStatus.RUNNING, last_seq: int = 1) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow="wf",
        status=status,
        definition=b"def",
        definition_hash="h",
        created_at=0.0,
        updated_at=0.0,
        last_seq=last_seq,
    )


# ------------------------------------------------------------------ RecordCache
def test_the_record_cache_keeps_every_live_run_and_the_10000_latest_ended_ones():
    assert ENDED_RECORDS == 10_000
    cache = RecordCache()
    for i in range(ENDED_RECORDS + 50):
        cache.put(_record(f"live{i}"))
        cache.put(_record(f"ended{i}", RunStatus.COMPLETED))
    assert cache.live_count == ENDED_RECORDS + 50  # runs still going are never evicted
    assert cache.ended_count == ENDED_RECORDS
    assert all(cache.get(f"ended{i}") is None for i in range(50))  # the earliest ended left first
    assert all(cache.get(f"ended{i}") is not None for i in range(50, ENDED_RECORDS + 50))
    assert all(cache.get(f"live{i}") is not None for i in range(ENDED_RECORDS + 50))


def test_an_ended_record_read_again_is_the_latest_and_stays():
    cache = RecordCache(ended_limit=2)
    for run_id in ("a", "b"):
        cache.put(_record(run_id, RunStatus.FAILED))
    cache.put(_record("a", RunStatus.FAILED))  # read back: now the most recent
    cache.put(_record("c", RunStatus.CANCELLED))
    assert cache.get("a") is not None and cache.get("b") is None and cache.get("c") is not None


def test_a_run_that_ends_moves_from_live_to_ended():
    cache = RecordCache()
    running = cache.put(_record("r1"))
    assert cache.get("r1") is running and cache.live_count == 1
    done = cache.put(replace(running, status=RunStatus.COMPLETED, last_seq=5))
    assert cache.get("r1") is done
    assert (cache.live_count, cache.ended_count) == (0, 1)


def test_no_snapshot_marks_are_forgotten_when_a_snapshot_is_saved_or_the_run_ends_or_goes():
    cache = RecordCache()
    for run_id in ("saved", "ends", "deleted", "kept"):
        cache.put(_record(run_id))
        cache.note_no_snapshot(run_id)
    cache.note_snapshot("saved")
    cache.put(_record("ends", RunStatus.COMPLETED))
    cache.forget("deleted")
    assert [r for r in ("saved", "ends", "deleted", "kept") if cache.has_no_snapshot(r)] == ["kept"]
    assert cache.no_snapshot_count == 1


def test_stale_rows_are_listed_with_their_current_record_until_written():
    cache = RecordCache()
    cache.put(_record("a", last_seq=1))
    cache.put(_record("b", last_seq=1))
    cache.mark_stale("a")
    cache.mark_stale("b")
    newer = cache.put(_record("a", last_seq=9))
    assert sorted(cache.stale_records(), key=lambda r: r.run_id) == [newer, _record("b", last_seq=1)]
    cache.mark_written("b")
    assert cache.stale_records() == [newer]
    cache.all_written()
    assert cache.stale_records() == [] and cache.stale_count == 0


def test_forget_drops_everything_about_a_run():
    cache = RecordCache()
    cache.put(_record("a"))
    cache.mark_stale("a")
    cache.note_no_snapshot("a")
    cache.forget("a")
    assert cache.get("a") is None and cache.stale_count == 0 and not cache.has_no_snapshot("a")


def test_a_disabled_record_cache_keeps_nothing():
    cache = RecordCache(enabled=False)
    record = _record("a")
    assert cache.put(record) is record
    cache.note_no_snapshot("a")
    assert cache.get("a") is None and not cache.has_no_snapshot("a")


# -------------------------------------------------------------------- TailCache
def _events(count: int) -> list[FactProduced]:
    return [FactProduced(node=f"n{i}", value=i) for i in range(count)]


def test_the_tail_cache_serves_reads_from_inside_the_tail_only():
    assert TAIL_EVENTS == 100_000
    tails = TailCache()
    tails.remember("r", 4, _events(3))  # events 4, 5, 6
    assert tails.after("r", 2) is None  # event 3 is not in memory
    assert [s.seq for s in tails.after("r", 3) or []] == [4, 5, 6]
    assert [s.seq for s in tails.after("r", 5) or []] == [6]
    assert tails.after("r", 6) == []
    assert tails.after("other", 0) is None


def test_contiguous_writes_extend_a_tail_and_a_gap_starts_a_new_one():
    tails = TailCache()
    tails.remember("r", 1, _events(2))
    tails.remember("r", 3, _events(1))
    assert [s.seq for s in tails.after("r", 0) or []] == [1, 2, 3]
    tails.remember("r", 7, _events(2))  # not contiguous: the old tail is dropped
    assert tails.after("r", 0) is None
    assert [s.seq for s in tails.after("r", 6) or []] == [7, 8]
    assert tails.event_count == 2


def test_the_tail_cache_evicts_the_least_recently_written_runs_beyond_its_limit():
    tails = TailCache(limit=5)
    tails.remember("a", 1, _events(2))
    tails.remember("b", 1, _events(2))
    tails.remember("a", 3, _events(1))  # a is now the most recently written
    tails.remember("c", 1, _events(2))  # 7 > 5: b leaves
    assert "b" not in tails and "a" in tails and "c" in tails
    assert tails.event_count == 5
    tails.forget("a")
    assert tails.event_count == 2 and "a" not in tails
    tails.clear()
    assert tails.event_count == 0


# ---------------------------------------------------- the caches against the file
def _new_run(run_id: str) -> NewRun:
    submitted = RunSubmitted(workflow="wf", input=None, definition_hash="h")
    return NewRun(run_id=run_id, workflow="wf", definition=b"def", definition_hash="h", events=(submitted,))


@settings(max_examples=25, deadline=None)
@given(
    writes=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), max_size=25),
    limit=st.integers(1, 20),
)
def test_reads_served_from_memory_equal_the_file(tmp_path_factory, writes, limit):
    path = tmp_path_factory.mktemp("caches") / "store.duckdb"
    store = DuckDBStore(path, cache_limits=CacheLimits(tail_events=limit, ended_records=1))
    try:
        runs = [f"r{i}" for i in range(4)]
        store.create_runs([_new_run(r) for r in runs])
        tokens = {r.run_id: r.lease for r in store.take_over(runs, "w", 30) if isinstance(r, RunRecord)}
        for which, count in writes:
            run_id = runs[which]
            events = [StepStarted(node=f"s{i}", attempt=1, lease=tokens[run_id]) for i in range(count)]
            store.append(run_id, events, tokens[run_id])
        assert store._tails.event_count <= limit
        for run_id in runs:
            from_file = list(store._stream(run_id, 0))
            assert store.get_run(run_id).last_seq == len(from_file)
            for after in range(len(from_file) + 1):
                served: list[StoredEvent] = list(store.stream(run_id, after))
                assert served == from_file[after:], (run_id, after)
            assert store.load_snapshot(run_id) is None
    finally:
        store.close()
