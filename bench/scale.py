"""scale: 5,000 short runs submitted at once: completion time, peak live workers, peak RSS of Ray's processes.

Baseline: the same 5,000 one-step jobs as plain Ray tasks (completion time).
"""

from __future__ import annotations

import threading
import time

from common import Result, close, connect, emit, ray_rss_bytes, start_ray, stop_ray

RUNS = 5_000
RSS_LIMIT = 6 * 2**30
TARGET_RATIO = 3.0  # our completion time against plain Ray's


def _workflow():
    import runner

    wf = runner.Workflow("short")

    @wf.step()
    def work(x):
        return x + 1

    return wf


def baseline(runs: int) -> float:
    import ray

    @ray.remote
    def work(x):
        return x + 1

    start = time.perf_counter()
    assert ray.get([work.remote(i) for i in range(runs)]) == [i + 1 for i in range(runs)]
    return time.perf_counter() - start


class PeakSampler:
    """Samples the total RSS of Ray's processes every 0.5 s and keeps the peak."""

    def __init__(self) -> None:
        self.rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rss = max(self.rss, ray_rss_bytes())
            self._stop.wait(0.5)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ours(runs: int) -> tuple[float, dict]:
    client = connect()
    wf = _workflow()
    with PeakSampler() as sampler:
        start = time.perf_counter()
        handles = client.submit_many(wf, list(range(runs)))
        submitted = time.perf_counter() - start
        results = client.results(handles, timeout=1800)
        elapsed = time.perf_counter() - start
    assert results == [i + 1 for i in range(runs)]
    stats = client.stats()
    close(client)
    return elapsed, {
        "submit_all_s": round(submitted, 2),
        "runs_per_s": round(runs / elapsed, 1),
        "peak_live_workers": stats.peak_workers,
        "workers_started": stats.workers_started,
        "peak_rss_gib": round(sampler.rss / 2**30, 2),
    }


def main() -> Result:
    start_ray()
    try:
        plain = baseline(RUNS)
        mine, details = ours(RUNS)
    finally:
        stop_ray()
    from runner.runner import RunnerConfig

    max_workers = RunnerConfig().max_workers  # the default connect() uses
    cap = details["peak_live_workers"]
    ratio = mine / plain
    ok = ratio <= TARGET_RATIO and cap <= max_workers and details["peak_rss_gib"] * 2**30 < RSS_LIMIT
    return emit(
        Result(
            name="scale",
            figure=f"{RUNS} runs in {mine:.1f}s, peak {cap} workers, peak RSS {details['peak_rss_gib']} GiB",
            baseline=f"plain Ray {plain:.1f}s",
            ratio=ratio,
            target=f"<= {TARGET_RATIO:g}x plain Ray's time, all complete, workers <= max_workers, RSS < 6 GiB",
            met=ok,
            details={**details, "default_max_workers": max_workers},
        )
    )


if __name__ == "__main__":
    main()
