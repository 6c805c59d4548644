"""Approvals in the pure core: definition checks, the decision as an event, what a rejection does."""

from __future__ import annotations

import pickle

import pytest

from runner import SKIPPED
from runner.approvals import Decision, OnReject, check_decision_args, check_known, signal_name, stored_decision
from runner.errors import (
    ApprovalAlreadyDecided,
    ApprovalRejected,
    DefinitionError,
    FoldError,
    InvalidArgument,
    UnknownApproval,
)
from runner.events import ApprovalDecided, FactProduced, RunResumed, RunSuspended, StoredEvent, kind_of
from runner.serialization import decode_event, encode_event, exception_of
from runner.state import WorkflowState
from runner.testing.inprocess import InProcessRun
from runner.workflow import NodeKind, Workflow


def deploy(on_reject: str = "fail") -> Workflow:
    wf = Workflow("deploy")
    wf.step(lambda version: f"build-{version}", name="build")
    gate = wf.wait_for_approval("ship", after="build", on_reject=on_reject)
    wf.step(lambda b, d: {"build": b, "approved": bool(d and d.approved)}, name="release", after=["build", gate])
    wf.step(lambda b: f"notified {b}", name="notify", after=gate)
    return wf


def decision(approved: bool, by: str = "dana", comment: str = "", at: float = 5.0) -> dict:
    return Decision(approval="ship", approved=approved, by=by, comment=comment, decided_at=at).to_payload()


def decided(run: InProcessRun) -> list[ApprovalDecided]:
    return [s.event for s in run.log if isinstance(s.event, ApprovalDecided)]


# ------------------------------------------------------------- definition
def test_wait_for_approval_is_a_wait_on_the_reserved_signal():
    wf = deploy()
    node = wf.node("approve_ship")
    assert (node.kind, node.signal, node.approval, node.on_reject) == (
        NodeKind.WAIT,
        "approval:ship",
        "ship",
        OnReject.FAIL,
    )
    assert wf.approvals() == ("ship",)


@pytest.mark.parametrize("name", ["", "has space", "9lives", "a.b", "a-b", "approval:x", None, 3])
def test_approval_name_that_is_not_an_identifier_is_a_definition_error(name):
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="approval name must be a plain identifier"):
        wf.wait_for_approval(name)


def test_unknown_on_reject_and_a_second_approval_of_one_name_are_definition_errors():
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="on_reject must be one of 'fail', 'skip', 'branch'"):
        wf.wait_for_approval("ship", on_reject="ignore")
    wf.wait_for_approval("ship")
    with pytest.raises(DefinitionError, match="already waits for approval 'ship'"):
        wf.wait_for_approval("ship", name="again")


def test_on_reject_changes_the_definition_hash_and_plain_waits_keep_theirs():
    assert deploy("fail").definition_hash() != deploy("skip").definition_hash()
    plain = Workflow("p")
    plain.wait_for("go")
    again = Workflow("p")
    again.wait_for("go")
    assert plain.definition_hash() == again.definition_hash()


# ---------------------------------------------------------------- planning
def test_approved_run_records_who_decided_and_passes_the_decision_on():
    run = InProcessRun(deploy(), 7)
    run.run()
    assert run.state.status == "running" and run.state.waiting_for() == ["approval:ship"]
    run.record(RunSuspended(reason="waiting for signal approval:ship"))
    run.signal(1, signal_name("ship"), decision(True, comment="looks good"))
    run.record(RunResumed())
    run.run()
    assert run.state.status == "completed"
    assert run.state.result["release"] == {"build": "build-7", "approved": True}
    assert run.state.result["notify"].startswith("notified Decision(approval='ship', approved=True, by='dana'")
    [event] = decided(run)
    assert (event.node, event.approval, event.signal_id, event.approved, event.by, event.comment, event.decided_at) == (
        "approve_ship",
        "ship",
        1,
        True,
        "dana",
        "looks good",
        5.0,
    )
    assert run.state.results()["approve_ship"] == Decision(
        approval="ship", approved=True, by="dana", comment="looks good", decided_at=5.0
    )
    assert not [s for s in run.log if isinstance(s.event, FactProduced) and s.event.node == "approve_ship"]


def test_rejection_that_fails_the_run_names_the_approval_and_who_rejected():
    run = InProcessRun(deploy("fail"), 7)
    run.signal(1, signal_name("ship"), decision(False, by="lee", comment="not on a friday"))
    run.run()
    assert run.state.status == "failed"
    assert run.state.failed_node == "approve_ship"
    assert [kind_of(s.event) for s in run.log][-2:] == ["ApprovalDecided", "RunFailed"]
    error = run.state.error
    assert error is not None and error.type == "runner.errors.ApprovalRejected"
    assert error.message.startswith("approval 'ship' was rejected by lee: not on a friday;")
    exc = exception_of(error)
    assert isinstance(exc, ApprovalRejected) and (exc.approval, exc.by, exc.comment) == (
        "ship",
        "lee",
        "not on a friday",
    )
    assert run.state.ran() == {"build"}
    steps = {step.name: step.status for step in run.state.steps()}
    assert steps == {"build": "done", "approve_ship": "failed", "release": "pending", "notify": "pending"}


def test_rejection_that_skips_skips_what_only_the_approval_feeds():
    run = InProcessRun(deploy("skip"), 7)
    run.signal(1, signal_name("ship"), decision(False))
    run.run()
    assert run.state.status == "completed"
    results = run.state.results()
    assert results["approve_ship"] is SKIPPED and results["notify"] is SKIPPED
    assert results["release"] == {"build": "build-7", "approved": False}  # it has another upstream


def test_rejection_that_branches_passes_the_decision_to_downstream_rules():
    wf = Workflow("branchy")
    gate = wf.wait_for_approval("ship", on_reject="branch")
    wf.rule(lambda d: f"shipped ({d.by})", when=lambda d: d.approved, name="ship_it", after=gate)
    wf.rule(lambda d: f"rolled back: {d.comment}", when=lambda d: not d.approved, name="roll_back", after=gate)
    run = InProcessRun(wf, None)
    run.signal(1, signal_name("ship"), decision(False, comment="tests red"))
    run.run()
    assert run.state.status == "completed"
    assert run.state.result == {"roll_back": "rolled back: tests red"}
    assert run.state.results()["approve_ship"].approved is False


def test_a_decision_before_the_approval_is_reached_is_kept_and_the_first_one_is_taken():
    run = InProcessRun(deploy(), 7)
    run.signal(3, signal_name("ship"), {"not": "a decision"})  # sent by hand: passed over
    run.signal(4, signal_name("ship"), decision(True, by="ann"))
    run.signal(5, signal_name("ship"), decision(False, by="bob"))
    run.run()
    assert run.state.status == "completed"
    assert [(e.signal_id, e.by) for e in decided(run)] == [(4, "ann")]


def test_approval_decided_folds_only_for_the_waiting_approval_and_a_received_decision():
    wf = deploy()
    state = WorkflowState(wf)
    run = InProcessRun(wf, 7)
    for stored in run.log:
        state.apply(stored)
    bad = ApprovalDecided(node="approve_ship", approval="ship", signal_id=1, approved=True, by="x")
    with pytest.raises(FoldError, match="not waiting"):  # build has not run
        state.apply(StoredEvent(run_id="run-1", seq=2, event=bad))
    run.run()
    with pytest.raises(FoldError, match="not a received 'approval:ship'"):
        run.state.apply(StoredEvent(run_id="run-1", seq=run.state.cursor + 1, event=bad))
    with pytest.raises(FoldError, match="resolves by ApprovalDecided"):
        run.state.apply(
            StoredEvent(run_id="run-1", seq=run.state.cursor + 1, event=FactProduced(node="approve_ship", value=1))
        )


def test_approval_decided_round_trips_through_the_event_encoding_and_snapshots():
    event = ApprovalDecided(
        node="g", approval="ship", signal_id=2, approved=False, by="lee", comment="no", decided_at=1.5
    )
    assert decode_event(*encode_event(event)) == event
    run = InProcessRun(deploy("branch"), 1)
    run.signal(1, signal_name("ship"), decision(False))
    run.run()
    assert WorkflowState.restore(run.workflow, run.state.snapshot()) == run.state


# ------------------------------------------------------------ client checks
def test_decision_arguments_are_checked_before_anything_is_sent():
    with pytest.raises(InvalidArgument, match="plain identifier"):
        check_decision_args("no way", "dana", "")
    with pytest.raises(InvalidArgument, match="by= must name who decides"):
        check_decision_args("ship", " ", "")
    with pytest.raises(UnknownApproval, match=r"run .r1. has no approval named .shipp. \(its approvals: \[.ship.\]\)"):
        check_known("r1", "shipp", ("ship",))


def test_the_first_decision_stands_the_same_again_returns_it_another_is_refused():
    first = Decision(approval="ship", approved=True, by="dana", comment="ok", decided_at=1.0)
    again = Decision(approval="ship", approved=True, by="dana", comment="ok", decided_at=9.0)
    assert stored_decision("r1", again, first.to_payload()) == first
    other = Decision(approval="ship", approved=False, by="lee", decided_at=9.0)
    with pytest.raises(ApprovalAlreadyDecided, match="already approved by dana") as caught:
        stored_decision("r1", other, first.to_payload())
    assert pickle.loads(pickle.dumps(caught.value)).approval == "ship"
