"""Resume of a failed or cancelled run in place: RunReopened in the fold, planning and lifecycle (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from runner import lifecycle
from runner.errors import FoldError, ResumeRefused
from runner.events import (
    ErrorInfo,
    FactProduced,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunReopened,
    StepFailed,
    StepStarted,
    StoredEvent,
)
from runner.planning import Task
from runner.run_data import TaskStatus
from runner.state import WorkflowState
from runner.store import RunStatus
from runner.testing.inprocess import InProcessRun
from runner.workflow import Workflow


def _chain(retries: int = 1) -> Workflow:
    wf = Workflow("chain")

    @wf.step()
    def fetch(x):
        return x + 1

    @wf.step(after=fetch, retries=retries)
    def charge(v):
        return v * 10

    @wf.step(after=charge)
    def receipt(c):
        return f"receipt {c}"

    return wf


class Flaky:
    """Stands in for the steps' code: ``charge`` raises while ``broken`` is True; every call is counted."""

    def __init__(self, wf: Workflow) -> None:
        self.wf = wf
        self.broken = True
        self.calls: list[tuple[str, int]] = []

    def __call__(self, task: Task) -> Any:
        self.calls.append((task.node, task.attempt))
        if task.node == "charge" and self.broken:
            raise ConnectionError("payment gateway down")
        return self.wf.nodes[task.node].fn(*task.inputs)


def _kinds(run: InProcessRun, after: int = 0) -> list[str]:
    return [type(s.event).__name__ for s in run.log if s.seq > after]


def _failed_run(retries: int = 1) -> tuple[InProcessRun, Flaky]:
    wf = _chain(retries)
    flaky = Flaky(wf)
    run = InProcessRun(wf, 1)
    run.run(flaky)
    assert run.state.status is RunStatus.FAILED
    return run, flaky


def test_a_reopened_run_reruns_only_the_failed_step_with_a_fresh_retry_budget() -> None:
    run, flaky = _failed_run(retries=1)
    assert flaky.calls == [("fetch", 1), ("charge", 1), ("charge", 2)]  # two attempts: the budget is spent
    assert run.state.failed_node == "charge"

    ended = run.state.cursor
    run.record(RunReopened(from_status="failed", reason="gateway back", at=run.now))
    state = run.state
    assert (state.status, state.error, state.failed_node, state.is_finished) == (RunStatus.RUNNING, None, None, False)
    charge = state.task("charge")
    assert charge is not None and (charge.status, charge.attempt) == (TaskStatus.RETRY, 2)
    assert [t.key + (t.attempt,) for t in state.runnables(now=run.now)] == [("charge", None, 3)]

    run.run(flaky)  # still broken: attempt 3 fails and is retried (fresh budget), attempt 4 too
    assert flaky.calls[3:] == [("charge", 3), ("charge", 4)]
    assert run.state.status is RunStatus.FAILED
    fails = [s.event for s in run.log if s.seq > ended and isinstance(s.event, StepFailed)]
    assert [(f.attempt, f.retry_at is not None) for f in fails] == [(3, True), (4, False)]

    run.record(RunReopened(from_status="failed", at=run.now))
    flaky.broken = False
    run.run(flaky)
    assert run.state.status is RunStatus.COMPLETED
    assert run.state.result == "receipt 20"
    assert flaky.calls[5:] == [("charge", 5), ("receipt", 1)]  # fetch's result was kept: it never ran again
    assert [s.event.node for s in run.log if isinstance(s.event, FactProduced)] == ["fetch", "charge", "receipt"]


def test_a_reopened_cancelled_run_dispatches_the_steps_that_were_running_again() -> None:
    wf = _chain()
    run = InProcessRun(wf, 1)
    run.step()  # fetch ran; charge is started, then the run is cancelled before it finishes
    run.record(StepStarted(node="charge", attempt=1, lease=1, at=run.now))
    run.record(RunCancelled(reason="user", at=run.now))
    assert run.state.status is RunStatus.CANCELLED

    run.record(RunReopened(from_status="cancelled", at=run.now))
    assert run.state.status is RunStatus.RUNNING
    assert [(t.node, t.attempt) for t in run.state.runnables(now=run.now)] == [("charge", 1)]
    run.run()
    assert (run.state.status, run.state.result) == (RunStatus.COMPLETED, "receipt 20")


def test_a_map_that_failed_before_expanding_is_expanded_again() -> None:
    wf = Workflow("fan")

    @wf.step()
    def items(x):
        return x

    @wf.map(after=items)
    def double(i):
        return i * 2

    run = InProcessRun(wf, "not a list")
    run.run()
    assert run.state.status is RunStatus.FAILED and run.state.failed_node == "double"
    cursor = run.state.cursor
    run.record(RunReopened(from_status="failed", at=run.now))
    run.run()  # the input is still not a list: it fails again the same way, not stuck
    assert run.state.status is RunStatus.FAILED
    assert _kinds(run, after=cursor) == ["RunReopened", "StepFailed", "RunFailed"]


@pytest.mark.parametrize(
    ("events", "from_status"),
    [
        ([], "failed"),  # still running
        ([FactProduced(node="x", value=1, at=1.0), RunCompleted(result=1, at=1.0)], "failed"),  # completed
        ([RunFailed(error=ErrorInfo(type="E", message="m"), at=1.0)], "cancelled"),  # it failed
    ],
    ids=["running", "completed", "wrong-from-status"],
)
def test_the_fold_refuses_a_reopen_of_a_run_that_did_not_end_that_way(events: list[Any], from_status: str) -> None:
    wf = Workflow("one")

    @wf.step()
    def x():
        return 1

    run = InProcessRun(wf)
    for event in events:
        if isinstance(event, FactProduced):
            run.record(StepStarted(node="x", attempt=1, lease=1, at=1.0))
        run.record(event)
    before = run.state.copy()
    with pytest.raises(FoldError):
        run.record(RunReopened(from_status=from_status, at=2.0))
    assert run.state == before


def test_a_snapshot_after_a_reopen_folds_to_the_same_state() -> None:
    run, _ = _failed_run()
    run.record(RunReopened(from_status="failed", at=run.now))
    wf = run.workflow
    whole = WorkflowState.from_events(wf, run.log)
    restored = WorkflowState.restore(wf, whole.snapshot())
    assert restored == whole == run.state
    assert restored.task("charge") == run.state.task("charge")


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.PENDING, RunStatus.COMPLETED, RunStatus.SUSPENDED])
def test_lifecycle_refuses_to_reopen_a_run_that_is_not_failed_or_cancelled(status: RunStatus) -> None:
    with pytest.raises(ResumeRefused) as info:
        lifecycle.reopen("r1", status)
    assert (info.value.from_status, info.value.to_status) == (status.value, "running")
    assert "resume takes a paused, failed or cancelled run" in str(info.value)


def test_lifecycle_reopen_folds_the_event_into_the_state() -> None:
    run, _ = _failed_run()
    state = run.state.copy()
    move = lifecycle.reopen("run-1", RunStatus.FAILED, state, reason="fixed")
    assert (move.origin, move.to, move.via) == (RunStatus.FAILED, RunStatus.RUNNING, None)
    assert move.events == (RunReopened(from_status="failed", reason="fixed", at=move.events[0].at),)
    assert state.status is RunStatus.RUNNING and state.cursor == run.state.cursor + 1


def test_stored_reopen_numbers_follow_the_log() -> None:
    run, _ = _failed_run()
    stored = StoredEvent(run_id="run-1", seq=run.state.cursor + 2, event=RunReopened(from_status="failed"))
    with pytest.raises(FoldError):
        run.state.apply(stored)


# ------------------------------------------------- the Runner's reopen write, over an in-memory store
class _AsyncStore:
    """The StoreHandle calls StatusWriter.reopen makes, answered by an InMemoryStore (awaitable)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def get_run(self, run_id: str) -> Any:
        return self.store.get_run(run_id)

    async def load_snapshot(self, run_id: str) -> Any:
        return self.store.load_snapshot(run_id)

    async def read_events(self, run_id: str, after: int, limit: int) -> list[StoredEvent]:
        return list(self.store.stream(run_id, after))[:limit]

    async def reopen(self, run_id: str, event: RunReopened, after_seq: int, request_id: str) -> Any:
        return self.store.reopen(run_id, event, after_seq=after_seq, request_id=request_id)


def _stored_failed_run(definition: bytes | None = None) -> Any:
    from adapters.memory import InMemoryStore
    from runner import serialization
    from runner.store import AppendRequest, NewRun

    run, _ = _failed_run()
    store = InMemoryStore()
    wf = run.workflow
    events = [s.event for s in run.log]
    pickled = definition if definition is not None else serialization.dumps(wf)
    new = NewRun(
        run_id="run-1",
        workflow=wf.name,
        definition=pickled,
        definition_hash=wf.definition_hash(),
        events=(events[0],),
    )
    store.create_run(new)
    lease = store.acquire_lease("run-1", "w", 30.0)
    store.append_many(
        [AppendRequest(run_id="run-1", events=tuple(events[1:]), lease=lease.token, status=RunStatus.FAILED)]
    )
    assert store.get_run("run-1").status is RunStatus.FAILED
    return store


def test_the_runner_reopens_a_failed_run_after_folding_it() -> None:
    import asyncio

    from runner.status_writes import StatusWriter

    store = _stored_failed_run()
    writer = StatusWriter(_AsyncStore(store), 30.0)  # type: ignore[arg-type]
    record = asyncio.run(writer.reopen("run-1", "fixed"))
    assert record.status is RunStatus.RUNNING and record.lease_owner is None
    last = list(store.stream("run-1"))[-1].event
    assert isinstance(last, RunReopened) and (last.from_status, last.reason) == ("failed", "fixed")
    with pytest.raises(ResumeRefused):  # running now
        asyncio.run(writer.reopen("run-1"))


def test_the_runner_says_why_a_run_whose_definition_cannot_load_is_not_resumed() -> None:
    import asyncio
    import pickle
    import sys
    import types

    from runner.errors import DefinitionUnavailable
    from runner.status_writes import StatusWriter

    # a pickle that names a module nobody installed: what a missing dependency looks like
    module = types.ModuleType("not_installed_x")
    exec("class Thing:\n    pass\n", module.__dict__)
    module.Thing.__module__ = "not_installed_x"
    sys.modules["not_installed_x"] = module
    try:
        missing = pickle.dumps(module.Thing)
    finally:
        del sys.modules["not_installed_x"]
    store = _stored_failed_run(definition=missing)
    writer = StatusWriter(_AsyncStore(store), 30.0)  # type: ignore[arg-type]
    with pytest.raises(DefinitionUnavailable) as info:
        asyncio.run(writer.reopen("run-1"))
    assert "not_installed_x" in str(info.value) and "then resume it again" in str(info.value)
    assert store.get_run("run-1").status is RunStatus.FAILED  # nothing was written
