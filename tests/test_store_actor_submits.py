"""The Store actor's submit lane, its answer to callers waiting for runs to end, and how it tells
the Runner of new runs: without Ray, on one event loop, as the actor runs them."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from runner.errors import InvalidArgument, RunNotFound
from runner.events import FactProduced, RunCancelled, RunCompleted, RunSubmitted
from runner.store import AppendRequest, NewRun, RunStatus
from runner.store_actor import StoreActor


def _new(run_id: str, *, key: str | None = None) -> NewRun:
    submitted = RunSubmitted(workflow="w", input=None, definition_hash="h", at=0.0)
    return NewRun(
        run_id=run_id, workflow="w", definition=b"x", definition_hash="h", events=(submitted,), idempotency_key=key
    )


def _unstorable(run_id: str) -> NewRun:
    """A run whose input the store cannot serialize (a client checks this before sending it)."""
    submitted = RunSubmitted(workflow="w", input=threading.Lock(), definition_hash="h", at=0.0)
    return NewRun(run_id=run_id, workflow="w", definition=b"x", definition_hash="h", events=(submitted,))


class Recording:
    """Stands in for the adapter, passing every call on and noting the names of the writes."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)
        if name in ("create_runs", "append_many"):
            self.calls.append(name)
        return method


def _recorded(actor: StoreActor) -> Recording:
    recording = Recording(actor._store)
    actor._store = recording
    return recording


def _running(actor: StoreActor, run_id: str) -> int:
    """Store a run and take it over (it is running then): its lease token."""
    asyncio.run(actor.create_run(_new(run_id)))
    [turn] = asyncio.run(actor.open_turns([run_id], "me", 60.0))
    assert not isinstance(turn, Exception) and turn.lease is not None
    return turn.lease.token


def _end(run_id: str, lease: int, event: Any, status: RunStatus, after_seq: int | None = 1) -> AppendRequest:
    return AppendRequest(run_id=run_id, events=(event,), lease=lease, status=status, after_seq=after_seq)


def test_submits_that_come_with_appends_are_stored_first_in_one_commit() -> None:
    actor = StoreActor("memory://")
    lease = _running(actor, "busy")
    recording = _recorded(actor)

    async def together() -> tuple[Any, ...]:
        appends = actor.append_batch(
            [AppendRequest(run_id="busy", events=(FactProduced(node="a", value=1),), lease=lease, after_seq=1)]
        )
        return tuple(await asyncio.gather(appends, actor.create_run(_new("r1")), actor.create_run(_new("r2"))))

    receipts, first, second = asyncio.run(together())
    assert recording.calls == ["create_runs", "append_many"]  # all submits in one commit, before the appends
    assert [(r.first_seq, r.last_seq) for r in receipts] == [(2, 2)]
    assert (first[0].run_id, first[1], second[0].run_id, second[1]) == ("r1", True, "r2", True)


def test_each_caller_of_a_submit_commit_gets_its_own_answer_or_its_own_error() -> None:
    actor = StoreActor("memory://")
    asyncio.run(actor.create_run(_new("old", key="order-7")))

    async def together() -> list[Any]:
        calls = [
            actor.create_run(_new("fresh")),
            actor.create_run(_unstorable("bad")),
            actor.create_runs([_new("again", key="order-7"), _new("fresh-2")]),
        ]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    fresh, bad, keyed = asyncio.run(together())
    assert (fresh[0].run_id, fresh[1]) == ("fresh", True)
    assert isinstance(bad, InvalidArgument)
    assert [(record.run_id, created) for record, created in keyed] == [("old", False), ("fresh-2", True)]
    assert not actor.exists("again") and not actor.exists("bad")


def test_waiting_callers_get_record_and_last_event_when_a_commit_ends_the_run() -> None:
    actor = StoreActor("memory://")
    completed, cancelled = _running(actor, "done"), _running(actor, "stopped")

    async def scenario() -> list[Any]:
        waiting = asyncio.ensure_future(actor.wait_outcomes(["done", "stopped"], None))
        await asyncio.sleep(0)  # the waiter registers and finds both running
        assert not waiting.done()
        await actor.append_batch([_end("done", completed, RunCompleted(result=42), RunStatus.COMPLETED)])
        await asyncio.sleep(0)
        assert not waiting.done()  # one of the two has ended
        actor.transition("stopped", RunStatus.CANCELLING, cancelled)
        await asyncio.sleep(0)
        assert not waiting.done()  # cancelling has not ended it
        stop = _end("stopped", cancelled, RunCancelled(reason="no"), RunStatus.CANCELLED, after_seq=None)
        assert not isinstance((await actor.append_batch([stop]))[0], Exception)
        return await asyncio.wait_for(waiting, 5.0)

    outcomes = asyncio.run(scenario())
    assert [(record.run_id, record.status) for record, _ in outcomes] == [
        ("done", RunStatus.COMPLETED),
        ("stopped", RunStatus.CANCELLED),
    ]
    [(_, done_last), (_, stopped_last)] = outcomes
    assert done_last is not None and done_last.event == RunCompleted(result=42, at=done_last.event.at)
    assert stopped_last is not None and isinstance(stopped_last.event, RunCancelled)
    # an ended run is answered at once; an open one after the timeout, as it is; an unknown one raises
    [(record, _)] = asyncio.run(actor.wait_outcomes(["done"], None))
    assert record.status is RunStatus.COMPLETED
    _running(actor, "open")
    [(record, _)] = asyncio.run(actor.wait_outcomes(["open"], 0.01))
    assert record.status is RunStatus.RUNNING
    with pytest.raises(RunNotFound):
        asyncio.run(actor.wait_outcomes(["nope"], 0.01))


def test_the_runner_learns_of_every_new_run_in_order_once_it_is_stored() -> None:
    actor = StoreActor("memory://")

    async def scenario() -> None:
        first = await actor.submitted_since(None, 0, 0)
        assert first.run_ids == () and first.cursor == 0
        following = asyncio.ensure_future(actor.submitted_since(first.incarnation, first.cursor, 30.0))
        await asyncio.sleep(0)
        assert not following.done()  # nothing new yet: it waits
        await actor.create_runs([_new("a"), _new("b")])
        news = await asyncio.wait_for(following, 5.0)
        assert news.run_ids == ("a", "b") and news.cursor == 2
        await actor.create_run(_new("a"))  # stored already: not new
        await actor.create_run(_new("c"))
        later = await actor.submitted_since(news.incarnation, news.cursor, 0)
        assert later.run_ids == ("c",) and later.cursor == 3
        # a caller that knew another incarnation (this actor restarted) gets every run it stored
        again = await actor.submitted_since("an earlier one", 7, 0)
        assert again.run_ids == ("c",) and again.incarnation == first.incarnation

    asyncio.run(scenario())
