"""Reading a store from a driver: runs, their events, their results.

The client and the CLI read through a :class:`StoreReader`. Two kinds answer
its few basic calls: :class:`ActorStoreReader` goes through the Store actor of
the Runner that holds the store; :class:`FileStoreReader` reads a store
adapter directly, which the CLI opens read-only when no cluster holds the file.
Everything else (the whole history in chunks, a result with its facts loaded,
the error a failed run raises) is built once, on top of those calls.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner import serialization
from runner.errors import RunWasCancelled, StoreError, WorkflowFailed
from runner.events import RunCancelled, RunCompleted, RunFailed, StoredEvent
from runner.ray_calls import StoreCalls
from runner.store import RunFilter, RunRecord, RunStatus, Store

READ_CHUNK = 5_000  # events per read while reading a whole history

Outcome = tuple[RunRecord, StoredEvent | None]  # a run's record and its last event


@dataclass(frozen=True, kw_only=True)
class RunFailure:
    """Why an ended run has no result, as its record and last event tell it.

    ``event``: the RunFailed or RunCancelled that ended the run; None when
    its last event says neither (``status`` is all there is to tell)."""

    run_id: str
    status: RunStatus
    event: RunFailed | RunCancelled | None

    @classmethod
    def of(cls, record: RunRecord, last: StoredEvent | None) -> RunFailure:
        event = last.event if last is not None else None
        ended = event if isinstance(event, (RunFailed, RunCancelled)) else None
        return cls(run_id=record.run_id, status=record.status, event=ended)

    @property
    def where(self) -> str:
        """`` in step 'name'`` for a step's failure, else empty."""
        event = self.event
        return f" in step {event.node!r}" if isinstance(event, RunFailed) and event.node else ""

    @property
    def cancel_reason(self) -> str:
        event = self.event
        return (event.reason if isinstance(event, RunCancelled) else "") or "cancelled"

    def error(self) -> BaseException:
        """What ``result()`` raises: the failing step's own exception when it can be rebuilt
        here (with a note naming the step and run), else WorkflowFailed; RunWasCancelled."""
        event = self.event
        if isinstance(event, RunFailed):
            original = serialization.exception_of(event.error)
            if original is not None:
                if hasattr(original, "add_note"):
                    original.add_note(f"raised{self.where} of run {self.run_id!r}")
                return original
            return WorkflowFailed(self.run_id, f"{event.error}{self.where}")
        if isinstance(event, RunCancelled):
            return RunWasCancelled(self.run_id, self.cancel_reason)
        return WorkflowFailed(self.run_id, f"run ended {self.status.value}")


class StoreReader(abc.ABC):
    """The reads of one store. Subclasses answer the abstract calls; the rest is built on them."""

    chunk: int = READ_CHUNK

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """The run's record; RunNotFound if there is none."""

    @abc.abstractmethod
    def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]:
        """The records ``run_filter`` selects, newest first."""

    @abc.abstractmethod
    def read_events(self, run_id: str, after: int = 0, limit: int = READ_CHUNK) -> list[StoredEvent]:
        """Up to ``limit`` events after cursor ``after``, in order."""

    @abc.abstractmethod
    def outcomes(self, run_ids: Sequence[str]) -> list[Outcome]:
        """Each run's record and last event, in order."""

    @abc.abstractmethod
    def load_fact(self, fact_hash: str) -> bytes:
        """The pickled value a FactRef names."""

    @abc.abstractmethod
    def sql(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A read-only query's column names and rows (``params`` fill its ``?`` placeholders)."""

    # ------------------------------------------------ built on the calls
    def outcome(self, run_id: str) -> Outcome:
        return self.outcomes([run_id])[0]

    def last_event(self, run_id: str) -> StoredEvent | None:
        return self.outcome(run_id)[1]

    def history(self, run_id: str, after: int = 0) -> list[StoredEvent]:
        """Every event of the run after cursor ``after``, in order (read ``chunk`` at a time)."""
        events: list[StoredEvent] = []
        while True:
            chunk = self.read_events(run_id, after + len(events), self.chunk)
            events.extend(chunk)
            if len(chunk) < self.chunk:
                return events

    def load_value(self, value: Any) -> Any:
        """``value`` with every fact reference in it loaded, at any depth (each fact once)."""
        return serialization.resolve_facts(value, serialization.FactLoader(self.load_fact))

    def result_of(self, record: RunRecord, last: StoredEvent | None) -> Any:
        """The result an ended run's record and last event stand for (or its error, raised)."""
        event = last.event if last is not None else None
        if record.status is RunStatus.COMPLETED and isinstance(event, RunCompleted):
            return self.load_value(event.result)
        raise RunFailure.of(record, last).error()


class ActorStoreReader(StoreReader):
    """Reads through the Store actor of the Runner that holds the store."""

    def __init__(self, calls: StoreCalls) -> None:
        self.calls = calls

    def get_run(self, run_id: str) -> RunRecord:
        return self.calls.call(lambda store: store.get_run(run_id))

    def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]:
        return self.calls.call(lambda store: store.list_runs(run_filter))

    def read_events(self, run_id: str, after: int = 0, limit: int = READ_CHUNK) -> list[StoredEvent]:
        return self.calls.call(lambda store: store.read_events(run_id, after, limit))

    def outcome(self, run_id: str) -> Outcome:
        return self.calls.call(lambda store: store.outcome(run_id))

    def outcomes(self, run_ids: Sequence[str]) -> list[Outcome]:
        return self.calls.call(lambda store: store.outcomes(run_ids))

    def load_fact(self, fact_hash: str) -> bytes:
        return self.calls.call(lambda store: store.load_fact(fact_hash))

    def sql(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self.calls.call(lambda store: store.sql(query, params))


class FileStoreReader(StoreReader):
    """Reads a store adapter directly (the CLI opens a DuckDB file read-only when no Runner holds it)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_run(self, run_id: str) -> RunRecord:
        return self.store.get_run(run_id)

    def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]:
        return self.store.list_runs(run_filter)

    def read_events(self, run_id: str, after: int = 0, limit: int = READ_CHUNK) -> list[StoredEvent]:
        return list(itertools.islice(self.store.stream(run_id, after), limit))

    def outcomes(self, run_ids: Sequence[str]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for run_id in run_ids:
            record = self.store.get_run(run_id)
            outcomes.append((record, next(iter(self.read_events(run_id, max(0, record.last_seq - 1), 1)), None)))
        return outcomes

    def load_fact(self, fact_hash: str) -> bytes:
        return self.store.load_fact(fact_hash)

    def sql(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        sql = getattr(self.store, "sql", None)
        if sql is None:
            raise StoreError(f"a {type(self.store).__name__} does not speak SQL; use a duckdb:/// store")
        result: tuple[list[str], list[tuple[Any, ...]]] = sql(query, params)
        return result

    def close(self) -> None:
        self.store.close()
