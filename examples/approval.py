"""Human approval: a run that waits durably for a signal.

    .venv/bin/python examples/approval.py
    # or, with a cluster up (runner start):
    #   runner submit examples/approval.py:expenses --input '{"amount": 420}'
    #   runner signal RUN_ID approve '{"by": "dana", "ok": true}'

The run suspends at ``wait_for("approve")`` and holds no worker while it
waits; ``signal`` stores the decision before it returns, so a decision sent
early (before the run reaches the wait) is kept, and one sent while Ray is
down is picked up when the next Runner starts.
"""

from __future__ import annotations

import time

import runner

expenses = runner.Workflow("expenses")


@expenses.step()
def submit_claim(claim: dict) -> dict:
    return {"amount": claim["amount"], "submitted_at": time.time()}


decision = expenses.wait_for("approve", after=submit_claim)


@expenses.step(after=[submit_claim, decision])
def settle(claim: dict, approval: dict) -> str:
    if not approval.get("ok"):
        return f"rejected by {approval.get('by')}"
    return f"paid {claim['amount']} (approved by {approval.get('by')})"


def main() -> None:
    client = runner.connect()
    run = client.submit(expenses, {"amount": 420})
    deadline = time.monotonic() + 60
    while run.status() != "suspended" and time.monotonic() < deadline:
        time.sleep(0.1)
    print(f"{run.run_id} is {run.status()}: waiting for {[s.name for s in run.steps() if s.status == 'waiting']}")
    run.signal("approve", {"by": "dana", "ok": True})
    print(f"result: {run.result(timeout=60)}")


if __name__ == "__main__":
    main()
