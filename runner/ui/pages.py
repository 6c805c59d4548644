"""The web view's HTML: the page frame, the run list and the run page (plain HTML, escaped).

Every page works without script; ``static/ui.js`` only refreshes the ``<main>``
of a page whose run is still going (see app.py for the polling endpoint).

Every link, form and script path starts with ``root``: the path the view is
mounted at ("" when served on its own; a route prefix such as ``/runner`` when
it is a Ray Serve application, see serve_app.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from urllib.parse import urlencode

from runner.events import RunFailed, StoredEvent
from runner.step_view import StepStatus
from runner.store import RunRecord, RunStatus
from runner.ui import graph_svg, timeline
from runner.ui.payloads import fields_html, truncate, value_html
from runner.ui.queries import RunPage, RunQuery, RunRow
from runner.ui.run_view import RunView
from runner.workflow import NodeKind


def when(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(t: float | None) -> str:
    if t is None:
        return ""
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s" if t < 120 else f"{t / 60:.1f} min"


def status_badge(status: str) -> str:
    return f'<span class="status status-{escape(status)}" data-status="{escape(status)}">{escape(status)}</span>'


def frame(title: str, body: str, *, poll: str = "", version: str = "", read_only: bool = True, root: str = "") -> str:
    """The page around ``body``; ``poll``: the URL the script polls to know when to refresh, and
    ``version``: what that URL answers for the page as drawn (the script refreshes when it differs);
    ``root``: the path the view is mounted at (see the module's docstring)."""
    mode = "read-only" if read_only else "actions enabled"
    poll_attr = f' data-poll="{escape(poll)}" data-version="{escape(version)}"' if poll else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · ray-runner</title>"
        f'<link rel="stylesheet" href="{root}/static/ui.css"><script defer src="{root}/static/ui.js"></script></head>'
        f'<body><header><a href="{root}/" class="brand">ray-runner</a> <span class="mode">{mode}</span></header>'
        f'<main id="main"{poll_attr}>{body}</main></body></html>'
    )


# ------------------------------------------------------------------ list
def list_page(
    page: RunPage,
    query: RunQuery,
    workflows: Sequence[str],
    *,
    read_only: bool,
    first_page: bool,
    version: str,
    root: str = "",
) -> str:
    columns = page.columns
    has_queue = "queue" in columns
    has_metadata = "metadata" in columns
    rows = "".join(_run_row(row, has_queue, has_metadata, root) for row in page.rows)
    headers = ["run", "workflow"] + (["queue"] if has_queue else []) + ["status", "created", "updated", "duration"]
    headers += ["events", "error"] + (["metadata"] if has_metadata else [])
    table = (
        '<table class="runs"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in headers)
        + f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    if not page.rows:
        table = '<p class="muted" id="no-runs">No runs match.</p>'
    more = ""
    if page.next is not None:
        more = f'<p><a id="next-page" href="{root}/?{_query_string(query, page.next.encode())}">next page →</a></p>'
    poll = f"{root}/api/runs/version" if first_page else ""
    body = f"<h1>Runs</h1>{_filters(query, workflows, has_metadata, root)}{table}{more}"
    return frame("Runs", body, poll=poll, version=version, read_only=read_only, root=root)


def _run_row(row: RunRow, has_queue: bool, has_metadata: bool, root: str) -> str:
    cells = [
        f'<td class="id"><a href="{root}/runs/{escape(row.run_id)}">{escape(row.run_id)}</a></td>',
        f"<td>{escape(row.workflow)}</td>",
    ]
    if has_queue:
        cells.append(f"<td>{escape(row.queue or '')}</td>")
    cells += [
        f"<td>{status_badge(row.status.value)}</td>",
        f"<td>{when(row.created_at)}</td>",
        f"<td>{when(row.updated_at)}</td>",
        f"<td>{seconds(row.duration())}</td>",
        f"<td>{row.last_seq}</td>",
        f'<td class="error">{escape(truncate(row.error or "", 120))}</td>',
    ]
    if has_metadata:
        cells.append(f"<td>{escape(truncate(row.metadata or '', 120))}</td>")
    return f'<tr data-run="{escape(row.run_id)}">{"".join(cells)}</tr>'


def _query_string(query: RunQuery, cursor: str | None) -> str:
    params: list[tuple[str, str]] = [("status", s.value) for s in query.statuses]
    if query.workflow:
        params.append(("workflow", query.workflow))
    if query.created_after is not None:
        params.append(("after", datetime.fromtimestamp(query.created_after, tz=timezone.utc).isoformat()))
    if query.created_before is not None:
        params.append(("before", datetime.fromtimestamp(query.created_before, tz=timezone.utc).isoformat()))
    if query.metadata_key:
        params.append(("meta", query.metadata_key))
    if cursor:
        params.append(("cursor", cursor))
    return urlencode(params)


def _filters(query: RunQuery, workflows: Sequence[str], has_metadata: bool, root: str) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="status" value="{s.value}"{" checked" if s in query.statuses else ""}>'
        f"{s.value}</label>"
        for s in RunStatus
    )
    options = "".join(f'<option value="{escape(w)}">' for w in workflows)

    def stamp(t: float | None) -> str:
        return "" if t is None else datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M")

    meta = (
        f'<label>metadata <input name="meta" placeholder="key or key=value" value="{escape(query.metadata_key or "")}"></label>'
        if has_metadata
        else ""
    )
    return (
        f'<form class="filters" method="get" action="{root}/">'
        f"<fieldset><legend>status</legend>{boxes}</fieldset>"
        f'<label>workflow <input name="workflow" list="workflows" value="{escape(query.workflow or "")}"></label>'
        f'<datalist id="workflows">{options}</datalist>'
        f'<label>created from (UTC) <input type="datetime-local" name="after" value="{stamp(query.created_after)}"></label>'
        f'<label>to <input type="datetime-local" name="before" value="{stamp(query.created_before)}"></label>'
        f'{meta}<button type="submit">filter</button> <a href="{root}/">clear</a></form>'
    )


# ------------------------------------------------------------------- run
def run_page(view: RunView, *, read_only: bool, action_key: str, notice: str = "", root: str = "") -> str:
    record = view.record
    status = record.status.value
    duration = (record.updated_at if record.status.is_terminal else time.time()) - record.created_at
    head = (
        f'<h1>Run <span class="id">{escape(record.run_id)}</span> {status_badge(status)}</h1>'
        '<dl class="facts">'
        f"<dt>workflow</dt><dd>{escape(record.workflow)}</dd>"
        f"<dt>created</dt><dd>{when(record.created_at)}</dd>"
        f"<dt>updated</dt><dd>{when(record.updated_at)}</dd>"
        f"<dt>duration</dt><dd>{seconds(duration)}</dd>"
        f'<dt>events</dt><dd id="cursor">{record.last_seq}</dd>'
        "</dl>"
    )
    if notice:
        head += f'<p class="notice">{escape(notice)}</p>'
    sections = [head]
    if not read_only:
        sections.append(_actions(view, action_key, root))
    sections.append(_failure(view))
    sections.append(_result(view))
    sections.append(_graph(view))
    sections.append(
        f'<section id="timeline"><h2>Timeline</h2>{timeline.to_svg(timeline.bars(view.events), time.time())}</section>'
    )
    sections.append(_steps(view))
    sections.append(_lineage(view, root))
    sections.append(_events(view))
    poll = "" if record.status.is_terminal else f"{root}/api/runs/{record.run_id}/version"
    body = "".join(s for s in sections if s)
    return frame(
        f"Run {record.run_id}", body, poll=poll, version=run_version(view.record), read_only=read_only, root=root
    )


def run_version(record: RunRecord) -> str:
    """What the run page's polling endpoint answers: it changes with every event and status move."""
    return f"{record.last_seq}:{record.status.value}"


def _graph(view: RunView) -> str:
    if view.workflow is None:
        return f'<section id="graph"><h2>Graph</h2><p class="muted">The definition cannot be loaded here: {escape(view.definition_error)}</p></section>'
    return f'<section id="graph"><h2>Graph</h2>{graph_svg.to_svg(view.workflow, view.steps)}</section>'


def _steps(view: RunView) -> str:
    if not view.steps:
        return ""
    rows = "".join(
        f'<tr data-step="{escape(s.name)}"><td>{escape(s.name)}</td><td>{escape(s.kind)}</td>'
        f"<td>{status_badge(str(s.status))}{' (reused)' if s.reused else ''}</td><td>{s.attempts}</td>"
        f"<td>{'' if s.items is None else f'{s.items_done}/{s.items}'}</td>"
        f"<td>{when(s.started_at)}</td><td>{seconds(s.duration)}</td>"
        f'<td class="error">{"" if s.error is None else escape(truncate(f"{s.error.type}: {s.error.message}", 200))}</td></tr>'
        for s in view.steps
    )
    return (
        '<section id="steps"><h2>Steps</h2><table><thead><tr><th>step</th><th>kind</th><th>status</th>'
        "<th>attempts</th><th>items</th><th>started</th><th>duration</th><th>error</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _failure(view: RunView) -> str:
    failed = [s for s in view.steps if s.status is StepStatus.FAILED and s.error is not None]
    ended = next((e.event for e in reversed(view.events) if isinstance(e.event, RunFailed)), None)
    blocks = []
    for step in failed:
        error = step.error
        assert error is not None
        blocks.append(
            f'<div class="failure" data-step="{escape(step.name)}"><h3>step {escape(step.name)}: '
            f"{escape(error.type)}: {escape(truncate(error.message, 2_000))}</h3>"
            f"<pre>{escape(error.traceback or '(no traceback)')}</pre></div>"
        )
    if not blocks and ended is not None:
        where = f"step {ended.node}: " if ended.node else ""
        blocks.append(
            f'<div class="failure"><h3>{escape(where)}{escape(ended.error.type)}: {escape(truncate(ended.error.message, 2_000))}</h3>'
            f"<pre>{escape(ended.error.traceback or '(no traceback)')}</pre></div>"
        )
    if not blocks and view.record.error:
        blocks.append(f'<div class="failure"><h3>{escape(view.record.error)}</h3></div>')
    return f'<section id="failure"><h2>Error</h2>{"".join(blocks)}</section>' if blocks else ""


def _result(view: RunView) -> str:
    state = view.state
    if state is None or view.record.status is not RunStatus.COMPLETED or not state.is_finished:
        return ""
    return f'<section id="result"><h2>Result</h2><p class="value">{value_html(state.result)}</p></section>'


def _lineage(view: RunView, root: str) -> str:
    items = []
    if view.parent is not None:
        p = view.parent
        items.append(
            f'<li>this run is a <b>{p.link.value}</b> of <a href="{root}/runs/{escape(p.run_id)}">{escape(p.run_id)}</a> '
            f"{status_badge(p.status) if p.status else ''}</li>"
        )
    for d in view.descendants:
        items.append(
            f'<li><b>{d.link.value}</b>: <a href="{root}/runs/{escape(d.run_id)}">{escape(d.run_id)}</a> {status_badge(str(d.status))}</li>'
        )
    if not items:
        return ""
    return f'<section id="lineage"><h2>Lineage</h2><ul>{"".join(items)}</ul></section>'


def _events(view: RunView) -> str:
    rows = "".join(_event_row(stored) for stored in view.events)
    note = ""
    if view.events_total > len(view.events):
        note = f'<p class="muted">The first {view.events_total - len(view.events):,} events are not shown.</p>'
    return (
        f'<section id="events"><h2>History</h2>{note}<table class="events"><thead><tr><th>seq</th><th>at</th>'
        f"<th>event</th><th>payload</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _event_row(stored: StoredEvent) -> str:
    event = stored.event
    return (
        f"<tr><td>{stored.seq}</td><td>{when(event.at)}</td><td>{escape(type(event).__name__)}</td>"
        f"<td>{fields_html(event)}</td></tr>"
    )


# --------------------------------------------------------------- actions
def _form(run_id: str, action: str, action_key: str, fields: str, label: str, root: str) -> str:
    return (
        f'<form method="post" action="{root}/runs/{escape(run_id)}/actions/{action}" class="action" data-action="{action}">'
        f'<input type="hidden" name="key" value="{escape(action_key)}">{fields}'
        f'<button type="submit" id="action-{action}">{escape(label)}</button></form>'
    )


def _actions(view: RunView, action_key: str, root: str) -> str:
    record = view.record
    run_id = record.run_id
    status = record.status
    forms = []
    approvals = [
        node.approval
        for node in (view.workflow.nodes.values() if view.workflow is not None else ())
        if node.kind is NodeKind.WAIT and node.approval
    ]
    waiting = {s.name for s in view.steps if s.status is StepStatus.WAITING}
    open_approvals = [
        a
        for a in approvals
        if view.workflow is not None
        and any(n.approval == a and n.name in waiting for n in view.workflow.nodes.values())
    ]
    if not status.is_terminal:
        for approval in open_approvals:
            who = '<input name="by" placeholder="your name" required><input name="comment" placeholder="comment">'
            hidden = f'<input type="hidden" name="approval" value="{escape(approval)}">'
            forms.append(_form(run_id, "approve", action_key, hidden + who, f"approve {approval}", root))
            forms.append(_form(run_id, "reject", action_key, hidden + who, f"reject {approval}", root))
        signal_fields = (
            '<input name="name" placeholder="signal name" required><input name="payload" placeholder="payload (JSON)">'
        )
        forms.append(_form(run_id, "signal", action_key, signal_fields, "send signal", root))
        forms.append(_form(run_id, "cancel", action_key, "", "cancel", root))
    if status is RunStatus.RUNNING:
        forms.append(_form(run_id, "pause", action_key, "", "pause", root))
    if status in (RunStatus.PAUSED, RunStatus.FAILED, RunStatus.CANCELLED):
        forms.append(_form(run_id, "resume", action_key, '<input name="reason" placeholder="reason">', "resume", root))
    forms.append(_form(run_id, "replay", action_key, "", "replay", root))
    if view.workflow is not None:
        options = "".join(f'<option value="{escape(n)}">{escape(n)}</option>' for n in view.workflow.nodes)
        forms.append(
            _form(run_id, "fork", action_key, f'<select name="from_step">{options}</select>', "fork from step", root)
        )
    return f'<section id="actions"><h2>Actions</h2>{"".join(forms)}</section>'
