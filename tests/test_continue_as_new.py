"""Continue-as-new in the pure core: the event that ends a run, its fold, its planning, the successor."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import runner
from runner.continue_as_new import continued_in, successor_of, successor_run, successor_run_id
from runner.errors import FoldError, InvalidArgument
from runner.events import FactProduced, RunContinuedAsNew, RunSubmitted, StepStarted, kind_of, number
from runner.serialization import decode_event, encode_event
from runner.state import WorkflowState
from runner.store import TERMINAL, TRANSITIONS, RunStatus
from runner.testing.inprocess import InProcessRun, drive, drive_chain
from runner.workflow import Workflow


# ----------------------------------------------------------- user code
def counter(limit: int = 3) -> Workflow:
    """A long-lived loop: each run handles one round and continues with the next, until ``limit``."""
    wf = Workflow("counter")

    @wf.step()
    def work(state):
        return {"round": state["round"], "total": state["total"] + state["round"]}

    @wf.step(after=work)
    def next_round(done):
        if done["round"] >= limit:
            return done["total"]
        return runner.continue_as_new({"round": done["round"] + 1, "total": done["total"]})

    return wf


@dataclass
class Round:
    n: int


def typed() -> Workflow:
    wf = Workflow("typed", input_type=Round)

    @wf.step()
    def go(r):
        return r.n if r.n >= 2 else runner.continue_as_new({"n": r.n + 1})

    return wf


def kinds(run: InProcessRun) -> list[str]:
    return [kind_of(s.event) for s in run.log]


# ------------------------------------------------------------ successor ids
def test_successor_ids_are_derived_from_the_predecessor():
    assert successor_run_id("orders-1") == "orders-1:c1"
    assert successor_run_id("orders-1:c1") == "orders-1:c2"
    assert successor_run_id("orders-1:c9") == "orders-1:c10"
    assert successor_run_id("a:b") == "a:b:c1"


def test_a_long_run_id_keeps_a_deterministic_successor_id_within_the_limit():
    long_id = "x" * 126
    first = successor_run_id(long_id)
    assert first == successor_run_id(long_id) and len(first) <= 128
    assert successor_run_id(first) == first[:-1] + "2"


# ---------------------------------------------------------------- the status
def test_continued_is_a_terminal_status_reached_only_from_running():
    assert RunStatus.CONTINUED in TERMINAL and RunStatus.CONTINUED.is_terminal
    assert [s for s, targets in TRANSITIONS.items() if RunStatus.CONTINUED in targets] == [RunStatus.RUNNING]
    assert RunStatus("continued") is RunStatus.CONTINUED


# ------------------------------------------------------------ a run in process
def test_a_run_that_continues_as_new_ends_continued_naming_its_successor():
    run = drive(counter(), {"round": 1, "total": 0}, run_id="loop")
    assert kinds(run) == ["RunSubmitted", "StepStarted", "FactProduced", "StepStarted", "RunContinuedAsNew"]
    assert run.state.status is RunStatus.CONTINUED and run.state.is_finished
    assert run.state.successor_run_id == "loop:c1"
    last = run.log[-1].event
    assert isinstance(last, RunContinuedAsNew)
    assert (last.node, last.input) == ("next_round", {"round": 2, "total": 1})
    assert run.state.runnables() == [] and run.state.advance(run.now) == []


def test_a_chain_of_runs_ends_with_the_last_result_and_each_history_stays_small():
    runs = drive_chain(counter(limit=5), {"round": 1, "total": 0}, run_id="loop")
    assert [r.run_id for r in runs] == ["loop", "loop:c1", "loop:c2", "loop:c3", "loop:c4"]
    assert [r.state.status for r in runs] == [RunStatus.CONTINUED] * 4 + [RunStatus.COMPLETED]
    assert runs[-1].state.result == 1 + 2 + 3 + 4 + 5
    assert {len(r.log) for r in runs[:-1]} == {5}  # a bounded history per run, however long the loop


def test_the_successor_input_is_checked_against_the_input_type():
    runs = drive_chain(typed(), Round(0), run_id="t")
    assert runs[-1].state.result == 2
    assert [r.state.input for r in runs] == [Round(0), Round(1), Round(2)]


def test_a_successor_input_the_workflow_refuses_fails_the_step_without_retries():
    wf = Workflow("bad_next", input_type=Round)

    @wf.step(retries=3)
    def go(r):
        return runner.continue_as_new({"m": 1})

    run = drive(wf, {"n": 0})
    assert run.state.status is RunStatus.FAILED
    assert "RunContinuedAsNew" not in kinds(run)
    assert kinds(run).count("StepStarted") == 1
    assert run.state.error is not None and run.state.error.type.endswith("InvalidInput")


def test_a_map_item_may_continue_the_run_and_the_other_items_results_are_dropped():
    wf = Workflow("fan")

    @wf.step()
    def items(n):
        return list(range(n))

    @wf.map(after=items)
    def each(i):
        return runner.continue_as_new(0) if i == 1 else i

    run = drive(wf, 3, run_id="fan")
    assert run.state.status is RunStatus.CONTINUED
    [moved] = continued_in(s.event for s in run.log)
    assert (moved.node, moved.item, moved.successor_run_id) == ("each", 1, "fan:c1")
    assert kinds(run)[-1] == "RunContinuedAsNew"


# ------------------------------------------------------------------ the fold
def test_the_fold_refuses_a_continue_as_new_from_a_task_that_is_not_running():
    wf = counter()
    log = number(
        "r",
        [
            RunSubmitted(workflow="counter", input={"round": 1, "total": 0}, definition_hash="h", at=0.0),
            RunContinuedAsNew(node="work", successor_run_id="r:c1", input=None, at=0.0),
        ],
    )
    with pytest.raises(FoldError, match="not running"):
        WorkflowState.from_events(wf, log)


def test_the_fold_refuses_events_after_the_run_continued():
    wf = counter()
    events = [
        RunSubmitted(workflow="counter", input={"round": 1, "total": 0}, definition_hash="h", at=0.0),
        StepStarted(node="work", attempt=1, lease=1, at=0.0),
        RunContinuedAsNew(node="work", successor_run_id="r:c1", input={"round": 2, "total": 1}, at=0.0),
        FactProduced(node="work", value=1, at=0.0),
    ]
    with pytest.raises(FoldError, match="after the run ended"):
        WorkflowState.from_events(wf, number("r", events))
    state = WorkflowState.from_events(wf, number("r", events[:3]))
    assert (state.status, state.successor_run_id) == (RunStatus.CONTINUED, "r:c1")


def test_a_snapshot_of_a_continued_run_restores_the_same_state():
    run = drive(counter(), {"round": 1, "total": 0}, run_id="loop")
    restored = WorkflowState.restore(run.workflow, run.state.snapshot())
    assert (restored.status, restored.successor_run_id) == (RunStatus.CONTINUED, "loop:c1")


# --------------------------------------------------------- event and successor
def test_the_event_round_trips_through_the_store_encoding():
    event = RunContinuedAsNew(node="n", item=2, successor_run_id="r:c1", input={"k": [1, 2]}, at=5.0)
    assert decode_event(*encode_event(event)) == event


def test_the_successor_run_has_the_same_definition_and_links_to_its_predecessor():
    event = RunContinuedAsNew(node="n", successor_run_id="r:c1", input={"round": 2}, at=5.0)
    new = successor_run("r", "counter", b"definition", "hash", event)
    assert (new.run_id, new.workflow, new.definition, new.definition_hash) == ("r:c1", "counter", b"definition", "hash")
    assert new.parent_run_id == "r"
    [submitted] = new.events
    assert isinstance(submitted, RunSubmitted)
    assert (submitted.input, submitted.parent_run_id, submitted.definition_hash) == ({"round": 2}, "r", "hash")


def test_successor_of_follows_only_a_continued_run():
    moved = RunContinuedAsNew(node="n", successor_run_id="r:c1", input=None)
    assert successor_of(RunStatus.CONTINUED, moved) == "r:c1"
    assert successor_of(RunStatus.COMPLETED, None) is None
    assert successor_of(RunStatus.CONTINUED, None) is None


def test_a_continuation_of_a_whole_workflow_with_several_inputs_points_at_continue_as_new():
    with pytest.raises(InvalidArgument, match=r"runner\.continue_as_new\(input\)"):
        runner.continuation(counter(), {"round": 1}, {"total": 0})


def test_continue_as_new_is_exported():
    assert isinstance(runner.continue_as_new({"a": 1}), runner.ContinueAsNew)
    assert runner.continue_as_new().input is None


def test_an_input_that_cannot_be_stored_fails_the_step():
    import threading

    wf = Workflow("unstorable")

    @wf.step()
    def go(_):
        return runner.continue_as_new(threading.Lock())

    run = drive(wf, 1)
    assert run.state.status is RunStatus.FAILED
    assert run.state.error is not None
