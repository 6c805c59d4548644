"""OpenTelemetry traces: a span for each step attempt and one for each run, when the application traces.

Optional (``pip install 'ray-runner[otel]'``, which brings ``opentelemetry-api``). The
application's TracerProvider is used as it is (``opentelemetry.trace.get_tracer_provider()``);
this module never sets or replaces one. In a process where the API is not installed or no
provider is set, every function here returns at once and nothing is recorded.

How the context flows: ``submit`` takes the current context (its active span) and stores it,
as W3C headers (``traceparent``, ``tracestate``, through the application's propagator), in the
run's first event (``RunSubmitted.trace_context``). The run's history is what every process that
drives or runs it reads, on any node and after any restart, so each of them finds the same parent
there: the worker hands it to the step tasks it dispatches with a :class:`StepTrace`. Child runs
and the successors of continue-as-new keep their parent's context.

Spans (attributes under ``runner.``, see :class:`SpanAttribute`):

- ``runner.step``: one per step attempt, started where the step runs (a Ray task's process, the
  worker for an inline step, or the in-process runtime) and ended with its outcome: status ERROR
  with the exception recorded when the attempt failed. It is current while the step's code runs,
  so the step's own spans are its children. Parent: the submit's span.
- ``runner.run``: recorded once a worker has committed the run's end (completed, failed,
  cancelled, continued as new), from the submit's time to the end's. Parent: the submit's span;
  step spans are its siblings, not its children: no process lives as long as a run (a run
  outlives workers and drivers), so no process can hold its span open, and it is written
  after the fact with the run's own times. A run ended by the Runner while no worker held it (a
  cancel of a waiting run) has no run span.

Ray's processes (Worker actors, step tasks) need a provider of their own. ``RUNNER_TRACING_SETUP``
(``package.module:function``) in a process's environment names a function this module calls once
in that process, before its first span, to set one: put it in the runtime_env's ``env_vars`` of
the job that starts the Runner (its actors and their tasks inherit it) or in the environment of
``ray start`` on each node. Ray's own ``worker_process_setup_hook`` (job-level) works as well.

No Ray here (the Ray node id is given by the caller).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any

from runner.events import ErrorInfo, RunCancelled, RunCompleted, RunContinuedAsNew, RunFailed, StoredEvent
from runner.planning import Task
from runner.vocabulary import Vocabulary

log = logging.getLogger("runner.tracing")

TRACER_NAME = "ray-runner"
SETUP_ENV_VAR = "RUNNER_TRACING_SETUP"  # package.module:function, called once per process to set a provider


class SpanName(Vocabulary):
    STEP = "runner.step"
    RUN = "runner.run"


class SpanAttribute(Vocabulary):
    RUN_ID = "runner.run_id"
    WORKFLOW = "runner.workflow"
    STEP = "runner.step"
    ITEM = "runner.item"  # a map item's index
    ATTEMPT = "runner.attempt"
    WORKER = "runner.worker"  # the worker actor that dispatched the attempt or drove the run
    NODE_ID = "runner.node_id"  # the Ray node the attempt ran on
    STATUS = "runner.status"  # the run's end: completed, failed, cancelled or continued


@dataclass(frozen=True)
class StepTrace:
    """What a step task is given to trace its attempt: the run's trace context and its worker."""

    context: Mapping[str, str] | None
    worker: str


_ENDS = {RunCompleted: "completed", RunFailed: "failed", RunCancelled: "cancelled", RunContinuedAsNew: "continued"}
_api: ModuleType | None = None
_api_missing = False
_tracers: tuple[object, Any] | None = None  # (provider, its tracer): this process's, made on first use
_setup_done = False


def _trace_api() -> ModuleType | None:
    """``opentelemetry.trace``, or None when the extra is not installed (looked up once)."""
    global _api, _api_missing
    if _api is None and not _api_missing:
        try:
            from opentelemetry import trace
        except ImportError:
            _api_missing = True
            return None
        _api = trace
    return _api


def _run_setup() -> None:
    """Call the function ``RUNNER_TRACING_SETUP`` names, once per process (if it is set)."""
    global _setup_done
    _setup_done = True
    target = os.environ.get(SETUP_ENV_VAR)
    if not target:
        return
    module, _, name = target.partition(":")
    try:
        getattr(importlib.import_module(module), name)()
    except Exception:
        log.warning("%s=%r: the setup failed; no traces from this process", SETUP_ENV_VAR, target, exc_info=True)


def tracer() -> Any:
    """This process's tracer, or None when tracing is off here (no API, or no provider set)."""
    global _tracers
    if not _setup_done:
        _run_setup()
    api = _trace_api()
    if api is None:
        return None
    provider = api.get_tracer_provider()
    if isinstance(provider, (api.ProxyTracerProvider, api.NoOpTracerProvider)):
        return None  # the application set none: spans would go nowhere
    if _tracers is None or _tracers[0] is not provider:
        _tracers = (provider, provider.get_tracer(TRACER_NAME))
    return _tracers[1]


def current_context() -> dict[str, str] | None:
    """The caller's trace context as W3C headers, for a new run (None: no span is active)."""
    api = _trace_api()
    if api is None or not api.get_current_span().get_span_context().is_valid:
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def _parent(context: Mapping[str, str] | None) -> Any:
    if not context:
        return None
    from opentelemetry import propagate

    return propagate.extract(dict(context))


def _nanos(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


class StepSpan:
    """An attempt's span, current while the ``with`` block runs (nothing when tracing is off).
    :meth:`failed` marks the attempt failed; leaving the block ends the span."""

    def __init__(self, span: Any = None) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> StepSpan:
        if self._span is not None:
            from opentelemetry import context

            assert _api is not None
            self._token = context.attach(_api.set_span_in_context(self._span))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._span is None:
            return
        from opentelemetry import context

        if exc is not None:
            self.failed(exc)
        context.detach(self._token)  # type: ignore[arg-type]
        self._span.end()

    def failed(self, exc: BaseException | None = None, error: ErrorInfo | None = None) -> None:
        """The attempt failed with ``exc`` (recorded on the span), or with ``error`` when the
        exception itself is not at hand (a lost task)."""
        if self._span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        if exc is not None:
            self._span.record_exception(exc)
            message = f"{type(exc).__name__}: {exc}"
        else:
            message = "" if error is None else f"{error.type}: {error.message}"
        self._span.set_status(Status(StatusCode.ERROR, message))


NO_SPAN = StepSpan()


def step_span(
    run_id: str,
    workflow: str,
    task: Task,
    trace: StepTrace | None,
    node_id: Callable[[], str | None] = lambda: None,
) -> StepSpan:
    """The span of ``task``'s attempt (use it as ``with step_span(...) as span:``): a child of the
    run's trace context in ``trace``, a root span when the run has none."""
    tracer_ = tracer()
    if tracer_ is None:
        return NO_SPAN
    try:
        attributes: dict[str, str | int] = {
            SpanAttribute.RUN_ID.value: run_id,
            SpanAttribute.WORKFLOW.value: workflow,
            SpanAttribute.STEP.value: task.node,
            SpanAttribute.ATTEMPT.value: task.attempt,
        }
        if task.item is not None:
            attributes[SpanAttribute.ITEM.value] = task.item
        if trace is not None:
            attributes[SpanAttribute.WORKER.value] = trace.worker
        node = node_id()
        if node:
            attributes[SpanAttribute.NODE_ID.value] = node
        parent = _parent(trace.context if trace is not None else None)
        return StepSpan(tracer_.start_span(SpanName.STEP.value, context=parent, attributes=attributes))
    except Exception:  # tracing never breaks a step
        log.warning("starting the span of step %s of run %s failed", task.node, run_id, exc_info=True)
        return NO_SPAN


def run_spans(
    run_id: str,
    workflow: str,
    submitted_at: float | None,
    context: Mapping[str, str] | None,
    committed: Iterable[StoredEvent],
    worker: str,
) -> int:
    """Record a run span for each end of the run among ``committed`` (events just appended).
    Returns how many were recorded."""
    ends = [stored.event for stored in committed if type(stored.event) in _ENDS]
    if not ends:
        return 0
    tracer_ = tracer()
    if tracer_ is None:
        return 0
    recorded = 0
    for end in ends:
        try:
            status = _ENDS[type(end)]
            span = tracer_.start_span(
                SpanName.RUN.value,
                context=_parent(context),
                start_time=_nanos(end.at if submitted_at is None else submitted_at),
                attributes={
                    SpanAttribute.RUN_ID.value: run_id,
                    SpanAttribute.WORKFLOW.value: workflow,
                    SpanAttribute.WORKER.value: worker,
                    SpanAttribute.STATUS.value: status,
                },
            )
            if isinstance(end, RunFailed):
                from opentelemetry.trace import Status, StatusCode

                span.set_status(Status(StatusCode.ERROR, f"{end.error.type}: {end.error.message}"))
            span.end(end_time=_nanos(end.at))
            recorded += 1
        except Exception:
            log.warning("recording the span of run %s failed", run_id, exc_info=True)
    return recorded
