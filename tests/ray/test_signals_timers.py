"""Signals and durable timers on a real Ray instance: wait_for suspends a run without holding a
worker, signals sent early are kept, a signal's payload is the wait's result, sleep() is a timer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from ray_support import assert_gapless, driven, eventually, has_started, lines, touch

import runner
from runner.events import (
    FactProduced,
    RunCompleted,
    RunResumed,
    RunSuspended,
    SignalReceived,
    StoredEvent,
    TimerFired,
    TimerScheduled,
)
from runner.runner import RunnerConfig
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file
from runner.worker import WorkerConfig

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 60


def _events(history: list[StoredEvent], kind: type) -> list[Any]:
    return [s.event for s in history if isinstance(s.event, kind)]


def _approval(log: str, gate: str | None = None) -> runner.Workflow:
    """prepare (optionally blocked on ``gate``) -> wait for "approve" -> finish(prepared, approval)."""
    wf = runner.Workflow("approval")

    @wf.step()
    def prepare(x: int) -> int:
        _mark(log, "prepare")
        if gate is not None:
            _wait_for_file(gate)
        return x * 2

    approval = wf.wait_for("approve", after=prepare)

    @wf.step(after=[prepare, approval])
    def finish(prepared: int, decision: dict) -> dict:
        _mark(log, "finish")
        return {"prepared": prepared, "decision": decision}

    return wf


def test_wait_for_suspends_durably_and_a_signal_resumes_it(client: runner.Client, tmp_path: Path) -> None:
    log = str(tmp_path / "effects.log")
    handle = client.submit(_approval(log), 21)

    eventually(lambda: handle.status() is runner.RunStatus.SUSPENDED, what="the run to suspend")
    # suspended durably: recorded in the log, and no worker is held for it
    eventually(lambda: client.stats().busy_workers == 0, what="the worker to be released")
    stats = client.stats()
    assert stats.busy_workers == 0 and stats.pending == 0
    history = handle.history()
    suspended = history[-1].event
    assert isinstance(suspended, RunSuspended)
    assert "approve" in suspended.reason and suspended.wake_at is None
    assert not has_started(history, "finish")
    steps = {s.name: s for s in handle.steps()}
    assert steps["prepare"].status == "done"
    assert steps["wait_approve"].status == "waiting"
    assert steps["finish"].status == "pending"

    signal_id = handle.signal("approve", {"by": "alice", "ok": True})

    assert isinstance(signal_id, int)
    assert handle.result(timeout=RESULT_TIMEOUT) == {"prepared": 42, "decision": {"by": "alice", "ok": True}}
    history = handle.history()
    assert_gapless(history)
    received = _events(history, SignalReceived)
    assert [(e.signal_id, e.name, e.payload) for e in received] == [(signal_id, "approve", {"by": "alice", "ok": True})]
    waits = [e for e in _events(history, FactProduced) if e.node == "wait_approve"]
    assert [e.value for e in waits] == [{"by": "alice", "ok": True}]  # the payload is the wait's result
    kinds = [type(s.event).__name__ for s in history]
    assert kinds.index("RunSuspended") < kinds.index("RunResumed") < kinds.index("SignalReceived")
    assert lines(log) == ["prepare", "finish"]  # prepare did not run again after the resume
    assert _events(history, RunCompleted)[0].result["prepared"] == 42
    with pytest.raises(runner.RunClosed):  # an ended run takes no more signals
        handle.signal("approve", "too late")
    with pytest.raises(runner.RunNotFound):
        client.signal("no-such-run", "approve")


def test_a_signal_sent_before_the_wait_is_kept_and_used(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    handle = client.submit(_approval(log, gate), 5)
    eventually(lambda: "prepare" in lines(log), what="prepare to start")
    assert handle.status() is runner.RunStatus.RUNNING

    handle.signal("approve", "early yes")  # the run has not reached its wait yet
    handle.signal("unrelated", "ignored")  # a signal no wait takes is simply kept

    touch(gate)
    assert handle.result(timeout=RESULT_TIMEOUT) == {"prepared": 10, "decision": "early yes"}
    history = handle.history()
    assert not _events(history, RunSuspended)  # the signal was there when the wait came: no suspension
    assert [e.payload for e in _events(history, SignalReceived) if e.name == "approve"] == ["early yes"]
    assert lines(log) == ["prepare", "finish"]


def test_a_signal_to_a_pending_run_is_kept(make_client: Any, tmp_path: Path) -> None:
    client = make_client(config=RunnerConfig(max_workers=1, runs_per_worker=1))
    log, gate = str(tmp_path / "effects.log"), str(tmp_path / "gate")
    blocker = client.submit(_approval(log, gate), 1)
    eventually(lambda: "prepare" in lines(log), what="the first run to hold the only worker")
    later = client.submit(_approval(str(tmp_path / "later.log")), 2)
    assert later.status() is runner.RunStatus.PENDING

    later.signal("approve", "pre-approved")

    assert later.status() is runner.RunStatus.PENDING
    touch(gate)
    blocker.signal("approve", "ok")
    assert blocker.result(timeout=RESULT_TIMEOUT) == {"prepared": 2, "decision": "ok"}
    assert later.result(timeout=RESULT_TIMEOUT) == {"prepared": 4, "decision": "pre-approved"}
    assert not _events(later.history(), RunSuspended)


def test_two_waits_on_different_signals(shared_client: runner.Client) -> None:
    client = shared_client
    wf = runner.Workflow("two_keys")

    @wf.step()
    def start(x: str) -> str:
        return x

    first = wf.wait_for("legal", after=start)
    second = wf.wait_for("finance", after=start)

    @wf.step(after=[start, first, second])
    def decide(doc: str, legal: str, finance: str) -> str:
        return f"{doc}: legal={legal} finance={finance}"

    handle = client.submit(wf, "contract")
    eventually(lambda: handle.status() is runner.RunStatus.SUSPENDED, what="the run to suspend")
    assert set(handle.history()[-1].event.reason.split("signal ", 1)[1].split(", ")) == {"legal", "finance"}

    handle.signal("finance", "approved")  # the second wait's signal first

    # one signal is not enough: the run suspends again, waiting for the other
    def waiting_only_for_legal() -> bool:
        steps = {s.name: s for s in handle.steps()}
        return (
            handle.status() is runner.RunStatus.SUSPENDED
            and steps["wait_finance"].status == "done"
            and steps["wait_legal"].status == "waiting"
        )

    eventually(waiting_only_for_legal, what="the run to take finance and wait for legal")
    # the Runner learns of the turn's end just after the suspension is committed
    eventually(lambda: not driven(client, handle.run_id), what="the worker to be released")
    assert "legal" in handle.history()[-1].event.reason and "finance" not in handle.history()[-1].event.reason

    handle.signal("legal", "signed")

    assert handle.result(timeout=RESULT_TIMEOUT) == "contract: legal=signed finance=approved"
    history = handle.history()
    values = {e.node: e.value for e in _events(history, FactProduced)}
    assert values["wait_legal"] == "signed" and values["wait_finance"] == "approved"
    assert len(_events(history, RunSuspended)) == 2 and len(_events(history, RunResumed)) == 2


def test_a_run_whose_last_component_is_a_wait_completes_once_signalled(shared_client: runner.Client) -> None:
    """The resumed run is completed in the same append that resumes it: the store checks the
    whole path (suspended -> running -> completed), so the run ends completed, not failed."""
    client = shared_client
    wf = runner.Workflow("wait_last")

    @wf.step()
    def ask(x: str) -> str:
        return f"approve {x}?"

    wf.wait_for("answer", after=ask)

    handle = client.submit(wf, "plan")
    eventually(lambda: handle.status() is runner.RunStatus.SUSPENDED, what="the run to suspend")

    handle.signal("answer", {"approved": True})

    assert handle.result(timeout=RESULT_TIMEOUT) == {"approved": True}
    assert handle.status() is runner.RunStatus.COMPLETED
    history = handle.history()
    assert_gapless(history)
    kinds = [type(s.event).__name__ for s in history]
    assert kinds[-4:] == ["RunResumed", "SignalReceived", "FactProduced", "RunCompleted"]
    assert kinds.count("RunSuspended") == 1 and kinds.count("RunResumed") == 1


def test_sleep_is_a_durable_timer_that_holds_no_worker(make_client: Any, tmp_path: Path) -> None:
    client = make_client(config=RunnerConfig(worker=WorkerConfig(suspend_after=0.5)))
    log = str(tmp_path / "effects.log")
    wf = runner.Workflow("napper")

    @wf.step()
    def before(x: int) -> int:
        _mark(log, "before")
        return x + 1

    nap = wf.sleep(2.0, name="nap", after=before)

    @wf.step(after=nap)
    def wake(x: int) -> int:
        _mark(log, "wake")
        return x * 100

    submitted_at = time.time()
    handle = client.submit(wf, 1)

    # while it sleeps the run is suspended and holds no worker
    def sleeping_without_a_worker() -> bool:
        return (
            handle.status() is runner.RunStatus.SUSPENDED
            and client.stats().busy_workers == 0
            and {s.name: s.status for s in handle.steps()}["nap"] == "waiting"
        )

    eventually(sleeping_without_a_worker, what="the run to sleep without holding a worker")

    assert handle.result(timeout=RESULT_TIMEOUT) == 200
    history = handle.history()
    assert_gapless(history)
    scheduled, fired = _events(history, TimerScheduled), _events(history, TimerFired)
    assert len(scheduled) == 1 and len(fired) == 1 and fired[0].node == "nap"
    due = scheduled[0].due_at
    assert due - scheduled[0].at == pytest.approx(2.0)
    assert fired[0].at >= due  # never early
    assert scheduled[0].at >= submitted_at - 1
    started_wake = [s.event.at for s in history if type(s.event).__name__ == "StepStarted" and s.event.node == "wake"]
    assert started_wake and started_wake[0] >= due
    suspended = _events(history, RunSuspended)
    assert len(suspended) == 1 and suspended[0].wake_at == pytest.approx(due) and "timer" in suspended[0].reason
    resumed = _events(history, RunResumed)
    assert len(resumed) == 1 and resumed[0].at >= due  # the Runner's timer brought a worker back when due
    assert lines(log) == ["before", "wake"]
    nap_value = [e.value for e in _events(history, FactProduced) if e.node == "nap"]
    assert nap_value == []  # a timer passes its input on without a FactProduced of its own
