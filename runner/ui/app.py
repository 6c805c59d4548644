"""The web view's routes (Starlette): run list, run page, facts, polling, actions, metrics.

Reads go through a :class:`~runner.reader.StoreReader` (the Store actor while a
cluster holds the store, else the DuckDB file read-only). Actions need a
:class:`~runner.client.Client` and ``allow_actions``; otherwise every POST
answers 403 and the pages draw no buttons.

Served under a path prefix (a Ray Serve route prefix, or any proxy that sets
the ASGI ``root_path``), the pages' links start with that prefix.

Live updates are polling: a page whose run is still going asks a small JSON
endpoint once a second (``/api/runs/{id}/version``: the run's cursor and
status, one ``get_run``) and reloads its ``<main>`` only when that changed.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from runner import serialization
from runner.errors import InvalidArgument, RunnerError, RunNotFound
from runner.reader import ActorStoreReader, StoreReader
from runner.store import RunFilter, as_status
from runner.ui import access, pages
from runner.ui.actions import Action, perform
from runner.ui.payloads import MAX_FACT_CHARS, truncate
from runner.ui.queries import Cursor, RunQueries, RunQuery
from runner.ui.run_view import read_run
from runner.ui.store_metrics import metrics_text

if TYPE_CHECKING:
    from runner.client import Client
    from runner.store_actor import CommitStats

STATIC = Path(__file__).with_name("static")
MetricsSource = Callable[[], str]


class UiApp:
    """The routes over one reader (and, for actions, one client)."""

    def __init__(
        self,
        reader: StoreReader,
        *,
        client: Client | None = None,
        allow_actions: bool = False,
        token: str | None = None,
        metrics: MetricsSource | None = None,
    ) -> None:
        if allow_actions and client is None:
            raise InvalidArgument("actions need a connected client: ui(client=..., allow_actions=True)")
        self.reader = reader
        self.queries = RunQueries(reader)
        self.client = client
        self.allow_actions = allow_actions
        self.token = token
        self.metrics = metrics
        self.action_key = secrets.token_urlsafe(16)  # forms carry it: another site cannot post to this one
        self.app = Starlette(
            routes=[
                Route("/", self.list_runs),
                Route("/runs/{run_id:path}/actions/{action}", self.act, methods=["POST"]),
                Route("/runs/{run_id:path}", self.show_run),
                Route("/facts/{fact_hash}", self.show_fact),
                Route("/api/runs/version", self.list_version),
                Route("/api/runs/{run_id:path}/version", self.run_version),
                Route("/metrics", self.show_metrics),
                Mount("/static", StaticFiles(directory=STATIC), name="static"),
            ],
            middleware=[Middleware(BaseHTTPMiddleware, dispatch=self._check_token)],
            exception_handlers={RunNotFound: self._not_found, InvalidArgument: self._bad_request},
        )

    # ----------------------------------------------------------------- access
    async def _check_token(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not self.token:
            return await call_next(request)
        presented = access.presented_token(request.headers, request.query_params, request.cookies)
        if not access.token_matches(self.token, presented):
            return PlainTextResponse("a token is needed: add ?token=... or an Authorization: Bearer header", 401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(access.COOKIE, self.token, httponly=True, samesite="strict")
        return response

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        body = f"<h1>Not found</h1><p>{_text(exc)}</p>"
        return HTMLResponse(pages.frame("Not found", body, root=_root(request)), 404)

    async def _bad_request(self, request: Request, exc: Exception) -> Response:
        body = f"<h1>Bad request</h1><p>{_text(exc)}</p>"
        return HTMLResponse(pages.frame("Bad request", body, root=_root(request)), 400)

    # ------------------------------------------------------------------ pages
    def list_runs(self, request: Request) -> Response:
        params = request.query_params
        cursor_text = params.get("cursor")
        query = RunQuery(
            statuses=tuple(as_status(s) for s in params.getlist("status")),
            workflow=params.get("workflow") or None,
            created_after=_time(params.get("after"), "after"),
            created_before=_time(params.get("before"), "before"),
            metadata_key=params.get("meta") or None,
            after=Cursor.decode(cursor_text) if cursor_text else None,
            limit=int(params.get("limit", "50") or 50),
        )
        page = self.queries.page(query)
        first_page = cursor_text is None
        html = pages.list_page(
            page,
            query,
            self.queries.workflows(),
            read_only=not self.allow_actions,
            first_page=first_page,
            version=self._list_version() if first_page else "",
            root=_root(request),
        )
        return HTMLResponse(html)

    def show_run(self, request: Request) -> Response:
        view = read_run(self.reader, self.queries, request.path_params["run_id"])
        html = pages.run_page(
            view,
            read_only=not self.allow_actions,
            action_key=self.action_key,
            notice=request.query_params.get("notice", ""),
            root=_root(request),
        )
        return HTMLResponse(html)

    def show_fact(self, request: Request) -> Response:
        fact_hash = request.path_params["fact_hash"]
        blob = self.reader.load_fact(fact_hash)
        try:
            text = repr(serialization.loads(blob))
        except Exception as exc:  # the value's classes cannot be imported in this process
            text = f"({len(blob):,} bytes that cannot be unpickled here: {type(exc).__name__}: {exc})"
        return PlainTextResponse(truncate(text, MAX_FACT_CHARS))

    # ---------------------------------------------------------------- polling
    def list_version(self, request: Request) -> Response:
        return JSONResponse({"version": self._list_version()})

    def _list_version(self) -> str:
        """Changes whenever runs move. Through the Store actor: its commit counters (kept in
        memory, so a poll costs the store no query); from a file: the newest ``updated_at`` and
        the count."""
        if isinstance(self.reader, ActorStoreReader):
            stats: CommitStats = self.reader.calls.call(lambda store: store.stats())
            return f"{stats.commits}:{stats.batches}:{stats.events}"
        if self.queries.columns():
            _, rows = self.reader.sql("SELECT max(updated_at), count(*) FROM runs")
            newest, count = rows[0]
            return f"{newest}:{count}"
        records = self.reader.list_runs(RunFilter(limit=1))
        return f"{records[0].updated_at}:{records[0].run_id}" if records else "0"

    def run_version(self, request: Request) -> Response:
        record = self.reader.get_run(request.path_params["run_id"])
        return JSONResponse({"version": pages.run_version(record), "ended": record.status.is_terminal})

    def show_metrics(self, request: Request) -> Response:
        text = self.metrics() if self.metrics is not None else metrics_text(self.queries, self.client)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    # ---------------------------------------------------------------- actions
    async def act(self, request: Request) -> Response:
        if not self.allow_actions or self.client is None:
            return PlainTextResponse("this web view is read-only; start it with --allow-actions", 403)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        if not secrets.compare_digest(form.get("key", ""), self.action_key):
            return PlainTextResponse("the form is stale or from another site; reload the run page", 403)
        try:
            action = Action(request.path_params["action"])
        except ValueError:
            return PlainTextResponse(f"no action {request.path_params['action']!r}", 404)
        client = self.client
        run_id = request.path_params["run_id"]
        try:
            done = await run_in_threadpool(perform, client, run_id, action, form)
        except RunNotFound:
            raise
        except RunnerError as exc:
            body = f"<h1>Refused</h1><p>{_text(exc)}</p>"
            return HTMLResponse(pages.frame("Refused", body, root=_root(request)), 409)
        where = f"{_root(request)}/runs/{quote(done.run_id)}?notice={quote(done.notice)}"
        return RedirectResponse(where, status_code=303)


def _root(request: Request) -> str:
    """The path the view is mounted at: "" on its own, the route prefix (e.g. ``/runner``) under Ray Serve."""
    root: str = request.scope.get("root_path", "")
    return quote(root.rstrip("/"), safe="/")  # URL-quoted: it goes into links and attributes as it is


def _text(exc: BaseException) -> str:
    from html import escape

    return escape(str(exc))


def _time(text: str | None, name: str) -> float | None:
    """A ``datetime-local`` value (UTC) or unix seconds as unix seconds."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"{name} must be a date and time (YYYY-MM-DDTHH:MM) or unix seconds, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
