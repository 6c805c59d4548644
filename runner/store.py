"""The store contract: one ``typing.Protocol`` every adapter implements.

The store is the only mutable truth of the system. It keeps run records
(with their status and current lease), each run's gapless event log,
snapshots, content-addressed facts and each run's signal inbox. Every
adapter passes the one contract suite in :mod:`runner.testing.store_contract`.

Run statuses move only along :data:`TRANSITIONS`; a run that ended accepts
no write. Appends are fenced by the run's lease: a writer whose lease was
superseded gets :class:`~runner.errors.FencedError` and must stop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from runner import serialization
from runner.errors import AppendConflict, FencedError, IllegalTransition, InvalidArgument, LeaseHeld, RunClosed
from runner.events import (
    EVENT_TYPES,
    Event,
    RunCancelled,
    RunCompleted,
    RunContinuedAsNew,
    RunFailed,
    RunPaused,
    RunReopened,
    RunResumed,
    RunSubmitted,
    RunSuspended,
    StoredEvent,
)
from runner.metadata import FilterValue, Metadata, check_filter, check_metadata
from runner.vocabulary import Vocabulary


class RunStatus(Vocabulary):
    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"  # waiting for a signal or timer; holds no worker
    PAUSED = "paused"  # no new step starts; the worker is released
    CANCELLING = "cancelling"  # running steps are being cancelled
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CONTINUED = "continued"  # ended by starting its successor (continue-as-new); its result is the successor's

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.CONTINUED})

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.SUSPENDED,
            RunStatus.PAUSED,
            RunStatus.CANCELLING,
            RunStatus.COMPLETED,
            RunStatus.FAILED,
            RunStatus.CONTINUED,
        }
    ),
    RunStatus.SUSPENDED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLING, RunStatus.FAILED}),
    RunStatus.PAUSED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.CANCELLING: frozenset({RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.CONTINUED: frozenset(),
}

REOPENABLE = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})
"""Ended statuses from which ``Store.reopen`` moves a run back to running (a resume in place,
after the cause of the failure is fixed). Not a transition of :data:`TRANSITIONS`: an ended
run still refuses every ordinary write; a completed run is never reopened."""

RUN_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


@dataclass(frozen=True, kw_only=True)
class NewRun:
    """What ``create_run`` needs: the run's identity, its pickled definition and first events."""

    run_id: str
    workflow: str
    definition: bytes
    definition_hash: str
    events: tuple[Event, ...]
    idempotency_key: str | None = None
    parent_run_id: str | None = None
    metadata: Metadata = field(default_factory=dict)  # JSON values given at submit (runner.metadata)
    # its place in a named queue (runner.queues): the queue, the key its per-key limit counts
    # by, and its priority within the queue (higher starts first)
    queue: str | None = None
    queue_key: str | None = None
    priority: int = 0

    def __post_init__(self) -> None:
        check_run_id(self.run_id)
        object.__setattr__(self, "metadata", check_metadata(self.metadata))
        check_queue_fields(self.queue, self.queue_key, self.priority)
        if not isinstance(self.workflow, str) or not self.workflow:
            raise InvalidArgument(f"workflow must be a non-empty name, got {self.workflow!r}")
        if not isinstance(self.definition, bytes):
            raise InvalidArgument("definition must be the pickled workflow (bytes)")
        object.__setattr__(self, "events", tuple(self.events))
        check_events(self.events)
        if not isinstance(self.events[0], RunSubmitted):
            raise InvalidArgument("a new run's first event must be RunSubmitted")
        if self.idempotency_key is not None and (not isinstance(self.idempotency_key, str) or not self.idempotency_key):
            raise InvalidArgument(f"idempotency_key must be a non-empty string, got {self.idempotency_key!r}")

    def pending_record(self, now: float, last_seq: int) -> RunRecord:
        """The record a store keeps for this run when it creates it at ``now`` with ``last_seq``
        events: pending, never leased; every field the submit gave carried over."""
        return RunRecord(
            run_id=self.run_id,
            workflow=self.workflow,
            status=RunStatus.PENDING,
            definition=self.definition,
            definition_hash=self.definition_hash,
            created_at=now,
            updated_at=now,
            last_seq=last_seq,
            idempotency_key=self.idempotency_key,
            parent_run_id=self.parent_run_id,
            metadata=self.metadata,
            queue=self.queue,
            queue_key=self.queue_key,
            priority=self.priority,
        )


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """A run as the store keeps it (the log itself is streamed separately)."""

    run_id: str
    workflow: str
    status: RunStatus
    definition: bytes
    definition_hash: str
    created_at: float
    updated_at: float
    last_seq: int = 0
    lease: int = 0  # the current fencing token; 0: never leased
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    idempotency_key: str | None = None
    parent_run_id: str | None = None
    error: str | None = None
    metadata: Metadata = field(default_factory=dict)  # given at submit; steps' additions are in the log
    queue: str | None = None
    queue_key: str | None = None
    priority: int = 0
    # when ``take_over`` first moved it from pending to running (how every run starts; a queue's
    # rate limit counts these); ``transition`` leaves it as it is
    started_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class Lease:
    """Ownership of a run: ``token`` fences every write the owner makes."""

    run_id: str
    token: int
    owner: str
    expires_at: float


@dataclass(frozen=True, kw_only=True)
class LeaseState:
    """A run's lease as the store holds it now, without the rest of its record: what
    ``leases`` answers (a supervisor polls it often; it carries no pickled definition)."""

    run_id: str
    token: int  # the current fencing token; 0: never leased
    owner: str | None  # None: free (released, or never taken)
    expires_at: float | None  # unix time, on the store's clock

    def expired_for(self, now: float) -> float | None:
        """How long ago (seconds) a held lease expired at ``now``; None if free or still valid."""
        if self.owner is None or self.expires_at is None or self.expires_at > now:
            return None
        return now - self.expires_at


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """Minted by the store in the commit that stored events ``first_seq..last_seq``."""

    run_id: str
    first_seq: int
    last_seq: int


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    run_id: str
    cursor: int
    blob: bytes


@dataclass(frozen=True, kw_only=True)
class Signal:
    """A signal in a run's inbox; ``signal_id`` grows per run."""

    run_id: str
    signal_id: int
    name: str
    payload: object
    sent_at: float
    call_id: str | None = None  # the identity of the call that stored it (see Store.post_signal)


def signal_of_row(run_id: str, row: tuple[Any, ...]) -> Signal:
    """The signal of an adapter's row (signal_id, name, payload as tagged JSON, sent_at, call_id)."""
    signal_id, name, payload, sent_at, call_id = row
    return Signal(
        run_id=run_id,
        signal_id=signal_id,
        name=name,
        payload=serialization.from_json_value(payload),
        sent_at=sent_at,
        call_id=call_id,
    )


@dataclass(frozen=True, kw_only=True)
class AppendRequest:
    """One caller's batch in ``append_many``.

    ``after_seq`` (optional): the run's last seq as the writer believes it; the batch goes
    right after it or not at all (AppendConflict when the log holds other events there).
    ``request_id`` (optional, with ``after_seq``): the batch's identity, stored with its last
    event; sent again after it was committed (a retry whose reply was lost), the batch is
    answered with its original receipt and nothing is written twice."""

    run_id: str
    events: tuple[Event, ...]
    lease: int
    status: RunStatus | None = None
    after_seq: int | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", tuple(self.events))
        if self.status is not None:
            object.__setattr__(self, "status", as_status(self.status))
        if self.after_seq is not None:
            check_cursor(self.after_seq, "after_seq")
        if self.request_id is not None:
            if not isinstance(self.request_id, str) or not self.request_id:
                raise InvalidArgument(f"request_id must be a non-empty string, got {self.request_id!r}")
            if self.after_seq is None:
                raise InvalidArgument("request_id needs after_seq: a request is identified at the cursor it follows")


@dataclass(frozen=True, kw_only=True)
class RunFilter:
    """What ``list_runs`` selects; created_* are unix times (inclusive, exclusive)."""

    workflow: str | None = None
    status: RunStatus | str | tuple[RunStatus | str, ...] = ()
    created_after: float | None = None
    created_before: float | None = None
    limit: int = 100
    newest_first: bool = True
    metadata: dict[str, FilterValue] = field(default_factory=dict)  # each key equal (runner.metadata.matches)
    queue: str | None = None  # runs of this queue only
    started_after: float | None = None  # runs first started at or after this unix time only

    @property
    def statuses(self) -> tuple[RunStatus, ...]:
        """``status`` as a tuple of RunStatus (empty: any status)."""
        return self.status  # type: ignore[return-value]  # normalised in __post_init__

    def __post_init__(self) -> None:
        raw = self.status
        items: Iterable[object] = (raw,) if isinstance(raw, (str, RunStatus)) else raw
        statuses = tuple(as_status(s) for s in items)
        object.__setattr__(self, "status", statuses)
        if self.workflow is not None and not isinstance(self.workflow, str):
            raise InvalidArgument(f"workflow filter must be a name, got {self.workflow!r}")
        if self.queue is not None and not isinstance(self.queue, str):
            raise InvalidArgument(f"queue filter must be a queue name, got {self.queue!r}")
        for name in ("created_after", "created_before", "started_after"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise InvalidArgument(f"{name} must be a unix time in seconds, got {value!r}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise InvalidArgument(f"limit must be a whole number >= 1, got {self.limit!r}")
        object.__setattr__(self, "metadata", check_filter(self.metadata))


@runtime_checkable
class Store(Protocol):
    """The durable home of runs. Every method is safe to call from several threads."""

    # runs
    def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Store a run and its first events in one commit; durable on return.

        A run with the same ``run_id`` or ``idempotency_key`` is returned
        instead, unchanged, with ``False``.
        """
        ...

    def create_runs(self, news: Sequence[NewRun]) -> list[tuple[RunRecord, bool]]:
        """``create_run`` for many runs in one commit."""
        ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def exists(self, run_id: str) -> bool: ...

    def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]: ...

    def delete(self, run_id: str) -> None:
        """Remove a run, its events, snapshots and signals (facts are shared and stay)."""
        ...

    def transition(self, run_id: str, to: RunStatus, *, lease: int) -> RunRecord:
        """Move a run to ``to`` under its current ``lease`` (FencedError otherwise: every status
        change is made by the lease holder, so none can race a worker); IllegalTransition unless
        TRANSITIONS allows it."""
        ...

    def reopen(self, run_id: str, event: RunReopened, *, after_seq: int, request_id: str) -> RunRecord:
        """Reopen a failed or cancelled run (:data:`REOPENABLE`) in one commit: append ``event``
        right after ``after_seq`` (the run's last event), move the run to running, clear its
        error and free its lease under a new token, which fences any writer left.

        RunClosed for a completed run, IllegalTransition for one that has not ended,
        AppendConflict if the log holds events after ``after_seq``. Sent again after it was
        committed (same ``request_id``), it writes nothing and returns the record as it is."""
        ...

    # leases
    def acquire_lease(self, run_id: str, owner: str, ttl: float, *, force: bool = False) -> Lease:
        """A new fencing token, granted when the lease is free or expired, or with ``force``."""
        ...

    def take_over(self, run_ids: Sequence[str], owner: str, ttl: float) -> list[RunRecord | Exception]:
        """Hand runs to ``owner`` in one commit: each gets a new lease, forced (the supervisor
        gives the run away), and a pending run moves to running under it. Per run: its new
        record (``record.lease`` is the token), the record as it is if the run has ended
        (no lease), or its own error (RunNotFound, InvalidArgument)."""
        ...

    def renew_lease(self, run_id: str, token: int, ttl: float) -> Lease: ...

    def release_lease(self, run_id: str, token: int) -> None: ...

    def leases(self, run_ids: Sequence[str]) -> list[LeaseState]:
        """The current lease of each run in ``run_ids`` that exists, in order (unknown runs are
        left out). A light read for supervisors: no run record, no definition."""
        ...

    # the log
    def append(
        self,
        run_id: str,
        events: Sequence[Event],
        lease: int,
        *,
        status: RunStatus | None = None,
        after_seq: int | None = None,
        request_id: str | None = None,
    ) -> Receipt:
        """Append atomically after the last event; optionally move the run to ``status`` in the same commit.

        With ``after_seq`` (and ``request_id``), see :class:`AppendRequest`: a retry of a committed
        append is answered with its original receipt; see :func:`check_append_cursor`."""
        ...

    def append_many(self, requests: Sequence[AppendRequest]) -> list[Receipt | Exception]:
        """Each request's receipt, or its own error; all accepted batches in one commit."""
        ...

    def stream(self, run_id: str, after: int = 0) -> Iterator[StoredEvent]: ...

    # snapshots and facts
    def save_snapshot(self, run_id: str, cursor: int, blob: bytes) -> None: ...

    def load_snapshot(self, run_id: str) -> Snapshot | None: ...

    def save_fact(self, fact_hash: str, blob: bytes) -> None: ...

    def load_fact(self, fact_hash: str) -> bytes: ...

    # signals
    def post_signal(
        self, run_id: str, name: str, payload: object, *, dedupe_key: str | None = None, call_id: str | None = None
    ) -> Signal:
        """Put a signal in the run's inbox; durable on return.

        ``dedupe_key``: the signal's identity, unique per run. A signal already stored with it
        is returned as it was stored (even after the run ended) and nothing is stored again,
        so a retried call never delivers a signal twice. ``call_id``: the identity of the call,
        stored with the signal and returned in ``Signal.call_id``: a caller whose key was used
        by another call (a duplicate) sees another call id than its own; a retry of its own
        call, its own."""
        ...

    def signals(self, run_id: str, after: int = 0) -> list[Signal]: ...

    # schedules (runner.cron): workflows started on a cron schedule
    def save_schedule(self, schedule: Schedule) -> Schedule:
        """Store ``schedule``, replacing the one of the same name; durable on return."""
        ...

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    def delete_schedule(self, name: str) -> None:
        """Remove a schedule (its runs stay); ScheduleNotFound if there is none of that name."""
        ...

    def mark_tick(self, name: str, tick: float) -> Schedule:
        """Record that the run of ``tick`` was started (``last_tick`` only moves forward);
        ScheduleNotFound if the schedule is gone."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A workflow started on a cron schedule (see :mod:`runner.cron`): ``definition`` and
    ``input`` as a submit would store them; ``last_tick``: the latest tick (epoch seconds)
    whose run was started (None: none yet; ticks before ``created_at`` are never started)."""

    name: str
    workflow: str
    cron: str
    definition: bytes
    definition_hash: str
    input: Any = None
    created_at: float = 0.0
    last_tick: float | None = None

    def __post_init__(self) -> None:
        check_schedule_name(self.name)
        if not isinstance(self.cron, str) or not self.cron.strip():
            raise InvalidArgument(f"cron must be a non-empty string, got {self.cron!r}")
        if not isinstance(self.definition, bytes):
            raise InvalidArgument("definition must be the pickled workflow (bytes)")


SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


def check_schedule_name(name: object) -> str:
    if not isinstance(name, str) or not SCHEDULE_NAME.match(name):
        raise InvalidArgument(f"schedule name must be 1-100 letters, digits or '_.-', got {name!r}")
    return name


# ------------------------------------------------------------- shared checks
def as_status(value: object) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        names = ", ".join(s.value for s in RunStatus)
        raise InvalidArgument(f"unknown run status {value!r}; use one of {names}") from None


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise InvalidArgument(f"run id must be 1-128 letters, digits or '_.:-', got {run_id!r}")
    return run_id


def check_events(events: object) -> tuple[Event, ...]:
    if isinstance(events, (str, bytes)) or not isinstance(events, (list, tuple)):
        raise InvalidArgument(f"events must be a list of events, got {type(events).__name__}")
    if not events:
        raise InvalidArgument("events must not be empty")
    for event in events:
        if type(event) not in EVENT_TYPES.values():
            raise InvalidArgument(f"{event!r} is not a runner event (see runner.events)")
    return tuple(events)


def check_ttl(ttl: object) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise InvalidArgument(f"lease ttl must be a positive number of seconds, got {ttl!r}")
    return float(ttl)


def check_lease_request(owner: object, ttl: object) -> None:
    if not isinstance(owner, str) or not owner:
        raise InvalidArgument(f"lease owner must be a non-empty string, got {owner!r}")
    check_ttl(ttl)


def check_cursor(after: object, name: str = "after") -> int:
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise InvalidArgument(f"{name} must be a whole number >= 0, got {after!r}")
    return after


def check_fact(fact_hash: object, blob: object = b"") -> None:
    if not isinstance(fact_hash, str) or len(fact_hash) != 64:
        raise InvalidArgument(f"fact hash must be a sha256 hex digest, got {fact_hash!r}")
    if not isinstance(blob, bytes):
        raise InvalidArgument("fact value must be bytes (serialization.dumps of the value)")


def check_queue_fields(queue: object, queue_key: object, priority: object) -> None:
    """A new run's queue fields (runner.queues checks them with field names at submit)."""
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise InvalidArgument(f"queue must be a queue name or None, got {queue!r}")
    if queue_key is not None and (queue is None or not isinstance(queue_key, str) or not queue_key):
        raise InvalidArgument(f"queue_key must be a non-empty string, with a queue, got {queue_key!r}")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidArgument(f"priority must be a whole number, got {priority!r}")


def started(record: RunRecord, status: RunStatus, now: float) -> float | None:
    """``record.started_at`` once it moves to ``status`` at ``now``: set at its first start."""
    if record.started_at is None and record.status is RunStatus.PENDING and status is RunStatus.RUNNING:
        return now
    return record.started_at


def check_signal_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"signal name must be a non-empty string, got {name!r}")
    return name


def check_dedupe_key(key: object, name: str = "dedupe_key") -> str | None:
    if key is not None and (not isinstance(key, str) or not key):
        raise InvalidArgument(f"{name} must be a non-empty string or None, got {key!r}")
    return key


def check_append_cursor(
    request: AppendRequest, record: RunRecord, recorded: Callable[[int], str | None]
) -> Receipt | None:
    """Where ``request`` stands against the log whose record is ``record``.

    None: it names no cursor, or follows the log's last event: write it (after
    :func:`check_write`). A receipt: it was committed before (its request id is
    stored with the event at ``after_seq + len(events)``): a retry, so write
    nothing and answer this, its original receipt. Otherwise the log holds other
    events after ``after_seq``: FencedError or RunClosed if the write would be
    refused anyway, else AppendConflict.

    ``recorded(seq)``: the request id stored with the run's event at ``seq`` (None
    if none); called only when ``after_seq`` is not the log's last seq, so the
    common append costs the store no read."""
    after = request.after_seq
    if after is None or after == record.last_seq:
        return None
    last = after + len(request.events)
    if request.request_id is not None and after < last <= record.last_seq and recorded(last) == request.request_id:
        return Receipt(run_id=record.run_id, first_seq=after + 1, last_seq=last)
    check_write(record, request.lease, request.status)
    raise AppendConflict(record.run_id, after, record.last_seq)


def check_transition(record: RunRecord, to: RunStatus) -> None:
    if record.status in TERMINAL:
        raise RunClosed(record.run_id, record.status.value)
    if to not in TRANSITIONS[record.status]:
        raise IllegalTransition(record.run_id, record.status.value, to.value)


def check_reopen(
    record: RunRecord,
    event: RunReopened,
    after_seq: int,
    request_id: str,
    recorded: Callable[[int], str | None],
    now: float,
) -> RunRecord | None:
    """The record after ``Store.reopen`` of ``record`` at ``now`` (to write), or None when this reopen was
    committed before (a retry: write nothing). ``recorded(seq)``: the request id stored with
    the run's event at ``seq``; read only when the log has events after ``after_seq``."""
    if not isinstance(event, RunReopened):
        raise InvalidArgument(f"reopen takes a RunReopened event, got {event!r}")
    check_cursor(after_seq, "after_seq")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidArgument(f"request_id must be a non-empty string, got {request_id!r}")
    if after_seq < record.last_seq and recorded(after_seq + 1) == request_id:
        return None
    if record.status not in REOPENABLE:
        if record.status in TERMINAL:
            raise RunClosed(record.run_id, record.status.value)
        raise IllegalTransition(record.run_id, record.status.value, RunStatus.RUNNING.value)
    if event.from_status != record.status.value:
        raise InvalidArgument(
            f"run {record.run_id!r} is {record.status.value}, but its RunReopened says {event.from_status!r}"
        )
    if after_seq != record.last_seq:
        raise AppendConflict(record.run_id, after_seq, record.last_seq)
    return replace(
        record,
        status=RunStatus.RUNNING,
        last_seq=record.last_seq + 1,
        lease=record.lease + 1,
        lease_owner=None,
        lease_expires_at=None,
        error=None,
        updated_at=now,
    )


def check_write(record: RunRecord, lease: int, to: RunStatus | None, events: Sequence[Event] = ()) -> None:
    """The checks every fenced write makes: run open, lease current, status path legal.

    A write that moves the run to ``to`` is checked along the whole path its ``events``
    take (each run-level event's status in turn, then ``to``), not just from the status
    the run has to ``to``: one append may resume a suspended run and complete it
    (suspended -> running -> completed)."""
    if isinstance(lease, bool) or not isinstance(lease, int):
        raise InvalidArgument(f"lease must be the integer token from acquire_lease, got {lease!r}")
    if record.status in TERMINAL:
        raise RunClosed(record.run_id, record.status.value)
    if lease != record.lease or lease == 0:  # 0 means never leased: no writer holds it
        raise FencedError(record.run_id, lease, record.lease)
    if to is not None:
        check_path(record, [*status_path(events), to])


def check_path(record: RunRecord, path: Sequence[RunStatus]) -> None:
    """IllegalTransition unless the run can move from its status through each of ``path`` in
    turn (a status equal to the one before it is no move)."""
    current = record.status
    for status in path:
        if status is not current:
            if status not in TRANSITIONS[current]:
                raise IllegalTransition(record.run_id, current.value, status.value)
            current = status


def grant_lease(record: RunRecord, owner: str, ttl: float, now: float, force: bool) -> Lease:
    """The lease ``acquire_lease`` grants on ``record`` at ``now`` (LeaseHeld if it may not)."""
    check_lease_request(owner, ttl)
    if record.status in TERMINAL:
        raise RunClosed(record.run_id, record.status.value)
    held = record.lease_owner is not None and record.lease_expires_at is not None and record.lease_expires_at > now
    if held and not force:
        raise LeaseHeld(record.run_id, record.lease_owner or "", record.lease_expires_at or 0.0)
    return Lease(run_id=record.run_id, token=record.lease + 1, owner=owner, expires_at=now + ttl)


def taken_over(record: RunRecord, owner: str, ttl: float, now: float) -> RunRecord:
    """``record`` after ``take_over`` gave it to ``owner`` at ``now`` (unchanged if the run has ended)."""
    if record.status in TERMINAL:
        return record
    lease = grant_lease(record, owner, ttl, now, True)
    status = RunStatus.RUNNING if record.status is RunStatus.PENDING else record.status
    return replace(
        record,
        lease=lease.token,
        lease_owner=owner,
        lease_expires_at=lease.expires_at,
        status=status,
        updated_at=now if status is not record.status else record.updated_at,
        started_at=started(record, status, now),
    )


def lease_state(record: RunRecord) -> LeaseState:
    """What ``leases`` answers for ``record``."""
    return LeaseState(
        run_id=record.run_id, token=record.lease, owner=record.lease_owner, expires_at=record.lease_expires_at
    )


def lease_of(record: RunRecord) -> Lease:
    """The lease ``record`` holds now."""
    return Lease(
        run_id=record.run_id,
        token=record.lease,
        owner=record.lease_owner or "",
        expires_at=record.lease_expires_at or 0.0,
    )


def error_summary(events: Sequence[Event]) -> str | None:
    """The record's error text, from the last RunFailed in a batch."""
    failed = [e for e in events if isinstance(e, RunFailed)]
    return str(failed[-1].error) if failed else None


_STATUS_OF_EVENT: dict[type, RunStatus] = {
    RunCompleted: RunStatus.COMPLETED,
    RunContinuedAsNew: RunStatus.CONTINUED,
    RunFailed: RunStatus.FAILED,
    RunCancelled: RunStatus.CANCELLED,
    RunSuspended: RunStatus.SUSPENDED,
    RunPaused: RunStatus.PAUSED,
    RunResumed: RunStatus.RUNNING,
    RunReopened: RunStatus.RUNNING,
}


def status_after(events: Sequence[Event]) -> RunStatus | None:
    """The run status the last run-level event in ``events`` moves to (None: no change)."""
    for event in reversed(events):
        status = _STATUS_OF_EVENT.get(type(event))
        if status is not None:
            return status
    return None


def status_path(events: Sequence[Event]) -> list[RunStatus]:
    """The statuses the run-level events in ``events`` move the run to, in order."""
    return [status for status in (_STATUS_OF_EVENT.get(type(event)) for event in events) if status is not None]


def append_through_many(
    append_many: Callable[[Sequence[AppendRequest]], list[Receipt | Exception]],
    run_id: str,
    events: Sequence[Event],
    lease: int,
    *,
    status: RunStatus | None = None,
    after_seq: int | None = None,
    request_id: str | None = None,
) -> Receipt:
    """``Store.append`` for an adapter whose ``append_many`` does the work: one request, its
    receipt returned or its error raised."""
    check_run_id(run_id)
    request = AppendRequest(
        run_id=run_id,
        events=check_events(events),
        lease=lease,
        status=status,
        after_seq=after_seq,
        request_id=request_id,
    )
    result = append_many([request])[0]
    if isinstance(result, Exception):
        raise result
    return result
