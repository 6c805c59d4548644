"""The Worker: drives runs, each under its own lease, in cycles.

``RunExecutor`` drives one run from recovery to the end of its turn.
Recovery takes the run over in one Store actor call (lease, record, latest
snapshot, first events), restores the snapshot (one of another format or
definition is ignored: the whole log is folded instead) and folds the events
after it; steps that were started but never finished are dispatched again.

Then it cycles. A cycle is planned by :func:`~runner.cycle.plan_cycle` (what
to record, what to start, whether to stop); the executor does the I/O around
it: it takes new signals before, appends the cycle's events in ONE fenced
append (a step's result together with the starts it unlocks), dispatches the
new tasks as Ray tasks (:mod:`runner.step_task`) as soon as that append is
sent, with the append's ObjectRef as their dependency (Ray starts them once
the commit has returned, so dispatch overlaps the commit; a task whose append
was refused never runs its step; a cycle's lone task gets it in a HeldGate,
so Ray places and ships it during the commit too, and it waits for the commit
itself), then waits for the append's receipt, runs
the inline tasks in place, and waits for the first task to finish
(:mod:`runner.in_flight`). There is no
barrier between siblings: each result is applied as soon as it arrives.
On FencedError the turn ends at once: another owner has the run. On
StoreWriteFailed (a full disk) too, with a STORE_FAILED outcome: the Runner
retries the run after a backoff and pauses it if the store stays unwritable.

``Worker`` is the thin Ray actor the Runner keeps in its pool: it drives
several runs at once on one event loop (their steps run as Ray tasks
elsewhere; the worker only plans and records) and is reused run after run.
Its runs' appends share Store actor calls (:class:`~runner.batching.CallBatcher`),
and so do their takeovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runner import faults, hooks, serialization
from runner.batching import CallBatcher, Submission, SubmitBatcher
from runner.checkpoint import CheckpointBuffer
from runner.child_starter import ChildStarter
from runner.continue_as_new import continued_in, successor_run
from runner.cycle import CyclePlan, StopRequest, TurnEnd, outcome_events, plan_cycle
from runner.errors import (
    FencedError,
    IllegalTransition,
    InvalidArgument,
    SnapshotMismatch,
    StoreError,
    StoreWriteFailed,
)
from runner.events import Event, RunResumed, SignalReceived, StoredEvent
from runner.execution import StepResult
from runner.faults import FaultPoint
from runner.in_flight import InFlight
from runner.metrics import METRICS
from runner.planning import DEFAULT_SYSTEM_RETRIES, Task
from runner.ray_names import step_task_name
from runner.run_data import TaskKey
from runner.state import WorkflowState
from runner.step_task import HeldGate, StoreAddress, definition, definition_key, execute_step, remote_step
from runner.store import AppendRequest, Receipt, RunRecord, RunStatus, status_after
from runner.store_actor import Turn
from runner.store_handle import StoreHandle
from runner.tracing import StepTrace, run_spans
from runner.workflow import Workflow

READ_CHUNK = 5_000

AppendRef = Any  # ray.ObjectRef[Receipt | Exception]: an append's own answer, which gated tasks depend on

log = logging.getLogger("runner")


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """How a worker drives runs. ``suspend_after``: a timer or retry due later than
    this many seconds releases the worker; sooner ones are waited for in place.
    ``lease_ttl``: each run's lease is renewed every third of it; a worker that stops
    renewing (frozen, cut off) has its runs taken over about this long after its last
    renewal (:mod:`runner.supervision`), so it also bounds how long inline code may block.
    ``system_retries``: how many times a task lost to the system (its node or worker
    process died, or it was killed for memory) is dispatched again, without spending
    the step's own retries, before its step fails with StepLostError."""

    lease_ttl: float = 30.0
    snapshot_every: int = 200
    suspend_after: float = 5.0
    fact_threshold: int = serialization.DEFAULT_FACT_THRESHOLD
    system_retries: int = DEFAULT_SYSTEM_RETRIES

    def __post_init__(self) -> None:
        retries = self.system_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidArgument(f"system_retries must be a whole number >= 0, got {retries!r}")


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
    """How a worker's turn with a run ended: the run's status then, or FENCED, or STORE_FAILED
    (``error``: which file could not be written, and the system's reason)."""

    run_id: str
    status: TurnEnd
    wake_at: float | None = None
    recovery: RecoveryStats = field(default_factory=RecoveryStats)
    error: str = ""
    successor_run_id: str | None = None  # CONTINUED: the run it continued as, for the Runner to start
    parent_run_id: str | None = None  # the run it was started from: woken when a child run ends


@dataclass(frozen=True, kw_only=True)
class _Append:
    """An append sent to the Store actor, not answered yet: it stores events ``first..last``."""

    submission: Submission[Receipt, AppendRef]
    first: int
    last: int
    events: tuple[StoredEvent, ...] = ()  # what it stores, for the workflow's hooks once committed


class StoreCalls:
    """The Store actor calls a worker's runs share: takeovers and appends, each batched."""

    def __init__(self, store: StoreHandle, owner: str, config: WorkerConfig) -> None:
        self.turns: CallBatcher[str, Turn] = CallBatcher(
            lambda run_ids: store.open_turns(run_ids, owner, config.lease_ttl, READ_CHUNK)
        )
        self.appends: SubmitBatcher[AppendRequest, Receipt, AppendRef] = SubmitBatcher(store.append_each)


class RunExecutor:
    """Drives one run from recovery to an outcome. Not thread-safe; one per run turn."""

    def __init__(
        self,
        run_id: str,
        store: StoreHandle,
        owner: str,
        config: WorkerConfig,
        calls: StoreCalls | None = None,
        address: StoreAddress | None = None,
        runner: Any = None,
        alone: Callable[[], bool] = lambda: True,
    ) -> None:
        self.run_id = run_id
        self._alone = alone  # whether the worker drives this run only (a held gate then costs nothing)
        self.store = store
        self.address = address
        self.calls = calls or StoreCalls(store, owner, config)
        self.owner = owner
        self.config = config
        self.rng = random.Random()
        self.lease = 0
        self.state: WorkflowState | None = None
        self._buffer: list[StoredEvent] = []  # folded into the state, not appended yet
        self._poke = asyncio.Event()
        self._in_flight = InFlight(asyncio.get_running_loop(), self._poke.set)  # made on the actor's loop
        self._snapshot_cursor = 0
        self._fenced: FencedError | None = None
        self._definition_key = ""  # the run's pickled definition's digest: what step tasks find it by
        self._pending_facts: list[tuple[str, bytes]] = []
        self._requested: StopRequest | None = None
        self._record: RunRecord | None = None  # as recovered: what a successor run is made from
        self._children = ChildStarter(self.run_id, store, runner)
        self._checkpoints = CheckpointBuffer()  # the run's own strategy once recovered

    def poke(self) -> None:
        """Something outside changed (a signal arrived): look again."""
        self._poke.set()

    def request(self, action: str) -> None:
        """Ask the run to stop: "cancel" (running steps are cancelled) or "pause" (they finish first)."""
        try:
            request = StopRequest(action)
        except ValueError:
            raise ValueError(f"unknown request {action!r}") from None
        if self._requested is not StopRequest.CANCEL:
            self._requested = request
        self._poke.set()

    # ------------------------------------------------------------ recovery
    async def recover(self) -> tuple[WorkflowState, RecoveryStats, RunRecord]:
        """Take the run over (one store call: lease, record, snapshot, first events) and fold."""
        started, started_at = time.monotonic(), time.time()
        if self.address is None:
            self.address = StoreAddress(*await self.store.address())
        turn = await self.calls.turns.call(self.run_id)
        faults.hit(FaultPoint.TAKEN_OVER, self.run_id)  # a new lease, nothing done under it yet
        self.lease = 0 if turn.lease is None else turn.lease.token
        record = turn.record
        self._definition_key = definition_key(record.definition)
        workflow: Workflow = definition(self._definition_key, record.definition)
        self._record = record
        state = WorkflowState(workflow)
        chunk, complete = turn.events, turn.complete
        if turn.snapshot is not None:
            try:
                state = WorkflowState.restore(workflow, turn.snapshot.blob)
            except SnapshotMismatch:  # another format or definition: fold the whole log instead
                chunk, complete = [], False
        snapshot_cursor = state.cursor
        streamed = 0
        while True:
            for stored in chunk:
                state.apply(stored)
            streamed += len(chunk)
            if complete:
                break
            chunk = await self.store.read_events(self.run_id, state.cursor, READ_CHUNK)
            complete = len(chunk) < READ_CHUNK
        self._snapshot_cursor = state.cursor
        self.state = state
        self._checkpoints = CheckpointBuffer(state.checkpoint_strategy())
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
        """Recover the run and drive it until its turn ends. A write the store refuses
        (StoreWriteFailed: a full disk) ends the turn as STORE_FAILED: the tasks in flight are
        cancelled and their results, never recorded, come from running them again next turn."""
        stats = RecoveryStats()
        try:
            state, stats, record = await self.recover()
            if record.status.is_terminal or state.is_finished:
                ended = record.status if record.status.is_terminal else state.status
                return Outcome(
                    run_id=self.run_id,
                    status=TurnEnd(ended.value),
                    recovery=stats,
                    successor_run_id=state.successor_run_id,
                    parent_run_id=state.parent_run_id,
                )
            return await self._drive(record, stats)
        except StoreWriteFailed as exc:
            self._in_flight.cancel_all()
            message = f"the store file {exc.path} cannot be written ({exc.detail})"
            log.warning("run %s: its turn ends: %s", self.run_id, message)
            with contextlib.suppress(Exception):  # if the store can take that much; else the lease expires
                await self._release()
            return Outcome(run_id=self.run_id, status=TurnEnd.STORE_FAILED, recovery=stats, error=message)

    async def _drive(self, record: RunRecord, stats: RecoveryStats) -> Outcome:
        renewer = asyncio.get_running_loop().create_task(self._renew_lease())
        try:
            if record.status in (RunStatus.SUSPENDED, RunStatus.PAUSED):
                self._stage(RunResumed())
            elif record.status is RunStatus.CANCELLING:
                self._requested = StopRequest.CANCEL  # a cancel that its last worker did not finish
            end, wake_at = await self._cycles()
            assert self.state is not None
            successor, parent = self.state.successor_run_id, self.state.parent_run_id
            return Outcome(
                run_id=self.run_id,
                status=end,
                wake_at=wake_at,
                recovery=stats,
                successor_run_id=successor,
                parent_run_id=parent,
            )
        except FencedError:
            self._in_flight.cancel_all()
            return Outcome(run_id=self.run_id, status=TurnEnd.FENCED, recovery=stats)
        finally:
            renewer.cancel()

    async def _cycles(self) -> tuple[TurnEnd, float | None]:
        state = self.state
        assert state is not None
        while True:
            if self._fenced is not None:
                raise self._fenced
            if self._requested is StopRequest.CANCEL:
                await self._prepare_cancel()
            else:
                await self._take_signals()
                await self._take_children()
            plan = plan_cycle(
                state,
                time.time(),
                in_flight=self._in_flight.keys,
                requested=self._requested,
                suspend_after=self.config.suspend_after,
                lease=self.lease,
            )
            self._buffer += plan.events
            append = await self._checkpoint(plan)
            if state.open_children():  # a child is created once its ChildRunStarted is committed
                await self._committed(append)
                append = None
                await self._start_children()
            if plan.stop is not None:
                await self._committed(append)
                self._in_flight.cancel_all()
                if plan.stop in (TurnEnd.PAUSED, TurnEnd.SUSPENDED):
                    await self._release()
                return plan.stop, plan.wake_at
            inline = [task for task in plan.tasks if state.workflow.nodes[task.node].inline]
            remote = [task for task in plan.tasks if not state.workflow.nodes[task.node].inline]
            gate: AppendRef | HeldGate | None = await self._ticket(append)
            # a lone task of a worker's only run waits for the commit itself, placed already; with
            # other runs on the worker, a task process held waiting slows them more than it saves
            if gate is not None and len(remote) == 1 and self._alone():
                gate = HeldGate(gate)
            for task in remote:
                self._dispatch_remote(state, task, gate)
            await self._committed(append)  # the Ray tasks' steps start once it returned; inline ones after it
            for task in inline:
                self._run_inline(state, task)
            if inline:
                continue
            await self._wait_for_something(plan.wake_at)
            now = time.time()
            for task, result in self._in_flight.collect(now):
                faults.hit(FaultPoint.STEP_FINISHED, self.run_id)  # the result is here, not recorded yet
                self._stage_outcome(task, result, now)

    async def _checkpoint(self, plan: CyclePlan) -> _Append | None:
        """Send the buffer's append if the run's checkpoint strategy says so now (always when the
        turn ends or the worker would wait with nothing in flight); None while it stays buffered."""
        checkpoints = self._checkpoints
        checkpoints.note_events(stored.event for stored in plan.events)
        idle = not plan.tasks and not self._in_flight
        if checkpoints.due(stopping=plan.stop is not None, idle=idle):
            return await self._send_buffer()
        await self._save_facts()  # the tasks about to start may read an inline result's fact
        if checkpoints.results or checkpoints.unchecked:
            faults.hit(FaultPoint.RESULTS_HELD, self.run_id)  # results only in this worker's memory
        return None

    async def _prepare_cancel(self) -> None:
        """Before a cancel is recorded: cancel the running tasks, append what is buffered, and
        move the run to CANCELLING (the store takes RunCancelled only from there)."""
        self._in_flight.cancel_all()
        await self._flush()
        with contextlib.suppress(IllegalTransition):  # already cancelling, or ended meanwhile
            await self.store.transition(self.run_id, RunStatus.CANCELLING, lease=self.lease)

    async def _wait_for_something(self, wake_at: float | None) -> None:
        """Until a task finishes, a deadline or ``wake_at`` passes, or something pokes the run.
        Costs the same however many tasks are in flight: each task's own callback wakes it."""
        if not self._in_flight.has_finished:
            times = [t for t in (self._in_flight.next_deadline(), wake_at) if t is not None]
            timeout = max(0.0, min(times) - time.time()) if times else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poke.wait(), timeout)
        self._poke.clear()

    def _dispatch_remote(self, state: WorkflowState, task: Task, gate: AppendRef | HeldGate | None) -> None:
        """Start ``task`` as a Ray task whose step runs once the append ``gate`` (its StepStarted
        is in it) has committed."""
        node = state.workflow.nodes[task.node]
        name = step_task_name(state.workflow.name, task.node, task.item, self.run_id)
        args: tuple[Any, ...] = (
            self.run_id,
            self._definition_key,
            task,
            self.address,
            self.config.fact_threshold,
            gate,
        )
        if state.trace_context is not None:  # the run is traced: its steps' spans get their parent
            args += (StepTrace(state.trace_context, self.owner),)
        ref = remote_step(node, name).remote(*args)
        due = state.step_deadline_at(task.node, task.item)
        step_deadline = None if due is None or node.policy.deadline is None else (due, node.policy.deadline)
        self._in_flight.add(task, ref, node.policy.timeout, time.time(), step_deadline)

    def _run_inline(self, state: WorkflowState, task: Task) -> None:
        """Run an inline task here, now (its start is committed), and stage its outcome."""
        result = execute_step(
            self.run_id,
            state.workflow,
            task,
            lambda: self.store,
            self.config.fact_threshold,
            deferred_facts=self._pending_facts,
            trace=StepTrace(state.trace_context, self.owner),
        )
        faults.hit(FaultPoint.STEP_FINISHED, self.run_id)
        self._stage_outcome(task, result, time.time())

    # -------------------------------------------------------------- writes
    def _stage(self, event: Event) -> None:
        """Fold ``event`` into the state and buffer it for the next append."""
        state = self.state
        assert state is not None
        self._buffer.append(state.record(event))
        self._checkpoints.note_events((event,))

    def _stage_outcome(self, task: Task, result: StepResult, now: float) -> None:
        state = self.state
        assert state is not None
        events = outcome_events(state, task, result, now, self.rng, self.config.system_retries)
        for event in events:
            self._buffer.append(state.record(event))
        if events:
            self._checkpoints.note_result(checkpointed=state.workflow.nodes[task.node].checkpoint)
            self._checkpoints.note_events(events)

    async def _flush(self) -> None:
        """Append the buffered events and wait until they are committed."""
        await self._committed(await self._send_buffer())

    async def _send_buffer(self) -> _Append | None:
        """Send the buffered events' append (and first save the facts of inline results); None if
        nothing is buffered. Its ticket (``submission.sent``) is there once the call has gone out."""
        if not self._buffer:
            return None
        await self._save_facts()
        buffered, self._buffer = self._buffer, []
        self._checkpoints.appended()
        events = tuple(stored.event for stored in buffered)
        await self._create_successors(events)
        first, last = buffered[0].seq, buffered[-1].seq
        request = AppendRequest(
            run_id=self.run_id,
            events=events,
            lease=self.lease,
            status=status_after(events),
            after_seq=first - 1,  # a retry of this call after the Store actor restarted writes nothing twice
            request_id=uuid.uuid4().hex,
        )
        return _Append(submission=self.calls.appends.submit(request), first=first, last=last, events=tuple(buffered))

    async def _save_facts(self) -> None:
        """Save the facts of inline results (large values), before anything may read them."""
        for fact_hash, blob in self._pending_facts:
            await self.store.save_fact(fact_hash, blob)
        self._pending_facts.clear()

    async def _ticket(self, append: _Append | None) -> AppendRef | None:
        """The ObjectRef of ``append``'s own answer, once its call has gone out (None: no append)."""
        if append is None:
            return None
        try:
            return await append.submission.sent
        except Exception:  # the call never went out: its answer is the same error
            await self._committed(append)
            raise

    async def _committed(self, append: _Append | None) -> None:
        """Wait for ``append``'s receipt (its error is raised); snapshot every so often."""
        if append is None:
            return
        state = self.state
        assert state is not None
        with contextlib.suppress(Exception):  # its error, if any, is the answer's too
            await append.submission.sent
        receipt = await self._store_call(append.submission.answer)
        # recorded, not acted on by the worker yet (its gated Ray tasks may be starting)
        faults.hit(FaultPoint.APPEND_COMMITTED, self.run_id)
        first, last = append.first, append.last
        if receipt.first_seq != first or receipt.last_seq != last:
            raise StoreError(
                f"run {self.run_id!r}: the store put events at {receipt.first_seq}..{receipt.last_seq}, "
                f"expected {first}..{last}; another writer must exist, stopping"
            )
        hooks.fire(hooks.hooks_of(state.workflow), state.workflow.name, append.events)  # logged if they raise
        METRICS.steps(state, append.events)
        run_spans(self.run_id, state.workflow.name, state.submitted_at, state.trace_context, append.events, self.owner)
        snapshot_due = state.cursor - self._snapshot_cursor >= self.config.snapshot_every
        if snapshot_due and state.cursor == last and not state.is_finished:  # nothing buffered past it
            await self.store.save_snapshot(self.run_id, state.cursor, state.snapshot())
            self._snapshot_cursor = state.cursor

    async def _create_successors(self, events: tuple[Event, ...]) -> None:
        """Create the run that a RunContinuedAsNew among ``events`` starts, before the event that
        closes this run is appended (idempotent by id: a crash in between creates it once)."""
        record = self._record
        assert record is not None
        for event in continued_in(events):
            new = successor_run(
                self.run_id,
                record.workflow,
                record.definition,
                record.definition_hash,
                event,
                checkpoint=self.state.submitted_checkpoint if self.state is not None else None,
                trace_context=self.state.trace_context if self.state is not None else None,
            )
            await self.store.create_run(new)
            faults.hit(FaultPoint.SUCCESSOR_CREATED, self.run_id)  # created, the predecessor not closed yet

    async def _store_call(self, call: Awaitable[Receipt]) -> Receipt:
        try:
            return await call
        except FencedError as exc:
            self._fenced = exc
            raise

    async def _take_signals(self) -> None:
        state = self.state
        assert state is not None
        if state.is_finished or not state.waiting_for():
            return
        signals = await self.store.signals(self.run_id, state.last_signal_id)
        for signal in signals:
            self._stage(SignalReceived(signal_id=signal.signal_id, name=signal.name, payload=signal.payload))

    async def _start_children(self) -> None:
        """Create and start each child run recorded (ChildRunStarted) and not started this turn."""
        state = self.state
        assert state is not None
        if state.is_finished:
            return
        for event in await self._children.start(state):
            self._stage(event)  # a child that could not be created (its input was refused)
        await self._flush()

    async def _take_children(self) -> None:
        """Create the open children not started this turn, then record the end of each that ended."""
        state = self.state
        assert state is not None
        if state.is_finished or not state.open_children():
            return
        await self._start_children()
        for event in await self._children.ended(state):
            self._stage(event)

    async def _renew_lease(self) -> None:
        """Renew the lease every ttl/3 until fenced. A renewal that fails otherwise (the Store
        actor restarting) is tried again next time: the Runner's lease watch takes the run
        over only once the lease has expired while the store answered."""
        interval = self.config.lease_ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.store.renew_lease(self.run_id, self.lease, self.config.lease_ttl)
            except FencedError as exc:
                self._fenced = exc
                self._poke.set()
                return
            except Exception as exc:
                log.warning("run %s: could not renew its lease (%s: %s)", self.run_id, type(exc).__name__, exc)

    async def _release(self) -> None:
        if not self.lease:
            return
        try:
            await self.store.release_lease(self.run_id, self.lease)
        except FencedError as exc:
            self._fenced = exc
        except StoreWriteFailed as exc:  # the lease expires by itself; the turn's end is recorded already
            log.warning("run %s: could not release its lease: %s", self.run_id, exc)


class Worker:
    """The Ray actor: drives up to the Runner's ``runs_per_worker`` runs at once, reused run after run.

    ``store``: the Store actor, as a :class:`StoreHandle` or its raw Ray handle; ``runner``: the
    Runner actor's handle, which starts the child runs this worker's runs create (runner.child_runs)."""

    def __init__(
        self,
        store: StoreHandle | Any,
        config: WorkerConfig,
        worker_id: str,
        address: StoreAddress | None = None,
        runner: Any = None,
    ) -> None:
        self.store = store if isinstance(store, StoreHandle) else StoreHandle(store)
        self.config = config
        self.worker_id = worker_id
        self.address = address
        self.runner = runner
        self._runs: dict[str, RunExecutor] = {}
        self._calls = StoreCalls(self.store, worker_id, config)
        self.runs_done = 0

    async def execute(self, run_id: str) -> Outcome:
        if run_id in self._runs:
            raise RuntimeError(f"worker {self.worker_id} already drives run {run_id!r}")
        executor = RunExecutor(
            run_id,
            self.store,
            self.worker_id,
            self.config,
            calls=self._calls,
            address=self.address,
            runner=self.runner,
            alone=lambda: len(self._runs) <= 1,
        )
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

    async def ping(self) -> str:
        """Answered at once by a worker whose event loop runs (the Runner's probe)."""
        return "ok"

    async def current_runs(self) -> list[str]:
        return list(self._runs)

    async def batching(self) -> dict[str, tuple[int, int]]:
        """Per kind of Store actor call: (calls made, requests they carried) since the worker started."""
        turns, appends = self._calls.turns, self._calls.appends
        return {"open_turns": (turns.calls, turns.requests), "append_each": (appends.calls, appends.requests)}
