"""Cancel, pause, resume and signal racing the worker, on a real Ray instance.

Every status change is made under the run's lease, by its worker when one drives it, so a
request that lands at any moment ends the run in exactly one state and never costs a worker
turn. Fault points stop the worker at exact moments; a seeded random schedule covers the rest.

This module starts its own Ray with ``RUNNER_FAULTS`` in the environment, so every Ray process
obeys the armings of its tests.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_support import assert_gapless, eventually, kill_runner

import runner
from runner import faults
from runner.client import Client, connect
from runner.events import FactProduced, RunCancelled, RunCompleted, RunFailed, RunPaused, RunReopened, StoredEvent
from runner.faults import Action, FaultPoint
from runner.runner import RunnerConfig
from runner.state import WorkflowState
from runner.worker import WorkerConfig

pytestmark = pytest.mark.ray

TERMINAL_EVENTS = {RunCompleted: runner.RunStatus.COMPLETED, RunCancelled: runner.RunStatus.CANCELLED}
SEED = 20261129


@pytest.fixture
def make_client(fault_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(config: RunnerConfig | None = None) -> Client:
        namespace = f"stops-{uuid.uuid4().hex[:12]}"
        made = connect(store="duckdb:///" + str(tmp_path / f"{namespace}.duckdb"), namespace=namespace, config=config)
        clients.append(made)
        return made

    faults.disarm(fault_dir)
    yield make
    faults.disarm(fault_dir)
    for made in clients:
        kill_runner(made)


# ------------------------------------------------------------------ workflows
def _one_step() -> runner.Workflow:
    wf = runner.Workflow("one-step")

    @wf.step()
    def only(x: int) -> int:
        return x + 1

    return wf


def _chain() -> runner.Workflow:
    """s0 -> s1 -> s2; each step sleeps the input's seconds."""
    wf = runner.Workflow("chain")

    @wf.step()
    def s0(delay: float) -> float:
        time.sleep(delay)
        return delay

    @wf.step(after=s0)
    def s1(delay: float) -> float:
        time.sleep(delay)
        return delay

    @wf.step(after=s1)
    def s2(delay: float) -> float:
        time.sleep(delay)
        return delay

    return wf


def _waiter() -> runner.Workflow:
    """prepare -> wait for "go" -> finish."""
    wf = runner.Workflow("waiter")

    @wf.step()
    def prepare(delay: float) -> float:
        time.sleep(delay)
        return delay

    go = wf.wait_for("go", after=prepare)

    @wf.step(after=[prepare, go])
    def finish(delay: float, payload: Any) -> Any:
        return payload

    return wf


def _sleeper() -> runner.Workflow:
    """first -> a durable sleep of 0.6 s -> then."""
    wf = runner.Workflow("sleeper")

    @wf.step()
    def first(delay: float) -> float:
        time.sleep(delay)
        return delay

    nap = wf.sleep(0.6, after=first)

    @wf.step(after=nap)
    def then(delay: float) -> float:
        return delay

    return wf


# ------------------------------------------------------------------- checks
def _ends_once(handle: runner.RunHandle, workflow: runner.Workflow) -> runner.RunStatus:
    """The run has ended, in exactly one terminal state, and its history folds to it; that state."""
    record = handle.wait(timeout=0)
    assert record.status.is_terminal, f"{handle.run_id} is {record.status}"
    history: list[StoredEvent] = handle.history()
    assert_gapless(history)
    # a resume of a cancelled run reopens it in place (RunReopened): then it ends again. So the
    # ends and reopens alternate, each reopen follows a cancel, and the last event is the one end
    # left standing
    marks = [s for s in history if isinstance(s.event, (RunCompleted, RunCancelled, RunFailed, RunReopened))]
    kinds = [type(s.event).__name__ for s in history]
    assert marks and marks[-1] is history[-1] and not isinstance(marks[-1].event, RunReopened), kinds
    assert all(isinstance(m.event, RunReopened) == (i % 2 == 1) for i, m in enumerate(marks)), kinds
    assert all(isinstance(marks[i - 1].event, RunCancelled) for i in range(1, len(marks), 2)), kinds
    ends = marks[-1:]
    assert not isinstance(ends[0].event, RunFailed), ends[0].event  # no step fails, no worker is lost
    assert TERMINAL_EVENTS[type(ends[0].event)] is record.status
    state = WorkflowState.from_events(workflow, history)
    assert state.status is record.status
    produced = [(s.event.node, s.event.item) for s in history if isinstance(s.event, FactProduced)]
    assert len(produced) == len(set(produced)), produced  # each result recorded once
    return record.status


# ------------------------------------------------------- exact moments (fault points)
@pytest.mark.parametrize(
    ("point", "request_name"),
    [
        (FaultPoint.STEP_FINISHED, "cancel"),  # the last step's result is in, not recorded yet
        # the other moments in make chaos: each is one more Runner and one more held worker
        pytest.param(FaultPoint.APPEND_COMMITTED, "cancel", marks=pytest.mark.slow),  # committed, worker not told
        pytest.param(FaultPoint.TAKEN_OVER, "cancel", marks=pytest.mark.slow),  # just taken over, nothing done
        pytest.param(FaultPoint.STEP_FINISHED, "pause", marks=pytest.mark.slow),
        (FaultPoint.TAKEN_OVER, "pause"),
    ],
)
def test_a_stop_request_while_the_worker_is_held_at_a_fault_point(
    make_client: Callable[..., Client], fault_dir: Path, point: FaultPoint, request_name: str
) -> None:
    client = make_client()
    workflow = _one_step()
    run_id = f"stop-{uuid.uuid4().hex[:12]}"
    faults.arm(fault_dir, point, Action.GATE, run_id=run_id)  # the worker's whole event loop waits there
    handle = client.submit(workflow, 1, run_id=run_id)
    eventually(
        lambda: any(run_id in f.run_ids for f in faults.fired(fault_dir, point)),
        what=f"the worker to reach {point.value}",
    )  # (the directory keeps the firings of this module's earlier tests)

    answers: list[runner.RunRecord | Exception] = []

    def ask() -> None:
        try:
            answers.append(getattr(handle, request_name)())
        except Exception as exc:  # collected for the assertions below
            answers.append(exc)

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(timeout=1.0)  # the request waits for the held worker: it cannot have been answered
    assert asker.is_alive() and not answers, answers
    assert faults.release(fault_dir, point) == 1
    asker.join(timeout=60)
    assert not asker.is_alive()
    [answer] = answers
    assert isinstance(answer, runner.RunRecord), answer

    if answer.status is runner.RunStatus.PAUSED:
        assert isinstance(handle.history()[-1].event, RunPaused)
        handle.resume()
    handle.wait(timeout=60)
    ended = _ends_once(handle, workflow)
    if request_name == "cancel":
        assert answer.status is ended  # cancel returns the state the run ended in
    if point is FaultPoint.TAKEN_OVER and request_name == "cancel":
        assert ended is runner.RunStatus.CANCELLED  # asked before any step ran: nothing could finish first
    assert client.stats().restarts == 0  # no worker turn was lost to the race


# ------------------------------------------------------------ random moments
@pytest.mark.slow  # a randomised soak (make chaos); the named fault-point races above run in make test
def test_cancel_pause_resume_and_signal_at_random_moments(make_client: Callable[..., Client]) -> None:
    """40 short runs; each gets up to three requests at random moments (a seeded RNG). Every run
    ends in exactly one state (runs left paused or waiting are resumed or signalled to the end),
    its history folds, no run fails, and no worker turn is lost."""
    rng = random.Random(SEED)
    client = make_client(RunnerConfig(max_workers=2, worker=WorkerConfig(suspend_after=0.3)))
    workflows = {"chain": _chain(), "waiter": _waiter(), "sleeper": _sleeper()}
    kinds = [rng.choice(sorted(workflows)) for _ in range(40)]
    handles = [client.submit(workflows[kind], round(rng.uniform(0.02, 0.15), 3)) for kind in kinds]
    started = time.monotonic()
    schedules = [
        sorted(
            (rng.uniform(0.0, 2.0), rng.choice(("cancel", "pause", "resume", "signal")))
            for _ in range(rng.randint(0, 3))
        )
        for _ in handles
    ]
    unexpected: list[str] = []

    def play(handle: runner.RunHandle, schedule: list[tuple[float, str]]) -> None:
        for at, action in schedule:
            time.sleep(max(0.0, started + at - time.monotonic()))  # the random moment itself, not a wait for state
            try:
                if action == "signal":
                    handle.signal("go", {"at": at})
                else:
                    getattr(handle, action)()
            except (runner.IllegalTransition, runner.RunClosed):
                pass  # e.g. resume of a running run, pause or cancel of an ended one, a signal to it
            except Exception as exc:
                unexpected.append(f"{handle.run_id} {action}: {type(exc).__name__}: {exc}")

    players = [threading.Thread(target=play, args=pair, daemon=True) for pair in zip(handles, schedules, strict=True)]
    for player in players:
        player.start()
    for player in players:
        player.join(timeout=60)
        assert not player.is_alive()
    assert not unexpected, unexpected

    def settled() -> bool:
        """Resume the paused runs and signal the waiting ones; True once every run has ended."""
        done = True
        for handle, kind in zip(handles, kinds, strict=True):
            status = handle.status()
            if status.is_terminal:
                continue
            done = False
            try:
                if status is runner.RunStatus.PAUSED:
                    handle.resume()
                elif status is runner.RunStatus.SUSPENDED and kind == "waiter":
                    handle.signal("go", "settle")
            except runner.IllegalTransition:
                pass  # it moved on meanwhile
        return done

    eventually(settled, timeout=60, interval=0.2, what="every run to end")
    ended = [_ends_once(handle, workflows[kind]) for handle, kind in zip(handles, kinds, strict=True)]
    assert set(ended) <= {runner.RunStatus.COMPLETED, runner.RunStatus.CANCELLED}
    assert runner.RunStatus.CANCELLED in ended and runner.RunStatus.COMPLETED in ended  # the seed mixes both
    assert client.stats().restarts == 0
