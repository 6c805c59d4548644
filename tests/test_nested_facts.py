"""Large map items reach downstream as values: the fold marks results that hold fact
references inside a list, planning flags the tasks that read them, and ``task_args``
loads every reference among a task's arguments (pure: facts come from a dict)."""

from __future__ import annotations

from typing import Any

from runner.events import FactProduced, FactRef, FactReused, MapExpanded, RunSubmitted, StepStarted, number
from runner.execution import run_task, task_args
from runner.planning import Task
from runner.serialization import FactLoader, externalize
from runner.state import WorkflowState
from runner.workflow import Workflow

RUN = "run-1"


class Facts:
    """Facts by hash, and the hashes loaded so far."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.loaded: list[str] = []

    def ref(self, value: Any) -> FactRef:
        ref, blob = externalize(value, threshold=0)
        assert isinstance(ref, FactRef) and blob is not None
        self.blobs[ref.hash] = blob
        return ref

    def loader(self) -> FactLoader:
        def load_fact(fact_hash: str) -> bytes:
            self.loaded.append(fact_hash)
            return self.blobs[fact_hash]

        return FactLoader(load_fact)


def workflow() -> Workflow:
    wf = Workflow("big_items")

    @wf.step()
    def items(n):
        return list(range(n))

    @wf.map(after=items)
    def blow_up(i):
        return [i] * 10_000

    @wf.reduce(after=blow_up)
    def sizes(xs):
        return [len(x) for x in xs]

    @wf.rule(after=[items, blow_up], when=lambda ids, xs: len(xs) == len(ids))
    def check(ids, xs):
        return sum(len(x) for x in xs)

    @wf.step(after=[blow_up, sizes])
    def join(xs, ns):
        return len(xs[0]) == ns[0]

    @wf.map(after=blow_up)
    def again(x):
        return len(x)

    return wf


def folded(wf: Workflow, facts: Facts, *, all_large: bool = True) -> WorkflowState:
    """``items`` done with [0, 1]; both map items done, item 0 (and 1 if ``all_large``) stored as a fact."""
    second: Any = facts.ref([1] * 10_000) if all_large else [1] * 3
    events = [
        RunSubmitted(workflow=wf.name, input=2, definition_hash=wf.definition_hash(), at=0.0),
        StepStarted(node="items", attempt=1, lease=1, at=0.0),
        FactProduced(node="items", value=[0, 1], at=0.0),
        MapExpanded(node="blow_up", count=2, at=0.0),
        StepStarted(node="blow_up", item=0, attempt=1, lease=1, at=0.0),
        StepStarted(node="blow_up", item=1, attempt=1, lease=1, at=0.0),
        FactProduced(node="blow_up", item=0, value=facts.ref([0] * 10_000), at=0.0),
        FactProduced(node="blow_up", item=1, value=second, at=0.0),
    ]
    return WorkflowState.from_events(wf, number(RUN, events))


def test_a_map_whose_items_are_facts_flags_the_tasks_downstream() -> None:
    facts = Facts()
    state = folded(workflow(), facts)
    tasks = {t.node: t for t in state.runnables()}
    assert state.results()["blow_up"][0] == facts.ref([0] * 10_000)  # the list holds references
    assert {name for name, t in tasks.items() if t.nested_facts} == {"sizes", "check"}  # "again" runs once expanded
    assert not tasks.get("items", Task(node="items", attempt=1, inputs=())).nested_facts


def test_a_map_of_small_items_flags_nothing() -> None:
    wf = Workflow("small")

    @wf.step()
    def items(n):
        return list(range(n))

    @wf.map(after=items)
    def double(i):
        return 2 * i

    @wf.reduce(after=double)
    def total(xs):
        return sum(xs)

    events = [
        RunSubmitted(workflow=wf.name, input=2, definition_hash=wf.definition_hash(), at=0.0),
        StepStarted(node="items", attempt=1, lease=1, at=0.0),
        FactProduced(node="items", value=[0, 1], at=0.0),
        MapExpanded(node="double", count=2, at=0.0),
        StepStarted(node="double", item=0, attempt=1, lease=1, at=0.0),
        FactProduced(node="double", item=0, value=0, at=0.0),
        StepStarted(node="double", item=1, attempt=1, lease=1, at=0.0),
        FactProduced(node="double", item=1, value=2, at=0.0),
    ]
    state = WorkflowState.from_events(wf, number(RUN, events))
    assert [(t.node, t.nested_facts) for t in state.runnables()] == [("total", False)]


def test_a_reused_list_of_references_flags_the_tasks_downstream() -> None:
    facts = Facts()
    wf = workflow()
    events = [
        RunSubmitted(workflow=wf.name, input=2, definition_hash=wf.definition_hash(), at=0.0),
        FactReused(node="items", value=[0, 1], source_run_id="parent", at=0.0),
        FactReused(node="blow_up", value=[facts.ref([0] * 10_000), [1]], source_run_id="parent", at=0.0),
    ]
    state = WorkflowState.from_events(wf, number(RUN, events))
    assert {t.node for t in state.runnables() if t.nested_facts} == {"sizes", "check"}  # "again" runs once expanded


def test_every_kind_of_task_gets_values_and_each_fact_is_loaded_once() -> None:
    facts = Facts()
    wf = workflow()
    state = folded(wf, facts, all_large=False)
    tasks = {(t.node, t.item): t for t in state.runnables()}
    big = [0] * 10_000

    load = facts.loader()
    assert run_task(wf.nodes["sizes"], tasks[("sizes", None)], tasks[("sizes", None)].inputs, load) == [10_000, 3]
    assert facts.loaded == [facts.ref(big).hash]
    assert run_task(wf.nodes["check"], tasks[("check", None)], tasks[("check", None)].inputs, facts.loader()) == 10_003
    # a map over the list loads only its own item's fact
    facts.loaded.clear()
    again = wf.nodes["again"]
    state.apply(number(RUN, [MapExpanded(node="again", count=2, at=0.0)], first=state.cursor + 1)[0])
    items = {t.item: t for t in state.runnables() if t.node == "again"}
    assert task_args(again, items[1], items[1].inputs, facts.loader()) == ([1, 1, 1],)
    assert facts.loaded == []
    assert task_args(again, items[0], items[0].inputs, facts.loader()) == (big,)
    assert facts.loaded == [facts.ref(big).hash]


def test_a_top_level_reference_is_loaded_without_the_flag() -> None:
    facts = Facts()
    wf = workflow()
    ref = facts.ref([5] * 10_000)
    task = Task(node="sizes", attempt=1, inputs=(ref,))
    assert task_args(wf.nodes["sizes"], task, task.inputs, facts.loader()) == ([5] * 10_000,)
    # a map over a list stored whole: its item is taken from the loaded list
    item = Task(node="blow_up", attempt=1, item=1, inputs=(facts.ref(list(range(5000))),))
    assert task_args(wf.nodes["blow_up"], item, item.inputs, facts.loader()) == (1,)
    # without a loader (the in-process runtime) the inputs pass as they are
    assert task_args(wf.nodes["sizes"], task, task.inputs) == (ref,)
