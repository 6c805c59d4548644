"""Futures keyed by run id, for callers waiting on something to happen to a run
(its end, or the end of a worker's turn with it)."""

from __future__ import annotations

import asyncio


class Waiters:
    def __init__(self) -> None:
        self._futures: dict[str, list[asyncio.Future[None]]] = {}

    def add(self, run_id: str) -> asyncio.Future[None]:
        """A future that is done once :meth:`wake` is called for ``run_id``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(run_id, []).append(future)
        return future

    def remove(self, run_id: str, future: asyncio.Future[None]) -> None:
        """Stop waiting with ``future`` (the caller gave up or was woken)."""
        futures = self._futures.get(run_id, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            self._futures.pop(run_id, None)

    def wake(self, run_id: str) -> None:
        for future in self._futures.pop(run_id, []):
            if not future.done():
                future.set_result(None)
