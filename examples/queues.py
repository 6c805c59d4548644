"""Named queues and step limits: how much runs at once.

    .venv/bin/python examples/queues.py

Twelve e-mail runs for three tenants go through the queue ``emails``: at most
three run at once, one per tenant, and at most six start per second; an urgent
run (priority 10) jumps the line. A report run with a map of 20 items runs at
most 4 of them at once (``max_concurrency``). What ran at once is read back
from the store afterwards, not timed.
"""

from __future__ import annotations

import tempfile
import time

import ray

import runner
from runner.events import FactProduced, StepStarted

emails = runner.Workflow("send_email")


@emails.step()
def send(message: dict) -> str:
    time.sleep(0.2)  # talking to the mail server
    return f"sent {message['subject']!r} for {message['tenant']}"


report = runner.Workflow("report", max_concurrency=4)


@report.step()
def rows(count: int) -> list[int]:
    return list(range(count))


@report.map(after=rows)
def render(row: int) -> int:
    time.sleep(0.05)
    return row * row


@report.reduce(after=render)
def total(values: list[int]) -> int:
    return sum(values)


def most_at_once(spans: list[tuple[float, float]]) -> int:
    moves = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, change in moves:
        current += change
        most = max(most, current)
    return most


def main() -> None:
    if not ray.is_initialized():
        ray.init(address="local", include_dashboard=False, logging_level="ERROR")  # a Ray of its own
    config = runner.RunnerConfig(
        queues=(runner.Queue("emails", concurrency=3, per_key=1, rate=runner.Rate(6, per=1.0), max_pending=100),),
    )
    store = f"duckdb:///{tempfile.mkdtemp()}/queues.duckdb"
    client = runner.connect(store=store, namespace="queues-example", config=config)

    handles = [
        client.submit(
            emails,
            {"tenant": f"tenant-{i % 3}", "subject": f"invoice {i}"},
            queue="emails",
            queue_key=f"tenant-{i % 3}",
        )
        for i in range(12)
    ]
    urgent = client.submit(
        emails, {"tenant": "tenant-0", "subject": "password reset"}, queue="emails", queue_key="tenant-0", priority=10
    )
    for line in client.results([*handles, urgent], timeout=120):
        print(line)
    spans = []
    for handle in [*handles, urgent]:
        record = handle.record()
        spans.append((record.started_at, handle.history()[-1].event.at))
    print("e-mail runs at once, at most:", most_at_once(spans))
    print("the urgent run started before", sum(s[0] > spans[-1][0] for s in spans[:-1]), "of the 12 queued before it")

    run = client.submit(report, 20)
    print("report total:", run.result(timeout=120))
    in_flight: set[tuple[str, int | None]] = set()
    most = 0
    for stored in run.history():  # the log's order is the order things happened in
        event = stored.event
        if isinstance(event, StepStarted):
            in_flight.add((event.node, event.item))
            most = max(most, len(in_flight))
        elif isinstance(event, FactProduced):
            in_flight.discard((event.node, event.item))
    print("report steps in flight at once, at most:", most)


if __name__ == "__main__":
    main()
