"""The Runner: one named, detached actor per namespace that supervises runs.

Clients store their runs in the Store actor themselves (durable before the
submit returns); the Runner learns of every new run from the Store actor
(``_follow_submits``), whoever stored it, and starts pending runs in submit
order on a pool of Worker actors (:mod:`runner.pool`: at most
``max_workers`` of them, each driving up to ``runs_per_worker`` runs); wakes
suspended runs when a signal comes or a timer (:mod:`runner.timers`) is due;
starts the runs of cron schedules as their ticks come (:mod:`runner.scheduler`);
and supervises workers: a worker that dies (exception, ``ray.kill``, SIGKILL,
node loss), or stops answering without dying (:mod:`runner.lease_watch`: its
leases expire), is replaced after a backoff, with a new lease, until a run
goes over the restart-intensity limit (:mod:`runner.restart_policy`), which
fails it with an error that says why. A worker loss hits every run it drove; each
of them gets a worker of its own for its next turn, so a run whose inline
code kills its process cannot take its neighbours down again. A turn that
ended because the store could not write (a full disk) is no worker loss: the
worker stays, the run is retried after the same backoff and, over the same
limit, paused with the reason (see ``_pause_for_store``); a suspended or pending
run cannot be paused: its wake-up is tried again later instead. On start it
resumes every pending or running run found in the store
(:mod:`runner.startup_recovery`), so stopping Ray entirely loses nothing.

Every status change is made under the run's lease. A run a worker drives is
stopped by asking its worker (``Worker.request``), which records the cancel or
pause itself; the Runner records a status only for a run no worker drives
(cancel, pause, failing a run over its limit), after taking the lease with
force, which fences any writer left, and checked against the fold
(:mod:`runner.status_writes`, :mod:`runner.lifecycle`). No call to a worker
waits on it unbounded: a frozen worker is found by its leases.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import ray
from ray.exceptions import RayActorError, RayTaskError

from runner import lifecycle
from runner.cycle import StopRequest, TurnEnd
from runner.errors import FencedError, IllegalTransition, ResumeRefused, RunClosed, RunNotFound
from runner.events import ChildRunStarted
from runner.lease_watch import LeaseWatch, answer_within
from runner.metrics import METRICS
from runner.placement import NodeRotation
from runner.pool import WorkerPool, WorkerSlot
from runner.queue_recovery import recover_queues
from runner.queues import QueueBook, QueueTicket, Waiting
from runner.ray_names import store_actor_name, worker_actor_name
from runner.restart_policy import GiveUp, RestartPolicy, TurnFailure
from runner.runner_config import RecoveryReport, RunnerConfig, RunnerStats
from runner.scheduler import ScheduleLoop
from runner.startup_recovery import RecoveryLedger, plan_startup
from runner.status_writes import StatusWriter
from runner.store import REOPENABLE, TERMINAL, NewRun, RunFilter, RunRecord, RunStatus, Schedule, Signal
from runner.store_actor import RemoteStoreActor, Submitted
from runner.store_handle import StoreHandle
from runner.supervision import ANSWER_TIMEOUT
from runner.timers import Timers
from runner.waiters import Waiters
from runner.worker import Outcome, StoreAddress, Worker

if TYPE_CHECKING:
    from ray import ObjectRef

    from runner.pool import WorkerHandle

__all__ = ["RUNNER_NAME", "STORE_CONCURRENCY", "RecoveryReport", "Runner", "RunnerConfig", "RunnerStats"]

log = logging.getLogger("runner")

RUNNER_NAME = "runner"
_HEAD_NODE = {"node:__internal_head__": 0.001}
STORE_CONCURRENCY = 10_000  # calls the async Store actor holds at once (callers waiting on a group commit)
OUTCOMES_KEPT = 10_000  # last outcomes remembered, for last_outcome()
_ENDED = tuple(status.value for status in TERMINAL)  # an Outcome's status, compared by value
STOP_ATTEMPTS = 5  # times cancel/pause look again after the run's turn ended another way
BLOCKED_RETRY_MIN = 0.5  # seconds at least between tries to record a blocked run's pause
# statuses a run that cannot be paused may be stored with when its store writes keep failing:
# it is not running, so its wake-up (a signal, a timer, its first start) is tried again instead
_WAKE_LATER = (RunStatus.SUSPENDED.value, RunStatus.PENDING.value)
FOLLOW_WAIT = 30.0  # seconds a submitted_since call waits for a new run before it is asked again
FOLLOW_BACKOFF = 0.2  # seconds before asking again after the Store actor could not answer
_ALL = 1 << 62  # "no limit" for list_runs
FIRST_START_POLL = 0.05  # seconds between reads of rate-limited runs' first starts, while some are to come


class Runner:
    """Supervisor actor. Create through :func:`runner.client.connect`, not directly."""

    def __init__(self, store_url: str, config: RunnerConfig, namespace: str | None = None) -> None:
        self.store_url = store_url
        self.config = config
        # Named (uniquely per Runner start) so step tasks can look it up instead of carrying a handle;
        # it and the workers live in the Runner's namespace (given by connect(); else the job's).
        namespace = namespace or ray.get_runtime_context().namespace
        self.store_address = StoreAddress(store_actor_name(namespace, uuid.uuid4().hex[:12]), namespace)
        self.store = StoreHandle(
            RemoteStoreActor.options(
                name=self.store_address.name,
                namespace=namespace,
                num_cpus=0,
                max_concurrency=STORE_CONCURRENCY,
                max_restarts=-1,  # restarted in place, same name, when its process dies...
                max_task_retries=-1,  # ...and the calls in flight are sent again (each is safe to repeat)
                resources=_HEAD_NODE,
            ).remote(store_url)
        )
        self.pool = WorkerPool(
            max_workers=config.max_workers,
            runs_per_worker=config.runs_per_worker,
            spawn=self._spawn_worker,
            kill=_kill_worker,
        )
        self.restarts = RestartPolicy(
            limit=config.restart_limit,
            window=config.restart_window,
            backoff=config.restart_backoff,
            backoff_max=config.restart_backoff_max,
        )
        self.timers = Timers(self._enqueue)
        self.recovery = RecoveryLedger()
        self.status_writes = StatusWriter(self.store, config.worker.lease_ttl)
        self.queue_book = QueueBook(config.queues, declared_only=config.declared_queues_only)
        # when a rate limit lets the runs it holds back start (unix time), and the call set for then
        self._queue_wake: tuple[float, asyncio.TimerHandle] | None = None
        self._watching_starts = False  # _watch_first_starts runs
        self._pending: collections.deque[str] = collections.deque()
        self._backing_off: set[str] = set()  # runs waiting out a restart backoff
        self._blocked: dict[str, str] = {}  # runs to pause whose pause the store could not record -> the reason
        self._signalled_while_active: set[str] = set()
        self._resumed_while_active: set[str] = set()
        self._reopened_while_active: set[str] = set()
        self._lost: dict[str, asyncio.Future[str]] = {}  # worker id -> why it is lost, once it is
        self._turn_ended = Waiters()
        self._outcomes: collections.OrderedDict[str, Outcome] = collections.OrderedDict()
        self._worker_nodes = NodeRotation()  # each new worker on the next alive node
        self._ready = asyncio.get_event_loop().create_task(self._recover())
        self.timers.start()
        self.lease_watch = LeaseWatch(self.store, self.pool, config.worker.lease_ttl, self._worker_lost)
        self.lease_watch.start()
        self.schedules = ScheduleLoop(self.store)  # started once start-up recovery is done

    # ------------------------------------------------------------ client API
    async def ready(self) -> RecoveryReport:
        """Wait until start-up recovery is done; the recovery report."""
        await self._ready
        return self.report_now()

    def report_now(self) -> RecoveryReport:
        return self.recovery.report()

    async def report(self) -> RecoveryReport:
        return self.report_now()

    async def store_handle(self) -> Any:
        """The Store actor's raw Ray handle (callers use ``.remote`` on it)."""
        return self.store.actor

    async def store_url_in_use(self) -> str:
        return self.store_url

    async def config_in_use(self) -> RunnerConfig:
        return self.config

    async def submit(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Store the run (durably); an existing run with the same id or key is returned. Clients
        store their runs in the Store actor themselves: either way, the Runner learns of a new
        run from the Store actor (``_follow_submits``)."""
        return (await self.submit_many([new]))[0]

    async def submit_many(self, news: Sequence[NewRun]) -> list[tuple[RunRecord, bool]]:
        """Many runs in one store commit, queued in the given order."""
        await self._ready
        results = await self.store.create_runs(news)
        for record, created in results:
            if not created and record.status is RunStatus.PENDING:  # stored by an earlier try of this call
                self._enqueue(record.run_id)
        return results

    async def save_schedule(self, schedule: Schedule) -> Schedule:
        """Store a cron schedule (replacing the one of its name) and look at the schedules again."""
        await self._ready
        saved = await self.store.save_schedule(schedule)
        self.schedules.poke()
        return saved

    async def delete_schedule(self, name: str) -> None:
        """Remove a schedule (its runs stay); ScheduleNotFound if there is none of that name."""
        await self._ready
        await self.store.delete_schedule(name)
        self.schedules.poke()

    async def signal(self, run_id: str, name: str, payload: Any, dedupe_key: str | None = None) -> int:
        """Put a signal in the run's inbox (durable on return) and wake the run if it waits.
        ``dedupe_key``: the call's identity, so a retried call stores the signal once."""
        signal = await self._post_signal(run_id, name, payload, dedupe_key)
        return int(signal.signal_id)

    async def send_signal(self, run_id: str, name: str, payload: Any, dedupe_key: str, call_id: str) -> Signal:
        """``signal`` that answers with the signal stored: a signal whose ``dedupe_key`` was stored
        before is returned as it was (its ``call_id`` tells whether this call stored it)."""
        return await self._post_signal(run_id, name, payload, dedupe_key, call_id)

    async def decide(self, run_id: str, name: str, payload: Any) -> Any:
        """Post an approval's decision (signal ``name``, which is also its dedupe key: a run
        stores one decision per approval) and wake the run; the decision stored, which is an
        earlier one if the approval was decided before (see :mod:`runner.approvals`)."""
        signal = await self._post_signal(run_id, name, payload, name)
        return signal.payload

    async def _post_signal(
        self, run_id: str, name: str, payload: Any, dedupe_key: str | None, call_id: str | None = None
    ) -> Signal:
        signal = await self.store.post_signal(run_id, name, payload, dedupe_key, call_id)
        slot = self.pool.slot_of(run_id)
        if slot is not None:
            self._signalled_while_active.add(run_id)
            # unanswered (a frozen worker): the run's next worker reads the signal from the store
            await answer_within(slot.handle.poke.remote(run_id), ANSWER_TIMEOUT)
        else:
            record = await self.store.get_run(run_id)
            if record.status is RunStatus.SUSPENDED:
                self._enqueue(run_id)
        return signal

    async def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: its running steps are cancelled and it ends ``cancelled``. A run a worker
        drives is cancelled by that worker, under its lease; any other under the Runner's."""
        asked = False
        for _ in range(STOP_ATTEMPTS):
            record = await self.store.get_run(run_id)
            if record.status.is_terminal:
                if asked:  # ended while we asked: cancelled, or finished first
                    break
                raise IllegalTransition(run_id, record.status.value, RunStatus.CANCELLED.value)
            asked = True
            slot = self.pool.slot_of(run_id)
            if slot is not None:
                await self._ask_to_stop(run_id, slot, StopRequest.CANCEL)
                continue  # look at what its worker recorded (its turn may have ended another way)
            self._forget(run_id)
            try:
                await self.status_writes.cancel(run_id)
            except (FencedError, RunClosed):
                continue  # a worker took the run over meanwhile, or it ended: look again
            self._queue_run_ended(run_id)
            self._wake_parent_of(run_id)
        record = await self.store.get_run(run_id)
        if record.status is RunStatus.CANCELLED:
            await self._cancel_children(run_id)
        return record

    async def _cancel_children(self, run_id: str) -> None:
        """Cancel the child runs ``run_id`` started that have not ended (and theirs: runner.child_runs)."""
        children = [
            stored.event.child_run_id
            for stored in await self.store.read_events(run_id, 0, 1 << 30)
            if isinstance(stored.event, ChildRunStarted)
        ]
        if not children:
            return
        for record in await self.store.get_runs(children):
            if not record.status.is_terminal:
                with contextlib.suppress(IllegalTransition, RunNotFound):  # it ended meanwhile, or was never stored
                    await self.cancel(record.run_id)

    def _wake_parent_of(self, run_id: str, parent_run_id: str | None = None) -> None:
        """``run_id`` ended: if it is a child run, its parent records that (runner.child_runs)."""
        asyncio.get_running_loop().create_task(self._wake_parent(run_id, parent_run_id))

    async def _wake_parent(self, run_id: str, parent_run_id: str | None) -> None:
        try:
            if parent_run_id is None:
                parent_run_id = (await self.store.get_run(run_id)).parent_run_id
            if parent_run_id is None:
                return
            slot = self.pool.slot_of(parent_run_id)
            if slot is not None:  # it looks at its children each cycle; suspending meanwhile, it is queued again
                self._signalled_while_active.add(parent_run_id)
                await answer_within(slot.handle.poke.remote(parent_run_id), ANSWER_TIMEOUT)
            elif (await self.store.get_run(parent_run_id)).status is RunStatus.SUSPENDED:
                self._enqueue(parent_run_id)
        except RunNotFound:
            pass  # a replay's or fork's source that was deleted
        except Exception:
            log.exception("run %s: could not wake its parent run %s", run_id, parent_run_id)

    async def pause(self, run_id: str) -> RunRecord:
        """Pause a running run: no new step starts, running ones finish, the worker is released.
        A run a worker drives is paused by that worker, under its lease; any other under the Runner's."""
        asked = False
        for _ in range(STOP_ATTEMPTS):
            record = await self.store.get_run(run_id)
            if asked and record.status is not RunStatus.RUNNING:
                return record  # paused, or it ended or suspended first
            lifecycle.pause(run_id, record.status)  # IllegalTransition unless it is running
            asked = True
            slot = self.pool.slot_of(run_id)
            if slot is not None:
                await self._ask_to_stop(run_id, slot, StopRequest.PAUSE)
                continue
            self._forget(run_id)
            try:
                await self.status_writes.pause(run_id)
            except (FencedError, RunClosed, IllegalTransition):
                continue  # a worker took the run over meanwhile, or it moved on: look again
        return await self.store.get_run(run_id)

    async def _ask_to_stop(self, run_id: str, slot: WorkerSlot, request: StopRequest) -> None:
        """Ask the worker driving ``run_id`` to stop it and wait until that turn ends. The request
        follows the turn's ``execute`` call, so the worker has the run unless the turn is over;
        a worker that does not answer (frozen) is found by the lease watch, which ends the turn."""
        turn = self._turn_ended.add(run_id)
        try:
            await answer_within(slot.handle.request.remote(run_id, request.value), ANSWER_TIMEOUT)
            await turn
        finally:
            self._turn_ended.remove(run_id, turn)

    async def resume(self, run_id: str, reason: str = "") -> RunRecord:
        """Queue a paused run again; its next worker records RunResumed. A run whose pause
        could not be recorded (the store could not write) is paused first: StoreWriteFailed
        if the store still cannot write. A failed or cancelled run is reopened in place
        (:meth:`_reopen`). ResumeRefused for any other run."""
        record = await self.store.get_run(run_id)
        if record.status in REOPENABLE:
            return await self._reopen(run_id, reason)
        if run_id in self._blocked:
            error = await self._pause_for_store(run_id, self._blocked[run_id])
            if error is not None:
                raise error
        record = await self.store.get_run(run_id)
        if record.status is not RunStatus.PAUSED:
            raise ResumeRefused(run_id, record.status.value)
        if self.pool.is_driving(run_id):  # paused, its turn not over yet: queue it once it is
            self._resumed_while_active.add(run_id)
        else:
            self._enqueue(run_id)
        return record

    async def _reopen(self, run_id: str, reason: str) -> RunRecord:
        """Reopen a failed or cancelled run (RunReopened) and queue it: it goes on from where it
        ended under the same run id, every recorded result kept. A run whose last turn has not
        ended yet (its worker recorded the failure and is finishing) is queued once it has."""
        record = await self.status_writes.reopen(run_id, reason)
        self.restarts.forget(run_id)  # a fresh restart budget, as the failed steps get fresh retries
        if record.queue is not None:  # running again: it holds a queue place until it ends again
            ticket = QueueTicket(queue=record.queue, key=record.queue_key, priority=record.priority)
            self.queue_book.started(run_id, ticket)
        if self.pool.is_driving(run_id):
            self._reopened_while_active.add(run_id)
        else:
            self._enqueue(run_id)
        return record

    async def stats(self) -> RunnerStats:
        return RunnerStats(
            live_workers=len(self.pool.workers),
            peak_workers=self.pool.peak,
            busy_workers=self.pool.busy,
            pending=len(self._pending) + self.queue_book.waiting,  # queued runs wait in their queue
            restarts=self.restarts.restarts,
            store_outages=self.restarts.store_outages,
            workers_started=self.pool.started,
            start_order=tuple(self.pool.start_order),
        )

    async def worker_pid(self, run_id: str) -> int | None:
        """The process id of the worker driving ``run_id`` now (for chaos tests and debugging)."""
        slot = self.pool.slot_of(run_id)
        if slot is None:
            return None
        if slot.pid is None:
            slot.pid = await answer_within(slot.handle.pid.remote(), ANSWER_TIMEOUT)
        return slot.pid

    async def worker_handle(self, run_id: str) -> WorkerHandle | None:
        slot = self.pool.slot_of(run_id)
        return None if slot is None else slot.handle

    async def worker_handles(self) -> list[WorkerHandle]:
        """The live workers' actor handles (for benchmarks and debugging)."""
        return [slot.handle for slot in self.pool.workers]

    async def last_outcome(self, run_id: str) -> Outcome | None:
        """How the last worker turn with ``run_id`` ended (status, recovery stats); None if none has."""
        return self._outcomes.get(run_id)

    async def ping(self) -> str:
        return "ok"

    # ------------------------------------------------------------ scheduling
    def _enqueue(self, run_id: str, *, front: bool = False) -> None:
        if self.pool.is_driving(run_id) or run_id in self._pending or run_id in self._backing_off:
            return
        if self.queue_book.is_waiting(run_id):  # it starts when its queue admits it
            self._schedule()
            return
        if front:
            self._pending.appendleft(run_id)
        else:
            self._pending.append(run_id)
        self._schedule()

    def _schedule(self) -> None:
        """Start pending runs in order while the pool has room (runs waiting in a named queue
        join them as their queue admits them)."""
        self._admit_queued()
        placed = self.pool.place(self._pending)
        METRICS.pool(len(self.pool.workers), len(self._pending))
        if placed:
            loop = asyncio.get_running_loop()
            for run_id, slot in placed:
                # sent now, before any request about the run can be: the worker has the run
                # by the time a later call (poke, request) reaches it
                execute = slot.handle.execute.remote(run_id)
                loop.create_task(self._drive(run_id, slot, execute))

    def _admit_queued(self) -> None:
        """Move the runs their queues admit now (runner.queues) to the pending runs, as many
        as the pool has room for; a rate limit that holds runs back sets when to look again."""
        if not self.queue_book.waiting:
            return
        room = max(0, self.pool.room() - len(self._pending))
        admission = self.queue_book.admit(time.time(), room)
        self._pending.extend(admission.start)
        if self.queue_book.unstarted and not self._watching_starts:
            self._watching_starts = True
            asyncio.get_running_loop().create_task(self._watch_first_starts())
        at = admission.look_again_at
        if at is not None and (self._queue_wake is None or at < self._queue_wake[0]):
            if self._queue_wake is not None:
                self._queue_wake[1].cancel()  # a later look: this one comes first
            handle = asyncio.get_running_loop().call_later(max(0.0, at - time.time()), self._queue_wake_fired)
            self._queue_wake = (at, handle)

    async def _watch_first_starts(self) -> None:
        """Read when the admitted runs of rate-limited queues first start (``started_at``, set by
        the store as a worker takes a run over) until each has: a rate limit counts those
        times, and each run admitted counts until then as a start to come (runner.queues)."""
        try:
            while self.queue_book.unstarted:
                await asyncio.sleep(FIRST_START_POLL)
                try:
                    records = await self.store.get_runs(self.queue_book.unstarted)
                except Exception as exc:  # the Store actor is restarting, or a run was deleted
                    log.warning("runner: could not read queued runs' starts (%s); asking again", _described(exc))
                    continue
                for record in records:
                    if record.started_at is not None:
                        self.queue_book.first_started(record.run_id, record.started_at)
                    elif record.status.is_terminal:
                        self.queue_book.ended(record.run_id)  # ended before it ever started
                self._schedule()
        finally:
            self._watching_starts = False

    def _queue_wake_fired(self) -> None:
        self._queue_wake = None
        self._schedule()

    def _queue_run_ended(self, run_id: str) -> None:
        """A run ended: its place in its queue is free for the next."""
        if self.queue_book.is_running(run_id):
            self.queue_book.ended(run_id)
            self._schedule()

    def _forget(self, run_id: str) -> None:
        """Take a run off the queue, its timer and its restart backoff."""
        self.queue_book.withdraw(run_id)
        with contextlib.suppress(ValueError):
            self._pending.remove(run_id)
        self.timers.cancel(run_id)
        self._backing_off.discard(run_id)
        self.pool.forget(run_id)

    def _spawn_worker(self, worker_id: str) -> WorkerHandle:
        actor = (
            ray.remote(Worker)
            .options(
                name=worker_actor_name(self.store_address.namespace, worker_id),  # what `ray list actors` shows
                namespace=self.store_address.namespace,
                num_cpus=0,
                max_concurrency=1000,
                scheduling_strategy=self._worker_nodes.next_strategy(),
            )
            .remote(
                self.store.actor,
                self.config.worker,
                worker_id,
                self.store_address,
                runner=ray.get_runtime_context().current_actor,  # starts the child runs its runs create
            )
        )
        return cast("WorkerHandle", actor)

    # ----------------------------------------------------------- supervision
    async def _drive(self, run_id: str, slot: WorkerSlot, execute: ObjectRef[Outcome]) -> None:
        """Wait for the worker's turn with ``run_id`` to end (or for the worker to be lost), then
        act on how it ended."""
        failure = TurnFailure.WORKER_DIED
        reason = "its worker was lost"
        outcome: Outcome | None = None
        answer: asyncio.Future[Outcome] = asyncio.wrap_future(execute.future())
        lost = self._lost.setdefault(slot.worker_id, asyncio.get_running_loop().create_future())
        waiting: list[asyncio.Future[Any]] = [answer, lost]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if answer.done() and answer.exception() is None:
            outcome = answer.result()
        elif lost.done():
            reason = lost.result()
            answer.add_done_callback(_retrieve)
        else:
            exc = answer.exception()
            if isinstance(exc, RayActorError):
                reason = f"its worker died ({type(exc).__name__}: {_first_line(exc)})"
            elif exc is not None:
                reason = f"its worker could not drive it: {_described(exc)}"
                failure = TurnFailure.WORKER_RAISED
        self.pool.turn_ended(run_id, slot, finished=outcome is not None)
        self._turn_ended.wake(run_id)
        if outcome is not None:
            self._after_outcome(outcome)
            if outcome.status == TurnEnd.STORE_FAILED:  # the worker is fine: it stays in the pool
                await self._restart_or_fail(run_id, outcome.error, TurnFailure.STORE)
        else:
            log.warning("run %s: %s", run_id, reason)
            self._retire(slot)
            if slot.turns > 0 and await self._died_idle(run_id, slot):
                # It died while idle in the pool (killed, node lost) and never touched this run:
                # not the run's fault, so it does not count against the run's restart limit.
                self._enqueue(run_id, front=True)
            else:
                self.pool.keep_alone(run_id)
                await self._restart_or_fail(run_id, reason, failure)
        self._schedule()

    def _worker_lost(self, slot: WorkerSlot, reason: str) -> None:
        """The lease watch found ``slot``'s worker stopped answering: end each of its turns as a
        worker death (the runs restart on other workers, under new leases) and kill it. Should
        the kill not reach it, the store fences whatever it tries when it wakes."""
        lost = self._lost.setdefault(slot.worker_id, asyncio.get_running_loop().create_future())
        if not lost.done():
            lost.set_result(reason)
        self._retire(slot)

    def _retire(self, slot: WorkerSlot) -> None:
        self.pool.retire(slot)
        self._lost.pop(slot.worker_id, None)  # the turns that wait on it hold it already

    async def _died_idle(self, run_id: str, slot: WorkerSlot) -> bool:
        """True if ``slot``'s worker never took this run's lease (it was dead before it got the run)."""
        try:
            record = await self.store.get_run(run_id)
        except Exception:
            return False
        return record.lease_owner != slot.worker_id

    def _after_outcome(self, outcome: Outcome) -> None:
        run_id = outcome.run_id
        self._outcomes.pop(run_id, None)
        self._outcomes[run_id] = outcome
        if len(self._outcomes) > OUTCOMES_KEPT:
            self._outcomes.popitem(last=False)
        self.recovery.after_outcome(outcome)
        if outcome.status in _ENDED:
            self.queue_book.ended(run_id)  # its queue place is free; _drive schedules next
            self.restarts.forget(run_id)
            self._start_successor(outcome)
            if outcome.parent_run_id is not None:
                self._wake_parent_of(run_id, outcome.parent_run_id)
        elif outcome.status == RunStatus.SUSPENDED.value:
            if run_id in self._signalled_while_active:
                self._enqueue(run_id)
            elif outcome.wake_at is not None:
                self.timers.add(outcome.wake_at, run_id)
        elif outcome.status == RunStatus.PAUSED.value and run_id in self._resumed_while_active:
            self._enqueue(run_id)
        self._signalled_while_active.discard(run_id)
        self._resumed_while_active.discard(run_id)
        if run_id in self._reopened_while_active:  # reopened while its last turn was ending
            self._reopened_while_active.discard(run_id)
            self._enqueue(run_id)

    def _start_successor(self, outcome: Outcome) -> None:
        """A run that continued as a new one: its successor (created by the worker) runs next."""
        if outcome.successor_run_id is not None:
            self._enqueue(outcome.successor_run_id)

    async def _restart_or_fail(self, run_id: str, reason: str, failure: TurnFailure) -> None:
        decision = self.restarts.after_failure(run_id, reason, failure)
        if isinstance(decision, GiveUp):
            self.pool.forget(run_id)
            if failure is TurnFailure.STORE:
                await self._pause_for_store(run_id, decision.message)
            else:
                await self._fail_run(run_id, decision.message)
            return
        self._backing_off.add(run_id)
        asyncio.get_running_loop().create_task(self._requeue_after(run_id, decision.delay))

    async def _requeue_after(self, run_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if run_id in self._backing_off:  # not cancelled or paused meanwhile
            self._backing_off.discard(run_id)
            self._enqueue(run_id, front=True)

    async def _fail_run(self, run_id: str, message: str) -> None:
        self.recovery.could_not_resume(run_id, message)
        try:
            await self.status_writes.fail(run_id, message)
        except (RunClosed, IllegalTransition):
            pass  # it ended meanwhile
        except Exception:
            log.exception("run %s: could not record its failure", run_id)
        self._queue_run_ended(run_id)
        self._wake_parent_of(run_id)

    async def _pause_for_store(self, run_id: str, reason: str) -> Exception | None:
        """Pause a run whose store writes kept failing, ``reason`` in its RunPaused: nothing
        recorded is lost, and it goes on once resumed. If the store cannot take even that write,
        the run stays as it is stored (running, no worker, its lease free or expiring), is
        listed in the recovery report's ``blocked`` with the reason, and the pause is tried
        again every ``restart_backoff_max`` seconds, and at ``resume`` (a Runner start resumes
        it). The error that write failed with, or None (paused, or the run moved on)."""
        try:
            await self.status_writes.pause(run_id, reason)
        except IllegalTransition as exc:
            if exc.from_status in _WAKE_LATER:
                self._wake_later(run_id, exc.from_status)
            # else it moved on meanwhile: paused or cancelled by a user, or ended
        except (FencedError, RunClosed):
            pass  # it moved on meanwhile: cancelled by a user, ended, driven again
        except Exception as exc:
            error = exc.cause if isinstance(exc, RayTaskError) and isinstance(exc.cause, Exception) else exc
            self.recovery.blocked(run_id, f"{reason} (its pause could not be recorded: {_described(exc)})")
            if run_id not in self._blocked:
                log.warning("run %s: could not record its pause (%s); will try again", run_id, _described(exc))
                self._blocked[run_id] = reason
                asyncio.get_running_loop().create_task(self._retry_pause(run_id))
            return error
        self._blocked.pop(run_id, None)
        self.recovery.unblocked(run_id)
        return None

    def _wake_later(self, run_id: str, status: str) -> None:
        """A run that is not running cannot be paused: a suspended run whose wake-up (a signal,
        its timer) its turns could not record, or a pending run that could not start. What
        woke it is still stored, so its wake-up is tried again later, as a Runner start would."""
        delay = max(self.config.restart_backoff_max, BLOCKED_RETRY_MIN)
        log.warning(
            "run %s: its store writes keep failing while it is %s; waking it again in %gs", run_id, status, delay
        )
        self.timers.add(time.time() + delay, run_id)

    async def _retry_pause(self, run_id: str) -> None:
        """Try again to record the pause of a blocked run, until it is recorded or the run moves on."""
        while run_id in self._blocked:
            await asyncio.sleep(max(self.config.restart_backoff_max, BLOCKED_RETRY_MIN))
            if self.pool.is_driving(run_id) or run_id in self._pending or run_id in self._backing_off:
                self._blocked.pop(run_id, None)  # it is being driven again: nothing to pause
                self.recovery.unblocked(run_id)
            elif run_id in self._blocked:
                await self._pause_for_store(run_id, self._blocked[run_id])

    # --------------------------------------------------------------- submits
    async def _follow_submits(self, first: Submitted) -> None:
        """Queue every run the Store actor stores, whoever submitted it (clients write their runs
        to it directly), as it answers ``submitted_since``. Should the Store actor restart, the
        runs it stored since the last answer are in the store only: every pending run is read."""
        seen = first
        while True:
            try:
                news = await self.store.submitted_since(seen.incarnation, seen.cursor, FOLLOW_WAIT)
                if news.incarnation != seen.incarnation:
                    for record in await self.store.list_runs(
                        RunFilter(status=RunStatus.PENDING, newest_first=False, limit=_ALL)
                    ):
                        if record.queue is not None:
                            ticket = QueueTicket(queue=record.queue, key=record.queue_key, priority=record.priority)
                            self._enqueue_waiting(
                                Waiting(run_id=record.run_id, ticket=ticket, created_at=record.created_at)
                            )
                        else:
                            self._enqueue_submitted(record.run_id)
            except Exception as exc:  # the Store actor is restarting: ask again
                log.warning("runner: could not learn of new runs (%s); asking again", _described(exc))
                await asyncio.sleep(FOLLOW_BACKOFF)
                continue
            queued = {waiting.run_id: waiting for waiting in news.queued}
            for run_id in news.run_ids:
                if run_id in queued:
                    self._enqueue_waiting(queued[run_id])
                else:
                    self._enqueue_submitted(run_id)
            seen = news

    def _enqueue_submitted(self, run_id: str) -> None:
        """Queue a new run, unless a turn with it ended it already (its notice came late)."""
        outcome = self._outcomes.get(run_id)
        if outcome is None or outcome.status not in _ENDED:
            self._enqueue(run_id)

    def _enqueue_waiting(self, waiting: Waiting) -> None:
        """A new run of a named queue waits there until its queue admits it."""
        run_id = waiting.run_id
        outcome = self._outcomes.get(run_id)
        if outcome is not None and outcome.status in _ENDED:
            return
        if self.pool.is_driving(run_id) or run_id in self._pending or self.queue_book.is_running(run_id):
            return
        self.queue_book.add(waiting)
        self._schedule()

    # -------------------------------------------------------------- recovery
    async def _recover(self) -> None:
        await self.store.opened()  # a store that cannot be opened fails ready() with the adapter's error
        first = await self.store.submitted_since(None, 0, 0)  # runs stored after this are followed
        plan = await plan_startup(self.store)
        self.recovery.found(plan)
        await recover_queues(self.store, self.queue_book)
        self._pending.extend(run_id for run_id in plan.resume if not self.queue_book.is_waiting(run_id))
        self._pending.extend(plan.wake)
        for wake_at, run_id in plan.timers:
            self.timers.add(wake_at, run_id)
        if plan.resume or plan.wake:
            log.info(
                "runner start: resuming %d run(s), woke %d, %d timer(s) set",
                len(plan.resume),
                len(plan.wake),
                len(plan.timers),
            )
        self._schedule()
        asyncio.get_running_loop().create_task(self._follow_submits(first))
        self.schedules.start()


def _kill_worker(handle: WorkerHandle) -> None:
    with contextlib.suppress(Exception):  # it may be gone already
        ray.kill(handle, no_restart=True)


def _retrieve(future: asyncio.Future[Outcome]) -> None:
    """Collect the answer of a turn given up on (its worker was lost), so asyncio logs no
    'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()


def _described(exc: BaseException) -> str:
    """``Type: first line`` of an error, the one a Ray task error carries rather than itself."""
    cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
    return f"{type(cause).__name__}: {_first_line(cause)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
