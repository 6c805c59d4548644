"""latency: one run of a 50-step serial chain; per-step latency against plain Ray's for the same
chain with a ``ray.get`` after each task (each step waits for the one before, as a durable chain does).

Two figures: the steps as Ray tasks (target <= 2x plain Ray's per-step cost) and the same chain
with ``inline=True`` steps, run inside the worker (target <= 1 ms per step). Per step: from the
first StepStarted to the last FactProduced in the run's own events, over the number of steps.

Then the same chains under the other checkpoint strategies (runner.checkpoint): ``every_n(10)``
and ``on_complete`` for Ray-task steps (downstream tasks are dispatched without waiting for a
commit), ``on_complete`` and every step ``checkpoint=False`` for inline steps (one append per run
instead of one per step), each against the every_step figure above.
"""

from __future__ import annotations

import time

from common import Result, close, connect, emit, median, start_ray, stop_ray

STEPS = 50
REPEATS = 3
TARGET_RATIO = 2.0  # Ray-task steps against plain Ray's per-step cost
TARGET_INLINE_MS = 1.0  # inline steps, ms per step


def _workflow(steps: int, inline: bool = False, checkpoint=None, unchecked: bool = False):
    import runner

    name = ("serial-inline" if inline else "serial") + (f"-{checkpoint}" if checkpoint else "")
    wf = runner.Workflow(name.replace(":", "-") + ("-unchecked" if unchecked else ""), checkpoint=checkpoint)
    previous = None
    for i in range(steps):

        def inc(x, i=i):
            return x + 1

        previous = wf.step(inc, name=f"s{i}", after=previous, inline=inline, checkpoint=not unchecked)
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


def ours(client, steps: int, inline: bool, checkpoint=None, unchecked: bool = False) -> tuple[float, float]:
    """(median per-step seconds from the run's events, median per-step seconds submit to result)."""
    wf = _workflow(steps, inline, checkpoint, unchecked)
    client.submit(wf, 0).result(timeout=120)  # warm
    samples = []
    walls = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        handle = client.submit(wf, 0)
        assert handle.result(timeout=300) == steps
        walls.append((time.perf_counter() - start) / steps)
        events = handle.history()
        started = [e.event.at for e in events if type(e.event).__name__ == "StepStarted"]
        finished = [e.event.at for e in events if type(e.event).__name__ == "FactProduced"]
        samples.append((finished[-1] - started[0]) / steps)
    return median(samples), median(walls)


def main() -> list[Result]:
    start_ray()
    try:
        plain = baseline(STEPS)
        client = connect()
        mine, mine_wall = ours(client, STEPS, inline=False)
        inline, inline_wall = ours(client, STEPS, inline=True)
        variants = {
            "Ray-task steps, every_n(10)": (ours(client, STEPS, False, "every_n:10"), mine, mine_wall),
            "Ray-task steps, on_complete": (ours(client, STEPS, False, "on_complete"), mine, mine_wall),
            "inline steps, on_complete": (ours(client, STEPS, True, "on_complete"), inline, inline_wall),
            "inline steps, checkpoint=False": (ours(client, STEPS, True, None, True), inline, inline_wall),
        }
        close(client)
    finally:
        stop_ray()
    ratio = mine / plain
    tasks = emit(
        Result(
            name="serial chain, Ray-task steps",
            figure=f"{mine * 1000:.2f} ms/step",
            baseline=f"plain Ray, ray.get each, {plain * 1000:.2f} ms/step",
            ratio=ratio,
            target=f"<= {TARGET_RATIO:g}x plain Ray",
            met=ratio <= TARGET_RATIO,
            details={"steps": STEPS, "repeats": REPEATS, "submit_to_result_ms_per_step": round(mine_wall * 1000, 2)},
        )
    )
    inlined = emit(
        Result(
            name="serial chain, inline steps",
            figure=f"{inline * 1000:.2f} ms/step",
            baseline=f"plain Ray, ray.get each, {plain * 1000:.2f} ms/step",
            ratio=inline / plain,
            target=f"<= {TARGET_INLINE_MS:g} ms/step",
            met=inline * 1000 <= TARGET_INLINE_MS,
            details={"steps": STEPS, "repeats": REPEATS, "submit_to_result_ms_per_step": round(inline_wall * 1000, 2)},
        )
    )
    strategies = [
        emit(
            Result(
                name=f"serial chain, {label}",
                figure=f"{figure * 1000:.2f} ms/step",
                baseline=f"every_step, {reference * 1000:.2f} ms/step",
                ratio=figure / reference,
                target=f"<= {TARGET_INLINE_MS:g} ms/step" if "inline" in label else "< every_step",
                met=figure * 1000 <= TARGET_INLINE_MS if "inline" in label else figure < reference,
                details={
                    "steps": STEPS,
                    "repeats": REPEATS,
                    "submit_to_result_ms_per_step": round(wall * 1000, 2),
                    "every_step_submit_to_result_ms_per_step": round(reference_wall * 1000, 2),
                },
            )
        )
        for label, ((figure, wall), reference, reference_wall) in variants.items()
    ]
    return [tasks, inlined, *strategies]


if __name__ == "__main__":
    main()
