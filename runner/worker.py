"""The Worker: drives runs, each under its own lease, in cycles.

A cycle: fold what happened into the state, plan (bookkeeping events and
runnable tasks), append those events in ONE fenced append (a step's result
together with the starts it unlocks), then dispatch the new tasks as Ray
tasks (or inline) and wait for the first one to finish. There is no
barrier between siblings: each result is applied as soon as it arrives.

Recovery: load the latest snapshot, stream the events after its cursor,
fold; steps that were started but never finished are dispatched again.
On FencedError the worker stops at once: another owner has the run.

``RunExecutor`` holds the logic for one run; ``Worker`` is the thin Ray
actor the Runner keeps in its pool: it drives several runs at once on one
event loop (their steps run as Ray tasks elsewhere; the worker only plans
and records) and is reused run after run. Its runs' appends share Store
actor calls (:class:`~runner.batching.CallBatcher`), and so do their takeovers.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import heapq
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayError

from runner import serialization
from runner.batching import CallBatcher
from runner.context import installed
from runner.errors import FencedError, IllegalTransition, SnapshotMismatch, StepTimeout, StoreError
from runner.events import (
    ErrorInfo,
    Event,
    FactRef,
    RunCancelled,
    RunPaused,
    RunResumed,
    RunSuspended,
    SignalReceived,
    StepStarted,
    StoredEvent,
)
from runner.execution import run_task, step_context
from runner.state import Task, TaskKey, WorkflowState
from runner.store import AppendRequest, Receipt, RunRecord, RunStatus, status_after
from runner.store_actor import Turn
from runner.workflow import Workflow

READ_CHUNK = 5_000


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """How a worker drives runs. ``suspend_after``: a timer or retry due later than
    this many seconds releases the worker; sooner ones are waited for in place."""

    lease_ttl: float = 30.0
    snapshot_every: int = 200
    suspend_after: float = 5.0
    fact_threshold: int = serialization.DEFAULT_FACT_THRESHOLD


@dataclass(frozen=True, kw_only=True)
class RecoveryStats:
    """What recovering a run read: the snapshot's cursor and how many events were streamed after it."""

    snapshot_cursor: int = 0
    events_streamed: int = 0
    redispatched: tuple[TaskKey, ...] = ()
    seconds: float = 0.0
    started_at: float = 0.0  # wall-clock time the worker began (compare with event times)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a worker's turn with a run ended. ``status``: a run status, or "fenced"."""

    run_id: str
    status: str
    wake_at: float | None = None
    recovery: RecoveryStats = field(default_factory=RecoveryStats)


@dataclass
class _InFlight:
    task: Task
    future: concurrent.futures.Future[Any]  # completed on a Ray thread
    ref: Any = None
    deadline: float | None = None


# ----------------------------------------------------------------- step task
_DEFINITIONS: dict[str, Workflow] = {}


def _definition(definition_hash: str, blob: bytes) -> Workflow:
    workflow = _DEFINITIONS.get(definition_hash)
    if workflow is None:
        if len(_DEFINITIONS) > 64:
            _DEFINITIONS.clear()
        workflow = serialization.loads(blob)
        _DEFINITIONS[definition_hash] = workflow
    return workflow


@dataclass(frozen=True)
class StoreAddress:
    """The Store actor's name: what a step task gets instead of its handle. A handle costs
    a registration on both sides of every task; most tasks never touch the store, and the
    ones that do (a large input or result) look it up once per process."""

    name: str
    namespace: str

    def handle(self) -> Any:
        if not self.name:
            raise RuntimeError("this Store actor has no name: create it through the Runner (runner.connect)")
        handle = _STORE_HANDLES.get(self)
        if handle is None:
            handle = _STORE_HANDLES[self] = ray.get_actor(self.name, namespace=self.namespace)
        return handle


_STORE_HANDLES: dict[StoreAddress, Any] = {}


def _resolve(value: Any, store: Callable[[], Any]) -> Any:
    if isinstance(value, FactRef):
        return serialization.loads(ray.get(store().load_fact.remote(value.hash)))
    return value


def execute_step(
    run_id: str,
    workflow: Workflow,
    task: Task,
    store: Callable[[], Any],
    fact_threshold: int,
    deferred_facts: list[tuple[str, bytes]] | None = None,
) -> tuple[str, Any]:
    """Run one task: ("ok", value or FactRef) or ("error", ErrorInfo). Never raises for user errors.
    ``store`` gives the Store actor's handle, asked for only when a fact is read or saved.

    A large result is saved as a fact before the ref is returned, or, given ``deferred_facts``
    (an inline step inside the worker), left there for the worker to save before its next append."""
    node = workflow.nodes[task.node]
    try:
        inputs = tuple(_resolve(v, store) for v in task.inputs)
        with installed(step_context(run_id, task)):
            value = run_task(node, task, inputs)
        stored, blob = serialization.externalize(value, fact_threshold)
        if blob is not None and deferred_facts is not None:
            deferred_facts.append((stored.hash, blob))
        elif blob is not None:
            ray.get(store().save_fact.remote(stored.hash, blob))
        return ("ok", stored)
    except Exception as exc:
        return ("error", serialization.error_info(exc))


@ray.remote(max_retries=0)
def _step_task(
    run_id: str, definition_hash: str, task: Task, store: StoreAddress, fact_threshold: int
) -> tuple[str, Any]:
    return execute_step(run_id, _task_definition(run_id, definition_hash, store), task, store.handle, fact_threshold)


def _task_definition(run_id: str, definition_hash: str, store: StoreAddress) -> Workflow:
    """The run's definition, cached per process by hash; on a miss, read once from the run's
    record. Tasks do not carry it: an object-store argument costs every task a fetch."""
    workflow = _DEFINITIONS.get(definition_hash)
    if workflow is not None:
        return workflow
    record: RunRecord = ray.get(store.handle().get_run.remote(run_id))
    if record.definition_hash != definition_hash:
        raise RuntimeError(f"run {run_id!r} has definition {record.definition_hash}, not {definition_hash}")
    return _definition(definition_hash, record.definition)


def _remote_step(node: Any) -> Any:
    """``_step_task`` with the node's Ray options (resources), made once per set of options."""
    options = node.resources.ray_options()
    if not options:
        return _step_task
    key = tuple(sorted((k, repr(v)) for k, v in options.items()))
    remote = _OPTIONED.get(key)
    if remote is None:
        if len(_OPTIONED) > 256:
            _OPTIONED.clear()
        remote = _OPTIONED[key] = _step_task.options(**options)
    return remote


_OPTIONED: dict[tuple[tuple[str, str], ...], Any] = {}


# ------------------------------------------------------------------ executor
class StoreCalls:
    """The Store actor calls a worker's runs share: takeovers and appends, each batched."""

    def __init__(self, store: Any, owner: str, config: WorkerConfig) -> None:
        self.turns: CallBatcher[str, Turn] = CallBatcher(
            lambda run_ids: store.open_turns.remote(run_ids, owner, config.lease_ttl, READ_CHUNK)
        )
        self.appends: CallBatcher[AppendRequest, Receipt] = CallBatcher(
            lambda requests: store.append_batch.remote(requests)
        )


class RunExecutor:
    """Drives one run from recovery to an outcome. Not thread-safe; one per run turn."""

    def __init__(
        self,
        run_id: str,
        store: Any,
        owner: str,
        config: WorkerConfig,
        calls: StoreCalls | None = None,
        address: StoreAddress | None = None,
    ) -> None:
        self.run_id = run_id
        self.store = store
        self.address = address
        self.calls = calls or StoreCalls(store, owner, config)
        self.owner = owner
        self.config = config
        self.rng = random.Random()
        self.lease = 0
        self.state: WorkflowState | None = None
        self._buffer: list[Event] = []
        self._in_flight: dict[TaskKey, _InFlight] = {}
        self._finished: collections.deque[TaskKey] = collections.deque()  # keys, as their tasks finish
        self._deadlines: list[tuple[float, TaskKey]] = []  # heap of in-flight tasks' deadlines
        self._snapshot_cursor = 0
        self._poke = asyncio.Event()
        self._wake_pending = False
        self._loop = asyncio.get_running_loop()  # made by the Worker actor's coroutine, on its loop
        self._fenced: FencedError | None = None
        self._definition_hash = ""
        self._pending_facts: list[tuple[str, bytes]] = []
        self._requested: str | None = None

    def poke(self) -> None:
        """Something outside changed (a signal arrived): look again."""
        self._poke.set()

    def request(self, action: str) -> None:
        """Ask the run to stop: "cancel" (running steps are cancelled) or "pause" (they finish first)."""
        if action not in ("cancel", "pause"):
            raise ValueError(f"unknown request {action!r}")
        if self._requested != "cancel":
            self._requested = action
        self._poke.set()

    # ------------------------------------------------------------ recovery
    async def recover(self) -> tuple[WorkflowState, RecoveryStats, RunRecord]:
        """Take the run over (one store call: lease, record, snapshot, first events) and fold."""
        started, started_at = time.monotonic(), time.time()
        if self.address is None:
            self.address = StoreAddress(*await self.store.address.remote())
        turn = await self.calls.turns.call(self.run_id)
        self.lease = 0 if turn.lease is None else turn.lease.token
        record = turn.record
        workflow: Workflow = _definition(record.definition_hash, record.definition)
        self._definition_hash = record.definition_hash
        state = WorkflowState(workflow)
        chunk, complete = turn.events, turn.complete
        if turn.snapshot is not None:
            try:
                state = WorkflowState.restore(workflow, turn.snapshot.blob)
            except SnapshotMismatch:  # another definition: fold the whole log instead
                chunk, complete = [], False
        snapshot_cursor = state.cursor
        streamed = 0
        while True:
            for stored in chunk:
                state.apply(stored)
            streamed += len(chunk)
            if complete:
                break
            chunk = await self.store.read_events.remote(self.run_id, state.cursor, READ_CHUNK)
            complete = len(chunk) < READ_CHUNK
        self._snapshot_cursor = state.cursor
        self.state = state
        stats = RecoveryStats(
            snapshot_cursor=snapshot_cursor,
            events_streamed=streamed,
            redispatched=tuple(state.started()),
            seconds=time.monotonic() - started,
            started_at=started_at,
        )
        return state, stats, record

    # --------------------------------------------------------------- cycles
    async def run(self) -> Outcome:
        state, stats, record = await self.recover()
        if record.status.is_terminal or state.is_finished:
            return Outcome(run_id=self.run_id, status=record.status.value, recovery=stats)
        renewer = asyncio.get_running_loop().create_task(self._renew_lease())
        try:
            if record.status in (RunStatus.SUSPENDED, RunStatus.PAUSED):
                self._stage(RunResumed())
            elif record.status is RunStatus.CANCELLING:
                self._requested = "cancel"  # a cancel that its last worker did not finish
            outcome = await self._cycles()
            return Outcome(run_id=self.run_id, status=outcome[0], wake_at=outcome[1], recovery=stats)
        except FencedError:
            self._cancel_all()
            return Outcome(run_id=self.run_id, status="fenced", recovery=stats)
        finally:
            renewer.cancel()

    async def _cycles(self) -> tuple[str, float | None]:
        state = self.state
        assert state is not None
        while True:
            if self._fenced is not None:
                raise self._fenced
            if self._requested == "cancel":
                self._cancel_all()
                await self._flush()
                with contextlib.suppress(IllegalTransition):  # already cancelling
                    await self.store.transition.remote(self.run_id, RunStatus.CANCELLING, lease=self.lease)
                self._stage(RunCancelled(reason="cancelled on request"))
                await self._flush()
                return RunStatus.CANCELLED.value, None
            await self._take_signals()
            now = time.time()
            for event in state.advance(now):
                self._stage(event)
            if state.is_finished:
                await self._flush()
                self._cancel_all()
                return state.status, None
            if self._requested == "pause":
                if not self._in_flight:  # running steps finish and are recorded first
                    self._stage(RunPaused())
                    await self._flush()
                    await self._release()
                    return RunStatus.PAUSED.value, None
                await self._flush()
                await self._wait_for_something(None)
                self._collect_finished()
                continue
            tasks = state.runnables(self._in_flight, now)  # a dict: its keys, without a view object
            for task in tasks:
                self._stage(StepStarted(node=task.node, item=task.item, attempt=task.attempt, lease=self.lease, at=now))
            await self._flush()
            inline_ran = False
            for task in tasks:
                inline_ran |= self._dispatch(task)
            if inline_ran:
                continue
            if not self._in_flight:
                wake_at = state.next_wakeup()
                if wake_at is None or wake_at - time.time() > self.config.suspend_after:
                    reason = (
                        "waiting for signal " + ", ".join(state.waiting_for())
                        if state.waiting_for()
                        else "waiting for a timer"
                    )
                    self._stage(RunSuspended(reason=reason, wake_at=wake_at))
                    await self._flush()
                    await self._release()
                    return RunStatus.SUSPENDED.value, wake_at
            await self._wait_for_something(state.next_wakeup())
            self._collect_finished()

    async def _wait_for_something(self, wake_at: float | None) -> None:
        """Until a task finishes, a deadline or ``wake_at`` passes, or something pokes the run.
        Costs the same however many tasks are in flight: each task's own callback wakes it."""
        if not self._finished:
            times = [t for t in (self._next_deadline(), wake_at) if t is not None]
            timeout = max(0.0, min(times) - time.time()) if times else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poke.wait(), timeout)
        self._poke.clear()

    def _on_finished(self, key: TaskKey) -> None:
        """A task's done-callback, on a Ray thread: queue its key and wake the loop, once for
        all the tasks that finish before the loop gets to run."""
        self._finished.append(key)
        if not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._wake_pending = False
        self._poke.set()

    def _next_deadline(self) -> float | None:
        """The earliest deadline of a task still in flight (entries of finished tasks are dropped)."""
        heap = self._deadlines
        while heap:
            deadline, key = heap[0]
            flight = self._in_flight.get(key)
            if flight is not None and flight.deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def _collect_finished(self) -> None:
        """Stage the outcomes of the tasks that finished, in the order they finished, and time out
        the ones past their deadline."""
        state = self.state
        assert state is not None
        now = time.time()
        while self._finished:
            key = self._finished.popleft()
            flight = self._in_flight.get(key)
            if flight is None or not flight.future.done():  # an earlier attempt's, timed out or cancelled
                continue
            del self._in_flight[key]
            try:
                kind, payload = flight.future.result()
            except RayError as exc:  # the task's process died or the task was cancelled
                kind, payload = "error", serialization.error_info(exc)
            self._stage_outcome(flight.task, kind, payload, now)
        while (deadline := self._next_deadline()) is not None and deadline <= now:
            _, key = heapq.heappop(self._deadlines)
            flight = self._in_flight.pop(key)
            ray.cancel(flight.ref, force=True)
            timeout = self._node_timeout(flight.task)
            error = serialization.error_info(StepTimeout(flight.task.node, timeout))
            self._stage_outcome(flight.task, "error", error, now)

    def _stage_outcome(self, task: Task, kind: str, payload: Any, now: float) -> None:
        state = self.state
        assert state is not None
        if state.is_finished:
            return
        if kind == "ok":
            events = state.success_events(task, payload, now)
        else:
            error = payload if isinstance(payload, ErrorInfo) else serialization.error_info(RuntimeError(str(payload)))
            events = state.failure_events(task, error, now, self.rng)
        for event in events:
            self._stage(event)

    def _dispatch(self, task: Task) -> bool:
        """Start a task; True if it ran inline (its outcome is already staged)."""
        state = self.state
        assert state is not None
        node = state.workflow.nodes[task.node]
        if node.inline:
            kind, payload = self._run_inline(state.workflow, task)
            self._stage_outcome(task, kind, payload, time.time())
            return True
        ref = _remote_step(node).remote(
            self.run_id, self._definition_hash, task, self.address, self.config.fact_threshold
        )
        future = ref.future()  # a plain Future and one callback: an asyncio wrapper per task cost ~0.2 ms
        timeout = node.policy.timeout
        deadline = time.time() + timeout if timeout else None
        key = task.key
        self._in_flight[key] = _InFlight(task=task, future=future, ref=ref, deadline=deadline)
        future.add_done_callback(lambda _: self._on_finished(key))
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, key))
        return False

    def _run_inline(self, workflow: Workflow, task: Task) -> tuple[str, Any]:
        return execute_step(
            self.run_id,
            workflow,
            task,
            lambda: self.store,
            self.config.fact_threshold,
            deferred_facts=self._pending_facts,
        )

    def _node_timeout(self, task: Task) -> float:
        assert self.state is not None
        return self.state.workflow.nodes[task.node].policy.timeout or 0.0

    def _cancel_all(self) -> None:
        for flight in self._in_flight.values():
            if flight.ref is not None:
                ray.cancel(flight.ref, force=True)
        self._in_flight.clear()
        self._finished.clear()
        self._deadlines.clear()

    # -------------------------------------------------------------- writes
    def _stage(self, event: Event) -> None:
        state = self.state
        assert state is not None
        state.apply(StoredEvent(run_id=self.run_id, seq=state.cursor + 1, event=event))
        self._buffer.append(event)

    async def _flush(self) -> None:
        if not self._buffer:
            return
        state = self.state
        assert state is not None
        for fact_hash, blob in self._pending_facts:
            await self.store.save_fact.remote(fact_hash, blob)
        self._pending_facts.clear()
        events, self._buffer = self._buffer, []
        expected_first = state.cursor - len(events) + 1
        request = AppendRequest(run_id=self.run_id, events=tuple(events), lease=self.lease, status=status_after(events))
        receipt = await self._store_call(self.calls.appends.call(request))
        if receipt.first_seq != expected_first or receipt.last_seq != state.cursor:
            raise StoreError(
                f"run {self.run_id!r}: the store put events at {receipt.first_seq}..{receipt.last_seq}, "
                f"expected {expected_first}..{state.cursor}; another writer must exist, stopping"
            )
        if state.cursor - self._snapshot_cursor >= self.config.snapshot_every and not state.is_finished:
            await self.store.save_snapshot.remote(self.run_id, state.cursor, state.snapshot())
            self._snapshot_cursor = state.cursor

    async def _store_call(self, call: Any) -> Any:
        try:
            return await call
        except FencedError as exc:
            self._fenced = exc
            raise

    async def _take_signals(self) -> None:
        state = self.state
        assert state is not None
        if not state.waiting_for():
            return
        signals = await self.store.signals.remote(self.run_id, state.last_signal_id)
        for signal in signals:
            self._stage(SignalReceived(signal_id=signal.signal_id, name=signal.name, payload=signal.payload))

    async def _renew_lease(self) -> None:
        interval = self.config.lease_ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.store.renew_lease.remote(self.run_id, self.lease, self.config.lease_ttl)
            except FencedError as exc:
                self._fenced = exc
                self._poke.set()
                return

    async def _release(self) -> None:
        try:
            await self.store.release_lease.remote(self.run_id, self.lease)
        except FencedError as exc:
            self._fenced = exc


class Worker:
    """The Ray actor: drives up to the Runner's ``runs_per_worker`` runs at once, reused run after run."""

    def __init__(self, store: Any, config: WorkerConfig, worker_id: str, address: StoreAddress | None = None) -> None:
        self.store = store
        self.config = config
        self.worker_id = worker_id
        self.address = address
        self._runs: dict[str, RunExecutor] = {}
        self._calls = StoreCalls(store, worker_id, config)
        self.runs_done = 0

    async def execute(self, run_id: str) -> Outcome:
        if run_id in self._runs:
            raise RuntimeError(f"worker {self.worker_id} already drives run {run_id!r}")
        executor = RunExecutor(run_id, self.store, self.worker_id, self.config, calls=self._calls, address=self.address)
        self._runs[run_id] = executor
        try:
            return await executor.run()
        finally:
            del self._runs[run_id]
            self.runs_done += 1

    async def poke(self, run_id: str) -> bool:
        executor = self._runs.get(run_id)
        if executor is not None:
            executor.poke()
            return True
        return False

    async def request(self, run_id: str, action: str) -> bool:
        """Pass a cancel or pause request to ``run_id``; False if this worker does not drive it."""
        executor = self._runs.get(run_id)
        if executor is not None:
            executor.request(action)
            return True
        return False

    async def pid(self) -> int:
        return os.getpid()

    async def current_runs(self) -> list[str]:
        return list(self._runs)

    async def batching(self) -> dict[str, tuple[int, int]]:
        """Per kind of Store actor call: (calls made, requests they carried) since the worker started."""
        turns, appends = self._calls.turns, self._calls.appends
        return {"open_turns": (turns.calls, turns.requests), "append_batch": (appends.calls, appends.requests)}
