"""The Store actor and the Runner die (SIGKILL) while runs execute and clients call: Ray starts
each again in place, the calls in flight are sent again, nothing is written twice, and every
public call answers or raises one of ray-runner's own errors, never a Ray exception."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.exceptions import RayError
from ray_support import assert_gapless, eventually, facts, has_started, sigkill_actor, touch, wait_restarted

import runner
from runner.events import SignalReceived, StepStarted, StoredEvent
from runner.store_handle import StoreHandle
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = pytest.mark.ray
RESULT_TIMEOUT = 90


def _gated(gate: str) -> runner.Workflow:
    wf = runner.Workflow("restart-gated")

    @wf.step()
    def first(x: int) -> int:
        return x + 1

    @wf.step(after=first)
    def slow(x: int) -> int:
        _wait_for_file(gate)
        return x * 10

    @wf.step(after=slow)
    def last(x: int) -> int:
        return x + 3

    return wf


def _quick() -> runner.Workflow:
    wf = runner.Workflow("restart-quick")

    @wf.step()
    def double(x: int) -> int:
        return x * 2

    @wf.step(after=double)
    def plus_one(x: int) -> int:
        return x + 1

    return wf


def _approval() -> runner.Workflow:
    wf = runner.Workflow("restart-approval")

    @wf.step()
    def prepare(x: int) -> int:
        return x

    approval = wf.wait_for("approve", after=prepare)

    @wf.step(after=[prepare, approval])
    def finish(prepared: int, decision: Any) -> Any:
        return [prepared, decision]

    return wf


def _recorded_once(history: list[StoredEvent], *, nothing_rerun: bool) -> None:
    """Gapless and every result recorded once; ``nothing_rerun``: every step started once, too
    (when workers die, as they do with their Runner, a step in flight runs again: at least once)."""
    assert_gapless(history)
    produced = facts(history)
    assert len(produced) == len(set(produced)), produced
    if nothing_rerun:
        starts = [(s.event.node, s.event.item) for s in history if isinstance(s.event, StepStarted)]
        assert len(starts) == len(set(starts)), starts


class Calls:
    """Public calls made on threads while actors die: what they returned and what they raised."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def run(self, fn: Callable[[], Any]) -> threading.Thread:
        def target() -> None:
            try:
                fn()
            except BaseException as exc:
                with self.lock:
                    self.errors.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    def assert_no_ray_type(self) -> None:
        for error in self.errors:
            assert isinstance(error, runner.RunnerError) and not isinstance(error, RayError), repr(error)


def test_the_store_actor_killed_under_running_runs_and_a_waiting_client(client: runner.Client, tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    handles = [client.submit(_gated(gate), i) for i in range(4)]
    eventually(
        lambda: all(has_started(h.history(), "slow") for h in handles), timeout=60, what="every slow step to start"
    )
    calls = Calls()
    results: dict[str, Any] = {}
    waiting = [calls.run(lambda h=h: results.__setitem__(h.run_id, h.result(timeout=RESULT_TIMEOUT))) for h in handles]
    together: list[Any] = []
    waiting.append(calls.run(lambda: together.extend(client.results(handles, timeout=RESULT_TIMEOUT))))

    store = client.store
    address = ray.get(StoreHandle(store).address())
    sigkill_actor(store)
    wait_restarted(store, 1)
    assert ray.get(StoreHandle(store).address()) == address  # the same actor, by the same name, in a new process
    # reads go on against the restarted actor while the runs are still in flight
    assert all(h.status() is runner.RunStatus.RUNNING for h in handles)
    touch(gate)
    for thread in waiting:
        thread.join(timeout=RESULT_TIMEOUT)
        assert not thread.is_alive()

    assert calls.errors == []
    expected = [(i + 1) * 10 + 3 for i in range(4)]
    assert [results[h.run_id] for h in handles] == expected and together == expected
    for handle in handles:
        _recorded_once(handle.history(), nothing_rerun=True)
    assert client.stats().restarts == 0  # the workers' calls were sent again, not their runs taken over


def test_the_runner_killed_during_submits_results_and_other_calls(client: runner.Client) -> None:
    waiting = client.submit(_approval(), 7)
    eventually(lambda: waiting.status() is runner.RunStatus.SUSPENDED, what="the run to wait for its signal")
    calls = Calls()
    submitted: list[runner.RunHandle] = []
    results: list[tuple[int, Any]] = []
    stop = threading.Event()

    def submit_and_wait() -> None:
        for i in range(12):
            handle = client.submit(_quick(), i)
            submitted.append(handle)
            results.append((i, handle.result(timeout=RESULT_TIMEOUT)))

    def other_calls() -> None:
        while not stop.is_set():
            waiting.status()
            waiting.history()
            client.list_runs(workflow="restart-quick")
            client.stats()

    loop = calls.run(submit_and_wait)
    poller = calls.run(other_calls)
    eventually(lambda: len(results) >= 3, timeout=60, what="the first results")
    runner_actor = client.runner
    sigkill_actor(runner_actor)
    calls.run(lambda: waiting.signal("approve", "yes")).join(timeout=RESULT_TIMEOUT)  # sent while it restarts
    wait_restarted(runner_actor, 1)
    loop.join(timeout=RESULT_TIMEOUT)
    stop.set()
    poller.join(timeout=RESULT_TIMEOUT)
    assert not loop.is_alive() and not poller.is_alive()

    calls.assert_no_ray_type()
    assert calls.errors == []
    assert results == [(i, i * 2 + 1) for i in range(12)]  # every result arrived
    # each submit made exactly one run, even the one the dying Runner was storing
    stored = client.list_runs(workflow="restart-quick", limit=1000)
    assert sorted(r.run_id for r in stored) == sorted(h.run_id for h in submitted)
    for handle in submitted:
        _recorded_once(handle.history(), nothing_rerun=False)
    # the signal sent while the Runner restarted was stored once and delivered
    assert waiting.result(timeout=RESULT_TIMEOUT) == [7, "yes"]
    received = [s.event for s in waiting.history() if isinstance(s.event, SignalReceived)]
    assert [(e.name, e.payload) for e in received] == [("approve", "yes")]
    inbox = ray.get(StoreHandle(client.store).signals(waiting.run_id))
    assert collections.Counter(s.name for s in inbox) == {"approve": 1}


def test_a_runner_stopped_for_good_is_reported_in_our_own_error(client: runner.Client) -> None:
    handle = client.submit(_quick(), 1)
    assert handle.result(timeout=RESULT_TIMEOUT) == 3
    ray.kill(client.runner, no_restart=True)

    calls: list[Callable[[], Any]] = [
        client.stats,
        handle.status,
        lambda: handle.result(timeout=RESULT_TIMEOUT),
        lambda: client.signal(handle.run_id, "go"),
        lambda: client.submit(_quick(), 2),
        lambda: client.cancel(handle.run_id),
    ]
    for call in calls:
        with pytest.raises(runner.RunnerUnavailable) as caught:
            call()
        assert not isinstance(caught.value, RayError)
        assert "runner.connect()" in str(caught.value)
