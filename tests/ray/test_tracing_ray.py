"""Traces on Ray: the submit's context reaches step tasks and the worker, which record their spans
through a provider each Ray process sets at start (runtime_env ``worker_process_setup_hook``).

The module starts a Ray instance of its own (a job's runtime_env is set when Ray starts) and
shuts it down at its end; the next module starts the shared one again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from ray_support import kill_runner

import runner
from runner import Workflow, connect
from runner.testing import span_file
from runner.testing.polling import eventually


@pytest.fixture(scope="module")
def span_path(faults_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("spans") / "spans.jsonl"
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        address="local",
        num_cpus=4,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
        namespace="ray-runner-tests",
        runtime_env=span_file.runtime_env(path),
    )
    yield path
    ray.shutdown()


def flaky(x: int) -> int:
    if runner.context().attempt == 1:
        raise RuntimeError("first attempt fails")
    return x + 1


def test_step_spans_are_children_of_the_submit_span(
    span_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = TracerProvider()  # the driver's: only its submit span, nothing exported
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    client = connect(store="duckdb:///" + str(tmp_path / "runs.duckdb"), namespace=namespace)
    try:
        wf = Workflow("traced")
        wf.step(lambda x: x * 2, name="double", after=wf.step(flaky, name="flaky", retries=1, backoff="none"))
        with provider.get_tracer("app").start_as_current_span("submit") as submit:
            handle = client.submit(wf, 1)
        assert handle.result(timeout=60) == 4

        def spans() -> list[dict]:
            found = span_file.read_spans(span_path)
            return found if sum(s["name"] in ("runner.step", "runner.run") for s in found) >= 4 else []

        found = eventually(spans, timeout=30, what="3 step spans and a run span")
    finally:
        kill_runner(client)
    context = submit.get_span_context()
    steps = [s for s in found if s["name"] == "runner.step"]
    assert [(s["attributes"]["runner.step"], s["attributes"]["runner.attempt"]) for s in steps] == [
        ("flaky", 1),
        ("flaky", 2),
        ("double", 1),
    ]
    assert steps[0]["status"]["status_code"] == "ERROR" and steps[1]["status"]["status_code"] == "UNSET"
    [run] = [s for s in found if s["name"] == "runner.run"]
    for span in [*steps, run]:
        assert span["parent_id"] == f"0x{context.span_id:016x}"
        assert span["context"]["trace_id"] == f"0x{context.trace_id:032x}"
        assert span["attributes"]["runner.run_id"] == handle.run_id
        assert span["attributes"]["runner.worker"]
    assert {s["attributes"]["runner.node_id"] for s in steps} == {ray.get_runtime_context().get_node_id()}
