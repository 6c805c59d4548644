"""Named fault points without Ray: arming, consumption, run filters, actions, gates."""

from __future__ import annotations

import asyncio
import errno
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import faults
from runner.faults import Action, FaultPoint
from runner.testing.polling import eventually

POINT = FaultPoint.STORE_COMMIT


@pytest.fixture
def fault_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "faults"
    before = faults.directory()
    faults.enable(directory)
    yield directory
    faults.enable(before)


def test_a_disarmed_point_does_nothing(fault_dir: Path) -> None:
    for point in FaultPoint:
        faults.hit(point, "run-1")
    assert all(faults.fired(fault_dir, point) == [] for point in FaultPoint)


def test_without_a_directory_armings_are_ignored(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE)
    faults.enable(None)
    faults.hit(POINT)  # no error: this process obeys no directory
    assert faults.fired(fault_dir, POINT) == []


def test_each_firing_consumes_one_count(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE, times=2)
    for _ in range(2):
        with pytest.raises(OSError):
            faults.hit(POINT, "run-1")
    faults.hit(POINT, "run-1")  # used up
    firings = faults.fired(fault_dir, POINT)
    assert [f.pid for f in firings] == [os.getpid(), os.getpid()]
    assert all(f.run_ids == ("run-1",) and f.action is Action.RAISE for f in firings)
    assert faults.fired(fault_dir, FaultPoint.STORE_COMMITTED) == []  # other points untouched


def test_raise_defaults_to_a_full_disk(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE)
    with pytest.raises(OSError) as caught:
        faults.hit(POINT)
    assert caught.value.errno == errno.ENOSPC
    assert "No space left on device" in str(caught.value)


def test_raise_takes_the_armed_error(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE, error=TimeoutError("the disk hangs"))
    with pytest.raises(TimeoutError, match="the disk hangs"):
        faults.hit(POINT)


def test_a_run_filter_fires_only_for_that_run(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE, run_id="run-2")
    faults.hit(POINT, "run-1")
    faults.hit(POINT)  # no run named: a filtered arming does not match
    faults.hit_any(POINT, ["run-1", "run-3"])
    assert faults.fired(fault_dir, POINT) == []
    with pytest.raises(OSError):
        faults.hit_any(POINT, ["run-1", "run-2"])
    [firing] = faults.fired(fault_dir, POINT)
    assert firing.run_ids == ("run-1", "run-2")


def test_an_unfiltered_arming_fires_for_any_run_and_a_batch_fires_once(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE, times=5)
    with pytest.raises(OSError):
        faults.hit_any(POINT, ["a", "b", "c"])
    assert len(faults.fired(fault_dir, POINT)) == 1


def test_armings_fire_in_the_order_they_were_made(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE, error=KeyError("first"))
    faults.arm(fault_dir, POINT, Action.RAISE, error=KeyError("second"))
    with pytest.raises(KeyError, match="first"):
        faults.hit(POINT)
    with pytest.raises(KeyError, match="second"):
        faults.hit(POINT)


def test_disarm_takes_back_what_has_not_fired(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE, times=3)
    with pytest.raises(OSError):
        faults.hit(POINT)
    assert faults.disarm(fault_dir, POINT) == 2
    faults.hit(POINT)
    assert len(faults.fired(fault_dir, POINT)) == 1


def test_an_unlimited_arming_fires_until_disarmed(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.RAISE, times=None)
    for _ in range(5):
        with pytest.raises(OSError):
            faults.hit(POINT, "run-1")
    assert len(faults.fired(fault_dir, POINT)) == 5
    assert faults.disarm(fault_dir, POINT) == 0  # no counted firings were left, just the arming
    faults.hit(POINT, "run-1")
    assert len(faults.fired(fault_dir, POINT)) == 5


def test_arm_refuses_nonsense(fault_dir: Path) -> None:
    with pytest.raises(ValueError):
        faults.arm(fault_dir, POINT, Action.RAISE, times=0)
    with pytest.raises(ValueError):
        faults.arm(fault_dir, POINT, Action.CRASH, error=OSError())
    with pytest.raises(ValueError):
        faults.arm(fault_dir, "no such point", Action.CRASH)  # type: ignore[arg-type]


def test_a_gate_blocks_until_released(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.GATE)
    passed = threading.Event()

    def reach() -> None:
        faults.hit(POINT)
        passed.set()

    thread = threading.Thread(target=reach, daemon=True)
    thread.start()
    faults.wait_fired(fault_dir, POINT)
    assert not passed.wait(0.2)  # still shut
    assert faults.release(fault_dir, POINT) == 1
    assert passed.wait(10)
    assert faults.release(fault_dir, POINT) == 0  # nothing left shut
    thread.join(10)


def test_a_gate_opens_when_the_fault_directory_goes(fault_dir: Path) -> None:
    import shutil

    faults.arm(fault_dir, POINT, Action.GATE)
    thread = threading.Thread(target=faults.hit, args=(POINT,), daemon=True)
    thread.start()
    faults.wait_fired(fault_dir, POINT)
    shutil.rmtree(fault_dir)
    thread.join(10)
    assert not thread.is_alive()


def test_ahit_gate_leaves_the_event_loop_running(fault_dir: Path) -> None:
    faults.arm(fault_dir, FaultPoint.TAKEN_OVER, Action.GATE, run_id="r")

    async def scenario() -> list[str]:
        order: list[str] = []

        async def gated() -> None:
            await faults.ahit(FaultPoint.TAKEN_OVER, "r")
            order.append("gated passed")

        task = asyncio.create_task(gated())
        while not faults.fired(fault_dir, FaultPoint.TAKEN_OVER):
            await asyncio.sleep(0.01)
        order.append("loop still runs")  # the gate blocks only its coroutine
        faults.release(fault_dir, FaultPoint.TAKEN_OVER)
        await asyncio.wait_for(task, 10)
        return order

    assert asyncio.run(scenario()) == ["loop still runs", "gated passed"]


def test_wait_fired_times_out(fault_dir: Path) -> None:
    with pytest.raises(TimeoutError, match="fired 0 of 1"):
        faults.wait_fired(fault_dir, POINT, timeout=0.05)


# ------------------------------------------------------------ other processes
def _race(directory: str, start: float) -> None:
    faults.enable(directory)
    while time.time() < start:
        pass
    try:
        faults.hit(POINT)
    except OSError:
        os._exit(7)  # this process took the token
    os._exit(0)


def test_two_processes_never_both_take_the_last_count(fault_dir: Path) -> None:
    context = multiprocessing.get_context("fork")
    for _ in range(3):
        faults.disarm(fault_dir)
        faults.arm(fault_dir, POINT, Action.RAISE, times=1)
        start = time.time() + 0.3
        procs = [context.Process(target=_race, args=(str(fault_dir), start)) for _ in range(6)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(20)
        assert sorted(proc.exitcode or 0 for proc in procs) == [0, 0, 0, 0, 0, 7]
    assert len(faults.fired(fault_dir, POINT)) == 3


def _reach(directory: str) -> None:
    faults.enable(directory)
    faults.hit(POINT, "run-9")
    os._exit(0)


def test_crash_kills_the_process_that_reaches_the_point(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.CRASH, run_id="run-9")
    proc = multiprocessing.get_context("fork").Process(target=_reach, args=(str(fault_dir),))
    proc.start()
    proc.join(20)
    assert proc.exitcode == -signal.SIGKILL
    [firing] = faults.fired(fault_dir, POINT)
    assert firing.pid == proc.pid and firing.action is Action.CRASH


def test_stop_freezes_the_process_until_it_is_continued(fault_dir: Path) -> None:
    faults.arm(fault_dir, POINT, Action.STOP)
    proc = multiprocessing.get_context("fork").Process(target=_reach, args=(str(fault_dir),))
    proc.start()
    assert proc.pid is not None
    faults.wait_fired(fault_dir, POINT)
    eventually(lambda: _state(proc.pid) == "T", timeout=10, what="the process to be stopped")
    os.kill(proc.pid, signal.SIGCONT)
    proc.join(20)
    assert proc.exitcode == 0


def _state(pid: int | None) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0]
