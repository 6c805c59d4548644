"""Traces on Ray: the submit's context reaches the step tasks and the worker, which record their
spans through the provider each Ray process sets from ``RUNNER_TRACING_SETUP``.

The driver's part runs in a Ray task whose runtime_env carries that variable (as a job's would):
the Runner it starts, its actors and their step tasks inherit it, on the session's Ray instance."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import ray

import runner
from runner import Workflow, connect
from runner.testing import span_file
from runner.testing.polling import eventually

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the task below runs in a Ray worker


def flaky(x: int) -> int:
    if runner.context().attempt == 1:
        raise RuntimeError("first attempt fails")
    return x + 1


@ray.remote(max_retries=0)
def submit_traced(store: str, namespace: str, spans: str) -> dict[str, Any]:
    """Submit a run under a span and wait for its spans: (run id, the submit span's ids, the spans)."""
    from opentelemetry.sdk.trace import TracerProvider

    client = connect(store=store, namespace=namespace)
    try:
        wf = Workflow("traced")
        wf.step(lambda x: x * 2, name="double", after=wf.step(flaky, name="flaky", retries=1, backoff="none"))
        with TracerProvider().get_tracer("app").start_as_current_span("submit") as submit:
            handle = client.submit(wf, 1)
        assert handle.result(timeout=60) == 4

        def written() -> list[dict[str, Any]]:
            found = span_file.read_spans(Path(spans))
            return found if sum(s["name"] in ("runner.step", "runner.run") for s in found) >= 4 else []

        found = eventually(written, timeout=30, what="3 step spans and a run span")
        context = submit.get_span_context()
        return {"run_id": handle.run_id, "trace_id": context.trace_id, "span_id": context.span_id, "spans": found}
    finally:
        ray.kill(client.runner, no_restart=True)


def test_step_spans_are_children_of_the_submit_span(ray_instance: None, tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    store = "duckdb:///" + str(tmp_path / "runs.duckdb")
    task = submit_traced.options(runtime_env=span_file.runtime_env(spans))
    out = ray.get(task.remote(store, namespace, str(spans)), timeout=120)
    steps = [s for s in out["spans"] if s["name"] == "runner.step"]
    assert [(s["attributes"]["runner.step"], s["attributes"]["runner.attempt"]) for s in steps] == [
        ("flaky", 1),
        ("flaky", 2),
        ("double", 1),
    ]
    assert steps[0]["status"]["status_code"] == "ERROR" and steps[1]["status"]["status_code"] == "UNSET"
    [run] = [s for s in out["spans"] if s["name"] == "runner.run"]
    for span in [*steps, run]:
        assert span["parent_id"] == f"0x{out['span_id']:016x}"
        assert span["context"]["trace_id"] == f"0x{out['trace_id']:032x}"
        assert span["attributes"]["runner.run_id"] == out["run_id"]
        assert span["attributes"]["runner.worker"]
    assert {s["attributes"]["runner.node_id"] for s in steps} == {ray.get_runtime_context().get_node_id()}
