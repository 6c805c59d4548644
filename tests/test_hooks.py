"""Hooks: which committed events call which hook, and a hook that raises never breaks anything."""

from __future__ import annotations

import logging

import pytest

from runner import HookEvent, HookKind, Hooks, Workflow
from runner.errors import DefinitionError
from runner.hooks import fire, hook_events
from runner.testing.inprocess import InProcessRun


def flaky_workflow() -> Workflow:
    wf = Workflow("flaky")
    calls = {"n": 0}

    def sometimes(x: int) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first try fails")
        return x + 1

    a = wf.step(sometimes, name="sometimes", retries=2, backoff="none")
    wf.step(lambda x: x * 2, name="double", after=a)
    return wf


def test_each_event_calls_its_hook_in_order() -> None:
    run = InProcessRun(flaky_workflow(), 1, run_id="r1")
    run.run()
    kinds = [(e.kind, e.node) for e in hook_events("flaky", run.log)]
    assert kinds == [
        (HookKind.RUN_START, None),
        (HookKind.STEP_START, "sometimes"),
        (HookKind.STEP_RETRIED, "sometimes"),
        (HookKind.STEP_START, "sometimes"),
        (HookKind.STEP_END, "sometimes"),
        (HookKind.STEP_START, "double"),
        (HookKind.STEP_END, "double"),
        (HookKind.RUN_END, None),
    ]
    end = hook_events("flaky", run.log)[-1]
    assert (end.status, end.run_id, end.workflow) == ("completed", "r1", "flaky")


def test_a_failed_step_and_run_carry_the_error() -> None:
    wf = Workflow("boom")

    def explode(x: int) -> int:
        raise ValueError("no")

    wf.step(explode, name="explode")
    run = InProcessRun(wf, 1)
    run.run()
    events = hook_events("boom", run.log)
    failed = [e for e in events if e.kind is HookKind.STEP_FAILED]
    assert [(e.node, e.error.type if e.error else None) for e in failed] == [("explode", "ValueError")]
    assert events[-1].kind is HookKind.RUN_END and events[-1].status == "failed" and events[-1].node == "explode"


def test_a_hook_that_raises_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[HookEvent] = []

    def broken(event: HookEvent) -> None:
        raise RuntimeError("hook bug")

    run = InProcessRun(flaky_workflow(), 1)
    run.run()
    hooks = Hooks(on_step_start=(broken, seen.append), on_run_end=seen.append)
    with caplog.at_level(logging.ERROR, logger="runner.hooks"):
        calls = fire(hooks, "flaky", run.log)
    assert calls == 7  # three step starts, twice each, and the run's end
    assert [e.kind for e in seen].count(HookKind.STEP_START) == 3 and seen[-1].kind is HookKind.RUN_END
    assert [r.exc_info[1].args for r in caplog.records if r.exc_info] == [("hook bug",)] * 3


def test_workflow_hooks_add_up_and_travel_with_the_definition() -> None:
    from runner import serialization

    wf = flaky_workflow()
    assert not wf.hooks
    first: list[HookEvent] = []
    wf.add_hooks(Hooks(on_run_end=first.append))
    wf.add_hooks(Hooks(on_run_end=print))
    assert len(wf.hooks.of(HookKind.RUN_END)) == 2
    assert len(serialization.loads(serialization.dumps(wf)).hooks.of(HookKind.RUN_END)) == 2
    with pytest.raises(DefinitionError, match="runner.Hooks"):
        wf.add_hooks(print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_step_end"):
        Hooks(on_step_end=42)  # type: ignore[arg-type]
