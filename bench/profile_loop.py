"""profile_loop: where the time of the loop pattern (bench/loop.py) goes, one submit and one result() at a time.

.venv/bin/python bench/profile_loop.py [--runs 200] [--cprofile]

Three views, every figure in ms (medians unless said):

1. submit, split by timestamps: ``client.new_run`` (input check, pickling, encoding: the
   driver's own work) and the rest, the call to the Runner (which stores the run through the
   Store actor and queues it). The rest is set against, measured alongside in the same state:
   an empty Runner call (``ping``), an empty Store actor call from the driver (``ping``), the
   Store actor's ``get_run`` (one actor hop and one store read), and the in-process DuckDB
   ``create_run`` floor. Each is measured idle and while runs execute.
2. the loop itself, per run, from the driver's clock and the run's own events (same machine,
   same clock): submit; queued (submit returned -> first StepStarted); executing (first
   StepStarted -> RunCompleted); and for each ``result()``, how long after the run's RunCompleted
   it returned (the notification and reads).
3. ``result()`` of an ended run, split into its calls: the wait (Store actor ``wait_outcomes``: the
   record read), ``outcome`` (record and last event) and ``result_of`` (decoding, a fact load).

``--cprofile``: also the driver's own profile of the loop (top functions by own time).
``--py-spy``: also sample the Runner, the Store actor and the workers with py-spy during the
loop (``pip install py-spy``; it slows the loop down, so read shares, not rates): each
process's busy share of the loop (samples not waiting in Ray's core loop, select or a lock),
the project's functions that hold most of those (inclusive) and where they are spent (own).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from chain import chain_workflow
from common import close, connect, median, percentile, start_ray, stop_ray
from submit import BackgroundLoad, floor_writer


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def summary(samples: list[float]) -> str:
    return f"p50 {ms(median(samples)):7.2f}  p90 {ms(percentile(samples, 90)):7.2f}  n={len(samples)}"


class TimedClient:
    """Times ``client.new_run`` inside each ``client.submit`` made through it (an instance-level
    wrapper; other threads' calls, e.g. a background load's ``submit_many``, are not counted)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.prep: list[float] = []
        self._mine = threading.local()
        original = client.new_run

        def new_run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if getattr(self._mine, "timing", False):
                    self.prep.append(time.perf_counter() - start)

        client.new_run = new_run

    def submit(self, wf: Any, x: Any) -> tuple[Any, float, float, float]:
        """(handle, seconds of the whole submit, wall time it started, wall time it returned)."""
        started = time.time()
        start = time.perf_counter()
        self._mine.timing = True
        try:
            handle = self.client.submit(wf, x)
        finally:
            self._mine.timing = False
        return handle, time.perf_counter() - start, started, time.time()


def split_samples(client: Any, timed: TimedClient, count: int, wait_each: bool) -> dict[str, list[float]]:
    """``count`` rounds of: one submit (whole, and its ``new_run``), an empty Runner call, an empty
    Store actor call, a Store actor ``get_run``, an in-process DuckDB ``create_run``; seconds each.
    ``wait_each``: wait for each run's result before the next round (nothing else executes)."""
    import ray

    from runner.store_handle import StoreHandle

    wf = chain_workflow()
    store = StoreHandle(client.store)
    write, close_store = floor_writer()
    found: dict[str, list[float]] = {
        "submit total": [],
        "  client.new_run (driver)": [],
        "  Runner call (store the run, queue it)": [],
        "runner ping (empty Runner call)": [],
        "store ping (empty Store actor call)": [],
        "store get_run (Store actor hop + one read)": [],
        "floor: in-process DuckDB create_run": [],
    }
    for i in range(count):
        timed.prep.clear()
        handle, took, _started, _returned = timed.submit(wf, i)
        found["submit total"].append(took)
        found["  client.new_run (driver)"].append(timed.prep[0])
        found["  Runner call (store the run, queue it)"].append(took - timed.prep[0])
        start = time.perf_counter()
        ray.get(client.runner.ping.remote())
        found["runner ping (empty Runner call)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ray.get(store.ping())
        found["store ping (empty Store actor call)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ray.get(store.get_run(handle.run_id))
        found["store get_run (Store actor hop + one read)"].append(time.perf_counter() - start)
        found["floor: in-process DuckDB create_run"].append(write(i))
        if wait_each:
            handle.result(timeout=60)
    close_store()
    return found


def print_block(title: str, found: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    for name, samples in found.items():
        print(f"  {name:<60} {summary(samples) if samples else 'none'}")


def view_submit(client: Any, timed: TimedClient) -> None:
    found = split_samples(client, timed, 100, wait_each=True)
    print_block("1a. submit, idle: each run ends before the next submit (ms)", found)
    with BackgroundLoad(client, threads=2, batch=20) as load:
        deadline = time.monotonic() + 60
        while load.completed < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = split_samples(client, timed, 100, wait_each=False)
    print_block("1b. submit while runs execute (2 threads of 20-run batches) (ms)", found)


SPY_RATE = 100  # samples per second (kept low: the machine has 2 cores)
# leaves where a thread waits rather than works (Ray's core loop, the event loop's select, a lock)
WAITING = ("Worker.main_loop", "EpollSelector.select", "Condition.wait", "Event.wait")


def actor_pids(client: Any) -> dict[str, int]:
    """The Runner's, the Store actor's and each live worker's process id."""
    import ray

    def pid_of(handle: Any) -> int:
        return int(ray.get(handle.__ray_call__.remote(lambda _self: os.getpid())))

    pids = {"Runner": pid_of(client.runner), "Store actor": pid_of(client.store)}
    for i, worker in enumerate(ray.get(client.runner.worker_handles.remote())):
        pids[f"worker {i}"] = pid_of(worker)
    return pids


class Spy:
    """py-spy recording each process (raw collapsed stacks) until stopped."""

    def __init__(self, pids: dict[str, int]) -> None:
        binary = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if binary is None:
            raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")
        folder = Path(tempfile.mkdtemp(prefix="profile-loop-"))
        self.started = time.monotonic()
        self.seconds = 0.0
        self.recordings: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for name, pid in pids.items():
            out = folder / f"{name.replace(' ', '-')}.txt"
            command = [binary, "record", "--nonblocking", "--format", "raw", "-r", str(SPY_RATE), "-o", str(out)]
            process = subprocess.Popen([*command, "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.recordings[name] = (process, out)

    def stop(self) -> None:
        self.seconds = time.monotonic() - self.started
        for process, _out in self.recordings.values():
            process.send_signal(signal.SIGINT)  # py-spy writes its output on an interrupt
        for process, _out in self.recordings.values():
            process.wait(timeout=60)

    def report(self) -> None:
        print(f"\n   py-spy during the loop ({self.seconds:.1f} s, {SPY_RATE} samples/s, waiting leaves left out):")
        for name, (_process, out) in self.recordings.items():
            if not out.exists():
                print(f"   {name}: no samples (py-spy could not attach: ptrace permission?)")
                continue
            own: Counter[str] = Counter()
            ours: Counter[str] = Counter()
            total = 0
            for line in out.read_text().splitlines():
                stack, _, count_text = line.rpartition(" ")
                if not stack or not count_text.isdigit():
                    continue
                count = int(count_text)
                frames = [_short(frame) for frame in stack.split(";")]
                if frames[-1].startswith(WAITING):
                    continue
                total += count
                own[frames[-1]] += count
                for frame in set(frames):
                    if "runner/" in frame or "adapters/" in frame:
                        ours[frame] += count
            busy = total / (SPY_RATE * self.seconds) if self.seconds else 0.0
            print(f"   {name}: {total} working samples, busy {busy:.0%} of the loop (shares below: of those)")
            for title, counter in (("project code, inclusive", ours), ("own time", own)):
                print(f"     {title}:")
                for frame, count in counter.most_common(8):
                    print(f"       {count / max(total, 1):5.0%}  {frame}")


def _short(frame: str) -> str:
    """``function (path/to/file.py:line)`` with the path cut to its last two parts."""
    function, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{function} ({'/'.join(Path(path).parts[-2:])})"


def view_loop(client: Any, timed: TimedClient, runs: int, profile: bool, spy: bool) -> None:
    wf = chain_workflow()
    profiler = cProfile.Profile() if profile else None
    spying = Spy(actor_pids(client)) if spy else None
    if profiler:
        profiler.enable()
    start = time.perf_counter()
    submitted = [timed.submit(wf, x) for x in range(runs)]
    submit_loop = time.perf_counter() - start
    calls = []  # (wall time result() was called, wall time it returned)
    for handle, *_ in submitted:
        called = time.time()
        handle.result(timeout=600)
        calls.append((called, time.time()))
    elapsed = time.perf_counter() - start
    if profiler:
        profiler.disable()
    if spying:
        spying.stop()
    queued, executing, ended_before, lag_after_end = [], [], [], []
    for (handle, _took, _started, submit_returned), (called, returned) in zip(submitted, calls, strict=True):
        events = [e.event for e in handle.history()]
        first_start = min(e.at for e in events if type(e).__name__ == "StepStarted")
        completed = next(e.at for e in events if type(e).__name__ == "RunCompleted")
        queued.append(first_start - submit_returned)
        executing.append(completed - first_start)
        if completed <= called:
            ended_before.append(returned - called)
        else:
            lag_after_end.append(returned - completed)
    print(
        f"\n2. the loop, {runs} runs x 3 steps: {runs / elapsed:.1f} runs/s; submit loop {submit_loop:.2f} s, "
        f"result loop {elapsed - submit_loop:.2f} s"
    )
    print_block(
        "   per run (ms)",
        {
            "submit": [took for _h, took, _s, _r in submitted],
            "  of it client.new_run": timed.prep[-runs:],
            "queued (submit returned -> first StepStarted)": queued,
            "executing (first StepStarted -> RunCompleted)": executing,
            "result() of a run already ended: the call": ended_before,
            "result() of a run still executing: returned after RunCompleted": lag_after_end,
        },
    )
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print("\n   driver cProfile of the loop (top 15 by own time):")
        print("\n".join("   " + line for line in out.getvalue().splitlines() if line.strip()))
    if spying:
        spying.report()


def view_result(client: Any, runs: int) -> None:
    wf = chain_workflow()
    handles = client.submit_many(wf, list(range(runs)))
    client.results(handles, timeout=600)
    found: dict[str, list[float]] = {"result() total": [], "  wait (Store actor wait_outcomes)": [], "  outcome": []}
    found["  result_of"] = []
    for handle in handles:
        start = time.perf_counter()
        handle.result(timeout=60)
        found["result() total"].append(time.perf_counter() - start)
        start = time.perf_counter()
        client.wait_records([handle.run_id], 60)
        found["  wait (Store actor wait_outcomes)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        record, last = client.reader.outcome(handle.run_id)
        found["  outcome"].append(time.perf_counter() - start)
        start = time.perf_counter()
        client.result_of(record, last)
        found["  result_of"].append(time.perf_counter() - start)
    print_block("3. result() of an ended run (ms)", found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--cprofile", action="store_true", help="also profile the driver during the loop")
    parser.add_argument("--py-spy", action="store_true", help="also sample the Runner, Store actor and workers")
    args = parser.parse_args()
    start_ray()
    try:
        client = connect()
        timed = TimedClient(client)
        wf = chain_workflow()
        for x in range(10):  # warm the workers and the task processes
            client.submit(wf, x).result(timeout=120)
        view_submit(client, timed)
        view_loop(client, timed, args.runs, args.cprofile, args.py_spy)
        view_result(client, 100)
        close(client)
    finally:
        stop_ray()


if __name__ == "__main__":
    main()
