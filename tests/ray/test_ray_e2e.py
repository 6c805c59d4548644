"""End to end on a real Ray instance: results, the event log, failures, retries and resources."""

from __future__ import annotations

import collections
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from ray_support import assert_gapless, facts

import runner
from runner.events import MapExpanded, RunCompleted, RunSubmitted, StepFailed, StepSkipped, StepStarted

pytestmark = pytest.mark.ray

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"
ORDER = {
    "id": "A-1",
    "lines": [{"sku": "pen", "qty": 3, "unit_price": 1.5}, {"sku": "ink", "qty": 2, "unit_price": 4.0}],
}


def _load_quickstart() -> Any:
    name = "ray_runner_quickstart_example"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, QUICKSTART)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def test_quickstart_end_to_end(shared_client: runner.Client) -> None:
    client = shared_client
    quickstart = _load_quickstart()
    handle = client.submit(quickstart.orders, ORDER)

    result = handle.result(timeout=120)

    assert result == {"charged": 12.5, "in_stock": True, "attempts": 3, "review": None}
    assert handle.status() is runner.RunStatus.COMPLETED
    history = handle.history()
    assert_gapless(history)
    assert isinstance(history[0].event, RunSubmitted)
    assert isinstance(history[-1].event, RunCompleted)
    produced = facts(history)
    # exactly one FactProduced per executed node and per map item
    assert len(produced) == len(set(produced))
    assert set(produced) == {
        ("validate", None),
        ("lines", None),
        ("price_line", 0),
        ("price_line", 1),
        ("subtotal", None),
        ("check_stock", None),
        ("charge", None),
        ("receipt", None),
    }
    skipped = [s.event.node for s in history if isinstance(s.event, StepSkipped)]
    assert skipped == ["manual_review"]  # the rule did not fire for a small order
    expansions = [s.event for s in history if isinstance(s.event, MapExpanded)]
    assert [(e.node, e.count) for e in expansions] == [("price_line", 2)]
    # the flaky payment failed twice, then succeeded on its third attempt
    charge_failures = [s.event.attempt for s in history if isinstance(s.event, StepFailed) and s.event.node == "charge"]
    assert charge_failures == [1, 2]
    starts = collections.Counter((s.event.node, s.event.item) for s in history if isinstance(s.event, StepStarted))
    assert starts[("charge", None)] == 3
    assert all(count == 1 for key, count in starts.items() if key != ("charge", None))


# ------------------------------------------------------------ failures, retries
def _failing_workflow() -> runner.Workflow:
    wf = runner.Workflow("fails")

    @wf.step()
    def load(x: int) -> int:
        return x + 1

    @wf.step(after=load)
    def check(x: int) -> int:
        raise ValueError(f"bad value {x}")

    return wf


def test_failed_step_raises_its_own_exception(shared_client: runner.Client) -> None:
    client = shared_client
    handle = client.submit(_failing_workflow(), 41)

    with pytest.raises(ValueError, match="bad value 42"):
        handle.result(timeout=60)

    assert handle.status() is runner.RunStatus.FAILED
    last = handle.history()[-1].event
    assert type(last).__name__ == "RunFailed"
    assert last.node == "check"


def _flaky_workflow() -> runner.Workflow:
    wf = runner.Workflow("flaky")

    @wf.step(retries=3, backoff="linear", backoff_base=0.01)
    def flaky(x: int) -> dict:
        attempt = runner.context().attempt
        if attempt < 3:
            raise ConnectionError(f"attempt {attempt} failed")
        return {"x": x, "attempt": attempt}

    return wf


def test_retried_flaky_step_succeeds(shared_client: runner.Client) -> None:
    client = shared_client
    handle = client.submit(_flaky_workflow(), 7)

    assert handle.result(timeout=60) == {"x": 7, "attempt": 3}

    history = handle.history()
    failures = [s.event for s in history if isinstance(s.event, StepFailed)]
    assert [f.attempt for f in failures] == [1, 2]
    assert all(f.error.type.endswith("ConnectionError") for f in failures)
    assert facts(history) == [("flaky", None)]


def _resources_workflow() -> runner.Workflow:
    wf = runner.Workflow("resources")

    @wf.step(num_cpus=1)
    def one_cpu(x: int) -> float:
        import ray

        return ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)

    @wf.step(num_cpus=0.5)
    def half_cpu(x: int) -> float:
        import ray

        return ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)

    @wf.step(after=[one_cpu, half_cpu], inline=True)
    def both(a: float, b: float) -> list:
        return [a, b]

    return wf


def test_step_resources_are_honoured(shared_client: runner.Client) -> None:
    client = shared_client
    handle = client.submit(_resources_workflow(), 0)

    assert handle.result(timeout=60) == [1.0, 0.5]


# ---------------------------------------------------------------- max_workers
def _short_workflow() -> runner.Workflow:
    wf = runner.Workflow("short")

    @wf.step()
    def first(x: int) -> int:
        return x * 2

    @wf.step(after=first)
    def second(x: int) -> int:
        return x + 1

    return wf


def test_max_workers_caps_live_workers_and_keeps_submit_order(make_client: Any) -> None:
    client = make_client(max_workers=2)
    workflow = _short_workflow()

    handles = [client.submit(workflow, i) for i in range(10)]

    assert [h.result(timeout=120) for h in handles] == [i * 2 + 1 for i in range(10)]
    assert all(h.status() is runner.RunStatus.COMPLETED for h in handles)
    stats = client.stats()
    assert stats.peak_workers <= 2
    assert stats.live_workers <= 2
    assert stats.workers_started <= 2  # idle workers are reused, not replaced
    assert stats.start_order == tuple(h.run_id for h in handles)
