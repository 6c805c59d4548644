"""A durable timer: ``sleep`` survives worker, Runner and cluster restarts.

    .venv/bin/python examples/durable_sleep.py

A sleep longer than ``WorkerConfig.suspend_after`` (5 s by default) releases
the worker; the Runner keeps the wake-up time and, after a restart, reads it
back from the store, so the timer fires once, on time or as soon as a Runner
is up again.
"""

from __future__ import annotations

import time

import runner

reminder = runner.Workflow("reminder")


@reminder.step()
def schedule(task: str) -> dict:
    return {"task": task, "scheduled_at": time.time()}


wait = reminder.sleep(3, after=schedule)


@reminder.step(after=wait)
def remind(item: dict) -> str:
    waited = time.time() - item["scheduled_at"]
    return f"reminder: {item['task']} (after {waited:.1f}s)"


def main() -> None:
    client = runner.connect()
    run = client.submit(reminder, "water the plants")
    print(run.result(timeout=60))
    print("events:", [type(e.event).__name__ for e in run.history()])


if __name__ == "__main__":
    main()
