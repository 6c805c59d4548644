"""Side effects for crash tests: steps that count their executions or wait on a gate file.

These run inside Ray task processes, so they live in an installed module that
every worker can import (a test module's own helpers would have to be pickled
by value with each step).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def mark(log: str | os.PathLike[str], name: str) -> None:
    """Append one line ``name`` to ``log``: a record that a step ran (appends are atomic for short lines)."""
    with open(log, "a") as f:
        f.write(name + "\n")


def executions(log: str | os.PathLike[str]) -> list[str]:
    """The names ``mark`` recorded, in order ([] if nothing ran)."""
    path = Path(log)
    return path.read_text().splitlines() if path.exists() else []


def wait_for_file(path: str | os.PathLike[str], timeout: float = 90.0) -> None:
    """Block until ``path`` exists (a gate the test opens); TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {path} was never opened")
        time.sleep(0.02)


def wait_for_marks(log: str | os.PathLike[str], count: int, timeout: float = 90.0) -> None:
    """Block until ``log`` holds ``count`` lines (a barrier: ``count`` steps run at the same time);
    TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while len(executions(log)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(executions(log))} of {count} steps reached the barrier {log}")
        time.sleep(0.02)
