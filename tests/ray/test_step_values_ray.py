"""On Ray: ObjectRefs in a run's input or a step's result are recorded as their values, and
catch_exceptions hands a step's exception to the step downstream."""

from __future__ import annotations

from typing import Any

import pytest
import ray

import runner
from runner.client import Client
from runner.events import FactProduced, RunSubmitted

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 90


def test_refs_are_stored_as_values_and_caught_exceptions_flow_downstream(shared_client: Client) -> None:
    wf = runner.Workflow("values")

    @wf.step()
    def total(order: dict) -> Any:
        return ray.put(order["base"] + sum(order["extras"]))  # a ref returned: its value is recorded

    @wf.step(after=total, catch_exceptions=True, retries=1, backoff="none", retry_exceptions=[ConnectionError])
    def check(amount: int) -> int:
        raise ValueError(f"amount {amount} over the limit")

    @wf.step(after=[total, check])
    def report(amount: int, checked: tuple[Any, BaseException | None]) -> str:
        value, error = checked
        return f"{amount}: {type(error).__name__}: {error}" if error is not None else f"{amount}: {value}"

    client = shared_client
    order = {"base": ray.put(10), "extras": [ray.put(1), ray.put(2)]}
    run = client.submit(wf, order)
    assert run.result(timeout=RESULT_TIMEOUT) == "13: ValueError: amount 13 over the limit"

    events = [s.event for s in run.history()]
    submitted = events[0]
    assert isinstance(submitted, RunSubmitted) and submitted.input == {"base": 10, "extras": [1, 2]}
    facts = {e.node: e for e in events if isinstance(e, FactProduced)}
    assert facts["total"].value == 13
    assert facts["check"].attempt == 1  # ValueError is not among retry_exceptions: caught at once
    value, error = facts["check"].value
    assert value is None and isinstance(error, ValueError)
