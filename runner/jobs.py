"""Ray Jobs as the way in from outside a cluster: a ``runner`` command run on the cluster as a job.

With ``--address http://head:8265`` (Ray's dashboard address) a ``runner`` command is not run
here: it is sent through Ray's Job Submission API (``JobSubmissionClient``) as the entrypoint
``python -m runner.job_entry ...`` (see :mod:`runner.job_entry`), which runs the same command
on the head as a driver of the cluster. This side waits for the job to end, prints what the
command printed and exits with its exit code. So ``submit`` prints the run id, and ``list``,
``show``, ``history``, ``sql``, ``signal``, ``cancel`` ... answer as they do on the head.

- The workflow's code travels in the job's ``runtime_env``: a ``file.py:workflow`` target's
  directory is the job's ``working_dir`` (a ``package.module:workflow`` target: the current
  directory); ``pip`` packages and any other runtime_env field can be added.
- Ray's token authentication: ``RAY_AUTH_TOKEN`` in this environment is sent as the bearer
  token of every request (Ray's own SDK sends it only when ``RAY_AUTH_MODE=token`` is set here
  too).
- An address that does not answer raises :class:`~runner.errors.JobAddressUnreachable`
  before anything is submitted.
"""

from __future__ import annotations

import enum
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import InvalidArgument, JobAddressUnreachable, JobFailed

JOB_SCHEMES = ("http://", "https://")
TOKEN_ENV = "RAY_AUTH_TOKEN"
ENTRY_MODULE = "runner.job_entry"
POLL_INTERVAL = 0.25  # seconds between two looks at a running job's status
ENTRY_BANNER = "Running entrypoint for job "  # Ray's job manager logs this line before the entrypoint's output


class JobState(str, enum.Enum):
    """The job statuses Ray reports (``ray.job_submission.JobStatus`` values)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.STOPPED, JobState.SUCCEEDED, JobState.FAILED)


def is_job_address(address: str | None) -> bool:
    """True for a Ray Jobs (dashboard) address: ``http://`` or ``https://``."""
    return address is not None and address.startswith(JOB_SCHEMES)


def auth_headers(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The HTTP headers that carry Ray's token (``RAY_AUTH_TOKEN``), if one is set."""
    token = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True, kw_only=True)
class JobCommand:
    """A ``runner`` command to run on the cluster: its arguments (without ``--address``,
    ``--store`` and ``--namespace``), the store (None: the one the namespace's running
    Runner holds) and the runtime_env the job gets."""

    args: tuple[str, ...]
    namespace: str
    store: str | None = None
    runtime_env: dict[str, Any] = field(default_factory=dict)

    def entrypoint(self) -> str:
        options = ["--namespace", self.namespace]
        if self.store is not None:
            options += ["--store", self.store]
        return shlex.join(["python", "-m", ENTRY_MODULE, *options, "--", *self.args])


@dataclass(frozen=True, kw_only=True)
class JobOutcome:
    """How a job ended: its id, status, the command's exit code (None if it never ran) and output."""

    job_id: str
    status: JobState
    exit_code: int | None
    output: str


def target_runtime_env(target: str, cwd: Path | None = None) -> tuple[str, dict[str, Any]]:
    """``target`` as the job sees it and the runtime_env that ships its code: a file's directory
    as ``working_dir`` (the target becomes ``file.py:name`` there), else the current directory."""
    module, sep, attr = target.rpartition(":")
    if not sep or not module or not attr:
        raise InvalidArgument(f"expected MODULE:WORKFLOW (e.g. examples/quickstart.py:orders), got {target!r}")
    here = cwd or Path.cwd()
    if module.endswith(".py") or "/" in module or os.sep in module:
        path = (here / module).resolve()
        if not path.is_file():
            raise InvalidArgument(f"no file {module!r}")
        return f"{path.name}:{attr}", {"working_dir": str(path.parent)}
    return target, {"working_dir": str(here)}


def check_store_for_job(store: str) -> None:
    """A store given with a job address names a place on the head node: a relative DuckDB path
    would be resolved in the job's temporary directory, so it is refused."""
    if store.startswith("duckdb://") and not store.startswith("duckdb:////"):
        raise InvalidArgument(
            f"--store {store!r} is relative; with a job address give the store's absolute path on the head "
            "node (duckdb:////data/runner.duckdb), or leave --store out to use the store of the Runner "
            "running in the namespace"
        )


def job_client(address: str) -> Any:
    """A ``JobSubmissionClient`` for ``address``, with the token headers; JobAddressUnreachable
    if nothing answers there."""
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address, headers=auth_headers())
    except (ConnectionError, OSError) as exc:
        raise JobAddressUnreachable(address, str(exc) or type(exc).__name__) from exc
    except RuntimeError as exc:  # e.g. an authentication failure, reported by Ray as a RuntimeError
        raise JobAddressUnreachable(address, str(exc)) from exc


def run_as_job(address: str, command: JobCommand, timeout: float | None = None) -> JobOutcome:
    """Submit ``command`` as a Ray job at ``address``, wait for it to end and read its output.
    JobFailed if the job ended without running the command (its runtime_env could not be set
    up, it was stopped) or ``timeout`` seconds passed (the job is stopped then)."""
    client = job_client(address)
    job_id = client.submit_job(entrypoint=command.entrypoint(), runtime_env=command.runtime_env or None)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = JobState(str(client.get_job_status(job_id).value))
        if status.is_terminal:
            break
        if deadline is not None and time.monotonic() > deadline:
            client.stop_job(job_id)
            raise JobFailed(job_id, f"still {status.value} after {timeout:g}s (stopped)", client.get_job_logs(job_id))
        time.sleep(POLL_INTERVAL)
    output = command_output(client.get_job_logs(job_id))
    exit_code = client.get_job_info(job_id).driver_exit_code
    if status is JobState.SUCCEEDED:
        exit_code = 0
    elif exit_code is None:
        raise JobFailed(job_id, status.value, output)
    return JobOutcome(job_id=job_id, status=status, exit_code=exit_code, output=output)


def command_output(logs: str) -> str:
    """The entrypoint's own output in a job's logs: what follows Ray's job-manager lines."""
    lines = logs.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if ENTRY_BANNER in line:
            return "".join(lines[index + 1 :])
    return logs
