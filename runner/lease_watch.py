"""The Runner's watch over its workers: a worker that stops answering is found and reported.

Every :func:`runner.supervision.period` seconds it reads the leases of the
runs the pool's workers drive (one ``Store.leases`` call, no run records),
lets :func:`runner.supervision.judge` decide, probes the workers it is told to
(a ``ping`` they must answer within ``ANSWER_TIMEOUT``), and reports each lost
worker to ``on_lost`` once. What to do about a lost worker (kill it, restart
its runs) is the Runner's business.

:func:`answer_within` is how the Runner makes any call to a worker without
waiting forever on one that is frozen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from runner import supervision
from runner.pool import WorkerPool, WorkerSlot
from runner.store_handle import StoreHandle

if TYPE_CHECKING:
    from ray import ObjectRef

log = logging.getLogger("runner")

T = TypeVar("T")


async def answer_within(ref: ObjectRef[T], timeout: float) -> T | None:
    """The answer of a call to a worker; None if none came within ``timeout`` seconds or the
    worker is gone (the call's own error is logged, not raised)."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout)
    except asyncio.TimeoutError:
        return None
    except Exception as exc:
        log.debug("a worker did not answer: %s: %s", type(exc).__name__, exc)
        return None


class LeaseWatch:
    """Finds workers that stopped answering; ``on_lost(slot, reason)`` is called once for each."""

    def __init__(
        self,
        store: StoreHandle,
        pool: WorkerPool,
        lease_ttl: float,
        on_lost: Callable[[WorkerSlot, str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.pool = pool
        self.lease_ttl = lease_ttl
        self.on_lost = on_lost
        self._clock = clock
        self._steady_since = clock()  # since when the store has answered promptly
        self._probing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        every = supervision.period(self.lease_ttl)
        while True:
            await asyncio.sleep(every)
            try:
                await self.check()
            except Exception:
                log.exception("supervision: could not check the workers' leases")

    async def check(self) -> None:
        """One round: read the leases, judge, probe, report the lost."""
        drives = self.pool.drives()
        if not drives:
            return
        asked = self._clock()
        try:
            leases = await asyncio.wait_for(
                asyncio.wrap_future(self.store.leases([d.run_id for d in drives]).future()),
                supervision.period(self.lease_ttl) + supervision.ANSWER_TIMEOUT,
            )
        except Exception as exc:  # the store is down or slow: no lease is judged until it is steady again
            log.warning("supervision: the store did not answer (%s: %s)", type(exc).__name__, exc)
            self._steady_since = self._clock()
            return
        if self._clock() - asked > supervision.period(self.lease_ttl):
            self._steady_since = self._clock()  # a slow answer: the workers' renewals may have been as slow
        verdict = supervision.judge(
            drives,
            {lease.run_id: lease for lease in leases},
            now=asked,
            lease_ttl=self.lease_ttl,
            store_steady_for=asked - self._steady_since,
        )
        for worker_id in verdict.alive:
            slot = self.pool.slot_by_id(worker_id)
            if slot is not None:
                slot.seen_alive = True
        for worker_id, reason in verdict.lost.items():
            self._report(worker_id, reason)
        for worker_id in verdict.probe - self._probing:
            slot = self.pool.slot_by_id(worker_id)
            if slot is not None:
                self._probing.add(worker_id)
                asyncio.get_running_loop().create_task(self._probe(slot))

    async def _probe(self, slot: WorkerSlot) -> None:
        try:
            if await answer_within(slot.handle.ping.remote(), supervision.ANSWER_TIMEOUT) is not None:
                slot.seen_alive = True
            else:
                self._report(slot.worker_id, supervision.unanswered(slot.worker_id, supervision.ANSWER_TIMEOUT))
        finally:
            self._probing.discard(slot.worker_id)

    def _report(self, worker_id: str, reason: str) -> None:
        slot = self.pool.slot_by_id(worker_id)
        if slot is not None:  # not retired already
            log.warning("worker %s is lost: %s", worker_id, reason)
            self.on_lost(slot, reason)
