"""chain: 200 runs x 3 sequential trivial steps on the DuckDB store, against the same DAGs as plain Ray tasks."""

from __future__ import annotations

import time

from common import Result, close, connect, emit, start_ray, stop_ray

RUNS = 200


def _workflow():
    import runner

    wf = runner.Workflow("chain")

    @wf.step()
    def one(x):
        return x + 1

    @wf.step(after=one)
    def two(x):
        return x * 2

    @wf.step(after=two)
    def three(x):
        return x - 3

    return wf


def baseline(runs: int) -> float:
    import ray

    @ray.remote
    def one(x):
        return x + 1

    @ray.remote
    def two(x):
        return x * 2

    @ray.remote
    def three(x):
        return x - 3

    ray.get([three.remote(two.remote(one.remote(i))) for i in range(20)])  # warm the task workers
    start = time.perf_counter()
    results = ray.get([three.remote(two.remote(one.remote(i))) for i in range(runs)])
    elapsed = time.perf_counter() - start
    assert results == [(i + 1) * 2 - 3 for i in range(runs)]
    return runs / elapsed


def ours(runs: int) -> tuple[float, dict]:
    client = connect()
    wf = _workflow()
    client.results(client.submit_many(wf, list(range(10))), timeout=120)  # warm the workers
    start = time.perf_counter()
    handles = client.submit_many(wf, list(range(runs)))
    results = client.results(handles, timeout=600)
    elapsed = time.perf_counter() - start
    assert results == [(i + 1) * 2 - 3 for i in range(runs)]
    stats = client.stats()
    commits = __import__("ray").get(client.store.stats.remote())
    close(client)
    return runs / elapsed, {
        "seconds": round(elapsed, 2),
        "workers": stats.peak_workers,
        "commits": commits.commits,
        "appends": commits.batches,
    }


def main() -> Result:
    start_ray()
    try:
        plain = baseline(RUNS)
        mine, details = ours(RUNS)
    finally:
        stop_ray()
    ratio = mine / plain
    return emit(
        Result(
            name="chain",
            figure=f"{mine:.1f} runs/s",
            baseline=f"plain Ray {plain:.1f} runs/s",
            ratio=ratio,
            target=">= 0.25",
            met=ratio >= 0.25,
            details=details,
        )
    )


if __name__ == "__main__":
    main()
