"""A step task dispatched on its run's append starts its step only once that append committed.

The worker dispatches the tasks a cycle unlocks before the cycle's append has
returned, with the append's own ObjectRef (``StoreHandle.append_each``) as the
task's ``gate`` (or, for a cycle's lone task, in a HeldGate the task waits for). Here the Store actor is driven directly: an append refused
(fenced, or at a cursor the log has moved past) must fail the gated task
without the step's code running; a committed one lets it run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

import runner
from runner.errors import AppendConflict, FencedError
from runner.events import RunSubmitted, StepStarted
from runner.planning import Task
from runner.shipping import pickle_definition
from runner.step_task import HeldGate, StoreAddress, definition_key, remote_step
from runner.store import AppendRequest, NewRun, Receipt
from runner.store_actor import RemoteStoreActor
from runner.store_handle import StoreHandle

pytestmark = pytest.mark.ray


def _marking() -> runner.Workflow:
    wf = runner.Workflow("gated")

    @wf.step()
    def mark(path: str) -> str:
        Path(path).write_text("ran")
        return path

    return wf


@pytest.fixture(scope="module")
def store(ray_instance: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StoreHandle, StoreAddress]]:
    """One Store actor for the module (starting one costs a second): each test creates a run of its own."""
    name, namespace = f"gated-{uuid.uuid4().hex[:12]}", ray.get_runtime_context().namespace
    directory = tmp_path_factory.mktemp("gated")
    actor = RemoteStoreActor.options(name=name, namespace=namespace).remote(f"duckdb:///{directory}/s.duckdb")
    yield StoreHandle(actor), StoreAddress(name, namespace)
    ray.get(actor.close.remote())
    ray.kill(actor)


def _create(store: StoreHandle, workflow: runner.Workflow, marker: Path) -> tuple[str, int]:
    run_id = f"gated-{uuid.uuid4().hex[:12]}"
    submitted = RunSubmitted(workflow=workflow.name, input=str(marker), definition_hash=workflow.definition_hash())
    new = NewRun(
        run_id=run_id,
        workflow=workflow.name,
        definition=pickle_definition(workflow),
        definition_hash=workflow.definition_hash(),
        events=(submitted,),
    )
    ray.get(store.create_run(new))
    return run_id, ray.get(store.acquire_lease(run_id, "worker-a", 60)).token


def _dispatch_on_append(
    store: tuple[StoreHandle, StoreAddress],
    workflow: runner.Workflow,
    request: AppendRequest,
    marker: Path,
    held: bool,
) -> tuple[ray.ObjectRef, Receipt | Exception]:
    """Send ``request`` and at once dispatch the step (it writes ``marker``) gated on it, as a worker
    does: with the append's ObjectRef, or (``held``) with it in a HeldGate the task waits for."""
    handle, address = store
    [ref], answers = handle.append_each([request])
    gate = HeldGate(ref) if held else ref
    task = Task(node="mark", attempt=1, inputs=(str(marker),))
    step = remote_step(workflow.nodes["mark"], f"gated.mark@{request.run_id}")
    ref = step.remote(request.run_id, definition_key(pickle_definition(workflow)), task, address, 1 << 20, gate)
    [answer] = ray.get(answers)
    return ref, answer


def _request(run_id: str, lease: int, after_seq: int) -> AppendRequest:
    started = StepStarted(node="mark", attempt=1, lease=lease)
    return AppendRequest(
        run_id=run_id, events=(started,), lease=lease, after_seq=after_seq, request_id=uuid.uuid4().hex
    )


@pytest.mark.parametrize("held", [False, True])
def test_a_task_gated_on_a_committed_append_runs(
    store: tuple[StoreHandle, StoreAddress], tmp_path: Path, held: bool
) -> None:
    workflow, marker = _marking(), tmp_path / "committed"
    run_id, lease = _create(store[0], workflow, marker)
    ref, answer = _dispatch_on_append(store, workflow, _request(run_id, lease, 1), marker, held)
    assert isinstance(answer, Receipt) and answer.first_seq == 2
    assert ray.get(ref).value == str(marker)
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("held", [False, True])
@pytest.mark.parametrize("refusal", ["fenced", "conflict"])
def test_a_task_gated_on_a_refused_append_never_runs_its_step(
    store: tuple[StoreHandle, StoreAddress], tmp_path: Path, refusal: str, held: bool
) -> None:
    handle = store[0]
    workflow, marker = _marking(), tmp_path / refusal
    run_id, lease = _create(handle, workflow, marker)
    if refusal == "fenced":  # another owner took the run over: the old lease writes nothing
        ray.get(handle.acquire_lease(run_id, "worker-b", 60, force=True))
        request, expected = _request(run_id, lease, 1), FencedError
    else:  # the log moved past the cursor the writer believes in
        request, expected = _request(run_id, lease, 0), AppendConflict
    ref, answer = _dispatch_on_append(store, workflow, request, marker, held)
    assert isinstance(answer, expected)
    with pytest.raises(expected):
        ray.get(ref)
    assert not marker.exists()  # the step's code never ran
    assert [e.seq for e in ray.get(handle.read_events(run_id, 0, 100))] == [1]  # nothing was written
