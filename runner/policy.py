"""Step policies: retries, backoff, timeout, failure handling and Ray resources.

Pure values, validated when built. ``Policy.retry_delay`` is the only place
backoff is computed, so the worker and the tests agree on it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.errors import InvalidArgument, NonRetryableError

BACKOFFS = ("none", "linear", "exponential", "jitter")
ON_FAILURE = ("halt", "skip")


def _number(name: str, value: Any, *, minimum: float, allow_none: bool = False, strict: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{name} must be a number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        bound = f"greater than {minimum}" if strict else f"at least {minimum}"
        raise InvalidArgument(f"{name} must be {bound}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Policy:
    """How a step is retried and what happens after its last failure.

    ``retries`` extra attempts after the first; ``backoff`` one of none,
    linear, exponential, jitter (exponential with full jitter), starting at
    ``backoff_base`` seconds and capped at ``backoff_max``; ``timeout``
    seconds per attempt; ``on_failure`` "halt" fails the run, "skip" records
    the step as skipped so downstream sees it skipped; ``fallback`` is called
    with the step's inputs after the last failure and its value stands in.

    ``retry_exceptions``: which errors the step's code raises are retried (True: all, False:
    none, or a tuple of exception classes: those and their subclasses); NonRetryableError never
    is. ``catch_exceptions``: the step's value is ``(value, None)``, or ``(None, exception)``
    once its last attempt failed, so downstream handles the failure (no fallback then).

    ``deadline``: seconds from the step's first start that bound the step across all its
    attempts and retries (Temporal's schedule-to-close timeout): an attempt still running then
    is cancelled, no retry starts after it, and the step fails for good with DeadlineExceeded
    (its fallback, if any, still stands in; ``on_failure`` says what follows). ``timeout``
    bounds one attempt; ``deadline`` the whole step.
    """

    retries: int = 0
    backoff: str = "exponential"
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    timeout: float | None = None
    on_failure: str = "halt"
    fallback: Callable[..., Any] | None = None
    priority: int = 0
    irreversible: bool = False
    retry_exceptions: bool | tuple[type[BaseException], ...] = True
    catch_exceptions: bool = False
    deadline: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidArgument(f"retries must be a whole number >= 0, got {self.retries!r}")
        if self.backoff not in BACKOFFS:
            raise InvalidArgument(f"backoff must be one of {', '.join(BACKOFFS)}; got {self.backoff!r}")
        _number("backoff_base", self.backoff_base, minimum=0)
        _number("backoff_max", self.backoff_max, minimum=0)
        if self.backoff_max < self.backoff_base:
            raise InvalidArgument(
                f"backoff_max ({self.backoff_max}) must be at least backoff_base ({self.backoff_base})"
            )
        _number("timeout", self.timeout, minimum=0, allow_none=True, strict=True)
        _number("deadline", self.deadline, minimum=0, allow_none=True, strict=True)
        if self.on_failure not in ON_FAILURE:
            raise InvalidArgument(f"on_failure must be 'halt' or 'skip', got {self.on_failure!r}")
        if self.fallback is not None and not callable(self.fallback):
            raise InvalidArgument(f"fallback must be callable, got {self.fallback!r}")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise InvalidArgument(f"priority must be an int, got {self.priority!r}")
        if not isinstance(self.irreversible, bool):
            raise InvalidArgument(f"irreversible must be True or False, got {self.irreversible!r}")
        object.__setattr__(self, "retry_exceptions", _exception_classes(self.retry_exceptions))
        if not isinstance(self.catch_exceptions, bool):
            raise InvalidArgument(f"catch_exceptions must be True or False, got {self.catch_exceptions!r}")
        if self.catch_exceptions and self.fallback is not None:
            raise InvalidArgument("catch_exceptions=True passes the failure downstream; it takes no fallback")

    def retries_error(self, exc: BaseException) -> bool:
        """Whether an attempt that raised ``exc`` may be retried (attempts left aside)."""
        if isinstance(exc, NonRetryableError) or self.retry_exceptions is False:
            return False
        return self.retry_exceptions is True or isinstance(exc, self.retry_exceptions)

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def retry_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if self.backoff == "none":
            return 0.0
        if self.backoff == "linear":
            return min(self.backoff_max, self.backoff_base * attempt)
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        if self.backoff == "exponential":
            return ceiling
        return (rng or random).uniform(0.0, ceiling)

    def describe(self) -> tuple[Any, ...]:
        """A stable description for definition hashes (functions by name)."""
        fallback = None if self.fallback is None else getattr(self.fallback, "__qualname__", repr(self.fallback))
        return (
            (
                self.retries,
                self.backoff,
                self.backoff_base,
                self.backoff_max,
                self.timeout,
                self.on_failure,
                fallback,
                self.priority,
                self.irreversible,
            )
            + self._error_options()
            + self._deadline_option()
        )

    def _deadline_option(self) -> tuple[Any, ...]:
        """The deadline when one is set (so the hashes of definitions without one stay as they were)."""
        return () if self.deadline is None else (("deadline", self.deadline),)

    def _error_options(self) -> tuple[Any, ...]:
        """The error options when not the defaults (so the hashes of other definitions stay as they were)."""
        if self.retry_exceptions is True and not self.catch_exceptions:
            return ()
        kinds = self.retry_exceptions
        named = kinds if isinstance(kinds, bool) else tuple(f"{k.__module__}.{k.__qualname__}" for k in kinds)
        return (("retry_exceptions", named), ("catch_exceptions", self.catch_exceptions))


def _exception_classes(value: Any) -> bool | tuple[type[BaseException], ...]:
    """retry_exceptions as given: True, False, or exception classes (a list or tuple of them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, type) and issubclass(value, BaseException):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(k, type) and issubclass(k, BaseException) for k in value):
        return tuple(value)
    raise InvalidArgument(f"retry_exceptions must be True, False or a list of exception classes, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Resources:
    """The Ray resources one attempt of a step asks for."""

    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: int | None = None
    custom: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _number("num_cpus", self.num_cpus, minimum=0, allow_none=True)
        _number("num_gpus", self.num_gpus, minimum=0, allow_none=True)
        _number("memory", self.memory, minimum=0, allow_none=True)
        if not isinstance(self.custom, Mapping):
            raise InvalidArgument(f"resources must be a dict of name -> amount, got {self.custom!r}")
        for key, amount in self.custom.items():
            if not isinstance(key, str) or not key:
                raise InvalidArgument(f"resource names must be non-empty strings, got {key!r}")
            _number(f"resources[{key!r}]", amount, minimum=0)
        object.__setattr__(self, "custom", dict(self.custom))

    def ray_options(self) -> dict[str, Any]:
        """Keyword arguments for ``ray.remote(...).options``."""
        options: dict[str, Any] = {}
        if self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        if self.num_gpus is not None:
            options["num_gpus"] = self.num_gpus
        if self.memory is not None:
            options["memory"] = self.memory
        if self.custom:
            options["resources"] = dict(self.custom)
        return options

    def describe(self) -> tuple[Any, ...]:
        return (self.num_cpus, self.num_gpus, self.memory, tuple(sorted(self.custom.items())))
