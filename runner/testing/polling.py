"""Waiting for state in tests without fixed sleeps: poll with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(fn: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """Call ``fn`` until it returns something truthy (returned) or ``timeout`` seconds pass (AssertionError).

    Exceptions raised by ``fn`` count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as exc:  # not ready yet
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}; last: {last!r}")
        time.sleep(interval)
