"""tracing: what OpenTelemetry spans cost a 50-step serial chain (runner.tracing).

Three figures. The no-op path, per step, in this process: ``step_span`` entered and left, and
``run_spans`` over a commit's events, with the API installed and no provider set (what every
step pays when the application does not trace). Then the serial chain (Ray-task steps and
inline steps, every_step) on a Ray instance whose processes have no provider, against the same
chain on one whose processes each set a provider at start (runtime_env
``worker_process_setup_hook``, spans written to a file as they end), submitted under a span.
"""

from __future__ import annotations

import tempfile
import time
import timeit
from pathlib import Path

from common import Result, close, connect, emit, median, stop_ray
from latency import STEPS, ours

REPEATS_NOOP = 100_000


def noop_cost() -> float:
    """Seconds per step of the tracing calls with no provider set."""
    from runner.events import FactProduced, StoredEvent
    from runner.planning import Task
    from runner.tracing import StepTrace, run_spans, step_span, tracer

    assert tracer() is None, "this figure is for a process without a TracerProvider"
    task = Task(node="s0", inputs=(1,), attempt=1)
    trace = StepTrace(None, "worker-1")
    committed = [StoredEvent(run_id="r", seq=3, event=FactProduced(node="s0", value=2, attempt=1))]

    def one_step() -> None:
        with step_span("r", "serial", task, trace):
            pass
        run_spans("r", "serial", 0.0, None, committed, "worker-1")

    return timeit.timeit(one_step, number=REPEATS_NOOP) / REPEATS_NOOP


def chain(traced: bool) -> tuple[float, float]:
    """Median ms per step (Ray-task steps, inline steps) on a fresh Ray instance."""
    import ray

    from runner.testing import span_file

    spans = Path(tempfile.mkdtemp(prefix="runner-bench-spans-")) / "spans.jsonl"
    runtime_env = span_file.runtime_env(spans) if traced else None
    ray.init(
        address="local", include_dashboard=False, logging_level="ERROR", log_to_driver=False, runtime_env=runtime_env
    )
    try:
        client = connect()
        if traced:
            from opentelemetry.sdk.trace import TracerProvider

            provider = TracerProvider()  # the driver's: its submit span is the runs' parent, not exported
            with provider.get_tracer("bench").start_as_current_span("submit"):
                tasks, _ = ours(client, STEPS, inline=False)
                inline, _ = ours(client, STEPS, inline=True)
            written = len(span_file.read_spans(spans))
            assert written >= 2 * STEPS, f"only {written} spans written"
        else:
            tasks, _ = ours(client, STEPS, inline=False)
            inline, _ = ours(client, STEPS, inline=True)
        close(client)
    finally:
        stop_ray()
    return tasks, inline


def main() -> list[Result]:
    noop = noop_cost()
    rounds = [(chain(False), chain(True)) for _ in range(2)]  # alternating: drift hits both alike
    off_tasks = median([off[0] for off, _ in rounds])
    on_tasks = median([on[0] for _, on in rounds])
    off_inline = median([off[1] for off, _ in rounds])
    on_inline = median([on[1] for _, on in rounds])
    results = [
        emit(
            Result(
                name="tracing off: no-op cost per step",
                figure=f"{noop * 1e6:.2f} us/step",
                baseline="a serial chain's step, ~10 ms",
                ratio=noop / 0.010,
                target="< 1% of a step",
                met=noop < 0.0001,
                details={"calls": REPEATS_NOOP},
            )
        )
    ]
    for label, off, on in (("Ray-task steps", off_tasks, on_tasks), ("inline steps", off_inline, on_inline)):
        results.append(
            emit(
                Result(
                    name=f"serial chain traced, {label}",
                    figure=f"{on * 1000:.2f} ms/step",
                    baseline=f"no provider, {off * 1000:.2f} ms/step",
                    ratio=on / off,
                    target="report",
                    met=True,
                    details={"steps": STEPS, "rounds": len(rounds), "at": time.strftime("%Y-%m-%d")},
                )
            )
        )
    return results


if __name__ == "__main__":
    main()
