"""The web view: the run list at 100,000 runs, and what an open, polling view costs a workload.

1. list: 100,000 runs inserted straight into a DuckDB file (the adapter's
   ``create_runs``), read through the web view's app (FileStoreReader, the
   path ``runner ui`` takes with no cluster up): the first page, a page deep in
   the list (keyset cursor), a status filter and a workflow filter. Target:
   every page under 200 ms (p50 of repeated requests).
2. chain with the view open: the chain benchmark's workload (600 runs x 3
   steps, one submit_many) with and without two open pages polling the web
   view as the browser script does (the run
   list and one running run: one version request a second each, and the page
   again whenever it changed), in pairs of adjacent rounds (which goes first
   alternates); the ratio is the median over pairs. Target: under 5% slower.
   Measured twice: the view served by ``runner ui`` in a process of its own
   (how it is opened; the target), and by ``client.ui()`` in a thread of the
   driver, where its page renders share the driver's GIL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import Result, close, connect, emit, start_ray, stop_ray

RUNS = 100_000
BATCH = 10_000
LIST_TARGET_MS = 200.0
REPEATS = 15
CHAIN_RUNS = int(os.environ.get("RUNNER_BENCH_UI_RUNS", "600"))  # per round: a few seconds, several polls
CHAIN_ROUNDS = int(os.environ.get("RUNNER_BENCH_UI_ROUNDS", "9"))  # pairs of rounds
POLL_SECONDS = 1.0  # what static/ui.js waits between polls


def _fill(url: str) -> None:
    import runner
    from adapters import open_store
    from runner import serialization
    from runner.events import RunSubmitted
    from runner.store import NewRun

    wf = runner.Workflow("bulk")
    wf.step(lambda x: x, name="only")
    definition = serialization.dumps(wf)
    digest = wf.definition_hash()
    store = open_store(url)
    for start in range(0, RUNS, BATCH):
        news = [
            NewRun(
                run_id=f"run-{i:06d}",
                workflow=f"wf{i % 7}",
                definition=definition,
                definition_hash=digest,
                events=(RunSubmitted(workflow=f"wf{i % 7}", input=i, definition_hash=digest),),
            )
            for i in range(start, start + BATCH)
        ]
        store.create_runs(news)
    store.close()


def list_bench() -> Result:
    from starlette.testclient import TestClient

    from adapters import open_store
    from runner.reader import FileStoreReader
    from runner.ui.app import UiApp

    url = f"duckdb:///{tempfile.mkdtemp(prefix='runner-ui-bench-')}/runs.duckdb"
    started = time.perf_counter()
    _fill(url)
    fill_seconds = time.perf_counter() - started
    reader = FileStoreReader(open_store(url, read_only=True))
    http = TestClient(UiApp(reader).app)
    first = http.get("/")
    assert first.status_code == 200 and first.text.count("data-run=") == 50
    # a cursor half way down: the page a user reaches after 1,000 clicks on "next page"
    _, rows = reader.sql(
        "SELECT created_at, run_id FROM runs ORDER BY created_at DESC, run_id DESC LIMIT 1 OFFSET 50000"
    )
    deep_cursor = f"{rows[0][0]!r}~{rows[0][1]}"
    pages = {
        "first page": {},
        "page at run 50,000": {"cursor": deep_cursor},
        "status=pending": {"status": "pending"},
        "workflow=wf3": {"workflow": "wf3"},
        "version poll": None,
    }
    timings: dict[str, float] = {}
    for name, params in pages.items():
        samples = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            answer = http.get("/api/runs/version") if params is None else http.get("/", params=params)
            samples.append((time.perf_counter() - t0) * 1000)
            assert answer.status_code == 200, answer.text[:300]
        timings[name] = statistics.median(samples)
    worst = max(timings.values())
    reader.close()
    return emit(
        Result(
            name="ui: run list at 100,000 runs",
            figure=f"worst page p50 {worst:.1f} ms",
            baseline=f"target {LIST_TARGET_MS:.0f} ms",
            ratio=worst / LIST_TARGET_MS,
            target="<= 1.0",
            met=worst <= LIST_TARGET_MS,
            details={"p50_ms": {k: round(v, 1) for k, v in timings.items()}, "fill_seconds": round(fill_seconds, 1)},
        )
    )


class Poller:
    """Two open pages, polling the way static/ui.js does: the list and one run page."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.stop = threading.Event()
        self.requests = 0
        self.poll_ms: list[float] = []
        self.page_ms: list[float] = []
        self.run_id: str | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import httpx

        versions: dict[str, str] = {}
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while not self.stop.wait(POLL_SECONDS):
                targets = [("/api/runs/version", "/")]
                if self.run_id is not None:
                    targets.append((f"/api/runs/{self.run_id}/version", f"/runs/{self.run_id}"))
                for poll, page in targets:
                    t0 = time.perf_counter()
                    version = http.get(poll).json()["version"]
                    self.poll_ms.append((time.perf_counter() - t0) * 1000)
                    self.requests += 1
                    if versions.get(poll) != version:
                        versions[poll] = version
                        t0 = time.perf_counter()
                        http.get(page)
                        self.page_ms.append((time.perf_counter() - t0) * 1000)
                        self.requests += 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _view_process(client: Any) -> Iterator[str]:
    """``runner ui`` in a process of its own, joined to this Ray (how a user opens the view)."""
    port = _free_port()
    command = [sys.executable, "-m", "runner.cli", "ui", "--port", str(port), "--address", "auto"]
    command += ["--namespace", client.namespace, "--store", client.store_url]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/api/runs/version", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("runner ui did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def _view_thread(client: Any) -> Iterator[str]:
    """``client.ui()``: the view in a thread of the driver itself (it shares the driver's GIL)."""
    server = client.ui(port=0)
    try:
        yield server.url
    finally:
        server.stop()


def chain_bench(where: str) -> Result:
    from chain import chain_expected, chain_workflow

    start_ray()
    client = connect()
    wf = chain_workflow()
    client.results(client.submit_many(wf, list(range(10))), timeout=120)
    view = _view_process(client) if where == "process" else _view_thread(client)

    poll_ms: list[float] = []
    page_ms: list[float] = []

    def round_(base: str, polling: bool) -> tuple[float, int]:
        poller = Poller(base)
        if polling:
            poller.thread.start()
        t0 = time.perf_counter()
        handles = client.submit_many(wf, list(range(CHAIN_RUNS)))
        poller.run_id = handles[len(handles) // 2].run_id
        assert client.results(handles, timeout=600) == chain_expected(CHAIN_RUNS)
        rate = CHAIN_RUNS / (time.perf_counter() - t0)
        poller.stop.set()
        if polling:
            poller.thread.join()
        poll_ms.extend(poller.poll_ms)
        page_ms.extend(poller.page_ms)
        return rate, poller.requests

    plain, polled, requests = [], [], []
    try:
        with view as base:
            for number in range(CHAIN_ROUNDS):
                # a pair of rounds next to each other, the one that goes first alternating: the
                # machine's drift between pairs does not enter a pair's ratio
                for polling in (False, True) if number % 2 == 0 else (True, False):
                    rate, count = round_(base, polling)
                    if polling:
                        polled.append(rate)
                        requests.append(count)
                    else:
                        plain.append(rate)
    finally:
        close(client)
        stop_ray()
    pair_ratios = [open_ / closed for open_, closed in zip(polled, plain, strict=True)]
    ratio = statistics.median(pair_ratios)
    served = "its own process (runner ui)" if where == "process" else "a thread of the driver (client.ui())"
    return emit(
        Result(
            name=f"ui: chain with the view open and polling, served from {served}",
            figure=f"{statistics.median(polled):.1f} runs/s",
            baseline=f"view closed {statistics.median(plain):.1f} runs/s",
            ratio=ratio,
            target=">= 0.95",
            met=ratio >= 0.95,
            details={
                "ratio_is": "median over pairs of adjacent rounds (open / closed)",
                "pair_ratios": [round(r, 3) for r in pair_ratios],
                "ratio_of_medians": round(statistics.median(polled) / statistics.median(plain), 3),
                "closed_runs_per_s": [round(r, 1) for r in plain],
                "open_runs_per_s": [round(r, 1) for r in polled],
                "ui_requests_per_round": requests,
                "poll_ms_p50": round(statistics.median(poll_ms), 1) if poll_ms else None,
                "page_ms_p50": round(statistics.median(page_ms), 1) if page_ms else None,
            },
        )
    )


def main() -> list[Result]:
    return [list_bench(), chain_bench("process"), chain_bench("thread")]


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
