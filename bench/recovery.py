"""recovery: time from a worker's start to its first new step, for runs with 1k, 10k and 100k events of history.

Each history is a map whose items have all finished, with the reduce still to run; the
latest snapshot sits where a worker with the default ``snapshot_every`` would have left it.
A Runner started on the store resumes the run: the figure is the time from its worker's
start to the reduce's StepStarted. Baseline: the same at 1k events.
"""

from __future__ import annotations

import tempfile

from common import Result, close, connect, emit, start_ray, stop_ray

SIZES = (1_000, 10_000, 100_000)


def _workflow():
    import runner

    wf = runner.Workflow("history")

    @wf.step()
    def items(n):
        return list(range(n))

    @wf.map(after=items)
    def echo(x):
        return x

    @wf.reduce(after=echo)
    def count(values):
        return len(values)

    return wf


def build(events: int) -> tuple[str, str, int]:
    """A store holding one running run with ``events`` events; returns (url, run_id, items)."""
    from adapters.duckdb import DuckDBStore
    from runner.client import pickle_definition
    from runner.events import FactProduced, MapExpanded, RunSubmitted, StepStarted, StoredEvent
    from runner.state import WorkflowState
    from runner.store import NewRun, RunStatus
    from runner.worker import WorkerConfig

    wf = _workflow()
    n = (events - 4) // 2
    path = f"{tempfile.mkdtemp(prefix='runner-recovery-')}/store.duckdb"
    store = DuckDBStore(path)
    run_id = f"history-{events}"
    submitted = RunSubmitted(workflow=wf.name, input=n, definition_hash=wf.definition_hash())
    store.create_run(
        NewRun(
            run_id=run_id,
            workflow=wf.name,
            definition=pickle_definition(wf),
            definition_hash=wf.definition_hash(),
            events=(submitted,),
        )
    )
    lease = store.acquire_lease(run_id, "old-worker", 30).token
    store.transition(run_id, RunStatus.RUNNING, lease=lease)
    log = [
        StepStarted(node="items", attempt=1, lease=lease),
        FactProduced(node="items", value=list(range(n))),
        MapExpanded(node="echo", count=n),
    ]
    for i in range(n):
        log += [StepStarted(node="echo", item=i, attempt=1, lease=lease), FactProduced(node="echo", item=i, value=i)]
    state = WorkflowState(wf)
    state.apply(StoredEvent(run_id=run_id, seq=1, event=submitted))
    every = WorkerConfig().snapshot_every
    snapshot_at = len(log) + 1 - every // 2  # a worker snapshots every `every` events: half of them stream after it
    for offset in range(0, len(log), 10_000):
        chunk = log[offset : offset + 10_000]
        receipt = store.append(run_id, chunk, lease)
        for seq, event in zip(range(receipt.first_seq, receipt.last_seq + 1), chunk, strict=True):
            state.apply(StoredEvent(run_id=run_id, seq=seq, event=event))
            if seq == snapshot_at:
                store.save_snapshot(run_id, seq, state.snapshot())
    store.close()
    return f"duckdb:///{path}", run_id, n


def measure(url: str, run_id: str, n: int) -> tuple[float, dict]:
    import ray

    from runner.testing.polling import eventually

    client = connect(store=url)
    assert client.get(run_id).result(timeout=300) == n
    # result() answers when the run's last commit lands; the Runner hears of the turn's end just after
    outcome = eventually(lambda: ray.get(client.runner.last_outcome.remote(run_id)), timeout=60)
    history = client.get(run_id).history()
    started = next(e.event.at for e in history if type(e.event).__name__ == "StepStarted" and e.event.node == "count")
    close(client)
    stats = outcome.recovery
    return started - stats.started_at, {
        "events": history[-1].seq,
        "snapshot_cursor": stats.snapshot_cursor,
        "streamed": stats.events_streamed,
        "fold_s": round(stats.seconds, 3),
    }


def main() -> Result:
    built = {size: build(size) for size in SIZES}
    start_ray()
    times: dict[int, float] = {}
    details: dict[str, dict] = {}
    try:
        for size in SIZES:
            times[size], details[str(size)] = measure(*built[size])
            details[str(size)]["seconds"] = round(times[size], 3)
    finally:
        stop_ray()
    ratio = times[SIZES[-1]] / times[SIZES[0]]
    return emit(
        Result(
            name="recovery",
            figure=", ".join(f"{size // 1000}k: {times[size] * 1000:.0f} ms" for size in SIZES),
            baseline=f"1k events: {times[SIZES[0]] * 1000:.0f} ms",
            ratio=ratio,
            target="<= 2 (100k against 1k)",
            met=ratio <= 2,
            details=details,
        )
    )


if __name__ == "__main__":
    main()
