"""Child runs: a component that runs another workflow as a run of its own and waits for it.

``wf.child_run(other, after=up)`` starts a run of ``other`` with ``up``'s value as
its input (a root component passes the parent's input) and resolves, once the
child ends, with the child's result. The parent holds no worker meanwhile: it
suspends like a wait for a signal, and the Runner wakes it when the child ends.

Durable, in this order:

1. planning records ``ChildRunStarted(node, child_run_id)`` in the parent's
   log; the id is :func:`child_run_id` (the parent's id and the component's
   name), so however often the parent is retried or recovered there is one child;
2. the parent's worker creates the child (``create_run`` is idempotent by id:
   a second try returns the existing run) and asks the Runner to start it;
   every later turn of the parent does the same for each open child, so a
   crash between 1 and 2 only delays the child;
3. when the child ends the Runner wakes the parent (a Runner that died in
   between wakes every parent waiting for a child when it starts again); the
   parent's worker reads the child's end from the store and records
   ``ChildRunEnded`` with its status and result or error.

A child that fails or is cancelled fails the component with
:class:`~runner.errors.ChildRunFailed`, without retries: the child had its own
steps' retries, and its id is fixed. Fix the cause, resume the child
(``client.resume(child_id)``), then resume the parent, which picks up the
child's result. ``on_failure="skip"`` skips the component instead. Cancelling
the parent cancels its open children (and theirs, recursively).
Pure: no Ray, no I/O.
"""

from __future__ import annotations

import hashlib

from runner.errors import ChildRunFailed
from runner.events import ChildRunEnded, ErrorInfo, Event, RunCancelled, RunCompleted, RunFailed
from runner.serialization import error_info
from runner.store import RUN_ID, RunStatus

CHILD_WAIT_REASON = "waiting for child run"
"""How a RunSuspended's reason starts when the run waits for a child (a Runner start wakes it)."""

_MAX_ID = 128


def child_run_id(parent_run_id: str, component: str) -> str:
    """The id of the child run that ``component`` of run ``parent_run_id`` starts: the same every
    time. ``parent:component`` while that is a valid run id, else a digest of it."""
    plain = f"{parent_run_id}:{component}"
    if len(plain) <= _MAX_ID and RUN_ID.match(plain):
        return plain
    digest = hashlib.sha256(plain.encode()).hexdigest()[:32]
    return f"{component[: _MAX_ID - 40]}-child-{digest}"


def child_ended(node: str, child_run_id: str, last: Event | None, status: RunStatus) -> ChildRunEnded:
    """The event recording that the child ended, from its ``status`` and its log's ``last`` event."""
    if isinstance(last, RunCompleted):
        return ChildRunEnded(node=node, child_run_id=child_run_id, status=RunStatus.COMPLETED.value, result=last.result)
    detail = ""
    if isinstance(last, RunFailed):
        detail = str(last.error)
    elif isinstance(last, RunCancelled):
        detail = last.reason
    return child_failed(node, child_run_id, status.value, detail)


def child_failed(node: str, child_run_id: str, status: str, detail: str) -> ChildRunEnded:
    """A ChildRunEnded for a child that ended without a result (or could not be created)."""
    error: ErrorInfo = error_info(ChildRunFailed(node, child_run_id, status, detail))
    error = ErrorInfo(type=error.type, message=error.message, non_retryable=True, pickled=error.pickled)
    return ChildRunEnded(node=node, child_run_id=child_run_id, status=status, error=error)
