"""Every example runs as the README says (``.venv/bin/python examples/NAME.py``) and prints what it
promises. Each starts a Ray of its own (~10-15 s on 2 cores): slow, so ``make chaos`` runs them;
``make test`` runs the quickstart (tests/ray/test_ray_e2e.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# what each example's output must contain: a new example must say what it prints here
PRINTS = {
    "approval.py": "ApprovalDecided(",
    "checkpoints.py": "on_complete",
    "child_runs.py": "runner show orders_with_billing-",
    "continuation_factorial.py": "continuations recorded",
    "continuation_subworkflow.py": "runner show checkout-",
    "continue_as_new.py": ": completed",
    "deadlines.py": "typo refused",
    "durable_sleep.py": "TimerFired",
    "fanout.py": "100/100 items",
    "metadata.py": "SELECT run_id, metadata",
    "queues.py": "at most: 4",
    "quickstart.py": "events: 25",
    "replay_fork.py": "reused: ['extract', 'transform']",
    "resume_failed.py": "RunReopened",
    "schedule.py": "report at",
}


def test_every_example_says_what_it_prints() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(PRINTS)


@pytest.mark.parametrize("name", sorted(PRINTS))
def test_the_example_runs_and_prints_what_it_promises(name: str, tmp_path: Path) -> None:
    # a Ray of its own, as on a user's laptop: connect() would join one it finds running on the
    # machine (another test's, or another example's when they run in parallel)
    env = os.environ | {"RAY_ADDRESS": "local"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert PRINTS[name] in done.stdout, done.stdout[-2000:]
