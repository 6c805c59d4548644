"""fanout: one run, N parallel trivial steps (a map) and a reduce, against plain Ray tasks; N = 200 and 1000."""

from __future__ import annotations

import time

from common import Result, alternating, close, connect, emit, start_ray, stop_ray

SIZES = (200, 1000)  # items per map
REPEATS = 3  # median of three alternating rounds each
TARGET_RATIO = 0.5  # of plain Ray's tasks/s, for each size


def _workflow():
    import runner

    wf = runner.Workflow("fanout")

    @wf.step()
    def items(n):
        return list(range(n))

    @wf.map(after=items)
    def square(x):
        return x * x

    @wf.reduce(after=square)
    def total(values):
        return sum(values)

    return wf


def baseline_runner():
    """One plain-Ray fan-out of ``items`` tasks and a reduce per call: tasks/s."""
    import ray

    @ray.remote
    def square(x):
        return x * x

    @ray.remote
    def total(*values):
        return sum(values)

    ray.get([square.remote(i) for i in range(50)])

    def run(items: int) -> float:
        start = time.perf_counter()
        result = ray.get(total.remote(*[square.remote(i) for i in range(items)]))
        elapsed = time.perf_counter() - start
        assert result == sum(i * i for i in range(items))
        return items / elapsed

    return run


def ours_runner():
    """One durable run of the same shape per call: (steps/s, its event and commit counts)."""
    client = connect()
    wf = _workflow()
    client.submit(wf, 20).result(timeout=120)  # warm

    def run(items: int) -> tuple[float, dict]:
        import ray

        before = ray.get(client.store.stats.remote()).commits
        start = time.perf_counter()
        handle = client.submit(wf, items)
        result = handle.result(timeout=600)
        elapsed = time.perf_counter() - start
        assert result == sum(i * i for i in range(items))
        commits = ray.get(client.store.stats.remote()).commits - before
        return items / elapsed, {"seconds": round(elapsed, 2), "events": len(handle.history()), "commits": commits}

    return client, run


def main() -> list[Result]:
    results = []
    start_ray()
    try:
        plain_run = baseline_runner()
        client, our_run = ours_runner()
        for items in SIZES:
            plain, mine, plains, mines, details = alternating(
                lambda items=items: plain_run(items), lambda items=items: our_run(items), REPEATS
            )
            details = {
                **details,
                "ours_steps_per_s": [round(m) for m in mines],
                "plain_tasks_per_s": [round(p) for p in plains],
            }
            ratio = mine / plain
            results.append(
                emit(
                    Result(
                        name=f"fanout, {items} items",
                        figure=f"{mine:.0f} steps/s",
                        baseline=f"plain Ray {plain:.0f} tasks/s",
                        ratio=ratio,
                        target=f">= {TARGET_RATIO}",
                        met=ratio >= TARGET_RATIO,
                        details=details,
                    )
                )
            )
        close(client)
    finally:
        stop_ray()
    return results


if __name__ == "__main__":
    main()
