"""append: events/s through the Store actor from 8 concurrent writers, against raw batched DuckDB inserts."""

from __future__ import annotations

import tempfile
import time

from common import Result, emit, start_ray, stop_ray

WRITERS = 8
APPENDS = 300  # per writer
EVENTS_PER_APPEND = 3  # a typical cycle: a result, the start it unlocks, a bookkeeping event


def _events(k: int):
    from runner.events import FactProduced, StepStarted

    return [
        FactProduced(node=f"step{k}", value={"order": k, "total": 12.5}, attempt=1),
        StepStarted(node=f"step{k + 1}", attempt=1, lease=1),
        StepStarted(node=f"side{k + 1}", attempt=1, lease=1),
    ]


def baseline() -> float:
    """The same rows, encoded the same way, inserted by DuckDB in one process and one transaction."""
    import duckdb

    from adapters.duckdb import MIGRATIONS
    from runner import serialization

    con = duckdb.connect(f"{tempfile.mkdtemp()}/raw.duckdb")
    for statement in MIGRATIONS[0][1]:
        con.execute(statement)
    total = WRITERS * APPENDS * EVENTS_PER_APPEND
    start = time.perf_counter()
    columns: list[list] = [[], [], [], [], [], []]
    for w in range(WRITERS):
        seq = 1
        for k in range(APPENDS):
            for event in _events(k):
                kind, payload = serialization.encode_event(event)
                for column, value in zip(columns, (f"run-{w}", seq, kind, event.node, event.at, payload), strict=True):
                    column.append(value)
                seq += 1
    con.execute("BEGIN TRANSACTION")
    con.execute(
        "INSERT INTO events SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), "
        "unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), unnest(?::VARCHAR[])",
        columns,
    )
    con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return total / elapsed


def ours() -> tuple[float, dict]:
    import ray

    from runner.events import RunSubmitted
    from runner.store import NewRun
    from runner.store_actor import RemoteStoreActor

    store = RemoteStoreActor.options(max_concurrency=64).remote(f"duckdb:///{tempfile.mkdtemp()}/s.duckdb")
    leases = []
    for w in range(WRITERS):
        submitted = RunSubmitted(workflow="bench", input=None, definition_hash="h")
        ray.get(
            store.create_run.remote(
                NewRun(run_id=f"run-{w}", workflow="bench", definition=b"d", definition_hash="h", events=(submitted,))
            )
        )
        leases.append(ray.get(store.acquire_lease.remote(f"run-{w}", f"writer-{w}", 600)).token)

    @ray.remote(num_cpus=0)
    class Writer:
        def write(self, store, run_id: str, lease: int, appends: int) -> int:
            for k in range(appends):
                ray.get(store.append.remote(run_id, _events(k), lease))  # synchronous, as a worker's cycle is
            return appends

    writers = [Writer.remote() for _ in range(WRITERS)]
    ray.get([w.write.remote(store, f"run-{i}", leases[i], 5) for i, w in enumerate(writers)])  # warm
    start = time.perf_counter()
    ray.get([w.write.remote(store, f"run-{i}", leases[i], APPENDS) for i, w in enumerate(writers)])
    elapsed = time.perf_counter() - start
    stats = ray.get(store.stats.remote())
    total = WRITERS * APPENDS * EVENTS_PER_APPEND
    for i in range(WRITERS):
        assert ray.get(store.get_run.remote(f"run-{i}")).last_seq == 1 + (APPENDS + 5) * EVENTS_PER_APPEND
    return total / elapsed, {
        "appends_per_s": round(WRITERS * APPENDS / elapsed),
        "commits": stats.commits,
        "largest_commit_events": stats.largest_commit,
    }


def main() -> Result:
    raw = baseline()
    start_ray()
    try:
        mine, details = ours()
    finally:
        stop_ray()
    ratio = mine / raw
    return emit(
        Result(
            name="append",
            figure=f"{mine:.0f} events/s",
            baseline=f"raw DuckDB batched insert {raw:.0f} events/s",
            ratio=ratio,
            target=">= 0.4",
            met=ratio >= 0.4,
            details=details,
        )
    )


if __name__ == "__main__":
    main()
