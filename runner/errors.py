"""The exception hierarchy of ray-runner.

Every error the library raises on purpose derives from :class:`RunnerError`.
Each one survives a pickle round trip (Ray pickles exceptions between
processes), so multi-argument errors define ``__reduce__``.
"""

from __future__ import annotations

import errno
import time
from typing import Any


class RunnerError(Exception):
    """Base class of every error raised by ray-runner."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)


class InvalidArgument(RunnerError, ValueError):
    """A public function was called with an argument it cannot accept."""


class DefinitionError(RunnerError):
    """A workflow definition is invalid; ``component`` names the culprit."""

    def __init__(self, component: str | None, message: str) -> None:
        self.component = component
        self.message = message
        where = f"component {component!r}: " if component else ""
        super().__init__(f"{where}{message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.component, self.message))


class InvalidInput(RunnerError, ValueError):
    """A run's input was rejected; ``problems`` maps each field to its reason."""

    def __init__(self, workflow: str, problems: dict[str, str]) -> None:
        self.workflow = workflow
        self.problems = dict(problems)
        listed = "; ".join(f"{field}: {reason}" for field, reason in sorted(self.problems.items()))
        super().__init__(f"input for workflow {workflow!r} rejected ({listed}); nothing was stored")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.workflow, self.problems))


class StoreError(RunnerError):
    """The store could not do what was asked; the adapter's error is chained."""


class StoreLocked(StoreError):
    """The store's file is held by another process (DuckDB admits one writing process per file)."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"store file {path} is in use by another process ({detail}). DuckDB lets one process open a file "
            "for writing: go through the cluster that holds it (connect to its address), or stop that process first"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.detail))


class StoreCorrupt(StoreError):
    """The store's file is not a database the adapter can read (another format, truncated, damaged)."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"store file {path} is not a readable DuckDB database ({detail}); "
            "point the store at another file or move this one away"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.detail))


class StorePathInvalid(StoreError):
    """The store's path cannot hold a store file: it is a directory, or its directory cannot be made."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"store path {path} cannot be used ({detail}); give the path of a DuckDB file "
            "in a directory you can write to, e.g. duckdb:///./runs.duckdb"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.detail))


class StoreWriteFailed(StoreError):
    """The store's file could not be written: the disk is full, the quota is spent, or the file or
    its file system is not writable. Nothing of the failed write was stored; a run whose writes fail
    is retried, then paused (not failed), so it goes on with nothing lost once the store can write."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"store file {path} cannot be written ({detail}); nothing of this write was stored. "
            "Free disk space or fix the file's permissions (or its file system's), then call again; "
            "runs paused by it go on with `runner resume RUN_ID` or client.resume(run_id)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.detail))


WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
"""The ``OSError`` numbers that say a file cannot be written: no space, quota spent, read-only, no permission."""


def write_failure(path: str, exc: OSError) -> StoreWriteFailed:
    """The StoreWriteFailed for an ``OSError`` raised while writing the store at ``path``."""
    name = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StoreWriteFailed(path, f"{name}: {reason}" if name else reason)


class RunNotFound(StoreError, KeyError):
    """No run with this id exists in the store."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(run_id)

    def __str__(self) -> str:
        return f"no run {self.run_id!r} in the store; list runs with `runner list` or client.list_runs()"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id,))


class FactNotFound(StoreError, KeyError):
    """No fact with this content hash is stored."""

    def __init__(self, fact_hash: str) -> None:
        self.fact_hash = fact_hash
        super().__init__(fact_hash)

    def __str__(self) -> str:
        return f"no fact {self.fact_hash!r} in the store; was it saved with save_fact() first?"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fact_hash,))


class FencedError(StoreError):
    """A write used a lease that is no longer the run's current lease.

    The writer is a zombie: another owner took the run over. It must stop
    at once and never retry the write.
    """

    def __init__(self, run_id: str, lease: int, current: int | None) -> None:
        self.run_id = run_id
        self.lease = lease
        self.current = current
        super().__init__(
            f"run {run_id!r}: lease {lease} is fenced off (current lease: {current}); "
            "another owner holds this run, so this writer must stop"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.lease, self.current))


class AppendConflict(StoreError):
    """An append expected to follow event ``after_seq``, but the log holds other events there.

    Another writer appended under the same lease, or the writer's idea of the log is wrong:
    it must stop and take the run over again (recover from the store), never retry the write."""

    def __init__(self, run_id: str, after_seq: int, last_seq: int) -> None:
        self.run_id = run_id
        self.after_seq = after_seq
        self.last_seq = last_seq
        super().__init__(
            f"run {run_id!r}: an append expected to follow event {after_seq}, but the log ends at event "
            f"{last_seq} with other events; this writer must stop and recover the run from the store"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.after_seq, self.last_seq))


class LeaseHeld(StoreError):
    """A lease was asked for while another owner holds an unexpired one."""

    def __init__(self, run_id: str, owner: str, expires_at: float) -> None:
        self.run_id = run_id
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(
            f"run {run_id!r} is leased by {owner!r} until {expires_at:.3f} (unix time); "
            "wait for it to expire or take it over with force=True if that owner is dead"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.owner, self.expires_at))


class IllegalTransition(StoreError):
    """A run was asked to move between two statuses the lifecycle forbids."""

    def __init__(self, run_id: str, from_status: str, to_status: str) -> None:
        self.run_id = run_id
        self.from_status = from_status
        self.to_status = to_status
        super().__init__(
            f"run {run_id!r} cannot go from {from_status!r} to {to_status!r}; "
            "see runner.store.TRANSITIONS for the legal moves"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.from_status, self.to_status))


class ResumeRefused(IllegalTransition):
    """``resume`` of a run that is neither paused, failed nor cancelled (a running or completed run)."""

    def __init__(self, run_id: str, from_status: str, to_status: str = "running") -> None:
        IllegalTransition.__init__(self, run_id, from_status, to_status)
        ended = "; replay or fork a completed run to run it again" if from_status == "completed" else ""
        self.args = (
            f"run {run_id!r} cannot be resumed from {from_status!r} to {to_status!r}: "
            f"resume takes a paused, failed or cancelled run{ended}",
        )


class DefinitionUnavailable(RunnerError):
    """A run's stored definition cannot be loaded here, so it cannot be driven (e.g. resumed)."""

    def __init__(self, run_id: str, cause: str) -> None:
        self.run_id = run_id
        self.cause = cause
        super().__init__(
            f"run {run_id!r}: its workflow definition cannot be loaded ({cause}); make what it imports "
            "importable on the cluster (install the package, fix the path), then resume it again"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.cause))


class RunClosed(StoreError):
    """A write was sent to a run that has ended (completed, failed or cancelled)."""

    def __init__(self, run_id: str, status: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(f"run {run_id!r} is {status} and accepts no more writes; replay or fork it to run again")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.status))


class FoldError(RunnerError):
    """An event log cannot be folded: a gap, an unknown node, an impossible event."""


class SnapshotMismatch(FoldError):
    """A snapshot was taken for another definition or run; fold the full log instead."""


class WorkflowFailed(RunnerError):
    """A run ended as failed; the step's own exception, when known, is chained."""

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(
            f"run {run_id!r} failed: {reason}; read its events for the step's error, fix it, then replay or fork the run"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.reason))


class RunWasCancelled(WorkflowFailed):
    """``result()`` of a run that was cancelled."""

    def __init__(self, run_id: str, reason: str = "cancelled") -> None:
        self.run_id = run_id
        self.reason = reason
        RunnerError.__init__(self, f"run {run_id!r} was cancelled ({reason}); replay it to run it again")


class NonRetryableError(RunnerError):
    """Raise from a step to fail it at once, skipping any retries left."""


class StepTimeout(RunnerError):
    """A step attempt ran longer than its ``timeout`` and was cancelled."""

    def __init__(self, node: str, timeout: float) -> None:
        self.node = node
        self.timeout = timeout
        super().__init__(
            f"step {node!r} ran longer than its timeout of {timeout:g}s and was cancelled; "
            "raise its timeout= (in the definition or a submit-time policy) if it needs longer"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.node, self.timeout))


class DeadlineExceeded(NonRetryableError):
    """A step went past its ``deadline``: seconds from its first start, across every attempt and
    retry. The attempt running then was cancelled and no retry follows."""

    def __init__(self, node: str, deadline: float) -> None:
        self.node = node
        self.deadline = deadline
        super().__init__(
            f"step {node!r} passed its deadline of {deadline:g}s from its first start and was stopped "
            "(no attempt or retry runs after it); raise its deadline= (in the definition or a "
            "submit-time policy) if it needs longer"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.node, self.deadline))


class RunDeadlineExceeded(DeadlineExceeded):
    """A run went past the ``deadline`` given at submit: it failed, its running steps were cancelled."""

    def __init__(self, run_id: str, deadline_at: float) -> None:
        self.run_id = run_id
        self.deadline_at = deadline_at
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(deadline_at))
        Exception.__init__(
            self,
            f"run {run_id!r} passed its deadline ({when}, epoch {deadline_at:.3f}) and failed; its running "
            "steps were cancelled; submit it with a later deadline=, or resume it (a resumed run has no deadline)",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.deadline_at))


class UnknownPolicyTarget(InvalidArgument):
    """Submit-time policies named steps or patterns that match no step of the workflow."""

    def __init__(self, workflow: str, steps: list[str], known: list[str]) -> None:
        self.workflow = workflow
        self.steps = list(steps)
        self.known = list(known)
        super().__init__(
            f"policies= for workflow {workflow!r} name {self.steps}, which match no step of it "
            f"(its steps: {self.known}); fix the names or patterns "
            "(or use 'default'); nothing was stored"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.workflow, self.steps, self.known))


class InvalidCron(InvalidArgument):
    """A schedule's ``cron=`` text is not a cron expression."""

    def __init__(self, schedule: str, cron: str, detail: str) -> None:
        self.schedule = schedule
        self.cron = cron
        self.detail = detail
        super().__init__(
            f"schedule {schedule!r}: cron={cron!r} is not a valid cron expression ({detail}); give five "
            "fields (minute hour day-of-month month day-of-week), or six with seconds last; nothing was stored"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.schedule, self.cron, self.detail))


class ScheduleNotFound(RunnerError, KeyError):
    """No schedule of that name is stored."""

    def __init__(self, schedule: str) -> None:
        self.schedule = schedule
        super().__init__(schedule)

    def __str__(self) -> str:
        return (
            f"no schedule {self.schedule!r} in the store; list them with `runner schedules` or client.list_schedules()"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.schedule,))


class ChildRunFailed(RunnerError):
    """A child run (``Workflow.child_run``) ended without a result: it failed or was cancelled."""

    def __init__(self, component: str, child_run_id: str, status: str, detail: str) -> None:
        self.component = component
        self.child_run_id = child_run_id
        self.status = status
        self.detail = detail
        super().__init__(
            f"component {component!r}: child run {child_run_id!r} {status}"
            + (f" ({detail})" if detail else "")
            + f"; fix the cause, `runner resume {child_run_id}`, then resume this run"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.component, self.child_run_id, self.status, self.detail))


class StepLostError(RunnerError):
    """A step's task was lost to the system (its node or worker process died, or it was killed
    for memory) more often than ``WorkerConfig.system_retries`` allows."""

    def __init__(self, step: str, losses: int, cause: str) -> None:
        self.step = step
        self.losses = losses
        self.cause = cause
        super().__init__(
            f"step {step} was lost to the system {losses} times (its node or worker process died or was "
            f"killed; last: {cause}), more than WorkerConfig.system_retries allows: the cluster kept failing "
            "under it, not the step. Check the nodes' health and memory (or raise system_retries), then replay the run"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.step, self.losses, self.cause))


class ResultTimeout(RunnerError, TimeoutError):
    """A run did not end within the time a caller was willing to wait; it goes on running."""

    def __init__(self, run_id: str, timeout: float, status: str) -> None:
        self.run_id = run_id
        self.timeout = timeout
        self.status = status
        super().__init__(
            f"run {run_id!r} is still {status} after {timeout:g}s; it goes on running, "
            "call result() again later or cancel it"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.timeout, self.status))


class WorkerLost(RunnerError):
    """A run's worker died more often than the restart-intensity limit allows."""


class ReplayRefused(RunnerError):
    """A replay or fork would run an irreversible step again."""

    def __init__(self, run_id: str, steps: list[str]) -> None:
        self.run_id = run_id
        self.steps = list(steps)
        super().__init__(
            f"run {run_id!r} already ran irreversible step(s) {self.steps}; "
            "pass allow_irreversible=True (CLI: --allow-irreversible) to run them again anyway"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.steps))


class RunnerUnavailable(RunnerError):
    """The Runner (or its Store actor) stayed unreachable longer than a call waits for a restart."""


class ConfigMismatch(RunnerError):
    """``connect()`` asked for settings that differ from those of the namespace's running Runner."""

    def __init__(self, namespace: str, differences: dict[str, str]) -> None:
        self.namespace = namespace
        self.differences = dict(differences)  # each differing setting -> "running X, asked Y"
        listed = "; ".join(f"{name}: {how}" for name, how in self.differences.items())
        super().__init__(
            f"the Runner of namespace {namespace!r} runs with other settings ({listed}); connect without "
            "config= and max_workers= to use the running Runner as it is, or use another namespace "
            "(or stop that Runner first)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.namespace, self.differences))


class ApprovalRejected(RunnerError):
    """A run failed because approval ``approval`` was rejected (its workflow says ``on_reject="fail"``)."""

    def __init__(self, approval: str, by: str, comment: str = "") -> None:
        self.approval = approval
        self.by = by
        self.comment = comment
        why = f": {comment}" if comment else ""
        super().__init__(f"approval {approval!r} was rejected by {by}{why}; replay or fork the run to ask again")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.approval, self.by, self.comment))


class ApprovalAlreadyDecided(RunnerError):
    """A second, different decision for an approval: the first one recorded stands."""

    def __init__(self, run_id: str, approval: str, verb: str, by: str) -> None:
        self.run_id = run_id
        self.approval = approval
        self.verb = verb
        self.by = by
        super().__init__(
            f"approval {approval!r} of run {run_id!r} was already {verb} by {by}; a decision once "
            "recorded stands (replay or fork the run to decide again)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.approval, self.verb, self.by))


class UnknownApproval(InvalidArgument):
    """approve/reject named an approval the run's workflow does not have."""

    def __init__(self, run_id: str, approval: str, known: list[str]) -> None:
        self.run_id = run_id
        self.approval = approval
        self.known = list(known)
        has = self.known if self.known else "none"
        super().__init__(
            f"run {run_id!r} has no approval named {approval!r} (its approvals: {has}); nothing was stored"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.approval, self.known))


class QueueConfigError(InvalidArgument):
    """A queue, or a submit's queue arguments, were given a value they cannot take; ``field``
    names the culprit (``concurrency``, ``rate.limit``, ``queue_key`` ...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}; nothing was stored")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.message))


class UnknownQueue(InvalidArgument):
    """A submit named a queue the Runner's config does not declare, while it takes declared queues only."""

    def __init__(self, queue: str, known: list[str]) -> None:
        self.queue = queue
        self.known = list(known)
        has = self.known if self.known else "none"
        super().__init__(
            f"queue: no queue named {queue!r} is declared (declared: {has}); declare it in "
            "RunnerConfig(queues=[Queue(...)]) or set RunnerConfig(declared_queues_only=False); nothing was stored"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.queue, self.known))


class QueueFull(RunnerError):
    """A submit would take queue ``queue`` over its ``max_pending`` runs waiting to start."""

    def __init__(self, queue: str, max_pending: int, pending: int) -> None:
        self.queue = queue
        self.max_pending = max_pending
        self.pending = pending
        super().__init__(
            f"queue {queue!r} is full: {pending} run(s) wait to start and its max_pending is {max_pending}; "
            "nothing was stored; submit again once runs have started, or raise max_pending"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.queue, self.max_pending, self.pending))


class JobAddressUnreachable(RunnerUnavailable):
    """A Ray Jobs address (``http://head:8265``) did not answer: nothing was submitted or stored."""

    def __init__(self, address: str, cause: str) -> None:
        self.address = address
        self.cause = cause
        super().__init__(
            f"the Ray cluster at {address} did not answer ({cause}); nothing was submitted. Check that the "
            "head node runs Ray's dashboard (`ray start --head --dashboard-host=0.0.0.0`, port 8265 by "
            "default) and that this machine can reach that port; with token authentication on, set "
            "RAY_AUTH_TOKEN"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.address, self.cause))


class JobFailed(RunnerError):
    """A command sent to a cluster as a Ray job ended without success (its output says why)."""

    def __init__(self, job_id: str, status: str, output: str) -> None:
        self.job_id = job_id
        self.status = status
        self.output = output
        last = output.strip().splitlines()[-1] if output.strip() else "(no output)"
        super().__init__(f"Ray job {job_id} ended {status}: {last} (full log: `ray job logs {job_id} --address ...`)")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job_id, self.status, self.output))
