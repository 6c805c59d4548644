"""queues: the cost of a named queue. 200 runs of the 3-step chain submitted with one
``submit_many`` to a queue whose limits never bind (concurrency above the run count, no rate,
no pending bound), against the same 200 runs submitted without a queue, on the same Runner,
alternating rounds so that drift on a noisy machine hits both alike.

What the queue adds: the queue fields stored with each run, the Runner's admission decision
(runner.queues) before a run goes to the pool, and the Store actor's note of each queued run.
"""

from __future__ import annotations

import time

from chain import chain_expected, chain_workflow
from common import Result, alternating, close, connect, emit, start_ray, stop_ray

RUNS = 200
REPEATS = 3  # median of three alternating rounds each
TARGET_RATIO = 0.9  # within 10% of the runs/s without a queue
QUEUE = "open"


def main() -> Result:
    import runner

    start_ray()
    try:
        config = runner.RunnerConfig(queues=(runner.Queue(QUEUE, concurrency=10 * RUNS),))
        client = connect(config=config)
        wf = chain_workflow()
        client.results(client.submit_many(wf, list(range(10))), timeout=120)  # warm the workers

        def round_of(queue: str | None) -> float:
            start = time.perf_counter()
            handles = client.submit_many(wf, list(range(RUNS)), queue=queue)
            results = client.results(handles, timeout=600)
            elapsed = time.perf_counter() - start
            assert results == chain_expected(RUNS)
            return RUNS / elapsed

        plain, mine, plains, mines, _ = alternating(lambda: round_of(None), lambda: (round_of(QUEUE), {}), REPEATS)
        close(client)
    finally:
        stop_ray()
    ratio = mine / plain
    return emit(
        Result(
            name="queue overhead",
            figure=f"{mine:.1f} runs/s through a queue",
            baseline=f"no queue {plain:.1f} runs/s",
            ratio=ratio,
            target=f">= {TARGET_RATIO}",
            met=ratio >= TARGET_RATIO,
            details={
                "queued_runs_per_s": [round(m, 1) for m in mines],
                "plain_runs_per_s": [round(p, 1) for p in plains],
            },
        )
    )


if __name__ == "__main__":
    main()
