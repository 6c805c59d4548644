"""The faults bench/chaos.py injects, and the Ray instances it injects them into.

A fault has three moves: ``inject`` (returns the wall-clock time it struck),
``tick`` (called about five times a second until the trial ends: a frozen
worker is continued, a full disk is freed) and ``cleanup`` (leave nothing
stopped or armed). Each talks to the system only through the public API,
process ids and the fault points of ``runner.faults``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import ray
from ray._private import ray_constants

from runner import faults
from runner.client import Client, connect
from runner.faults import Action, FaultPoint
from runner.runner import RunnerConfig
from runner.worker import WorkerConfig

T = TypeVar("T")

# Supervision as shipped, except a shorter lease, so that a frozen worker's runs could be
# taken over (if the Runner did that) well inside a trial.
CONFIG = RunnerConfig(max_workers=2, runs_per_worker=8, worker=WorkerConfig(lease_ttl=10.0))
FREEZE_SECONDS = 20.0  # a SIGSTOPped worker is continued after this long (two leases)
DISK_FULL_SECONDS = 3.0  # every commit fails for this long, then the disk has room again
CALL_SECONDS = 10.0  # no call of the harness waits longer than this


def bounded(fn: Callable[[], T], timeout: float = CALL_SECONDS, what: str = "call") -> T:
    """``fn()`` on a daemon thread; TimeoutError if it has not returned after ``timeout`` seconds
    (the thread is left behind: the harness never hangs on a call that never returns)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name=f"bounded {what}")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not return within {timeout:g}s")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def actor_info(handle: Any) -> dict[str, Any]:
    """The GCS's record of an actor (pid, node, state), found by the handle's actor id."""
    actor_id = handle._actor_id.hex()
    info: dict[str, Any] = ray._private.state.actors(actor_id=actor_id)
    return info


def ray_options() -> dict[str, Any]:
    return {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}


# ------------------------------------------------------------------ Ray
class LocalRay:
    """One local Ray instance (what ``ray.init()`` starts), restartable."""

    cluster = False

    def __init__(self, num_cpus: int = 4) -> None:
        self.num_cpus = num_cpus

    def start(self) -> None:
        ray.init(address="local", num_cpus=self.num_cpus, namespace="chaos", **ray_options())

    def stop(self) -> None:
        if ray.is_initialized():
            ray.shutdown()

    def prepare_trial(self) -> None:
        pass


class ClusterRay:
    """A head node (1 CPU, holds the Runner and the Store actor) and a 2-CPU worker node that
    a trial may lose; a lost node is replaced before the next trial."""

    cluster = True

    def __init__(self) -> None:
        self._cluster: Any = None

    def start(self) -> None:
        from ray.cluster_utils import Cluster

        # the GCS declares a node dead after ~1.5 s of silence instead of ~30 s
        os.environ.setdefault("RAY_health_check_initial_delay_ms", "0")
        os.environ.setdefault("RAY_health_check_period_ms", "500")
        os.environ.setdefault("RAY_health_check_timeout_ms", "500")
        os.environ.setdefault("RAY_health_check_failure_threshold", "3")
        self._cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        ray.init(address=self._cluster.address, namespace="chaos", logging_level=logging.ERROR, log_to_driver=False)

    def stop(self) -> None:
        if ray.is_initialized():
            ray.shutdown()
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None

    def prepare_trial(self) -> None:
        if not self._cluster.worker_nodes:
            self._cluster.add_node(num_cpus=2)
            self._cluster.wait_for_nodes()

    def worker_node_ids(self) -> list[str]:
        return [str(n.node_id) for n in self._cluster.worker_nodes]

    def remove(self, node_id: str) -> None:
        """Cut the power of worker node ``node_id``: SIGKILL every process the node runs (its
        raylet's children, where step tasks and actors live), then the node itself."""
        victim = next(n for n in self._cluster.worker_nodes if n.node_id == node_id)
        raylet = victim.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
        for pid in _children(raylet):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._cluster.remove_node(victim, allow_graceful=False)


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            found.append(int(entry))
    return found


# --------------------------------------------------------------- trials
@dataclass
class TrialContext:
    """What a fault may touch: the client (replaced after a Ray restart) and the trial's runs."""

    env: LocalRay | ClusterRay
    fault_dir: Path
    client: Client
    store_url: str
    namespace: str
    run_ids: list[str]
    notes: list[str] = field(default_factory=list)

    def reconnect(self) -> None:
        self.client = bounded(
            lambda: connect(store=self.store_url, namespace=self.namespace, config=CONFIG), 90, "connect"
        )

    def worker_pid(self) -> int:
        """The pid of a worker that drives one of the trial's runs (the first run's, if it has one)."""
        for run_id in self.run_ids:
            pid = bounded(functools.partial(self._worker_pid, run_id), what="worker_pid")
            if pid is not None:
                return int(pid)
        raise RuntimeError("no run has a worker")

    def _worker_pid(self, run_id: str) -> int | None:
        pid: int | None = ray.get(self.client.runner.worker_pid.remote(run_id))
        return pid


class Fault:
    name = ""
    what = ""
    cluster = False

    def inject(self, trial: TrialContext) -> float:
        return time.time()

    def tick(self, trial: TrialContext, since: float) -> None:
        """Called about five times a second after ``inject``; ``since``: seconds since the fault."""

    def cleanup(self, trial: TrialContext) -> None:
        pass


class NoFault(Fault):
    name = "none (baseline)"
    what = "nothing is broken: the figures a healthy trial gives"


class WorkerKill(Fault):
    name = "worker SIGKILL"
    what = "SIGKILL the worker process driving the first run"

    def inject(self, trial: TrialContext) -> float:
        pid = trial.worker_pid()
        os.kill(pid, signal.SIGKILL)
        return time.time()


class WorkerStop(Fault):
    name = "worker SIGSTOP"
    what = f"SIGSTOP the worker driving the first run; SIGCONT after {FREEZE_SECONDS:g} s"

    def __init__(self) -> None:
        self.pid: int | None = None

    def inject(self, trial: TrialContext) -> float:
        self.pid = trial.worker_pid()
        os.kill(self.pid, signal.SIGSTOP)
        return time.time()

    def tick(self, trial: TrialContext, since: float) -> None:
        if since >= FREEZE_SECONDS:
            self.cleanup(trial)

    def cleanup(self, trial: TrialContext) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            self.pid = None


class StoreKill(Fault):
    name = "Store actor SIGKILL"
    what = "SIGKILL the Store actor right after a commit, before it replies (fault point STORE_COMMITTED)"

    def inject(self, trial: TrialContext) -> float:
        before = len(faults.fired(trial.fault_dir, FaultPoint.STORE_COMMITTED))  # earlier trials' firings
        faults.arm(trial.fault_dir, FaultPoint.STORE_COMMITTED, Action.CRASH)
        firings = faults.wait_fired(trial.fault_dir, FaultPoint.STORE_COMMITTED, count=before + 1, timeout=20)
        return firings[-1].at

    def cleanup(self, trial: TrialContext) -> None:
        faults.disarm(trial.fault_dir)


class RunnerKill(Fault):
    name = "Runner SIGKILL"
    what = "SIGKILL the Runner actor's process"

    def inject(self, trial: TrialContext) -> float:
        pid = int(bounded(lambda: actor_info(trial.client.runner)["Pid"], what="the Runner's pid"))
        os.kill(pid, signal.SIGKILL)
        return time.time()


class DiskFull(Fault):
    name = "disk full at commit"
    what = (
        f"every Store commit fails with ENOSPC for {DISK_FULL_SECONDS:g} s (fault point STORE_COMMIT); "
        "then, as an operator would, resume the runs the outage paused"
    )

    def inject(self, trial: TrialContext) -> float:
        faults.arm(trial.fault_dir, FaultPoint.STORE_COMMIT, Action.RAISE, times=None)
        return time.time()

    def tick(self, trial: TrialContext, since: float) -> None:
        if since < DISK_FULL_SECONDS:
            return
        faults.disarm(trial.fault_dir)
        client = trial.client
        paused = bounded(lambda: client.list_runs(status="paused", limit=1000), what="list_runs")
        blocked = bounded(lambda: client.recovery_report().blocked, what="recovery_report")  # pause not recorded
        for run_id in {r.run_id for r in paused} | set(blocked):
            if run_id in trial.run_ids:
                with contextlib.suppress(Exception):  # resumed meanwhile; a failure shows in the run's end
                    bounded(functools.partial(client.resume, run_id), what="resume")

    def cleanup(self, trial: TrialContext) -> None:
        faults.disarm(trial.fault_dir)


class RayRestart(Fault):
    name = "whole Ray restart"
    what = "ray.shutdown() (every Ray process goes), ray.init() again, connect() on the same DuckDB file"

    def inject(self, trial: TrialContext) -> float:
        struck = time.time()
        trial.env.stop()
        trial.env.start()
        trial.reconnect()
        return struck


class NodeLoss(Fault):
    name = "node loss"
    what = (
        "a 2-node local cluster loses its worker node while steps run there: every process of the node "
        "is SIGKILLed and the node removed"
    )
    cluster = True

    def inject(self, trial: TrialContext) -> float:
        assert isinstance(trial.env, ClusterRay)
        [victim] = trial.env.worker_node_ids()
        workers = bounded(lambda: ray.get(trial.client.runner.worker_handles.remote()), what="worker_handles")
        placed = [actor_info(handle)["Address"]["NodeID"] for handle in workers]
        if victim not in placed:
            trial.notes.append("no worker actor was on the lost node, only step tasks")
        struck = time.time()
        trial.env.remove(victim)
        return struck


FAULTS: dict[str, Callable[[], Fault]] = {
    "none": NoFault,
    "worker-sigkill": WorkerKill,
    "worker-sigstop": WorkerStop,
    "store-sigkill": StoreKill,
    "runner-sigkill": RunnerKill,
    "node-loss": NodeLoss,
    "ray-restart": RayRestart,
    "disk-full": DiskFull,
}
