"""Run every benchmark and write bench/RESULTS.md (figures, machine, date, commit).

make bench
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import append  # noqa: E402
import chain  # noqa: E402
import fanout  # noqa: E402
import latency  # noqa: E402
import loop  # noqa: E402
import queues  # noqa: E402
import recovery  # noqa: E402
import scale  # noqa: E402
import submit  # noqa: E402
import tracing  # noqa: E402
import ui  # noqa: E402
from common import Result, machine  # noqa: E402

# loop first and chain (batched) next: the table shows the two patterns side by side
BENCHMARKS = [loop, chain, submit, latency, fanout, append, recovery, scale, queues, ui, tracing]


def main() -> int:
    started = time.perf_counter()
    results: list[Result] = []
    for module in BENCHMARKS:
        print(f"--- {module.__name__}", flush=True)
        answer = module.main()
        results.extend(answer if isinstance(answer, list) else [answer])
    facts = machine()
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (bench/run_all.py). Every figure is a ratio against a baseline",
        "measured in the same run on the same machine; absolute numbers vary from run to run.",
        "Each row's script runs on its own too, e.g. `.venv/bin/python bench/loop.py`.",
        "",
        f"- date: {facts['date']}",
        f"- commit: {facts['commit']}",
        f"- machine: {facts['cpus']} CPUs, {facts['memory_gib']} GiB, {facts['platform']}",
        f"- load average (1, 5, 15 min) at the end: {facts['load_average']}",
        f"- Python {facts['python']}, Ray {facts['ray']}, DuckDB {facts['duckdb']}",
        f"- wall time of the whole suite: {time.perf_counter() - started:.0f} s",
        f"- not met: {sum(not r.met for r in results)} of {len(results)}",
        "",
        "| workload | ours | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.figure} | {r.baseline} | {r.ratio:.2f} | {r.target} | {'yes' if r.met else 'no'} |"
        )
    lines += ["", "Details:", ""]
    for r in results:
        lines.append(f"- {r.name}: `{r.details}`")
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
