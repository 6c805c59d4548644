"""``runner.context()``: what a running step knows about itself.

The runtime that executes a step installs a :class:`StepContext` for the
duration of the call (the Ray task wrapper in production, the in-process
runtime in tests); user code only reads it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

from runner.errors import RunnerError


class StepContext:
    """Who is running: run id, step name, attempt (1-based) and map item.

    ``idempotency_key`` is the same for every attempt of the same step with
    the same inputs (``run_id:step[:item]:input-hash``): pass it to external
    systems so that a step that runs again does not repeat a side effect.
    It is computed on first use.
    """

    __slots__ = ("run_id", "step", "attempt", "item", "_key", "_make_key")

    def __init__(self, *, run_id: str, step: str, attempt: int, item: int | None, make_key: Callable[[], str]) -> None:
        self.run_id = run_id
        self.step = step
        self.attempt = attempt
        self.item = item
        self._make_key = make_key
        self._key: str | None = None

    @property
    def idempotency_key(self) -> str:
        if self._key is None:
            self._key = self._make_key()
        return self._key

    def __repr__(self) -> str:
        return f"StepContext(run_id={self.run_id!r}, step={self.step!r}, attempt={self.attempt}, item={self.item})"


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("runner_step_context", default=None)


def context() -> StepContext:
    """The context of the step running now; RunnerError outside a step."""
    current = _current.get()
    if current is None:
        raise RunnerError("runner.context() is only available inside a running step")
    return current


@contextlib.contextmanager
def installed(step_context: StepContext) -> Iterator[StepContext]:
    token = _current.set(step_context)
    try:
        yield step_context
    finally:
        _current.reset(token)
