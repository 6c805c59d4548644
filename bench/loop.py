"""chain, loop: 200 runs x 3 sequential trivial steps on the DuckDB store, written the way a
newcomer writes it, one ``submit`` per run in a loop, then one ``result()`` per run in a loop:

    handles = [client.submit(wf, x) for x in inputs]
    results = [h.result() for h in handles]

Baseline, in the same run: the same DAGs as plain Ray tasks in the same loop style, one
``.remote`` chain per run in a loop, then one ``ray.get`` per run in a loop.

(bench/chain.py is the same workload batched: one ``submit_many`` and one ``results``.)

Then the same loop with ``submit(..., checkpoint="on_complete")`` (runner.checkpoint): each run's
steps are appended once, at its end, instead of once per step.
"""

from __future__ import annotations

import time

from chain import chain_expected, chain_workflow, plain_chain_tasks
from common import Result, alternating, close, connect, emit, start_ray, stop_ray

RUNS = 200
REPEATS = 3  # median of three alternating rounds each
TARGET_RUNS_PER_S = 150.0
TARGET_RATIO = 0.35  # of plain Ray's runs/s in the same loop style


def baseline_runner():
    """Plain Ray, loop style, per call: runs/s."""
    import ray

    one, two, three = plain_chain_tasks()

    def run(runs: int) -> float:
        start = time.perf_counter()
        refs = [three.remote(two.remote(one.remote(x))) for x in range(runs)]
        results = [ray.get(ref) for ref in refs]
        elapsed = time.perf_counter() - start
        assert results == chain_expected(runs)
        return runs / elapsed

    return run


def ours_runner():
    """Durable runs, loop style, per call: (runs/s, details: where the time went)."""
    import ray

    client = connect()
    wf = chain_workflow()
    for x in range(10):  # warm the workers and the task processes
        client.submit(wf, x).result(timeout=120)

    def run(runs: int, checkpoint: str | None = None) -> tuple[float, dict]:
        before = ray.get(client.store.stats.remote())
        start = time.perf_counter()
        handles = [client.submit(wf, x, checkpoint=checkpoint) for x in range(runs)]
        submitted = time.perf_counter()
        results = [h.result(timeout=600) for h in handles]
        elapsed = time.perf_counter() - start
        assert results == chain_expected(runs)
        after = ray.get(client.store.stats.remote())
        return runs / elapsed, {
            "seconds": round(elapsed, 2),
            "submit_loop_s": round(submitted - start, 2),
            "result_loop_s": round(elapsed - (submitted - start), 2),
            "ms_per_submit": round((submitted - start) / runs * 1000, 2),
            "workers": client.stats().peak_workers,
            "commits": after.commits - before.commits,
            "appends": after.batches - before.batches,
        }

    return client, run


def main() -> list[Result]:
    start_ray()
    try:
        plain_run = baseline_runner()
        client, our_run = ours_runner()
        plain, mine, plains, mines, details = alternating(lambda: plain_run(RUNS), lambda: our_run(RUNS), REPEATS)
        buffered = [our_run(RUNS, "on_complete") for _ in range(REPEATS)]
        close(client)
    finally:
        stop_ray()
    details = {
        **details,
        "ours_runs_per_s": [round(m, 1) for m in mines],
        "plain_runs_per_s": [round(p, 1) for p in plains],
    }
    ratio = mine / plain
    every_step = emit(
        Result(
            name="chain, loop",
            figure=f"{mine:.1f} runs/s",
            baseline=f"plain Ray (loop) {plain:.1f} runs/s",
            ratio=ratio,
            target=f">= {TARGET_RUNS_PER_S:.0f} runs/s and ratio >= {TARGET_RATIO}",
            met=mine >= TARGET_RUNS_PER_S and ratio >= TARGET_RATIO,
            details=details,
        )
    )
    on_complete = sorted(rate for rate, _ in buffered)[len(buffered) // 2]
    on_complete_details = next(info for rate, info in buffered if rate == on_complete)
    strategy = emit(
        Result(
            name="chain, loop, on_complete",
            figure=f"{on_complete:.1f} runs/s",
            baseline=f"every_step (above) {mine:.1f} runs/s",
            ratio=on_complete / mine,
            target="> every_step",
            met=on_complete > mine,
            details={**on_complete_details, "runs_per_s": [round(rate, 1) for rate, _ in buffered]},
        )
    )
    return [every_step, strategy]


if __name__ == "__main__":
    main()
