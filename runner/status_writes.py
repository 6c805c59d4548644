"""The Runner's own writes of a run's status: cancel, pause, fail and reopen a run no worker drives.

Each write takes the run's lease from whoever held it (``force``: no worker
drives the run, or the one that did is gone), so nothing else can append
meanwhile; reads the run's record and folds its log (latest snapshot, then
the events after it, as a worker's recovery does); lets the pure functions of
:mod:`runner.lifecycle` decide the events and check them against the fold;
and only then appends them, moving the status in the same commit.

When the run's definition cannot be loaded here, or its log does not fold
(the very reasons a run may be failed over its restart limit), the move is
checked against the status table alone: the fold would refuse these events
only after the run ended, which the status says as well.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable

from runner import lifecycle, serialization
from runner.errors import DefinitionUnavailable, FoldError, SnapshotMismatch
from runner.events import RunReopened
from runner.lifecycle import StatusMove
from runner.state import WorkflowState
from runner.store import RunRecord, RunStatus
from runner.store_handle import StoreHandle
from runner.workflow import Workflow

log = logging.getLogger("runner")

OWNER = "runner"  # the lease owner the Runner writes as
READ_CHUNK = 5_000

Plan = Callable[[RunStatus, WorkflowState | None], StatusMove]


class StatusWriter:
    def __init__(self, store: StoreHandle, lease_ttl: float) -> None:
        self.store = store
        self.lease_ttl = lease_ttl

    async def cancel(self, run_id: str) -> StatusMove:
        return await self._write(run_id, lambda status, state: lifecycle.cancel(run_id, status, state))

    async def pause(self, run_id: str, reason: str = "") -> StatusMove:
        return await self._write(
            run_id, lambda status, state: lifecycle.pause(run_id, status, state, reason), release=True
        )

    async def fail(self, run_id: str, message: str) -> StatusMove:
        return await self._write(
            run_id, lambda status, state: lifecycle.fail_worker_lost(run_id, status, message, state)
        )

    async def reopen(self, run_id: str, reason: str = "") -> RunRecord:
        """Move a failed or cancelled run back to running (RunReopened) in one store call, which
        frees its lease under a new token: the next worker takes it over. Checked against the
        fold first: ResumeRefused if it is not failed or cancelled, DefinitionUnavailable if its
        definition cannot be loaded here (a worker could not drive it either), FoldError if its
        log does not fold. No lease is taken: an ended run has no writer to fence."""
        record = await self.store.get_run(run_id)
        lifecycle.reopen(run_id, record.status)  # ResumeRefused before anything is loaded
        try:
            workflow = serialization.loads(record.definition)
        except Exception as exc:
            raise DefinitionUnavailable(run_id, f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(workflow, Workflow):
            raise DefinitionUnavailable(run_id, f"it holds a {type(workflow).__name__}, not a runner.Workflow")
        state = await self._folded(record, workflow)
        move = lifecycle.reopen(run_id, record.status, state, reason)
        event = move.events[0]
        assert isinstance(event, RunReopened)
        return await self.store.reopen(run_id, event, record.last_seq, uuid.uuid4().hex)

    async def _write(self, run_id: str, plan: Plan, *, release: bool = False) -> StatusMove:
        """Take the lease, plan the move on the run as stored, append it; ``release``: give the
        lease back afterwards (the run will be driven again)."""
        lease = await self.store.acquire_lease(run_id, OWNER, self.lease_ttl, force=True)
        try:
            record = await self.store.get_run(run_id)
            move = plan(record.status, await self.load_state(record))
            if move.via is not None:
                await self.store.transition(run_id, move.via, lease.token)
            # at the cursor read above, with an identity: a retried call writes nothing twice
            await self.store.append(run_id, move.events, lease.token, move.to, record.last_seq, uuid.uuid4().hex)
        except Exception:
            with contextlib.suppress(Exception):  # the first error is the one to report
                await self.store.release_lease(run_id, lease.token)
            raise
        if release:
            await self.store.release_lease(run_id, lease.token)
        return move

    async def load_state(self, record: RunRecord) -> WorkflowState | None:
        """The run's state folded from its latest snapshot and the events after it; None when its
        definition cannot be loaded here or its log does not fold."""
        try:
            workflow = serialization.loads(record.definition)
        except Exception as exc:
            log.warning("run %s: its definition cannot be loaded here (%s); checking by status", record.run_id, exc)
            return None
        if not isinstance(workflow, Workflow):
            return None
        try:
            return await self._folded(record, workflow)
        except FoldError as exc:
            log.warning("run %s: its log does not fold (%s); checking by status", record.run_id, exc)
            return None

    async def _folded(self, record: RunRecord, workflow: Workflow) -> WorkflowState:
        """The run's state: its latest snapshot (if of this definition) and the events after it."""
        state = WorkflowState(workflow)
        snapshot = await self.store.load_snapshot(record.run_id)
        if snapshot is not None:
            try:
                state = WorkflowState.restore(workflow, snapshot.blob)
            except SnapshotMismatch:  # another definition: fold the whole log instead
                state = WorkflowState(workflow)
        while True:
            chunk = await self.store.read_events(record.run_id, state.cursor, READ_CHUNK)
            for stored in chunk:
                state.apply(stored)
            if len(chunk) < READ_CHUNK:
                return state
