"""chain, batched: 200 runs x 3 sequential trivial steps on the DuckDB store, submitted with one
``submit_many`` and collected with one ``results``, against the same DAGs as plain Ray tasks.

(bench/loop.py is the same workload written as a loop: one ``submit`` and one ``result()`` per run.)
"""

from __future__ import annotations

import time

from common import Result, alternating, close, connect, emit, start_ray, stop_ray

RUNS = 200
REPEATS = 3  # median of three alternating rounds each
TARGET_RATIO = 0.5  # of plain Ray's runs/s


def chain_workflow():
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


def chain_expected(runs: int) -> list[int]:
    return [(i + 1) * 2 - 3 for i in range(runs)]


def plain_chain_tasks():
    """The same three steps as plain Ray remote functions (warmed): (one, two, three)."""
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
    return one, two, three


def baseline_runner():
    """The same DAGs as plain Ray tasks, all submitted at once, per call: runs/s."""
    import ray

    one, two, three = plain_chain_tasks()

    def run(runs: int) -> float:
        start = time.perf_counter()
        results = ray.get([three.remote(two.remote(one.remote(i))) for i in range(runs)])
        elapsed = time.perf_counter() - start
        assert results == chain_expected(runs)
        return runs / elapsed

    return run


def ours_runner():
    """``runs`` durable runs submitted at once and collected, per call: (runs/s, details)."""
    client = connect()
    wf = chain_workflow()
    client.results(client.submit_many(wf, list(range(10))), timeout=120)  # warm the workers

    def run(runs: int) -> tuple[float, dict]:
        import ray

        before = ray.get(client.store.stats.remote())
        start = time.perf_counter()
        handles = client.submit_many(wf, list(range(runs)))
        results = client.results(handles, timeout=600)
        elapsed = time.perf_counter() - start
        assert results == chain_expected(runs)
        after = ray.get(client.store.stats.remote())
        return runs / elapsed, {
            "seconds": round(elapsed, 2),
            "workers": client.stats().peak_workers,
            "commits": after.commits - before.commits,
            "appends": after.batches - before.batches,
        }

    return client, run


def main() -> Result:
    start_ray()
    try:
        plain_run = baseline_runner()
        client, our_run = ours_runner()
        plain, mine, plains, mines, details = alternating(lambda: plain_run(RUNS), lambda: our_run(RUNS), REPEATS)
        close(client)
    finally:
        stop_ray()
    details = {
        **details,
        "ours_runs_per_s": [round(m, 1) for m in mines],
        "plain_runs_per_s": [round(p, 1) for p in plains],
    }
    ratio = mine / plain
    return emit(
        Result(
            name="chain, batched",
            figure=f"{mine:.1f} runs/s",
            baseline=f"plain Ray {plain:.1f} runs/s",
            ratio=ratio,
            target=">= 0.5",
            met=ratio >= TARGET_RATIO,
            details=details,
        )
    )


if __name__ == "__main__":
    main()
