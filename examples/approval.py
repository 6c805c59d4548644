"""Human approval: a run that waits durably for a person to approve or reject.

    .venv/bin/python examples/approval.py
    # or, with a cluster up (runner start):
    #   runner submit examples/approval.py:expenses --input '{"amount": 420}'
    #   runner approve RUN_ID manager --by dana --comment "within budget"
    #   runner reject RUN_ID manager --by dana --comment "no receipt"

The run suspends at ``wait_for_approval("manager")`` and holds no worker while
it waits. ``approve``/``reject`` store the decision before they return, so one
made early (before the run reaches the approval) is kept, and one made while
Ray is down is picked up when the next Runner starts. The decision, who made it,
when and why, is an ``ApprovalDecided`` event in the run's history. The first
decision stands: a different second one raises ``ApprovalAlreadyDecided``.
"""

from __future__ import annotations

import time

import runner

expenses = runner.Workflow("expenses")


@expenses.step()
def submit_claim(claim: dict) -> dict:
    return {"amount": claim["amount"], "submitted_at": time.time()}


# on_reject="branch": the decision is passed on either way, and the rules below pick the path
# ("fail" would fail the run with ApprovalRejected, "skip" would skip what only it feeds).
manager = expenses.wait_for_approval("manager", after=submit_claim, on_reject="branch")


@expenses.rule(after=[submit_claim, manager], when=lambda claim, decision: decision.approved)
def pay(claim: dict, decision: runner.Decision) -> str:
    return f"paid {claim['amount']} (approved by {decision.by}: {decision.comment})"


@expenses.rule(after=[submit_claim, manager], when=lambda claim, decision: not decision.approved)
def return_to_sender(claim: dict, decision: runner.Decision) -> str:
    return f"claim of {claim['amount']} returned ({decision.by}: {decision.comment})"


def main() -> None:
    client = runner.connect()
    run = client.submit(expenses, {"amount": 420})
    deadline = time.monotonic() + 60
    while run.status() != "suspended" and time.monotonic() < deadline:
        time.sleep(0.1)
    waiting = [s.name for s in run.steps() if s.status == "waiting"]
    print(f"{run.run_id} is {run.status()}: waiting for {waiting}")
    run.approve("manager", by="dana", comment="within budget")
    print(f"result: {run.result(timeout=60)}")
    try:
        run.reject("manager", by="lee", comment="too late")
    except runner.ApprovalAlreadyDecided as exc:
        print(f"second decision refused: {exc}")
    decided = [s.event for s in run.history() if type(s.event).__name__ == "ApprovalDecided"]
    print(f"history: {decided}")


if __name__ == "__main__":
    main()
