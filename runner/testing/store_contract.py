"""The store contract suite: every adapter passes it, a third party's too.

Subclass :class:`StoreContract` in a test module and give it one factory::

    from runner.testing.store_contract import StoreContract

    class TestMyStore(StoreContract):
        persistent = True  # the store keeps its data across close/reopen

        def make_store(self, tmp_path, clock):
            return MyStore(tmp_path / "store.db", clock=clock)

``clock`` is a :class:`FakeClock` (a callable returning unix time) that the
store must use for every timestamp and every lease decision, so lease expiry
is tested by advancing it, never by sleeping. With ``persistent = True``
``make_store`` is called a second time with the same ``tmp_path`` after the
first store was closed, and must open the same data.

The suite tests conflicts, atomicity and concurrency, not just round trips:
every rejected call is shown to write nothing (see :func:`writes_nothing`).
"""

from __future__ import annotations

import dataclasses
import decimal
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from runner import serialization
from runner.errors import (
    AppendConflict,
    FactNotFound,
    FencedError,
    IllegalTransition,
    InvalidArgument,
    LeaseHeld,
    RunClosed,
    RunNotFound,
    StoreError,
)
from runner.events import (
    ErrorInfo,
    Event,
    FactProduced,
    FactRef,
    RunCancelled,
    RunCompleted,
    RunContinuedAsNew,
    RunFailed,
    RunPaused,
    RunReopened,
    RunResumed,
    RunSubmitted,
    RunSuspended,
    SignalReceived,
    StepFailed,
    StepStarted,
    StoredEvent,
)
from runner.store import (
    REOPENABLE,
    TERMINAL,
    TRANSITIONS,
    AppendRequest,
    Lease,
    LeaseState,
    NewRun,
    Receipt,
    RunFilter,
    RunRecord,
    RunStatus,
    Signal,
    Snapshot,
    Store,
)
from runner.testing.schedule_contract import ScheduleContract

__all__ = ["FakeClock", "StoreContract", "new_run", "writes_nothing"]

T0 = 1_700_000_000.0
TTL = 30.0


class FakeClock:
    """A settable unix-time clock: ``clock()`` is the time, ``advance`` moves it."""

    def __init__(self, start: float = T0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclasses.dataclass(frozen=True)
class Point:
    """A user value that JSON cannot carry (it must round-trip through pickle)."""

    x: int
    y: int


# ------------------------------------------------------------------ builders
def submitted(workflow: str = "wf", input: Any = None, at: float = T0) -> RunSubmitted:
    return RunSubmitted(workflow=workflow, input=input, definition_hash="h-" + workflow, at=at)


def new_run(
    run_id: str,
    *,
    workflow: str = "wf",
    key: str | None = None,
    extra: tuple[Event, ...] = (),
    parent: str | None = None,
    input: Any = None,
    metadata: dict[str, Any] | None = None,
) -> NewRun:
    return NewRun(
        run_id=run_id,
        workflow=workflow,
        definition=b"definition of " + workflow.encode(),
        definition_hash="h-" + workflow,
        events=(submitted(workflow, input), *extra),
        idempotency_key=key,
        parent_run_id=parent,
        metadata=metadata or {},
    )


def fact(node: str, value: Any = 1, at: float = T0) -> FactProduced:
    return FactProduced(node=node, value=value, at=at)


class Unpicklable:
    """A value no serializer can store: it holds a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


def _state(store: Store, run_id: str) -> tuple[Any, ...]:
    """Everything the store keeps about one run."""
    return (
        store.get_run(run_id),
        [(s.seq, s.event) for s in store.stream(run_id)],
        store.load_snapshot(run_id),
        [(s.signal_id, s.name, s.payload, s.sent_at) for s in store.signals(run_id)],
    )


def _world(store: Store) -> dict[str, tuple[Any, ...]]:
    return {r.run_id: _state(store, r.run_id) for r in store.list_runs(RunFilter(limit=1_000_000))}


@contextmanager
def writes_nothing(store: Store) -> Iterator[None]:
    """Assert that the block changes no run, event, snapshot or signal in ``store``.

    Nest ``pytest.raises`` inside it: ``with writes_nothing(store), pytest.raises(E):``.
    """
    before = _world(store)
    yield
    assert _world(store) == before, "a rejected call changed the store"


def _events(store: Store, run_id: str, after: int = 0) -> list[Event]:
    return [s.event for s in store.stream(run_id, after=after)]


def _facts(store: Store, run_id: str, after: int = 1) -> list[FactProduced]:
    """The run's events after ``after``, each asserted to be a FactProduced."""
    events = _events(store, run_id, after)
    assert all(isinstance(e, FactProduced) for e in events), events
    return [e for e in events if isinstance(e, FactProduced)]


# every per-run call, as (name, call(store, run_id, token))
PER_RUN_CALLS: dict[str, Callable[[Store, str, int], Any]] = {
    "get_run": lambda s, r, t: s.get_run(r),
    "delete": lambda s, r, t: s.delete(r),
    "transition": lambda s, r, t: s.transition(r, RunStatus.RUNNING, lease=t),
    "acquire_lease": lambda s, r, t: s.acquire_lease(r, "owner-z", TTL),
    "renew_lease": lambda s, r, t: s.renew_lease(r, t, TTL),
    "release_lease": lambda s, r, t: s.release_lease(r, t),
    "append": lambda s, r, t: s.append(r, [fact("n")], t),
    "stream": lambda s, r, t: list(s.stream(r)),
    "save_snapshot": lambda s, r, t: s.save_snapshot(r, 1, b"snap"),
    "load_snapshot": lambda s, r, t: s.load_snapshot(r),
    "post_signal": lambda s, r, t: s.post_signal(r, "go", 1),
    "signals": lambda s, r, t: s.signals(r),
    "reopen": lambda s, r, t: s.reopen(r, RunReopened(from_status="failed", at=T0), after_seq=1, request_id="q"),
}

# the calls that need no run, for the closed-store test
GLOBAL_CALLS: dict[str, Callable[[Store, str, int], Any]] = {
    "create_run": lambda s, r, t: s.create_run(new_run("brand-new")),
    "create_runs": lambda s, r, t: s.create_runs([new_run("brand-new")]),
    "exists": lambda s, r, t: s.exists(r),
    "list_runs": lambda s, r, t: s.list_runs(),
    "leases": lambda s, r, t: s.leases([r]),
    "append_many": lambda s, r, t: s.append_many([AppendRequest(run_id=r, events=(fact("n"),), lease=t)]),
    "save_fact": lambda s, r, t: s.save_fact("a" * 64, b"x"),
    "load_fact": lambda s, r, t: s.load_fact("a" * 64),
}

# how to reach each status from pending with legal transitions
PATH: dict[RunStatus, tuple[RunStatus, ...]] = {
    RunStatus.PENDING: (),
    RunStatus.RUNNING: (RunStatus.RUNNING,),
    RunStatus.SUSPENDED: (RunStatus.RUNNING, RunStatus.SUSPENDED),
    RunStatus.PAUSED: (RunStatus.RUNNING, RunStatus.PAUSED),
    RunStatus.CANCELLING: (RunStatus.RUNNING, RunStatus.CANCELLING),
    RunStatus.COMPLETED: (RunStatus.RUNNING, RunStatus.COMPLETED),
    RunStatus.FAILED: (RunStatus.FAILED,),
    RunStatus.CANCELLED: (RunStatus.CANCELLED,),
    RunStatus.CONTINUED: (RunStatus.RUNNING, RunStatus.CONTINUED),
}
LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets, key=lambda s: s.value)]
ILLEGAL = [(a, b) for a in RunStatus if a not in TERMINAL for b in RunStatus if b not in TRANSITIONS[a]]
FROM_TERMINAL = [(a, b) for a in RunStatus if a in TERMINAL for b in RunStatus]
NOT_REOPENABLE = [status for status in RunStatus if status not in REOPENABLE]


def _move_id(pair: tuple[RunStatus, RunStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def _call_id(name: str) -> str:
    return name


class StoreContract(ScheduleContract):
    """The contract every :class:`runner.store.Store` adapter passes.

    Subclasses implement :meth:`make_store`; set ``persistent = True`` when a
    second ``make_store`` on the same ``tmp_path`` reopens the same data.
    """

    persistent: ClassVar[bool] = False

    def make_store(self, tmp_path: Path, clock: Callable[[], float]) -> Store:
        raise NotImplementedError("a StoreContract subclass must implement make_store(tmp_path, clock)")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
        store = self.make_store(tmp_path, clock)
        try:
            yield store
        finally:
            store.close()

    # -------------------------------------------------------------- helpers
    def run_with_lease(self, store: Store, run_id: str = "r1", owner: str = "w1", **kw: Any) -> Lease:
        store.create_run(new_run(run_id, **kw))
        return store.acquire_lease(run_id, owner, TTL)

    def run_in(self, store: Store, status: RunStatus, run_id: str = "r1") -> str:
        """A new run moved to ``status`` along :data:`PATH` (under a lease, released after
        unless the run has ended)."""
        store.create_run(new_run(run_id))
        self.move(store, run_id, *PATH[status])
        assert store.get_run(run_id).status is status
        return run_id

    def move(self, store: Store, run_id: str, *statuses: RunStatus) -> None:
        """Move a run through ``statuses`` as a supervisor does: take its lease (force), make
        each transition under it, then release it unless the run has ended."""
        if not statuses:
            return
        lease = store.acquire_lease(run_id, "mover", TTL, force=True)
        for status in statuses:
            store.transition(run_id, status, lease=lease.token)
        if not store.get_run(run_id).status.is_terminal:
            store.release_lease(run_id, lease.token)

    # ============================================================ the protocol
    def test_store_satisfies_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)

    # ============================================================= create_run
    def test_create_run_stores_a_pending_record_and_its_events(self, store: Store, clock: FakeClock) -> None:
        extra = (fact("a", {"k": [1, 2]}), StepStarted(node="b", attempt=1, lease=0, at=T0))
        new = new_run("r1", workflow="orders", key="order-7", parent="p0", extra=extra, input={"x": 1})
        record, created = store.create_run(new)
        assert created is True
        assert record == RunRecord(
            run_id="r1",
            workflow="orders",
            status=RunStatus.PENDING,
            definition=b"definition of orders",
            definition_hash="h-orders",
            created_at=clock(),
            updated_at=clock(),
            last_seq=3,
            lease=0,
            lease_owner=None,
            lease_expires_at=None,
            idempotency_key="order-7",
            parent_run_id="p0",
            error=None,
        )
        assert store.get_run("r1") == record
        assert store.exists("r1") is True
        assert [(s.run_id, s.seq, s.event) for s in store.stream("r1")] == [
            ("r1", i + 1, e) for i, e in enumerate(new.events)
        ]

    def test_create_run_with_the_same_run_id_returns_the_existing_run(self, store: Store, clock: FakeClock) -> None:
        first, _ = store.create_run(new_run("r1", workflow="one"))
        self.move(store, "r1", RunStatus.RUNNING)
        current = store.get_run("r1")
        clock.advance(5)
        with writes_nothing(store):
            again, created = store.create_run(new_run("r1", workflow="two", extra=(fact("x"),), key="k2"))
        assert created is False
        assert again == current
        assert again.workflow == "one" and again.created_at == first.created_at
        # the other run's key was not registered: a run using it is new
        _, created_by_key = store.create_run(new_run("r2", key="k2"))
        assert created_by_key is True

    def test_create_run_with_the_same_idempotency_key_returns_the_existing_run(self, store: Store) -> None:
        first, created = store.create_run(new_run("r1", key="once"))
        assert created is True
        with writes_nothing(store):
            again, created = store.create_run(new_run("r2", key="once", workflow="other"))
        assert created is False
        assert again == first
        assert store.exists("r2") is False

    def test_create_runs_stores_many_runs_in_one_call(self, store: Store, clock: FakeClock) -> None:
        store.create_run(new_run("old", key="k-old"))
        news = [
            new_run("b1", workflow="bulk", input=1),
            new_run("b2", workflow="bulk", input=2, extra=(fact("a"),)),
            new_run("old"),  # an existing run id
            new_run("b3", key="k-old"),  # an existing key
            new_run("b4", key="k4"),
            new_run("b5", key="k4"),  # the same key twice in one call
        ]
        results = store.create_runs(news)
        assert [(r.run_id, c) for r, c in results] == [
            ("b1", True),
            ("b2", True),
            ("old", False),
            ("old", False),
            ("b4", True),
            ("b4", False),
        ]
        for record, _ in results:
            assert store.get_run(record.run_id) == record
        assert [r.last_seq for r, _ in results[:2]] == [1, 2]
        assert _events(store, "b2") == list(news[1].events)
        assert store.exists("b3") is False and store.exists("b5") is False
        assert store.create_runs([]) == []

    def test_create_run_rejects_bad_arguments_and_writes_nothing(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        with writes_nothing(store):
            with pytest.raises(InvalidArgument):
                store.create_run("r2")  # type: ignore[arg-type]
            with pytest.raises(InvalidArgument):
                store.create_runs([new_run("r2"), {"run_id": "r3"}])  # type: ignore[list-item]
        assert store.exists("r2") is False

    def test_an_unencodable_first_event_stores_no_run(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        with writes_nothing(store):
            with pytest.raises(InvalidArgument):
                store.create_run(new_run("bad", input=Unpicklable()))
            with pytest.raises(InvalidArgument):  # one bad run fails the whole bulk call
                store.create_runs([new_run("ok1"), new_run("bad", extra=(fact("a", Unpicklable()),)), new_run("ok2")])
        assert not any(store.exists(r) for r in ("bad", "ok1", "ok2"))

    # =================================================== lookups, not found
    def test_exists_and_invalid_run_ids(self, store: Store) -> None:
        assert store.exists("nobody") is False
        store.create_run(new_run("r1"))
        assert store.exists("r1") is True
        for bad in ("", "has space", "slash/", "x" * 129, 7):
            with pytest.raises(InvalidArgument):
                store.get_run(bad)  # type: ignore[arg-type]
            with pytest.raises(InvalidArgument):
                store.exists(bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("call", sorted(PER_RUN_CALLS), ids=_call_id)
    def test_every_per_run_call_raises_run_not_found(self, store: Store, call: str) -> None:
        store.create_run(new_run("r1"))
        with writes_nothing(store), pytest.raises(RunNotFound) as info:
            PER_RUN_CALLS[call](store, "ghost", 1)
        assert info.value.run_id == "ghost"
        assert isinstance(info.value, StoreError) and isinstance(info.value, KeyError)
        assert store.exists("ghost") is False

    def test_append_many_reports_run_not_found_per_request(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        results = store.append_many(
            [
                AppendRequest(run_id="ghost", events=(fact("a"),), lease=1),
                AppendRequest(run_id="r1", events=(fact("b"),), lease=lease.token),
            ]
        )
        assert isinstance(results[0], RunNotFound)
        assert results[1] == Receipt(run_id="r1", first_seq=2, last_seq=2)
        assert store.exists("ghost") is False

    # ================================================================ append
    def test_append_gives_gapless_ordered_cursors(self, store: Store, clock: FakeClock) -> None:
        lease = self.run_with_lease(store)
        batches: list[list[Event]] = [
            [fact("a", 1)],
            [fact("b", "two"), fact("c", [3]), StepStarted(node="d", attempt=1, lease=lease.token, at=T0)],
            [fact("e", Point(1, 2)), fact("f", None)],
        ]
        receipts = []
        for batch in batches:
            clock.advance(1)
            receipts.append(store.append("r1", batch, lease.token))
        assert receipts == [
            Receipt(run_id="r1", first_seq=2, last_seq=2),
            Receipt(run_id="r1", first_seq=3, last_seq=5),
            Receipt(run_id="r1", first_seq=6, last_seq=7),
        ]
        record = store.get_run("r1")
        assert record.last_seq == 7
        assert record.updated_at == clock()
        stored = list(store.stream("r1"))
        assert [s.seq for s in stored] == list(range(1, 8))
        assert [s.event for s in stored[1:]] == [e for batch in batches for e in batch]
        assert all(s.run_id == "r1" for s in stored)

    def test_events_round_trip_with_every_kind_of_value(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        error = ErrorInfo(type="ValueError", message="boom", traceback="tb", non_retryable=True, pickled=b"\x00\x01")
        batch: list[Event] = [
            fact("scalar", 3),
            fact("float", 2.5),
            fact("text", "héllo ✓"),
            fact("tuple", (1, "a")),
            fact("int-keys", {1: "a", 2: {3}}),
            fact("bytes", b"\x00raw"),
            fact("decimal", decimal.Decimal("1.10")),
            fact("dataclass", Point(3, 4)),
            fact("ref", FactRef(hash="c" * 64, size=10, length=3)),
            StepFailed(node="s", attempt=2, error=error, retry_at=T0 + 5, item=4, at=T0),
            SignalReceived(signal_id=1, name="go", payload={"ok": True}, at=T0),
            RunSuspended(reason="waiting", at=T0),
        ]
        store.append("r1", batch, lease.token)
        assert _events(store, "r1", after=1) == batch
        as_tuple = _events(store, "r1", after=4)[0]
        assert isinstance(as_tuple, FactProduced) and type(as_tuple.value) is tuple

    def test_a_batch_with_one_unencodable_event_writes_nothing(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        store.append("r1", [fact("a")], lease.token)
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.append("r1", [fact("ok"), fact("bad", Unpicklable()), fact("ok2")], lease.token)
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.append("r1", [fact("ok"), fact("bad", Unpicklable())], lease.token, status=RunStatus.RUNNING)
        assert store.get_run("r1").last_seq == 2
        assert store.append("r1", [fact("b")], lease.token) == Receipt(run_id="r1", first_seq=3, last_seq=3)

    @pytest.mark.parametrize(
        "events",
        [[], (), ["not an event"], [fact("ok"), object()], [fact("ok"), {"node": "x"}], fact("alone"), "text", None],
        ids=["empty-list", "empty-tuple", "string-item", "object-item", "dict-item", "bare-event", "str", "none"],
    )
    def test_an_invalid_batch_raises_invalid_argument_and_writes_nothing(self, store: Store, events: Any) -> None:
        lease = self.run_with_lease(store)
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.append("r1", events, lease.token)

    def test_append_with_a_non_integer_lease_is_invalid(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        for bad in ("1", 1.0, None, True):
            with writes_nothing(store), pytest.raises(InvalidArgument):
                store.append("r1", [fact("a")], bad)  # type: ignore[arg-type]
        assert lease.token == 1

    def test_append_with_lease_zero_before_any_acquire_is_fenced(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        assert store.get_run("r1").lease == 0
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [fact("a")], 0)
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [fact("a")], 1)

    def test_append_with_a_stale_lease_is_fenced(self, store: Store) -> None:
        old = self.run_with_lease(store, owner="zombie")
        store.append("r1", [fact("a")], old.token)
        new = store.acquire_lease("r1", "supervisor", TTL, force=True)
        assert new.token > old.token
        with writes_nothing(store), pytest.raises(FencedError) as info:
            store.append("r1", [fact("late")], old.token)
        assert (info.value.run_id, info.value.lease, info.value.current) == ("r1", old.token, new.token)
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [fact("future")], new.token + 1)
        with writes_nothing(store), pytest.raises(FencedError):
            store.transition("r1", RunStatus.RUNNING, lease=old.token)
        assert store.append("r1", [fact("b")], new.token) == Receipt(run_id="r1", first_seq=3, last_seq=3)

    # ================================================================ leases
    def test_acquire_lease_grants_monotonic_tokens(self, store: Store, clock: FakeClock) -> None:
        store.create_run(new_run("r1"))
        first = store.acquire_lease("r1", "w1", TTL)
        assert first == Lease(run_id="r1", token=1, owner="w1", expires_at=clock() + TTL)
        record = store.get_run("r1")
        assert (record.lease, record.lease_owner, record.lease_expires_at) == (1, "w1", clock() + TTL)
        store.release_lease("r1", first.token)
        second = store.acquire_lease("r1", "w2", TTL)
        third = store.acquire_lease("r1", "w3", TTL, force=True)
        clock.advance(TTL + 1)
        fourth = store.acquire_lease("r1", "w4", TTL)
        assert [first.token, second.token, third.token, fourth.token] == [1, 2, 3, 4]
        assert store.get_run("r1").lease == 4
        # tokens are per run
        store.create_run(new_run("r2"))
        assert store.acquire_lease("r2", "w1", TTL).token == 1

    def test_a_held_lease_is_refused_until_it_expires(self, store: Store, clock: FakeClock) -> None:
        held = self.run_with_lease(store, owner="w1")
        for other in ("w2", "w1"):
            with writes_nothing(store), pytest.raises(LeaseHeld) as info:
                store.acquire_lease("r1", other, TTL)
            assert (info.value.run_id, info.value.owner, info.value.expires_at) == ("r1", "w1", held.expires_at)
        clock.advance(TTL - 1)
        with writes_nothing(store), pytest.raises(LeaseHeld):
            store.acquire_lease("r1", "w2", TTL)
        clock.advance(2)  # now past expires_at
        taken = store.acquire_lease("r1", "w2", TTL)
        assert taken == Lease(run_id="r1", token=held.token + 1, owner="w2", expires_at=clock() + TTL)
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [fact("zombie")], held.token)

    def test_force_takes_a_held_lease_at_once(self, store: Store, clock: FakeClock) -> None:
        held = self.run_with_lease(store, owner="w1")
        taken = store.acquire_lease("r1", "supervisor", 5, force=True)
        assert taken == Lease(run_id="r1", token=held.token + 1, owner="supervisor", expires_at=clock() + 5)
        record = store.get_run("r1")
        assert (record.lease, record.lease_owner, record.lease_expires_at) == (taken.token, "supervisor", clock() + 5)
        with writes_nothing(store), pytest.raises(FencedError):
            store.renew_lease("r1", held.token, TTL)
        with writes_nothing(store), pytest.raises(FencedError):
            store.release_lease("r1", held.token)

    @pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan"), "10", None, True])
    def test_acquire_lease_rejects_a_bad_ttl(self, store: Store, ttl: Any) -> None:
        store.create_run(new_run("r1"))
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.acquire_lease("r1", "w1", ttl)

    def test_acquire_lease_rejects_a_bad_owner(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        for owner in ("", None, 3):
            with writes_nothing(store), pytest.raises(InvalidArgument):
                store.acquire_lease("r1", owner, TTL)  # type: ignore[arg-type]

    def test_renew_lease_extends_it(self, store: Store, clock: FakeClock) -> None:
        lease = self.run_with_lease(store, owner="w1")
        clock.advance(TTL - 1)
        renewed = store.renew_lease("r1", lease.token, 60)
        assert renewed == Lease(run_id="r1", token=lease.token, owner="w1", expires_at=clock() + 60)
        record = store.get_run("r1")
        assert (record.lease, record.lease_owner, record.lease_expires_at) == (lease.token, "w1", clock() + 60)
        clock.advance(59)  # past the first expiry, before the renewed one
        with writes_nothing(store), pytest.raises(LeaseHeld):
            store.acquire_lease("r1", "w2", TTL)
        store.append("r1", [fact("a")], lease.token)

    def test_renew_or_release_with_a_stale_token_is_fenced(self, store: Store, clock: FakeClock) -> None:
        old = self.run_with_lease(store, owner="w1")
        clock.advance(TTL + 1)
        new = store.acquire_lease("r1", "w2", TTL)
        for call in (lambda: store.renew_lease("r1", old.token, TTL), lambda: store.release_lease("r1", old.token)):
            with writes_nothing(store), pytest.raises(FencedError) as info:
                call()
            assert (info.value.lease, info.value.current) == (old.token, new.token)
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.renew_lease("r1", new.token, 0)

    def test_release_lease_frees_the_run_for_another_owner(self, store: Store) -> None:
        lease = self.run_with_lease(store, owner="w1")
        store.release_lease("r1", lease.token)
        record = store.get_run("r1")
        assert record.lease_owner is None
        assert record.lease == lease.token  # the fencing token is kept: tokens never go back
        successor = store.acquire_lease("r1", "w2", TTL)
        assert successor.token == lease.token + 1
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [fact("a")], lease.token)

    def test_take_over_hands_runs_to_an_owner_in_one_call(self, store: Store, clock: FakeClock) -> None:
        store.create_run(new_run("fresh"))
        held = self.run_with_lease(store, owner="w1")  # r1: running, leased by w1
        before_done = store.get_run(self.run_in(store, RunStatus.COMPLETED, "done"))

        results = store.take_over(["fresh", "r1", "done", "missing", ""], "w2", TTL)

        fresh, r1, ended, missing, bad = results
        assert isinstance(fresh, RunRecord) and isinstance(r1, RunRecord)
        assert (fresh.status, fresh.lease, fresh.lease_owner, fresh.lease_expires_at) == (
            RunStatus.RUNNING,
            1,
            "w2",
            clock() + TTL,
        )
        assert (r1.status, r1.lease, r1.lease_owner) == (RunStatus.RUNNING, held.token + 1, "w2")
        assert ended == before_done  # an ended run is returned as it is, without a lease
        assert isinstance(missing, RunNotFound) and isinstance(bad, InvalidArgument)
        for record in (fresh, r1):
            assert store.get_run(record.run_id) == record
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [fact("zombie")], held.token)
        assert store.append("r1", [fact("a")], r1.lease) == Receipt(run_id="r1", first_seq=2, last_seq=2)

    def test_take_over_rejects_a_bad_owner_or_ttl_and_writes_nothing(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        for owner, ttl in (("", TTL), ("w1", 0)):
            with writes_nothing(store), pytest.raises(InvalidArgument):
                store.take_over(["r1"], owner, ttl)

    def test_leases_reads_each_runs_lease_without_its_record(self, store: Store, clock: FakeClock) -> None:
        store.create_run(new_run("fresh"))
        held = self.run_with_lease(store, "r1", owner="w1")
        released = self.run_with_lease(store, "r2", owner="w2")
        store.release_lease("r2", released.token)
        self.run_in(store, RunStatus.COMPLETED, "done")
        with writes_nothing(store):
            leases = store.leases(["r1", "missing", "fresh", "r2", "done", "r1"])
        assert leases == [
            LeaseState(run_id="r1", token=held.token, owner="w1", expires_at=clock() + TTL),
            LeaseState(run_id="fresh", token=0, owner=None, expires_at=None),
            LeaseState(run_id="r2", token=released.token, owner=None, expires_at=None),
            LeaseState(run_id="done", token=1, owner="mover", expires_at=clock() + TTL),
            LeaseState(run_id="r1", token=held.token, owner="w1", expires_at=clock() + TTL),
        ]
        assert store.leases([]) == []
        with pytest.raises(InvalidArgument):
            store.leases(["not a run id!"])

    def test_leases_follow_renewals_takeovers_and_expiry(self, store: Store, clock: FakeClock) -> None:
        held = self.run_with_lease(store, owner="w1")
        [lease] = store.leases(["r1"])
        assert lease.expired_for(clock()) is None
        clock.advance(TTL / 2)
        store.renew_lease("r1", held.token, TTL)
        assert store.leases(["r1"]) == [LeaseState(run_id="r1", token=held.token, owner="w1", expires_at=clock() + TTL)]
        clock.advance(TTL + 2)  # the owner stopped renewing
        [lease] = store.leases(["r1"])
        assert lease.owner == "w1" and lease.expired_for(clock()) == pytest.approx(2.0)
        [taken] = store.take_over(["r1"], "w2", TTL)
        assert isinstance(taken, RunRecord)
        assert store.leases(["r1"]) == [
            LeaseState(run_id="r1", token=taken.lease, owner="w2", expires_at=clock() + TTL)
        ]

    # ================================================================ stream
    def test_stream_after_a_cursor_returns_exactly_the_later_events(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        batch = [fact(f"n{i}", i) for i in range(6)]
        store.append("r1", batch[:2], lease.token)
        store.append("r1", batch[2:], lease.token)
        everything = [submitted(), *batch]
        for after in range(0, 8):
            stored = list(store.stream("r1", after=after))
            assert [s.seq for s in stored] == list(range(after + 1, 8))
            assert [s.event for s in stored] == everything[after:]
            assert all(isinstance(s, StoredEvent) and s.run_id == "r1" for s in stored)
        assert list(store.stream("r1", after=100)) == []

    @pytest.mark.parametrize("after", [-1, 1.5, "0", None, True])
    def test_stream_rejects_a_bad_cursor(self, store: Store, after: Any) -> None:
        store.create_run(new_run("r1"))
        with pytest.raises(InvalidArgument):
            list(store.stream("r1", after=after))

    def test_stream_is_per_run(self, store: Store) -> None:
        a = self.run_with_lease(store, "a")
        b = self.run_with_lease(store, "b")
        store.append("a", [fact("a1")], a.token)
        store.append("b", [fact("b1"), fact("b2")], b.token)
        store.append("a", [fact("a2")], a.token)
        assert [(s.seq, s.event) for s in store.stream("a", after=1)] == [(2, fact("a1")), (3, fact("a2"))]
        assert [(s.seq, s.event) for s in store.stream("b", after=1)] == [(2, fact("b1")), (3, fact("b2"))]

    # ======================================================= status moves
    def test_every_status_is_reachable_by_the_paths_used_here(self) -> None:
        assert set(PATH) == set(RunStatus)
        for target, path in PATH.items():
            current = RunStatus.PENDING
            for step in path:
                assert step in TRANSITIONS[current]
                current = step
            assert current is target

    @pytest.mark.parametrize("move", LEGAL, ids=_move_id)
    def test_every_legal_transition_succeeds(
        self, store: Store, clock: FakeClock, move: tuple[RunStatus, RunStatus]
    ) -> None:
        source, target = move
        self.run_in(store, source)
        lease = store.acquire_lease("r1", "w1", TTL)
        before = store.get_run("r1")
        clock.advance(3)
        record = store.transition("r1", target, lease=lease.token)
        assert record.status is target
        assert record.updated_at == clock()
        assert record == store.get_run("r1")
        assert dataclasses.replace(record, status=before.status, updated_at=before.updated_at) == before
        assert _events(store, "r1") == [submitted()]  # a transition appends no event

    @pytest.mark.parametrize("move", ILLEGAL, ids=_move_id)
    def test_every_illegal_transition_is_refused(self, store: Store, move: tuple[RunStatus, RunStatus]) -> None:
        source, target = move
        self.run_in(store, source)
        lease = store.acquire_lease("r1", "w1", TTL)
        with writes_nothing(store), pytest.raises(IllegalTransition) as info:
            store.transition("r1", target, lease=lease.token)
        assert (info.value.run_id, info.value.from_status, info.value.to_status) == ("r1", source.value, target.value)

    @pytest.mark.parametrize("move", FROM_TERMINAL, ids=_move_id)
    def test_a_terminal_run_refuses_every_transition(self, store: Store, move: tuple[RunStatus, RunStatus]) -> None:
        source, target = move
        self.run_in(store, source)
        with writes_nothing(store), pytest.raises(RunClosed) as info:
            store.transition("r1", target, lease=store.get_run("r1").lease)
        assert (info.value.run_id, info.value.status) == ("r1", source.value)

    def test_transition_accepts_status_names_and_rejects_unknown_ones(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        assert store.transition("r1", "running", lease=lease.token).status is RunStatus.RUNNING  # type: ignore[arg-type]
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.transition("r1", "sleeping", lease=lease.token)  # type: ignore[arg-type]

    def test_transition_with_the_current_lease(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        assert store.transition("r1", RunStatus.RUNNING, lease=lease.token).status is RunStatus.RUNNING

    def test_transition_needs_the_current_lease(self, store: Store, clock: FakeClock) -> None:
        """No status change without the lease: a supervisor takes it (force) first, which fences
        the worker that held it, so a status change never races the worker's own appends."""
        store.create_run(new_run("r1"))
        with writes_nothing(store), pytest.raises(TypeError):
            store.transition("r1", RunStatus.RUNNING)  # type: ignore[call-arg]
        with writes_nothing(store), pytest.raises(FencedError):
            store.transition("r1", RunStatus.RUNNING, lease=0)  # never leased
        worker = store.acquire_lease("r1", "w1", TTL)
        store.transition("r1", RunStatus.RUNNING, lease=worker.token)
        supervisor = store.acquire_lease("r1", "supervisor", TTL, force=True)
        with writes_nothing(store), pytest.raises(FencedError) as info:
            store.transition("r1", RunStatus.CANCELLING, lease=worker.token)
        assert (info.value.lease, info.value.current) == (worker.token, supervisor.token)
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [RunCompleted(result=1, at=T0)], worker.token, status=RunStatus.COMPLETED)
        record = store.transition("r1", RunStatus.CANCELLING, lease=supervisor.token)
        assert record.status is RunStatus.CANCELLING
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.transition("r1", RunStatus.CANCELLED, lease="1")  # type: ignore[arg-type]

    def test_append_moves_the_status_in_the_same_commit(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        receipt = store.append("r1", [fact("a")], lease.token, status=RunStatus.RUNNING)
        assert store.get_run("r1").status is RunStatus.RUNNING
        store.append("r1", [RunSuspended(reason="timer", at=T0)], lease.token, status=RunStatus.SUSPENDED)
        store.append("r1", [RunResumed(at=T0)], lease.token, status="running")  # type: ignore[arg-type]
        store.append("r1", [fact("b")], lease.token, status=RunStatus.RUNNING)  # the same status is no move
        record = store.get_run("r1")
        assert (record.status, record.last_seq, receipt.first_seq) == (RunStatus.RUNNING, 5, 2)

    def test_append_with_an_illegal_status_writes_no_events(self, store: Store) -> None:
        lease = self.run_with_lease(store)  # pending
        with writes_nothing(store), pytest.raises(IllegalTransition) as info:
            store.append("r1", [RunCompleted(result=1, at=T0)], lease.token, status=RunStatus.COMPLETED)
        assert (info.value.from_status, info.value.to_status) == ("pending", "completed")
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.append("r1", [fact("a")], lease.token, status="sleeping")  # type: ignore[arg-type]

    def test_an_append_is_checked_along_every_status_its_events_pass(self, store: Store) -> None:
        """A suspended run resumed and completed in one append passes suspended -> running ->
        completed: legal, though suspended -> completed alone is not."""
        self.run_in(store, RunStatus.SUSPENDED)
        lease = store.acquire_lease("r1", "w1", TTL)
        events: list[Event] = [
            RunResumed(at=T0),
            SignalReceived(signal_id=1, name="go", payload=7, at=T0),
            fact("wait", 7),
        ]
        receipt = store.append("r1", [*events, RunCompleted(result=7, at=T0)], lease.token, status=RunStatus.COMPLETED)
        assert receipt == Receipt(run_id="r1", first_seq=2, last_seq=5)
        record = store.get_run("r1")
        assert (record.status, record.last_seq) == (RunStatus.COMPLETED, 5)
        assert _events(store, "r1", after=1)[-1] == RunCompleted(result=7, at=T0)

    def test_append_many_checks_each_request_along_its_path(self, store: Store) -> None:
        self.run_in(store, RunStatus.SUSPENDED, "a")
        self.run_in(store, RunStatus.PAUSED, "b")
        a = store.acquire_lease("a", "w1", TTL)
        b = store.acquire_lease("b", "w1", TTL)
        results = store.append_many(
            [
                AppendRequest(
                    run_id="a",
                    events=(RunResumed(at=T0), RunFailed(error=ErrorInfo(type="E", message="m"), at=T0)),
                    lease=a.token,
                    status=RunStatus.FAILED,
                ),
                AppendRequest(
                    run_id="b",
                    events=(RunResumed(at=T0), fact("x"), RunPaused(at=T0)),
                    lease=b.token,
                    status=RunStatus.PAUSED,
                ),
            ]
        )
        assert results == [Receipt(run_id="a", first_seq=2, last_seq=3), Receipt(run_id="b", first_seq=2, last_seq=4)]
        assert (store.get_run("a").status, store.get_run("b").status) == (RunStatus.FAILED, RunStatus.PAUSED)

    @pytest.mark.parametrize(
        ("source", "events", "to", "illegal"),
        [
            # running -> completed is legal, but the cancel before it is not (running -> cancelled)
            (
                RunStatus.RUNNING,
                (RunCancelled(reason="x", at=T0), RunCompleted(result=1, at=T0)),
                RunStatus.COMPLETED,
                ("running", "cancelled"),
            ),
            # the path ends where it began, but passes completed on the way
            (
                RunStatus.SUSPENDED,
                (RunResumed(at=T0), RunCompleted(result=1, at=T0), RunSuspended(reason="t", at=T0)),
                RunStatus.SUSPENDED,
                ("completed", "suspended"),
            ),
            # every event is a legal move, but the status asked for does not follow the last
            (RunStatus.SUSPENDED, (RunResumed(at=T0), RunPaused(at=T0)), RunStatus.SUSPENDED, ("paused", "suspended")),
            # a suspended run must be resumed before it completes
            (RunStatus.SUSPENDED, (RunCompleted(result=1, at=T0),), RunStatus.COMPLETED, ("suspended", "completed")),
        ],
        ids=["cancel-before-complete", "through-a-terminal-status", "status-after-the-path", "no-resume"],
    )
    def test_an_append_whose_path_has_an_illegal_move_writes_nothing(
        self, store: Store, source: RunStatus, events: tuple[Event, ...], to: RunStatus, illegal: tuple[str, str]
    ) -> None:
        self.run_in(store, source)
        lease = store.acquire_lease("r1", "w1", TTL)
        with writes_nothing(store), pytest.raises(IllegalTransition) as info:
            store.append("r1", list(events), lease.token, status=to)
        assert (info.value.run_id, info.value.from_status, info.value.to_status) == ("r1", *illegal)
        with writes_nothing(store):
            results = store.append_many([AppendRequest(run_id="r1", events=events, lease=lease.token, status=to)])
        assert len(results) == 1 and isinstance(results[0], IllegalTransition)

    def test_a_terminal_run_refuses_every_write(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        store.transition("r1", RunStatus.RUNNING, lease=lease.token)
        store.save_snapshot("r1", 1, b"snap")
        store.post_signal("r1", "go", 1)
        receipt = store.append("r1", [RunCompleted(result={"ok": 1}, at=T0)], lease.token, status=RunStatus.COMPLETED)
        assert receipt == Receipt(run_id="r1", first_seq=2, last_seq=2)
        assert store.get_run("r1").status is RunStatus.COMPLETED
        refused: list[Callable[[], Any]] = [
            lambda: store.append("r1", [fact("late")], lease.token),
            lambda: store.append("r1", [fact("late")], lease.token, status=RunStatus.RUNNING),
            lambda: store.transition("r1", RunStatus.RUNNING, lease=lease.token),
            lambda: store.transition("r1", RunStatus.FAILED, lease=lease.token),
            lambda: store.acquire_lease("r1", "w2", TTL),
            lambda: store.acquire_lease("r1", "w2", TTL, force=True),
            lambda: store.renew_lease("r1", lease.token, TTL),
            lambda: store.post_signal("r1", "late", 2),
        ]
        for call in refused:
            with writes_nothing(store), pytest.raises(RunClosed) as info:
                call()
            assert (info.value.run_id, info.value.status) == ("r1", "completed")
        results = store.append_many([AppendRequest(run_id="r1", events=(fact("late"),), lease=lease.token)])
        assert len(results) == 1 and isinstance(results[0], RunClosed)
        # a closed run is still readable
        assert _events(store, "r1")[-1] == RunCompleted(result={"ok": 1}, at=T0)
        assert [s.name for s in store.signals("r1")] == ["go"]
        assert store.load_snapshot("r1") == Snapshot(run_id="r1", cursor=1, blob=b"snap")

    # ======================================================= reopening an ended run
    @pytest.mark.parametrize("status", sorted(REOPENABLE, key=str), ids=str)
    def test_reopen_moves_a_failed_or_cancelled_run_back_to_running(
        self, store: Store, clock: FakeClock, status: RunStatus
    ) -> None:
        """Resume in place: RunReopened appended, status running, error cleared and the lease
        freed under a new token in one commit; the old writer is fenced, a new one takes it."""
        lease = self.run_with_lease(store)
        store.transition("r1", RunStatus.RUNNING, lease=lease.token)
        ended: Event = (
            RunFailed(error=ErrorInfo(type="E", message="m"), at=T0)
            if status is RunStatus.FAILED
            else RunCancelled(reason="user", at=T0)
        )
        if status is RunStatus.CANCELLED:
            store.transition("r1", RunStatus.CANCELLING, lease=lease.token)
        store.append("r1", [ended], lease.token, status=status)
        before = store.get_run("r1")
        clock.advance(5)
        event = RunReopened(from_status=status.value, reason="fixed", at=T0)
        record = store.reopen("r1", event, after_seq=before.last_seq, request_id="q1")
        assert record == store.get_run("r1")
        assert (record.status, record.last_seq, record.error) == (RunStatus.RUNNING, before.last_seq + 1, None)
        assert (record.lease, record.lease_owner, record.lease_expires_at) == (before.lease + 1, None, None)
        assert record.updated_at == clock()
        assert _events(store, "r1", after=before.last_seq) == [event]
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [fact("late")], lease.token)
        worker = store.acquire_lease("r1", "w2", TTL)  # free: no force needed
        assert worker.token == record.lease + 1
        receipt = store.append(
            "r1", [fact("a"), RunCompleted(result=1, at=T0)], worker.token, status=RunStatus.COMPLETED
        )
        assert receipt.last_seq == record.last_seq + 2
        assert store.get_run("r1").status is RunStatus.COMPLETED

    @pytest.mark.parametrize("status", NOT_REOPENABLE, ids=str)
    def test_reopen_refuses_a_completed_run_or_one_that_has_not_ended(self, store: Store, status: RunStatus) -> None:
        self.run_in(store, status)
        last = store.get_run("r1").last_seq
        event = RunReopened(from_status=status.value, at=T0)
        expected: type[Exception] = RunClosed if status in TERMINAL else IllegalTransition
        with writes_nothing(store), pytest.raises(expected) as info:
            store.reopen("r1", event, after_seq=last, request_id="q1")
        if isinstance(info.value, IllegalTransition):
            assert (info.value.from_status, info.value.to_status) == (status.value, "running")

    def test_a_retried_reopen_writes_nothing_and_another_one_is_refused(self, store: Store) -> None:
        self.run_in(store, RunStatus.FAILED)
        event = RunReopened(from_status="failed", at=T0)
        first = store.reopen("r1", event, after_seq=1, request_id="q1")
        with writes_nothing(store):
            assert store.reopen("r1", event, after_seq=1, request_id="q1") == first
        with writes_nothing(store), pytest.raises(IllegalTransition):
            store.reopen("r1", event, after_seq=1, request_id="q2")
        assert _events(store, "r1") == [submitted(), event]

    def test_reopen_checks_its_arguments_and_the_cursor(self, store: Store) -> None:
        self.run_in(store, RunStatus.CANCELLED)
        cancelled = RunReopened(from_status="cancelled", at=T0)
        refused: list[tuple[type[Exception], Callable[[], Any]]] = [
            (InvalidArgument, lambda: store.reopen("r1", RunResumed(at=T0), after_seq=1, request_id="q")),  # type: ignore[arg-type]
            (
                InvalidArgument,
                lambda: store.reopen("r1", RunReopened(from_status="failed", at=T0), after_seq=1, request_id="q"),
            ),
            (InvalidArgument, lambda: store.reopen("r1", cancelled, after_seq=1, request_id="")),
            (InvalidArgument, lambda: store.reopen("r1", cancelled, after_seq=-1, request_id="q")),
            (AppendConflict, lambda: store.reopen("r1", cancelled, after_seq=0, request_id="q")),
        ]
        for error, call in refused:
            with writes_nothing(store), pytest.raises(error):
                call()
        assert store.reopen("r1", cancelled, after_seq=1, request_id="q").status is RunStatus.RUNNING

    def test_a_continued_run_is_closed_and_its_successor_is_created_once(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        store.append("r1", [fact("a")], lease.token, status=RunStatus.RUNNING)
        successor = new_run("r1:c1", parent="r1", input={"n": 2})
        assert store.create_run(successor)[1] is True
        assert store.create_run(successor)[1] is False  # created again on a retry: the same run
        moved = RunContinuedAsNew(node="a", successor_run_id="r1:c1", input={"n": 2}, at=T0)
        store.append("r1", [moved], lease.token, status=RunStatus.CONTINUED)
        record = store.get_run("r1")
        assert record.status is RunStatus.CONTINUED and record.status.is_terminal
        assert _events(store, "r1")[-1] == moved
        with writes_nothing(store), pytest.raises(RunClosed):
            store.append("r1", [fact("late")], lease.token)
        assert store.get_run("r1:c1").parent_run_id == "r1"
        assert store.get_run("r1:c1").status is RunStatus.PENDING

    def test_a_run_failed_event_sets_the_record_error(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        store.append("r1", [fact("a")], lease.token, status=RunStatus.RUNNING)
        assert store.get_run("r1").error is None
        error = ErrorInfo(type="ValueError", message="bad input")
        step_error = ErrorInfo(type="KeyError", message="'x'")
        store.append(
            "r1",
            [StepFailed(node="s", attempt=1, error=step_error, at=T0), RunFailed(error=error, node="s", at=T0)],
            lease.token,
            status=RunStatus.FAILED,
        )
        record = store.get_run("r1")
        assert record.status is RunStatus.FAILED
        assert record.error == str(error) == "ValueError: bad input"

    # ============================================================ append_many
    def test_append_many_gives_each_request_its_own_result(self, store: Store) -> None:
        a = self.run_with_lease(store, "a")
        b = self.run_with_lease(store, "b")
        c = self.run_with_lease(store, "c")
        store.acquire_lease("b", "supervisor", TTL, force=True)  # b's lease is now stale
        before_b = _state(store, "b")
        results = store.append_many(
            [
                AppendRequest(run_id="a", events=(fact("a1"), fact("a2")), lease=a.token),
                AppendRequest(run_id="b", events=(fact("b1"),), lease=b.token),
                AppendRequest(run_id="c", events=(fact("c1"),), lease=c.token, status=RunStatus.RUNNING),
                AppendRequest(run_id="c", events=(fact("c2"),), lease=c.token, status=RunStatus.PENDING),
                AppendRequest(run_id="a", events=(fact("bad", Unpicklable()),), lease=a.token),
                AppendRequest(run_id="a", events=(fact("a3"),), lease=a.token),
                AppendRequest(run_id="a", events=(), lease=a.token),
                AppendRequest(run_id="a", events=(fact("a4"),), lease="1"),  # type: ignore[arg-type]
            ]
        )
        assert len(results) == 8
        assert results[0] == Receipt(run_id="a", first_seq=2, last_seq=3)
        assert isinstance(results[1], FencedError)
        assert results[2] == Receipt(run_id="c", first_seq=2, last_seq=2)
        assert isinstance(results[3], IllegalTransition)  # running -> pending, after the request before it
        assert isinstance(results[4], InvalidArgument)
        assert results[5] == Receipt(run_id="a", first_seq=4, last_seq=4)
        assert isinstance(results[6], InvalidArgument)
        assert isinstance(results[7], InvalidArgument)
        assert [e.node for e in _facts(store, "a")] == ["a1", "a2", "a3"]
        assert _state(store, "b") == before_b
        assert store.get_run("c").status is RunStatus.RUNNING
        assert store.append_many([]) == []

    def test_append_many_gives_consecutive_cursors_to_one_run(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        results = store.append_many(
            [
                AppendRequest(run_id="r1", events=(fact("x"), fact("y")), lease=lease.token),
                AppendRequest(run_id="r1", events=(fact("z"),), lease=lease.token, status=RunStatus.RUNNING),
                AppendRequest(
                    run_id="r1", events=(RunCompleted(result=3, at=T0),), lease=lease.token, status=RunStatus.COMPLETED
                ),
                AppendRequest(run_id="r1", events=(fact("after-end"),), lease=lease.token),
            ]
        )
        assert results[:3] == [
            Receipt(run_id="r1", first_seq=2, last_seq=3),
            Receipt(run_id="r1", first_seq=4, last_seq=4),
            Receipt(run_id="r1", first_seq=5, last_seq=5),
        ]
        assert isinstance(results[3], RunClosed)
        record = store.get_run("r1")
        assert (record.last_seq, record.status) == (5, RunStatus.COMPLETED)
        assert [s.seq for s in store.stream("r1")] == [1, 2, 3, 4, 5]

    # ===================================================== retried appends
    def test_a_retried_append_that_was_committed_returns_its_receipt_and_writes_nothing(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        first = store.append("r1", [fact("a"), fact("b")], lease.token, after_seq=1, request_id="req-1")
        assert first == Receipt(run_id="r1", first_seq=2, last_seq=3)
        with writes_nothing(store):  # the reply was lost: the same call again
            again = store.append("r1", [fact("a"), fact("b")], lease.token, after_seq=1, request_id="req-1")
        assert again == first
        # the writer goes on from the receipt, and older requests still answer the same
        assert store.append("r1", [fact("c")], lease.token, after_seq=3, request_id="req-2") == Receipt(
            run_id="r1", first_seq=4, last_seq=4
        )
        with writes_nothing(store):
            assert store.append("r1", [fact("a"), fact("b")], lease.token, after_seq=1, request_id="req-1") == first
            results = store.append_many(
                [AppendRequest(run_id="r1", events=(fact("c"),), lease=lease.token, after_seq=3, request_id="req-2")]
            )
        assert results == [Receipt(run_id="r1", first_seq=4, last_seq=4)]
        assert [e.node for e in _facts(store, "r1")] == ["a", "b", "c"]
        assert store.get_run("r1").last_seq == 4

    def test_a_retried_append_is_answered_after_the_run_ended_or_its_lease_moved_on(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        store.transition("r1", RunStatus.RUNNING, lease=lease.token)
        done = RunCompleted(result=1, at=T0)
        receipt = store.append("r1", [done], lease.token, status=RunStatus.COMPLETED, after_seq=1, request_id="final")
        with writes_nothing(store):  # the run has ended, yet the retry of the call that ended it is answered
            assert (
                store.append("r1", [done], lease.token, status=RunStatus.COMPLETED, after_seq=1, request_id="final")
                == receipt
            )
        lease = self.run_with_lease(store, "r2")
        receipt = store.append("r2", [fact("a")], lease.token, after_seq=1, request_id="one")
        store.acquire_lease("r2", "supervisor", TTL, force=True)
        with writes_nothing(store):
            assert store.append("r2", [fact("a")], lease.token, after_seq=1, request_id="one") == receipt
            with pytest.raises(FencedError):  # a new write of the fenced writer is still refused
                store.append("r2", [fact("b")], lease.token, after_seq=2, request_id="two")

    def test_another_request_at_a_taken_cursor_is_refused(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        store.append("r1", [fact("a"), fact("b")], lease.token, after_seq=1, request_id="mine")
        refusals: list[tuple[list[Event], int, str | None]] = [
            ([fact("a"), fact("b")], 1, "someone-else"),  # same events, other request: not a retry
            ([fact("a")], 1, "mine"),  # other events than the request stored there
            ([fact("x")], 1, None),  # a cursor without an identity
            ([fact("x")], 2, "late"),  # behind the log's end
            ([fact("x")], 7, "ahead"),  # past the log's end
        ]
        for events, after_seq, request_id in refusals:
            with writes_nothing(store), pytest.raises(AppendConflict) as info:
                store.append("r1", events, lease.token, after_seq=after_seq, request_id=request_id)
            assert (info.value.run_id, info.value.after_seq, info.value.last_seq) == ("r1", after_seq, 3)
            assert isinstance(info.value, StoreError)
        [result] = store.append_many(
            [AppendRequest(run_id="r1", events=(fact("x"),), lease=lease.token, after_seq=1, request_id="other")]
        )
        assert isinstance(result, AppendConflict)
        # a stale writer at a taken cursor is told it is fenced; an ended run that it is closed
        store.acquire_lease("r1", "supervisor", TTL, force=True)
        with writes_nothing(store), pytest.raises(FencedError):
            store.append("r1", [fact("x")], lease.token, after_seq=1, request_id="zombie")
        # without a cursor an append goes after the last event, as always
        current = store.get_run("r1").lease
        assert store.append("r1", [fact("c")], current) == Receipt(run_id="r1", first_seq=4, last_seq=4)
        assert store.append("r1", [fact("d")], current, after_seq=4) == Receipt(run_id="r1", first_seq=5, last_seq=5)

    def test_append_identity_arguments_are_checked(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        bad: list[tuple[Any, Any]] = [(None, "req"), (-1, "req"), (1.5, "req"), (1, ""), (1, 7), (True, "req")]
        for after_seq, request_id in bad:
            with writes_nothing(store), pytest.raises(InvalidArgument):
                store.append("r1", [fact("a")], lease.token, after_seq=after_seq, request_id=request_id)
            with pytest.raises(InvalidArgument):
                AppendRequest(
                    run_id="r1", events=(fact("a"),), lease=lease.token, after_seq=after_seq, request_id=request_id
                )

    def test_retried_appends_are_recognised_among_other_requests_of_a_batch(self, store: Store) -> None:
        a = self.run_with_lease(store, "a")
        b = self.run_with_lease(store, "b")
        committed = store.append("a", [fact("a1")], a.token, after_seq=1, request_id="a-1")
        results = store.append_many(
            [
                AppendRequest(run_id="b", events=(fact("b1"),), lease=b.token, after_seq=1, request_id="b-1"),
                AppendRequest(run_id="a", events=(fact("a1"),), lease=a.token, after_seq=1, request_id="a-1"),
                AppendRequest(run_id="a", events=(fact("a2"),), lease=a.token, after_seq=2, request_id="a-2"),
                AppendRequest(run_id="b", events=(fact("b2"),), lease=b.token, after_seq=2, request_id="b-2"),
            ]
        )
        assert results == [
            Receipt(run_id="b", first_seq=2, last_seq=2),
            committed,
            Receipt(run_id="a", first_seq=3, last_seq=3),
            Receipt(run_id="b", first_seq=3, last_seq=3),
        ]
        assert [e.node for e in _facts(store, "a")] == ["a1", "a2"]
        assert [e.node for e in _facts(store, "b")] == ["b1", "b2"]

    # ============================================================= snapshots
    def test_snapshots_keep_the_latest_cursor(self, store: Store) -> None:
        lease = self.run_with_lease(store)
        assert store.load_snapshot("r1") is None
        store.append("r1", [fact("a"), fact("b"), fact("c")], lease.token)
        store.save_snapshot("r1", 2, b"at two")
        assert store.load_snapshot("r1") == Snapshot(run_id="r1", cursor=2, blob=b"at two")
        store.save_snapshot("r1", 4, b"at four")
        with writes_nothing(store):
            store.save_snapshot("r1", 3, b"older")  # an older cursor never replaces a newer one
        assert store.load_snapshot("r1") == Snapshot(run_id="r1", cursor=4, blob=b"at four")
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.save_snapshot("r1", 5, b"the future")
        for cursor, blob in ((-1, b"x"), (1.5, b"x"), (2, "not bytes"), (2, None)):
            with writes_nothing(store), pytest.raises(InvalidArgument):
                store.save_snapshot("r1", cursor, blob)  # type: ignore[arg-type]
        store.create_run(new_run("r2"))
        assert store.load_snapshot("r2") is None  # snapshots are per run

    # ================================================================= facts
    def test_facts_are_content_addressed(self, store: Store) -> None:
        blob = serialization.dumps({"big": list(range(100))})
        digest = serialization.fact_hash(blob)
        store.save_fact(digest, blob)
        store.save_fact(digest, blob)  # idempotent
        assert store.load_fact(digest) == blob
        other = b"\x00\xff" * 50
        store.save_fact(serialization.fact_hash(other), other)
        assert store.load_fact(serialization.fact_hash(other)) == other
        assert serialization.loads(store.load_fact(digest)) == {"big": list(range(100))}
        missing = serialization.fact_hash(b"never saved")
        with pytest.raises(FactNotFound) as info:
            store.load_fact(missing)
        assert info.value.fact_hash == missing and isinstance(info.value, StoreError)

    @pytest.mark.parametrize("bad", ["abc", "a" * 63, "a" * 65, 7, None, b"a" * 64], ids=repr)
    def test_a_bad_fact_hash_is_invalid(self, store: Store, bad: Any) -> None:
        with pytest.raises(InvalidArgument):
            store.save_fact(bad, b"x")
        with pytest.raises(InvalidArgument):
            store.load_fact(bad)

    def test_a_fact_value_must_be_bytes(self, store: Store) -> None:
        digest = serialization.fact_hash(b"x")
        for value in ("x", None, bytearray(b"x")):
            with pytest.raises(InvalidArgument):
                store.save_fact(digest, value)  # type: ignore[arg-type]
        with pytest.raises(FactNotFound):
            store.load_fact(digest)

    # =============================================================== signals
    def test_signals_inbox(self, store: Store, clock: FakeClock) -> None:
        store.create_run(new_run("r1"))
        store.create_run(new_run("r2"))
        payloads: list[Any] = [
            {"approved": True, "by": "ann"},
            None,
            (1, "tuple"),
            {1: {2, 3}},
            Point(5, 6),
            b"bytes",
            decimal.Decimal("2.50"),
            float("inf"),
        ]
        posted = []
        for i, payload in enumerate(payloads):
            clock.advance(1)
            signal = store.post_signal("r1", f"sig{i}", payload)
            assert (signal.run_id, signal.name, signal.payload, signal.sent_at) == ("r1", f"sig{i}", payload, clock())
            posted.append(signal)
        store.post_signal("r2", "elsewhere", 0)
        ids = [s.signal_id for s in posted]
        assert ids == sorted(set(ids))
        inbox = store.signals("r1")
        assert inbox == posted
        assert type(inbox[2].payload) is tuple
        assert store.signals("r1", after=ids[2]) == posted[3:]
        assert store.signals("r1", after=ids[-1]) == []
        assert [s.name for s in store.signals("r2")] == ["elsewhere"]
        assert all(isinstance(s, Signal) for s in inbox)

    def test_post_signal_rejects_bad_arguments_and_writes_nothing(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        for name in ("", None, 5):
            with writes_nothing(store), pytest.raises(InvalidArgument):
                store.post_signal("r1", name, 1)  # type: ignore[arg-type]
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.post_signal("r1", "go", Unpicklable())
        with pytest.raises(InvalidArgument):
            store.signals("r1", after=-1)

    def test_a_signal_sent_again_with_its_dedupe_key_is_stored_once(self, store: Store, clock: FakeClock) -> None:
        store.create_run(new_run("r1"))
        store.create_run(new_run("r2"))
        first = store.post_signal("r1", "approve", {"by": "ann"}, dedupe_key="call-1")
        clock.advance(5)
        with writes_nothing(store):  # the reply was lost: the same call again
            assert store.post_signal("r1", "approve", {"by": "ann"}, dedupe_key="call-1") == first
        other = store.post_signal("r1", "approve", {"by": "bob"}, dedupe_key="call-2")
        plain = store.post_signal("r1", "approve", None)
        again = store.post_signal("r1", "approve", None)  # without a key every call is a new signal
        elsewhere = store.post_signal("r2", "approve", 1, dedupe_key="call-1")  # keys are per run
        assert store.signals("r1") == [first, other, plain, again]
        assert store.signals("r2") == [elsewhere]
        # a retry that arrives after the run ended still gets its stored signal
        self.move(store, "r1", RunStatus.CANCELLED)
        with writes_nothing(store):
            assert store.post_signal("r1", "approve", {"by": "ann"}, dedupe_key="call-1") == first
            with pytest.raises(RunClosed):
                store.post_signal("r1", "approve", 3, dedupe_key="call-3")
        for bad in ("", 5, b"k"):
            with writes_nothing(store), pytest.raises(InvalidArgument):
                store.post_signal("r2", "go", 1, dedupe_key=bad)  # type: ignore[arg-type]

    def test_signals_do_not_touch_the_log(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        store.post_signal("r1", "go", 1)
        assert store.get_run("r1").last_seq == 1
        assert _events(store, "r1") == [submitted()]

    # ============================================================ list_runs
    def test_list_runs_filters(self, store: Store, clock: FakeClock) -> None:
        created = {}
        for run_id, workflow in (("a1", "alpha"), ("b1", "beta"), ("a2", "alpha"), ("a3", "alpha")):
            created[run_id] = store.create_run(new_run(run_id, workflow=workflow))[0].created_at
            clock.advance(10)
        self.move(store, "a2", RunStatus.RUNNING)
        self.move(store, "b1", RunStatus.RUNNING)
        self.move(store, "a3", RunStatus.CANCELLED)

        def ids(**kw: Any) -> list[str]:
            records = store.list_runs(RunFilter(**kw))
            assert all(r == store.get_run(r.run_id) for r in records)
            return [r.run_id for r in records]

        assert [r.run_id for r in store.list_runs()] == ["a3", "a2", "b1", "a1"]
        assert [r.run_id for r in store.list_runs(None)] == ["a3", "a2", "b1", "a1"]
        assert ids(newest_first=False) == ["a1", "b1", "a2", "a3"]
        assert ids(workflow="alpha") == ["a3", "a2", "a1"]
        assert ids(workflow="nope") == []
        assert ids(status=RunStatus.RUNNING) == ["a2", "b1"]
        assert ids(status="pending") == ["a1"]
        assert ids(status=(RunStatus.RUNNING, "cancelled")) == ["a3", "a2", "b1"]
        assert ids(status=[RunStatus.COMPLETED]) == []
        assert ids(workflow="alpha", status=RunStatus.RUNNING) == ["a2"]
        assert ids(created_after=created["b1"]) == ["a3", "a2", "b1"]  # inclusive
        assert ids(created_before=created["a2"]) == ["b1", "a1"]  # exclusive
        assert ids(created_after=created["b1"], created_before=created["a3"]) == ["a2", "b1"]
        assert ids(created_after=created["a3"] + 1) == []
        assert ids(limit=2) == ["a3", "a2"]
        assert ids(limit=2, newest_first=False) == ["a1", "b1"]
        assert ids(limit=1, workflow="alpha", newest_first=False) == ["a1"]
        assert ids(limit=1000) == ["a3", "a2", "b1", "a1"]

    @pytest.mark.parametrize(
        "bad",
        [
            {"limit": 0},
            {"limit": -1},
            {"limit": 1.5},
            {"limit": True},
            {"status": "sleeping"},
            {"status": ("running", "sleeping")},
            {"created_after": "yesterday"},
            {"created_before": True},
            {"workflow": 5},
        ],
        ids=repr,
    )
    def test_bad_run_filters_are_invalid(self, store: Store, bad: dict[str, Any]) -> None:
        with pytest.raises(InvalidArgument):
            store.list_runs(RunFilter(**bad))

    def test_list_runs_takes_only_a_run_filter(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        for bad in ({"workflow": "wf"}, "wf", 5):
            with pytest.raises(InvalidArgument):
                store.list_runs(bad)  # type: ignore[arg-type]

    # ================================================================ delete
    def test_delete_removes_the_run_and_all_it_owns(self, store: Store) -> None:
        lease = self.run_with_lease(store, "r1", key="once")
        other = self.run_with_lease(store, "keep")
        store.append("r1", [fact("a"), fact("b")], lease.token)
        store.append("keep", [fact("k")], other.token)
        store.save_snapshot("r1", 2, b"snap")
        store.post_signal("r1", "go", 1)
        store.post_signal("keep", "go", 2)
        blob = b"shared fact"
        store.save_fact(serialization.fact_hash(blob), blob)
        keep_before = _state(store, "keep")

        store.delete("r1")

        assert store.exists("r1") is False
        for call in ("get_run", "stream", "load_snapshot", "signals", "delete", "append", "post_signal"):
            with pytest.raises(RunNotFound):
                PER_RUN_CALLS[call](store, "r1", lease.token)
        assert [r.run_id for r in store.list_runs()] == ["keep"]
        assert _state(store, "keep") == keep_before
        assert store.load_fact(serialization.fact_hash(blob)) == blob  # facts are shared and stay

        # the id and the idempotency key are free again, and nothing old comes back
        record, created = store.create_run(new_run("r2", key="once"))
        assert (record.run_id, created) == ("r2", True)
        record, created = store.create_run(new_run("r1"))
        assert created is True and record.last_seq == 1 and record.lease == 0
        assert _events(store, "r1") == [submitted()]
        assert store.load_snapshot("r1") is None
        assert store.signals("r1") == []

    # =========================================================== concurrency
    def _run_threads(self, targets: list[Callable[[], None]]) -> None:
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(targets))

        def wrap(target: Callable[[], None]) -> Callable[[], None]:
            def body() -> None:
                try:
                    barrier.wait(timeout=60)
                    target()
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            return body

        threads = [threading.Thread(target=wrap(t)) for t in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a writer thread hung"
        assert errors == []

    def test_threads_appending_to_different_runs(self, store: Store) -> None:
        runs, appends, size = 6, 15, 2
        leases = {f"r{i}": self.run_with_lease(store, f"r{i}").token for i in range(runs)}
        receipts: dict[str, list[Receipt]] = {r: [] for r in leases}

        def writer(run_id: str) -> Callable[[], None]:
            def body() -> None:
                for j in range(appends):
                    batch = [fact(run_id, j * size + k) for k in range(size)]
                    receipts[run_id].append(store.append(run_id, batch, leases[run_id]))

            return body

        self._run_threads([writer(r) for r in leases])
        total = 1 + appends * size
        for run_id in leases:
            stored = list(store.stream(run_id))
            assert [s.seq for s in stored] == list(range(1, total + 1))
            assert [e.value for e in _facts(store, run_id)] == list(range(appends * size))
            assert all(e.node == run_id for e in _facts(store, run_id))
            assert [(r.first_seq, r.last_seq) for r in receipts[run_id]] == [
                (2 + j * size, 1 + (j + 1) * size) for j in range(appends)
            ]
            assert store.get_run(run_id).last_seq == total

    def test_threads_appending_to_one_run_with_one_lease(self, store: Store) -> None:
        writers, appends, size = 6, 15, 3
        lease = self.run_with_lease(store).token
        receipts: dict[int, list[tuple[Receipt, list[Event]]]] = {w: [] for w in range(writers)}

        def writer(w: int) -> Callable[[], None]:
            def body() -> None:
                for j in range(appends):
                    batch: list[Event] = [fact(f"w{w}", (j, k)) for k in range(size)]
                    receipts[w].append((store.append("r1", batch, lease), batch))

            return body

        self._run_threads([writer(w) for w in range(writers)])
        total = 1 + writers * appends * size
        stored = list(store.stream("r1"))
        assert [s.seq for s in stored] == list(range(1, total + 1))
        assert store.get_run("r1").last_seq == total
        by_seq = {s.seq: s.event for s in stored}
        ranges = []
        for items in receipts.values():
            assert len(items) == appends
            for receipt, batch in items:
                assert receipt.last_seq - receipt.first_seq + 1 == size
                # the receipt proves exactly what was stored
                assert [by_seq[s] for s in range(receipt.first_seq, receipt.last_seq + 1)] == batch
                ranges.append((receipt.first_seq, receipt.last_seq))
            # each writer's batches are stored in the order it appended them
            firsts = [r.first_seq for r, _ in items]
            assert firsts == sorted(firsts)
        covered = sorted(s for first, last in ranges for s in range(first, last + 1))
        assert covered == list(range(2, total + 1))  # disjoint and complete
        events = [(e.node, e.value) for e in _facts(store, "r1")]
        expected = [(f"w{w}", (j, k)) for w in range(writers) for j in range(appends) for k in range(size)]
        assert sorted(events) == sorted(expected) and len(set(events)) == len(events)

    def test_threads_racing_for_one_lease_get_exactly_one(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        won: list[Lease] = []
        lost: list[LeaseHeld] = []

        def contender(owner: str) -> Callable[[], None]:
            def body() -> None:
                try:
                    won.append(store.acquire_lease("r1", owner, TTL))
                except LeaseHeld as exc:
                    lost.append(exc)

            return body

        self._run_threads([contender(f"w{i}") for i in range(8)])
        assert len(won) == 1 and len(lost) == 7
        record = store.get_run("r1")
        assert (record.lease, record.lease_owner) == (won[0].token, won[0].owner) == (1, won[0].owner)
        assert all(exc.owner == won[0].owner for exc in lost)

    def test_threads_racing_with_one_idempotency_key_create_one_run(self, store: Store) -> None:
        results: list[tuple[RunRecord, bool]] = []

        def submitter(i: int) -> Callable[[], None]:
            return lambda: results.append(store.create_run(new_run(f"r{i}", key="the-key")))

        self._run_threads([submitter(i) for i in range(8)])
        winners = [r for r, created in results if created]
        assert len(winners) == 1
        assert {r.run_id for r, _ in results} == {winners[0].run_id}
        assert [r.run_id for r in store.list_runs()] == [winners[0].run_id]

    # ================================================================= close
    @pytest.mark.parametrize("call", sorted(PER_RUN_CALLS) + sorted(GLOBAL_CALLS), ids=_call_id)
    def test_every_call_after_close_raises_store_error(self, store: Store, call: str) -> None:
        lease = self.run_with_lease(store)
        store.close()
        fn = PER_RUN_CALLS.get(call) or GLOBAL_CALLS[call]
        with pytest.raises(StoreError) as info:
            fn(store, "r1", lease.token)
        assert not isinstance(info.value, (RunNotFound, FactNotFound))

    def test_close_is_idempotent(self, store: Store) -> None:
        store.close()
        store.close()
        with pytest.raises(StoreError):
            store.get_run("r1")

    # =========================================================== durability
    def test_everything_survives_close_and_reopen(self, store: Store, tmp_path: Path, clock: FakeClock) -> None:
        if not self.persistent:
            pytest.skip("this store keeps nothing after close (persistent = False)")
        lease = self.run_with_lease(store, "r1", key="k1")
        store.create_runs([new_run("r2", workflow="other"), new_run("r3")])
        store.append("r1", [fact("a", Point(1, 2)), fact("b")], lease.token, status=RunStatus.RUNNING)
        self.move(store, "r3", RunStatus.CANCELLED)
        store.save_snapshot("r1", 2, b"snap")
        store.post_signal("r1", "go", {"x": (1, 2)})
        blob = b"a fact"
        store.save_fact(serialization.fact_hash(blob), blob)
        world = _world(store)
        store.close()

        reopened = self.make_store(tmp_path, clock)
        try:
            assert _world(reopened) == world
            assert reopened.load_fact(serialization.fact_hash(blob)) == blob
            again, created = reopened.create_run(new_run("r9", key="k1"))
            assert (again.run_id, created) == ("r1", False)
            with pytest.raises(FencedError):
                reopened.append("r1", [fact("c")], lease.token - 1)
            assert reopened.append("r1", [fact("c")], lease.token) == Receipt(run_id="r1", first_seq=4, last_seq=4)
            assert reopened.acquire_lease("r1", "w2", TTL, force=True).token == lease.token + 1
            assert reopened.post_signal("r1", "more", 2).signal_id > world["r1"][3][0][0]
        finally:
            reopened.close()

    def test_request_ids_and_dedupe_keys_survive_close_and_reopen(
        self, store: Store, tmp_path: Path, clock: FakeClock
    ) -> None:
        if not self.persistent:
            pytest.skip("this store keeps nothing after close (persistent = False)")
        lease = self.run_with_lease(store)
        receipt = store.append("r1", [fact("a"), fact("b")], lease.token, after_seq=1, request_id="req-1")
        signal = store.post_signal("r1", "go", 1, dedupe_key="call-1")
        store.close()  # a store process that dies after the commit, before its reply

        reopened = self.make_store(tmp_path, clock)
        try:
            with writes_nothing(reopened):
                assert (
                    reopened.append("r1", [fact("a"), fact("b")], lease.token, after_seq=1, request_id="req-1")
                    == receipt
                )
                assert reopened.post_signal("r1", "go", 1, dedupe_key="call-1") == signal
                with pytest.raises(AppendConflict):
                    reopened.append("r1", [fact("x")], lease.token, after_seq=1, request_id="req-2")
        finally:
            reopened.close()

    # ============================================================= metadata
    def test_run_metadata_is_stored_with_the_run_and_kept_by_every_write(self, store: Store) -> None:
        meta = {"tenant": "t-7", "n": 3, "ratio": 0.5, "ok": True, "none": None, "tags": ["a", 1], "deep": {"k": [{}]}}
        record, created = store.create_run(new_run("r1", metadata=meta))
        assert created and record.metadata == meta
        store.create_runs([new_run("r2"), new_run("r3", metadata={"tenant": "t-8"})])
        assert store.get_run("r1").metadata == meta
        assert store.get_run("r2").metadata == {}
        lease = store.acquire_lease("r1", "w1", TTL)
        store.append("r1", [fact("a")], lease.token, status=RunStatus.RUNNING)
        store.transition("r1", RunStatus.COMPLETED, lease=lease.token)
        assert store.get_run("r1").metadata == meta
        assert [r.metadata for r in store.list_runs(RunFilter(newest_first=False))] == [meta, {}, {"tenant": "t-8"}]
        # a run found again by its id or key keeps the metadata it was created with
        again, created = store.create_run(new_run("r1", metadata={"tenant": "other"}))
        assert not created and again.metadata == meta

    def test_metadata_that_is_not_json_is_refused_naming_the_entry(self) -> None:
        for bad, where in (
            ({"when": object()}, "metadata['when']"),
            ({"a": {"b": [1, (2, 3)]}}, "metadata['a']['b'][1]"),
            ({"x": float("nan")}, "metadata['x']"),
            ({1: "one"}, "key 1"),
            ({"a": {2: "two"}}, "key 2"),
            (["not", "a", "dict"], "metadata must be a dict"),
        ):
            with pytest.raises(InvalidArgument, match=re.escape(where)):
                new_run("r1", metadata=bad)  # type: ignore[arg-type]

    def test_list_runs_filters_by_metadata_keys_with_equal_values(self, store: Store, clock: FakeClock) -> None:
        metas: dict[str, dict[str, Any]] = {
            "a": {"tenant": "t-7", "tier": 1, "vip": True, "path/~x": "p"},
            "b": {"tenant": "t-7", "tier": 2.0, "vip": False, "note": None},
            "c": {"tenant": "t-8", "tier": "1", "vip": "true"},
            "d": {},
        }
        for run_id, meta in metas.items():
            store.create_run(new_run(run_id, workflow="beta" if run_id == "c" else "wf", metadata=meta))
            clock.advance(1)

        def ids(**wanted: Any) -> list[str]:
            return [r.run_id for r in store.list_runs(RunFilter(metadata=wanted, newest_first=False))]

        assert ids(tenant="t-7") == ["a", "b"]
        assert ids(tenant="t-7", vip=True) == ["a"]
        assert ids(tier=1) == ["a"]  # a number equals an equal number, never a string
        assert ids(tier=2) == ["b"]  # 2 == 2.0
        assert ids(tier="1") == ["c"]
        assert ids(vip=False) == ["b"]
        assert ids(vip="true") == ["c"]  # a bool is not its name
        assert ids(note=None) == ["b"]  # JSON null, not a missing key
        assert ids(missing="x") == []
        assert ids(**{"path/~x": "p"}) == ["a"]  # any key, whatever its characters
        assert ids() == ["a", "b", "c", "d"]
        got = store.list_runs(RunFilter(metadata={"tenant": "t-7"}, workflow="wf", limit=1))
        assert [r.run_id for r in got] == ["b"]
        for bad in ({"k": [1]}, {"k": {"a": 1}}, {"": "x"}, {5: "x"}, "tenant=t-7", {"k": float("inf")}):
            with pytest.raises(InvalidArgument):
                RunFilter(metadata=bad)  # type: ignore[arg-type]

    def test_a_signal_keeps_the_id_of_the_call_that_stored_it(self, store: Store) -> None:
        store.create_run(new_run("r1"))
        first = store.post_signal("r1", "go", 1, dedupe_key="key:order-1", call_id="call-a")
        assert first.call_id == "call-a"
        with writes_nothing(store):  # another call with the same key: the first call's signal
            assert store.post_signal("r1", "go", 2, dedupe_key="key:order-1", call_id="call-b") == first
        plain = store.post_signal("r1", "go", 3)
        assert plain.call_id is None
        assert store.signals("r1") == [first, plain]
        with writes_nothing(store), pytest.raises(InvalidArgument):
            store.post_signal("r1", "go", 1, dedupe_key="k", call_id="")

    def test_metadata_and_signal_call_ids_survive_close_and_reopen(
        self, store: Store, tmp_path: Path, clock: FakeClock
    ) -> None:
        if not self.persistent:
            pytest.skip("this store keeps nothing after close (persistent = False)")
        store.create_runs([new_run("r1", metadata={"tenant": "t-7", "n": 1}), new_run("r2")])
        signal = store.post_signal("r1", "go", 1, dedupe_key="key:k", call_id="call-a")
        store.close()

        reopened = self.make_store(tmp_path, clock)
        try:
            assert reopened.get_run("r1").metadata == {"tenant": "t-7", "n": 1}
            assert [r.run_id for r in reopened.list_runs(RunFilter(metadata={"n": 1}))] == ["r1"]
            with writes_nothing(reopened):
                assert reopened.post_signal("r1", "go", 2, dedupe_key="key:k", call_id="call-b") == signal
            assert reopened.signals("r1")[0].call_id == "call-a"
        finally:
            reopened.close()

    # ========================================================= named queues
    def test_a_runs_queue_fields_are_stored_and_filtered_on(self, store: Store, clock: FakeClock) -> None:
        queued = dataclasses.replace(new_run("q1"), queue="emails", queue_key="tenant-7", priority=5)
        record, _ = store.create_run(queued)
        store.create_runs([dataclasses.replace(new_run("q2"), queue="emails"), new_run("plain")])
        assert (record.queue, record.queue_key, record.priority, record.started_at) == ("emails", "tenant-7", 5, None)
        assert store.get_run("q1") == record
        plain = store.get_run("plain")
        assert (plain.queue, plain.queue_key, plain.priority, plain.started_at) == (None, None, 0, None)
        in_queue = store.list_runs(RunFilter(queue="emails", newest_first=False))
        assert sorted(r.run_id for r in in_queue) == ["q1", "q2"]
        assert store.list_runs(RunFilter(queue="other")) == []

    def test_started_at_is_set_once_at_the_first_start(self, store: Store, clock: FakeClock) -> None:
        store.create_runs([new_run("taken"), new_run("moved"), new_run("later")])
        clock.advance(10)
        taken, moved = store.take_over(["taken", "moved"], "w1", TTL)
        assert isinstance(taken, RunRecord) and taken.started_at == clock()
        first_start = clock()
        assert store.get_run("moved").started_at == first_start
        clock.advance(10)
        self.move(store, "moved", RunStatus.SUSPENDED, RunStatus.RUNNING)  # a wake-up is no first start
        store.take_over(["moved"], "w2", TTL)
        assert store.get_run("moved").started_at == first_start
        self.move(store, "taken", RunStatus.COMPLETED)  # ended runs keep it
        assert store.get_run("taken").started_at == first_start
        assert store.get_run("later").started_at is None
        recent = store.list_runs(RunFilter(started_after=first_start, newest_first=False))
        assert sorted(r.run_id for r in recent) == ["moved", "taken"]
        assert store.list_runs(RunFilter(started_after=clock() + 1)) == []

    def test_bad_queue_fields_are_refused_before_anything_is_stored(self, store: Store) -> None:
        for fields in (
            {"queue": ""},
            {"queue_key": "k"},
            {"queue": "q", "priority": 1.5},
            {"queue": "q", "queue_key": ""},
        ):
            with writes_nothing(store), pytest.raises(InvalidArgument):
                store.create_run(dataclasses.replace(new_run("r1"), **fields))
        with pytest.raises(InvalidArgument):
            RunFilter(queue=3)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            RunFilter(started_after="yesterday")  # type: ignore[arg-type]
