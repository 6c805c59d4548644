"""Checkpoint strategies in the pure core: the vocabulary, when a buffer is appended, and which
steps run again after a crash between checkpoints (the in-process runtime's ``crash``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import runner
from runner.checkpoint import CheckpointBuffer, as_strategy
from runner.errors import DefinitionError, InvalidArgument
from runner.events import FactProduced, RunResumed, RunSubmitted, StepContinued, kind_of
from runner.planning import Task
from runner.serialization import decode_event, encode_event
from runner.state import WorkflowState
from runner.testing.inprocess import InProcessRun

STEPS = ("a", "b", "c", "d", "e")


def chain(checkpoint: Any = None, unchecked: tuple[str, ...] = ()) -> runner.Workflow:
    """a -> b -> c -> d -> e, each adding one to its input."""
    wf = runner.Workflow("chain", checkpoint=checkpoint)
    previous = None
    for name in STEPS:
        previous = wf.step(lambda x: x + 1, name=name, after=previous, checkpoint=name not in unchecked)
    return wf


class Executions:
    """An interceptor that runs each step's code and counts how often each step ran."""

    def __init__(self, workflow: runner.Workflow) -> None:
        self.workflow = workflow
        self.count: Counter[str] = Counter()

    def __call__(self, task: Task) -> Any:
        self.count[task.node] += 1
        node = self.workflow.nodes[task.node]
        assert node.fn is not None
        return node.fn(*task.inputs)


def results_recorded(run: InProcessRun) -> list[str]:
    return [s.event.node for s in run.log if isinstance(s.event, FactProduced)]


def run_until_results(run: InProcessRun, intercept: Executions, count: int) -> None:
    """Cycle until ``count`` step results are folded (appended or not)."""
    while len(results_recorded(run)) < count:
        assert run.step(intercept)


# ----------------------------------------------------------- the vocabulary
def test_strategies_and_their_stored_names():
    assert as_strategy("every_step") is runner.Checkpoint.EVERY_STEP
    assert as_strategy("on_complete") is runner.Checkpoint.ON_COMPLETE
    assert as_strategy("every_n:3") == runner.every_n(3) == runner.EveryN(3)
    assert str(runner.every_n(3)) == "every_n:3" and as_strategy(str(runner.every_n(7))) == runner.every_n(7)
    assert runner.Checkpoint.ON_COMPLETE == "on_complete"


@pytest.mark.parametrize("bad", ["every_stepp", "every_n:x", "every_n:0", 3, None, "manual"])
def test_an_unknown_strategy_is_refused_naming_the_option(bad):
    with pytest.raises(InvalidArgument, match="checkpoint"):
        as_strategy(bad)


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_every_n_needs_a_whole_number_of_at_least_one(n):
    with pytest.raises(InvalidArgument, match=r"every_n\(n\) needs a whole number n >= 1"):
        runner.every_n(n)


def test_a_workflow_with_an_unknown_strategy_is_a_definition_error():
    with pytest.raises(DefinitionError, match="unknown checkpoint strategy 'sometimes'"):
        runner.Workflow("wf", checkpoint="sometimes")


def test_a_step_checkpoint_option_must_be_a_bool_and_nothing_is_added():
    wf = runner.Workflow("wf")
    with pytest.raises(DefinitionError, match="checkpoint must be True or False"):
        wf.step(lambda x: x, name="a", checkpoint="no")
    assert "a" not in wf.nodes
    node = wf.map(lambda x: x, name="m", after=wf.step(lambda x: x, name="src"), checkpoint=False)
    assert node.checkpoint is False and wf.nodes["m"] is node


def test_a_submit_with_an_unknown_strategy_stores_nothing():
    with pytest.raises(InvalidArgument, match="unknown checkpoint strategy"):
        InProcessRun(chain(), 0, checkpoint="often")


def test_the_definition_hash_changes_only_with_a_non_default_option():
    assert chain().definition_hash() == chain().definition_hash()
    assert chain(unchecked=("b",)).definition_hash() != chain().definition_hash()
    assert chain("on_complete").definition_hash() != chain().definition_hash()


# -------------------------------------------------- the strategy of a run
def test_the_submitted_strategy_is_in_run_submitted_and_wins_over_the_workflows():
    run = InProcessRun(chain("on_complete"), 0, checkpoint=runner.every_n(2))
    submitted = run.log[0].event
    assert isinstance(submitted, RunSubmitted) and submitted.checkpoint == "every_n:2"
    assert decode_event(*encode_event(submitted)) == submitted
    assert run.state.checkpoint_strategy() == runner.every_n(2)
    restored = WorkflowState.restore(run.workflow, run.state.snapshot())
    assert restored.checkpoint_strategy() == runner.every_n(2)
    assert InProcessRun(chain("on_complete"), 0).state.checkpoint_strategy() is runner.Checkpoint.ON_COMPLETE
    assert InProcessRun(chain(), 0).state.checkpoint_strategy() is runner.Checkpoint.EVERY_STEP


# ------------------------------------------------------- when to append
def test_every_step_appends_each_cycle_unless_only_unchecked_results_wait():
    buffer = CheckpointBuffer()
    assert buffer.due()
    buffer.note_result(checkpointed=False)
    assert not buffer.due()
    assert buffer.due(idle=True) and buffer.due(stopping=True)
    buffer.note_result(checkpointed=True)
    assert buffer.due()
    buffer.appended()
    assert buffer.due()


def test_every_n_appends_at_n_results_and_on_complete_only_at_boundaries():
    every_3, on_complete = CheckpointBuffer(runner.every_n(3)), CheckpointBuffer(runner.Checkpoint.ON_COMPLETE)
    for buffer in (every_3, on_complete):
        buffer.note_result(checkpointed=True)
        buffer.note_result(checkpointed=True)
        buffer.note_result(checkpointed=False)  # does not count
        assert not buffer.due()
        assert buffer.due(stopping=True) and buffer.due(idle=True)
    every_3.note_result(checkpointed=True)
    on_complete.note_result(checkpointed=True)
    assert every_3.due() and not on_complete.due()
    on_complete.note_events([StepContinued(node="a", attempt=1, call=runner.FactRef(hash="h", size=1), level=1)])
    assert on_complete.due()
    on_complete.appended()
    assert not on_complete.due()
    on_complete.note_events([RunResumed()])  # the store must show the run running at once
    assert on_complete.due()


@pytest.mark.parametrize(
    ("strategy", "appends"),
    [("every_step", 7), (runner.every_n(2), 4), (runner.every_n(5), 3), ("on_complete", 2)],
)
def test_a_chain_records_the_same_history_with_fewer_appends(strategy, appends):
    plain = InProcessRun(chain(), 0)
    plain.run()
    run = InProcessRun(chain(), 0, checkpoint=strategy)
    run.run()
    assert run.state.result == plain.state.result == 5
    assert [kind_of(s.event) for s in run.log] == [kind_of(s.event) for s in plain.log]
    assert run.appended == len(run.log)  # everything is stored once the run ended
    assert run.appends == appends


# ------------------------------------------- a crash between checkpoints
@pytest.mark.parametrize(
    ("strategy", "done_at_crash", "ran_twice"),
    [
        ("every_step", 3, set()),  # each result was appended before the next step started
        (runner.every_n(2), 3, {"c"}),  # a and b were appended together; c was buffered
        (runner.every_n(2), 4, set()),  # c and d were appended together
        ("on_complete", 4, {"a", "b", "c", "d"}),  # nothing but RunSubmitted was stored
    ],
)
def test_a_crash_between_checkpoints_keeps_the_appended_results_and_reruns_the_rest(strategy, done_at_crash, ran_twice):
    workflow = chain()
    executions = Executions(workflow)
    run = InProcessRun(workflow, 0, checkpoint=strategy)
    run_until_results(run, executions, done_at_crash)
    stored_before = results_recorded(run)[: len(STEPS)]
    run.crash()
    kept = results_recorded(run)
    assert set(kept) == set(stored_before[: len(kept)]) and set(STEPS[:done_at_crash]) - set(kept) == ran_twice
    run.run(executions)
    assert run.state.result == 5
    assert results_recorded(run) == list(STEPS)  # each result recorded once: no duplicates
    assert {name for name, count in executions.count.items() if count == 2} == ran_twice
    assert all(count <= 2 for count in executions.count.values())


def test_an_unchecked_step_reruns_until_a_dependant_checkpoints():
    workflow = chain(unchecked=("b",))
    executions = Executions(workflow)
    run = InProcessRun(workflow, 0)
    run_until_results(run, executions, 2)  # a appended, b only in memory
    run.crash()
    assert results_recorded(run) == ["a"]
    run_until_results(run, executions, 3)  # b ran again; c's checkpoint takes b's result with it
    run.step(executions)  # the next cycle appends
    run.crash()
    assert results_recorded(run)[:3] == ["a", "b", "c"]
    run.run(executions)
    assert executions.count == Counter(a=1, b=2, c=1, d=1, e=1)
    assert results_recorded(run) == list(STEPS)


def test_an_unchecked_step_is_carried_in_memory_to_its_dependant():
    run = InProcessRun(chain(unchecked=("a", "b", "c", "d")), 0)
    run.run()
    assert run.state.result == 5
    assert run.appends == 3  # RunSubmitted, a's start (its cycle), then e's result with the rest


# ------------------------------------------------------------- boundaries
def wait_then_step() -> runner.Workflow:
    wf = runner.Workflow("waits", checkpoint="on_complete")
    first = wf.step(lambda x: x + 1, name="first")
    go = wf.wait_for("go", after=first)
    wf.step(lambda x, y: x + y, name="last", after=[first, go])
    return wf


def test_a_run_waiting_for_a_signal_has_appended_everything():
    run = InProcessRun(wait_then_step(), 1)
    run.run()
    assert run.state.waiting_for() == ["go"]
    assert run.appended == len(run.log)
    run.crash()
    assert results_recorded(run) == ["first"]  # the wait keeps its result


def count_down(n: int) -> Any:
    return n if n == 0 else runner.continuation(count_down, n - 1)


def test_each_continuation_level_is_a_boundary_so_a_loop_holds_nothing():
    wf = runner.Workflow("loop", checkpoint="on_complete")
    wf.step(lambda n: runner.continuation(count_down, n), name="start")
    run = InProcessRun(wf, 4)
    run.run()
    assert run.state.result == 0
    levels = [s.seq for s in run.log if isinstance(s.event, StepContinued)]
    assert len(levels) == 5 and run.appends >= len(levels)


def test_a_continue_as_new_successor_keeps_the_submitted_strategy():
    from runner.continue_as_new import successor_run
    from runner.events import RunContinuedAsNew

    event = RunContinuedAsNew(node="a", successor_run_id="r:c1", input=1)
    new = successor_run("r", "chain", b"", "h", event, checkpoint="every_n:4")
    first = new.events[0]
    assert isinstance(first, RunSubmitted) and first.checkpoint == "every_n:4"
    assert successor_run("r", "chain", b"", "h", event).events[0].checkpoint is None
