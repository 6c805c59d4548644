"""Runtime metrics: what each recording call counts (with a fake metric factory, no Ray)."""

from __future__ import annotations

from typing import Any

from runner import Workflow
from runner.metrics import RunnerMetrics
from runner.testing.inprocess import InProcessRun


class FakeMetric:
    def __init__(self, log: list[tuple[str, str, float, dict[str, str] | None]], name: str) -> None:
        self.log = log
        self.name = name

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        self.log.append((self.name, "inc", value, tags))

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        self.log.append((self.name, "observe", value, tags))

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        self.log.append((self.name, "set", value, tags))


def fake() -> tuple[RunnerMetrics, list[tuple[str, str, float, dict[str, str] | None]]]:
    log: list[tuple[str, str, float, dict[str, str] | None]] = []

    def factory(kind: str, name: str, description: str, tags: tuple[str, ...], bounds: Any) -> FakeMetric:
        return FakeMetric(log, name)

    return RunnerMetrics(factory), log


def test_step_durations_and_attempts_come_from_the_committed_events() -> None:
    wf = Workflow("timed")
    calls = {"n": 0}

    def flaky(x: int) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("once")
        return x

    wf.step(flaky, name="flaky", retries=1, backoff="none")
    run = InProcessRun(wf, 1)
    state = run.run()
    metrics, log = fake()
    metrics.steps(state, run.log)
    tags = {"workflow": "timed", "step": "flaky"}
    assert [(name, value, t) for name, method, value, t in log if name == "runner_step_attempts"] == [
        ("runner_step_attempts", 2, tags)
    ]
    assert [name for name, *_ in log].count("runner_step_seconds") == 2  # the failed attempt and the good one


def test_submits_ends_commits_and_the_pool() -> None:
    metrics, log = fake()
    metrics.submitted(["a", "a", "b"])
    metrics.ended("a", "failed")
    metrics.commit(0.004, events=12, calls=3)
    metrics.pool(workers=2, pending=5)
    assert log == [
        ("runner_runs_submitted_total", "inc", 1, {"workflow": "a"}),
        ("runner_runs_submitted_total", "inc", 1, {"workflow": "a"}),
        ("runner_runs_submitted_total", "inc", 1, {"workflow": "b"}),
        ("runner_runs_ended_total", "inc", 1, {"workflow": "a", "status": "failed"}),
        ("runner_commit_seconds", "observe", 0.004, None),
        ("runner_commit_events", "observe", 12, None),
        ("runner_commit_calls", "observe", 3, None),
        ("runner_workers", "set", 2, None),
        ("runner_pending_runs", "set", 5, None),
    ]


def test_a_failing_metric_turns_metrics_off_and_never_raises() -> None:
    def factory(*args: Any) -> Any:
        raise RuntimeError("no metrics agent")

    metrics = RunnerMetrics(factory)
    metrics.ended("a", "completed")
    metrics.commit(0.1, 1, 1)  # quiet from now on
