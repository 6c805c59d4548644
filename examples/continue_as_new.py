"""Continue-as-new: a long-lived loop that keeps each run's history small.

    .venv/bin/python examples/continue_as_new.py

``poller`` checks a (simulated) queue once per run: ``poll`` takes what is
there, ``process`` adds it to the running total, and ``next_round`` either
returns the total (the queue is drained) or ends the run with
``runner.continue_as_new(state)``, which starts the next round as a new run.
Each run's history is a handful of events however many rounds the loop goes
through; ``result()`` on the first run follows the chain to the last one.
"""

from __future__ import annotations

from typing import Any

import runner
from runner.events import RunContinuedAsNew

QUEUE = [[3, 4], [10], [], [1, 1, 1]]  # what each round finds waiting, by round number

poller = runner.Workflow("poller")


@poller.step()
def poll(state: dict[str, int]) -> dict[str, Any]:
    found = QUEUE[state["round"]] if state["round"] < len(QUEUE) else []
    return {**state, "found": found}


@poller.step(after=poll, inline=True)
def process(polled: dict[str, Any]) -> dict[str, int]:
    return {"round": polled["round"], "total": polled["total"] + sum(polled["found"])}


@poller.step(after=process, inline=True)
def next_round(state: dict[str, int]) -> object:
    if state["round"] + 1 >= len(QUEUE):
        return f"processed {state['total']} in {state['round'] + 1} rounds"
    return runner.continue_as_new({"round": state["round"] + 1, "total": state["total"]})


def main() -> None:
    client = runner.connect()
    first = client.submit(poller, {"round": 0, "total": 0})
    print(first.result(timeout=120))
    run_id = first.run_id
    while True:  # walk the chain: each run names its successor in its last event
        history = client.get(run_id).history()
        last = history[-1].event
        print(f"  {run_id}: {client.get(run_id).status().value}, {len(history)} events")
        if not isinstance(last, RunContinuedAsNew):
            break
        run_id = last.successor_run_id


if __name__ == "__main__":
    main()
