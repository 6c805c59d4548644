"""Planning from the incremental indexes is planning from the whole state.

``WorkflowState`` keeps a frontier (unresolved components whose upstreams are
resolved), the waits in it and heaps of retry and timer times, updated as
events are folded. These tests compare ``advance``, ``runnables``,
``next_wakeup`` and ``waiting_for`` with brute-force references that scan
every component and every task record (the planning code as it was before
the indexes), at every cursor of random logs and in pinned situations: retries
of several items, timers, waits, maps with items in flight, skipped branches,
fallbacks, refused events and restores from a snapshot mid-run.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_snapshot_property import run_randomly, workflows

from runner.errors import FoldError
from runner.events import (
    SKIPPED,
    ErrorInfo,
    Event,
    FactProduced,
    MapExpanded,
    RunCompleted,
    RunFailed,
    RunSubmitted,
    SignalReceived,
    StepFailed,
    StepSkipped,
    StepStarted,
    StoredEvent,
    TimerFired,
    TimerScheduled,
    number,
)
from runner.planning import Task, list_length, run_result
from runner.run_data import EXECUTABLE_KINDS, TaskKey, TaskRecord, TaskStatus
from runner.state import WorkflowState
from runner.testing.inprocess import InProcessRun
from runner.workflow import Node, NodeKind, Workflow

RUN = "run-1"


# ------------------------------------------------------- brute-force references
def ref_inputs(state: WorkflowState, node: Node) -> tuple[Any, ...] | None:
    d = state._data
    if not node.after:
        return (d.input,) if node.takes_input else ()
    if not all(up in d.results for up in node.after):
        return None
    return tuple(d.results[up] for up in node.after)


def ref_frontier(state: WorkflowState) -> set[str]:
    d = state._data
    return {
        name
        for name, node in state.workflow.nodes.items()
        if name not in d.results and ref_inputs(state, node) is not None
    }


def ref_waiting_for(state: WorkflowState) -> list[str]:
    return [
        node.signal or ""
        for node in state.workflow.nodes.values()
        if node.kind is NodeKind.WAIT and node.name in ref_frontier(state)
    ]


def ref_next_wakeup(state: WorkflowState) -> float | None:
    d = state._data
    times = [rec.retry_at for rec in d.tasks.values() if rec.status == TaskStatus.RETRY and rec.retry_at is not None]
    times += [due for node, due in d.timers.items() if node not in d.results]
    return min(times) if times else None


def ref_runnables(state: WorkflowState, in_flight: Collection[TaskKey] = (), now: float | None = None) -> list[Task]:
    d = state._data
    if d.outcome or d.paused or not d.submitted:
        return []
    tasks: list[Task] = []
    orphans: dict[str, list[TaskKey]] = {}
    for key in d.running.difference(in_flight):
        if key[1] is not None:
            orphans.setdefault(key[0], []).append(key)
    for node in state.workflow.nodes.values():
        if node.kind not in EXECUTABLE_KINDS or node.name in d.results:
            continue
        inputs = ref_inputs(state, node)
        if inputs is None or (node.after and all(v is SKIPPED for v in inputs)):
            continue
        if node.kind is NodeKind.MAP:
            if node.name not in d.map_counts:
                continue
            keys: list[TaskKey] = [(node.name, i) for i in sorted(d.ready_items.get(node.name, ()))]
            keys += orphans.get(node.name, [])
        else:
            keys = [(node.name, None)]
        for key in keys:
            if key in in_flight:
                continue
            rec = d.tasks.get(key) or TaskRecord()
            if rec.status == TaskStatus.WAITING:
                tasks.append(Task(node=key[0], item=key[1], attempt=1, inputs=inputs))
            elif rec.status == TaskStatus.RUNNING:
                tasks.append(Task(node=key[0], item=key[1], attempt=rec.attempt, inputs=inputs))
            elif rec.status == TaskStatus.RETRY and (now is None or (rec.retry_at or 0) <= now):
                tasks.append(Task(node=key[0], item=key[1], attempt=rec.attempt + 1, inputs=inputs))
            elif rec.status == TaskStatus.FALLBACK:
                tasks.append(Task(node=key[0], item=key[1], attempt=rec.attempt, inputs=inputs, fallback=True))
    order = list(state.workflow.nodes)
    tasks.sort(key=lambda t: (-state.workflow.nodes[t.node].policy.priority, order.index(t.node), t.item or 0))
    return tasks


def ref_advance(state: WorkflowState, now: float) -> list[Event]:
    d = state._data
    if d.outcome or d.paused or not d.submitted:
        return []
    events: list[Event] = []
    overlay: dict[str, Any] = {}
    taken: set[int] = set()

    def result(name: str) -> Any:
        return overlay[name] if name in overlay else d.results[name]

    def resolved(name: str) -> bool:
        return name in overlay or name in d.results

    for node in state.workflow.nodes.values():
        name = node.name
        if resolved(name) or not all(resolved(up) for up in node.after):
            continue
        inputs = tuple(result(up) for up in node.after) if node.after else ref_inputs(state, node)
        assert inputs is not None
        if node.after and all(v is SKIPPED for v in inputs):
            events.append(StepSkipped(node=name, reason="all upstream components were skipped", at=now))
            overlay[name] = SKIPPED
        elif node.kind is NodeKind.WAIT:
            signal = next((s for s in d.signals if s[1] == node.signal and s[0] not in taken), None)
            if signal is not None:
                taken.add(signal[0])
                events.append(FactProduced(node=name, value=signal[2], at=now))
                overlay[name] = signal[2]
        elif node.kind is NodeKind.SLEEP:
            due = d.timers.get(name)
            if due is None:
                due = now + (node.seconds or 0.0)
                events.append(TimerScheduled(node=name, due_at=due, at=now))
            if due <= now:
                events.append(TimerFired(node=name, at=now))
                overlay[name] = inputs[0] if inputs else None
        elif node.kind is NodeKind.MAP and name not in d.map_counts and (name, None) not in d.tasks:
            count = list_length(inputs[0])
            if count is None:
                error = ErrorInfo(
                    type="TypeError",
                    message=f"map {name!r} needs a list or tuple from {node.after[0]!r}, got {type(inputs[0]).__name__}",
                    non_retryable=True,
                )
                events.append(StepFailed(node=name, attempt=1, error=error, at=now))
                if node.policy.on_failure == "skip":
                    events.append(StepSkipped(node=name, reason=f"failed: {error}", at=now))
                    overlay[name] = SKIPPED
                else:
                    events.append(RunFailed(error=error, node=name, at=now))
                    return events
            else:
                events.append(MapExpanded(node=name, count=count, at=now))
                if count == 0:
                    overlay[name] = []
    if all(resolved(name) for name in state.workflow.nodes):
        events.append(RunCompleted(result=run_result(state.workflow, result), at=now))
    return events


def assert_plans_like_the_reference(
    state: WorkflowState, nows: Collection[float], in_flights: Collection[Collection[TaskKey]] = ((),)
) -> None:
    assert state._index.frontier == ref_frontier(state)
    assert state.waiting_for() == ref_waiting_for(state)
    assert state.next_wakeup() == ref_next_wakeup(state)
    assert state.next_wakeup() == ref_next_wakeup(state)  # dropping stale heap entries changes nothing
    for in_flight in in_flights:
        assert state.runnables(in_flight) == ref_runnables(state, in_flight)
        for now in nows:
            assert state.runnables(in_flight, now) == ref_runnables(state, in_flight, now)
    for now in nows:
        assert state.advance(now) == ref_advance(state, now)


# ------------------------------------------------------------------ property
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(wf=workflows(), data=st.data())
def test_at_every_cursor_planning_matches_the_brute_force_reference(wf: Workflow, data: st.DataObject) -> None:
    run = run_randomly(wf, data)
    nows = sorted({0.0, run.now, run.now + 1000.0} | {s.event.at for s in run.log[-3:]})
    state = WorkflowState(wf)
    for c, stored in enumerate(run.log, start=1):
        state.apply(stored)
        if c < len(run.log) and not data.draw(st.booleans(), label=f"look at {c}"):
            continue  # a look drops stale heap entries: folding on without one must plan alike too
        running = state.started()
        in_flights = [(), running, running[: len(running) // 2], running[1:] + [("n0", None), ("n0", 0)]]
        assert_plans_like_the_reference(state, nows, in_flights)
        if data.draw(st.booleans(), label=f"restore at {c}"):
            restored = WorkflowState.restore(wf, state.snapshot())
            assert restored == state
            assert_plans_like_the_reference(restored, nows, in_flights)
            state = restored  # go on folding from the restored state
    assert state == run.state


# ------------------------------------------------------------------ helpers
def submitted(wf: Workflow, input: Any = None) -> RunSubmitted:
    return RunSubmitted(workflow=wf.name, input=input, definition_hash=wf.definition_hash(), at=0.0)


def started(node: str, attempt: int = 1, item: int | None = None) -> StepStarted:
    return StepStarted(node=node, attempt=attempt, lease=1, item=item, at=0.0)


def produced(node: str, value: Any, attempt: int = 1, item: int | None = None, fallback: bool = False) -> FactProduced:
    return FactProduced(node=node, value=value, attempt=attempt, item=item, fallback=fallback, at=0.0)


def failed(node: str, attempt: int = 1, retry_at: float | None = None, item: int | None = None) -> StepFailed:
    error = ErrorInfo(type="ValueError", message="boom")
    return StepFailed(node=node, attempt=attempt, error=error, retry_at=retry_at, item=item, at=0.0)


def fold_checking(wf: Workflow, events: list[Event], nows: Collection[float] = (0.0, 10.0)) -> WorkflowState:
    """Fold ``events`` one by one, comparing with the references (and a restored copy) after each.

    The state returned is folded without a look in between (looking drops stale heap entries).
    """
    state = WorkflowState(wf)
    for stored in number(RUN, events):
        state.apply(stored)
        running = state.started()
        assert_plans_like_the_reference(state, nows, [(), running, running[::2]])
        assert_plans_like_the_reference(WorkflowState.restore(wf, state.snapshot()), nows, [(), running])
    return WorkflowState.from_events(wf, number(RUN, events))


def noop(*args: Any) -> Any:
    return args


def map_workflow(**options: Any) -> Workflow:
    wf = Workflow("fanout")
    wf.step(noop, name="items")
    wf.map(lambda x: x, name="m", after="items", **options)
    wf.reduce(noop, name="total", after="m")
    return wf


# ---------------------------------------------------------------- pinned cases
def test_retry_times_of_several_items_follow_restarts_and_results():
    wf = map_workflow(retries=3)
    state = fold_checking(
        wf,
        [
            submitted(wf),
            started("items"),
            produced("items", [1, 2, 3]),
            MapExpanded(node="m", count=3),
            *(started("m", item=i) for i in range(3)),
            failed("m", item=0, retry_at=5.0),
            failed("m", item=1, retry_at=3.0),
            failed("m", item=2, retry_at=3.0),
        ],
        nows=(0.0, 3.0, 5.0),
    )
    assert state.next_wakeup() == 3.0
    assert [t.item for t in state.runnables(now=3.0)] == [1, 2]
    state = fold_checking(
        wf,
        [
            submitted(wf),
            started("items"),
            produced("items", [1, 2, 3]),
            MapExpanded(node="m", count=3),
            *(started("m", item=i) for i in range(3)),
            failed("m", item=0, retry_at=5.0),
            failed("m", item=1, retry_at=3.0),
            failed("m", item=2, retry_at=3.0),
            started("m", attempt=2, item=1),
            produced("m", 1, attempt=2, item=1),  # resolved: its retry time is gone
            started("m", attempt=2, item=2),
            failed("m", attempt=2, item=2, retry_at=3.0),  # the same time again
            started("m", attempt=2, item=0),
            failed("m", attempt=2, item=0, retry_at=1.0),  # earlier than before
            started("m", attempt=3, item=0),
            produced("m", 0, attempt=3, item=0),
            started("m", attempt=3, item=2),
            produced("m", 2, attempt=3, item=2),
        ],
        nows=(0.0, 1.0, 3.0),
    )
    assert state.next_wakeup() is None
    assert state.runnables() == [Task(node="total", attempt=1, inputs=([0, 1, 2],))]


def test_a_step_retried_twice_then_done_has_no_wakeup():
    wf = Workflow("flaky")
    wf.step(noop, name="a", retries=3)
    state = fold_checking(
        wf,
        [
            submitted(wf),
            started("a"),
            failed("a", retry_at=2.0),
            started("a", attempt=2),
            failed("a", attempt=2, retry_at=6.0),  # later than the first
        ],
        nows=(1.0, 2.0, 6.0),
    )
    assert state.next_wakeup() == 6.0
    state = fold_checking(
        wf,
        [
            submitted(wf),
            started("a"),
            failed("a", retry_at=2.0),
            started("a", attempt=2),
            failed("a", attempt=2, retry_at=6.0),  # later than the first
            started("a", attempt=3),
            produced("a", 1, attempt=3),
        ],
    )
    assert state.next_wakeup() is None and state.is_finished is False
    assert state.advance(0.0)[-1].__class__.__name__ == "RunCompleted"


def test_timers_and_waits_leave_the_indexes_when_they_resolve():
    wf = Workflow("timed")
    wf.step(noop, name="a")
    wf.sleep(5, name="nap", after="a")
    wf.sleep(2, name="short")
    wf.wait_for("go", name="gate", after="nap")
    wf.wait_for("stop", name="halt")
    wf.step(noop, name="end", after=["gate", "halt", "short"])
    state = fold_checking(
        wf,
        [
            submitted(wf),
            TimerScheduled(node="short", due_at=2.0, at=0.0),
            started("a"),
            produced("a", 1),
            TimerScheduled(node="nap", due_at=5.0, at=0.0),
            SignalReceived(signal_id=1, name="go", payload="g", at=0.0),
        ],
        nows=(0.0, 2.0, 5.0),
    )
    assert state.next_wakeup() == 2.0
    assert state.waiting_for() == ["stop"]
    state = fold_checking(
        wf,
        [
            submitted(wf),
            TimerScheduled(node="short", due_at=2.0, at=0.0),
            started("a"),
            produced("a", 1),
            TimerScheduled(node="nap", due_at=5.0, at=0.0),
            TimerFired(node="short", at=2.0),
            TimerFired(node="nap", at=5.0),
        ],
        nows=(5.0,),
    )
    assert state.next_wakeup() is None
    assert state.waiting_for() == ["go", "stop"]  # definition order
    state = fold_checking(
        wf,
        [
            submitted(wf),
            TimerScheduled(node="short", due_at=2.0, at=0.0),
            TimerFired(node="short", at=2.0),
            started("a"),
            produced("a", 1),
            TimerScheduled(node="nap", due_at=5.0, at=0.0),
            TimerFired(node="nap", at=5.0),
            SignalReceived(signal_id=1, name="stop", payload="s", at=0.0),
            SignalReceived(signal_id=2, name="go", payload="g", at=0.0),
            produced("halt", "s"),
            produced("gate", "g"),
        ],
    )
    assert state.waiting_for() == []
    assert state.runnables() == [
        Task(node="end", attempt=1, inputs=("g", "s", None))
    ]  # a root sleep passes the run input on


def test_a_map_with_items_in_flight_and_orphans():
    wf = map_workflow()
    events: list[Event] = [
        submitted(wf),
        started("items"),
        produced("items", list(range(6))),
        MapExpanded(node="m", count=6),
        *(started("m", item=i) for i in range(4)),
        produced("m", 0, item=0),
        StepSkipped(node="m", item=1, reason="x"),
    ]
    state = fold_checking(wf, events)
    for in_flight in [(), [("m", 2)], [("m", 2), ("m", 3)], [("m", 4), ("m", 5)], {("m", i) for i in range(6)}]:
        assert state.runnables(in_flight, 0.0) == ref_runnables(state, in_flight, 0.0)
    assert [t.item for t in state.runnables([("m", 2)])] == [3, 4, 5]


def test_skipped_branches_and_fallbacks_resolve_through_the_frontier():
    wf = Workflow("branches")
    wf.step(noop, name="a")
    wf.rule(noop, name="r", after="a", when=lambda x: False)
    wf.step(noop, name="b", after="r")
    wf.step(noop, name="c", after="b")
    wf.step(noop, name="d", after=["a", "c"])
    wf.step(noop, name="f", after="a", fallback=lambda x: "fb")
    state = fold_checking(
        wf,
        [
            submitted(wf),
            started("a"),
            produced("a", 1),
            started("r"),
            StepSkipped(node="r", reason="rule condition was false"),
            started("f"),
            failed("f"),
        ],
    )
    # one advance follows the chain of skips b -> c; d runs since one of its upstreams was not skipped
    assert [(type(e).__name__, getattr(e, "node", None)) for e in state.advance(0.0)] == [
        ("StepSkipped", "b"),
        ("StepSkipped", "c"),
    ]
    assert [t.key for t in state.runnables()] == [("f", None)] and state.runnables()[0].fallback
    state = fold_checking(
        wf,
        [
            submitted(wf),
            started("a"),
            produced("a", 1),
            started("r"),
            StepSkipped(node="r", reason="rule condition was false"),
            StepSkipped(node="b", reason="all upstream components were skipped"),
            StepSkipped(node="c", reason="all upstream components were skipped"),
            started("f"),
            failed("f"),
            started("f"),
            produced("f", "fb", fallback=True),
        ],
    )
    assert state.runnables() == [Task(node="d", attempt=1, inputs=(1, SKIPPED))]


def strict_workflow() -> Workflow:
    wf = Workflow("strict")
    wf.step(noop, name="a", retries=2)
    wf.step(noop, name="b", after="a")
    wf.step(noop, name="items")
    wf.map(noop, name="m", after="items")
    wf.wait_for("go", name="gate", after="a")
    wf.sleep(10, name="nap", after="a")
    return wf


STRICT = strict_workflow()
PREFIX: list[Event] = [
    submitted(STRICT),
    started("a"),
    failed("a", retry_at=4.0),
    started("items"),
    produced("items", [1, 2]),
    MapExpanded(node="m", count=2),
    started("m", item=0),
]


@pytest.mark.parametrize(
    "bad",
    [
        produced("a", 1),  # retrying, not running
        produced("gate", "x"),  # no signal, upstream unresolved
        TimerScheduled(node="nap", due_at=1.0),  # upstream unresolved
        TimerFired(node="nap"),
        StepSkipped(node="b", reason="x"),
        MapExpanded(node="m", count=2),
        failed("m", item=1),
        produced("m", 1, item=1),
        started("b"),
    ],
)
def test_a_refused_event_leaves_the_indexes_as_they_were(bad: Event):
    state = WorkflowState.from_events(STRICT, number(RUN, PREFIX))
    before = (set(state._index.frontier), set(state._index.open_waits), state.next_wakeup(), state.runnables(now=5.0))
    with pytest.raises(FoldError):
        state.apply(StoredEvent(run_id=RUN, seq=len(PREFIX) + 1, event=bad))
    assert (
        set(state._index.frontier),
        set(state._index.open_waits),
        state.next_wakeup(),
        state.runnables(now=5.0),
    ) == before
    assert_plans_like_the_reference(state, (0.0, 5.0, 20.0))


def test_restoring_mid_run_rebuilds_the_indexes():
    wf = map_workflow(retries=1, backoff="linear")

    def odd_items_fail_once(task: Task) -> Any:
        if task.node == "m" and task.item is not None and task.item % 2 and task.attempt == 1:
            raise ValueError("once")
        if task.node == "items":
            return list(range(5))
        return task.inputs[0][task.item] if task.item is not None else task.inputs[0]

    run = InProcessRun(wf, None)
    run.step(odd_items_fail_once)  # items
    run.step(odd_items_fail_once)  # expanded, every item ran once
    restored = WorkflowState.restore(wf, run.state.snapshot())
    assert restored == run.state
    assert restored._index.frontier == run.state._index.frontier == {"m"}
    assert restored.next_wakeup() == run.state.next_wakeup() == 1.0
    assert_plans_like_the_reference(restored, (0.0, 1.0))
    run.state = restored  # the rest of the run folds into the restored state
    run.run(odd_items_fail_once)
    assert run.state.status == "completed" and run.state.results()["m"] == [0, 1, 2, 3, 4]
    assert run.state.next_wakeup() is None and run.state._index.frontier == set()
    assert run.state == WorkflowState.from_events(wf, run.log)
