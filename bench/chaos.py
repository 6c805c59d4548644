"""Chaos harness: every fault a real cluster has, injected into a small mixed workload.

    make chaos                                  # this script, then pytest -m slow
    .venv/bin/python bench/chaos.py --repeats 3 --trial-timeout 90 --faults worker-sigkill,disk-full

For each fault, ``--repeats`` trials. A trial connects a fresh Runner to a fresh
DuckDB file, submits the workload of bench/chaos_workload.py (six runs),
waits until steps are in flight, injects the fault (bench/chaos_faults.py),
sends the waiting run its signal, and waits for every run to end, at most
``--trial-timeout`` seconds from submit. Then it reads each run's history and
the side-effect log and counts what survived. A fault whose trial leaves runs
hung is not repeated (its next trials would hang the same way; ``--keep-going``
repeats it anyway). Every call the harness makes is bounded in time, so the
script always ends and always writes its table to docs/reliability.md
(between the ``chaos:begin`` and ``chaos:end`` markers; ``--no-write`` only
prints it).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(HERE), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)

from runner import faults  # noqa: E402

FAULT_DIR = Path(tempfile.mkdtemp(prefix="runner-chaos-faults-"))
os.environ[faults.ENV_VAR] = str(FAULT_DIR)  # before Ray starts: every Ray process obeys it
faults.enable(FAULT_DIR)

import ray  # noqa: E402
from chaos_faults import CALL_SECONDS, CONFIG, FAULTS, ClusterRay, Fault, LocalRay, TrialContext, bounded  # noqa: E402
from chaos_workload import SIGNAL, SIGNAL_PAYLOAD, Planned, plan  # noqa: E402
from common import machine  # noqa: E402

from runner.client import connect  # noqa: E402
from runner.events import (  # noqa: E402
    FactProduced,
    RunCompleted,
    RunFailed,
    SignalReceived,
    StoredEvent,
    TimerFired,
)
from runner.testing.sideeffects import executions  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"
TRIGGER_EFFECTS = 8  # inject once this many steps have started (chains are at their second step)
PROGRESS = (FactProduced, SignalReceived, TimerFired, RunCompleted)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class TrialResult:
    runs: int = 0
    right: int = 0
    failed: int = 0
    hung: int = 0
    duplicated: int = 0  # FactProduced for a node/item already recorded in that run
    reexecuted: int = 0  # steps (node/item of a run) whose code ran more than once
    broken: int = 0  # histories with a gap in their sequence numbers
    recovery: float | None = None  # seconds from the fault until every affected run progressed
    seconds: dict[str, float] = field(default_factory=dict)  # where the trial's time went
    run_errors: list[str] = field(default_factory=list)
    api_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _short(exc: BaseException | str, limit: int = 90) -> str:
    """One line: the error's type (a RayTaskError's names its cause) and the start of its message."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    text = " ".join(ANSI.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_trial(fault: Fault, env: LocalRay | ClusterRay, timeout: float) -> TrialResult:
    result = TrialResult()
    trial_dir = Path(tempfile.mkdtemp(prefix="runner-chaos-"))
    log = str(trial_dir / "effects.log")
    namespace = f"chaos-{uuid.uuid4().hex[:12]}"
    store_url = f"duckdb:///{trial_dir / 'store.duckdb'}"
    env.prepare_trial()
    started = time.monotonic()
    deadline = started + timeout
    lap = _Laps(result)
    client = bounded(lambda: connect(store=store_url, namespace=namespace, config=CONFIG), 60, "connect")
    lap("connect")
    planned = plan(log)
    run_ids = [f"{p.workflow.name}-{i}-{uuid.uuid4().hex[:8]}" for i, p in enumerate(planned)]
    for p, run_id in zip(planned, run_ids, strict=True):
        bounded(functools.partial(client.submit, p.workflow, p.input, run_id=run_id), what="submit")
    trial = TrialContext(
        env=env, fault_dir=FAULT_DIR, client=client, store_url=store_url, namespace=namespace, run_ids=run_ids
    )
    result.runs = len(run_ids)
    lap("submit")
    try:
        while len(executions(log)) < TRIGGER_EFFECTS and time.monotonic() < started + 30:
            time.sleep(0.02)
        open_at_fault = {r.run_id for r in _records(trial, result) if not r.status.is_terminal}
        try:
            struck = fault.inject(trial)
        except Exception as exc:
            result.notes.append(_short(f"the fault could not be injected: {_short(exc)}"))
            struck = time.time()
        lap("until the fault")
        try:
            _wait(trial, planned, fault, struck, deadline, result)
        except Exception as exc:
            result.notes.append(_short(f"the harness stopped waiting: {_short(exc)}"))
    finally:
        with contextlib.suppress(Exception):
            fault.cleanup(trial)
    lap("until the runs ended")
    _judge(trial, planned, log, struck, open_at_fault, result)
    result.notes.extend(trial.notes)
    with contextlib.suppress(Exception):
        bounded(lambda: ray.kill(trial.client.runner, no_restart=True), what="kill the Runner")
    shutil.rmtree(trial_dir, ignore_errors=True)
    lap("judge and clean up")
    return result


class _Laps:
    """Records how long each phase of a trial took, in ``result.seconds``."""

    def __init__(self, result: TrialResult) -> None:
        self.result = result
        self.last = time.monotonic()

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        self.result.seconds[phase] = round(now - self.last, 2)
        self.last = now


def _records(trial: TrialContext, result: TrialResult) -> list:
    """The trial's run records through the public API; a failing call is noted and yields []."""
    try:
        return bounded(lambda: trial.client.list_runs(limit=100), what="list_runs")
    except TimeoutError:
        result.api_errors.append(f"list_runs did not return in {CALL_SECONDS:g} s")
        return []
    except Exception as exc:
        result.api_errors.append(f"list_runs raised {type(exc).__name__}")
        return []


def _wait(
    trial: TrialContext, planned: list[Planned], fault: Fault, struck: float, deadline: float, result: TrialResult
) -> None:
    """Send the signal, tick the fault, and poll until every run has ended or the deadline."""
    waiting = [run_id for p, run_id in zip(planned, trial.run_ids, strict=True) if p.signalled]
    while time.monotonic() < deadline:
        fault.tick(trial, time.time() - struck)
        for run_id in list(waiting):
            try:
                bounded(functools.partial(trial.client.signal, run_id, SIGNAL, SIGNAL_PAYLOAD), what="signal")
                waiting.remove(run_id)
            except TimeoutError:  # the call may still land: do not send it twice
                result.api_errors.append(f"signal did not return in {CALL_SECONDS:g} s")
                waiting.remove(run_id)
            except Exception as exc:
                result.api_errors.append(f"signal raised {type(exc).__name__}")
        records = _records(trial, result)
        if len(records) == len(trial.run_ids) and all(r.status.is_terminal for r in records):
            return
        time.sleep(0.2)


def _history(trial: TrialContext, run_id: str) -> list[StoredEvent]:
    return trial.client.get(run_id).history()


def _judge(
    trial: TrialContext,
    planned: list[Planned],
    log: str,
    struck: float,
    open_at_fault: set[str],
    result: TrialResult,
) -> None:
    recoveries: list[float | None] = []
    for p, run_id in zip(planned, trial.run_ids, strict=True):
        try:
            history = bounded(functools.partial(_history, trial, run_id), what="history")
        except Exception as exc:
            result.api_errors.append(f"history raised {type(exc).__name__}")
            result.hung += 1
            recoveries.append(None)
            continue
        last = history[-1].event if history else None
        if isinstance(last, RunCompleted) and last.result == p.expected:
            result.right += 1
        elif isinstance(last, RunFailed):
            result.failed += 1
            result.run_errors.append(_short(f"{last.error.type.rsplit('.', 1)[-1]}: {last.error.message}"))
        elif isinstance(last, RunCompleted):
            result.failed += 1
            result.run_errors.append(f"wrong result {last.result!r}, expected {p.expected!r}")
        else:
            result.hung += 1
            result.notes.append(f"{p.kind} hung after {type(last).__name__} (event {len(history)})")
            if os.environ.get("CHAOS_DEBUG"):
                rec = trial.client.get(run_id).record()
                print("DEBUG", run_id, rec.status, [type(s.event).__name__ for s in history], flush=True)
                print("DEBUG", [(s.event.at, type(s.event).__name__) for s in history], "struck", struck, flush=True)
        facts = collections.Counter((s.event.node, s.event.item) for s in history if isinstance(s.event, FactProduced))
        result.duplicated += sum(n - 1 for n in facts.values() if n > 1)
        result.broken += [s.seq for s in history] != list(range(1, len(history) + 1))
        if run_id in open_at_fault:
            progressed = [s.event.at for s in history if isinstance(s.event, PROGRESS) and s.event.at > struck]
            recoveries.append(min(progressed) - struck if progressed else None)
    ran = collections.Counter(executions(log))  # "run_id|step|item", once per start of the step's code
    result.reexecuted = sum(1 for n in ran.values() if n > 1)
    if recoveries and all(r is not None for r in recoveries):
        result.recovery = max(r for r in recoveries if r is not None)
    elif not recoveries:
        result.recovery = 0.0


# ---------------------------------------------------------------- the table
@dataclass
class FaultRow:
    fault: Fault
    trials: list[TrialResult] = field(default_factory=list)
    skipped: str = ""

    def cells(self) -> list[str]:
        t = self.trials
        if not t:
            return [self.fault.name, "0", "–", "–", "–", "–", "–", "–", "–", "–", self.skipped or "not run"]
        runs = sum(r.runs for r in t)
        lost_failed, lost_hung = sum(r.failed for r in t), sum(r.hung for r in t)
        recoveries = [r.recovery for r in t]
        measured = [r for r in recoveries if r is not None]
        never = len(recoveries) - len(measured)
        p50 = f"{statistics.median(measured):.1f} s" if measured else "–"
        worst = "never" if never else (f"{max(measured):.1f} s" if measured else "–")
        errors = [e for r in t for e in r.run_errors] + [e for r in t for e in r.api_errors]
        first = errors[0] if errors else ("hung" if lost_hung else "")
        notes = [n for r in t for n in r.notes]
        if self.skipped:
            notes.append(self.skipped)
        return [
            self.fault.name,
            f"{len(t)}×{runs // len(t)}",
            f"{sum(r.right for r in t)}/{runs}",
            f"{lost_failed + lost_hung} ({lost_failed}/{lost_hung})",
            str(sum(r.duplicated for r in t)),
            str(sum(r.reexecuted for r in t)),
            str(sum(r.broken for r in t)),
            p50,
            worst,
            first.replace("|", "/"),
            "; ".join(notes).replace("|", "/"),
        ]


HEADER = [
    "fault",
    "trials×runs",
    "finished right",
    "lost (failed/hung)",
    "duplicated results",
    "re-executed steps",
    "broken logs",
    "recover p50",
    "recover max",
    "first error seen",
    "notes",
]


def table(rows: list[FaultRow], args: argparse.Namespace, seconds: float) -> str:
    facts = machine()
    lines = [
        f"Measured {facts['date']}, commit {facts['commit']}, {facts['cpus']} CPUs, {facts['memory_gib']} GiB, "
        f"{facts['platform']}, Python {facts['python']}, Ray {facts['ray']}, DuckDB {facts['duckdb']}; "
        f"`bench/chaos.py --repeats {args.repeats} --trial-timeout {args.trial_timeout:g}` took {seconds:.0f} s.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    lines += ["", "Faults:", ""]
    lines += [f"- **{row.fault.name}**: {row.fault.what}." for row in rows]
    return "\n".join(lines)


def publish(text: str) -> None:
    block = f"{BEGIN}\n{text}\n{END}"
    if DOC.exists() and BEGIN in DOC.read_text():
        body = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, DOC.read_text(), flags=re.S)
    else:
        body = (DOC.read_text() if DOC.exists() else "# Reliability\n") + "\n" + block + "\n"
    DOC.write_text(body)


# ----------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="trials per fault (default 3)")
    parser.add_argument("--trial-timeout", type=float, default=90.0, help="seconds a trial may take (default 90)")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of: {', '.join(FAULTS)}")
    parser.add_argument("--budget", type=float, default=900.0, help="start no trial after this many seconds")
    parser.add_argument("--keep-going", action="store_true", help="repeat a fault even after a trial hung")
    parser.add_argument("--no-write", action="store_true", help=f"print the table, do not write {DOC.name}")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.faults.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    rows = [FaultRow(FAULTS[name]()) for name in names]
    began = time.monotonic()
    try:
        for env in (LocalRay(), ClusterRay()):
            mine = [row for row in rows if row.fault.cluster == env.cluster]
            if not mine:
                continue
            env.start()
            try:
                for row in mine:
                    _run_fault(row, env, args, began)
            finally:
                env.stop()
    finally:
        text = table(rows, args, time.monotonic() - began)
        print(text, flush=True)
        if not args.no_write:
            publish(text)
            print(f"written to {DOC}", flush=True)
        shutil.rmtree(FAULT_DIR, ignore_errors=True)
    return 0


def _run_fault(row: FaultRow, env: LocalRay | ClusterRay, args: argparse.Namespace, began: float) -> None:
    for index in range(args.repeats):
        if time.monotonic() - began > args.budget:
            row.skipped = f"{args.repeats - index} trial(s) skipped: over the {args.budget:g} s budget"
            return
        print(f"--- {row.fault.name}: trial {index + 1}/{args.repeats}", flush=True)
        try:
            trial = run_trial(row.fault, env, args.trial_timeout)
        except Exception as exc:  # the harness could not even set the trial up
            trial = TrialResult(runs=6, hung=6, notes=[_short(f"trial not run: {_short(exc)}")])
            env.stop()
            env.start()
        trial.notes = [f"trial {index + 1}: {note}" for note in trial.notes]
        row.trials.append(trial)
        print(f"    {trial}", flush=True)
        if trial.hung and not args.keep_going and index + 1 < args.repeats:
            row.skipped = f"not repeated after a trial with hung runs ({args.repeats - index - 1} skipped)"
            return


if __name__ == "__main__":
    sys.exit(main())
