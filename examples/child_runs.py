"""Child runs: one workflow runs another as a run of its own and waits for its result.

    .venv/bin/python examples/child_runs.py

An order workflow prepares an invoice, then runs the ``billing`` workflow as a
child run. The child has its own run id (the parent's id and the component's
name, so a retry or a recovery of the parent never starts a second one), its
own history and its own retries; the parent holds no worker while it waits
and is woken when the child ends. ``runner show <parent>`` lists the child,
``runner show <child>`` names its parent. It starts a local Ray instance of
its own (it never joins a cluster already running on the machine).
"""

from __future__ import annotations

import logging

import ray

import runner

billing = runner.Workflow("billing")


@billing.step()
def price(invoice: dict) -> float:
    return round(invoice["qty"] * invoice["unit_price"], 2)


@billing.step(after=price, retries=2)
def charge(amount: float) -> dict:
    return {"charged": amount}


orders = runner.Workflow("orders_with_billing")


@orders.step()
def prepare(order: dict) -> dict:
    return {"customer": order["customer"], "qty": order["qty"], "unit_price": 2.5}


orders.child_run(billing, name="bill", after=prepare)


@orders.step(after=["bill", prepare])
def confirm(payment: dict, invoice: dict) -> str:
    return f"{invoice['customer']} charged {payment['charged']}"


def main() -> None:
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    client = runner.connect()
    run = client.submit(orders, {"customer": "acme", "qty": 4})
    print(f"result:    {run.result(timeout=120)}")
    child_id = f"{run.run_id}:bill"
    child = client.get(child_id)
    print(f"parent:    {run.run_id}")
    print(f"child:     {child_id} ({child.status().value}, parent {child.record().parent_run_id})")
    print("history:  ", " ".join(type(s.event).__name__ for s in run.history()))
    print(f"see them:  runner show {run.run_id}")


if __name__ == "__main__":
    main()
