"""submit: p50/p99 latency of a durable submit (acknowledged after the run is stored).

Baseline: the durability floor, the same run record and first event written to a DuckDB
file by the adapter in this process (no Ray, no actor hop).

The submitted runs execute one at a time behind the submits (one worker, one run per
worker), so the figure is the submit path itself rather than contention with dozens of
runs executing at once on a 2-core machine.
"""

from __future__ import annotations

import tempfile
import time

from common import Result, close, connect, emit, percentile, start_ray, stop_ray

SUBMITS = 300


def _workflow():
    import runner

    wf = runner.Workflow("submitted")

    @wf.step()
    def noop(x):
        return x

    return wf


def baseline(count: int) -> tuple[float, float]:
    from adapters.duckdb import DuckDBStore
    from runner.events import RunSubmitted
    from runner.store import NewRun

    wf = _workflow()
    from runner.client import pickle_definition

    definition = pickle_definition(wf)
    store = DuckDBStore(f"{tempfile.mkdtemp()}/floor.duckdb")
    samples = []
    for i in range(count):
        start = time.perf_counter()
        submitted = RunSubmitted(workflow=wf.name, input={"order": i}, definition_hash=wf.definition_hash())
        store.create_run(
            NewRun(
                run_id=f"r{i}",
                workflow=wf.name,
                definition=definition,
                definition_hash=wf.definition_hash(),
                events=(submitted,),
            )
        )
        samples.append(time.perf_counter() - start)
    store.close()
    return percentile(samples, 50), percentile(samples, 99)


def ours(count: int) -> tuple[float, float]:
    from runner.runner import RunnerConfig

    client = connect(config=RunnerConfig(max_workers=1, runs_per_worker=1))
    wf = _workflow()
    client.submit(wf, {"order": -1}).result(timeout=60)
    samples = []
    for i in range(count):
        start = time.perf_counter()
        client.submit(wf, {"order": i})
        samples.append(time.perf_counter() - start)
    close(client)
    return percentile(samples, 50), percentile(samples, 99)


def main() -> Result:
    floor50, floor99 = baseline(SUBMITS)
    start_ray()
    try:
        p50, p99 = ours(SUBMITS)
    finally:
        stop_ray()
    return emit(
        Result(
            name="submit",
            figure=f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms",
            baseline=f"in-process DuckDB create_run p50 {floor50 * 1000:.2f} ms, p99 {floor99 * 1000:.2f} ms",
            ratio=p50 / floor50,
            target="reported (no target)",
            met=True,
            details={"submits": SUBMITS},
        )
    )


if __name__ == "__main__":
    main()
