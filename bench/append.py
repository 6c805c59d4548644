"""append: events/s through the Store actor from 8 concurrent writers, against raw batched DuckDB inserts.

A writer is a worker: it drives many runs, each appending a cycle's events and waiting for the
receipt; appends made while the writer's Store actor call is out share its next call."""

from __future__ import annotations

import tempfile
import time

from common import Result, emit, start_ray, stop_ray

WRITERS = 8  # worker actors
RUNS_PER_WRITER = 32  # runs each drives at once (RunnerConfig.runs_per_worker's default)
APPENDS_PER_RUN = int(__import__("os").environ.get("APPENDS_PER_RUN", "20"))
SOLO_APPENDS = 200
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
    total = WRITERS * RUNS_PER_WRITER * APPENDS_PER_RUN * EVENTS_PER_APPEND
    start = time.perf_counter()
    columns: list[list] = [[], [], [], [], [], []]
    for w in range(WRITERS * RUNS_PER_WRITER):
        seq = 1
        for k in range(APPENDS_PER_RUN):
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


def _setup(store, runs: list[str]) -> dict[str, int]:
    import ray

    from runner.events import RunSubmitted
    from runner.store import NewRun

    submitted = RunSubmitted(workflow="bench", input=None, definition_hash="h")
    news = [NewRun(run_id=r, workflow="bench", definition=b"d", definition_hash="h", events=(submitted,)) for r in runs]
    ray.get(store.create_runs.remote(news))
    return {r: ray.get(store.acquire_lease.remote(r, "bench", 600)).token for r in runs}


def ours() -> tuple[float, dict]:
    """Each writer is what a worker is: an async actor driving RUNS_PER_WRITER runs at once, each
    appending one cycle's events and waiting for its receipt before the next, through the
    worker's own batching (one Store actor call at a time, carrying the appends made meanwhile)."""
    import ray

    from runner.store_actor import RemoteStoreActor

    store = RemoteStoreActor.options(max_concurrency=64).remote(f"duckdb:///{tempfile.mkdtemp()}/s.duckdb")
    runs = [f"run-{w}-{r}" for w in range(WRITERS) for r in range(RUNS_PER_WRITER)]
    leases = _setup(store, runs)

    @ray.remote(num_cpus=0)
    class Writer:
        def __init__(self, store) -> None:
            from runner.batching import CallBatcher

            self.appends = CallBatcher(lambda requests: store.append_batch.remote(requests))

        async def write(self, leases: dict[str, int], appends: int) -> tuple[int, int]:
            import asyncio

            from runner.store import AppendRequest

            async def one_run(run_id: str, lease: int) -> None:
                for k in range(appends):
                    request = AppendRequest(run_id=run_id, events=tuple(_events(k)), lease=lease)
                    await self.appends.call(request)  # the run waits for its receipt, as a worker's cycle does

            await asyncio.gather(*(one_run(run_id, lease) for run_id, lease in leases.items()))
            return self.appends.calls, self.appends.requests

    writers = [Writer.remote(store) for _ in range(WRITERS)]
    mine = [{r: leases[r] for r in runs if r.startswith(f"run-{w}-")} for w in range(WRITERS)]
    ray.get([w.write.remote(m, 2) for w, m in zip(writers, mine, strict=True)])  # warm
    start = time.perf_counter()
    counts = ray.get([w.write.remote(m, APPENDS_PER_RUN) for w, m in zip(writers, mine, strict=True)])
    elapsed = time.perf_counter() - start
    stats = ray.get(store.stats.remote())
    total = len(runs) * APPENDS_PER_RUN * EVENTS_PER_APPEND
    for run_id in runs:
        assert ray.get(store.get_run.remote(run_id)).last_seq == 1 + (APPENDS_PER_RUN + 2) * EVENTS_PER_APPEND
    calls = sum(c for c, _ in counts)
    return total / elapsed, {
        "appends_per_s": round(len(runs) * APPENDS_PER_RUN / elapsed),
        "store_calls": calls,
        "appends_per_call": round(sum(r for _, r in counts) / calls, 1),
        "commits": stats.commits,
        "largest_commit_events": stats.largest_commit,
        "one_run_per_writer_events_per_s": round(one_run_per_writer(store)),
    }


def one_run_per_writer(store) -> float:
    """For reference: 8 writers with one run each, appending synchronously (no batching to share)."""
    import ray

    runs = [f"solo-{w}" for w in range(WRITERS)]
    leases = _setup(store, runs)

    @ray.remote(num_cpus=0)
    class Solo:
        def write(self, store, run_id: str, lease: int, appends: int) -> int:
            for k in range(appends):
                ray.get(store.append.remote(run_id, _events(k), lease))
            return appends

    solos = [Solo.remote() for _ in range(WRITERS)]
    start = time.perf_counter()
    ray.get([s.write.remote(store, r, leases[r], SOLO_APPENDS) for s, r in zip(solos, runs, strict=True)])
    return WRITERS * SOLO_APPENDS * EVENTS_PER_APPEND / (time.perf_counter() - start)


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
