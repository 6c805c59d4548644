"""Golden histories: committed event logs that must keep decoding and folding the same way.

Each file in tests/golden/ is a JSON list of ``{"seq", "kind", "payload"}``
where ``payload`` is the parsed JSON of ``serialization.encode_event``. The
tests only read them; a change to an event class or to the encoding that
breaks old logs fails here. Regenerate deliberately (and review the diff):

    REGENERATE_GOLDEN=1 .venv/bin/python tests/test_golden.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import runner
from runner import SKIPPED
from runner.events import (
    EVENT_TYPES,
    ApprovalDecided,
    ChildRunEnded,
    ChildRunStarted,
    ErrorInfo,
    RunReopened,
    StepFailed,
    StepLost,
    StoredEvent,
)
from runner.execution import StepResult, run_task
from runner.planning import Task
from runner.serialization import decode_event, decode_value, encode_event
from runner.state import WorkflowState
from runner.workflow import Workflow

GOLDEN = Path(__file__).parent / "golden"
RUN_ID = "golden-run"


# ------------------------------------------------------------ the workflows
def join_rule_workflow() -> Workflow:
    wf = Workflow("join_rule")

    @wf.step()
    def price(order):
        return sum(order["items"])

    @wf.step()
    def stock(order):
        return len(order["items"]) <= order["available"]

    @wf.rule(after=price, when=lambda p: p > 100)
    def review(p):
        return f"review {p}"

    @wf.step(after=review)
    def notify(r):
        return f"notified {r}"

    @wf.step(after=[price, stock, review])
    def ship(p, s, r):
        return {"price": p, "in_stock": s, "reviewed": r is not SKIPPED}

    return wf


def retry_workflow(calls: list[int] | None = None) -> Workflow:
    calls = [] if calls is None else calls
    wf = Workflow("retry")

    @wf.step(retries=3, backoff="linear", backoff_base=2)
    def charge(order):
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"gateway timeout {len(calls)}")
        return {"charged": order["amount"]}

    @wf.step(after=charge)
    def receipt(c):
        return f"receipt for {c['charged']}"

    return wf


def map_reduce_workflow() -> Workflow:
    wf = Workflow("map_reduce")

    @wf.step()
    def items(order):
        return order["items"]

    @wf.map(after=items)
    def square(x):
        return x * x

    @wf.reduce(after=square)
    def total(xs):
        return sum(xs)

    return wf


def lost_workflow() -> Workflow:
    wf = Workflow("lost")

    @wf.step(retries=1)
    def fetch(order):
        return order["items"]

    @wf.map(after=fetch)
    def weigh(x):
        return x * 10

    @wf.reduce(after=weigh)
    def total(xs):
        return sum(xs)

    return wf


def halve(n: int, steps: int) -> Any:
    """A loop written as continuations: one level per halving, until 1."""
    return steps if n <= 1 else runner.continuation(halve, n // 2, steps + 1)


def continuation_workflow() -> Workflow:
    wf = Workflow("continuation")

    @wf.step()
    def count(n):
        return runner.continuation(halve, n, 0)

    @wf.step(after=count)
    def report(steps):
        return f"{steps} halvings"

    return wf


def approval_workflow() -> Workflow:
    wf = Workflow("approval")

    @wf.step()
    def build(order):
        return f"build-{order['version']}"

    gate = wf.wait_for_approval("ship", after=build, on_reject="branch")

    @wf.step(after=[build, gate])
    def release(b, decision):
        return {"build": b, "shipped": decision.approved, "by": decision.by}

    return wf


def continue_as_new_workflow() -> Workflow:
    wf = Workflow("continue_as_new")

    @wf.step()
    def poll(state):
        return state["round"] * 10

    @wf.step(after=poll)
    def decide(value):
        return runner.continue_as_new({"round": value // 10 + 1})

    return wf


def reopened_workflow() -> Workflow:
    wf = Workflow("reopened")

    @wf.step()
    def fetch(order):
        return order["amount"]

    @wf.step(after=fetch)
    def charge(amount):
        return {"charged": amount}

    return wf


def child_run_workflow() -> Workflow:
    """Two child runs: ``billing`` completes and its result flows on; ``loyalty`` fails and is skipped."""
    billing = Workflow("billing")

    @billing.step()
    def bill(order):
        return order["amount"] * 2

    loyalty = Workflow("loyalty")

    @loyalty.step()
    def award(order):
        raise runner.NonRetryableError("loyalty service closed")

    wf = Workflow("child_run")
    wf.child_run(billing, name="billing")
    wf.child_run(loyalty, name="loyalty", on_failure="skip")

    @wf.step(after=["billing", "loyalty"])
    def report(billed, points):
        return {"billed": billed, "points": None if points is SKIPPED else points}

    return wf


def sub_workflow_workflow() -> Workflow:
    """A step continues into a whole workflow (runner.continuation(workflow, input)): it runs as a
    child run in the step's place, and its result is the step's."""
    billing = Workflow("sub_billing")

    @billing.step()
    def charge(amount):
        return amount * 2

    wf = Workflow("sub_workflow")

    @wf.step()
    def pay(order):
        return runner.continuation(billing, order["amount"])

    @wf.step(after=pay)
    def receipt(charged):
        return f"charged {charged}"

    return wf


def checkpoint_workflow() -> Workflow:
    """A chain run under every_n(2) (chosen at submit), one step with checkpoint=False."""
    wf = Workflow("checkpoint")
    first = wf.step(lambda x: x + 1, name="first")
    middle = wf.step(lambda x: x * 10, name="middle", after=first, checkpoint=False)
    wf.step(lambda x: x - 1, name="last", after=middle)
    return wf


def failing_first(node: str) -> Any:
    """An interceptor factory for ``drive``: the first run of ``node`` raises (its cause, later fixed)."""

    def make(wf: Workflow) -> Any:
        runs: list[str] = []

        def intercept(task: Task) -> Any:
            runs.append(task.node)
            if task.node == node and runs.count(node) == 1:
                raise ConnectionError("payment gateway down")
            return run_task(wf.nodes[task.node], task, task.inputs)

        return intercept

    return make


NODE_DIED = ErrorInfo(type="ray.exceptions.NodeDiedError", message="the node running this task died")


def losing(losses: dict[tuple[str, int | None], int]) -> Any:
    """An interceptor factory for ``drive``: the first ``losses[key]`` runs of a task are lost to the system."""

    def make(wf: Workflow) -> Any:
        runs: dict[tuple[str, int | None], int] = {}

        def intercept(task: Task) -> Any:
            runs[task.key] = runs.get(task.key, 0) + 1
            if runs[task.key] <= losses.get(task.key, 0):
                return StepResult(error=NODE_DIED, lost=True)
            return run_task(wf.nodes[task.node], task, task.inputs)

        return intercept

    return make


CASES: dict[str, tuple[Any, Any]] = {
    # name: (workflow builder, input)
    "join_rule": (join_rule_workflow, {"items": [10, 20], "available": 5}),
    "retry": (retry_workflow, {"amount": 42}),
    "map_reduce": (map_reduce_workflow, {"items": [1, 2, 3]}),
    "lost": (lost_workflow, {"items": [1, 2]}),
    "continuation": (continuation_workflow, 8),
    "reopened": (reopened_workflow, {"amount": 42}),
    "approval": (approval_workflow, {"version": 3}),
    "continue_as_new": (continue_as_new_workflow, {"round": 2}),
    "child_run": (child_run_workflow, {"amount": 21}),
    "sub_workflow": (sub_workflow_workflow, {"amount": 21}),
    "checkpoint": (checkpoint_workflow, 4),
}
CHECKPOINTS: dict[str, str] = {
    # name: the checkpoint strategy the run is submitted with (RunSubmitted.checkpoint)
    "checkpoint": "every_n:2",
}
SIGNALS: dict[str, list[tuple[int, str, Any]]] = {
    # name: signals received right after RunSubmitted (signal id, name, payload)
    "approval": [
        (
            1,
            "approval:ship",
            {"approval": "ship", "approved": False, "by": "lee", "comment": "freeze", "decided_at": 12.0},
        )
    ],
}
INTERCEPTORS: dict[str, Any] = {
    # name: what stands in for the infrastructure while the golden history is generated
    "lost": losing({("fetch", None): 1, ("weigh", 1): 2}),
    "reopened": failing_first("charge"),
}
REOPENED: dict[str, str] = {
    # name: the reason of the RunReopened recorded after the run failed (then it runs on)
    "reopened": "payment gateway back",
}


# ------------------------------------------------------------------ reading
def load(name: str) -> list[dict[str, Any]]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def decode(entries: list[dict[str, Any]]) -> list[StoredEvent]:
    return [
        StoredEvent(run_id=RUN_ID, seq=e["seq"], event=decode_event(e["kind"], json.dumps(e["payload"])))
        for e in entries
    ]


def fold(name: str) -> tuple[WorkflowState, list[StoredEvent]]:
    builder, _ = CASES[name]
    log = decode(load(name))
    return WorkflowState.from_events(builder(), log), log


def kinds(log: list[StoredEvent]) -> list[str]:
    return [type(s.event).__name__ for s in log]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_file_is_well_formed(name):
    entries = load(name)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(set(e) == {"seq", "kind", "payload"} for e in entries)
    assert all(e["kind"] in EVENT_TYPES for e in entries)
    assert entries[0]["kind"] == "RunSubmitted" and entries[-1]["kind"] in (
        "RunCompleted",
        "RunFailed",
        "RunContinuedAsNew",
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_payloads_still_encode_the_same_way(name):
    """Every stored field comes back from decode + encode unchanged (new fields may be added)."""
    for entry, stored in zip(load(name), decode(load(name)), strict=True):
        kind, payload = encode_event(stored.event)
        assert kind == entry["kind"]
        again = json.loads(payload)
        for field, value in entry["payload"].items():
            assert field in again, f"{kind}.{field} is gone: old logs lose it"
            if isinstance(value, dict) and "pickle" in value:  # pickle bytes may differ between versions
                assert decode_value(again[field]) == decode_value(value)
            else:
                assert again[field] == value, f"{kind}.{field} is encoded differently now"


def test_join_rule_history():
    state, log = fold("join_rule")
    assert state.status == "completed"
    assert state.result == {"ship": {"price": 30, "in_stock": True, "reviewed": False}}
    assert state.results()["review"] is SKIPPED
    assert state.results()["notify"] is SKIPPED
    assert state.input == {"items": [10, 20], "available": 5}
    assert kinds(log) == [
        "RunSubmitted",
        "StepStarted",
        "FactProduced",
        "StepStarted",
        "FactProduced",
        "StepStarted",
        "StepSkipped",
        "StepSkipped",
        "StepStarted",
        "FactProduced",
        "RunCompleted",
    ]
    skipped = [(s.event.node, s.event.reason) for s in log if type(s.event).__name__ == "StepSkipped"]
    assert skipped == [("review", "rule condition was false"), ("notify", "all upstream components were skipped")]


def test_retry_history():
    state, log = fold("retry")
    assert state.status == "completed"
    assert state.result == "receipt for 42"
    failures = [s.event for s in log if isinstance(s.event, StepFailed)]
    assert [(f.attempt, f.retry_at) for f in failures] == [(1, 2.0), (2, 6.0)]
    assert [f.error.type for f in failures] == ["ConnectionError", "ConnectionError"]
    assert [f.error.message for f in failures] == ["gateway timeout 1", "gateway timeout 2"]
    charge = state.task("charge")
    assert (charge.status, charge.attempt, charge.value) == ("done", 3, {"charged": 42})
    assert charge.error == failures[-1].error  # the last failure stays on record
    assert state.next_wakeup() is None


def test_map_reduce_history():
    state, log = fold("map_reduce")
    assert state.status == "completed"
    assert state.result == 14
    assert state.results()["square"] == [1, 4, 9]
    expanded = [s.event for s in log if type(s.event).__name__ == "MapExpanded"]
    assert [(e.node, e.count) for e in expanded] == [("square", 3)]
    items = [(s.event.node, s.event.item) for s in log if type(s.event).__name__ == "StepStarted"]
    assert items == [("items", None), ("square", 0), ("square", 1), ("square", 2), ("total", None)]


def test_continuation_history():
    """Each level of the loop is a StepContinued naming its stored call; the last call's value is the step's."""
    state, log = fold("continuation")
    assert state.status == "completed" and state.result == "3 halvings"
    continued = [s.event for s in log if type(s.event).__name__ == "StepContinued"]
    assert [(e.node, e.level, e.attempt) for e in continued] == [
        ("count", 1, 1),
        ("count", 2, 1),
        ("count", 3, 1),
        ("count", 4, 1),
    ]
    assert all(len(e.call.hash) == 64 for e in continued)
    assert state.task("count").level == 4


def test_continue_as_new_history():
    """The run ends with RunContinuedAsNew naming its successor (derived from the run id) and its input."""
    state, log = fold("continue_as_new")
    assert state.status == "continued" and state.successor_run_id == f"{RUN_ID}:c1"
    assert kinds(log) == ["RunSubmitted", "StepStarted", "FactProduced", "StepStarted", "RunContinuedAsNew"]
    last = log[-1].event
    assert (last.node, last.successor_run_id, last.input) == ("decide", f"{RUN_ID}:c1", {"round": 3})


def test_lost_history():
    """Tasks lost to the system ran again with the same attempt; the step's retry was not spent."""
    state, log = fold("lost")
    assert state.status == "completed"
    assert state.result == 30
    lost = [s.event for s in log if isinstance(s.event, StepLost)]
    assert [(e.node, e.item, e.attempt, e.error.type) for e in lost] == [
        ("fetch", None, 1, "ray.exceptions.NodeDiedError"),
        ("weigh", 1, 1, "ray.exceptions.NodeDiedError"),
        ("weigh", 1, 1, "ray.exceptions.NodeDiedError"),
    ]
    assert not [s for s in log if isinstance(s.event, StepFailed)]
    facts = [(s.event.node, s.event.item, s.event.attempt) for s in log if type(s.event).__name__ == "FactProduced"]
    assert facts == [("fetch", None, 1), ("weigh", 0, 1), ("weigh", 1, 1), ("total", None, 1)]
    steps = {s.name: s for s in state.steps()}
    assert [(steps[n].attempts, steps[n].lost) for n in ("fetch", "weigh", "total")] == [(1, 1), (2, 2), (1, 0)]


def test_reopened_history():
    """A run that failed, was reopened after its cause was fixed, and completed: only the failed
    step ran again, with the next attempt number and a fresh budget."""
    state, log = fold("reopened")
    assert state.status == "completed"
    assert state.result == {"charged": 42}
    assert kinds(log) == [
        "RunSubmitted",
        "StepStarted",
        "FactProduced",
        "StepStarted",
        "StepFailed",
        "RunFailed",
        "RunReopened",
        "StepStarted",
        "FactProduced",
        "RunCompleted",
    ]
    reopened = [s.event for s in log if isinstance(s.event, RunReopened)]
    assert [(e.from_status, e.reason) for e in reopened] == [("failed", "payment gateway back")]
    starts = [(s.event.node, s.event.attempt) for s in log if type(s.event).__name__ == "StepStarted"]
    assert starts == [("fetch", 1), ("charge", 1), ("charge", 2)]


def test_approval_history():
    """A rejection recorded with who, when and why; on_reject="branch" passes the decision on."""
    state, log = fold("approval")
    assert state.status == "completed"
    assert state.result == {"build": "build-3", "shipped": False, "by": "lee"}
    [decided] = [s.event for s in log if isinstance(s.event, ApprovalDecided)]
    assert (decided.node, decided.approval, decided.signal_id, decided.approved) == ("approve_ship", "ship", 1, False)
    assert (decided.by, decided.comment, decided.decided_at) == ("lee", "freeze", 12.0)
    assert kinds(log)[:2] == ["RunSubmitted", "SignalReceived"]


def test_child_run_history():
    """Each child run is started under the id fixed by the parent and the component; the completed
    child's result is the component's, the failed child's ChildRunFailed skips its component."""
    state, log = fold("child_run")
    assert state.status == "completed"
    assert state.result == {"billed": 42, "points": None}
    started = [(s.event.node, s.event.child_run_id) for s in log if isinstance(s.event, ChildRunStarted)]
    assert started == [("billing", f"{RUN_ID}:billing"), ("loyalty", f"{RUN_ID}:loyalty")]
    ended = [s.event for s in log if isinstance(s.event, ChildRunEnded)]
    assert [(e.node, e.status, e.result) for e in ended] == [("billing", "completed", 42), ("loyalty", "failed", None)]
    assert ended[1].error is not None and ended[1].error.type == "runner.errors.ChildRunFailed"
    assert "loyalty service closed" in ended[1].error.message
    assert state.results()["loyalty"] is SKIPPED
    assert state.children() == {"billing": f"{RUN_ID}:billing", "loyalty": f"{RUN_ID}:loyalty"}


def test_sub_workflow_history():
    """The step's continuation into a workflow is a ChildRunStarted naming the stored sub-workflow;
    the child's result is the step's."""
    state, log = fold("sub_workflow")
    assert state.status == "completed" and state.result == "charged 42"
    [started] = [s.event for s in log if isinstance(s.event, ChildRunStarted)]
    assert (started.node, started.child_run_id) == ("pay", f"{RUN_ID}:pay")
    assert isinstance(started.sub_workflow, runner.FactRef)
    [ended] = [s.event for s in log if isinstance(s.event, ChildRunEnded)]
    assert (ended.node, ended.status, ended.result) == ("pay", "completed", 42)
    assert kinds(log) == [
        "RunSubmitted",
        "StepStarted",
        "ChildRunStarted",
        "ChildRunEnded",
        "StepStarted",
        "FactProduced",
        "RunCompleted",
    ]


def test_checkpoint_history():
    """The submit's strategy is in RunSubmitted; the history is what every_step would record."""
    state, log = fold("checkpoint")
    assert log[0].event.checkpoint == "every_n:2"
    assert state.checkpoint_strategy() == runner.every_n(2)
    assert state.result == 49


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_history_matches_a_fresh_in_process_run(name):
    """Today's runtime still produces the committed history (kinds, nodes, items, values)."""
    fresh = generate(name)
    committed = load(name)
    assert [(e["kind"], e["payload"].get("node"), e["payload"].get("item")) for e in fresh] == [
        (e["kind"], e["payload"].get("node"), e["payload"].get("item")) for e in committed
    ]
    for new, old in zip(fresh, committed, strict=True):
        if new["kind"] in ("FactProduced", "RunCompleted"):
            field = "value" if new["kind"] == "FactProduced" else "result"
            assert decode_value(new["payload"][field]) == decode_value(old["payload"][field])


# --------------------------------------------------------------- generating
def _stable_error(error: ErrorInfo) -> ErrorInfo:
    """Tracebacks hold file paths and pickles depend on the Python version: keep the text only."""
    return dataclasses.replace(error, traceback=f"{error.type}: {error.message}\n", pickled=None)


def generate(name: str) -> list[dict[str, Any]]:
    from runner.testing.inprocess import InProcessRun

    builder, input = CASES[name]
    workflow = builder()
    run = InProcessRun(workflow, input, run_id=RUN_ID, checkpoint=CHECKPOINTS.get(name))
    for signal_id, signal_name, payload in SIGNALS.get(name, []):
        run.signal(signal_id, signal_name, payload)
    intercept = INTERCEPTORS[name](workflow) if name in INTERCEPTORS else None
    run.run(intercept)
    if name in REOPENED:
        run.record(RunReopened(from_status=run.state.status.value, reason=REOPENED[name], at=run.now))
        run.run(intercept)
    entries = []
    for stored in run.log:
        event = stored.event
        if isinstance(getattr(event, "error", None), ErrorInfo):
            event = dataclasses.replace(event, error=_stable_error(event.error))  # type: ignore[arg-type]
        if type(event).__name__ == "RunSubmitted":
            event = dataclasses.replace(event, definition_hash="0" * 64)  # type: ignore[arg-type]
        kind, payload = encode_event(event)
        entries.append({"seq": stored.seq, "kind": kind, "payload": json.loads(payload)})
    return entries


def regenerate() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name in sorted(CASES):
        path = GOLDEN / f"{name}.json"
        path.write_text(json.dumps(generate(name), indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    if not os.environ.get("REGENERATE_GOLDEN"):
        sys.exit("refusing to overwrite the golden files: set REGENERATE_GOLDEN=1 to do it on purpose")
    regenerate()
