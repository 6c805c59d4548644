"""Waiting on Ray calls in a driver (the client, the CLI).

:func:`ray_get` is ``ray.get`` that raises our own errors as themselves, not
wrapped in ``RayTaskError``. :class:`StoreCalls` calls a Store actor through
its typed :class:`~runner.store_handle.StoreHandle` and, when the actor is
gone because its Runner restarted, finds the new one and calls it once more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import ray
from ray.exceptions import RayActorError, RayTaskError

from runner.errors import RunnerError
from runner.store_handle import StoreHandle

if TYPE_CHECKING:
    from ray import ObjectRef

T = TypeVar("T")


def ray_get(ref: ObjectRef[T]) -> T:
    """The answer of a Ray call; a RunnerError raised by the callee is raised here as itself."""
    try:
        answer: T = ray.get(ref)
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, RunnerError):
            raise cause from None
        raise
    return answer


class StoreCalls:
    """Calls to one Store actor, answered in this driver.

    ``find``: asked for the Store actor again when it is gone (the Runner that
    owns it restarted and made a new one); None: the error is raised."""

    def __init__(self, store: StoreHandle, find: Callable[[], StoreHandle] | None = None) -> None:
        self._store = store
        self._find = find

    @property
    def handle(self) -> StoreHandle:
        return self._store

    def call(self, send: Callable[[StoreHandle], ObjectRef[T]]) -> T:
        """``send(handle)``'s answer, e.g. ``calls.call(lambda store: store.get_run(run_id))``."""
        try:
            return ray_get(send(self._store))
        except RayActorError:
            if self._find is None:
                raise
            self._store = self._find()
            return ray_get(send(self._store))


def runner_store(runner: Any) -> StoreHandle:
    """The Store actor a Runner actor holds (a new one once the Runner has restarted)."""
    return StoreHandle(ray_get(runner.store_handle.remote()))
