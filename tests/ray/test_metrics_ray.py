"""The web view's /metrics after a known workload on Ray: runs by workflow and status, step
attempts, the Runner's workers and the Store actor's commits."""

from __future__ import annotations

import re

import httpx
import pytest

import runner
from runner.client import Client

pytestmark = pytest.mark.ray


def value(text: str, line_start: str) -> float:
    match = re.search(rf"^{re.escape(line_start)} (\S+)$", text, re.M)
    assert match, f"{line_start} not in:\n{text}"
    return float(match.group(1))


def test_metrics_show_the_workload(client: Client) -> None:
    wf = runner.Workflow("measured")

    @wf.step()
    def check(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x

    handles = client.submit_many(wf, [1, 2, -1])
    for handle in handles[:2]:
        handle.result(timeout=90)
    with pytest.raises(ValueError):
        handles[2].result(timeout=90)
    with client.ui(port=0) as server:
        text = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert value(text, 'runner_runs{workflow="measured",status="completed"}') == 2
    assert value(text, 'runner_runs{workflow="measured",status="failed"}') == 1
    assert value(text, 'runner_events{kind="StepStarted"}') == 3
    assert value(text, "runner_workers") >= 1
    assert value(text, "runner_store_commits_total") >= 1
