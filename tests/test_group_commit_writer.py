"""The Store actor's writer thread, without Ray: calls that arrive while a commit is in flight
go together in the next one, and the event loop keeps answering meanwhile."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from runner.events import FactProduced, RunSubmitted
from runner.store import AppendRequest, NewRun, Receipt
from runner.store_actor import StoreActor

WAIT_SECONDS = 30.0  # a bound for a hung test, never a timing expectation


class HeldCommit:
    """Stands in for the adapter: passes every call on, holds the first ``append_many`` until
    released, and records the size of each ``append_many``."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sizes: list[int] = []

    def append_many(self, requests: list[AppendRequest]) -> list[Any]:
        self.sizes.append(len(requests))
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.release.wait(WAIT_SECONDS)
        return list(self.store.append_many(requests))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _running(actor: StoreActor, *run_ids: str) -> dict[str, int]:
    leases = {}
    for run_id in run_ids:
        submitted = RunSubmitted(workflow="w", input=None, definition_hash="h", at=0.0)
        new = NewRun(run_id=run_id, workflow="w", definition=b"x", definition_hash="h", events=(submitted,))
        asyncio.run(actor.create_run(new))
        [turn] = asyncio.run(actor.open_turns([run_id], "me", 60.0))
        assert not isinstance(turn, Exception) and turn.lease is not None
        leases[run_id] = turn.lease.token
    return leases


def _fact(run_id: str, lease: int) -> AppendRequest:
    return AppendRequest(run_id=run_id, events=(FactProduced(node="a", value=1),), lease=lease)


async def _until(condition: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while not condition():
        assert loop.time() < deadline
        await asyncio.sleep(0.001)


def test_appends_that_arrive_during_a_commit_go_together_in_the_next_one() -> None:
    actor = StoreActor("memory://")
    leases = _running(actor, "a", "b", "c", "d")
    held = HeldCommit(actor._store)
    actor._store = held

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(actor.append_batch([_fact("a", leases["a"])]))
        await _until(held.entered.is_set)  # the first commit is in flight on the writer thread
        later = [asyncio.ensure_future(actor.append_batch([_fact(r, leases[r])])) for r in ("b", "c", "d")]
        record = asyncio.ensure_future(actor.get_run("a"))
        await asyncio.sleep(0.01)
        assert not record.done()  # the read waits behind the commit in flight ...
        news = await actor.submitted_since(None, 0, 0)  # ... while the loop goes on answering
        assert news.run_ids == ("a", "b", "c", "d")
        held.release.set()
        answers = [await first, *[await one for one in later]]
        assert (await record).last_seq == 2  # it sees the commit it waited for
        return answers

    answers = asyncio.run(scenario())
    assert held.sizes == [1, 3]  # three callers, one commit
    assert all(isinstance(answer, Receipt) and answer.first_seq == 2 for [answer] in answers)
