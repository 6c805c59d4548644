"""Client hooks: a thread of the driver that follows the store's runs and calls the hooks.

Every ``interval`` seconds it lists the runs created since it started (from the
oldest one it has not seen end, so a long run stays followed), reads the new
events of each run whose cursor moved, and calls :func:`runner.hooks.fire` on
them, in order, in this thread. One ``list_runs`` call per round, plus one read
per run that moved. A hook that raises is logged; a read that fails (the
Runner restarting) is logged and tried again next round.
"""

from __future__ import annotations

import logging
import threading
import time

from runner.hooks import Hooks, fire
from runner.reader import StoreReader
from runner.store import RunFilter

log = logging.getLogger("runner.hooks")
INTERVAL = 0.25
MAX_RUNS_PER_ROUND = 10_000


class HookFollower:
    def __init__(self, reader: StoreReader, hooks: Hooks, *, interval: float = INTERVAL) -> None:
        self.reader = reader
        self.hooks = hooks
        self.interval = interval
        self.since = time.time()
        self.cursors: dict[str, int] = {}  # run id -> last event handed to the hooks
        self.ended: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runner-hooks", daemon=True)

    def start(self) -> HookFollower:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def add(self, hooks: Hooks) -> None:
        self.hooks = self.hooks.merged(hooks)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.round()
            except Exception:
                log.exception("following runs for client hooks failed; trying again")

    def round(self) -> int:
        """One pass: fire the hooks for every new event; returns the hook calls made."""
        records = self.reader.list_runs(
            RunFilter(created_after=self.since, limit=MAX_RUNS_PER_ROUND, newest_first=False)
        )
        calls = 0
        for record in records:
            cursor = self.cursors.get(record.run_id, 0)
            if record.last_seq <= cursor or record.run_id in self.ended:
                continue
            events = self.reader.history(record.run_id, after=cursor)
            if not events:
                continue
            self.cursors[record.run_id] = events[-1].seq
            calls += fire(self.hooks, record.workflow, events)
            if record.status.is_terminal and events[-1].seq >= record.last_seq:
                self.ended.add(record.run_id)
        open_runs = [r.created_at for r in records if r.run_id not in self.ended]
        if open_runs:
            self.since = min(open_runs)
        elif records:
            self.since = max(r.created_at for r in records)
        return calls
