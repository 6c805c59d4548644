"""Helpers of the CLI tests: a Ray head of our own, ``runner`` in a subprocess, polling.

The head is ``ray start --head --block`` run as this process's own child, in a
session of its own. Teardown stops it by its process id (SIGTERM, then SIGKILL
for whatever is left in its session) rather than with ``ray stop``, which
would stop every Ray instance on the machine, other test runs' included.

The head gets a temporary directory of its own (``RAY_TMPDIR``), where
``ray start`` records it as the latest cluster; the CLI runs with the same
``RAY_TMPDIR`` and ``--address auto``, so it joins this head and no other
Ray instance on the machine (``auto`` is also what enables Ray's token
authentication for a local cluster; an explicit address would not). Every
call gets ``--store`` and ``--namespace`` too, and no ``RAY_ADDRESS``.
Tests never sleep to wait for state: they poll with :func:`eventually`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from runner.testing import polling

REPO = Path(__file__).resolve().parents[2]
FLOWS = "tests/cli/flows.py"
T = TypeVar("T")


def eventually(fn: Callable[[], T], timeout: float = 60.0, interval: float = 0.05, what: str = "") -> T:
    """``runner.testing.polling.eventually`` with this suite's default deadline."""
    return polling.eventually(fn, timeout, interval, what)


def runner_command() -> list[str]:
    """The ``runner`` console script beside this interpreter, else ``python -m runner.cli``."""
    script = Path(sys.executable).with_name("runner")
    return [str(script)] if script.exists() else [sys.executable, "-m", "runner.cli"]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "COLUMNS")}
    env.update(extra)
    return env


# ------------------------------------------------------------------ the head
def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def _session_members(session: int) -> list[int]:
    """Process ids in session ``session`` (Linux /proc); the head's workers live in its session."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session ...
        if len(fields) > 3 and int(fields[3]) == session:
            members.append(int(entry.name))
    return members


class RayHead:
    """A Ray head node this process started and alone stops, with a temporary directory of its own."""

    def __init__(self) -> None:
        # short: Ray's unix sockets live under it, and their paths must stay under 108 characters
        self.tmpdir = Path(tempfile.mkdtemp(prefix="rr-cli-", dir="/tmp"))
        self.env = cli_env(RAY_TMPDIR=str(self.tmpdir))
        port, client_port, agent_port = _free_ports(3)
        ray = Path(sys.executable).with_name("ray")
        command = [
            str(ray) if ray.exists() else "ray",
            "start",
            "--head",
            "--num-cpus=2",
            "--disable-usage-stats",
            "--include-dashboard=false",
            f"--port={port}",
            f"--ray-client-server-port={client_port}",
            f"--dashboard-agent-listen-port={agent_port}",
            "--block",
        ]
        self.log_path = self.tmpdir / "head.log"
        self._log: IO[str] = open(self.log_path, "w")  # noqa: SIM115  closed by stop()
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: stop() finds every process it started
            env={**self.env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"},
            cwd=REPO,
        )
        self.address = ""
        try:
            self.address = eventually(self._started, timeout=90, interval=0.1, what="ray start --head")
        except BaseException:
            self.stop()
            raise

    def _started(self) -> str:
        text = self.log_path.read_text()
        if self.process.poll() is not None:
            raise RuntimeError(f"ray start exited with {self.process.returncode}:\n{text}")
        found = re.search(r"ray start --address='([^']+)'", text)
        if found is None or "Ray runtime started" not in text:
            return ""
        return found.group(1)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM the head (it stops its processes), SIGKILL whatever of its session is left, wait for all.

        Idempotent. The temporary directory goes too, with ``ray start``'s record of this head.
        """
        session = self.process.pid
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while members := _session_members(session):
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {members} of the Ray head did not exit")
            time.sleep(0.05)
        self._log.close()
        with contextlib.suppress(OSError):
            (self.tmpdir / "ray" / "ray_current_cluster").unlink()  # what `ray stop` would erase

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


# -------------------------------------------------------------------- the CLI
@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"runner {' '.join(self.args)} -> exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"

    def lines(self, text: str) -> list[str]:
        """The stderr lines containing ``text``."""
        return [line for line in self.err.splitlines() if text in line]


class Cli:
    """``runner ARGS --store S --namespace N [--address A]`` in a subprocess from the repository root."""

    def __init__(self, store: str, namespace: str, env: dict[str, str], address: str | None = "auto") -> None:
        self.store = store
        self.namespace = namespace
        self.env = env
        self.address = address

    def without_address(self) -> Cli:
        """The same CLI, without ``--address`` (its default: this machine's cluster, if any)."""
        return Cli(self.store, self.namespace, self.env, None)

    def argv(self, args: Sequence[str], common: bool = True) -> list[str]:
        options = ["--store", self.store, "--namespace", self.namespace] if common else []
        if common and self.address is not None:
            options += ["--address", self.address]
        return [*runner_command(), *args, *options]

    def start(self, *args: str, common: bool = True, stderr: IO[str] | int = subprocess.PIPE) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(args, common),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=REPO,
            env=self.env,
        )

    @staticmethod
    def finish(args: Sequence[str], proc: subprocess.Popen[str], timeout: float = 120) -> Result:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"runner {' '.join(args)} did not finish in {timeout}s\n{out}\n{err}") from None
        return Result(tuple(args), proc.returncode, out or "", err or "")

    def __call__(self, *args: str, common: bool = True, timeout: float = 120) -> Result:
        return self.finish(args, self.start(*args, common=common), timeout)

    def many(self, *calls: Sequence[str], common: bool = True) -> list[Result]:
        """Several invocations at once (each spends most of its time connecting to Ray)."""
        procs = [(tuple(args), self.start(*args, common=common)) for args in calls]
        return [self.finish(args, proc) for args, proc in procs]

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.code == 0, str(result)
        return result


def submitted_id(result: Result) -> str:
    """The run id from ``run``'s "run ID submitted" line."""
    found = re.search(r"^run (\S+) submitted$", result.err, re.MULTILINE)
    assert found is not None, str(result)
    return found.group(1)


def touch(path: str) -> None:
    with open(path, "w"):
        pass
