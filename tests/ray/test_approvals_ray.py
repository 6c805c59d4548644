"""Approvals on Ray: a run waits, suspended, for approve/reject; the decision survives a Runner
restart; the first decision stands; a rejection does what the workflow says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import ray
from ray_support import assert_gapless, eventually

import runner
from runner.client import Client
from runner.errors import ApprovalAlreadyDecided, ApprovalRejected, UnknownApproval
from runner.events import ApprovalDecided

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 90


def _deploy(on_reject: str) -> runner.Workflow:
    wf = runner.Workflow(f"deploy_{on_reject}")

    @wf.step()
    def build(version: int) -> str:
        return f"build-{version}"

    gate = wf.wait_for_approval("ship", after=build, on_reject=on_reject)

    @wf.step(after=[build, gate])
    def release(b: str, decision: Any) -> str:
        return f"{b} released, {decision.verb} by {decision.by}"

    return wf


def _decided(handle: runner.RunHandle) -> list[ApprovalDecided]:
    return [s.event for s in handle.history() if isinstance(s.event, ApprovalDecided)]


@pytest.mark.slow  # make chaos: a suspended run across a Runner restart stays in make test (test_restart_signals_timers)
def test_approval_survives_a_runner_restart_and_the_first_decision_stands(make_client: Callable[..., Client]) -> None:
    client = make_client()
    run = client.submit(_deploy("fail"), 4)
    eventually(lambda: run.status() is runner.RunStatus.SUSPENDED, timeout=60, what="the run to wait for approval")
    with pytest.raises(UnknownApproval, match="no approval named 'shipp'"):
        run.approve("shipp", by="dana")

    ray.kill(client.runner, no_restart=False)  # Ray restarts it; the call below waits for it
    decision = run.approve("ship", by="dana", comment="green")
    assert (decision.approved, decision.by, decision.comment) == (True, "dana", "green")
    assert run.result(timeout=RESULT_TIMEOUT) == "build-4 released, approved by dana"

    assert run.approve("ship", by="dana", comment="green") == decision  # the same call again: the stored one
    with pytest.raises(ApprovalAlreadyDecided, match="already approved by dana"):
        run.reject("ship", by="lee")
    [event] = _decided(run)
    assert (event.approved, event.by, event.comment, event.decided_at) == (True, "dana", "green", decision.decided_at)
    assert_gapless(run.history())


def test_a_rejection_made_early_fails_the_run_with_who_rejected(shared_client: Client) -> None:
    client = shared_client
    run = client.submit(_deploy("fail"), 5)
    client.reject(run.run_id, "ship", by="lee", comment="freeze")  # before or after the wait: kept either way
    with pytest.raises(ApprovalRejected, match="approval 'ship' was rejected by lee: freeze"):
        run.result(timeout=RESULT_TIMEOUT)
    assert [(e.approved, e.by) for e in _decided(run)] == [(False, "lee")]
