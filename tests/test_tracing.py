"""Traces: a span per step attempt and one per run, children of the submit's span; nothing without a provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from runner import Workflow
from runner.cycle import plan_cycle
from runner.events import RunSubmitted
from runner.serialization import decode_event, encode_event
from runner.testing.inprocess import InProcessRun
from runner.tracing import NO_SPAN, SpanAttribute, current_context, step_span


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An application provider exporting to memory, seen by the code as the global one (the
    global provider can be set only once per process, so it is patched in for the test)."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield spans
    provider.shutdown()


def flaky_workflow() -> Workflow:
    wf = Workflow("flaky")
    calls = {"n": 0}

    def sometimes(x: int) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first try fails")
        return x + 1

    a = wf.step(sometimes, name="sometimes", retries=2, backoff="none")
    wf.map(lambda x: x * 2, name="double", after=wf.step(lambda x: [x, x + 1], name="pair", after=a))
    return wf


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_step_attempts_and_the_run_are_children_of_the_submit_span(exporter: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer_provider().get_tracer("app")
    with tracer.start_as_current_span("submit") as submit:
        run = InProcessRun(flaky_workflow(), 1, run_id="r1", now=100.0)
    run.run()
    spans = exporter.get_finished_spans()
    steps = by_name(spans, "runner.step")
    attrs = [
        (s.attributes[SpanAttribute.STEP], s.attributes[SpanAttribute.ATTEMPT], s.attributes.get(SpanAttribute.ITEM))
        for s in steps
        if s.attributes
    ]
    assert attrs == [
        ("sometimes", 1, None),
        ("sometimes", 2, None),
        ("pair", 1, None),
        ("double", 1, 0),
        ("double", 1, 1),
    ]
    submit_context = submit.get_span_context()
    for span in steps:
        assert span.parent is not None and span.parent.span_id == submit_context.span_id
        assert span.context is not None and span.context.trace_id == submit_context.trace_id
        assert span.attributes is not None
        assert span.attributes[SpanAttribute.RUN_ID] == "r1"
        assert span.attributes[SpanAttribute.WORKFLOW] == "flaky"
        assert span.attributes[SpanAttribute.WORKER] == "in-process"
    assert [s.status.status_code for s in steps[:2]] == [StatusCode.ERROR, StatusCode.UNSET]
    assert [e.name for e in steps[0].events] == ["exception"]
    [run_span] = by_name(spans, "runner.run")
    assert run_span.parent is not None and run_span.parent.span_id == submit_context.span_id
    assert run_span.attributes is not None and run_span.attributes[SpanAttribute.STATUS] == "completed"
    assert run_span.start_time == 100 * 10**9  # the submit's time, not the span's recording


def test_a_failed_run_has_an_error_span_and_user_spans_nest_in_the_step(exporter: InMemorySpanExporter) -> None:
    wf = Workflow("boom")

    def explode(x: int) -> int:
        with trace.get_tracer_provider().get_tracer("app").start_as_current_span("inside"):
            raise ValueError("no")

    wf.step(explode, name="explode")
    InProcessRun(wf, 1).run()  # no submit span: the step's span is a root
    spans = exporter.get_finished_spans()
    [inside], [step], [run] = by_name(spans, "inside"), by_name(spans, "runner.step"), by_name(spans, "runner.run")
    assert step.parent is None and inside.parent is not None and inside.parent.span_id == step.context.span_id
    assert step.status.status_code is StatusCode.ERROR and "ValueError: no" in (step.status.description or "")
    assert run.status.status_code is StatusCode.ERROR


def test_without_a_provider_nothing_is_traced() -> None:
    assert current_context() is None
    run = InProcessRun(flaky_workflow(), 1)
    assert run.state.trace_context is None
    [task] = plan_cycle(run.state, 0.0).tasks
    assert step_span("r", "flaky", task, None) is NO_SPAN


def test_the_trace_context_is_stored_with_the_run() -> None:
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    event = RunSubmitted(workflow="w", input=1, definition_hash="h", trace_context=headers)
    assert decode_event(*encode_event(event)) == event
    old = RunSubmitted(workflow="w", input=1, definition_hash="h")
    assert old.trace_context is None and "trace_context" in encode_event(old)[1]


def test_without_the_api_nothing_is_traced(monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.tracing as tracing

    monkeypatch.setattr(tracing, "_api", None)
    monkeypatch.setattr(tracing, "_api_missing", True)  # as if opentelemetry-api were not installed
    assert tracing.current_context() is None and tracing.tracer() is None
    assert InProcessRun(flaky_workflow(), 1).run().status == "completed"
