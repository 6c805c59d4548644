"""The Python API users call: ``connect()``, ``Client.submit()`` and ``RunHandle``.

``connect()`` with no address joins a Ray instance already running on this
machine (``ray start --head`` or ``runner start``) or else starts one in this
process (single-machine mode; the embedded DuckDB store by default). With an
address it joins that cluster. Either way it finds or creates the namespace's
Runner actor, which resumes whatever the store says is unfinished.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray

from adapters import DEFAULT_STORE_URL, store_path
from runner import approvals, deadlines, policy_overrides, serialization, tracing
from runner import cron as cron_schedules
from runner.checkpoint import CheckpointStrategy, as_strategy, stored_name
from runner.continue_as_new import successor_of
from runner.errors import (
    ConfigMismatch,
    IllegalTransition,
    InvalidArgument,
    ReplayRefused,
    ResultTimeout,
    RunnerError,
    RunnerUnavailable,
    RunNotFound,
    StoreError,
)
from runner.events import SKIPPED, FactReused, RunSubmitted, StepSkipped, StoredEvent
from runner.hook_follower import HookFollower
from runner.hooks import Hooks
from runner.jobs import is_job_address
from runner.metadata import FilterValue, JSONValue, check_metadata
from runner.object_refs import resolve_object_refs
from runner.queues import Queue, QueueTicket, limits_of, ticket_for
from runner.ray_calls import RunnerCalls, StoreCalls, find_runner, runner_store
from runner.reader import ActorStoreReader, Outcome
from runner.run_metadata import RunMetadata, run_metadata
from runner.runner import RUNNER_NAME, RecoveryReport, Runner, RunnerConfig, RunnerStats
from runner.runner_config import config_differences
from runner.shipping import by_value, pickle_definition
from runner.signal_id import SignalId, answer, dedupe_key_for
from runner.state import StepInfo, WorkflowState
from runner.store import (
    NewRun,
    RunFilter,
    RunRecord,
    RunStatus,
    Schedule,
    check_run_id,
    check_schedule_name,
    check_signal_name,
)
from runner.workflow import Workflow

if TYPE_CHECKING:
    from runner.ui.serve_app import ServedUi
    from runner.ui.server import UiServer

_HEAD_NODE = {"node:__internal_head__": 0.001}
WAIT_STEP = 30.0  # seconds one call waits for runs to end before the client asks again


def connect(
    address: str | None = None,
    *,
    store: str = DEFAULT_STORE_URL,
    namespace: str = "runner",
    max_workers: int | None = None,
    config: RunnerConfig | None = None,
) -> Client:
    """Connect to (or start) Ray and this namespace's Runner.

    ``store``: ``duckdb:///relative/or/absolute.duckdb`` (relative paths are
    resolved against the current directory, here) or ``memory://``.
    ``max_workers`` caps the worker actors the Runner keeps alive (default:
    the machine's CPU count, at least 2). ``config`` sets every supervision
    option; ``max_workers`` overrides its field when both are given.

    A Runner already running in the namespace is used as it is: ConfigMismatch
    if ``config`` or ``max_workers`` asks for other settings (give neither to
    take the running Runner's). A store that cannot be opened raises the
    adapter's error (StoreCorrupt, StorePathInvalid, ...) and leaves no Runner
    behind, so the next ``connect()`` starts afresh.
    """
    if not isinstance(namespace, str) or not namespace:
        raise InvalidArgument(f"namespace must be a non-empty string, got {namespace!r}")
    if is_job_address(address):
        raise InvalidArgument(
            f"{address} is a Ray Jobs (dashboard) address: connect() joins a cluster as a driver on it "
            "(address='auto' or 'HEAD:6379'); from outside, run `runner submit --address "
            f"{address} file.py:workflow` (or submit `python -m runner.job_entry ...` as a Ray job); see docs/cluster.md"
        )
    store_url = absolute_store_url(store)
    base = config or RunnerConfig()
    if max_workers is not None:
        base = RunnerConfig(**{**base.__dict__, "max_workers": max_workers})
    _init_ray(address, namespace)
    calls = RunnerCalls(_runner_actor(namespace, store_url, base), lambda: find_runner(RUNNER_NAME, namespace))
    in_use = calls.call(lambda r: r.store_url_in_use.remote())
    if in_use != store_url and _could_not_open_its_store(calls):
        _remove_runner(calls, namespace)  # left behind by a connect() that died: start ours
        calls = RunnerCalls(_runner_actor(namespace, store_url, base), lambda: find_runner(RUNNER_NAME, namespace))
        in_use = calls.call(lambda r: r.store_url_in_use.remote())
    if in_use != store_url:
        raise RunnerError(
            f"the Runner of namespace {namespace!r} already uses store {in_use!r}, not {store_url!r}; "
            "connect with that store, or use another namespace"
        )
    if config is not None or max_workers is not None:
        running: RunnerConfig = calls.call(lambda r: r.config_in_use.remote())
        names = None if config is not None else ["max_workers"]
        differences = config_differences(running, base, names)
        if differences:
            raise ConfigMismatch(
                namespace, {name: f"running {mine!r}, asked {theirs!r}" for name, (mine, theirs) in differences.items()}
            )
    try:
        calls.call(lambda r: r.ready.remote())
    except StoreError:
        _remove_runner(calls, namespace)  # its store cannot be opened: leave nothing registered
        raise
    return Client(calls, namespace=namespace, store_url=store_url)


def _could_not_open_its_store(calls: RunnerCalls) -> bool:
    """True if the running Runner's store failed to open (it is of no use to anyone)."""
    try:
        calls.call(lambda r: r.ready.remote())
    except StoreError:
        return True
    return False


def _remove_runner(calls: RunnerCalls, namespace: str, wait: float = 30.0) -> None:
    """Kill the Runner (its Store actor and workers go with it) and wait until its name is free."""
    with contextlib.suppress(Exception):  # gone already
        ray.kill(calls.handle, no_restart=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            ray.get_actor(RUNNER_NAME, namespace=namespace)
        except ValueError:
            return
        time.sleep(0.05)
    raise RunnerUnavailable(
        f"the Runner of namespace {namespace!r} could not be removed within {wait:g}s; "
        f"remove it with ray.kill(ray.get_actor({RUNNER_NAME!r}, namespace={namespace!r})) or use another namespace"
    )


def absolute_store_url(url: str) -> str:
    """``url`` with a relative DuckDB path resolved against the current directory."""
    path = store_path(url)
    if path is None:
        return url
    return "duckdb:///" + str(Path(path).expanduser().resolve())


def _init_ray(address: str | None, namespace: str) -> None:
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"namespace": namespace, "logging_level": logging.WARNING, "log_to_driver": True}
    if address is not None:
        ray.init(address=address, **options)
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**options)
        return
    try:
        ray.init(address="auto", **options)
    except ConnectionError:
        ray.init(include_dashboard=False, **options)


def _runner_actor(namespace: str, store_url: str, config: RunnerConfig) -> Any:
    return (
        ray.remote(Runner)
        .options(
            name=RUNNER_NAME,
            namespace=namespace,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_concurrency=10_000,
            max_restarts=-1,  # restarted in place when its process dies; it recovers from the store...
            max_task_retries=-1,  # ...and the calls in flight are sent again (safe: see Client)
            resources=_HEAD_NODE,
        )
        .remote(store_url, config, namespace)
    )


class Client:
    """A connection to one namespace's Runner.

    Every call goes through :mod:`runner.ray_calls`: while the Runner or its Store
    actor restarts after a crash, a call waits and is sent again, and what a call
    raises is always a :class:`~runner.errors.RunnerError`. Each call is safe to
    send twice: submits carry their run id, signals a dedupe key, and cancel,
    pause and resume look at the run before they are sent again."""

    def __init__(self, runner: RunnerCalls, *, namespace: str, store_url: str) -> None:
        self._calls = runner
        self.namespace = namespace
        self.store_url = store_url
        self._store = StoreCalls(runner_store(runner), find=lambda: runner_store(runner))
        self.reader = ActorStoreReader(self._store)  # every read of the store goes through it
        self._runner_config: RunnerConfig | None = None  # read once, at the first submit to a queue

    def __repr__(self) -> str:
        return f"<runner.Client namespace={self.namespace!r} store={self.store_url!r}>"

    @property
    def store_path(self) -> Path | None:
        """The DuckDB file runs are kept in (None for ``memory://``)."""
        return store_path(self.store_url)

    def new_run(
        self,
        workflow: Workflow,
        input: Any = None,
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        parent_run_id: str | None = None,
        definition: bytes | None = None,
        policies: Mapping[str, policy_overrides.Override] | None = None,
        deadline: float | datetime.timedelta | datetime.datetime | None = None,
        checkpoint: CheckpointStrategy | str | None = None,
        metadata: dict[str, JSONValue] | None = None,
        ticket: QueueTicket | None = None,
    ) -> NewRun:
        """A run ready to store; ``definition``: the workflow already pickled (submit_many pickles once).
        ``policies``, ``deadline``, ``checkpoint`` and ``metadata``: see :meth:`submit`."""
        if not isinstance(workflow, Workflow):
            raise InvalidArgument(f"submit takes a runner.Workflow, got {type(workflow).__name__}")
        run_id = run_id if run_id is not None else f"{workflow.name}-{uuid.uuid4().hex[:16]}"
        check_run_id(run_id)
        deadline_at = deadlines.run_deadline_at(deadline)
        workflow, overridden = policy_overrides.apply(workflow, policies)
        if overridden:
            definition = None  # the run keeps the overridden definition: its workers and recoveries use it
        input = workflow.check_input(resolve_object_refs(input))  # a ref's value is stored, not the ref
        if definition is None:
            definition = pickle_definition(workflow)
        strategy = None if checkpoint is None else as_strategy(checkpoint)  # refused before anything is stored
        submitted = RunSubmitted(
            workflow=workflow.name,
            input=input,
            definition_hash=workflow.definition_hash(),
            parent_run_id=parent_run_id,
            deadline_at=deadline_at,
            policies=overridden or None,
            checkpoint=stored_name(strategy),
            trace_context=tracing.current_context(),  # the submit's span becomes its steps' parent
        )
        # an input that cannot be stored is refused here, before anything is written
        serialization.encode_event(submitted)
        return NewRun(
            run_id=run_id,
            workflow=workflow.name,
            definition=definition,
            definition_hash=workflow.definition_hash(),
            events=(submitted,),
            idempotency_key=idempotency_key,
            parent_run_id=parent_run_id,
            metadata=check_metadata(metadata),
            queue=None if ticket is None else ticket.queue,
            queue_key=None if ticket is None else ticket.key,
            priority=0 if ticket is None else ticket.priority,
        )

    def submit(
        self,
        workflow: Workflow,
        input: Any = None,
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        policies: Mapping[str, policy_overrides.Override] | None = None,
        deadline: float | datetime.timedelta | datetime.datetime | None = None,
        checkpoint: CheckpointStrategy | str | None = None,
        metadata: dict[str, JSONValue] | None = None,
        queue: str | None = None,
        queue_key: str | None = None,
        priority: int = 0,
    ) -> RunHandle:
        """Store a new run (durably, before returning) and queue it. Same id or key: the existing run,
        unchanged (``handle.created`` is False then, True when this call stored the run).

        ``policies``: step name, glob pattern or ``"default"`` -> a Policy (replaces the step's
        whole) or a dict of Policy fields (changes those only); the most specific match wins
        (:mod:`runner.policy_overrides`). ``deadline``: seconds (or a timedelta) from now, or a
        datetime: past it the run fails with RunDeadlineExceeded (:mod:`runner.deadlines`).
        ``checkpoint``: this run's checkpoint strategy instead of the workflow's (:mod:`runner.checkpoint`).
        ``metadata``: JSON values kept with the run, for ``list_runs(metadata=...)``, SQL and
        ``handle.metadata()``. ``queue``: the named queue the run waits in until the queue's
        limits let it start (README, "Queues and limits"); ``queue_key``: the value its per-key
        limit counts by (e.g. a tenant); ``priority``: higher starts first within the queue.
        Bad ones raise (InvalidArgument names the field; UnknownQueue, QueueFull or
        QueueConfigError when the queue refuses the run) before anything is stored."""
        ticket = ticket_for(queue, queue_key, priority)
        limits = self._queue_limits(ticket)
        new = self.new_run(
            workflow,
            input,
            run_id=run_id,
            idempotency_key=idempotency_key,
            policies=policies,
            deadline=deadline,
            checkpoint=checkpoint,
            metadata=metadata,
            ticket=ticket,
        )
        with by_value(workflow):  # the input may be of a class from the workflow's module
            [(record, created)] = self._create_runs([new], limits)
        return RunHandle(self, record.run_id, created=created)

    def submit_many(
        self,
        workflow: Workflow,
        inputs: list[Any],
        *,
        metadata: dict[str, JSONValue] | None = None,
        queue: str | None = None,
        queue_key: str | None = None,
        priority: int = 0,
    ) -> list[RunHandle]:
        """Many runs of one workflow in one store commit; ``metadata`` (one mapping) is kept with
        each; each waits in ``queue``, as with ``submit`` (all stored or, if they would take the
        queue over its max_pending, none)."""
        ticket = ticket_for(queue, queue_key, priority)
        limits = self._queue_limits(ticket)
        definition = pickle_definition(workflow)
        checked = check_metadata(metadata)  # once, before anything is stored
        news = [self.new_run(workflow, item, definition=definition, metadata=checked, ticket=ticket) for item in inputs]
        with by_value(workflow):
            results = self._create_runs(news, limits)
        return [RunHandle(self, record.run_id, created=created) for record, created in results]

    def _create_runs(self, news: list[NewRun], queues: Sequence[Queue] = ()) -> list[tuple[RunRecord, bool]]:
        """Store runs in the Store actor (durable on return), where the Runner learns of them:
        a submit waits neither for the Runner nor behind the workers' appends (submits have a
        lane of their own there). Sent again after a restart, a run is stored once (its id).
        Each run's flag says whether this call stored it (see :meth:`_stored_by_this_call`).
        ``queues``: those whose max_pending the Store actor checks before storing."""
        results: list[tuple[RunRecord, bool]] = self._store.call(lambda store: store.create_runs(news, queues))
        return [
            (record, created or self._stored_by_this_call(new, record))
            for new, (record, created) in zip(news, results, strict=True)
        ]

    def _stored_by_this_call(self, new: NewRun, record: RunRecord) -> bool:
        """True if the stored run ``record`` (found, not created, by the store) is ``new`` itself:
        the call was sent again after a Store actor restart and its first try had stored it. Its
        first event is this call's own RunSubmitted (the same submit time, to the microsecond,
        and definition); another submit's is not. One read, only for a run that was found."""
        first = self.reader.read_events(record.run_id, 0, 1)
        mine = new.events[0]
        if not first or not isinstance(first[0].event, RunSubmitted) or not isinstance(mine, RunSubmitted):
            return False
        stored = first[0].event
        return (stored.at, stored.definition_hash, stored.parent_run_id) == (
            mine.at,
            mine.definition_hash,
            mine.parent_run_id,
        )

    # ------------------------------------------------------------ schedules
    def schedule(self, workflow: Workflow, *, cron: str, input: Any = None, name: str | None = None) -> Schedule:
        """Start a run of ``workflow`` with ``input`` at every tick of ``cron`` (UTC; five fields,
        or six with seconds last, or an alias such as ``@hourly``), from its first tick after
        now. ``name`` (default: the workflow's) identifies the schedule: the same name again
        replaces it. Each tick's run id is ``<name>-<tick time>`` (e.g. ``nightly-20260101T030000Z``),
        so a tick starts one run however often the Runner restarts; ticks missed while no Runner
        was up start only the latest. InvalidCron (naming the bad field) or InvalidInput
        before anything is stored. See :mod:`runner.cron`."""
        if not isinstance(workflow, Workflow):
            raise InvalidArgument(f"schedule takes a runner.Workflow, got {type(workflow).__name__}")
        label = check_schedule_name(workflow.name if name is None else name)
        text = cron_schedules.check_cron(label, cron)
        checked = workflow.check_input(resolve_object_refs(input))
        serialization.json_value(checked)  # an input that cannot be stored is refused here
        schedule = Schedule(
            name=label,
            workflow=workflow.name,
            cron=text,
            definition=pickle_definition(workflow),
            definition_hash=workflow.definition_hash(),
            input=checked,
            created_at=time.time(),
        )
        with by_value(workflow):
            saved: Schedule = self._calls.call(lambda r: r.save_schedule.remote(schedule))
        return saved

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name (``last_tick``: the latest tick whose run was started)."""
        schedules: list[Schedule] = self._store.call(lambda store: store.list_schedules())
        return schedules

    def unschedule(self, name: str) -> None:
        """Remove a schedule: no tick starts after this returns (runs it started stay).
        ScheduleNotFound if there is none of that name."""
        check_schedule_name(name)
        self._calls.call(lambda r: r.delete_schedule.remote(name))

    def _queue_limits(self, ticket: QueueTicket | None) -> tuple[Queue, ...]:
        """The limits of ``ticket``'s queue when it has a max_pending to check (UnknownQueue
        if the Runner takes declared queues only and this one is not)."""
        if ticket is None:
            return ()
        if self._runner_config is None:
            self._runner_config = self._calls.call(lambda r: r.config_in_use.remote())
        config = self._runner_config
        declared = {q.name: q for q in config.queues}
        queue = limits_of(ticket.queue, declared, declared_only=config.declared_queues_only)
        return (queue,) if queue.max_pending is not None else ()

    def get(self, run_id: str) -> RunHandle:
        """A handle on an existing run; RunNotFound if there is none (its ``created`` is None: unknown)."""
        check_run_id(run_id)
        self.reader.get_run(run_id)
        return RunHandle(self, run_id)

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | RunStatus | tuple[str | RunStatus, ...] = (),
        since: float | None = None,
        limit: int = 100,
        metadata: dict[str, FilterValue] | None = None,
        queue: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first. ``metadata``: only runs whose submit metadata holds each key with an
        equal value (a string, number, bool or None; selected by the store, not after loading);
        ``queue``: those submitted to that named queue only."""
        run_filter = RunFilter(
            workflow=workflow, status=status, created_after=since, limit=limit, metadata=metadata or {}, queue=queue
        )
        return self.reader.list_runs(run_filter)

    def signal(self, run_id: str, name: str, payload: Any = None, *, key: str | None = None) -> SignalId:
        """Send a signal; it is stored before this returns and kept until a wait_for takes it.
        Returns its id in the run's inbox (an int). ``key``: the signal is stored once per run and
        key, across restarts: sent again with a key already used, nothing is stored and the first
        one's id is returned with ``.duplicate`` True (even after the run ended)."""
        check_run_id(run_id)
        check_signal_name(name)
        call_id = uuid.uuid4().hex  # this call's identity: sent again after a restart, it is stored once
        dedupe_key = dedupe_key_for(key, call_id)
        signal = self._calls.call(lambda r: r.send_signal.remote(run_id, name, payload, dedupe_key, call_id))
        return answer(signal, call_id)

    def approve(self, run_id: str, approval: str, *, by: str, comment: str = "") -> approvals.Decision:
        """Approve ``approval`` of a run; the decision is stored before this returns (see reject)."""
        return self._decide(run_id, approval, True, by, comment)

    def reject(self, run_id: str, approval: str, *, by: str, comment: str = "") -> approvals.Decision:
        """Reject ``approval`` of a run; its workflow's ``on_reject`` says what follows.

        A decision may come before the run reaches the approval (it is kept). The first
        decision stands: the same one again returns it, another raises ApprovalAlreadyDecided.
        UnknownApproval if the run's workflow has no such approval; RunClosed if the run
        ended undecided."""
        return self._decide(run_id, approval, False, by, comment)

    def _decide(self, run_id: str, approval: str, approved: bool, by: str, comment: str) -> approvals.Decision:
        check_run_id(run_id)
        approvals.check_decision_args(approval, by, comment)
        workflow: Workflow = serialization.loads(self.reader.get_run(run_id).definition)
        approvals.check_known(run_id, approval, workflow.approvals())
        asked = approvals.Decision(approval=approval, approved=approved, by=by, comment=comment, decided_at=time.time())
        name = approvals.signal_name(approval)
        stored = self._calls.call(lambda r: r.decide.remote(run_id, name, asked.to_payload()))
        return approvals.stored_decision(run_id, asked, stored)

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run (running steps are cancelled); IllegalTransition if it has ended."""
        check_run_id(run_id)
        return self._once(lambda r: r.cancel, run_id, lambda record: record.status.is_terminal)

    def pause(self, run_id: str) -> RunRecord:
        """Pause a running run: running steps finish, no new one starts, its worker is released."""
        check_run_id(run_id)
        return self._once(lambda r: r.pause, run_id, lambda record: record.status is RunStatus.PAUSED)

    def resume(self, run_id: str, *, reason: str = "") -> RunRecord:
        """Go on with a stopped run under the same run id. A paused run is queued again. A failed
        or cancelled run (after its cause is fixed) continues from where it ended: every
        recorded result is kept, steps that failed for good run again with a fresh retry
        budget, and its history records RunReopened with ``reason``. ResumeRefused for a
        running or completed run; DefinitionUnavailable if its definition cannot be loaded."""
        check_run_id(run_id)
        if not isinstance(reason, str):
            raise InvalidArgument(f"reason must be a string, got {type(reason).__name__}")
        return self._once(
            lambda r: r.resume,
            run_id,
            lambda record: record.status is not RunStatus.PAUSED and not record.status.is_terminal,
            reason,
        )

    def _once(self, method: Any, run_id: str, took_effect: Any, *args: Any) -> RunRecord:
        """A Runner call whose answer would differ if it ran twice (cancel, pause, resume): Ray does
        not send it again by itself; if its Runner restarted meanwhile, the run's record says
        whether it took effect (``took_effect(record)``) before it is sent again."""

        def settled() -> RunRecord | None:
            record = self.reader.get_run(run_id)
            return record if took_effect(record) else None

        record: RunRecord = self._calls.call(
            lambda r: method(r).options(max_task_retries=0).remote(run_id, *args), settled=settled
        )
        return record

    def delete(self, run_id: str) -> None:
        """Delete an ended run and its history; IllegalTransition while it has not ended."""
        record = self.get(run_id).record()
        if not record.status.is_terminal:
            raise IllegalTransition(run_id, record.status.value, "deleted")
        with contextlib.suppress(RunNotFound):  # sent again after a restart: the first try deleted it
            self._store.call(lambda store: store.delete(run_id))

    def replay(self, run_id: str, *, allow_irreversible: bool = False) -> RunHandle:
        """A new run with the same definition and input; its ``parent_run_id`` is ``run_id``."""
        parent, workflow, state = self._load(run_id)
        if not allow_irreversible:
            _refuse_irreversible(run_id, state, set(workflow.nodes))
        submitted = RunSubmitted(
            workflow=workflow.name,
            input=state.input,
            definition_hash=parent.definition_hash,
            parent_run_id=run_id,
            trace_context=tracing.current_context(),  # a new submit: the caller's span is its parent
        )
        return self._submit_new(parent, (submitted,))

    def fork(self, run_id: str, *, from_step: str, allow_irreversible: bool = False) -> RunHandle:
        """A new run that reuses ``run_id``'s results for everything upstream of ``from_step``
        (those steps do not run again) and runs ``from_step`` and the rest anew."""
        parent, workflow, state = self._load(run_id)
        if from_step not in workflow.nodes:
            raise InvalidArgument(
                f"workflow {workflow.name!r} has no step {from_step!r}; steps: {', '.join(workflow.nodes)}"
            )
        upstream = _ancestors(workflow, from_step)
        if not allow_irreversible:
            _refuse_irreversible(run_id, state, set(workflow.nodes) - upstream)
        events: list[Any] = [
            RunSubmitted(
                workflow=workflow.name,
                input=state.input,
                definition_hash=parent.definition_hash,
                parent_run_id=run_id,
                trace_context=tracing.current_context(),
            )
        ]
        results = state.results()
        for name in workflow.nodes:
            if name not in upstream or name not in results:
                continue
            if results[name] is SKIPPED:
                events.append(StepSkipped(node=name, reason=f"skipped in run {run_id}"))
            else:
                events.append(FactReused(node=name, value=results[name], source_run_id=run_id))
        return self._submit_new(parent, tuple(events))

    def _load(self, run_id: str) -> tuple[RunRecord, Workflow, WorkflowState]:
        handle = self.get(run_id)
        record = handle.record()
        workflow: Workflow = serialization.loads(record.definition)
        return record, workflow, WorkflowState.from_events(workflow, handle.history())

    def _submit_new(self, parent: RunRecord, events: tuple[Any, ...]) -> RunHandle:
        new = NewRun(
            run_id=f"{parent.workflow}-{uuid.uuid4().hex[:16]}",
            workflow=parent.workflow,
            definition=parent.definition,
            definition_hash=parent.definition_hash,
            events=events,
            parent_run_id=parent.run_id,
            metadata=parent.metadata,  # a replay or fork keeps the metadata its parent was submitted with
        )
        [(record, created)] = self._create_runs([new])
        return RunHandle(self, record.run_id, created=created)

    def results(self, handles: Sequence[RunHandle], timeout: float | None = None) -> list[Any]:
        """Every run's result, in order, once all have ended (one round trip, not one per run).
        The first failed run raises as ``RunHandle.result`` would; ResultTimeout after ``timeout``."""
        outcomes = self.ended_outcomes([h.run_id for h in handles], timeout)
        return [self._result_following(record, last, timeout) for record, last in outcomes]

    def _result_following(self, record: RunRecord, last: StoredEvent | None, timeout: float | None) -> Any:
        """An ended run's result; a run that continued as new gives its last successor's."""
        successor = successor_of(record.status, last.event if last is not None else None)
        if successor is not None:
            return RunHandle(self, successor).result(timeout)
        return self.reader.result_of(record, last)

    def ended_outcomes(self, run_ids: Sequence[str], timeout: float | None) -> list[Outcome]:
        """Each run's record and last event once all have ended; ResultTimeout after ``timeout``
        seconds. The Store actor answers as soon as the last of them ends (nothing is polled):
        one call, or one per ``WAIT_STEP`` seconds of waiting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = WAIT_STEP if remaining is None else min(remaining, WAIT_STEP)
            outcomes = self._wait_outcomes(run_ids, step)
            open_run = next((record for record, _ in outcomes if not record.status.is_terminal), None)
            if open_run is None:
                return outcomes
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(open_run.run_id, timeout or 0.0, open_run.status.value)

    def wait_records(self, run_ids: Sequence[str], timeout: float | None) -> list[RunRecord]:
        """The runs' records once all have ended, or after ``timeout`` seconds (no error then)."""
        return [record for record, _ in self._wait_outcomes(run_ids, timeout)]

    def _wait_outcomes(self, run_ids: Sequence[str], timeout: float | None) -> list[Outcome]:
        outcomes: list[Outcome] = self._store.call(lambda store: store.wait_outcomes(run_ids, timeout))
        return outcomes

    def result_of(self, record: RunRecord, last: StoredEvent | None) -> Any:
        """The result an ended run's record and last event stand for (or its error, raised)."""
        return self.reader.result_of(record, last)

    def stats(self) -> RunnerStats:
        stats: RunnerStats = self._calls.call(lambda r: r.stats.remote())
        return stats

    def recovery_report(self) -> RecoveryReport:
        report: RecoveryReport = self._calls.call(lambda r: r.report.remote())
        return report

    @property
    def runner(self) -> Any:
        """The Runner actor handle (advanced use and tests; its calls are not translated nor retried)."""
        return self._calls.handle

    @property
    def store(self) -> Any:
        """The Store actor's Ray handle (advanced use; ``StoreHandle(client.store)`` types its calls)."""
        return self._store.handle.actor

    def load_value(self, value: Any) -> Any:
        """``value`` with fact references loaded (top level and one level into a dict or list)."""
        return self.reader.load_value(value)

    _hook_follower: HookFollower | None = None  # made by the first add_hooks

    def add_hooks(self, hooks: Hooks) -> None:
        """Call ``hooks`` in this driver as runs of this store move (runs created from now on); a
        thread of this process follows them (runner/hook_follower.py). Added to those given before."""
        if not isinstance(hooks, Hooks):
            raise InvalidArgument(f"add_hooks takes a runner.Hooks, got {type(hooks).__name__}")
        follower = self._hook_follower
        if follower is None:
            self._hook_follower = HookFollower(self.reader, hooks).start()
        else:
            follower.add(hooks)

    def remove_hooks(self) -> None:
        """Stop calling the hooks given with ``add_hooks``."""
        follower = self._hook_follower
        if follower is not None:
            follower.stop()
            self._hook_follower = None

    def ui(
        self, port: int = 8365, *, host: str = "127.0.0.1", allow_actions: bool = False, token: str | None = None
    ) -> UiServer:
        """Serve the web view of this store in a thread of this process; ``.url`` says where,
        ``.stop()`` ends it. Needs ``pip install 'ray-runner[ui]'``. ``allow_actions`` adds the
        buttons (signal, approve, cancel, pause, resume, replay, fork); a ``host`` other than
        loopback needs a ``token``. ``port=0`` takes any free port."""
        try:
            from runner.ui import server
            from runner.ui.app import UiApp
        except ImportError as exc:
            raise InvalidArgument(f"the web view needs its extra: pip install 'ray-runner[ui]' ({exc})") from None
        app = UiApp(self.reader, client=self, allow_actions=allow_actions, token=token)
        return server.start(app, host=host, port=port)

    def serve_ui(
        self,
        route_prefix: str = "/runner",
        *,
        name: str = "runner-ui",
        host: str = "127.0.0.1",
        port: int = 8000,
        allow_actions: bool = False,
        token: str | None = None,
    ) -> ServedUi:
        """Deploy the web view of this namespace on the cluster as Ray Serve application ``name``,
        at ``route_prefix`` on Serve's HTTP proxy; returns once it answers (``.url`` says where,
        ``.undeploy()`` removes it). Deploying ``name`` again replaces it. ``host``/``port`` set
        Serve's proxy when this call starts Serve; a proxy beyond loopback needs a ``token``.
        Needs ``pip install 'ray-runner[serve]'`` here and on every node (runner.ui.serve_app)."""
        try:
            from runner.ui import serve_app
        except ImportError as exc:
            raise _no_serve_extra(exc) from None
        return serve_app.deploy(
            self,
            route_prefix=route_prefix,
            name=name,
            host=host,
            port=port,
            allow_actions=allow_actions,
            token=token,
        )

    def undeploy_ui(self, name: str = "runner-ui") -> bool:
        """Remove the web view deployed with ``serve_ui``; False if it was not deployed."""
        try:
            from runner.ui import serve_app
        except ImportError as exc:
            raise _no_serve_extra(exc) from None
        return serve_app.undeploy(name)


def _no_serve_extra(exc: ImportError) -> InvalidArgument:
    return InvalidArgument(f"the web view on Ray Serve needs its extra: pip install 'ray-runner[serve]' ({exc})")


class RunHandle:
    """One run: its status, its result, its history."""

    def __init__(self, client: Client, run_id: str, *, created: bool | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.created = created
        """True: the submit that returned this handle stored the run; False: it found it stored
        already (same run id or idempotency key); None: not known (``client.get``)."""

    def __repr__(self) -> str:
        return f"<RunHandle {self.run_id}>"

    def record(self) -> RunRecord:
        return self.client.reader.get_run(self.run_id)

    def status(self) -> RunStatus:
        return self.record().status

    def history(self) -> list[StoredEvent]:
        """Every event of the run, in order."""
        return self.client.reader.history(self.run_id)

    def steps(self) -> list[StepInfo]:
        """Every step's status, attempts and timings, folded from the history."""
        workflow: Workflow = serialization.loads(self.record().definition)
        return WorkflowState.from_events(workflow, self.history()).steps()

    def signal(self, name: str, payload: Any = None, *, key: str | None = None) -> SignalId:
        return self.client.signal(self.run_id, name, payload, key=key)

    def metadata(self) -> RunMetadata:
        """The run's metadata (given at submit, added by steps), status, created/started/finished
        times, and each step's status, attempts, times and metadata (see runner.run_metadata)."""
        record = self.record()
        workflow: Workflow = serialization.loads(record.definition)
        history = self.history()
        return run_metadata(record, history, WorkflowState.from_events(workflow, history).steps())

    def approve(self, approval: str, *, by: str, comment: str = "") -> approvals.Decision:
        return self.client.approve(self.run_id, approval, by=by, comment=comment)

    def reject(self, approval: str, *, by: str, comment: str = "") -> approvals.Decision:
        return self.client.reject(self.run_id, approval, by=by, comment=comment)

    def cancel(self) -> RunRecord:
        return self.client.cancel(self.run_id)

    def pause(self) -> RunRecord:
        return self.client.pause(self.run_id)

    def resume(self, *, reason: str = "") -> RunRecord:
        return self.client.resume(self.run_id, reason=reason)

    def replay(self, *, allow_irreversible: bool = False) -> RunHandle:
        return self.client.replay(self.run_id, allow_irreversible=allow_irreversible)

    def fork(self, *, from_step: str, allow_irreversible: bool = False) -> RunHandle:
        return self.client.fork(self.run_id, from_step=from_step, allow_irreversible=allow_irreversible)

    def wait(self, timeout: float | None = None) -> RunRecord:
        """Block until the run ends; ResultTimeout after ``timeout`` seconds (it goes on running)."""
        [(record, _)] = self.client.ended_outcomes([self.run_id], timeout)
        return record

    def result(self, timeout: float | None = None) -> Any:
        """The run's result, in one call whether the run has ended or not (the answer comes
        when it ends). A failed run raises the failing step's own exception when it can be
        rebuilt here (else WorkflowFailed); a cancelled run raises RunWasCancelled;
        ResultTimeout after ``timeout`` seconds (the run goes on). A run that continued as new
        gives the result of the last run of its chain."""
        record, last = self._last_of_chain(timeout)
        return self.client.reader.result_of(record, last)

    def _last_of_chain(self, timeout: float | None) -> tuple[RunRecord, StoredEvent | None]:
        """The record and last event of the last run this run continued as (itself if none), once ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        run_id = self.run_id
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            [(record, last)] = self.client.ended_outcomes([run_id], remaining)
            successor = successor_of(record.status, last.event if last is not None else None)
            if successor is None:
                return record, last
            run_id = successor


def _ancestors(workflow: Workflow, name: str) -> set[str]:
    """Every component upstream of ``name`` (not ``name`` itself)."""
    seen: set[str] = set()
    stack = list(workflow.nodes[name].after)
    while stack:
        up = stack.pop()
        if up not in seen:
            seen.add(up)
            stack.extend(workflow.nodes[up].after)
    return seen


def _refuse_irreversible(run_id: str, state: WorkflowState, would_rerun: set[str]) -> None:
    ran = state.ran()
    irreversible = [
        name
        for name, node in state.workflow.nodes.items()
        if node.policy.irreversible and name in would_rerun and name in ran
    ]
    if irreversible:
        raise ReplayRefused(run_id, irreversible)
