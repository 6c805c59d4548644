"""The fold (events -> state) and planning on top of it, on non-trivial graphs.

Two ways in: ``drive`` runs a workflow in process and gives the log it
recorded; hand-built logs (``runner.events.number``) pin exact situations,
including the ones the fold must refuse.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from runner import SKIPPED
from runner.errors import FoldError, NonRetryableError
from runner.events import (
    ErrorInfo,
    FactProduced,
    MapExpanded,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunPaused,
    RunResumed,
    RunSubmitted,
    RunSuspended,
    SignalReceived,
    StepFailed,
    StepSkipped,
    StepStarted,
    StoredEvent,
    TimerFired,
    TimerScheduled,
    kind_of,
    number,
)
from runner.serialization import exception_of
from runner.state import NOT_TAKEN, Task, WorkflowState
from runner.testing.inprocess import InProcessRun, drive
from runner.workflow import Workflow

RUN = "run-1"


# ------------------------------------------------------------------ helpers
def submitted(wf: Workflow, input: Any = None) -> RunSubmitted:
    return RunSubmitted(workflow=wf.name, input=input, definition_hash=wf.definition_hash(), at=0.0)


def started(node: str, attempt: int = 1, item: int | None = None, at: float = 0.0) -> StepStarted:
    return StepStarted(node=node, attempt=attempt, lease=1, item=item, at=at)


def produced(node: str, value: Any, attempt: int = 1, item: int | None = None, **kw: Any) -> FactProduced:
    return FactProduced(node=node, value=value, attempt=attempt, item=item, at=kw.pop("at", 0.0), **kw)


def failed(node: str, attempt: int = 1, retry_at: float | None = None, item: int | None = None) -> StepFailed:
    return StepFailed(
        node=node,
        attempt=attempt,
        error=ErrorInfo(type="ValueError", message="boom"),
        retry_at=retry_at,
        item=item,
        at=0.0,
    )


def fold(wf: Workflow, *events: Any) -> WorkflowState:
    return WorkflowState.from_events(wf, number(RUN, list(events)))


def shape(log: list[StoredEvent]) -> list[tuple]:
    """The log as (kind, node, item) triples; node/item None where the event has none."""
    return [(kind_of(s.event), getattr(s.event, "node", None), getattr(s.event, "item", None)) for s in log]


def events_of(log: list[StoredEvent], kind: type) -> list[Any]:
    return [s.event for s in log if isinstance(s.event, kind)]


def assert_seq_gapless(run: InProcessRun) -> None:
    assert [s.seq for s in run.log] == list(range(1, len(run.log) + 1))
    assert run.state.cursor == len(run.log)
    # the fold of the recorded log is the live state
    assert WorkflowState.from_events(run.workflow, run.log) == run.state


def diamond() -> Workflow:
    wf = Workflow("diamond")

    @wf.step()
    def load(order):
        return order["items"]

    @wf.step(after=load)
    def total(items):
        return sum(items)

    @wf.step(after=load)
    def count(items):
        return len(items)

    @wf.step(after=[total, count])
    def mean(t, c):
        return t / c

    return wf


# -------------------------------------------------------------------- joins
def test_diamond_join_runs_after_both_branches_with_values_in_after_order():
    run = drive(diamond(), {"items": [2, 4, 6]})
    assert run.state.status == "completed"
    assert run.state.result == 4.0
    assert shape(run.log) == [
        ("RunSubmitted", None, None),
        ("StepStarted", "load", None),
        ("FactProduced", "load", None),
        ("StepStarted", "total", None),
        ("FactProduced", "total", None),
        ("StepStarted", "count", None),
        ("FactProduced", "count", None),
        ("StepStarted", "mean", None),
        ("FactProduced", "mean", None),
        ("RunCompleted", None, None),
    ]
    assert run.state.results() == {"load": [2, 4, 6], "total": 12, "count": 3, "mean": 4.0}
    assert_seq_gapless(run)


def test_join_is_not_runnable_until_every_upstream_resolved():
    wf = diamond()
    prefix = [
        submitted(wf, {"items": [1]}),
        started("load"),
        produced("load", [1]),
        started("total"),
        produced("total", 1),
    ]
    state = fold(wf, *prefix)
    assert [t.node for t in state.runnables()] == ["count"]
    state = fold(wf, *prefix, started("count"))
    assert [t.node for t in state.runnables(in_flight={("count", None)})] == []
    state = fold(wf, *prefix, started("count"), produced("count", 1))
    assert state.runnables() == [Task(node="mean", attempt=1, inputs=(1, 1))]


def test_root_step_without_parameter_gets_no_input():
    wf = Workflow("roots")
    wf.step(lambda: "constant", name="const")
    wf.step(lambda order: order["n"], name="with_input")
    wf.step(lambda a, b: (a, b), name="pair", after=["const", "with_input"])
    run = drive(wf, {"n": 3})
    assert run.state.result == ("constant", 3)
    assert run.state.input == {"n": 3}


# -------------------------------------------------------------------- rules
def rules_workflow(threshold: int = 100) -> Workflow:
    wf = Workflow("rules")

    @wf.step()
    def price(order):
        return sum(order["items"])

    @wf.rule(after=price, when=lambda p: p > threshold)
    def review(p):
        return f"review {p}"

    @wf.rule(after=price, when=lambda p: p > 10 * threshold)
    def escalate(p):
        return "escalate"

    @wf.step(after=review)
    def notify(r):
        return f"notified: {r}"

    @wf.step(after=[review, escalate])
    def audit(r, e):
        return f"audit r={r!r} e={e!r}"

    @wf.step(after=[price, review])
    def ship(p, r):
        return {"price": p, "review": r}

    return wf


def test_rule_that_fires_passes_its_value_on():
    run = drive(rules_workflow(threshold=5), {"items": [3, 4]})
    assert run.state.status == "completed"
    assert run.state.results()["review"] == "review 7"
    assert run.state.results()["notify"] == "notified: review 7"
    assert run.state.results()["escalate"] is SKIPPED
    # audit ran: only one of its two upstreams was skipped
    assert run.state.results()["audit"] == "audit r='review 7' e=SKIPPED"
    assert run.state.result == {
        "notify": "notified: review 7",
        "audit": "audit r='review 7' e=SKIPPED",
        "ship": {"price": 7, "review": "review 7"},
    }
    assert_seq_gapless(run)


def test_skip_propagates_only_when_all_upstreams_are_skipped():
    run = drive(rules_workflow(), {"items": [1, 2]})
    state = run.state
    assert state.status == "completed"
    skipped = {e.node: e.reason for e in events_of(run.log, StepSkipped)}
    assert skipped == {
        "review": "rule condition was false",
        "escalate": "rule condition was false",
        "notify": "all upstream components were skipped",
        "audit": "all upstream components were skipped",
    }
    # skipped-by-propagation components never start
    started_nodes = [e.node for e in events_of(run.log, StepStarted)]
    assert started_nodes == ["price", "review", "escalate", "ship"]
    # the join with one skipped upstream runs and receives SKIPPED for it
    assert state.results()["ship"] == {"price": 3, "review": SKIPPED}
    assert state.results()["ship"]["review"] is SKIPPED
    # the run result drops skipped sinks
    assert state.result == {"ship": {"price": 3, "review": SKIPPED}}
    assert_seq_gapless(run)


def test_skip_propagates_through_waits_sleeps_and_maps():
    wf = Workflow("deep")
    wf.step(lambda x: x, name="src")
    wf.rule(lambda x: [x], name="never", after="src", when=lambda x: False)
    wf.map(lambda i: i, name="each", after="never")
    wf.wait_for("go", name="gate", after="each")
    wf.sleep(60, name="nap", after="gate")
    wf.step(lambda x: x, name="tail", after="nap")
    run = drive(wf, 1)
    assert run.state.status == "completed"
    assert shape(run.log)[-6:] == [
        ("StepSkipped", "never", None),
        ("StepSkipped", "each", None),
        ("StepSkipped", "gate", None),
        ("StepSkipped", "nap", None),
        ("StepSkipped", "tail", None),
        ("RunCompleted", None, None),
    ]
    assert events_of(run.log, TimerScheduled) == [] and events_of(run.log, MapExpanded) == []
    assert run.state.result is SKIPPED  # the single sink was skipped


def test_rule_condition_and_reaction_get_all_upstream_values():
    wf = Workflow("rule2")
    wf.step(lambda x: x["a"], name="a")
    wf.step(lambda x: x["b"], name="b")
    wf.rule(lambda a, b: a * b, name="product", after=["a", "b"], when=lambda a, b: a < b)
    assert drive(wf, {"a": 2, "b": 3}).state.result == 6
    assert drive(wf, {"a": 3, "b": 2}).state.result is SKIPPED


def test_rule_task_returning_not_taken_records_a_skip():
    wf = rules_workflow()
    state = fold(wf, submitted(wf, {"items": [1]}), started("price"), produced("price", 1), started("review"))
    task = Task(node="review", attempt=1, inputs=(1,))
    [event] = state.success_events(task, NOT_TAKEN, now=3.0)
    assert event == StepSkipped(node="review", reason="rule condition was false", at=3.0)


# ---------------------------------------------------------------- map/reduce
def map_reduce(**map_options: Any) -> Workflow:
    wf = Workflow("mapreduce")

    @wf.step()
    def items(order):
        return order

    @wf.map(after=items, **map_options)
    def square(x):
        if x == "bad":
            raise ValueError("bad item")
        return x * x

    @wf.reduce(after=square)
    def total(xs):
        return [x for x in xs]

    return wf


def test_map_fans_out_one_task_per_item_and_reduce_gets_the_list_in_order():
    run = drive(map_reduce(), [3, 1, 2])
    assert run.state.status == "completed"
    assert run.state.result == [9, 1, 4]
    assert shape(run.log) == [
        ("RunSubmitted", None, None),
        ("StepStarted", "items", None),
        ("FactProduced", "items", None),
        ("MapExpanded", "square", None),
        ("StepStarted", "square", 0),
        ("FactProduced", "square", 0),
        ("StepStarted", "square", 1),
        ("FactProduced", "square", 1),
        ("StepStarted", "square", 2),
        ("FactProduced", "square", 2),
        ("StepStarted", "total", None),
        ("FactProduced", "total", None),
        ("RunCompleted", None, None),
    ]
    assert events_of(run.log, MapExpanded)[0].count == 3
    assert [run.state.item_value("square", i) for i in range(3)] == [9, 1, 4]
    assert_seq_gapless(run)


def test_map_over_a_tuple():
    assert drive(map_reduce(), (1, 2)).state.result == [1, 4]


def test_map_over_an_empty_list_expands_to_nothing_and_reduce_gets_empty_list():
    run = drive(map_reduce(), [])
    assert run.state.result == []
    assert [e.count for e in events_of(run.log, MapExpanded)] == [0]
    assert [e.node for e in events_of(run.log, StepStarted)] == ["items", "total"]
    assert run.state.results()["square"] == []


@pytest.mark.parametrize(("value", "type_name"), [({"a": 1}, "dict"), (7, "int"), ("abc", "str"), (None, "NoneType")])
def test_map_over_a_non_list_fails_the_run_with_a_clear_type_error(value, type_name):
    run = drive(map_reduce(retries=3), value)
    state = run.state
    assert state.status == "failed"
    assert state.failed_node == "square"
    assert state.error.type == "TypeError"
    assert state.error.message == f"map 'square' needs a list or tuple from 'items', got {type_name}"
    assert state.error.non_retryable  # not retried despite retries=3
    assert shape(run.log)[-2:] == [("StepFailed", "square", None), ("RunFailed", "square", None)]
    [failure] = events_of(run.log, StepFailed)
    assert failure.retry_at is None and failure.attempt == 1
    assert "square" not in [e.node for e in events_of(run.log, StepStarted)]
    assert_seq_gapless(run)


def test_map_over_a_non_list_with_on_failure_skip_skips_it_and_downstream():
    run = drive(map_reduce(on_failure="skip"), 5)
    assert run.state.status == "completed"
    assert shape(run.log)[-4:] == [
        ("StepFailed", "square", None),
        ("StepSkipped", "square", None),
        ("StepSkipped", "total", None),
        ("RunCompleted", None, None),
    ]
    assert events_of(run.log, StepSkipped)[0].reason.startswith("failed: TypeError: map 'square' needs a list")
    assert run.state.result is SKIPPED
    assert_seq_gapless(run)


def test_map_items_retry_on_their_own():
    calls: dict[int, int] = {}
    wf = Workflow("mapretry")
    wf.step(lambda x: x, name="items")

    def work(x):
        calls[x] = calls.get(x, 0) + 1
        if x == 2 and calls[x] < 3:
            raise ValueError(f"item {x} flaked")
        return x * 10

    wf.map(work, name="work", after="items", retries=2, backoff="none")
    run = drive(wf, [1, 2, 3])
    assert run.state.result == [10, 20, 30]
    assert calls == {1: 1, 2: 3, 3: 1}
    fails = events_of(run.log, StepFailed)
    assert [(f.item, f.attempt) for f in fails] == [(1, 1), (1, 2)]
    started = [(e.item, e.attempt) for e in events_of(run.log, StepStarted) if e.node == "work"]
    assert sorted(started) == [(0, 1), (1, 1), (1, 2), (1, 3), (2, 1)]
    work = next(step for step in run.state.steps() if step.name == "work")
    assert (work.attempts, work.items, work.items_done) == (5, 3, 3)
    assert run.state.task("work", 1) is None  # resolved items keep only their value
    assert_seq_gapless(run)


def test_map_item_skip_and_fallback_stand_in_the_list():
    skip = drive(map_reduce(on_failure="skip"), [1, "bad", 3])
    assert skip.state.result == [1, SKIPPED, 9]
    assert [e.item for e in events_of(skip.log, StepSkipped)] == [1]

    fb = drive(map_reduce(fallback=lambda x: -1), [1, "bad", 3])
    assert fb.state.result == [1, -1, 9]
    fallback_facts = [e for e in events_of(fb.log, FactProduced) if e.fallback]
    assert [(e.node, e.item, e.value) for e in fallback_facts] == [("square", 1, -1)]

    halt = drive(map_reduce(), [1, "bad", 3])
    assert halt.state.status == "failed" and halt.state.failed_node == "square"
    assert halt.state.error.message == "bad item"


# ------------------------------------------------------------------ retries
def flaky_workflow(
    fail_times: int, exc: type[BaseException] = ValueError, **options: Any
) -> tuple[Workflow, list[int]]:
    calls: list[int] = []
    wf = Workflow("flaky")

    @wf.step(**options)
    def call(x):
        calls.append(x)
        if len(calls) <= fail_times:
            raise exc(f"boom {len(calls)}")
        return f"ok after {len(calls)}"

    @wf.step(after=call)
    def after_call(v):
        return v.upper()

    return wf, calls


def test_retries_then_success():
    wf, calls = flaky_workflow(2, retries=3, backoff="none")
    run = drive(wf, 1)
    assert run.state.status == "completed"
    assert run.state.result == "OK AFTER 3"
    assert len(calls) == 3
    assert shape(run.log)[1:8] == [
        ("StepStarted", "call", None),
        ("StepFailed", "call", None),
        ("StepStarted", "call", None),
        ("StepFailed", "call", None),
        ("StepStarted", "call", None),
        ("FactProduced", "call", None),
        ("StepStarted", "after_call", None),
    ]
    assert [e.attempt for e in events_of(run.log, StepStarted) if e.node == "call"] == [1, 2, 3]
    fails = events_of(run.log, StepFailed)
    assert [f.error.message for f in fails] == ["boom 1", "boom 2"]
    assert all(f.retry_at == 0.0 for f in fails)
    assert events_of(run.log, FactProduced)[0].attempt == 3
    rec = run.state.task("call")
    assert (rec.status, rec.attempt, rec.value) == ("done", 3, "ok after 3")
    assert_seq_gapless(run)


def test_retries_exhausted_fails_the_run_naming_the_node():
    wf, calls = flaky_workflow(10, retries=2, backoff="none")
    run = drive(wf, 1)
    state = run.state
    assert state.status == "failed" and state.is_finished
    assert len(calls) == 3
    [run_failed] = events_of(run.log, RunFailed)
    assert run_failed.node == "call" and state.failed_node == "call"
    assert run_failed.error.type == "ValueError" and run_failed.error.message == "boom 3"
    assert str(state.error) == "ValueError: boom 3"
    assert isinstance(exception_of(state.error), ValueError)
    fails = events_of(run.log, StepFailed)
    assert [(f.attempt, f.retry_at is None) for f in fails] == [(1, False), (2, False), (3, True)]
    assert "after_call" not in [e.node for e in events_of(run.log, StepStarted)]
    assert kind_of(run.log[-1].event) == "RunFailed"
    assert state.runnables() == [] and state.advance(99.0) == []
    assert_seq_gapless(run)


def test_non_retryable_error_skips_the_remaining_retries():
    wf, calls = flaky_workflow(10, exc=NonRetryableError, retries=5)
    run = drive(wf, 1)
    assert run.state.status == "failed"
    assert len(calls) == 1
    [failure] = events_of(run.log, StepFailed)
    assert failure.error.non_retryable and failure.retry_at is None
    assert failure.error.type == "runner.errors.NonRetryableError"
    assert run.state.failed_node == "call"


def test_on_failure_skip_records_the_step_skipped_and_downstream_sees_it():
    wf = Workflow("skipper")
    wf.step(lambda x: x, name="src")
    wf.step(lambda x: 1 / 0, name="divide", after="src", retries=1, backoff="none", on_failure="skip")
    wf.step(lambda d: d, name="only_divide", after="divide")
    wf.step(lambda s, d: (s, d), name="join", after=["src", "divide"])
    run = drive(wf, 5)
    assert run.state.status == "completed"
    skips = {e.node: e.reason for e in events_of(run.log, StepSkipped)}
    assert skips == {
        "divide": "failed: ZeroDivisionError: division by zero",
        "only_divide": "all upstream components were skipped",
    }
    assert run.state.task("divide").status == "skipped"
    assert run.state.task("divide").error.type == "ZeroDivisionError"
    assert run.state.results()["join"] == (5, SKIPPED)
    assert run.state.result == {"join": (5, SKIPPED)}


def test_fallback_value_stands_in_after_the_last_failure():
    wf = Workflow("fallbacks")
    wf.step(lambda x: x, name="src")

    def fetch(x):
        raise ConnectionError("down")

    wf.step(fetch, name="fetch", after="src", retries=1, backoff="none", fallback=lambda x: f"cached {x}")
    wf.step(lambda v: v.upper(), name="use", after="fetch")
    run = drive(wf, "price")
    assert run.state.status == "completed"
    assert run.state.result == "CACHED PRICE"
    assert shape(run.log)[1:9] == [
        ("StepStarted", "src", None),
        ("FactProduced", "src", None),
        ("StepStarted", "fetch", None),
        ("StepFailed", "fetch", None),
        ("StepStarted", "fetch", None),
        ("StepFailed", "fetch", None),
        ("StepStarted", "fetch", None),  # the fallback starts
        ("FactProduced", "fetch", None),
    ]
    facts = [e for e in events_of(run.log, FactProduced) if e.node == "fetch"]
    assert [(f.value, f.fallback, f.attempt) for f in facts] == [("cached price", True, 2)]
    assert run.state.task("fetch").error.type == "ConnectionError"
    assert_seq_gapless(run)


def test_fallback_that_fails_fails_the_run():
    wf = Workflow("badfallback")

    def fb(x):
        raise KeyError("no cache")

    wf.step(lambda x: 1 / 0, name="s", fallback=fb)
    run = drive(wf, 1)
    assert run.state.status == "failed" and run.state.failed_node == "s"
    assert run.state.error.type == "KeyError"
    assert shape(run.log)[1:] == [
        ("StepStarted", "s", None),
        ("StepFailed", "s", None),
        ("StepStarted", "s", None),
        ("StepFailed", "s", None),
        ("RunFailed", "s", None),
    ]
    assert run.state.task("s").status == "failed"


def test_fallback_is_offered_as_a_fallback_task():
    wf = Workflow("w")
    wf.step(lambda x: 1 / 0, name="s", retries=1, fallback=lambda x: 0)
    state = fold(wf, submitted(wf, 7), started("s"), failed("s", 1, retry_at=1.0), started("s", 2), failed("s", 2))
    assert state.task("s").status == "fallback"
    assert state.runnables() == [Task(node="s", attempt=2, inputs=(7,), fallback=True)]
    [event] = state.success_events(state.runnables()[0], 0, now=5.0)
    assert event == FactProduced(node="s", value=0, attempt=2, fallback=True, at=5.0)
    # its start is recorded with the last attempt's number and keeps it waiting for the fallback's outcome
    with pytest.raises(FoldError, match="StepStarted attempt 3 for the fallback of 's', whose last attempt was 2"):
        state.apply(number(RUN, [started("s", 3)], first=state.cursor + 1)[0])
    state.apply(number(RUN, [started("s", 2, at=4.0)], first=state.cursor + 1)[0])
    assert (state.task("s").status, state.task("s").started_at) == ("fallback", 4.0)
    # a non-fallback FactProduced cannot resolve a task waiting for its fallback
    with pytest.raises(FoldError, match="FactProduced for 's' which is fallback, not running"):
        state.apply(number(RUN, [produced("s", 0, attempt=2)], first=state.cursor + 1)[0])


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ("none", [0.0, 0.0, 0.0]),
        ("linear", [2.0, 6.0, 12.0]),  # +2, +4, +6
        ("exponential", [2.0, 6.0, 14.0]),  # +2, +4, +8
    ],
)
def test_backoff_retry_at_values(backoff, expected):
    wf, _ = flaky_workflow(3, retries=3, backoff=backoff, backoff_base=2, backoff_max=100)
    run = drive(wf, 1)
    fails = events_of(run.log, StepFailed)
    assert [f.retry_at for f in fails] == expected
    assert [f.at for f in fails] == [0.0] + expected[:-1]  # the clock jumps to each retry_at
    starts = [e.at for e in events_of(run.log, StepStarted) if e.node == "call"]
    assert starts == [0.0] + expected
    assert run.state.status == "completed"


def test_backoff_is_capped_by_backoff_max():
    wf, _ = flaky_workflow(3, retries=3, backoff="exponential", backoff_base=2, backoff_max=3)
    run = drive(wf, 1)
    assert [f.retry_at for f in events_of(run.log, StepFailed)] == [2.0, 5.0, 8.0]


def test_jitter_retry_at_is_seeded_and_bounded():
    def retry_ats(seed: int) -> list[float]:
        wf, _ = flaky_workflow(3, retries=3, backoff="jitter", backoff_base=4, backoff_max=100)
        run = drive(wf, 1, seed=seed)
        return [f.retry_at - f.at for f in events_of(run.log, StepFailed)]

    delays = retry_ats(1)
    assert delays == retry_ats(1)
    assert delays != retry_ats(2)
    assert all(0 <= d <= ceiling for d, ceiling in zip(delays, [4, 8, 16], strict=True))


def test_failure_events_planning():
    wf = Workflow("plan")
    wf.step(lambda x: x, name="s", retries=1, backoff="linear", backoff_base=3)
    state = fold(wf, submitted(wf), started("s"))
    err = ErrorInfo(type="ValueError", message="x")
    first = Task(node="s", attempt=1, inputs=(None,))
    assert state.failure_events(first, err, now=10.0) == [
        StepFailed(node="s", attempt=1, error=err, retry_at=13.0, at=10.0)
    ]
    last = Task(node="s", attempt=2, inputs=(None,))
    assert state.failure_events(last, err, now=10.0) == [
        StepFailed(node="s", attempt=2, error=err, at=10.0),
        RunFailed(error=err, node="s", at=10.0),
    ]
    fatal = ErrorInfo(type="X", message="y", non_retryable=True)
    assert state.failure_events(first, fatal, now=1.0) == [
        StepFailed(node="s", attempt=1, error=fatal, at=1.0),
        RunFailed(error=fatal, node="s", at=1.0),
    ]


def test_retry_waits_for_retry_at():
    wf = Workflow("w")
    wf.step(lambda x: x, name="s", retries=2)
    state = fold(wf, submitted(wf, 1), started("s"), failed("s", 1, retry_at=5.0))
    assert state.task("s").status == "retry"
    assert state.next_wakeup() == 5.0
    assert state.runnables(now=4.9) == []
    assert state.runnables(now=5.0) == [Task(node="s", attempt=2, inputs=(1,))]
    assert state.runnables() == [Task(node="s", attempt=2, inputs=(1,))]  # now=None ignores the clock


def test_next_wakeup_includes_a_retry_due_at_time_zero():
    wf = Workflow("w")
    wf.step(lambda x: x, name="s", retries=2)
    state = fold(wf, submitted(wf, 1), started("s"), failed("s", 1, retry_at=0.0))
    assert state.next_wakeup() == 0.0


def test_next_wakeup_is_the_earliest_of_retries_and_timers():
    wf = Workflow("w")
    wf.step(lambda x: x, name="a", retries=1)
    wf.sleep(30, name="nap")
    state = fold(wf, submitted(wf, 1), TimerScheduled(node="nap", due_at=30.0, at=0.0))
    assert state.next_wakeup() == 30.0
    state = fold(
        wf,
        submitted(wf, 1),
        TimerScheduled(node="nap", due_at=30.0, at=0.0),
        started("a"),
        failed("a", 1, retry_at=12.0),
    )
    assert state.next_wakeup() == 12.0
    assert fold(wf, submitted(wf, 1)).next_wakeup() is None


# ----------------------------------------------------------------- planning
def test_priority_orders_runnables_then_definition_order_then_item():
    wf = Workflow("prio")
    wf.step(lambda x: x, name="low", priority=-1)
    wf.step(lambda x: x, name="plain")
    wf.step(lambda x: x, name="high", priority=5)
    wf.step(lambda x: x, name="plain2")
    wf.step(lambda x: [1, 2, 3], name="items")
    wf.map(lambda i: i, name="urgent_map", after="items", priority=9)
    state = fold(wf, submitted(wf, 0))
    assert [t.node for t in state.runnables()] == ["high", "plain", "plain2", "items", "low"]
    state = fold(
        wf,
        submitted(wf, 0),
        started("items"),
        produced("items", [1, 2, 3]),
        MapExpanded(node="urgent_map", count=3, at=0.0),
    )
    assert [(t.node, t.item) for t in state.runnables()] == [
        ("urgent_map", 0),
        ("urgent_map", 1),
        ("urgent_map", 2),
        ("high", None),
        ("plain", None),
        ("plain2", None),
        ("low", None),
    ]
    # map item tasks get their input list and index
    first = state.runnables()[0]
    assert first == Task(node="urgent_map", item=0, attempt=1, inputs=([1, 2, 3],))
    # the in-process runtime starts tasks in that order
    run = drive(wf, 0)
    starts = [(e.node, e.item) for e in events_of(run.log, StepStarted)]
    assert starts[:5] == [("high", None), ("plain", None), ("plain2", None), ("items", None), ("low", None)]


def test_orphaned_started_tasks_are_offered_again_unless_in_flight():
    wf = diamond()
    state = fold(
        wf,
        submitted(wf, {"items": [1]}),
        started("load"),
        produced("load", [1]),
        started("total"),
        started("count", attempt=1),
    )
    assert sorted(state.started()) == [("count", None), ("total", None)]
    # a worker that lost the tasks (crashed) gets them back, same attempt: at least once
    assert state.runnables() == [
        Task(node="total", attempt=1, inputs=([1],)),
        Task(node="count", attempt=1, inputs=([1],)),
    ]
    assert [t.node for t in state.runnables(in_flight={("total", None)})] == ["count"]
    assert state.runnables(in_flight={("total", None), ("count", None)}) == []
    # a re-started orphan is accepted by the fold with the same attempt
    state.apply(number(RUN, [started("total", attempt=1)], first=state.cursor + 1)[0])
    assert state.task("total").status == "running"


def test_orphaned_map_items_are_offered_again():
    wf = map_reduce()
    state = fold(
        wf,
        submitted(wf, [1, 2]),
        started("items"),
        produced("items", [1, 2]),
        MapExpanded(node="square", count=2, at=0.0),
        started("square", item=0),
        started("square", item=1),
        produced("square", 4, item=1),
    )
    assert state.runnables() == [Task(node="square", item=0, attempt=1, inputs=([1, 2],))]
    assert state.runnables(in_flight=[("square", 0)]) == []


def test_advance_is_pure_until_its_events_are_applied():
    wf = map_reduce()
    state = fold(wf, submitted(wf, [1]), started("items"), produced("items", [1]))
    before = state.copy()
    first = state.advance(now=3.0)
    assert first == [MapExpanded(node="square", count=1, at=3.0)]
    assert state.advance(now=3.0) == first
    assert state == before
    for stored in number(RUN, first, first=state.cursor + 1):
        state.apply(stored)
    assert state.advance(now=3.0) == []


def test_advance_follows_chains_in_one_call():
    wf = Workflow("chain")
    wf.rule(lambda x: x, name="r", when=lambda x: False)
    wf.step(lambda x: x, name="a", after="r")
    wf.sleep(0, name="nap", after="a")
    wf.step(lambda x: x, name="b", after="nap")
    state = fold(wf, submitted(wf, 1), started("r"), StepSkipped(node="r", reason="rule condition was false", at=0.0))
    events = state.advance(now=2.0)
    assert [(kind_of(e), getattr(e, "node", None)) for e in events] == [
        ("StepSkipped", "a"),
        ("StepSkipped", "nap"),
        ("StepSkipped", "b"),
        ("RunCompleted", None),
    ]
    assert events[-1].result is SKIPPED


# ------------------------------------------------------------ waits/signals
def approval() -> Workflow:
    wf = Workflow("approval")
    wf.step(lambda x: x * 2, name="prepare")
    wf.wait_for("approve", name="gate", after="prepare")
    wf.step(lambda p, g: {"amount": p, "decision": g}, name="finish", after=["prepare", "gate"])
    return wf


def test_wait_suspends_until_the_signal_arrives_after_the_wait_is_reached():
    run = InProcessRun(approval(), 21)
    state = run.run()
    assert not state.is_finished
    assert state.waiting_for() == ["approve"]
    assert state.next_wakeup() is None and state.runnables() == [] and state.advance(0.0) == []
    run.record(RunSuspended(reason="waiting for signal 'approve'"))
    assert run.state.status == "suspended"
    run.signal(1, "approve", {"by": "ann"})
    run.record(RunResumed())
    run.run()
    assert run.state.status == "completed"
    assert run.state.result == {"amount": 42, "decision": {"by": "ann"}}
    assert run.state.waiting_for() == []
    assert run.state.last_signal_id == 1
    kinds = [kind_of(s.event) for s in run.log]
    assert kinds[-7:] == [
        "RunSuspended",
        "SignalReceived",
        "RunResumed",
        "FactProduced",
        "StepStarted",
        "FactProduced",
        "RunCompleted",
    ]
    assert_seq_gapless(run)


def test_signal_received_before_the_wait_is_reached_is_kept_and_used():
    run = InProcessRun(approval(), 1)
    run.signal(7, "other", "ignored")
    run.signal(8, "approve", "yes")
    assert run.state.waiting_for() == []  # the wait is not reached yet
    run.run()
    assert run.state.status == "completed"
    assert run.state.result == {"amount": 2, "decision": "yes"}
    gate = [e for e in events_of(run.log, FactProduced) if e.node == "gate"]
    assert [g.value for g in gate] == ["yes"]
    assert run.state.last_signal_id == 8
    assert_seq_gapless(run)


def test_two_waits_on_one_signal_take_one_signal_each():
    wf = Workflow("two")
    wf.wait_for("tick", name="first")
    wf.wait_for("tick", name="second")
    run = InProcessRun(wf)
    run.signal(1, "tick", "a")
    run.run()
    assert run.state.results() == {"first": "a"}
    assert run.state.waiting_for() == ["tick"]
    run.signal(2, "tick", "b")
    run.run()
    assert run.state.result == {"first": "a", "second": "b"}


def test_signal_ids_must_increase():
    wf = approval()
    state = fold(wf, submitted(wf, 1), SignalReceived(signal_id=3, name="approve", payload=1, at=0.0))
    with pytest.raises(FoldError, match="signal 3 received again \\(last was 3\\)"):
        state.apply(number(RUN, [SignalReceived(signal_id=3, name="approve", payload=1)], first=3)[0])


def test_fact_for_a_wait_needs_a_received_signal():
    wf = approval()
    state = fold(wf, submitted(wf, 1), started("prepare"), produced("prepare", 2))
    with pytest.raises(FoldError, match="FactProduced for wait 'gate' with no 'approve' signal received"):
        state.apply(number(RUN, [produced("gate", "x")], first=state.cursor + 1)[0])


# ------------------------------------------------------------------- timers
def test_sleep_schedules_a_durable_timer_and_passes_its_input_on():
    wf = Workflow("sleepy")
    wf.step(lambda x: x + 1, name="before")
    wf.sleep(30, name="nap", after="before")
    wf.step(lambda x: x * 10, name="after_nap", after="nap")
    run = InProcessRun(wf, 1, now=100.0)
    run.step()
    run.step()
    assert [kind_of(s.event) for s in run.log] == ["RunSubmitted", "StepStarted", "FactProduced", "TimerScheduled"]
    [scheduled] = events_of(run.log, TimerScheduled)
    assert scheduled.due_at == 130.0 and scheduled.at == 100.0
    assert run.state.next_wakeup() == 130.0
    assert run.state.advance(now=129.9) == []
    assert run.state.runnables(now=129.9) == []
    run.run()
    [fired] = events_of(run.log, TimerFired)
    assert fired == TimerFired(node="nap", at=130.0)
    assert run.state.results()["nap"] == 2
    assert run.state.result == 20
    assert run.state.next_wakeup() is None
    assert_seq_gapless(run)


def test_zero_sleep_schedules_and_fires_at_once_and_a_root_sleep_passes_the_input():
    wf = Workflow("zero")
    wf.sleep(0, name="nap")
    wf.step(lambda x: x, name="out", after="nap")
    state = fold(wf, submitted(wf, "payload"))
    assert state.advance(now=5.0) == [
        TimerScheduled(node="nap", due_at=5.0, at=5.0),
        TimerFired(node="nap", at=5.0),
    ]
    assert drive(wf, "payload").state.result == "payload"


def test_timer_survives_refolding():
    wf = Workflow("w")
    wf.sleep(10, name="nap")
    log = number(RUN, [submitted(wf, 1), TimerScheduled(node="nap", due_at=10.0, at=0.0)])
    refolded = WorkflowState.from_events(wf, log)
    assert refolded.advance(now=3.0) == []  # not rescheduled
    assert refolded.advance(now=10.0) == [TimerFired(node="nap", at=10.0), RunCompleted(result=1, at=10.0)]


# -------------------------------------------------------- pause and cancel
def test_paused_runs_offer_nothing_until_resumed():
    wf = diamond()
    state = fold(wf, submitted(wf, {"items": [1]}), started("load"), produced("load", [1]), RunPaused(at=0.0))
    assert state.status == "paused"
    assert state.runnables() == [] and state.advance(now=1.0) == []
    state.apply(number(RUN, [RunResumed(at=1.0)], first=state.cursor + 1)[0])
    assert state.status == "running"
    assert [t.node for t in state.runnables()] == ["total", "count"]


def test_a_pause_keeps_its_reason_until_the_run_is_resumed():
    wf = diamond()
    reason = "run paused: the store file cannot be written (ENOSPC: No space left on device)"
    state = fold(wf, submitted(wf, {"items": [1]}), RunPaused(reason=reason, at=0.0))
    assert state.status == "paused" and state.pause_reason == reason
    assert state.copy().pause_reason == reason  # kept in snapshots
    state.apply(number(RUN, [RunResumed(at=1.0)], first=state.cursor + 1)[0])
    assert state.status == "running" and state.pause_reason == ""
    assert fold(wf, submitted(wf, {"items": [1]}), RunPaused(at=0.0)).pause_reason == ""


def test_cancelled_runs_are_finished_and_offer_nothing():
    wf = diamond()
    state = fold(wf, submitted(wf, {"items": [1]}), RunCancelled(reason="user asked", at=0.0))
    assert state.status == "cancelled" and state.is_finished
    assert state.runnables() == [] and state.advance(now=1.0) == []


def test_status_before_and_after_submission():
    wf = diamond()
    assert WorkflowState(wf).status == "pending"
    assert WorkflowState(wf).runnables() == [] and WorkflowState(wf).advance(0.0) == []
    assert fold(wf, submitted(wf, {"items": [1]})).status == "running"


# ------------------------------------------------------------- result shape
def test_result_of_a_single_sink_is_its_value():
    assert drive(diamond(), {"items": [1, 3]}).state.result == 2.0


def test_result_of_several_sinks_is_a_dict_of_the_non_skipped_ones():
    wf = Workflow("sinks")
    wf.step(lambda x: x, name="src")
    wf.step(lambda x: x + 1, name="plus")
    wf.step(lambda x: x * 2, name="times")
    wf.rule(lambda x: "never", name="never", after="src", when=lambda x: False)
    run = drive(wf, 4)
    assert run.state.result == {"plus": 5, "times": 8}
    assert events_of(run.log, RunCompleted)[0].result == {"plus": 5, "times": 8}


def test_explicit_output_names_the_result():
    wf = diamond()
    wf.set_output("total")
    assert drive(wf, {"items": [1, 2]}).state.result == 3

    wf = Workflow("explicit", output="first")
    wf.step(lambda x: x + 1, name="first")
    wf.step(lambda x: x * 100, name="second", after="first")
    wf.validate()
    assert drive(wf, 1).state.result == 2


# ---------------------------------------------------------------- strictness
def strict_workflow() -> Workflow:
    wf = Workflow("strict")
    wf.step(lambda x: x, name="a")
    wf.step(lambda x: x, name="b", after="a")
    wf.rule(lambda x: x, name="r", after="a", when=lambda x: False)
    wf.step(lambda x: x, name="after_r", after="r")
    wf.step(lambda x: [x], name="items")
    wf.map(lambda i: i, name="m", after="items")
    wf.wait_for("go", name="gate")
    wf.sleep(10, name="nap")
    return wf


STRICT = strict_workflow()
BASE = [submitted(STRICT, 1), started("a"), produced("a", 1)]


@pytest.mark.parametrize(
    ("prefix", "bad", "message"),
    [
        # the log must start with RunSubmitted
        ([], started("a"), "the log must start with RunSubmitted, not StepStarted"),
        (BASE, submitted(STRICT, 1), "RunSubmitted twice in one log"),
        # unknown node and wrong kinds of node
        (BASE, started("ghost"), "event names component 'ghost', which workflow 'strict' does not have"),
        (BASE, failed("ghost"), "'ghost'"),
        (BASE, StepSkipped(node="ghost", reason="x"), "'ghost'"),
        (BASE, TimerFired(node="ghost"), "'ghost'"),
        (BASE, started("gate"), "wait 'gate' is not executed as a task"),
        (BASE, started("nap"), "sleep 'nap' is not executed as a task"),
        (BASE, started("a", item=0), "step 'a' has no items, got item 0"),
        # facts for steps never started, twice, or for the wrong thing
        (BASE[:1], produced("a", 1), "FactProduced for 'a' which is waiting, not running"),
        (BASE, produced("a", 2), "FactProduced for 'a' which is done, not running"),
        (BASE, produced("b", 2, fallback=True), "FactProduced for 'b' which is waiting, not fallback"),
        (BASE, produced("gate", "x"), "FactProduced for wait 'gate' with no 'go' signal received"),
        # starts that cannot happen
        (BASE[:1], started("b"), "StepStarted for 'b' before its upstream components resolved"),
        (BASE, started("a", attempt=2), "StepStarted for 'a' which already has a result"),
        (
            BASE
            + [
                started("items"),
                produced("items", [1, 2]),
                MapExpanded(node="m", count=2),
                started("m", item=0),
                produced("m", 1, item=0),
            ],
            started("m", item=0),
            "StepStarted for 'm'\\[0\\] which already has a result",
        ),
        (BASE + [started("b", attempt=2)], started("b", attempt=1), "StepStarted attempt 1 for 'b' after attempt 2"),
        (BASE[:1], started("a", attempt=0), "StepStarted attempt 0 for 'a' after attempt 0"),
        (
            BASE + [started("r"), StepSkipped(node="r", reason="no"), StepSkipped(node="after_r", reason="all")],
            started("after_r"),
            "StepStarted for 'after_r' which already has a result",
        ),
        # failures and skips that cannot happen
        (BASE, failed("b"), "StepFailed for 'b' which is waiting, not running"),
        (BASE, failed("a"), "StepFailed for 'a' which is done, not running"),
        (BASE, StepSkipped(node="a", reason="x"), "StepSkipped for 'a' which already has a result"),
        (BASE[:1], StepSkipped(node="b", reason="x"), "StepSkipped for 'b' before its upstream components resolved"),
        # maps
        (BASE, MapExpanded(node="a", count=1), "MapExpanded for 'a', which is not an unexpanded map"),
        (BASE[:1], MapExpanded(node="m", count=1), "MapExpanded for 'm' before its upstream component resolved"),
        (
            BASE + [started("items"), produced("items", [1]), MapExpanded(node="m", count=1)],
            MapExpanded(node="m", count=1),
            "not an unexpanded map",
        ),
        (BASE + [started("items"), produced("items", [1])], MapExpanded(node="m", count=-1), "negative count -1"),
        (
            BASE + [started("items"), produced("items", [1]), MapExpanded(node="m", count=1)],
            started("m", item=1),
            "'m'\\[1\\] is not an item of expanded map 'm'",
        ),
        (
            BASE + [started("items"), produced("items", [1]), MapExpanded(node="m", count=1)],
            started("m"),
            "'m' is not an item of expanded map 'm'",
        ),
        (
            BASE + [started("items"), produced("items", [1]), MapExpanded(node="m", count=1)],
            failed("m"),
            "StepFailed for map 'm' as a whole after it expanded",
        ),
        (BASE[:1], failed("m"), "StepFailed for map 'm' before its upstream component resolved"),
        # timers
        (BASE, TimerFired(node="nap"), "TimerFired for 'nap', which has no pending timer"),
        (BASE, TimerScheduled(node="a", due_at=1.0), "TimerScheduled for 'a', which is not a sleep ready to start"),
        (
            BASE + [TimerScheduled(node="nap", due_at=1.0)],
            TimerScheduled(node="nap", due_at=2.0),
            "not a sleep ready to start",
        ),
        # after the end
        (BASE + [RunCompleted(result=1)], started("b"), "StepStarted after the run ended \\(completed\\)"),
        (
            BASE + [RunFailed(error=ErrorInfo(type="E", message="m"), node="a")],
            RunResumed(),
            "RunResumed after the run ended \\(failed\\)",
        ),
        (BASE + [RunCancelled()], RunCompleted(result=1), "RunCompleted after the run ended \\(cancelled\\)"),
    ],
)
def test_the_fold_refuses_what_it_cannot_place_and_changes_nothing(prefix, bad, message):
    state = WorkflowState.from_events(STRICT, number(RUN, list(prefix)))
    before = state.copy()
    with pytest.raises(FoldError, match=message):
        state.apply(StoredEvent(run_id=RUN, seq=len(prefix) + 1, event=bad))
    assert state == before
    assert state.cursor == len(prefix)


def test_workflow_name_must_match():
    state = WorkflowState(STRICT)
    with pytest.raises(FoldError, match="log is for workflow 'other', not 'strict'"):
        state.apply(StoredEvent(run_id=RUN, seq=1, event=RunSubmitted(workflow="other", input=1, definition_hash="x")))
    assert state.status == "pending" and state.cursor == 0


@pytest.mark.parametrize(("seq", "what"), [(5, "gap"), (3, "repeat"), (1, "repeat"), (0, "repeat")])
def test_seq_must_be_the_next_cursor(seq, what):
    state = WorkflowState.from_events(STRICT, number(RUN, BASE))
    before = state.copy()
    with pytest.raises(FoldError, match=f"event seq {seq} does not follow cursor 3: the log has a gap or repeat"):
        state.apply(StoredEvent(run_id=RUN, seq=seq, event=started("b")))
    assert state == before


def test_a_log_with_a_gap_cannot_be_folded():
    log = number(RUN, BASE)
    with pytest.raises(FoldError, match="event seq 3 does not follow cursor 1"):
        WorkflowState.from_events(STRICT, [log[0], log[2]])


def test_events_of_another_run_are_refused():
    state = WorkflowState.from_events(STRICT, number(RUN, BASE))
    before = state.copy()
    with pytest.raises(FoldError, match="event of run 'run-2' folded into run 'run-1'"):
        state.apply(StoredEvent(run_id="run-2", seq=4, event=started("b")))
    assert state == before


def test_unknown_event_types_are_refused():
    state = WorkflowState.from_events(STRICT, number(RUN, BASE))
    with pytest.raises(FoldError, match="unknown event type object"):
        state.apply(StoredEvent(run_id=RUN, seq=4, event=object()))  # type: ignore[arg-type]
    assert state.cursor == 3


def test_the_same_log_always_folds_to_the_same_state():
    wf, _ = flaky_workflow(1, retries=1, backoff="none")
    run = drive(wf, 3)
    a = WorkflowState.from_events(wf, run.log)
    b = WorkflowState.from_events(wf, list(run.log))
    assert a == b == run.state
    assert a.cursor == len(run.log) and a.run_id == RUN
    assert "cursor=" in repr(a) and "completed" in repr(a)


def test_state_accessors_return_copies():
    run = drive(diamond(), {"items": [1]})
    results = run.state.results()
    results["load"] = "tampered"
    tasks = run.state.tasks()
    tasks[("load", None)].value = "tampered"
    assert run.state.results()["load"] == [1]
    assert run.state.task("load").value == [1]


def test_in_process_runs_reach_the_same_result_for_random_inputs():
    rng = random.Random(3)
    for _ in range(20):
        items = [rng.randint(-5, 5) for _ in range(rng.randint(0, 6))]
        run = drive(map_reduce(), items)
        assert run.state.result == [x * x for x in items]
