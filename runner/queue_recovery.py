"""Runner start: rebuild the queues' state (runner.queues) from the store.

Only declared queues have limits, so only their runs are read: the runs
waiting (pending, in the store's order), the runs holding a place (started and
not ended) and, for a rate limit, the first starts within its period (from the
run records' ``started_at``, ended runs included). Runs of undeclared queues
start as any pending run does: nothing limits them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from runner.queues import QueueBook, QueueTicket, Waiting
from runner.store import TERMINAL, RunFilter, RunStatus
from runner.store_handle import StoreHandle

_ALL = 1 << 62  # "no limit" for list_runs
_OPEN = tuple(status for status in RunStatus if status not in TERMINAL)


async def recover_queues(store: StoreHandle, book: QueueBook, clock: Callable[[], float] = time.time) -> None:
    """Fill ``book`` from the store: waiting runs, runs holding places, recent starts."""
    now = clock()
    for queue in book.declared.values():
        records = await store.list_runs(RunFilter(queue=queue.name, status=_OPEN, newest_first=False, limit=_ALL))
        for record in records:
            ticket = QueueTicket(queue=queue.name, key=record.queue_key, priority=record.priority)
            if record.status is RunStatus.PENDING:
                book.add(Waiting(run_id=record.run_id, ticket=ticket, created_at=record.created_at))
            else:
                book.started(record.run_id, ticket)
        if queue.rate is not None:
            recent = RunFilter(queue=queue.name, started_after=now - queue.rate.per, limit=_ALL)
            for record in await store.list_runs(recent):
                if record.started_at is not None:
                    book.counted_start(queue.name, record.started_at)
