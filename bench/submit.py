"""submit: p50/p99 latency of a durable submit (acknowledged after the run is stored), two ways.

- idle: the submitted runs execute one at a time behind the submits (one worker, one run
  per worker), so the figure is the submit path itself.
- busy: default settings, while a steady background load of 3-step chains executes
  (two threads, each submitting a batch with ``submit_many`` and collecting it, over and
  over, so both workers stay busy): the submit a user makes while other runs execute.

Baseline: the durability floor, the same run record and first event written to a DuckDB
file by the adapter in this process (no Ray, no actor hop). The idle floor is measured
before Ray starts; the busy floor during the background load, one floor write alternating
with each submit, so both meet the same contention.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from chain import chain_workflow
from common import Result, close, connect, emit, percentile, start_ray, stop_ray

SUBMITS = 300
BUSY_SUBMITS = 200
LOAD_THREADS = 2
LOAD_BATCH = 20  # runs per submit_many of each background thread
TARGET_BUSY_P50_MS = 5.0


def _workflow():
    import runner

    wf = runner.Workflow("submitted")

    @wf.step()
    def noop(x):
        return x

    return wf


def floor_writer() -> tuple[Callable[[int], float], Callable[[], None]]:
    """(write(i): seconds of one in-process DuckDB create_run, close)."""
    from adapters.duckdb import DuckDBStore
    from runner.client import pickle_definition
    from runner.events import RunSubmitted
    from runner.store import NewRun

    wf = _workflow()
    definition = pickle_definition(wf)
    store = DuckDBStore(f"{tempfile.mkdtemp()}/floor.duckdb")

    def write(i: int) -> float:
        start = time.perf_counter()
        submitted = RunSubmitted(workflow=wf.name, input={"order": i}, definition_hash=wf.definition_hash())
        store.create_run(
            NewRun(
                run_id=f"r{i}",
                workflow=wf.name,
                definition=definition,
                definition_hash=wf.definition_hash(),
                events=(submitted,),
            )
        )
        return time.perf_counter() - start

    return write, store.close


def baseline(count: int) -> list[float]:
    write, close_store = floor_writer()
    samples = [write(i) for i in range(count)]
    close_store()
    return samples


def timed_submit(client: Any, wf: Any, i: int) -> float:
    start = time.perf_counter()
    client.submit(wf, {"order": i})
    return time.perf_counter() - start


def idle(count: int) -> list[float]:
    from runner.runner import RunnerConfig

    client = connect(config=RunnerConfig(max_workers=1, runs_per_worker=1))
    wf = _workflow()
    client.submit(wf, {"order": -1}).result(timeout=60)
    samples = [timed_submit(client, wf, i) for i in range(count)]
    close(client)
    return samples


class BackgroundLoad:
    """``threads`` threads, each submitting ``batch`` 3-step chains and collecting them, until stopped."""

    def __init__(self, client: Any, threads: int, batch: int) -> None:
        self.client = client
        self.batch = batch
        self.completed = 0
        self.error: BaseException | None = None
        self._wf = chain_workflow()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                handles = self.client.submit_many(self._wf, list(range(self.batch)))
                self.client.results(handles, timeout=600)
                with self._lock:
                    self.completed += self.batch
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def __enter__(self) -> BackgroundLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def busy(count: int) -> tuple[list[float], list[float], dict[str, Any]]:
    """(submit samples, floor samples, details) while the background load runs (default settings)."""
    client = connect()
    wf = _workflow()
    client.submit(wf, {"order": -1}).result(timeout=60)
    write, close_store = floor_writer()
    ours: list[float] = []
    floor: list[float] = []
    with BackgroundLoad(client, LOAD_THREADS, LOAD_BATCH) as load:
        deadline = time.monotonic() + 60
        while load.completed < LOAD_BATCH and time.monotonic() < deadline:  # the load is under way
            time.sleep(0.05)
        start = time.perf_counter()
        done_before = load.completed
        for i in range(count):
            floor.append(write(i))
            ours.append(timed_submit(client, wf, i))
        elapsed = time.perf_counter() - start
        background = load.completed - done_before
    close_store()
    stats = client.stats()
    close(client)
    if load.error is not None:
        raise load.error
    return (
        ours,
        floor,
        {
            "background_runs_completed_while_measuring": background,
            "background_runs_per_s": round(background / elapsed, 1),
            "peak_workers": stats.peak_workers,
        },
    )


def _ms(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 50) * 1000, percentile(samples, 99) * 1000


def main() -> list[Result]:
    floor_idle = baseline(SUBMITS)
    start_ray()
    try:
        ours_idle = idle(SUBMITS)
        ours_busy, floor_busy, details = busy(BUSY_SUBMITS)
    finally:
        stop_ray()
    p50, p99 = _ms(ours_idle)
    f50, f99 = _ms(floor_idle)
    idle_result = emit(
        Result(
            name="submit, idle",
            figure=f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
            baseline=f"in-process DuckDB create_run p50 {f50:.2f} ms, p99 {f99:.2f} ms",
            ratio=p50 / f50,
            target="reported (no target)",
            met=True,
            details={"submits": SUBMITS},
        )
    )
    p50, p99 = _ms(ours_busy)
    f50, f99 = _ms(floor_busy)
    busy_result = emit(
        Result(
            name="submit, while runs execute",
            figure=f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
            baseline=f"in-process DuckDB create_run p50 {f50:.2f} ms, p99 {f99:.2f} ms",
            ratio=p50 / f50,
            target=f"p50 <= {TARGET_BUSY_P50_MS:g} ms",
            met=p50 <= TARGET_BUSY_P50_MS,
            details={"submits": BUSY_SUBMITS, "load_threads": LOAD_THREADS, "load_batch": LOAD_BATCH, **details},
        )
    )
    return [idle_result, busy_result]


if __name__ == "__main__":
    main()
