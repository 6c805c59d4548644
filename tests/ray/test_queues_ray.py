"""Named queues and step limits on Ray, checked from what the store recorded, not from timing:
a run holds its queue place from its first start (``started_at``, set by the store when a
worker takes it over) to its last event; steps are in flight from StepStarted to their result."""

from __future__ import annotations

import time
from typing import Any

import pytest
from ray_support import eventually, sigkill_actor, wait_restarted

import runner
from runner.events import FactProduced, StepFailed, StepStarted
from runner.runner import RunnerConfig

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 60


def _work(name: str) -> runner.Workflow:
    wf = runner.Workflow(name)

    @wf.step()
    def work(x: int) -> int:
        time.sleep(0.05)  # the step's work: long enough for runs to overlap if nothing held them back
        return x

    return wf


def _spans(client: runner.Client, handles: list[Any]) -> list[tuple[float, float, str | None]]:
    """Each run's (first start, last event, key) as the store recorded them."""
    spans = []
    for handle in handles:
        record = handle.record()
        assert record.started_at is not None, record
        spans.append((record.started_at, handle.history()[-1].event.at, record.queue_key))
    return spans


def _most_at_once(spans: list[tuple[float, float, str | None]]) -> int:
    moves = sorted([(start, 1) for start, _, _ in spans] + [(end, -1) for _, end, _ in spans])
    most = current = 0
    for _, change in moves:  # at equal times an end (-1) sorts before a start
        current += change
        most = max(most, current)
    return most


def test_a_queue_of_three_never_runs_more_than_three_even_across_a_runner_restart(make_client: Any) -> None:
    client = make_client(config=RunnerConfig(max_workers=2, queues=(runner.Queue("q", concurrency=3),)))
    wf = _work("queued")
    handles = client.submit_many(wf, list(range(40)), queue="q")
    eventually(lambda: len(client.list_runs(queue="q", status="completed", limit=100)) >= 6, what="a few runs done")
    runner_actor = client.runner
    sigkill_actor(runner_actor)  # the next Runner rebuilds the queue from the store
    wait_restarted(runner_actor, 1)
    assert [h.result(timeout=RESULT_TIMEOUT) for h in handles] == list(range(40))
    spans = _spans(client, handles)
    assert _most_at_once(spans) == 3


@pytest.mark.slow  # make chaos: per-key admission is tested pure in tests/test_queues.py
def test_a_per_key_limit_holds_for_each_key(make_client: Any) -> None:
    config = RunnerConfig(max_workers=2, queues=(runner.Queue("tenants", per_key=1),))
    client = make_client(config=config)
    wf = _work("per-key")
    handles = [client.submit(wf, i, queue="tenants", queue_key=f"tenant-{i % 3}") for i in range(12)]
    assert [h.result(timeout=RESULT_TIMEOUT) for h in handles] == list(range(12))
    spans = _spans(client, handles)
    for key in ("tenant-0", "tenant-1", "tenant-2"):
        assert _most_at_once([s for s in spans if s[2] == key]) == 1


@pytest.mark.slow  # make chaos: exact rates are tested pure in tests/test_queues.py
def test_a_rate_limit_spaces_first_starts_by_its_period(make_client: Any) -> None:
    client = make_client(config=RunnerConfig(queues=(runner.Queue("rated", rate=runner.Rate(2, per=0.5)),)))
    handles = client.submit_many(_work("rated"), list(range(6)), queue="rated")
    assert [h.result(timeout=RESULT_TIMEOUT) for h in handles] == list(range(6))
    starts = sorted(start for start, _, _ in _spans(client, handles))
    # at most 2 recorded starts in any 0.5 s: each start is at least 0.5 s after the one two before
    for first, third in zip(starts, starts[2:], strict=False):
        assert third >= first + 0.5, starts


def test_a_full_queue_refuses_a_submit_and_stores_nothing(make_client: Any) -> None:
    queue = runner.Queue("small", concurrency=1, max_pending=2)
    client = make_client(config=RunnerConfig(queues=(queue,), declared_queues_only=True))
    wf = runner.Workflow("blocked")

    @wf.step()
    def wait(x: int) -> int:
        return x

    wf.wait_for("go", name="gate", after=wait)
    first = client.submit(wf, 0, queue="small")  # holds the queue's one place, waiting for a signal
    eventually(lambda: first.status() is runner.RunStatus.SUSPENDED, what="the first run to suspend")
    client.submit_many(wf, [1, 2], queue="small")
    before = client.list_runs(limit=100)
    with pytest.raises(runner.QueueFull, match="small"):
        client.submit(wf, 3, queue="small")
    with pytest.raises(runner.UnknownQueue, match="nowhere"):
        client.submit(wf, 4, queue="nowhere")
    assert client.list_runs(limit=100) == before
    assert client.stats().pending == 2


def test_max_concurrency_caps_the_steps_of_a_run_in_flight(shared_client: runner.Client) -> None:
    client = shared_client
    wf = runner.Workflow("capped", max_concurrency=2)

    @wf.step()
    def source(n: int) -> list[int]:
        return list(range(n))

    @wf.map(after=source)
    def each(item: int) -> int:
        time.sleep(0.05)
        return item * 2

    handle = client.submit(wf, 10)
    assert handle.result(timeout=RESULT_TIMEOUT) == [i * 2 for i in range(10)]
    in_flight: set[tuple[str, int | None]] = set()
    most = 0
    for stored in handle.history():  # the log's order is the order things happened in
        event = stored.event
        if isinstance(event, StepStarted):
            in_flight.add((event.node, event.item))
            most = max(most, len(in_flight))
        elif isinstance(event, (FactProduced, StepFailed)):
            in_flight.discard((event.node, event.item))
    assert most == 2
