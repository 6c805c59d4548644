"""Shared helpers for the benchmarks: Ray start-up, timing, process memory, results.

Every benchmark measures its baseline in the same process run, so figures
are read as ratios: machines here are small and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Result:
    """One benchmark's figures. ``ratio`` is ours against the in-run baseline; ``target`` says which way is good."""

    name: str
    figure: str
    baseline: str
    ratio: float
    target: str
    met: bool
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        verdict = "met" if self.met else "NOT met"
        return f"{self.name}: {self.figure} | baseline {self.baseline} | ratio {self.ratio:.2f} (target {self.target}: {verdict})"


def start_ray(num_cpus: int | None = None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False
        )


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def fresh_store() -> str:
    return f"duckdb:///{tempfile.mkdtemp(prefix='runner-bench-')}/store.duckdb"


def connect(**kwargs: Any) -> Any:
    import runner

    return runner.connect(
        store=kwargs.pop("store", fresh_store()),
        namespace=kwargs.pop("namespace", f"bench-{os.getpid()}-{time.monotonic_ns()}"),
        **kwargs,
    )


def close(client: Any) -> None:
    import ray

    ray.kill(client.runner, no_restart=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def alternating(
    baseline: Callable[[], float], ours: Callable[[], tuple[float, dict[str, Any]]], repeats: int
) -> tuple[float, float, list[float], list[float], dict[str, Any]]:
    """``repeats`` rounds of the baseline then ours, alternating so that drift on a noisy machine
    hits both alike: (median baseline, median ours, every baseline, every ours, ours' last details)."""
    plains: list[float] = []
    mines: list[float] = []
    details: dict[str, Any] = {}
    for _ in range(repeats):
        plains.append(baseline())
        rate, details = ours()
        mines.append(rate)
    return median(plains), median(mines), plains, mines, details


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ray_rss_bytes() -> int:
    """Total resident memory of this machine's Ray processes (raylet, GCS, workers, actors)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"ray" not in cmdline:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "?"
    import duckdb
    import ray

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": commit or "?",
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),  # a shared machine: how busy it was
    }


def emit(result: Result) -> Result:
    print(result.line(), flush=True)
    print("  " + json.dumps(asdict(result)["details"]), flush=True)
    return result
