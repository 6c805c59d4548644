"""``/metrics`` of the web view, in Prometheus' text format, for setups without Ray's endpoint.

Read from the store (runs by workflow and status, events by kind: StepStarted
counts attempts, StepFailed failures) and, when the view has a client, from the
Runner (workers, pending runs, restarts) and the Store actor (commits, appends,
events). The runtime's own counters and histograms are Ray metrics
(runner/metrics.py), seen at Ray's metrics endpoint.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from runner.reader import ActorStoreReader
from runner.store import RunFilter
from runner.ui.queries import RunQueries

if TYPE_CHECKING:
    from runner.client import Client
    from runner.store_actor import CommitStats

_ALL_RUNS = 1_000_000


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, object], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        inner = ",".join(f'{key}="{_label(val)}"' for key, val in labels.items())
        lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")
    return lines


def metrics_text(queries: RunQueries, client: Client | None = None) -> str:
    reader = queries.reader
    if queries.columns():
        _, rows = reader.sql("SELECT workflow, status, count(*) FROM runs GROUP BY workflow, status ORDER BY 1, 2")
        runs = [({"workflow": w, "status": s}, float(n)) for w, s, n in rows]
        _, rows = reader.sql("SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind")
        events = [({"kind": k}, float(n)) for k, n in rows]
    else:
        counted = Counter((r.workflow, r.status.value) for r in reader.list_runs(RunFilter(limit=_ALL_RUNS)))
        runs = [({"workflow": w, "status": s}, float(n)) for (w, s), n in sorted(counted.items())]
        events = []
    lines = _family("runner_runs", "gauge", "Runs in the store, by workflow and status", runs)
    if events:
        lines += _family("runner_events", "gauge", "Events in the store, by kind", events)
    if client is not None:
        stats = client.stats()
        lines += _family("runner_workers", "gauge", "Worker actors alive", [({}, stats.live_workers)])
        lines += _family("runner_busy_workers", "gauge", "Worker actors driving runs", [({}, stats.busy_workers)])
        lines += _family("runner_pending_runs", "gauge", "Runs waiting for a worker", [({}, stats.pending)])
        lines += _family(
            "runner_worker_restarts_total", "counter", "Worker turns lost and restarted", [({}, stats.restarts)]
        )
    if client is not None and isinstance(client.reader, ActorStoreReader):
        commits: CommitStats = client.reader.calls.call(lambda store: store.stats())
        lines += _family("runner_store_commits_total", "counter", "Group commits", [({}, commits.commits)])
        lines += _family("runner_store_appends_total", "counter", "Append calls committed", [({}, commits.batches)])
        lines += _family("runner_store_events_total", "counter", "Events committed", [({}, commits.events)])
    return "\n".join(lines) + "\n"
