"""A step over its timeout: its Ray task is cancelled (its process killed), the attempt is recorded
as failed with StepTimeout, and the retry runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ray_support import alive, assert_gapless, eventually, lines

import runner
from runner.events import FactProduced, StepFailed
from runner.testing.sideeffects import mark as _mark
from runner.testing.sideeffects import wait_for_file as _wait_for_file

pytestmark = pytest.mark.ray


def test_a_step_over_its_timeout_is_cancelled_and_retried(shared_client: runner.Client, tmp_path: Path) -> None:
    client = shared_client
    log, never = str(tmp_path / "effects.log"), str(tmp_path / "never")
    wf = runner.Workflow("timeouts")

    # The deadline counts from dispatch, so it must cover a cold worker process's start on a busy machine.
    @wf.step(timeout=6.0, retries=1, backoff="none")
    def slow(x: int) -> int:
        attempt = runner.context().attempt
        _mark(log, f"attempt-{attempt}-pid-{os.getpid()}")
        if attempt == 1:
            _wait_for_file(never)  # hangs until cancelled
        return x * 3

    handle = client.submit(wf, 5)

    assert handle.result(timeout=60) == 15
    history = handle.history()
    assert_gapless(history)
    failed = [e.event for e in history if isinstance(e.event, StepFailed)]
    assert [(e.node, e.attempt) for e in failed] == [("slow", 1)]
    assert failed[0].error.type.endswith("StepTimeout") and "6s" in failed[0].error.message
    produced = [e.event for e in history if isinstance(e.event, FactProduced)]
    assert [(e.node, e.attempt, e.value) for e in produced] == [("slow", 2, 15)]
    first_pid = int(next(line for line in lines(log) if line.startswith("attempt-1-")).rsplit("-", 1)[1])
    eventually(lambda: not alive(first_pid), what="the timed-out attempt's process to be killed")
