"""Continuing into a whole workflow: a step's result comes from a sub-workflow run in its place.

    .venv/bin/python examples/continuation_subworkflow.py

``checkout``'s step ``pay`` returns ``runner.continuation(billing, input)``:
``billing`` runs as a child run in the step's place and its result becomes
``pay``'s, which ``receipt`` then gets. ``digits`` recurses: each of its runs
peels one digit off and continues into ``digits`` again with the rest, one
short run per level. The expansion is recorded (``ChildRunStarted`` naming
the stored sub-workflow) before the child is created, so a crash never runs
the step again nor starts a second child. It starts a local Ray instance of
its own (it never joins a cluster already running on the machine).
"""

from __future__ import annotations

import logging
from typing import Any

import ray

import runner

billing = runner.Workflow("billing_sub")


@billing.step()
def price(order: dict) -> float:
    return round(order["qty"] * order["unit_price"], 2)


@billing.step(after=price)
def charge(amount: float) -> dict:
    return {"charged": amount}


checkout = runner.Workflow("checkout")


@checkout.step()
def pay(order: dict) -> Any:
    return runner.continuation(billing, {"qty": order["qty"], "unit_price": 2.5})


@checkout.step(after=pay)
def receipt(payment: dict) -> str:
    return f"charged {payment['charged']}"


digits = runner.Workflow("digits")


@digits.step()
def peel(state: dict) -> Any:
    """The sum of a number's digits, one digit per run: continues into this same workflow."""
    if state["n"] == 0:
        return state["sum"]
    return runner.continuation(digits, {"n": state["n"] // 10, "sum": state["sum"] + state["n"] % 10})


def main() -> None:
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    client = runner.connect()
    run = client.submit(checkout, {"qty": 4})
    print(f"checkout:  {run.result(timeout=120)}")
    print("history:  ", " ".join(type(s.event).__name__ for s in run.history()))
    deep = client.submit(digits, {"n": 4096, "sum": 0})
    print(f"digits:    {deep.result(timeout=120)} (one run per digit, each linked to the one before)")
    print(f"see them:  runner show {run.run_id}")


if __name__ == "__main__":
    main()
