"""CallBatcher: one Store actor call at a time per worker, carrying every run's request.

A worker drives many runs on one event loop. Each run appends its cycle's
events (and, when it starts, takes its run over) and waits for the answer
before going on. Sent one by one, those requests cost one actor call each,
and on a small machine the call costs as much as the commit. A batcher sends
the first request at once; requests made while that call is out wait and go
together in the next call (``StoreActor.append_batch``, ``open_turns``).
Each caller still gets its own answer or its own error: one fenced run does
not fail the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")

MAX_CALL = 512  # requests per Store actor call


class CallBatcher(Generic[Request, Answer]):
    """Coalesces requests into calls of ``send`` (a list of requests -> a list of answers or
    exceptions, in order). Use from one event loop."""

    def __init__(self, send: Callable[[list[Request]], Awaitable[list[Any]]]) -> None:
        self._send_call = send
        self._queue: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._sending = False
        self.calls = 0
        self.requests = 0

    async def call(self, request: Request) -> Answer:
        """The answer to ``request``; the error the store gave for it is raised."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().create_task(self._send())
        return await future

    async def _send(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_CALL], self._queue[MAX_CALL:]
                self.calls += 1
                self.requests += len(batch)
                answers: list[Any]
                try:
                    answers = list(await self._send_call([request for request, _ in batch]))
                except Exception as exc:  # the call itself failed (store actor lost): every caller learns it
                    answers = [exc] * len(batch)
                if len(answers) != len(batch):
                    error = RuntimeError(f"the store answered {len(answers)} of {len(batch)} requests")
                    answers = [error] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():  # its run was cancelled meanwhile
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._sending = False
