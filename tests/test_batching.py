"""CallBatcher and SubmitBatcher: requests made while a call is out share the next call; each caller gets its
own answer (and, from a SubmitBatcher, its own ticket as soon as its call is sent)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from runner.batching import CallBatcher, SubmitBatcher


class _FakeStore:
    """Answers each request ``n`` with ``n * 10``, or a ValueError for negative ones; records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_call: Exception | None = None

    async def send(self, requests: list[int]) -> list[object]:
        self.calls.append(list(requests))
        await self.release.wait()
        if self.fail_call is not None:
            raise self.fail_call
        return [ValueError(f"bad {n}") if n < 0 else n * 10 for n in requests]


def test_requests_made_during_a_call_go_together_in_the_next_one() -> None:
    async def scenario() -> None:
        store = _FakeStore()
        batcher: CallBatcher[int, int] = CallBatcher(store.send)
        first = asyncio.ensure_future(batcher.call(1))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        later = [asyncio.ensure_future(batcher.call(n)) for n in (2, -3, 4)]
        await asyncio.sleep(0)
        assert store.calls == [[1]]  # the first goes at once, the others wait for it
        store.release.set()
        assert await first == 10
        assert await later[0] == 20 and await later[2] == 40
        with pytest.raises(ValueError, match="bad -3"):  # its own error, the others unaffected
            await later[1]
        assert store.calls == [[1], [2, -3, 4]]
        assert (batcher.calls, batcher.requests) == (2, 4)

    asyncio.run(scenario())


def test_a_failed_call_fails_every_request_it_carried_and_the_next_call_still_goes() -> None:
    async def scenario() -> None:
        store = _FakeStore()
        batcher: CallBatcher[int, int] = CallBatcher(store.send)
        store.fail_call = ConnectionError("store actor lost")
        calls = [asyncio.ensure_future(batcher.call(n)) for n in (1, 2)]
        store.release.set()
        for call in calls:
            with pytest.raises(ConnectionError):
                await call
        store.fail_call = None
        assert await batcher.call(5) == 50

    asyncio.run(scenario())


def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    async def scenario() -> None:
        store = _FakeStore()
        batcher: CallBatcher[int, int] = CallBatcher(store.send)
        keep = asyncio.ensure_future(batcher.call(1))
        drop = asyncio.ensure_future(batcher.call(2))
        await asyncio.sleep(0)
        drop.cancel()
        store.release.set()
        assert await keep == 10
        assert drop.cancelled()

    asyncio.run(scenario())


class _FakeTicketStore:
    """Like _FakeStore, but each call hands out its tickets (``"call#request"``) when it is sent."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_send: Exception | None = None
        self.fail_call: Exception | None = None

    def send(self, requests: list[int]) -> tuple[list[str], Awaitable[list[object]]]:
        if self.fail_send is not None:
            raise self.fail_send
        self.calls.append(list(requests))
        number = len(self.calls)
        return [f"{number}#{n}" for n in requests], self._answers(requests)

    async def _answers(self, requests: list[int]) -> list[object]:
        await self.release.wait()
        if self.fail_call is not None:
            raise self.fail_call
        return [ValueError(f"bad {n}") if n < 0 else n * 10 for n in requests]


def test_a_submission_gets_its_ticket_when_its_call_is_sent_before_the_answer() -> None:
    async def scenario() -> None:
        store = _FakeTicketStore()
        batcher: SubmitBatcher[int, int, str] = SubmitBatcher(store.send)
        first = batcher.submit(1)
        assert await first.sent == "1#1"
        assert not first.answer.done()  # the call has not returned: the ticket came first
        later = [batcher.submit(n) for n in (2, -3)]
        await asyncio.sleep(0)
        assert not any(s.sent.done() for s in later)  # they wait for the call that is out
        store.release.set()
        assert await first.answer == 10
        assert [await s.sent for s in later] == ["2#2", "2#-3"]  # together in the next call
        assert await later[0].answer == 20
        with pytest.raises(ValueError, match="bad -3"):  # its own error, the others unaffected
            await later[1].answer
        assert (batcher.calls, batcher.requests) == (2, 3)

    asyncio.run(scenario())


def test_a_call_that_fails_fails_its_submissions_and_one_never_sent_gets_no_ticket() -> None:
    async def scenario() -> None:
        store = _FakeTicketStore()
        batcher: SubmitBatcher[int, int, str] = SubmitBatcher(store.send)
        store.fail_call = ConnectionError("store actor lost")
        store.release.set()
        sent = batcher.submit(1)
        assert await sent.sent == "1#1"
        with pytest.raises(ConnectionError):
            await sent.answer
        store.fail_call, store.fail_send = None, ConnectionError("no store actor")
        unsent = batcher.submit(2)
        with pytest.raises(ConnectionError):  # no ticket: nothing may be dispatched on it
            await unsent.sent
        with pytest.raises(ConnectionError):
            await unsent.answer
        store.fail_send = None
        assert await batcher.submit(5).answer == 50

    asyncio.run(scenario())
