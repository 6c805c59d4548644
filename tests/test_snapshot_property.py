"""Property: a snapshot at any cursor plus the events after it folds to exactly the full log's state.

Random workflows (DAGs of steps, rules, maps, waits and sleeps with random
policies) are run in process; hypothesis decides every task's outcome
through the ``intercept`` hook (value, failure, non-retryable failure, rule
not taken) and sends signals, pauses and suspensions between cycles. The
logs this produces cover retries, fallbacks, skips, fan-out, timers and
failures.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import serialization
from runner.errors import FoldError, NonRetryableError, SnapshotMismatch
from runner.events import RunCancelled, RunPaused, RunResumed, RunSuspended, StoredEvent
from runner.policy import BACKOFFS
from runner.state import NOT_TAKEN, SNAPSHOT_FORMAT, Task, WorkflowState
from runner.testing.inprocess import InProcessRun
from runner.workflow import NodeKind, Workflow

SIGNALS = ("s0", "s1")
VALUES = st.one_of(st.integers(-3, 3), st.lists(st.integers(0, 9), max_size=3), st.none())


def _fn(*args: Any) -> Any:  # never called: the intercept decides every outcome
    raise AssertionError("intercepted")


def _fallback(*args: Any) -> Any:
    raise AssertionError("intercepted")


def _when(*args: Any) -> bool:
    raise AssertionError("intercepted")


@st.composite
def workflows(draw: st.DrawFn) -> Workflow:
    wf = Workflow("prop")
    for i in range(draw(st.integers(1, 7))):
        name = f"n{i}"
        prior = list(wf.nodes)
        kinds = ["step", "step", "rule", "wait", "sleep"] + (["map", "map"] if prior else [])
        kind = draw(st.sampled_from(kinds))
        options: dict[str, Any] = {
            "retries": draw(st.integers(0, 2)),
            "backoff": draw(st.sampled_from(BACKOFFS)),
            "backoff_base": draw(st.sampled_from([0.0, 1.0, 2.5])),
            "on_failure": draw(st.sampled_from(["halt", "skip", "skip"])),
            "priority": draw(st.integers(-1, 1)),
        }
        if draw(st.integers(0, 3)) == 0:
            options["fallback"] = _fallback
        if kind == "map":
            wf.map(_fn, name=name, after=draw(st.sampled_from(prior)), **options)
            continue
        if kind in ("wait", "sleep"):
            after = draw(st.lists(st.sampled_from(prior), max_size=1)) if prior else []
            if kind == "wait":
                wf.wait_for(draw(st.sampled_from(SIGNALS)), name=name, after=after)
            else:
                wf.sleep(draw(st.sampled_from([0, 5])), name=name, after=after)
            continue
        after = draw(st.lists(st.sampled_from(prior), unique=True, max_size=3)) if prior else []
        if kind == "rule":
            wf.rule(_fn, name=name, after=after, when=_when, **options)
        else:
            wf.step(_fn, name=name, after=after, **options)
    wf.validate()
    return wf


def run_randomly(wf: Workflow, data: st.DataObject) -> InProcessRun:
    def intercept(task: Task) -> Any:
        node = wf.nodes[task.node]
        outcomes = ["value", "value", "value", "fail", "fatal"]
        if node.kind is NodeKind.RULE and not task.fallback:
            outcomes.append("not taken")
        outcome = data.draw(st.sampled_from(outcomes), label=f"outcome of {task.node}[{task.item}]#{task.attempt}")
        if outcome == "fail":
            raise ValueError(f"{task.node} failed")
        if outcome == "fatal":
            raise NonRetryableError(f"{task.node} gave up")
        if outcome == "not taken":
            return NOT_TAKEN
        return data.draw(VALUES)

    run = InProcessRun(wf, data.draw(VALUES, label="input"), seed=data.draw(st.integers(0, 3)))
    signal_id = 0
    for _ in range(6):
        if data.draw(st.integers(0, 2)) == 0:  # a signal, maybe before anything waits for it
            signal_id += 1
            run.signal(signal_id, data.draw(st.sampled_from(SIGNALS)), data.draw(VALUES))
        run.run(intercept)
        if run.state.is_finished:
            break
        action = data.draw(st.sampled_from(["signal", "signal", "pause", "suspend", "cancel"]))
        if action == "pause":
            run.record(RunPaused(at=run.now))
            assert run.state.status == "paused"
            assert run.state.runnables() == [] and run.state.advance(run.now) == []
            run.record(RunResumed(at=run.now))
        elif action == "suspend":
            run.record(RunSuspended(reason="waiting", at=run.now))
            signal_id += 1
            run.signal(signal_id, data.draw(st.sampled_from(SIGNALS)), data.draw(VALUES))
            run.record(RunResumed(at=run.now))
        elif action == "cancel":
            run.record(RunCancelled(reason="enough", at=run.now))
            break
        else:
            signal_id += 1
            names = run.state.waiting_for() or list(SIGNALS)
            run.signal(signal_id, data.draw(st.sampled_from(names)), data.draw(VALUES))
    if not run.state.is_finished:
        run.run(intercept)  # take in what the last action brought
    return run


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(wf=workflows(), data=st.data())
def test_snapshot_at_every_cursor_plus_the_rest_equals_the_full_fold(wf: Workflow, data: st.DataObject) -> None:
    run = run_randomly(wf, data)
    log = run.log
    assert [s.seq for s in log] == list(range(1, len(log) + 1))

    full = WorkflowState.from_events(wf, log)
    assert full == run.state  # the fold of the recorded log is the live state
    assert full.cursor == len(log)

    head = WorkflowState(wf)
    for c in range(len(log) + 1):
        if c:
            head.apply(log[c - 1])
        snapshot = head.snapshot()
        restored = WorkflowState.restore(wf, snapshot)
        assert restored == head
        assert restored.cursor == c
        # planning from a restored snapshot is planning from the log
        assert restored.runnables(now=run.now) == head.runnables(now=run.now)
        assert restored.advance(run.now) == head.advance(run.now)
        assert WorkflowState.from_events(wf, log[c:], snapshot=snapshot) == full


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(wf=workflows(), data=st.data())
def test_a_finished_or_waiting_run_has_nothing_left_to_do(wf: Workflow, data: st.DataObject) -> None:
    run = run_randomly(wf, data)
    state = run.state
    if state.status == "completed":
        assert all(state.is_resolved(name) for name in wf.nodes)
    if state.is_finished:
        assert state.runnables() == [] and state.advance(run.now + 1000) == []
        assert type(log_last := run.log[-1].event).__name__ in ("RunCompleted", "RunFailed", "RunCancelled"), log_last
    else:
        # InProcessRun.run only stops early when a wait has no signal yet
        assert state.waiting_for()
        assert state.runnables(now=run.now) == [] and state.advance(run.now) == []


# ------------------------------------------------------------- mismatches
def two_definitions() -> tuple[Workflow, Workflow]:
    first = Workflow("same")
    first.step(lambda x: x + 1, name="a")
    second = Workflow("same")
    second.step(lambda x: x + 1, name="a", retries=1)
    return first, second


def test_a_snapshot_for_another_definition_raises_snapshot_mismatch():
    first, second = two_definitions()
    run = InProcessRun(first, 1)
    run.run()
    snapshot = run.state.snapshot()
    with pytest.raises(
        SnapshotMismatch,
        match=r"snapshot was taken for definition [0-9a-f]{12}, not 'same' [0-9a-f]{12}; fold the full log instead",
    ):
        WorkflowState.from_events(second, [], snapshot=snapshot)
    with pytest.raises(SnapshotMismatch):
        WorkflowState.restore(second, snapshot)
    assert isinstance(SnapshotMismatch("x"), FoldError)  # callers catching FoldError catch it too
    assert WorkflowState.restore(first, snapshot) == run.state


@pytest.mark.parametrize("version", [SNAPSHOT_FORMAT + 1, 0, "2"])
def test_a_snapshot_of_another_format_raises_snapshot_mismatch(version):
    first, _ = two_definitions()
    run = InProcessRun(first, 1)
    run.run()
    _, definition_hash, data = serialization.loads(run.state.snapshot())
    blob = serialization.dumps((version, definition_hash, data))
    with pytest.raises(
        SnapshotMismatch,
        match=rf"snapshot is of format {version}, this version reads format {SNAPSHOT_FORMAT}; fold the full log instead",
    ):
        WorkflowState.restore(first, blob)
    with pytest.raises(SnapshotMismatch):
        WorkflowState.from_events(first, run.log[1:], snapshot=blob)
    assert WorkflowState.from_events(first, run.log) == run.state  # what recovery does instead


def test_a_snapshot_without_a_format_number_raises_snapshot_mismatch():
    """The unversioned ``(definition hash, data)`` pairs of earlier versions are not read."""
    first, _ = two_definitions()
    run = InProcessRun(first, 1)
    run.run()
    _, definition_hash, data = serialization.loads(run.state.snapshot())
    with pytest.raises(SnapshotMismatch, match="snapshot is of format without a number"):
        WorkflowState.restore(first, serialization.dumps((definition_hash, data)))


def test_a_snapshot_records_its_format_and_definition():
    first, _ = two_definitions()
    run = InProcessRun(first, 1)
    run.run()
    version, definition_hash, _ = serialization.loads(run.state.snapshot())
    assert (version, definition_hash) == (SNAPSHOT_FORMAT, first.definition_hash())


@pytest.mark.parametrize("blob", [b"", b"not a pickle", b"\x80\x05N."])
def test_an_unreadable_snapshot_raises_snapshot_mismatch(blob):
    first, _ = two_definitions()
    with pytest.raises(SnapshotMismatch, match="fold the full log instead"):
        WorkflowState.restore(first, blob)


def test_events_after_a_snapshot_must_continue_its_cursor_and_run():
    first, _ = two_definitions()
    run = InProcessRun(first, 1)
    run.run()
    head = WorkflowState.from_events(first, run.log[:2])
    with pytest.raises(FoldError, match="event seq 4 does not follow cursor 2"):
        WorkflowState.from_events(first, run.log[3:], snapshot=head.snapshot())
    other_run = [StoredEvent(run_id="other", seq=s.seq, event=s.event) for s in run.log[2:]]
    with pytest.raises(FoldError, match="event of run 'other' folded into run 'run-1'"):
        WorkflowState.from_events(first, other_run, snapshot=head.snapshot())
