"""Run metadata without Ray: steps add metadata through runner.context(), it is recorded with each
attempt's outcome and checked by the fold; RunHandle.metadata()'s view; keyed signals' answers; the
CLI's --meta parsing."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import runner
from runner.cli import parse_meta
from runner.errors import FoldError, InvalidArgument, RunnerError
from runner.events import FactProduced, StepFailed, StepMetadataAdded, StepStarted, kind_of, number
from runner.execution import StepResult
from runner.metadata import check_metadata, json_pointer, matches
from runner.run_metadata import RunMetadata, StepMetadata, run_metadata
from runner.signal_id import SignalId, answer, dedupe_key_for
from runner.state import WorkflowState
from runner.step_view import StepStatus
from runner.store import RunRecord, RunStatus, Signal
from runner.testing.inprocess import InProcessRun, drive
from runner.workflow import Workflow


def tagged_workflow() -> Workflow:
    wf = Workflow("tagged")

    @wf.step(retries=1, backoff="none")
    def load(order: dict[str, Any]) -> list[int]:
        ctx = runner.context()
        ctx.set_metadata(attempt=ctx.attempt, source="db")
        if ctx.attempt == 1:
            raise RuntimeError("flaky")
        return order["items"]

    @wf.map(after=load)
    def work(item: int) -> int:
        runner.context().set_metadata({"last_item": item})
        return item * 2

    @wf.step(after=work)
    def total(values: list[int]) -> int:
        return sum(values)

    return wf


def record_of(run: InProcessRun, metadata: dict[str, Any], status: RunStatus = RunStatus.COMPLETED) -> RunRecord:
    return RunRecord(
        run_id=run.run_id,
        workflow=run.workflow.name,
        status=status,
        definition=b"",
        definition_hash=run.workflow.definition_hash(),
        created_at=-1.0,
        updated_at=0.0,
        metadata=metadata,
    )


def test_metadata_a_step_adds_is_recorded_just_before_each_attempts_outcome():
    run = drive(tagged_workflow(), {"items": [1, 2]})
    assert run.state.result == 6
    kinds = [(kind_of(s.event), getattr(s.event, "node", None)) for s in run.log]
    load_events = [k for k, node in kinds if node == "load"]
    assert load_events == [
        "StepStarted",
        "StepMetadataAdded",
        "StepFailed",
        "StepStarted",
        "StepMetadataAdded",
        "FactProduced",
    ]
    added = [s.event for s in run.log if isinstance(s.event, StepMetadataAdded)]
    assert [(e.node, e.item, e.attempt, e.values) for e in added] == [
        ("load", None, 1, {"attempt": 1, "source": "db"}),
        ("load", None, 2, {"attempt": 2, "source": "db"}),
        ("work", 0, 1, {"last_item": 1}),
        ("work", 1, 1, {"last_item": 2}),
    ]
    # a step that adds nothing records nothing
    assert not [e for e in added if e.node == "total"]
    # the same log folds to the same state again
    again = WorkflowState.from_events(run.workflow, run.log)
    assert again.result == 6


def test_handle_metadata_view_merges_submit_and_step_metadata_with_times_and_attempts():
    run = drive(tagged_workflow(), {"items": [1, 2]}, now=100.0)
    view = run_metadata(record_of(run, {"tenant": "t-7", "source": "api"}), run.log, run.state.steps())
    assert isinstance(view, RunMetadata)
    assert view.metadata == {"tenant": "t-7", "source": "db", "attempt": 2, "last_item": 2}
    assert view.submit_metadata == {"tenant": "t-7", "source": "api"}
    assert (view.status, view.created_at) == (RunStatus.COMPLETED, -1.0)
    first_start = next(s.event.at for s in run.log if isinstance(s.event, StepStarted))
    assert view.started_at == first_start
    assert view.finished_at == run.log[-1].event.at
    assert list(view.steps) == ["load", "work", "total"]
    load = view.steps["load"]
    assert load == StepMetadata(
        name="load",
        kind="step",
        status=StepStatus.DONE,
        attempts=2,
        started_at=load.started_at,
        finished_at=load.finished_at,
        metadata={"attempt": 2, "source": "db"},
    )
    assert load.started_at is not None and load.finished_at is not None and load.finished_at >= load.started_at
    assert view.steps["work"].metadata == {"last_item": 2}
    assert view.steps["work"].attempts == 2  # a map's attempts add up its items'
    assert view.steps["total"].metadata == {}


def test_an_open_run_has_no_end_time_and_a_step_not_started_no_times():
    wf = Workflow("waits")
    wf.step(lambda: 1, name="first")
    wf.wait_for("go", name="gate", after="first")
    run = drive(wf)
    view = run_metadata(record_of(run, {}, RunStatus.SUSPENDED), run.log, run.state.steps())
    assert view.finished_at is None and view.started_at is not None
    assert view.steps["gate"].started_at is None and view.steps["gate"].status is StepStatus.WAITING


def test_metadata_that_is_not_json_fails_the_step_with_an_error_naming_it():
    wf = Workflow("bad-meta")

    @wf.step()
    def tag() -> int:
        runner.context().set_metadata(when=object())
        return 1

    run = drive(wf)
    assert run.state.status is RunStatus.FAILED
    assert run.state.error is not None and "set_metadata['when']" in run.state.error.message
    assert not [s for s in run.log if isinstance(s.event, StepMetadataAdded)]


def test_context_metadata_is_a_copy_and_outside_a_step_there_is_no_context():
    with pytest.raises(RunnerError, match="only available inside a running step"):
        runner.context()
    wf = Workflow("copy")
    seen: list[dict[str, Any]] = []

    @wf.step()
    def tag() -> int:
        ctx = runner.context()
        ctx.set_metadata(a=1)
        ctx.metadata["b"] = 2  # a copy: not recorded
        ctx.set_metadata({"c": [1]}, d=None)
        seen.append(ctx.metadata)
        return 1

    run = drive(wf)
    assert seen == [{"a": 1, "c": [1], "d": None}]
    [added] = [s.event for s in run.log if isinstance(s.event, StepMetadataAdded)]
    assert added.values == {"a": 1, "c": [1], "d": None}


def test_the_fold_refuses_metadata_for_a_task_that_is_not_running():
    wf = Workflow("one")
    wf.step(lambda: 1, name="a")
    submitted = drive(wf).log[0].event
    meta = StepMetadataAdded(node="a", attempt=1, values={"k": 1}, at=0.0)
    for events in (
        [submitted, meta],  # not started
        [submitted, StepStarted(node="a", attempt=1, lease=1, at=0.0), FactProduced(node="a", value=1, at=0.0), meta],
        [submitted, StepStarted(node="a", attempt=1, lease=1, at=0.0), meta.__class__(node="a", attempt=2, values={})],
        [submitted, StepMetadataAdded(node="nope", attempt=1, values={}, at=0.0)],
    ):
        with pytest.raises(FoldError):
            WorkflowState.from_events(wf, number("r", list(events)))
    ok = [submitted, StepStarted(node="a", attempt=1, lease=1, at=0.0), meta, FactProduced(node="a", value=1, at=0.0)]
    assert WorkflowState.from_events(wf, number("r", ok)).results() == {"a": 1}


def test_a_failed_attempts_metadata_is_recorded_with_its_failure():
    wf = Workflow("fails")

    @wf.step()
    def boom() -> None:
        runner.context().set_metadata(tried="yes")
        raise ValueError("no")

    run = drive(wf)
    kinds = [type(s.event) for s in run.log]
    assert kinds.index(StepMetadataAdded) + 1 == kinds.index(StepFailed)


def test_a_step_result_with_metadata_crosses_processes_whole():
    result = StepResult(value=1, metadata={"k": [1]})
    assert pickle.loads(pickle.dumps(result)) == result
    lean = StepResult(value=1)
    assert pickle.loads(pickle.dumps(lean)) == lean


def test_check_metadata_and_the_filter_rule():
    assert check_metadata(None) == {}
    assert check_metadata({"a": [1, {"b": None}], "c": True}) == {"a": [1, {"b": None}], "c": True}
    with pytest.raises(InvalidArgument, match=r"metadata\['a'\]\[0\] is a tuple"):
        check_metadata({"a": [(1,)]})
    with pytest.raises(InvalidArgument, match="which JSON cannot hold"):
        check_metadata({"a": float("inf")})
    assert matches({"n": 1, "s": "x", "b": True, "z": None}, {"n": 1.0, "s": "x", "b": True, "z": None})
    assert not matches({"n": True}, {"n": 1})
    assert not matches({"n": 1}, {"n": True})
    assert not matches({"s": "1"}, {"s": 1})
    assert not matches({}, {"z": None})
    assert json_pointer("a/b~c") == "/a~1b~0c"


def test_a_keyed_signal_answer_says_whether_this_call_stored_it():
    assert dedupe_key_for(None, "call-1") == "call-1"
    assert dedupe_key_for("order-42", "call-1") == "key:order-42"
    for bad in ("", 5):
        with pytest.raises(InvalidArgument, match="key must be a non-empty string"):
            dedupe_key_for(bad, "call-1")  # type: ignore[arg-type]
    stored = Signal(run_id="r", signal_id=3, name="go", payload=None, sent_at=0.0, call_id="call-1")
    mine, theirs = answer(stored, "call-1"), answer(stored, "call-2")
    assert (mine, mine.duplicate) == (3, False)
    assert (theirs, theirs.duplicate) == (3, True)
    assert isinstance(mine, int) and repr(theirs) == "SignalId(3, duplicate=True)"
    assert SignalId(1) + 1 == 2
    assert (str(theirs), f"#{theirs}", f"{theirs:>3}") == ("3", "#3", "  3")


def test_cli_meta_options_become_a_metadata_filter():
    assert parse_meta(("tenant=t-7", "tier:=2", "vip:=true", "note:=null", "eq=a=b")) == {
        "tenant": "t-7",
        "tier": 2,
        "vip": True,
        "note": None,
        "eq": "a=b",
    }
    for bad in ("novalue", "=x", ":=1"):
        with pytest.raises(InvalidArgument, match="--meta takes KEY=VALUE"):
            parse_meta((bad,))
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        parse_meta(("n:=nope",))
