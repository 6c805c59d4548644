"""fanout: one run, 1000 parallel trivial steps (a map) and a reduce, against plain Ray tasks."""

from __future__ import annotations

import time

from common import Result, close, connect, emit, start_ray, stop_ray

ITEMS = 1000


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


def baseline(items: int) -> float:
    import ray

    @ray.remote
    def square(x):
        return x * x

    @ray.remote
    def total(*values):
        return sum(values)

    ray.get([square.remote(i) for i in range(50)])
    start = time.perf_counter()
    result = ray.get(total.remote(*[square.remote(i) for i in range(items)]))
    elapsed = time.perf_counter() - start
    assert result == sum(i * i for i in range(items))
    return items / elapsed


def ours(items: int) -> tuple[float, dict]:
    client = connect()
    wf = _workflow()
    client.submit(wf, 20).result(timeout=120)  # warm
    start = time.perf_counter()
    handle = client.submit(wf, items)
    result = handle.result(timeout=600)
    elapsed = time.perf_counter() - start
    assert result == sum(i * i for i in range(items))
    commits = __import__("ray").get(client.store.stats.remote())
    details = {"seconds": round(elapsed, 2), "events": len(handle.history()), "commits": commits.commits}
    close(client)
    return items / elapsed, details


def main() -> Result:
    start_ray()
    try:
        plain = baseline(ITEMS)
        mine, details = ours(ITEMS)
    finally:
        stop_ray()
    ratio = mine / plain
    return emit(
        Result(
            name="fanout",
            figure=f"{mine:.0f} steps/s",
            baseline=f"plain Ray {plain:.0f} tasks/s",
            ratio=ratio,
            target=">= 0.5",
            met=ratio >= 0.5,
            details=details,
        )
    )


if __name__ == "__main__":
    main()
