"""latency: one run of a 50-step serial chain; per-step latency against plain Ray's for the same chain."""

from __future__ import annotations

import time

from common import Result, close, connect, emit, median, start_ray, stop_ray

STEPS = 50
REPEATS = 3


def _workflow(steps: int):
    import runner

    wf = runner.Workflow("serial")
    previous = None
    for i in range(steps):

        def inc(x, i=i):
            return x + 1

        previous = wf.step(inc, name=f"s{i}", after=previous)
    return wf


def baseline(steps: int) -> float:
    import ray

    @ray.remote
    def inc(x):
        return x + 1

    ray.get(inc.remote(0))
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        value = 0
        for _ in range(steps):  # each step waits for the one before, as a durable chain does
            value = ray.get(inc.remote(value))
        samples.append((time.perf_counter() - start) / steps)
        assert value == steps
    return median(samples)


def ours(steps: int) -> float:
    client = connect()
    wf = _workflow(steps)
    client.submit(wf, 0).result(timeout=120)  # warm
    samples = []
    for _ in range(REPEATS):
        handle = client.submit(wf, 0)
        assert handle.result(timeout=300) == steps
        events = handle.history()
        started = [e.event.at for e in events if type(e.event).__name__ == "StepStarted"]
        finished = [e.event.at for e in events if type(e.event).__name__ == "FactProduced"]
        samples.append((finished[-1] - started[0]) / steps)
    close(client)
    return median(samples)


def main() -> Result:
    start_ray()
    try:
        plain = baseline(STEPS)
        mine = ours(STEPS)
    finally:
        stop_ray()
    ratio = mine / plain
    return emit(
        Result(
            name="latency",
            figure=f"{mine * 1000:.2f} ms/step",
            baseline=f"plain Ray {plain * 1000:.2f} ms/step",
            ratio=ratio,
            target="<= 2.5",
            met=ratio <= 2.5,
            details={"steps": STEPS, "repeats": REPEATS},
        )
    )


if __name__ == "__main__":
    main()
