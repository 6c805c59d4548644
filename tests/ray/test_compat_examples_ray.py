"""Ray Workflows' documented examples, re-expressed, run on the runner through the compatibility layer.

Each example is written as a Ray Workflows program would be; only the import
differs (``from runner.compat import ray_workflows as workflow``). All runs of
the module share one Runner (one connect), to keep the module short.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray_support import eventually, kill_runner

from runner.compat import ray_workflows as workflow
from runner.errors import DefinitionError, InvalidArgument


@pytest.fixture(scope="module")
def compat(ray_instance: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    store = "duckdb:///" + str(tmp_path_factory.mktemp("compat") / "workflows.duckdb")
    workflow.init(store=store, namespace=f"compat-{uuid.uuid4().hex[:10]}")
    yield
    kill_runner(workflow.native_client())


def note(path: str, word: str) -> None:
    with open(path, "a") as f:
        f.write(word + "\n")


def lines(path: str) -> list[str]:
    """What tasks noted in ``path`` (a side effect the tests count runs by)."""
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


@ray.remote
def read_data(num: int) -> list[int]:
    return list(range(num))


@ray.remote
def squares(data: list[int]) -> list[int]:
    return [d * d for d in data]


@ray.remote
def aggregate(data: list[int]) -> int:
    return sum(data)


@ray.remote
def add(left: int, right: int) -> int:
    return left + right


@ray.remote
def get_val() -> int:
    return 10


@ray.remote
def double(value: int) -> int:
    return 2 * value


def test_a_dag_runs_and_its_output_and_task_outputs_can_be_read(compat: None) -> None:
    output = aggregate.bind(squares.bind(read_data.bind(10)))
    assert workflow.run(output) == 285
    assert ray.get(workflow.run_async(output)) == 285

    assert workflow.run(add.bind(get_val.bind(), 20), workflow_id="add_example") == 30
    assert workflow.get_output("add_example") == 30

    with ray.dag.InputNode() as dag_input:
        with_input = add.bind(dag_input[0], dag_input.right)
    assert workflow.run(with_input, ray.put(1), right=2) == 3

    inner = double.options(**workflow.options(task_id="inner")).bind(1)
    outer = double.options(**workflow.options(task_id="outer")).bind(inner)
    result_ref = workflow.run_async(outer, workflow_id="double")
    assert ray.get(workflow.get_output_async("double", task_id="inner")) == 2
    assert ray.get(workflow.get_output_async("double", task_id="outer")) == 4
    assert ray.get(result_ref) == 4


def test_nested_task_outputs_arrive_as_refs_and_object_refs_as_values(compat: None) -> None:
    @ray.remote
    def add_all(values: list[ray.ObjectRef]) -> int:
        return sum(ray.get(values))  # computed and recorded before this task started

    assert workflow.run(add_all.bind([get_val.bind() for _ in range(3)])) == 30

    @ray.remote
    def plus(a: int, b: int) -> ray.ObjectRef:
        return add.remote(a, b)  # a returned ObjectRef is recorded as its value

    assert workflow.run(plus.bind(ray.put(10), ray.put(20))) == 30

    @ray.remote
    def total_of(named: dict[str, ray.ObjectRef], refs: list[ray.ObjectRef]) -> int:
        return sum(ray.get(list(named.values()))) + sum(ray.get(refs))

    assert workflow.run(total_of.bind({"a": get_val.bind()}, [ray.put(1), ray.put(2)])) == 13


def test_retries_caught_exceptions_and_failures(compat: None, tmp_path: Path) -> None:
    attempts = str(tmp_path / "attempts")

    @ray.remote(max_retries=3, retry_exceptions=True)
    def flaky() -> str:
        note(attempts, "try")
        if len(lines(attempts)) < 3:
            raise RuntimeError("oops")
        return "OK"

    assert workflow.run(flaky.bind()) == "OK"
    assert len(lines(attempts)) == 3

    @ray.remote
    def faulty() -> str:
        raise RuntimeError("oops")

    @ray.remote
    def handle_errors(result: tuple[str | None, Exception | None]) -> str:
        error = result[1]
        return f"There was an error: {error}" if error else "OK"

    caught = faulty.options(**workflow.options(catch_exceptions=True)).bind()
    assert workflow.run(handle_errors.bind(caught)) == "There was an error: oops"

    with pytest.raises(ray.exceptions.RayTaskError) as raised:
        workflow.run(faulty.bind(), workflow_id="faulty")
    assert isinstance(raised.value, RuntimeError)  # the task's own exception type, as under Ray
    assert workflow.get_status("faulty") == workflow.FAILED


@ray.remote
def factorial(n: int) -> int:
    if n == 1:
        return 1
    return workflow.continuation(multiply.bind(n, factorial.bind(n - 1)))


@ray.remote
def multiply(a: int, b: int) -> int:
    return a * b


def test_continuations_recurse_and_fan_out(compat: None) -> None:
    assert workflow.run(factorial.bind(10)) == 3628800
    assert ray.get(factorial.bind(4).execute()) == 24  # the same code as a plain Ray DAG

    @ray.remote
    def book_flight(origin: str, dest: str) -> str:
        return f"flight {origin}->{dest}"

    @ray.remote
    def book_hotel(city: str) -> str:
        return f"hotel {city}"

    @ray.remote
    def finalize(flights: list[ray.ObjectRef], hotels: list[ray.ObjectRef]) -> str:
        return " | ".join(ray.get(flights) + ray.get(hotels))

    @ray.remote
    def book_trip(origin: str, dest: str) -> str:
        there, back = book_flight.bind(origin, dest), book_flight.bind(dest, origin)
        return workflow.continuation(finalize.bind([there, back], [book_hotel.bind(dest)]))

    assert workflow.run(book_trip.bind("OAK", "SAN")) == "flight OAK->SAN | flight SAN->OAK | hotel SAN"


def test_sleep_and_waiting_for_an_event(compat: None) -> None:
    @ray.remote
    def after_sleep(_: object, label: str) -> str:
        return f"{label} done"

    assert workflow.run(after_sleep.bind(workflow.sleep(0.2), "nap")) == "nap done"

    @ray.remote
    def greet(event: dict[str, str]) -> str:
        return f"hello {event['name']}"

    event = workflow.wait_for_event(workflow.SignalListener, "arrived")
    ref = workflow.run_async(greet.bind(event), workflow_id="greeter")
    suspended = eventually(lambda: workflow.native_client().get("greeter").status().value == "suspended")
    assert suspended and workflow.get_status("greeter") == workflow.RUNNING
    workflow.send_event("greeter", "arrived", {"name": "ray"})
    assert ray.get(ref) == "hello ray"


def test_a_failed_workflow_resumes_from_its_recorded_results(compat: None, tmp_path: Path) -> None:
    ran, fixed = str(tmp_path / "ran"), tmp_path / "fixed"

    @ray.remote
    def fetch() -> int:
        note(ran, "fetch")
        return 20

    @ray.remote
    def publish(value: int) -> int:
        note(ran, "publish")
        if not fixed.exists():
            raise ConnectionError("service down")
        return value + 1

    with pytest.raises(ConnectionError):
        workflow.run(publish.bind(fetch.bind()), workflow_id="publisher")
    assert workflow.get_status("publisher") == workflow.FAILED
    fixed.touch()
    assert workflow.resume("publisher") == 21
    assert lines(ran) == ["fetch", "publish", "publish"]  # fetch's recorded result was reused
    assert workflow.get_status("publisher") == workflow.SUCCESSFUL


def test_status_listing_metadata_cancel_and_delete(compat: None) -> None:
    trip = double.options(**workflow.options(task_id="trip", metadata={"k1": "v1"})).bind(5)
    workflow.run(trip, workflow_id="trip1", metadata={"k2": "v2"})
    run_meta = workflow.get_metadata("trip1")
    assert run_meta["status"] == "SUCCESSFUL" and run_meta["user_metadata"] == {"k2": "v2"}
    assert run_meta["stats"]["end_time"] >= run_meta["stats"]["start_time"]
    task_meta = workflow.get_metadata("trip1", "trip")
    assert task_meta["user_metadata"] == {"k1": "v1"} and task_meta["stats"]["attempts"] == 1
    assert ("trip1", workflow.SUCCESSFUL) in workflow.list_all(workflow.SUCCESSFUL)

    waiting = workflow.wait_for_event(workflow.SignalListener, "never")
    workflow.run_async(double.bind(waiting), workflow_id="stuck")
    assert "stuck" in dict(workflow.list_all({workflow.RUNNING, workflow.PENDING}))
    workflow.cancel("stuck")
    eventually(lambda: workflow.get_status("stuck") == workflow.CANCELED)
    workflow.delete("stuck")
    assert workflow.get_status("stuck") == workflow.NONE
    with pytest.raises(workflow.exceptions.WorkflowNotFoundError):
        workflow.delete("stuck")


def test_bad_input_is_refused_and_nothing_is_stored(compat: None) -> None:
    """Not a port: the typed errors of the compatibility layer itself."""
    before = workflow.list_all()
    with pytest.raises(workflow.exceptions.WorkflowNotFoundError):
        workflow.get_output("no-such-workflow")
    with pytest.raises(DefinitionError, match="runtime_env"):
        workflow.run(double.options(runtime_env={"env_vars": {"A": "1"}}).bind(1))
    with pytest.raises(InvalidArgument, match="@ray.remote"):
        workflow.run(lambda: 1)
    assert workflow.list_all() == before
