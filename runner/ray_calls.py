"""Ray calls from a driver (the client, the CLI), through actor restarts, in our own errors.

Every call a driver makes to a Runner or its Store actor is answered here,
and this is the one place where Ray's exceptions become ours:

- :func:`ray_get` is ``ray.get`` for one call: the callee's RunnerError is
  raised as itself; a lost actor (dead, restarting, unreachable), whether the
  one called or one it called in turn, is :class:`~runner.errors.RunnerUnavailable`;
  any other failure is a RunnerError that names it. No Ray type gets out.
- :func:`retrying` sends a call again while the actor restarts (the Runner
  and the Store actor restart in place after a crash), with a backoff, for at
  most :data:`RESTART_WAIT` seconds; then RunnerUnavailable with advice.
  Calls that are not safe to send twice pass ``settled``: asked before each
  resend, it says whether the first try already took effect.
- :class:`RunnerCalls` and :class:`StoreCalls` hold the handles and find them
  again after a restart (the Runner by its name, the Store actor through the
  Runner, which makes a new one when it restarts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import ray
from ray.exceptions import RayError, RayTaskError

from runner.errors import RunnerError, RunnerUnavailable
from runner.store_handle import StoreHandle

if TYPE_CHECKING:
    from ray import ObjectRef

T = TypeVar("T")

RESTART_WAIT = 60.0  # how long a call waits for a restarting actor (the store's lock, recovery) before giving up
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0
ADVICE = (
    "the Runner and its Store actor restart by themselves after a crash: call again in a moment; "
    "if this persists, check the cluster (`ray status`) or start a Runner with runner.connect()"
)


def ray_get(ref: ObjectRef[T]) -> T:
    """The answer of one Ray call, or our own error for its failure (see the module's docstring)."""
    try:
        answer: T = ray.get(ref)
    except RayTaskError as exc:
        cause = _root_cause(exc)
        if isinstance(cause, RunnerError):
            raise cause from None
        if isinstance(cause, RayError):  # the callee lost an actor it called: it restarts
            raise _unavailable(cause) from exc
        raise RunnerError(
            f"the Runner could not carry out this call ({type(cause).__name__}: {_first_line(cause)}); "
            "the chained error has its traceback: if it is not about your code or input, report it as a bug"
        ) from exc
    except RayError as exc:  # the actor called died, is restarting, or cannot be reached
        raise _unavailable(exc) from exc
    return answer


def retrying(
    send: Callable[[], ObjectRef[T]],
    *,
    refresh: Callable[[], None] = lambda: None,
    settled: Callable[[], T | None] | None = None,
    wait: float = RESTART_WAIT,
) -> T:
    """``send()``'s answer; while the actor is unavailable, ``refresh()`` the handle and send again,
    backing off, for up to ``wait`` seconds. ``settled``: for a call that is not safe to repeat,
    asked before each resend: an answer means the first try took effect, and it is returned."""
    deadline = time.monotonic() + wait
    delay = FIRST_BACKOFF
    while True:
        try:
            return ray_get(send())
        except RunnerUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise RunnerUnavailable(f"{exc} (no answer for {wait:g}s)") from exc.__cause__
        time.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF)
        refresh()
        if settled is not None:
            answer = settled()
            if answer is not None:
                return answer


class RunnerCalls:
    """Calls to one namespace's Runner. ``find()`` looks the Runner up by its name again
    (RunnerUnavailable if it is gone for good)."""

    def __init__(self, runner: Any, find: Callable[[], Any]) -> None:
        self._runner = runner
        self._find = find

    @property
    def handle(self) -> Any:
        """The Runner's actor handle (``.remote`` calls on it are not translated nor retried)."""
        return self._runner

    def call(self, send: Callable[[Any], ObjectRef[T]], *, settled: Callable[[], T | None] | None = None) -> T:
        """``send(runner)``'s answer, through Runner restarts, e.g. ``calls.call(lambda r: r.stats.remote())``."""
        return retrying(lambda: send(self._runner), refresh=self._refresh, settled=settled)

    def _refresh(self) -> None:
        self._runner = self._find()


class StoreCalls:
    """Calls to one Store actor, answered in this driver, through restarts.

    ``find``: gives the Store actor again (its Runner restarted and made a new
    one); None: the same actor is called again (it restarts in place)."""

    def __init__(self, store: StoreHandle, find: Callable[[], StoreHandle] | None = None) -> None:
        self._store = store
        self._find = find

    @property
    def handle(self) -> StoreHandle:
        return self._store

    def call(self, send: Callable[[StoreHandle], ObjectRef[T]]) -> T:
        """``send(handle)``'s answer, e.g. ``calls.call(lambda store: store.get_run(run_id))``."""
        return retrying(lambda: send(self._store), refresh=self._refresh)

    def _refresh(self) -> None:
        if self._find is not None:
            self._store = self._find()


def runner_store(runner: RunnerCalls) -> StoreHandle:
    """The Store actor a Runner holds (a new one once the Runner has restarted)."""
    return StoreHandle(runner.call(lambda r: r.store_handle.remote()))


def find_runner(name: str, namespace: str) -> Any:
    """The named Runner actor; RunnerUnavailable if none is running (it was stopped for good)."""
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        raise RunnerUnavailable(
            f"no Runner is running in namespace {namespace!r} (it was stopped); "
            "runner.connect() (or `runner start`) starts one, which resumes every unfinished run"
        ) from None


def _root_cause(exc: RayTaskError) -> BaseException:
    """The error a chain of Ray task errors stands for (a callee's callee raised it). Ray may hand
    an error over as a class that is both a RayTaskError and the error's own: its ``cause`` is the
    error as itself."""
    cause: BaseException = exc
    while isinstance(cause, RayTaskError) and cause.cause is not None:
        cause = cause.cause
    return cause


def _unavailable(exc: BaseException) -> RunnerUnavailable:
    return RunnerUnavailable(
        f"the Runner or its Store actor is unavailable ({type(exc).__name__}: {_first_line(exc)}); {ADVICE}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
