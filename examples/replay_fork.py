"""Replay and fork: run again from the start, or from one step on.

    .venv/bin/python examples/replay_fork.py

``replay`` starts a new run with the same definition and input (its
``parent_run_id`` points back). ``fork(from_step=...)`` starts a new run that
reuses the recorded results of everything upstream of that step, which do not
run again, and runs that step and the rest anew: handy after fixing the data
or the service a late step depends on.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import runner

RATE_FILE = Path(tempfile.gettempdir()) / "ray-runner-example-rate"

report = runner.Workflow("report")


@report.step()
def extract(n: int) -> list:
    print(f"extract runs (n={n})")  # shows in the worker log: not printed again by the fork
    return list(range(n))


@report.step(after=extract)
def transform(rows: list) -> int:
    return sum(rows)


@report.step(after=transform)
def publish(total: int) -> str:
    rate = float(RATE_FILE.read_text()) if RATE_FILE.exists() else 1.0
    return f"total {total} x rate {rate} = {total * rate}"


def main() -> None:
    client = runner.connect()
    RATE_FILE.write_text("1.0")
    first = client.submit(report, 10)
    print("first: ", first.result(timeout=60))

    replayed = first.replay()
    print("replay:", replayed.result(timeout=60), f"(parent {replayed.record().parent_run_id})")

    RATE_FILE.write_text("1.5")  # the fix a late step needed
    forked = first.fork(from_step="publish")
    print("fork:  ", forked.result(timeout=60))
    print("reused:", [s.name for s in forked.steps() if s.reused])
    os.unlink(RATE_FILE)


if __name__ == "__main__":
    main()
