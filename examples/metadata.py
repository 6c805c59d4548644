"""Run metadata, idempotent submits and signals sent once per key.

    .venv/bin/python examples/metadata.py

Orders of two tenants are submitted with metadata (JSON values kept with the
run); a step adds what it learned through ``runner.context().set_metadata``.
``list_runs(metadata=...)`` finds one tenant's runs (the store selects them),
``handle.metadata()`` shows the run's metadata, status, times and, per step,
attempts and times. Submitting with the same idempotency key again finds the
stored run (``handle.created`` is False), and a signal sent twice with the same
key is stored once (the second answer is a duplicate). It starts a local Ray
instance of its own and keeps its runs in a temporary DuckDB file.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import ray

import runner

orders = runner.Workflow("tenant_orders")


@orders.step()
def price(order: dict[str, Any]) -> float:
    ctx = runner.context()
    total = round(sum(line["qty"] * line["unit_price"] for line in order["lines"]), 2)
    ctx.set_metadata(lines=len(order["lines"]), total=total)
    return total


orders.wait_for("approve", name="approval", after=price)


@orders.step(after=[price, "approval"])
def confirm(total: float, decision: dict[str, Any]) -> str:
    runner.context().set_metadata(approved_by=decision["by"])
    return f"{total} approved by {decision['by']}"


def main() -> None:
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    store = Path(tempfile.mkdtemp(prefix="runner-metadata-")) / "store.duckdb"
    client = runner.connect(store=f"duckdb:///{store}")

    lines = [{"qty": 2, "unit_price": 2.5}, {"qty": 1, "unit_price": 10.0}]
    first = client.submit(orders, {"lines": lines}, idempotency_key="order-1", metadata={"tenant": "acme", "tier": 2})
    client.submit(orders, {"lines": lines[:1]}, metadata={"tenant": "globex", "tier": 1})
    again = client.submit(orders, {"lines": []}, idempotency_key="order-1", metadata={"tenant": "other"})
    print(f"submitted: {first.run_id} created={first.created}; same key again: {again.run_id} created={again.created}")

    acme = client.list_runs(metadata={"tenant": "acme"})
    print(f"acme runs: {[r.run_id for r in acme]}  (metadata {acme[0].metadata})")

    sent = first.signal("approve", {"by": "dana"}, key="review-1")
    resent = first.signal("approve", {"by": "eve"}, key="review-1")
    print(f"signal:    #{sent} duplicate={sent.duplicate}; same key again: #{resent} duplicate={resent.duplicate}")
    print(f"result:    {first.result(timeout=120)}")

    meta = first.metadata()
    print(f"metadata:  {meta.metadata}")
    print(f"status:    {meta.status.value}, {meta.finished_at - meta.created_at:.2f}s from submit to end")
    for step in meta.steps.values():
        print(f"  {step.name:<9} {step.status.value:<8} attempts={step.attempts} added={step.metadata}")
    print(f'SQL:       runner sql --store duckdb:///{store} "SELECT run_id, metadata FROM runs"')


if __name__ == "__main__":
    main()
