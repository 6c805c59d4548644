"""Quickstart: an order pipeline that survives crashes.

    make demo            # or: .venv/bin/python examples/quickstart.py

Runs locally on Ray with the embedded DuckDB store (./.runner/store.duckdb):
a validation step, a fan-out over the order's lines, a join of pricing and
a stock check, a rule that flags big orders for review (skipped for small
ones), and a flaky payment step that fails twice and is retried.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import runner

orders = runner.Workflow("orders")


@orders.step()
def validate(order: dict) -> dict:
    if not order.get("lines"):
        raise runner.NonRetryableError("an order needs at least one line")
    return order


@orders.step(after=validate)
def lines(order: dict) -> list:
    return order["lines"]


@orders.map(after=lines)
def price_line(line: dict) -> float:
    return line["qty"] * line["unit_price"]


@orders.reduce(after=price_line)
def subtotal(prices: list) -> float:
    return round(sum(prices), 2)


@orders.step(after=validate)
def check_stock(order: dict) -> bool:
    return all(line["qty"] <= 100 for line in order["lines"])


@orders.rule(after=subtotal, when=lambda total: total > 500)
def manual_review(total: float) -> str:
    return f"review needed for {total}"


_ATTEMPTS = Path(tempfile.gettempdir()) / f"ray-runner-quickstart-{os.getpid()}"


@orders.step(after=[subtotal, check_stock], retries=3, backoff="exponential", backoff_base=0.1)
def charge(total: float, in_stock: bool) -> dict:
    # Fails on its first two attempts, as a flaky payment service would.
    attempt = runner.context().attempt
    if attempt < 3:
        raise ConnectionError(f"payment service unavailable (attempt {attempt})")
    return {"charged": total, "in_stock": in_stock, "attempts": attempt}


@orders.step(after=[charge, manual_review], inline=True)
def receipt(payment: dict, review: object) -> dict:
    return {**payment, "review": None if review is runner.SKIPPED else review}


def main() -> None:
    client = runner.connect()
    order = {
        "id": "A-1",
        "lines": [{"sku": "pen", "qty": 3, "unit_price": 1.5}, {"sku": "ink", "qty": 2, "unit_price": 4.0}],
    }
    run = client.submit(orders, order)
    result = run.result(timeout=120)
    print(f"result: {result}")
    print(f"run id: {run.run_id}")
    print(f"store:  {client.store_path}")
    print(f"events: {len(run.history())} (see them: runner history {run.run_id})")


if __name__ == "__main__":
    main()
