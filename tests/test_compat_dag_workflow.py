"""Ray DAGs converted to native workflows, run in process (no Ray cluster: ``.bind()`` needs none)."""

from __future__ import annotations

import pytest
import ray

from runner.compat import ray_workflows as workflow
from runner.compat.dag_workflow import to_workflow
from runner.compat.run_input import RayWorkflowsRun
from runner.compat.status import NATIVE_TO_RAY, WorkflowStatus, native_statuses, parse_status_filter
from runner.errors import DefinitionError, InvalidArgument
from runner.store import RunStatus
from runner.testing.inprocess import drive
from runner.workflow import NodeKind


def no_refs(ref: object) -> object:
    raise AssertionError("no ObjectRef is bound in this DAG")


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray looks not started, and starting it fails the test: whatever runs here must need no
    cluster (another module of the session may have left a Ray instance up)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the code under test tried to start or join Ray")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)


def convert(dag: object):  # type: ignore[no-untyped-def]
    return to_workflow(dag, load=no_refs).workflow


@ray.remote
def read_data(num: int) -> list[int]:
    return list(range(num))


@ray.remote
def square_all(data: list[int]) -> list[int]:
    return [d * d for d in data]


@ray.remote
def total(data: list[int], extra: int = 0) -> int:
    return sum(data) + extra


@ray.remote
def add(left: int, right: int) -> int:
    return left + right


@ray.remote
def double(value: int) -> int:
    return 2 * value


def test_a_chain_of_tasks_is_a_chain_of_steps_and_runs_without_a_cluster(no_cluster: None) -> None:
    wf = convert(total.bind(square_all.bind(read_data.bind(10)), extra=1))
    assert list(wf.nodes) == ["read_data", "square_all", "total"]
    assert wf.nodes["total"].after == ("square_all",) and wf.output == "total"
    assert drive(wf).state.result == 286


def test_a_node_bound_twice_is_one_step_and_repeated_functions_are_numbered() -> None:
    shared = double.bind(3)
    wf = convert(add.bind(shared, double.bind(shared)))
    assert list(wf.nodes) == ["double", "double_1", "add"]
    assert wf.nodes["add"].after == ("double", "double_1")
    assert drive(wf).state.result == 6 + 12


def test_nodes_inside_lists_and_dicts_are_upstream_steps() -> None:
    @ray.remote
    def collect(values: list[object], named: dict[str, object]) -> int:
        return 0

    wf = convert(collect.bind([double.bind(1), (double.bind(2),)], {"k": read_data.bind(3)}))
    assert wf.nodes["collect"].after == ("double", "double_1", "read_data")


def test_task_id_names_the_step() -> None:
    inner = double.options(**workflow.options(task_id="inner")).bind(1)
    wf = convert(double.options(**workflow.options(task_id="outer")).bind(inner))
    assert list(wf.nodes) == ["inner", "outer"]
    assert drive(wf).state.results() == {"inner": 2, "outer": 4}


def test_resources_and_retry_options_map_onto_the_native_step() -> None:
    @ray.remote(num_cpus=0.5, resources={"gpu_box": 1}, max_retries=4, retry_exceptions=True)
    def heavy() -> int:
        return 1

    node = convert(heavy.bind()).nodes["heavy"]
    assert node.resources.num_cpus == 0.5 and dict(node.resources.custom) == {"gpu_box": 1}
    assert node.policy.retries == 4 and node.policy.backoff == "none"
    # Ray Workflows' default: the task's own exceptions are not retried
    assert convert(double.bind(1)).nodes["double"].policy.retries == 0


def test_retry_exceptions_retries_the_task_up_to_max_retries() -> None:
    calls: list[int] = []

    @ray.remote(max_retries=2, retry_exceptions=True)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return "ok"

    assert drive(convert(flaky.bind())).state.result == "ok"
    assert len(calls) == 3


def test_catch_exceptions_hands_downstream_a_value_and_error_pair() -> None:
    @ray.remote
    def broken() -> str:
        raise ValueError("oops")

    @ray.remote
    def report(outcome: tuple[object, BaseException | None]) -> str:
        value, error = outcome
        return f"error: {error}" if error else f"value: {value}"

    caught = broken.options(**workflow.options(catch_exceptions=True)).bind()
    assert drive(convert(report.bind(caught))).state.result == "error: oops"


def test_workflow_options_as_a_decorator() -> None:
    @workflow.options(task_id="named", catch_exceptions=True)
    @ray.remote
    def fails() -> None:
        raise KeyError("k")

    wf = convert(fails.bind())
    assert list(wf.nodes) == ["named"] and wf.nodes["named"].policy.catch_exceptions
    value, error = drive(wf).state.result
    assert value is None and isinstance(error, KeyError)


def test_checkpoint_is_accepted() -> None:
    wf = convert(double.options(**workflow.options(checkpoint=False)).bind(1))
    assert drive(wf).state.result == 2


def test_bound_constants_are_part_of_the_definition_hash() -> None:
    assert convert(double.bind(1)).definition_hash() != convert(double.bind(2)).definition_hash()
    assert convert(double.bind(1)).definition_hash() == convert(double.bind(1)).definition_hash()


def test_sleep_and_event_waits_become_native_timers_and_waits() -> None:
    wf = convert(add.bind(workflow.wait_for_event(workflow.SignalListener, "approved"), 1))
    wait = wf.nodes["wait_approved"]
    assert wait.kind is NodeKind.WAIT and wait.signal == "approved"
    run = drive(wf)
    assert not run.state.is_finished
    run.signal(1, "approved", 41)
    assert run.run().result == 42

    @ray.remote
    def woke(event: object) -> str:
        return f"woke with {event}"

    slept = convert(woke.bind(workflow.sleep(30)))
    assert slept.nodes["sleep"].kind is NodeKind.SLEEP and slept.nodes["sleep"].seconds == 30.0
    assert drive(slept, "the run input").state.result == "woke with None"  # a timer's event is None
    http = convert(double.bind(workflow.wait_for_event(workflow.HTTPListener, event_key="paid")))
    assert http.nodes["wait_paid"].signal == "paid"


def test_unsupported_event_listeners_are_refused_with_advice() -> None:
    class Polling(workflow.EventListener):
        async def poll_for_event(self) -> None: ...

    with pytest.raises(InvalidArgument, match="SignalListener"):
        workflow.wait_for_event(Polling)
    with pytest.raises(InvalidArgument, match="event listener class"):
        workflow.wait_for_event(str)
    with pytest.raises(InvalidArgument, match="exactly one"):
        workflow.wait_for_event(workflow.SignalListener, "a", "b")


@pytest.mark.parametrize(
    ("dag", "advice"),
    [
        (double, "bind its arguments"),
        (lambda: 1, "@ray.remote"),
        (42, "Ray DAG"),
    ],
)
def test_what_is_not_a_dag_is_refused_before_anything_starts(no_cluster: None, dag: object, advice: str) -> None:
    with pytest.raises(InvalidArgument, match=advice):  # before connecting (that would fail the test)
        workflow.run_async(dag)


def test_the_dag_input_reaches_the_steps_that_read_it() -> None:
    with ray.dag.InputNode() as dag_input:
        dag = add.bind(double.bind(dag_input[0]), dag_input.offset)
    wf = convert(dag)
    assert wf.nodes["dag_input"].inline and wf.nodes["add"].after == ("double", "dag_input")
    assert drive(wf, RayWorkflowsRun(args=(5,), kwargs={"offset": 1})).state.result == 11

    with ray.dag.InputNode() as whole:
        single = double.bind(whole)
    assert drive(convert(single), RayWorkflowsRun(args=(21,))).state.result == 42


def test_unknown_options_are_refused_with_the_task_named() -> None:
    with pytest.raises(InvalidArgument, match="unknown workflow option"):
        workflow.options(priority=1)
    with pytest.raises(InvalidArgument, match="task_id"):
        workflow.options(task_id="has space")
    with pytest.raises(InvalidArgument, match="starting with a letter"):
        workflow.options(task_id="1st")
    with pytest.raises(DefinitionError, match="runtime_env") as raised:
        convert(double.options(runtime_env={"pip": ["x"]}).bind(1))
    assert raised.value.component == "double"
    with pytest.raises(DefinitionError, match="one value"):
        convert(double.options(num_returns=2).bind(1))
    with pytest.raises(InvalidArgument, match="above @ray.remote"):
        workflow.options(task_id="x")(lambda: 1)


def test_nodes_inside_other_objects_are_refused() -> None:
    class Box:
        def __init__(self, item: object) -> None:
            self.item = item

    with pytest.raises(DefinitionError, match="list, tuple or dict"):
        convert(double.bind(Box(double.bind(1))))


def test_every_native_status_has_a_ray_workflows_status() -> None:
    assert set(NATIVE_TO_RAY) == set(RunStatus)
    assert NATIVE_TO_RAY[RunStatus.SUSPENDED] is WorkflowStatus.RUNNING
    assert NATIVE_TO_RAY[RunStatus.COMPLETED] == "SUCCESSFUL"
    assert set(native_statuses({WorkflowStatus.CANCELED})) == {RunStatus.CANCELLING, RunStatus.CANCELLED}
    assert parse_status_filter("FAILED") == {WorkflowStatus.FAILED}
    assert WorkflowStatus.NONE not in parse_status_filter(None)
    with pytest.raises(InvalidArgument, match="SUCCESSFUL"):
        parse_status_filter("DONE")


def test_a_continuation_dag_becomes_a_native_continuation_into_the_converted_workflow() -> None:
    from runner.compat.continuations import continue_with
    from runner.continuation import SubWorkflow

    wf = convert(add.bind(double.bind(double.bind(1)), 1))
    continued = continue_with(wf)
    assert isinstance(continued, SubWorkflow) and continued.workflow is wf
