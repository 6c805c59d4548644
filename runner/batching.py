"""CallBatcher: one Store actor call at a time per worker, carrying every run's request.

A worker drives many runs on one event loop. Each run appends its cycle's
events (and, when it starts, takes its run over) and waits for the answer
before going on. Sent one by one, those requests cost one actor call each,
and on a small machine the call costs as much as the commit. A batcher sends
the first request at once; requests made while that call is out wait and go
together in the next call (``StoreActor.open_turns``; ``append_batch`` for callers
that need no ticket).
Each caller still gets its own answer or its own error: one fenced run does
not fail the others.

A :class:`SubmitBatcher` batches the same way but hands each request a ticket
of its own (an ObjectRef) as soon as its call is sent, before the call returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")
Ticket = TypeVar("Ticket")

MAX_CALL = 512  # requests per Store actor call


class Submission(Generic[Answer, Ticket]):
    """One request given to a :class:`SubmitBatcher`: ``sent`` resolves with the request's own
    ticket once the call carrying it has gone out (a Ray ObjectRef that later tasks can depend
    on), ``answer`` with its answer (or its error) once that call has returned."""

    __slots__ = ("sent", "answer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.sent: asyncio.Future[Ticket] = loop.create_future()
        self.answer: asyncio.Future[Answer] = loop.create_future()


class SubmitBatcher(Generic[Request, Answer, Ticket]):
    """A :class:`CallBatcher` whose calls give each request a ticket of its own as soon as they
    are sent, before they return: ``send`` makes the call and returns one ticket per request and
    an awaitable of all the answers (or exceptions), in order.

    The worker's appends go through one: a run dispatches the tasks its append unlocks with the
    append's ticket (an ObjectRef) as their dependency, so Ray starts them once the commit has
    returned, while the run itself waits for the answer."""

    def __init__(self, send: Callable[[list[Request]], tuple[list[Ticket], Awaitable[list[Any]]]]) -> None:
        self._send_call = send
        self._queue: list[tuple[Request, Submission[Answer, Ticket]]] = []
        self._sending = False
        self.calls = 0
        self.requests = 0

    def submit(self, request: Request) -> Submission[Answer, Ticket]:
        """Queue ``request``; it goes in the next call (at once if no call is out)."""
        loop = asyncio.get_running_loop()
        submission: Submission[Answer, Ticket] = Submission(loop)
        self._queue.append((request, submission))
        if not self._sending:
            self._sending = True
            loop.create_task(self._send())
        return submission

    async def _send(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_CALL], self._queue[MAX_CALL:]
                self.calls += 1
                self.requests += len(batch)
                answers: list[Any]
                try:
                    tickets, returned = self._send_call([request for request, _ in batch])
                    for (_, submission), ticket in zip(batch, tickets, strict=True):
                        if not submission.sent.done():
                            submission.sent.set_result(ticket)
                    answers = list(await returned)
                except Exception as exc:  # the call failed (store actor lost): every caller learns it
                    answers = [exc] * len(batch)
                if len(answers) != len(batch):
                    error = RuntimeError(f"the store answered {len(answers)} of {len(batch)} requests")
                    answers = [error] * len(batch)
                for (_, submission), answer in zip(batch, answers, strict=True):
                    if not submission.sent.done():  # the call failed before it went out
                        _settle(submission.sent, answer)
                    _settle(submission.answer, answer)
        finally:
            self._sending = False


class CallBatcher(Generic[Request, Answer]):
    """Coalesces requests into calls of ``send`` (a list of requests -> a list of answers or
    exceptions, in order): a :class:`SubmitBatcher` whose callers need no ticket. Use from one
    event loop."""

    def __init__(self, send: Callable[[list[Request]], Awaitable[list[Any]]]) -> None:
        self._batcher: SubmitBatcher[Request, Answer, None] = SubmitBatcher(
            lambda requests: ([None] * len(requests), send(requests))
        )

    @property
    def calls(self) -> int:
        return self._batcher.calls

    @property
    def requests(self) -> int:
        return self._batcher.requests

    async def call(self, request: Request) -> Answer:
        """The answer to ``request``; the error the store gave for it is raised."""
        submission = self._batcher.submit(request)
        submission.sent.add_done_callback(_retrieved)  # its error, if any, is the answer's too
        return await submission.answer


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[Any], answer: Any) -> None:
    """Give ``future`` its answer (an exception is raised to its awaiter), unless it has one or was cancelled."""
    if future.done():
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
