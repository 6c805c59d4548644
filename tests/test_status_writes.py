"""StatusWriter against a real Store actor class run in process (memory adapter): the Runner's own
cancel, pause and fail land in the log and the status together, and a move the fold refuses is
never appended."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from runner import serialization
from runner.errors import FoldError, IllegalTransition
from runner.events import SKIPPED, RunCompleted, RunFailed, RunPaused, RunSubmitted
from runner.lifecycle import WORKER_LOST
from runner.status_writes import OWNER, StatusWriter
from runner.store import NewRun, RunStatus
from runner.store_actor import StoreActor
from runner.store_handle import StoreHandle
from runner.workflow import Workflow

RUN = "run-1"


def double(x: int) -> int:
    return 2 * x


class _InProcessActor:
    """Gives a StoreActor the ``.method.remote(...)`` shape of its Ray handle, answering awaitables."""

    def __init__(self, actor: StoreActor) -> None:
        self._actor = actor

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._actor, name)

        class _Method:
            @staticmethod
            def remote(*args: Any) -> Awaitable[Any]:
                if inspect.iscoroutinefunction(method):
                    return asyncio.ensure_future(method(*args))
                future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                try:
                    future.set_result(method(*args))
                except Exception as exc:
                    future.set_exception(exc)
                return future

        return _Method


def _new_run(definition: bytes | None = None) -> NewRun:
    wf = Workflow("moves")
    wf.step(double, name="double")
    return NewRun(
        run_id=RUN,
        workflow=wf.name,
        definition=definition if definition is not None else serialization.dumps(wf),
        definition_hash=wf.definition_hash(),
        events=(RunSubmitted(workflow=wf.name, input=1, definition_hash=wf.definition_hash()),),
    )


def _scenario(body: Callable[[StoreHandle, StatusWriter], Awaitable[None]], new: NewRun | None = None) -> None:
    async def run() -> None:
        store = StoreHandle(_InProcessActor(StoreActor("memory://")))
        await store.create_run(new or _new_run())
        await body(store, StatusWriter(store, lease_ttl=30.0))

    asyncio.run(run())


async def _start(store: StoreHandle) -> int:
    """Move the run to running under a worker's lease, as a worker's takeover does; its token."""
    lease = await store.acquire_lease(RUN, "worker-1", 30.0)
    await store.transition(RUN, RunStatus.RUNNING, lease.token)
    return lease.token


async def _kinds(store: StoreHandle) -> list[str]:
    return [type(stored.event).__name__ for stored in await store.read_events(RUN)]


def test_cancel_of_a_pending_run_records_run_cancelled() -> None:
    async def body(store: StoreHandle, writes: StatusWriter) -> None:
        move = await writes.cancel(RUN)
        assert move.via is None
        assert (await store.get_run(RUN)).status is RunStatus.CANCELLED
        assert await _kinds(store) == ["RunSubmitted", "RunCancelled"]

    _scenario(body)


def test_cancel_of_a_running_run_passes_through_cancelling_and_fences_its_old_worker() -> None:
    async def body(store: StoreHandle, writes: StatusWriter) -> None:
        old_token = await _start(store)
        move = await writes.cancel(RUN)
        assert move.via is RunStatus.CANCELLING
        record = await store.get_run(RUN)
        assert record.status is RunStatus.CANCELLED and record.lease != old_token

    _scenario(body)


def test_pause_records_run_paused_and_gives_the_lease_back() -> None:
    async def body(store: StoreHandle, writes: StatusWriter) -> None:
        await _start(store)
        await writes.pause(RUN)
        record = await store.get_run(RUN)
        assert record.status is RunStatus.PAUSED and record.lease_owner is None
        assert await _kinds(store) == ["RunSubmitted", "RunPaused"]

    _scenario(body)


def test_pause_of_a_pending_run_is_refused_and_writes_nothing() -> None:
    async def body(store: StoreHandle, writes: StatusWriter) -> None:
        with pytest.raises(IllegalTransition):
            await writes.pause(RUN)
        record = await store.get_run(RUN)
        assert record.status is RunStatus.PENDING and record.lease_owner != OWNER
        assert await _kinds(store) == ["RunSubmitted"]

    _scenario(body)


def test_fail_records_a_worker_lost_error() -> None:
    async def body(store: StoreHandle, writes: StatusWriter) -> None:
        await _start(store)
        await writes.fail(RUN, "run stopped: its worker died")
        assert (await store.get_run(RUN)).status is RunStatus.FAILED
        last = (await store.read_events(RUN))[-1].event
        assert isinstance(last, RunFailed) and last.error.type == WORKER_LOST

    _scenario(body)


def test_a_run_whose_definition_cannot_be_loaded_is_still_failed() -> None:
    async def body(store: StoreHandle, writes: StatusWriter) -> None:
        record = await store.get_run(RUN)
        assert await writes.load_state(record) is None
        await writes.fail(RUN, "run stopped: its worker could not drive it")
        assert (await store.get_run(RUN)).status is RunStatus.FAILED

    _scenario(body, _new_run(definition=b"not a pickle"))


def test_the_state_is_folded_from_the_snapshot_and_the_events_after_it() -> None:
    async def body(store: StoreHandle, writes: StatusWriter) -> None:
        record = await store.get_run(RUN)
        state = await writes.load_state(record)
        assert state is not None and state.cursor == 1
        await store.save_snapshot(RUN, 1, state.snapshot())
        token = await _start(store)
        await store.append(RUN, [RunPaused()], token, RunStatus.PAUSED)
        state = await writes.load_state(await store.get_run(RUN))
        assert state is not None and state.cursor == 2 and state.status == RunStatus.PAUSED.value

    _scenario(body)


def test_a_move_the_fold_refuses_is_never_appended() -> None:
    async def body(store: StoreHandle, writes: StatusWriter) -> None:
        token = await _start(store)
        # the log ends the run but the status was left running: the fold must have the last word
        await store.append(RUN, [RunCompleted(result=SKIPPED)], token, None)
        assert (await store.get_run(RUN)).status is RunStatus.RUNNING
        for write in (writes.cancel(RUN), writes.pause(RUN), writes.fail(RUN, "gone")):
            with pytest.raises(FoldError):
                await write
        assert await _kinds(store) == ["RunSubmitted", "RunCompleted"]
        assert (await store.get_run(RUN)).status is RunStatus.RUNNING

    _scenario(body)
