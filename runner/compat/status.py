"""Ray Workflows' ``WorkflowStatus`` and how the native run statuses map onto it. Pure.

| native RunStatus | WorkflowStatus | why                                                       |
|------------------|----------------|-----------------------------------------------------------|
| pending          | PENDING        | stored, waiting for a worker                              |
| running          | RUNNING        |                                                           |
| suspended        | RUNNING        | waiting for an event or a timer: still in progress        |
| paused           | RESUMABLE      | stopped with nothing lost; ``resume`` goes on             |
| cancelling       | CANCELED       | its running steps are being cancelled                     |
| cancelled        | CANCELED       |                                                           |
| completed        | SUCCESSFUL     |                                                           |
| continued        | SUCCESSFUL     | ended by starting its successor (not made by Ray DAGs)    |
| failed           | FAILED         | ``resume`` retries what failed and keeps every result     |
| (no such run)    | NONE           |                                                           |

Ray Workflows called a run RESUMABLE when its cluster died under it; here the
Runner resumes such runs by itself when it starts, so they show as RUNNING.
"""

from __future__ import annotations

import enum

from runner.errors import InvalidArgument
from runner.store import RunStatus


class WorkflowStatus(str, enum.Enum):
    """A Ray Workflows run status (values are Ray's strings)."""

    NONE = "NONE"
    RUNNING = "RUNNING"
    CANCELED = "CANCELED"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    RESUMABLE = "RESUMABLE"
    PENDING = "PENDING"


NATIVE_TO_RAY: dict[RunStatus, WorkflowStatus] = {
    RunStatus.PENDING: WorkflowStatus.PENDING,
    RunStatus.RUNNING: WorkflowStatus.RUNNING,
    RunStatus.SUSPENDED: WorkflowStatus.RUNNING,
    RunStatus.PAUSED: WorkflowStatus.RESUMABLE,
    RunStatus.CANCELLING: WorkflowStatus.CANCELED,
    RunStatus.CANCELLED: WorkflowStatus.CANCELED,
    RunStatus.COMPLETED: WorkflowStatus.SUCCESSFUL,
    RunStatus.CONTINUED: WorkflowStatus.SUCCESSFUL,
    RunStatus.FAILED: WorkflowStatus.FAILED,
}


def workflow_status(status: RunStatus) -> WorkflowStatus:
    return NATIVE_TO_RAY[status]


def native_statuses(wanted: set[WorkflowStatus]) -> tuple[RunStatus, ...]:
    """The native statuses that show as any of ``wanted``."""
    return tuple(native for native, shown in NATIVE_TO_RAY.items() if shown in wanted)


def parse_status_filter(value: object) -> set[WorkflowStatus]:
    """``list_all``'s filter (a status, its name, or a set of them; None: every status) as a set."""
    if value is None:
        return set(WorkflowStatus) - {WorkflowStatus.NONE}
    items = value if isinstance(value, (set, frozenset, list, tuple)) else [value]
    wanted: set[WorkflowStatus] = set()
    for item in items:
        try:
            wanted.add(WorkflowStatus(item))
        except ValueError:
            names = ", ".join(s.value for s in WorkflowStatus)
            raise InvalidArgument(f"status_filter takes WorkflowStatus values ({names}), got {item!r}") from None
    return wanted
