"""Helpers for the Ray integration tests; the fixtures live in conftest.py.

A module of its own (not conftest) because test modules import these by name
and ``tests/cli`` has a conftest as well.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ray

from runner.client import Client
from runner.events import FactProduced, StepStarted, StoredEvent
from runner.testing import polling

T = TypeVar("T")


def eventually(fn: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """``runner.testing.polling.eventually`` with this suite's default deadline."""
    return polling.eventually(fn, timeout, interval, what)


def start_ray(num_cpus: int = 4) -> None:
    """A fresh local Ray instance for this process (never joins a cluster someone else started)."""
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
        namespace="ray-runner-tests",
    )


def kill_runner(client: Client) -> None:
    with contextlib.suppress(Exception):  # already gone
        ray.kill(client.runner, no_restart=True)


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie has ended too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def worker_pid(client: Client, run_id: str) -> int | None:
    """The process id of the worker driving ``run_id`` now, if one does."""
    pid: int | None = ray.get(client.runner.worker_pid.remote(run_id))
    return pid


def driven(client: Client, run_id: str) -> bool:
    """True while one of the Runner's workers drives ``run_id`` (the run holds a worker): what
    ``stats().busy_workers`` counts, for one run, so a test on a shared Runner can ask it."""
    return ray.get(client.runner.worker_handle.remote(run_id)) is not None


def last_outcome(client: Client, run_id: str) -> Any:
    """The Runner's record of ``run_id``'s last turn (a ``runner.worker.Outcome``). result() answers
    as soon as the run's last commit lands; the Runner records the turn's end just after, so poll."""
    return eventually(lambda: ray.get(client.runner.last_outcome.remote(run_id)), what=f"run {run_id}'s last outcome")


def lines(path: Path | str) -> list[str]:
    """The lines a step appended to a side-effect file (empty if it has none yet)."""
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def touch(path: Path | str) -> None:
    with open(path, "w"):
        pass
    assert os.path.exists(path)


def facts(history: list[StoredEvent]) -> list[tuple[str, int | None]]:
    return [(s.event.node, s.event.item) for s in history if isinstance(s.event, FactProduced)]


def has_fact(history: list[StoredEvent], node: str) -> bool:
    return any(isinstance(s.event, FactProduced) and s.event.node == node for s in history)


def has_started(history: list[StoredEvent], node: str) -> bool:
    return any(isinstance(s.event, StepStarted) and s.event.node == node for s in history)


def assert_gapless(history: list[StoredEvent]) -> None:
    assert [s.seq for s in history] == list(range(1, len(history) + 1))


def actor_state(handle: Any) -> tuple[str, int, int]:
    """The GCS's record of an actor: (state, pid, restarts so far)."""
    info = ray._private.state.actors(actor_id=handle._actor_id.hex())
    return str(info["State"]), int(info["Pid"]), int(info["NumRestarts"])


def sigkill_actor(handle: Any) -> int:
    """SIGKILL the process of a live actor; its pid."""
    state, pid, _ = actor_state(handle)
    assert state == "ALIVE" and pid > 0, (state, pid)
    os.kill(pid, signal.SIGKILL)
    return pid


def wait_restarted(handle: Any, restarts: int, timeout: float = 60.0) -> int:
    """Poll until the actor has restarted ``restarts`` times in all and is alive again; its new pid."""

    def restarted() -> int | None:
        state, pid, count = actor_state(handle)
        return pid if state == "ALIVE" and count >= restarts and alive(pid) else None

    return eventually(restarted, timeout=timeout, what="the actor to restart")
