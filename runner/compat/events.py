"""Ray Workflows' event listeners, mapped onto native signals and timers.

Under Ray Workflows a step could wait for an event through a listener class
whose ``poll_for_event`` ran inside a task. Here a wait is the native
``wait_for(signal)``: the run suspends durably (holding no worker) until the
signal is sent (``ray_workflows.send_event`` or ``client.signal``), and the
signal's payload is the wait's value. Supported listeners:

- :class:`SignalListener` (also importable as ``HTTPListener``, the name of Ray
  Workflows' HTTP listener, which waited for an event by key):
  ``wait_for_event(SignalListener, "approved")`` or ``event_key="approved"``;
- :class:`TimerListener`: ``wait_for_event(TimerListener, unix_time)``, a durable
  timer until that time (``sleep(seconds)`` is the short form).

Any other listener class is refused with :class:`~runner.errors.InvalidArgument`:
its polling code would run outside the run's history, so nothing could
recover it. A wait and a sleep are Ray DAG nodes of marker functions, so they
bind into a DAG like any other node; the converter turns them into native
wait and sleep components.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from runner.errors import InvalidArgument


class EventListener:
    """Base of the listener types ``wait_for_event`` takes (as Ray Workflows' was)."""


class SignalListener(EventListener):
    """Wait for a named signal; the event is its payload."""


HTTPListener = SignalListener


class TimerListener(EventListener):
    """Wait until a unix time; the event is None."""


def _wait_for_signal(name: str) -> Any:
    """Marker: a durable wait, converted to a native wait_for; it cannot run as a plain Ray task."""
    raise InvalidArgument(
        f"waiting for event {name!r} needs the runner: run the DAG with ray_workflows.run(...), not .execute()"
    )


def _sleep_seconds(seconds: float) -> None:
    """Marker: a durable timer, converted to a native sleep (run as a plain Ray task, it just sleeps)."""
    time.sleep(seconds)


SIGNAL_WAIT = ray.remote(num_cpus=0)(_wait_for_signal)
TIMER = ray.remote(num_cpus=0)(_sleep_seconds)
SIGNAL_BODY = _wait_for_signal
TIMER_BODY = _sleep_seconds


def sleep_node(duration: float) -> Any:
    """The DAG node of ``sleep(duration)``."""
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
        raise InvalidArgument(f"sleep needs a number of seconds >= 0, got {duration!r}")
    return TIMER.bind(float(duration))


def wait_node(listener: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The DAG node of ``wait_for_event(listener, *args, **kwargs)``."""
    if not (isinstance(listener, type) and issubclass(listener, EventListener)):
        raise InvalidArgument(
            f"wait_for_event takes an event listener class, got {listener!r}; "
            "use ray_workflows.SignalListener (a named signal) or ray_workflows.TimerListener"
        )
    if listener is TimerListener:
        (until,) = _exactly_one(listener, args, kwargs, "timestamp")
        if isinstance(until, bool) or not isinstance(until, (int, float)):
            raise InvalidArgument(f"TimerListener takes a unix time in seconds, got {until!r}")
        return sleep_node(max(0.0, float(until) - time.time()))
    if listener is SignalListener:
        (name,) = _exactly_one(listener, args, kwargs, "event_key")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"a signal's name must be a non-empty string, got {name!r}")
        return SIGNAL_WAIT.bind(name)
    raise InvalidArgument(
        f"event listener {listener.__name__} is not supported: its poll_for_event would run outside the "
        "run's durable history. Wait for a named signal instead: "
        "wait_for_event(ray_workflows.SignalListener, 'name'), and have the event's source call "
        "ray_workflows.send_event(workflow_id, 'name', payload) (or client.signal)"
    )


def _exactly_one(listener: type, args: tuple[Any, ...], kwargs: dict[str, Any], keyword: str) -> tuple[Any]:
    values = list(args) + [kwargs[k] for k in kwargs if k == keyword]
    unknown = sorted(set(kwargs) - {keyword})
    if unknown or len(values) != 1:
        raise InvalidArgument(
            f"{listener.__name__} takes exactly one argument ({keyword}); got args {args!r} and kwargs {kwargs!r}"
        )
    return (values[0],)
