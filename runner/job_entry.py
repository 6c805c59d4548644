"""The entrypoint of a ``runner`` command sent to a cluster as a Ray job (see :mod:`runner.jobs`).

``python -m runner.job_entry --namespace NS [--store URL] -- COMMAND ARGS...`` runs
``runner COMMAND ARGS... --address auto --namespace NS --store URL`` on the head, a driver
of the cluster (Ray's job supervisor sets ``RAY_ADDRESS``, which ``auto`` joins). With no ``--store``,
the command uses the store of the Runner running in the namespace: a relative path would
mean the job's temporary directory, and the client does not know where the store lives.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from runner.errors import InvalidArgument


def running_store(namespace: str) -> str:
    """The store URL the namespace's Runner holds; InvalidArgument (with advice) if none runs."""
    import ray

    from runner.ray_calls import RunnerCalls, find_runner
    from runner.runner import RUNNER_NAME

    # joined once for the whole job: the command below finds Ray initialized and uses it (a job
    # driver that disconnects and joins again can lose its working_dir to Ray's cleanup)
    ray.init(address="auto", namespace=namespace, logging_level=logging.ERROR, log_to_driver=False)
    try:
        actor = ray.get_actor(RUNNER_NAME, namespace=namespace)
    except ValueError:
        raise InvalidArgument(
            f"no Runner runs in namespace {namespace!r} on this cluster, so there is no store to use; "
            "start one with `runner start --address http://HEAD:8265 --store duckdb:////ABSOLUTE/PATH.duckdb` "
            "or pass --store with an absolute path on the head node"
        ) from None
    calls = RunnerCalls(actor, lambda: find_runner(RUNNER_NAME, namespace))
    url: str = calls.call(lambda r: r.store_url_in_use.remote())
    return url


_TAKE_A_TARGET = ("submit", "run")  # commands whose code comes in the job's working_dir


def _work_in_a_copy() -> None:
    """Go on in a private copy of the job's working_dir (the target's code). Joining Ray from a
    job driver can make Ray unpack the working_dir again in place, deleting the directory the
    driver stands in; measured with several nodes on one machine (they share one session
    directory), where the driver may join through another node's raylet."""
    here = Path.cwd()
    copy = Path(tempfile.mkdtemp(prefix="runner-job-"))
    shutil.copytree(here, copy, dirs_exist_ok=True)
    os.chdir(copy)
    sys.path.insert(0, str(copy))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.job_entry")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--store", default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no runner command given")
    if args.store is None and command[0] in _TAKE_A_TARGET:
        _work_in_a_copy()
    try:
        store = args.store or running_store(args.namespace)
    except InvalidArgument as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    from runner.cli import main as cli_main

    # --address auto: the cluster this job runs in (Ray's job supervisor sets RAY_ADDRESS)
    cli_main([*command, "--address", "auto", "--namespace", args.namespace, "--store", store], prog_name="runner")


if __name__ == "__main__":
    main()
