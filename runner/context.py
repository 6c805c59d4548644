"""``runner.context()``: what a running step knows about itself.

The runtime that executes a step installs a :class:`StepContext` for the
duration of the call (the Ray task wrapper in production, the in-process
runtime in tests); user code only reads it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping

from runner.errors import RunnerError
from runner.metadata import JSONValue, Metadata, check_metadata


class StepContext:
    """Who is running: run id, step name, attempt (1-based) and map item.

    ``idempotency_key`` is the same for every attempt of the same step with
    the same inputs (``run_id:step[:item]:input-hash``): pass it to external
    systems so that a step that runs again does not repeat a side effect.
    It is computed on first use.

    ``set_metadata(key=value, ...)`` adds JSON values to the run's metadata (what
    ``RunHandle.metadata()`` returns): they are recorded with the attempt's
    outcome, in the same append, and a later value for a key replaces an earlier one.
    """

    __slots__ = ("run_id", "step", "attempt", "item", "_key", "_make_key", "_metadata")

    def __init__(self, *, run_id: str, step: str, attempt: int, item: int | None, make_key: Callable[[], str]) -> None:
        self.run_id = run_id
        self.step = step
        self.attempt = attempt
        self.item = item
        self._make_key = make_key
        self._key: str | None = None
        self._metadata: Metadata = {}

    @property
    def idempotency_key(self) -> str:
        if self._key is None:
            self._key = self._make_key()
        return self._key

    def set_metadata(self, values: Mapping[str, JSONValue] | None = None, /, **more: JSONValue) -> None:
        """Add ``values`` and ``more`` (JSON values) to the run's metadata; InvalidArgument names
        a value JSON cannot hold. Recorded when the attempt ends (succeeded or failed)."""
        added = check_metadata(values, "set_metadata values")
        added.update(check_metadata(more, "set_metadata"))
        self._metadata.update(added)

    @property
    def metadata(self) -> Metadata:
        """What this attempt added so far (a copy)."""
        return dict(self._metadata)

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
