"""``runner`` commands with ``--address http://head:8265`` run on the cluster as Ray jobs.

The workflow's file travels as the job's working_dir; ``submit`` (no --store: the running
Runner's) prints the run id, ``show`` answers from the cluster's store. (``start`` through a
job is the same path; it is left out to keep the test to two jobs.)
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner

from runner import cli
from runner.client import connect
from runner.runner import RUNNER_NAME

from .conftest import Nodes

pytestmark = pytest.mark.ray

WORKFLOW_FILE = """
import runner

doubling = runner.Workflow("jobbed")


@doubling.step()
def double(x):
    return x * 2
"""


def test_submit_and_read_through_ray_jobs(nodes: Nodes, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "doubling_flow.py").write_text(WORKFLOW_FILE)
    namespace = f"jobs-{uuid.uuid4().hex[:8]}"
    store = "duckdb:///" + str(tmp_path / "jobs.duckdb")  # an absolute path "on the head"
    where = ["--address", nodes.dashboard, "--namespace", namespace]
    invoke = CliRunner().invoke
    client = connect(store=store, namespace=namespace)  # the namespace's Runner, started from this driver
    try:
        submitted = invoke(cli.main, ["submit", str(code / "doubling_flow.py") + ":doubling", "--input", "21", *where])
        assert submitted.exit_code == 0, submitted.output
        run_id = submitted.output.strip().splitlines()[-1]
        assert run_id.startswith("jobbed-")

        assert client.get(run_id).result(timeout=60) == 42

        shown = invoke(cli.main, ["show", run_id, *where])  # no --store: the Runner's own
        assert shown.exit_code == 0, shown.output
        assert "completed" in shown.output and "42" in shown.output
    finally:
        with contextlib.suppress(Exception):
            ray.kill(ray.get_actor(RUNNER_NAME, namespace=namespace), no_restart=True)
