"""What a writable DuckDBStore remembers, so most reads skip SQL.

DuckDB admits one writing process per file, and a writable store object is
that process's only connection: whatever it committed is the truth until it
commits again. So it keeps, updated after each commit:

- :class:`RecordCache`: run records (every run that has not ended, and the
  most recently ended ones), which rows lag their record (write-behind), and
  which runs are known to have no snapshot;
- :class:`TailCache`: each run's most recently written events.

A read-only store keeps nothing: another process may be writing the file.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass

from runner.events import Event, StoredEvent
from runner.store import RunRecord

TAIL_EVENTS = 100_000  # recently written events kept in memory, over all runs
ENDED_RECORDS = 10_000  # records of ended runs kept in memory (runs still going are all kept)


@dataclass(frozen=True, kw_only=True)
class CacheLimits:
    """How much a store keeps in memory."""

    tail_events: int = TAIL_EVENTS
    ended_records: int = ENDED_RECORDS


class RecordCache:
    """Run records this process knows, which of their rows lag, and which runs have no snapshot.

    Records: every run that has not ended, and the ``ended_limit`` most recently
    ended (ended runs are read rarely; the least recently ended leave first).

    Stale rows (write-behind): an append that does not change a run's status
    moves only its record's cursor (``last_seq``, ``updated_at``); the row is
    written later, for all stale runs in one statement. A run's row is always
    written when its status changes, so a stale run has not ended and its
    record is never evicted.

    No snapshot: runs this process created that have no snapshot saved since,
    so loading their snapshot needs no query. Forgotten when the run ends.
    """

    def __init__(self, ended_limit: int = ENDED_RECORDS, *, enabled: bool = True) -> None:
        self._ended_limit = ended_limit
        self._enabled = enabled
        self._live: dict[str, RunRecord] = {}
        self._ended: collections.OrderedDict[str, RunRecord] = collections.OrderedDict()
        self._stale: set[str] = set()
        self._no_snapshot: set[str] = set()

    # ------------------------------------------------------------ records
    def get(self, run_id: str) -> RunRecord | None:
        """The cached record of ``run_id``, if there is one."""
        return self._live.get(run_id) or self._ended.get(run_id)

    def put(self, record: RunRecord) -> RunRecord:
        """Keep ``record`` as the run's current one (it was just committed or read); returns it."""
        if not self._enabled:
            return record
        run_id = record.run_id
        if record.status.is_terminal:
            self._live.pop(run_id, None)
            self._no_snapshot.discard(run_id)
            self._ended[run_id] = record
            self._ended.move_to_end(run_id)
            while len(self._ended) > self._ended_limit:
                self._ended.popitem(last=False)
        else:
            self._ended.pop(run_id, None)
            self._live[run_id] = record
        return record

    def forget(self, run_id: str) -> None:
        """The run was deleted."""
        self._live.pop(run_id, None)
        self._ended.pop(run_id, None)
        self._stale.discard(run_id)
        self._no_snapshot.discard(run_id)

    # --------------------------------------------------------- stale rows
    def mark_stale(self, run_id: str) -> None:
        """The run's row lags its cached record."""
        self._stale.add(run_id)

    def mark_written(self, run_id: str) -> None:
        """The run's row was just written from its record."""
        self._stale.discard(run_id)

    def stale_records(self) -> list[RunRecord]:
        """The records whose rows lag; :meth:`all_written` once they are written."""
        return [r for r in map(self.get, self._stale) if r is not None]

    def all_written(self) -> None:
        self._stale.clear()

    # -------------------------------------------------------- no snapshot
    def note_no_snapshot(self, run_id: str) -> None:
        if self._enabled:
            self._no_snapshot.add(run_id)

    def note_snapshot(self, run_id: str) -> None:
        self._no_snapshot.discard(run_id)

    def has_no_snapshot(self, run_id: str) -> bool:
        """True when the run is known to have no snapshot; False when unknown."""
        return run_id in self._no_snapshot

    # ------------------------------------------------------------- sizes
    @property
    def live_count(self) -> int:
        return len(self._live)

    @property
    def ended_count(self) -> int:
        return len(self._ended)

    @property
    def stale_count(self) -> int:
        return len(self._stale)

    @property
    def no_snapshot_count(self) -> int:
        return len(self._no_snapshot)

    def clear(self) -> None:
        self._live.clear()
        self._ended.clear()
        self._stale.clear()
        self._no_snapshot.clear()


class TailCache:
    """Each run's most recent contiguous events, as this process wrote them.

    At most ``limit`` events over all runs (roughly: a run's tail is evicted
    whole), the runs written least recently evicted first. A run's tail always
    ends at its last event, since this process writes every event; so a read
    from a cursor inside the tail needs no query.
    """

    def __init__(self, limit: int = TAIL_EVENTS) -> None:
        self._limit = limit
        self._tails: collections.OrderedDict[str, list[StoredEvent]] = collections.OrderedDict()
        self._events = 0

    def remember(self, run_id: str, first: int, events: Sequence[Event]) -> None:
        """Keep events ``first``.. of ``run_id``, just committed."""
        stored = [StoredEvent(run_id=run_id, seq=first + i, event=e) for i, e in enumerate(events)]
        tail = self._tails.get(run_id)
        if tail and tail[-1].seq == first - 1:
            tail.extend(stored)
            self._tails.move_to_end(run_id)
        else:
            self.forget(run_id)
            self._tails[run_id] = stored
        self._events += len(stored)
        while self._events > self._limit and self._tails:
            _, evicted = self._tails.popitem(last=False)
            self._events -= len(evicted)

    def after(self, run_id: str, cursor: int) -> list[StoredEvent] | None:
        """The run's events after ``cursor``, or None when the tail does not reach back that far."""
        tail = self._tails.get(run_id)
        if tail and tail[0].seq <= cursor + 1:
            return tail[cursor + 1 - tail[0].seq :]
        return None

    def forget(self, run_id: str) -> None:
        self._events -= len(self._tails.pop(run_id, ()))

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._tails

    @property
    def event_count(self) -> int:
        return self._events

    def clear(self) -> None:
        self._tails.clear()
        self._events = 0
