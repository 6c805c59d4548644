"""Small workflows the CLI tests run: ``runner run tests/cli/flows.py:NAME``.

The CLI loads this file by path; its code is pickled by value with each run,
so Ray workers need not import it. Steps that block wait on a "gate" file the
test creates, and mark a "started" file first so the test knows they run.
"""

from __future__ import annotations

import runner
from runner.testing.sideeffects import wait_for_file as _wait_for_file


def _touch(path: str) -> None:
    with open(path, "w"):
        pass


# A quick chain: parse -> double -> report.
quick = runner.Workflow("quick")


@quick.step()
def parse(order: dict) -> int:
    return int(order["n"])


@quick.step(after=parse)
def double(n: int) -> int:
    return n * 2


@quick.step(after=double)
def report(total: int) -> dict:
    return {"total": total, "label": f"total={total}"}


# A step that fails with ValueError (no retries).
fails = runner.Workflow("fails")


@fails.step()
def load(value: int) -> int:
    return value


@fails.step(after=load)
def explode(value: int) -> int:
    raise ValueError(f"bad value {value!r}")


# Waits for signal "approve" after drafting.
approval = runner.Workflow("approval")


@approval.step()
def draft(request: dict) -> dict:
    return {"doc": request["doc"]}


approve = approval.wait_for("approve", after=draft)


@approval.step(after=[draft, approve])
def publish(doc: dict, decision: dict) -> dict:
    return {"doc": doc["doc"], "approved": bool(decision["ok"])}


# Waits for approval "ship" after choosing a candidate; a rejection is passed on (branch).
release = runner.Workflow("release")


@release.step()
def candidate(request: dict) -> str:
    return str(request["version"])


ship = release.wait_for_approval("ship", after=candidate, on_reject="branch")


@release.step(after=[candidate, ship])
def outcome(version: str, decision: runner.Decision) -> dict:
    return {"version": version, "shipped": decision.approved, "by": decision.by}


# Two steps that each block on a gate file: first -> second -> finish.
# Input: {"started1", "gate1", "started2", "gate2"} (paths). num_cpus=0: a blocked
# step holds no CPU, so it never keeps other runs' steps from being scheduled.
gated = runner.Workflow("gated")


@gated.step(num_cpus=0)
def first(paths: dict) -> dict:
    _touch(paths["started1"])
    _wait_for_file(paths["gate1"])
    return paths


@gated.step(after=first, num_cpus=0)
def second(paths: dict) -> dict:
    _touch(paths["started2"])
    _wait_for_file(paths["gate2"])
    return paths


@gated.step(after=second)
def finish(paths: dict) -> str:
    return "finished"


# An irreversible step in the middle: amount -> charge_card (irreversible) -> receipt.
payment = runner.Workflow("payment")


@payment.step()
def amount(order: dict) -> float:
    return float(order["amount"])


@payment.step(after=amount, irreversible=True)
def charge_card(total: float) -> dict:
    return {"charged": total}


@payment.step(after=charge_card)
def receipt(charge: dict) -> str:
    return f"receipt for {charge['charged']:.2f}"


not_a_workflow = 42
