"""The Runner: one named, detached actor per namespace that supervises runs.

It accepts submits (durable before they are acknowledged), keeps at most
``max_workers`` Worker actors alive, each driving up to ``runs_per_worker``
runs at once (a new run goes to an idle worker, else to a new one while
under the cap, else to the least busy one), starts pending runs in submit order, wakes suspended runs when a signal or
a timer is due, and supervises workers: a worker that dies (exception,
``ray.kill``, SIGKILL, node loss) is replaced after a backoff, with a new
lease, until a run exceeds the restart-intensity limit (at most
``restart_limit`` restarts in ``restart_window`` seconds), which fails it
with an error that says why. A worker loss hits every run it drove; each of
them gets a worker of its own for its next turn, so a run whose inline code
kills its process cannot take its neighbours down again. On start it resumes
every pending or running run found in the store, so stopping Ray entirely
loses nothing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import heapq
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from runner.errors import IllegalTransition, InvalidArgument, RunClosed
from runner.events import ErrorInfo, RunCancelled, RunFailed, RunPaused, RunSuspended
from runner.store import NewRun, RunFilter, RunRecord, RunStatus
from runner.store_actor import RemoteStoreActor
from runner.worker import Outcome, StoreAddress, Worker, WorkerConfig

log = logging.getLogger("runner")

RUNNER_NAME = "runner"
_HEAD_NODE = {"node:__internal_head__": 0.001}
_ALL = 1 << 62
STORE_CONCURRENCY = 10_000  # calls the async Store actor holds at once (callers waiting on a group commit)


@dataclass(frozen=True, kw_only=True)
class RunnerConfig:
    """Supervision settings. ``max_workers`` (default: the CPU count, at least 2) caps the
    worker actors alive at once; ``runs_per_worker`` caps the runs one worker drives at once
    (its steps run as Ray tasks, so a worker only plans and records: many runs share it);
    ``restart_backoff`` doubles per restart inside the window."""

    max_workers: int = field(default_factory=lambda: max(2, os.cpu_count() or 2))
    runs_per_worker: int = 32
    restart_limit: int = 3
    restart_window: float = 60.0
    restart_backoff: float = 0.2
    restart_backoff_max: float = 10.0
    worker: WorkerConfig = field(default_factory=WorkerConfig)

    def __post_init__(self) -> None:
        if isinstance(self.max_workers, bool) or not isinstance(self.max_workers, int) or self.max_workers < 1:
            raise InvalidArgument(f"max_workers must be a whole number >= 1, got {self.max_workers!r}")
        if (
            isinstance(self.runs_per_worker, bool)
            or not isinstance(self.runs_per_worker, int)
            or self.runs_per_worker < 1
        ):
            raise InvalidArgument(f"runs_per_worker must be a whole number >= 1, got {self.runs_per_worker!r}")
        if not isinstance(self.restart_limit, int) or self.restart_limit < 0:
            raise InvalidArgument(f"restart_limit must be a whole number >= 0, got {self.restart_limit!r}")
        for name in ("restart_window", "restart_backoff", "restart_backoff_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidArgument(f"{name} must be a number of seconds >= 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class RecoveryReport:
    """What the Runner found in the store when it started, and what it did about it."""

    resumed: tuple[str, ...] = ()
    timers: tuple[str, ...] = ()
    woken: tuple[str, ...] = ()
    redispatched: dict[str, int] = field(default_factory=dict)
    leases_taken_over: tuple[str, ...] = ()
    not_resumed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunnerStats:
    live_workers: int
    peak_workers: int
    busy_workers: int
    pending: int
    restarts: int
    workers_started: int
    start_order: tuple[str, ...]


@dataclass
class _WorkerSlot:
    worker_id: str
    handle: Any
    runs: set[str] = field(default_factory=set)  # runs it drives now
    turns: int = 0  # run turns it has finished: > 0 means it was reused
    alone: bool = False  # it drives a run that must not share its worker (see _alone)


class Runner:
    """Supervisor actor. Create through :func:`runner.client.connect`, not directly."""

    def __init__(self, store_url: str, config: RunnerConfig) -> None:
        self.store_url = store_url
        self.config = config
        # Named (uniquely per Runner start) so step tasks can look it up instead of carrying a handle.
        self.store_address = StoreAddress(f"runner-store-{uuid.uuid4().hex[:12]}", ray.get_runtime_context().namespace)
        self.store: Any = RemoteStoreActor.options(
            name=self.store_address.name,
            num_cpus=0,
            max_concurrency=STORE_CONCURRENCY,
            max_restarts=-1,
            resources=_HEAD_NODE,
        ).remote(store_url)
        self._pending: collections.deque[str] = collections.deque()
        self._active: dict[str, _WorkerSlot] = {}
        self._workers: list[_WorkerSlot] = []
        self._alone: set[str] = set()  # runs whose last worker died under them: next turn on a worker of their own
        self._restarts: dict[str, collections.deque[float]] = {}
        self._backing_off: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._timers: list[tuple[float, str]] = []
        self._timer_wake = asyncio.Event()
        self._signalled_while_active: set[str] = set()
        self._turn_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._peak = 0
        self._restart_count = 0
        self._workers_started = 0
        self._start_order: collections.deque[str] = collections.deque(maxlen=100_000)
        self._report = RecoveryReport()
        self._redispatched: dict[str, int] = {}
        self._resumed: set[str] = set()
        self._not_resumed: dict[str, str] = {}
        self._outcomes: collections.OrderedDict[str, Outcome] = collections.OrderedDict()
        self._ready = asyncio.get_event_loop().create_task(self._recover())
        self._timer_task = asyncio.get_event_loop().create_task(self._timer_loop())

    # ------------------------------------------------------------ client API
    async def ready(self) -> RecoveryReport:
        """Wait until start-up recovery is done; the recovery report."""
        await self._ready
        return self.report_now()

    def report_now(self) -> RecoveryReport:
        return dataclasses.replace(
            self._report, redispatched=dict(self._redispatched), not_resumed=dict(self._not_resumed)
        )

    async def report(self) -> RecoveryReport:
        return self.report_now()

    async def store_handle(self) -> Any:
        return self.store

    async def store_url_in_use(self) -> str:
        return self.store_url

    async def submit(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Store the run (durably) and queue it; an existing run with the same id or key is returned."""
        await self._ready
        record, created = await self.store.create_run.remote(new)
        if created:
            self._enqueue(record.run_id)
        return record, created

    async def submit_many(self, news: Sequence[NewRun]) -> list[tuple[RunRecord, bool]]:
        """Many runs in one store commit, queued in the given order."""
        await self._ready
        results: list[tuple[RunRecord, bool]] = await self.store.create_runs.remote(list(news))
        for record, created in results:
            if created:
                self._pending.append(record.run_id)
        self._schedule()
        return results

    async def wait(self, run_id: str, timeout: float | None) -> RunRecord:
        """The run's record once it has ended, or after ``timeout`` seconds, whichever is first."""
        return (await self.wait_many([run_id], timeout))[0]

    async def wait_many(self, run_ids: Sequence[str], timeout: float | None) -> list[RunRecord]:
        """The runs' records once all have ended, or after ``timeout`` seconds: two store calls
        however many runs. Waiters are registered before the first read, so a run that ends
        in between still wakes them."""
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[None]] = {}
        for run_id in run_ids:
            if run_id not in futures:
                futures[run_id] = loop.create_future()
                self._waiters.setdefault(run_id, []).append(futures[run_id])
        try:
            records: list[RunRecord] = await self.store.get_runs.remote(list(run_ids))
            open_runs = {r.run_id for r in records if not r.status.is_terminal}
            if not open_runs or (timeout is not None and timeout <= 0):
                return records
            await asyncio.wait([futures[run_id] for run_id in open_runs], timeout=timeout)
            final: list[RunRecord] = await self.store.get_runs.remote(list(run_ids))
            return final
        finally:
            for run_id, future in futures.items():
                waiters = self._waiters.get(run_id, [])
                if future in waiters:
                    waiters.remove(future)
                if not waiters:
                    self._waiters.pop(run_id, None)

    async def signal(self, run_id: str, name: str, payload: Any) -> int:
        """Put a signal in the run's inbox (durable on return) and wake the run if it waits."""
        signal = await self.store.post_signal.remote(run_id, name, payload)
        slot = self._active.get(run_id)
        if slot is not None:
            self._signalled_while_active.add(run_id)
            await slot.handle.poke.remote(run_id)
        else:
            record: RunRecord = await self.store.get_run.remote(run_id)
            if record.status is RunStatus.SUSPENDED:
                self._enqueue(run_id)
        return int(signal.signal_id)

    async def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: its running steps are cancelled and it ends ``cancelled``."""
        asked = False
        for _ in range(5):
            record: RunRecord = await self.store.get_run.remote(run_id)
            if record.status.is_terminal:
                if asked:  # ended while we asked: cancelled, or finished first
                    return record
                raise IllegalTransition(run_id, record.status.value, RunStatus.CANCELLED.value)
            asked = True
            slot = self._active.get(run_id)
            if slot is not None:
                if record.status is RunStatus.RUNNING:
                    await self.store.transition.remote(run_id, RunStatus.CANCELLING)
                turn = self._turn_end(run_id)
                if await slot.handle.request.remote(run_id, "cancel"):
                    await turn
                    continue  # the worker's turn ended: look at what it recorded
                continue
            self._forget(run_id)
            lease = await self.store.acquire_lease.remote(run_id, "runner", self.config.worker.lease_ttl, force=True)
            if record.status in (RunStatus.RUNNING, RunStatus.SUSPENDED):
                await self.store.transition.remote(run_id, RunStatus.CANCELLING, lease=lease.token)
            await self.store.append.remote(
                run_id, [RunCancelled(reason="cancelled on request")], lease.token, RunStatus.CANCELLED
            )
            self._wake_waiters(run_id)
        final: RunRecord = await self.store.get_run.remote(run_id)
        return final

    async def pause(self, run_id: str) -> RunRecord:
        """Pause a running run: no new step starts, running ones finish, the worker is released."""
        record: RunRecord = await self.store.get_run.remote(run_id)
        if record.status is not RunStatus.RUNNING:
            raise IllegalTransition(run_id, record.status.value, RunStatus.PAUSED.value)
        slot = self._active.get(run_id)
        if slot is not None:
            turn = self._turn_end(run_id)
            if await slot.handle.request.remote(run_id, "pause"):
                await turn
        else:
            self._forget(run_id)
            lease = await self.store.acquire_lease.remote(run_id, "runner", self.config.worker.lease_ttl, force=True)
            await self.store.append.remote(run_id, [RunPaused()], lease.token, RunStatus.PAUSED)
            await self.store.release_lease.remote(run_id, lease.token)
        final: RunRecord = await self.store.get_run.remote(run_id)
        return final

    async def resume(self, run_id: str) -> RunRecord:
        """Queue a paused run again; its next worker records RunResumed."""
        record: RunRecord = await self.store.get_run.remote(run_id)
        if record.status is not RunStatus.PAUSED:
            raise IllegalTransition(run_id, record.status.value, RunStatus.RUNNING.value)
        self._enqueue(run_id)
        return record

    def _turn_end(self, run_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turn_waiters.setdefault(run_id, []).append(future)
        return future

    def _forget(self, run_id: str) -> None:
        """Take a run off the queue, its timer and its restart backoff."""
        with contextlib.suppress(ValueError):
            self._pending.remove(run_id)
        self._timers = [(t, r) for t, r in self._timers if r != run_id]
        heapq.heapify(self._timers)
        self._backing_off.discard(run_id)
        self._alone.discard(run_id)

    async def stats(self) -> RunnerStats:
        return RunnerStats(
            live_workers=len(self._workers),
            peak_workers=self._peak,
            busy_workers=sum(1 for slot in self._workers if slot.runs),
            pending=len(self._pending),
            restarts=self._restart_count,
            workers_started=self._workers_started,
            start_order=tuple(self._start_order),
        )

    async def worker_pid(self, run_id: str) -> int | None:
        """The process id of the worker driving ``run_id`` now (for chaos tests and debugging)."""
        slot = self._active.get(run_id)
        if slot is None:
            return None
        pid: int = await slot.handle.pid.remote()
        return pid

    async def worker_handle(self, run_id: str) -> Any:
        slot = self._active.get(run_id)
        return None if slot is None else slot.handle

    async def worker_handles(self) -> list[Any]:
        """The live workers' actor handles (for benchmarks and debugging)."""
        return [slot.handle for slot in self._workers]

    async def last_outcome(self, run_id: str) -> Outcome | None:
        """How the last worker turn with ``run_id`` ended (status, recovery stats); None if none has."""
        return self._outcomes.get(run_id)

    async def ping(self) -> str:
        return "ok"

    # ------------------------------------------------------------ scheduling
    def _enqueue(self, run_id: str, *, front: bool = False) -> None:
        if run_id in self._active or run_id in self._pending or run_id in self._backing_off:
            return
        if front:
            self._pending.appendleft(run_id)
        else:
            self._pending.append(run_id)
        self._schedule()

    def _schedule(self) -> None:
        """Start pending runs in order while workers have room; a run that must be alone on
        its worker waits for one without holding back the runs behind it."""
        waiting_alone: list[str] = []
        while self._pending:
            run_id = self._pending.popleft()
            if run_id in self._active:
                continue
            slot = self._slot_for(run_id, draining=bool(waiting_alone))
            if slot is None:
                if run_id in self._alone:
                    waiting_alone.append(run_id)
                    continue
                self._pending.appendleft(run_id)
                break
            slot.runs.add(run_id)
            slot.alone = run_id in self._alone
            self._active[run_id] = slot
            self._start_order.append(run_id)
            self._peak = max(self._peak, len(self._workers))
            asyncio.get_running_loop().create_task(self._drive(run_id, slot))
        self._pending.extendleft(reversed(waiting_alone))

    def _slot_for(self, run_id: str, *, draining: bool) -> _WorkerSlot | None:
        """An idle worker, else a new one under the cap, else (unless the run must be alone)
        the least busy worker with room. ``draining``: a run waits for a worker of its own,
        so the least busy worker takes nothing new until it is idle."""
        idle = [slot for slot in self._workers if not slot.runs]
        if idle:
            return idle[-1]
        if len(self._workers) < self.config.max_workers:
            slot = self._new_worker()
            self._workers.append(slot)
            return slot
        if run_id in self._alone:
            return None
        shared = sorted(
            (s for s in self._workers if not s.alone and len(s.runs) < self.config.runs_per_worker),
            key=lambda s: len(s.runs),
        )
        if draining:
            shared = shared[1:]  # the least busy one drains
        return shared[0] if shared else None

    def _new_worker(self) -> _WorkerSlot:
        worker_id = f"worker-{uuid.uuid4().hex[:12]}"
        handle = (
            ray.remote(Worker)
            .options(num_cpus=0, max_concurrency=1000, scheduling_strategy="SPREAD")
            .remote(self.store, self.config.worker, worker_id, self.store_address)
        )
        self._workers_started += 1
        return _WorkerSlot(worker_id=worker_id, handle=handle)

    async def _drive(self, run_id: str, slot: _WorkerSlot) -> None:
        failure: str | None = None
        raised = False  # the turn ended with an exception, not with the worker's death
        outcome: Outcome | None = None
        try:
            outcome = await slot.handle.execute.remote(run_id)
        except RayActorError as exc:
            failure = f"its worker died ({type(exc).__name__}: {_first_line(exc)})"
        except Exception as exc:
            cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
            failure = f"its worker could not drive it: {type(cause).__name__}: {_first_line(cause)}"
            raised = True
        del self._active[run_id]
        slot.runs.discard(run_id)
        if not slot.runs:
            slot.alone = False
        for future in self._turn_waiters.pop(run_id, []):
            if not future.done():
                future.set_result(None)
        if outcome is not None:
            slot.turns += 1
            self._alone.discard(run_id)
            self._after_outcome(outcome)
        else:
            log.warning("run %s: %s", run_id, failure)
            if slot in self._workers:  # the first of its runs to learn of the loss retires it
                self._workers.remove(slot)
                with contextlib.suppress(Exception):  # it may be gone already
                    ray.kill(slot.handle, no_restart=True)
            if slot.turns > 0 and await self._died_idle(run_id, slot):
                # It died while idle in the pool (killed, node lost) and never touched this run:
                # not the run's fault, so it does not count against the run's restart limit.
                self._enqueue(run_id, front=True)
            else:
                self._alone.add(run_id)
                await self._restart_or_fail(run_id, failure or "its worker was lost", raised=raised)
        self._schedule()

    async def _died_idle(self, run_id: str, slot: _WorkerSlot) -> bool:
        """True if ``slot``'s worker never took this run's lease (it was dead before it got the run)."""
        try:
            record: RunRecord = await self.store.get_run.remote(run_id)
        except Exception:
            return False
        return record.lease_owner != slot.worker_id

    def _after_outcome(self, outcome: Outcome) -> None:
        run_id = outcome.run_id
        self._outcomes.pop(run_id, None)
        self._outcomes[run_id] = outcome
        if len(self._outcomes) > 10_000:
            self._outcomes.popitem(last=False)
        if run_id in self._resumed and outcome.recovery.redispatched:
            self._redispatched[run_id] = self._redispatched.get(run_id, 0) + len(outcome.recovery.redispatched)
        if outcome.status in ("completed", "failed", "cancelled"):
            self._restarts.pop(run_id, None)
            self._wake_waiters(run_id)
        elif outcome.status == RunStatus.SUSPENDED.value:
            if run_id in self._signalled_while_active:
                self._enqueue(run_id)
            elif outcome.wake_at is not None:
                self._add_timer(outcome.wake_at, run_id)
        self._signalled_while_active.discard(run_id)

    async def _restart_or_fail(self, run_id: str, reason: str, *, raised: bool = False) -> None:
        now = time.monotonic()
        history = self._restarts.setdefault(run_id, collections.deque())
        while history and now - history[0] > self.config.restart_window:
            history.popleft()
        history.append(now)
        self._restart_count += 1
        if len(history) > self.config.restart_limit:
            self._restarts.pop(run_id, None)
            self._alone.discard(run_id)
            if raised:
                advice = (
                    "The worker could not load or fold the run (its code is missing or changed where the "
                    "workers run, or its history does not fit its definition); fix that and replay the run"
                )
            else:
                advice = (
                    "A step that kills its process (inline=True code, native crashes, out of memory) "
                    "is the usual cause; fix it and replay the run"
                )
            message = (
                f"run stopped: {reason}; that is {len(history)} failed worker turns within "
                f"{self.config.restart_window:g}s, over the restart limit of {self.config.restart_limit}. {advice}"
            )
            await self._fail_run(run_id, message)
            return
        delay = min(self.config.restart_backoff * (2 ** (len(history) - 1)), self.config.restart_backoff_max)
        self._backing_off.add(run_id)
        asyncio.get_running_loop().create_task(self._requeue_after(run_id, delay))

    async def _requeue_after(self, run_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if run_id in self._backing_off:  # not cancelled or paused meanwhile
            self._backing_off.discard(run_id)
            self._enqueue(run_id, front=True)

    async def _fail_run(self, run_id: str, message: str) -> None:
        if run_id in self._resumed:  # found at start-up, and could not be carried on
            self._not_resumed[run_id] = message
        try:
            lease = await self.store.acquire_lease.remote(run_id, "runner", self.config.worker.lease_ttl, force=True)
            error = ErrorInfo(type="runner.errors.WorkerLost", message=message)
            await self.store.append.remote(run_id, [RunFailed(error=error)], lease.token, RunStatus.FAILED)
        except RunClosed:
            pass
        except Exception:
            log.exception("run %s: could not record its failure", run_id)
        self._wake_waiters(run_id)

    def _wake_waiters(self, run_id: str) -> None:
        for future in self._waiters.pop(run_id, []):
            if not future.done():
                future.set_result(None)

    # ---------------------------------------------------------------- timers
    def _add_timer(self, wake_at: float, run_id: str) -> None:
        heapq.heappush(self._timers, (wake_at, run_id))
        self._timer_wake.set()

    async def _timer_loop(self) -> None:
        while True:
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._timer_wake.wait(), timeout)
            self._timer_wake.clear()
            now = time.time()
            while self._timers and self._timers[0][0] <= now:
                _, run_id = heapq.heappop(self._timers)
                self._enqueue(run_id)

    # -------------------------------------------------------------- recovery
    async def _recover(self) -> None:
        store = self.store
        unfinished = (RunStatus.RUNNING, RunStatus.CANCELLING, RunStatus.PENDING)
        records: list[RunRecord] = await store.list_runs.remote(
            RunFilter(status=unfinished, newest_first=False, limit=_ALL)
        )
        order = {RunStatus.RUNNING: 0, RunStatus.CANCELLING: 0, RunStatus.PENDING: 1}
        records.sort(key=lambda r: (order[r.status], r.created_at))
        resumed = tuple(r.run_id for r in records)
        taken_over = tuple(
            r.run_id for r in records if r.lease_owner is not None and (r.lease_expires_at or 0) > time.time()
        )
        self._resumed.update(resumed)
        for record in records:
            self._pending.append(record.run_id)
        suspended: list[RunRecord] = await store.list_runs.remote(
            RunFilter(status=RunStatus.SUSPENDED, newest_first=False, limit=_ALL)
        )
        timers: list[str] = []
        woken: list[str] = []
        for record in suspended:
            last = await store.last_event.remote(record.run_id)
            suspended_at = last.event.at if last is not None else 0.0
            wake_at = last.event.wake_at if last is not None and isinstance(last.event, RunSuspended) else None
            new_signals = [s for s in await store.signals.remote(record.run_id) if s.sent_at >= suspended_at]
            if new_signals or (wake_at is not None and wake_at <= time.time()):
                woken.append(record.run_id)
                self._pending.append(record.run_id)
            elif wake_at is not None:
                timers.append(record.run_id)
                self._add_timer(wake_at, record.run_id)
        self._report = RecoveryReport(
            resumed=resumed, timers=tuple(timers), woken=tuple(woken), leases_taken_over=taken_over
        )
        if resumed or woken:
            log.info(
                "runner start: resuming %d run(s), woke %d, %d timer(s) set", len(resumed), len(woken), len(timers)
            )
        self._schedule()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
