"""Issue 4's Python API on a real Ray instance: status, result, history and steps; cancel, pause
and resume; replay and fork; list, get and delete; idempotent submits; input validation; runner.context().

Steps that must still be running when the test acts block on a gate file; every step that the
test counts appends its name to a side-effect file. State is awaited with eventually(), never a sleep.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ray_support import alive, assert_gapless, driven, eventually, facts, has_fact, has_started, lines, touch

import runner
from runner.events import (
    FactProduced,
    FactReused,
    MapExpanded,
    RunCancelled,
    RunCompleted,
    RunPaused,
    RunResumed,
    RunSubmitted,
    StepFailed,
    StepStarted,
    StoredEvent,
)
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 60


def _kinds(history: list[StoredEvent]) -> list[str]:
    return [type(s.event).__name__ for s in history]


def _step(handle: runner.RunHandle, name: str) -> runner.StepInfo:
    return next(s for s in handle.steps() if s.name == name)


def _gated(log: str, gate: str, name: str = "gated") -> runner.Workflow:
    """first -> slow (blocks until ``gate`` exists) -> after; ``name`` tells the tests' runs apart
    in lists of the shared Runner's store."""
    wf = runner.Workflow(name)

    @wf.step()
    def first(x: int) -> int:
        _mark(log, "first")
        return x + 1

    @wf.step(after=first)
    def slow(x: int) -> int:
        with open(log + ".pid", "w") as f:
            f.write(str(os.getpid()))
        _mark(log, "slow")
        _wait_for_file(gate)
        _mark(log, "slow_done")
        return x * 10

    @wf.step(after=slow)
    def after(x: int) -> int:
        _mark(log, "after")
        return x + 3

    return wf


def _simple(name: str = "simple") -> runner.Workflow:
    wf = runner.Workflow(name)

    @wf.step()
    def double(x: int) -> int:
        return x * 2

    @wf.step(after=double)
    def inc(x: int) -> int:
        return x + 1

    return wf


# ------------------------------------------------------------ status, result, history, steps
def test_status_result_and_history_are_typed(shared_client: runner.Client) -> None:
    client = shared_client
    handle = client.submit(_simple(), 20)

    assert handle.result(timeout=RESULT_TIMEOUT) == 41

    status = handle.status()
    assert isinstance(status, runner.RunStatus) and status is runner.RunStatus.COMPLETED
    history = handle.history()
    assert_gapless(history)
    assert all(isinstance(s, StoredEvent) and s.run_id == handle.run_id for s in history)
    submitted = history[0].event
    assert isinstance(submitted, RunSubmitted)
    assert (submitted.workflow, submitted.input, submitted.parent_run_id) == ("simple", 20, None)
    assert isinstance(history[-1].event, RunCompleted) and history[-1].event.result == 41
    started = [s.event for s in history if isinstance(s.event, StepStarted)]
    assert [(e.node, e.attempt) for e in started] == [("double", 1), ("inc", 1)]
    assert all(e.lease >= 1 for e in started)
    produced = {s.event.node: s.event.value for s in history if isinstance(s.event, FactProduced)}
    assert produced == {"double": 40, "inc": 41}
    # the fact of a step is recorded before its downstream starts
    seq = {(type(s.event).__name__, getattr(s.event, "node", None)): s.seq for s in history}
    assert seq[("FactProduced", "double")] < seq[("StepStarted", "inc")]
    record = handle.record()
    assert record.last_seq == len(history) and record.workflow == "simple"


def test_two_runs_of_one_factory_with_different_settings_each_run_with_their_own(
    shared_client: runner.Client, tmp_path: Path
) -> None:
    """Same name, same code, other values closed over: one definition hash, two definitions. Each
    run's steps (a Ray task and an inline step, on the same workers) use the values of its own."""

    def factory(suffix: str) -> runner.Workflow:
        wf = runner.Workflow("factory_made")

        @wf.step()
        def remote(x: int) -> str:
            return f"{x}{suffix}"

        @wf.step(after=remote, inline=True)
        def inline(text: str) -> str:
            return text + suffix

        return wf

    first, second = factory("-a"), factory("-b")
    assert first.definition_hash() == second.definition_hash()
    client = shared_client
    handles = [client.submit(wf, i) for i in range(3) for wf in (first, second)]
    assert client.results(handles, timeout=RESULT_TIMEOUT) == [
        expected for i in range(3) for expected in (f"{i}-a-a", f"{i}-b-b")
    ]


def test_steps_show_status_attempts_items_and_timings(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    wf = runner.Workflow("stepinfo")

    @wf.step(retries=2, backoff="none")
    def flaky(x: int) -> list:
        if runner.context().attempt < 2:
            raise ConnectionError("first attempt fails")
        return [x, x + 1, x + 2]

    @wf.map(after=flaky)
    def square(item: int) -> int:
        return item * item

    @wf.reduce(after=square)
    def total(values: list) -> int:
        _mark(log, "total")
        _wait_for_file(gate)
        return sum(values)

    @wf.step(after=total)
    def report(value: int) -> str:
        return f"total={value}"

    handle = client.submit(wf, 1)

    # while `total` runs: it is running, its downstream is pending
    eventually(lambda: "total" in lines(log), what="total to start")
    assert _step(handle, "total").status == "running"
    assert _step(handle, "report").status == "pending"
    assert _step(handle, "report").attempts == 0 and _step(handle, "report").started_at is None
    touch(gate)

    assert handle.result(timeout=RESULT_TIMEOUT) == "total=14"
    steps = {s.name: s for s in handle.steps()}
    assert list(steps) == ["flaky", "square", "total", "report"]
    assert {s.status for s in steps.values()} == {"done"}
    assert steps["flaky"].attempts == 2 and steps["flaky"].error is not None
    assert "ConnectionError" in steps["flaky"].error.type
    assert (steps["square"].kind, steps["square"].items, steps["square"].items_done) == ("map", 3, 3)
    assert steps["square"].attempts == 3
    assert steps["total"].attempts == 1 and steps["total"].items is None
    for info in steps.values():
        assert info.started_at is not None and info.finished_at is not None, info
        assert info.duration is not None and info.duration >= 0, info
        assert not info.reused
    assert steps["flaky"].finished_at <= steps["square"].started_at + 1e-6
    assert steps["total"].duration > 0  # it waited for the gate


# ----------------------------------------------------------------------------- cancel
def test_cancel_during_a_long_step(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_gated(log, gate, "gated_cancel"), 1)
    eventually(lambda: "slow" in lines(log), what="the slow step to start")

    record = handle.cancel()

    assert record.status is runner.RunStatus.CANCELLED
    assert handle.status() is runner.RunStatus.CANCELLED
    with pytest.raises(runner.RunWasCancelled) as caught:
        handle.result(timeout=RESULT_TIMEOUT)
    assert isinstance(caught.value, runner.WorkflowFailed)
    assert caught.value.run_id == handle.run_id
    history = handle.history()
    assert_gapless(history)
    assert isinstance(history[-1].event, RunCancelled)
    assert not has_fact(history, "slow")
    assert not has_started(history, "after")
    touch(gate)  # had the step survived the cancel, its downstream could start now
    assert handle.status() is runner.RunStatus.CANCELLED
    assert "after" not in lines(log)
    assert _step(handle, "after").status == "pending"
    eventually(lambda: not driven(client, handle.run_id), what="the worker to be released")
    # the step's task was cancelled (its process killed), not left to finish behind the cancel
    pid = int(lines(log + ".pid")[0])
    eventually(lambda: not alive(pid), what=f"the cancelled step's process {pid} to end")
    assert "slow_done" not in lines(log)


def test_cancel_a_pending_run(make_client: Any, tmp_path: Path) -> None:
    client = make_client(config=RunnerConfig(max_workers=1, runs_per_worker=1))
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    busy = client.submit(_gated(log, gate), 1)
    eventually(lambda: "slow" in lines(log), what="the first run to occupy the only worker")
    waiting = client.submit(_simple(), 5)
    assert waiting.status() is runner.RunStatus.PENDING
    assert client.stats().pending == 1

    record = waiting.cancel()

    assert record.status is runner.RunStatus.CANCELLED
    assert _kinds(waiting.history()) == ["RunSubmitted", "RunCancelled"]
    assert client.stats().pending == 0
    with pytest.raises(runner.RunWasCancelled):
        waiting.result(timeout=RESULT_TIMEOUT)
    touch(gate)
    assert busy.result(timeout=RESULT_TIMEOUT) == 23
    assert waiting.status() is runner.RunStatus.CANCELLED
    assert waiting.run_id not in client.stats().start_order  # it never got a worker


def test_cancel_a_suspended_run(client: runner.Client) -> None:
    wf = runner.Workflow("approval")

    @wf.step()
    def prepare(x: int) -> int:
        return x

    wf.wait_for("approve", after=prepare)
    handle = client.submit(wf, 1)
    eventually(lambda: handle.status() is runner.RunStatus.SUSPENDED, what="the run to suspend")

    record = handle.cancel()

    assert record.status is runner.RunStatus.CANCELLED
    kinds = _kinds(handle.history())
    assert kinds[-2:] == ["RunSuspended", "RunCancelled"]
    with pytest.raises(runner.RunWasCancelled):
        handle.result(timeout=RESULT_TIMEOUT)
    eventually(
        lambda: client.stats().busy_workers == 0 and client.stats().pending == 0, what="no worker held, nothing pending"
    )


def test_cancel_a_completed_run_is_an_illegal_transition(shared_client: runner.Client) -> None:
    client = shared_client
    handle = client.submit(_simple(), 1)
    handle.result(timeout=RESULT_TIMEOUT)

    with pytest.raises(runner.IllegalTransition) as caught:
        handle.cancel()

    error = caught.value
    assert (error.run_id, error.from_status, error.to_status) == (handle.run_id, "completed", "cancelled")
    assert "'completed'" in str(error) and "'cancelled'" in str(error)
    assert handle.status() is runner.RunStatus.COMPLETED
    assert isinstance(handle.history()[-1].event, RunCompleted)


# ------------------------------------------------------------------------ pause/resume
def test_pause_lets_the_running_step_finish_then_resume_completes(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_gated(log, gate, "gated_pause"), 1)
    eventually(lambda: "slow" in lines(log), what="the slow step to start")
    assert driven(client, handle.run_id)

    paused: list[Any] = []
    pauser = threading.Thread(target=lambda: paused.append(handle.pause()), daemon=True)
    pauser.start()
    # pause() waits for the running step: while it is blocked, the run is still running
    pauser.join(timeout=1.0)
    assert pauser.is_alive() and not paused
    assert handle.status() is runner.RunStatus.RUNNING
    touch(gate)
    pauser.join(timeout=RESULT_TIMEOUT)
    assert not pauser.is_alive()

    assert paused[0].status is runner.RunStatus.PAUSED
    assert handle.status() is runner.RunStatus.PAUSED
    history = handle.history()
    assert has_fact(history, "slow")  # the running step finished and was recorded
    assert not has_started(history, "after")  # no new step started
    assert isinstance(history[-1].event, RunPaused)
    assert lines(log) == ["first", "slow", "slow_done"]
    eventually(lambda: not driven(client, handle.run_id), what="the worker to be released")
    assert _step(handle, "slow").status == "done"
    assert _step(handle, "after").status == "ready"

    # a paused run stays paused: nothing happens until resume
    with pytest.raises(runner.IllegalTransition) as caught:
        handle.pause()
    assert (caught.value.from_status, caught.value.to_status) == ("paused", "paused")
    assert "after" not in lines(log) and handle.status() is runner.RunStatus.PAUSED

    handle.resume()

    assert handle.result(timeout=RESULT_TIMEOUT) == 23
    history = handle.history()
    assert_gapless(history)
    kinds = _kinds(history)
    assert kinds.index("RunPaused") < kinds.index("RunResumed") < kinds.index("RunCompleted")
    assert [n for n, _ in facts(history)] == ["first", "slow", "after"]
    assert lines(log) == ["first", "slow", "slow_done", "after"]  # nothing ran twice


def test_resume_of_a_running_run_and_pause_of_a_completed_run_are_illegal(
    shared_client: runner.Client, tmp_path: Path
) -> None:
    client = shared_client
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_gated(log, gate, "gated_illegal"), 1)
    eventually(lambda: "slow" in lines(log), what="the slow step to start")

    with pytest.raises(runner.IllegalTransition) as caught:
        handle.resume()
    assert (caught.value.from_status, caught.value.to_status) == ("running", "running")
    assert handle.status() is runner.RunStatus.RUNNING

    touch(gate)
    assert handle.result(timeout=RESULT_TIMEOUT) == 23
    with pytest.raises(runner.IllegalTransition) as caught:
        handle.pause()
    assert (caught.value.from_status, caught.value.to_status) == ("completed", "paused")
    with pytest.raises(runner.IllegalTransition):
        handle.resume()
    assert handle.status() is runner.RunStatus.COMPLETED
    assert not any(isinstance(s.event, (RunPaused, RunResumed)) for s in handle.history())


# ------------------------------------------------------------------------ replay and fork
def test_replay_is_a_new_run_with_lineage_same_input_and_result(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log = str(tmp_path / "effects.log")
    wf = runner.Workflow("replayable")

    @wf.step()
    def load(order: dict) -> int:
        _mark(log, "load")
        return sum(order["items"])

    @wf.step(after=load)
    def tax(amount: int) -> dict:
        return {"amount": amount, "tax": amount // 5}

    original = client.submit(wf, {"items": [10, 20, 30]})
    assert original.result(timeout=RESULT_TIMEOUT) == {"amount": 60, "tax": 12}

    replayed = original.replay()

    assert replayed.run_id != original.run_id
    assert replayed.result(timeout=RESULT_TIMEOUT) == {"amount": 60, "tax": 12}
    record = replayed.record()
    assert record.parent_run_id == original.run_id
    assert record.workflow == "replayable" and record.definition_hash == original.record().definition_hash
    submitted = replayed.history()[0].event
    assert isinstance(submitted, RunSubmitted)
    assert submitted.parent_run_id == original.run_id
    assert submitted.input == {"items": [10, 20, 30]}
    assert lines(log) == ["load", "load"]  # a replay runs every step again
    assert not any(s.reused for s in replayed.steps())
    assert original.record().parent_run_id is None
    assert original.status() is runner.RunStatus.COMPLETED


def test_replay_refuses_after_an_irreversible_step_unless_allowed(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log = str(tmp_path / "effects.log")
    wf = runner.Workflow("payments")

    @wf.step()
    def price(x: int) -> int:
        return x * 100

    @wf.step(after=price, irreversible=True)
    def charge(cents: int) -> str:
        _mark(log, "charge")
        return f"charged {cents}"

    original = client.submit(wf, 3)
    assert original.result(timeout=RESULT_TIMEOUT) == "charged 300"
    runs_before = len(client.list_runs(workflow="payments"))

    with pytest.raises(runner.ReplayRefused) as caught:
        original.replay()
    assert caught.value.steps == ["charge"] and caught.value.run_id == original.run_id
    with pytest.raises(runner.ReplayRefused):
        client.fork(original.run_id, from_step="price")
    assert len(client.list_runs(workflow="payments")) == runs_before  # nothing was submitted

    replayed = original.replay(allow_irreversible=True)

    assert replayed.result(timeout=RESULT_TIMEOUT) == "charged 300"
    assert replayed.record().parent_run_id == original.run_id
    assert lines(log) == ["charge", "charge"]


def test_fork_reuses_upstream_results_and_reruns_from_the_step(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, config = str(tmp_path / "effects.log"), tmp_path / "multiplier.txt"
    config.write_text("2")
    config_path = str(config)
    wf = runner.Workflow("forkable")

    @wf.step()
    def load(x: int) -> int:
        _mark(log, "load")
        return x + 1

    @wf.step(after=load)
    def enrich(x: int) -> int:
        _mark(log, "enrich")
        return x * 10

    @wf.step(after=enrich)
    def score(x: int) -> int:
        _mark(log, "score")
        with open(config_path) as f:
            return x * int(f.read())

    @wf.step(after=score)
    def publish(x: int) -> str:
        _mark(log, "publish")
        return f"score={x}"

    original = client.submit(wf, 4)
    assert original.result(timeout=RESULT_TIMEOUT) == "score=100"
    config.write_text("3")  # score behaves differently from now on

    forked = original.fork(from_step="score")

    assert forked.result(timeout=RESULT_TIMEOUT) == "score=150"
    log_lines = lines(log)
    assert log_lines.count("load") == 1 and log_lines.count("enrich") == 1  # upstream did not run again
    assert log_lines.count("score") == 2 and log_lines.count("publish") == 2
    steps = {s.name: s for s in forked.steps()}
    assert steps["load"].reused and steps["enrich"].reused
    assert not steps["score"].reused and not steps["publish"].reused
    assert {s.status for s in steps.values()} == {"done"}
    assert steps["score"].attempts == 1 and steps["load"].attempts == 0
    history = forked.history()
    assert_gapless(history)
    reused = [s.event for s in history if isinstance(s.event, FactReused)]
    assert [(e.node, e.value, e.source_run_id) for e in reused] == [
        ("load", 5, original.run_id),
        ("enrich", 50, original.run_id),
    ]
    assert not has_started(history, "load") and not has_started(history, "enrich")
    assert forked.record().parent_run_id == original.run_id
    assert original.result(timeout=RESULT_TIMEOUT) == "score=100"  # the parent is untouched

    with pytest.raises(runner.InvalidArgument, match="no step 'nope'"):
        original.fork(from_step="nope")


# -------------------------------------------------------------------- list, get, delete
def test_list_runs_filters(client: runner.Client) -> None:
    alpha = _simple("alpha")
    beta = runner.Workflow("beta")
    beta.wait_for("go")

    a1 = client.submit(alpha, 1)
    a2 = client.submit(alpha, 2)
    a1.result(timeout=RESULT_TIMEOUT)
    a2.result(timeout=RESULT_TIMEOUT)
    since = max(r.created_at for r in client.list_runs()) + 1e-3
    eventually(lambda: time.time() > since + 1e-3, what="the clock to pass the mark")
    b1 = client.submit(beta, None)
    eventually(lambda: b1.status() is runner.RunStatus.SUSPENDED, what="beta to suspend")

    def ids(**kwargs: Any) -> set[str]:
        return {r.run_id for r in client.list_runs(**kwargs)}

    assert ids() == {a1.run_id, a2.run_id, b1.run_id}
    assert ids(workflow="alpha") == {a1.run_id, a2.run_id}
    assert ids(workflow="beta") == {b1.run_id}
    assert ids(workflow="gamma") == set()
    assert ids(status="completed") == {a1.run_id, a2.run_id}
    assert ids(status=runner.RunStatus.SUSPENDED) == {b1.run_id}
    assert ids(status=("completed", "suspended")) == {a1.run_id, a2.run_id, b1.run_id}
    assert ids(status="failed") == set()
    assert ids(workflow="alpha", status="suspended") == set()
    assert ids(since=since) == {b1.run_id}
    assert ids(since=time.time() + 3600) == set()
    newest = client.list_runs(limit=1)
    assert [r.run_id for r in newest] == [b1.run_id]  # newest first
    assert len(client.list_runs(limit=2)) == 2
    assert all(isinstance(r, runner.RunRecord) for r in client.list_runs())
    with pytest.raises(runner.InvalidArgument):
        client.list_runs(status="sleeping")
    with pytest.raises(runner.InvalidArgument):
        client.list_runs(limit=0)


def test_get_unknown_run_and_delete(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    with pytest.raises(runner.RunNotFound):
        client.get("no-such-run")

    done = client.submit(_simple(), 1)
    assert done.result(timeout=RESULT_TIMEOUT) == 3
    assert client.get(done.run_id).run_id == done.run_id

    client.delete(done.run_id)

    with pytest.raises(runner.RunNotFound):
        client.get(done.run_id)
    with pytest.raises(runner.RunNotFound):
        done.status()
    assert done.run_id not in {r.run_id for r in client.list_runs()}

    running = client.submit(_gated(log, gate, "gated_delete"), 1)
    eventually(lambda: "slow" in lines(log), what="the slow step to start")
    with pytest.raises(runner.IllegalTransition) as caught:
        client.delete(running.run_id)
    assert caught.value.from_status == "running"
    assert running.status() is runner.RunStatus.RUNNING
    touch(gate)
    assert running.result(timeout=RESULT_TIMEOUT) == 23
    with pytest.raises(runner.RunNotFound):
        client.delete("no-such-run")


# ------------------------------------------------------------------- idempotent submits
def _submit_concurrently(client: runner.Client, workflow: runner.Workflow, **kwargs: Any) -> list[str]:
    barrier = threading.Barrier(8)
    run_ids: list[str] = []
    errors: list[BaseException] = []

    def submit(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            run_ids.append(client.submit(workflow, i, **kwargs).run_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RESULT_TIMEOUT)
    assert not errors, errors
    assert len(run_ids) == 8
    return run_ids


def _counted(log: str, name: str) -> runner.Workflow:
    """A workflow whose step calls a helper of this module (so it is pickled by value at submit)."""
    wf = runner.Workflow(name)

    @wf.step()
    def double(x: int) -> int:
        _mark(log, name)
        return x * 2

    @wf.step(after=double)
    def inc(x: int) -> int:
        return x + 1

    return wf


def test_idempotent_submit_under_concurrent_callers(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log = str(tmp_path / "effects.log")
    by_key = _counted(log, "bykey")
    run_ids = _submit_concurrently(client, by_key, idempotency_key="order-42")

    assert len(set(run_ids)) == 1
    runs = client.list_runs(workflow="bykey")
    assert [r.run_id for r in runs] == run_ids[:1]
    assert runs[0].idempotency_key == "order-42"
    handle = client.get(run_ids[0])
    result = handle.result(timeout=RESULT_TIMEOUT)
    assert result in {i * 2 + 1 for i in range(8)}  # one of the callers' inputs won
    assert [type(s.event).__name__ for s in handle.history()].count("RunSubmitted") == 1

    by_id = _counted(log, "byid")
    run_ids = _submit_concurrently(client, by_id, run_id="the-one-run")

    assert set(run_ids) == {"the-one-run"}
    assert [r.run_id for r in client.list_runs(workflow="byid")] == ["the-one-run"]
    assert client.get("the-one-run").result(timeout=RESULT_TIMEOUT) in {i * 2 + 1 for i in range(8)}
    # a later submit with the same key returns the existing run, even with another input
    again = client.submit(by_key, 1000, idempotency_key="order-42")
    assert again.run_id == handle.run_id and again.result(timeout=RESULT_TIMEOUT) == result
    assert len(client.list_runs(workflow="bykey")) + len(client.list_runs(workflow="byid")) == 2
    assert sorted(lines(log)) == ["byid", "bykey"]  # each run's step ran once


# ------------------------------------------------------------------------- input types
@dataclass
class OrderInput:
    id: str
    qty: int
    note: str = ""


def test_invalid_input_lists_every_problem_and_stores_nothing(shared_client: runner.Client) -> None:
    client = shared_client
    wf = runner.Workflow("typed_orders", input_type=OrderInput)

    @wf.step()
    def describe(order: OrderInput) -> str:
        return f"{order.id} x{order.qty} {order.note}".strip()

    handle = client.submit(wf, {"id": "A-1", "qty": 2})
    assert handle.result(timeout=RESULT_TIMEOUT) == "A-1 x2"  # defaults applied, dict made a dataclass
    before = len(client.list_runs(workflow="typed_orders"))

    with pytest.raises(runner.InvalidInput) as caught:
        client.submit(wf, {"qty": "three", "colour": "red"})

    problems = caught.value.problems
    assert set(problems) == {"id", "qty", "colour"}
    assert problems["id"] == "missing"
    assert problems["colour"] == "unknown field"
    assert "expected int" in problems["qty"] and "str" in problems["qty"]
    message = str(caught.value)
    assert all(word in message for word in ("id", "qty", "colour", "typed_orders"))
    assert len(client.list_runs(workflow="typed_orders")) == before  # the store is unchanged
    with pytest.raises(runner.InvalidInput):
        client.submit(wf, {"qty": 1}, run_id="never-stored")
    with pytest.raises(runner.RunNotFound):
        client.get("never-stored")
    assert len(client.list_runs(workflow="typed_orders")) == before


# ---------------------------------------------------------------------- runner.context()
def test_context_inside_a_step(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log = str(tmp_path / "context.log")
    wf = runner.Workflow("contextual")

    @wf.step()
    def prepare(x: int) -> int:
        return x + 1

    @wf.step(after=prepare, retries=1, backoff="none")
    def call_api(x: int) -> dict:
        ctx = runner.context()
        seen = {"run_id": ctx.run_id, "step": ctx.step, "attempt": ctx.attempt, "key": ctx.idempotency_key}
        with open(log, "a") as f:
            f.write(json.dumps(seen, separators=(",", ":")) + "\n")
        if ctx.attempt == 1:
            raise ConnectionError("the API timed out")
        return seen

    handle = client.submit(wf, 1)

    result = handle.result(timeout=RESULT_TIMEOUT)
    seen = [json.loads(line) for line in lines(log)]
    assert [s["attempt"] for s in seen] == [1, 2]
    assert result == seen[1]
    assert all(s["run_id"] == handle.run_id and s["step"] == "call_api" for s in seen)
    assert seen[0]["key"] == seen[1]["key"]  # the same across attempts of the step
    assert seen[0]["key"].startswith(f"{handle.run_id}:call_api:")
    failed = [s.event for s in handle.history() if isinstance(s.event, StepFailed)]
    assert [(e.node, e.attempt) for e in failed] == [("call_api", 1)]
    with pytest.raises(runner.RunnerError, match="only available inside a running step"):
        runner.context()
    assert not any(isinstance(s.event, MapExpanded) for s in handle.history())
