"""Named fault points: a test crashes, stops or fails a process exactly at a commit boundary.

Code calls :func:`hit` at a few named places (the :class:`FaultPoint` values).
Disarmed, a call costs one global check. A test arms a point, and the next
process to reach it does what the arming says (:class:`Action`), so a crash
lands between "committed" and "replied" instead of wherever a sleep happened
to end.

Arming reaches every Ray process through the file system:

- Set the environment variable ``RUNNER_FAULTS`` to a directory in every
  process that should obey, before it imports this module (it is read once,
  at import). For a local Ray instance, set ``os.environ`` before
  ``ray.init`` (Ray's processes inherit it) or pass
  ``runtime_env={"env_vars": faults.environment(directory)}``.
- :func:`arm` writes a small arming into that directory: the point, an
  optional run id (the point then fires only for that run), the action and
  how many times it may fire (or, ``times=None``, until disarmed). Each
  allowed firing is one token file; a process that fires claims a token
  with ``os.rename``, which only one process can win, so two processes
  never both take the last one.
- :func:`fired` / :func:`wait_fired` read the firings (which process, which
  run, when); :func:`release` opens the gates of :attr:`Action.GATE`
  firings; :func:`disarm` takes armings back.

Layout of the directory::

    armed/<point>/<arm id>.json            the arming (run id, action, error to raise)
    armed/<point>/<arm id>.<n>.token       one per firing still allowed (none if unlimited)
    fired/<point>/<arm id>.<n>.json        one per firing (pid, run ids, time)
    fired/<point>/<arm id>.<n>.released    a GATE firing's gate, opened

Where each point sits (the worker-side ones are placed by the worker):

- ``STORE_COMMIT``: ``runner/group_commit.py`` ``GroupCommitter._commit`` (on the Store actor's writer thread), just
  before ``append_many``. Arm it with RAISE and an ``OSError(ENOSPC)`` for a
  full disk: every caller of that commit gets ``StoreWriteFailed`` (the actor
  translates the ``OSError``), nothing is written.
- ``STORE_COMMITTED``: ``GroupCommitter._commit``, just after ``append_many``
  returned, before ``_finish_group`` resolves the callers' futures. CRASH
  there is a commit whose reply is lost; RAISE reports a failure for a
  batch that was in fact committed (an ambiguous commit).
- ``STEP_FINISHED``: ``runner/worker.py``, where a finished task's outcome is
  collected (``RunExecutor._cycles``; an inline step's in ``_run_inline``),
  before the events recording it are staged and appended: a crash there
  re-runs the step.
- ``APPEND_COMMITTED``: ``runner/worker.py`` ``RunExecutor._committed``, right
  after the append call returned its receipt, before the worker checks it or
  runs the inline steps it unlocked (the Ray tasks it unlocked were dispatched
  with the append as their dependency, and may be starting).
- ``RESULTS_HELD``: ``runner/worker.py`` ``RunExecutor._cycles``, when the run's
  checkpoint strategy (:mod:`runner.checkpoint`) keeps step results buffered
  past a cycle instead of appending them: a crash there loses them, and the
  steps they record run again.
- ``TAKEN_OVER``: ``runner/worker.py`` ``RunExecutor.recover``, right after the
  takeover call (``open_turns``) returned the new lease, before the first cycle.

Blocking (GATE, STOP) in async code: :func:`hit` is synchronous, so a GATE
blocks the whole event loop of the process that hits it (every coroutine of
that actor stops, much like a frozen process) until :func:`release` or until
the fault directory is removed; in a synchronous callback such as the Store
actor's commit that is the point. To block only the calling coroutine, use
``await ahit(...)``, which polls with ``asyncio.sleep``. STOP always stops
the whole process (SIGSTOP) until someone sends SIGCONT.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import pickle
import signal
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runner.vocabulary import Vocabulary

ENV_VAR = "RUNNER_FAULTS"
GATE_POLL_SECONDS = 0.01


class FaultPoint(Vocabulary):
    """A named place in the code where a test can inject a fault."""

    STEP_FINISHED = "step_finished"  # worker: a task's result arrived, not yet appended
    APPEND_COMMITTED = "append_committed"  # worker: the append returned its receipt, not yet acted on
    SUCCESSOR_CREATED = "successor_created"  # worker: a continue-as-new's successor run exists, the run not closed
    TAKEN_OVER = "taken_over"  # worker: the run was taken over, its first cycle not yet run
    RESULTS_HELD = "results_held"  # worker: a cycle's results stay buffered (checkpoint strategy), not appended
    STORE_COMMIT = "store_commit"  # Store actor: about to commit a batch
    STORE_COMMITTED = "store_committed"  # Store actor: committed, the callers not yet answered


class Action(Vocabulary):
    """What a process does when it reaches an armed point."""

    CRASH = "crash"  # SIGKILL its own process
    STOP = "stop"  # SIGSTOP its own process (frozen until SIGCONT)
    RAISE = "raise"  # raise the arming's error (default: OSError ENOSPC, a full disk)
    GATE = "gate"  # block until release() opens the gate


@dataclass(frozen=True, kw_only=True)
class Firing:
    """One time a point fired: which arming, in which process, for which run(s), when."""

    point: FaultPoint
    action: Action
    arm_id: str
    pid: int
    run_ids: tuple[str, ...]
    at: float
    record: Path  # the firing's file, for release()


@dataclass(frozen=True, kw_only=True)
class _Arming:
    arm_id: str
    run_id: str | None
    action: Action
    error: BaseException | None
    unlimited: bool  # fires until disarmed: no tokens


def _directory_from_env() -> Path | None:
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else None


_DIRECTORY: Path | None = _directory_from_env()


def enable(directory: str | os.PathLike[str] | None) -> None:
    """Obey armings in ``directory`` in this process (None: obey none). The environment
    variable does this at import; tests without Ray call this instead."""
    global _DIRECTORY
    _DIRECTORY = Path(directory) if directory is not None else None


def directory() -> Path | None:
    """The fault directory this process obeys, if any."""
    return _DIRECTORY


def environment(directory: str | os.PathLike[str]) -> dict[str, str]:
    """The environment that arms processes with ``directory`` (for a Ray ``runtime_env``)."""
    return {ENV_VAR: str(directory)}


# ---------------------------------------------------------------- in the code
def hit(point: FaultPoint, run_id: str | None = None) -> None:
    """Do what an arming of ``point`` (for ``run_id``, or for any run) says; nothing if none."""
    if _DIRECTORY is None:
        return
    firing = _fire(_DIRECTORY, point, (run_id,) if run_id is not None else ())
    if firing is not None:
        _act_now(firing)


def hit_any(point: FaultPoint, run_ids: Iterable[str]) -> None:
    """:func:`hit` for a batch of runs: fires at most once, if an arming matches any of them."""
    if _DIRECTORY is None:
        return
    firing = _fire(_DIRECTORY, point, tuple(run_ids))
    if firing is not None:
        _act_now(firing)


async def ahit(point: FaultPoint, run_id: str | None = None) -> None:
    """:func:`hit` for coroutines: a GATE waits with ``asyncio.sleep``, so the event loop goes on."""
    if _DIRECTORY is None:
        return
    firing = _fire(_DIRECTORY, point, (run_id,) if run_id is not None else ())
    if firing is None:
        return
    if firing[0].action is Action.GATE:
        while not _gate_open(firing[1]):
            await asyncio.sleep(GATE_POLL_SECONDS)
        return
    _act_now(firing)


def _fire(root: Path, point: FaultPoint, run_ids: tuple[str, ...]) -> tuple[_Arming, Path] | None:
    """Claim one token of the first arming of ``point`` that matches; (arming, firing file)."""
    folder = root / "armed" / point.value
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return None
    specs = [name for name in names if name.endswith(".json")]
    tokens = [name for name in names if name.endswith(".token")]
    for spec in specs:
        arm_id = spec[: -len(".json")]
        mine = [token for token in tokens if token.startswith(arm_id + ".")]
        arming = _read_arming(folder / spec)
        if arming is None or (arming.run_id is not None and arming.run_id not in run_ids):
            continue
        fired_dir = root / "fired" / point.value
        fired_dir.mkdir(parents=True, exist_ok=True)
        if arming.unlimited:
            stem = f"{arm_id}.{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            return arming, _record_firing(fired_dir / (stem + ".json"), point, arming, run_ids)
        for token in mine:
            stem = token[: -len(".token")]
            claimed = fired_dir / (stem + ".claimed")
            try:
                os.rename(folder / token, claimed)  # atomic: one process wins each token
            except FileNotFoundError:
                continue  # another process took it
            record = _record_firing(fired_dir / (stem + ".json"), point, arming, run_ids)
            claimed.unlink(missing_ok=True)
            return arming, record
    return None


def _record_firing(record: Path, point: FaultPoint, arming: _Arming, run_ids: tuple[str, ...]) -> Path:
    data: dict[str, object] = {
        "point": point.value,
        "action": arming.action.value,
        "arm_id": arming.arm_id,
        "pid": os.getpid(),
        "run_ids": list(run_ids),
        "at": time.time(),
    }
    _write_json(record, data)
    return record


def _act_now(firing: tuple[_Arming, Path]) -> None:
    arming, record = firing
    if arming.action is Action.CRASH:
        os.kill(os.getpid(), signal.SIGKILL)
    elif arming.action is Action.STOP:
        os.kill(os.getpid(), signal.SIGSTOP)
    elif arming.action is Action.RAISE:
        raise arming.error if arming.error is not None else disk_full()
    elif arming.action is Action.GATE:
        while not _gate_open(record):
            time.sleep(GATE_POLL_SECONDS)


def _gate_open(record: Path) -> bool:
    """Released, or the fault directory was removed (a test that ended never leaves a gate shut)."""
    return record.with_suffix(".released").exists() or not record.parent.exists()


def disk_full(where: str = "the store") -> OSError:
    """The error a full disk raises: ``OSError`` with ``errno.ENOSPC``."""
    return OSError(errno.ENOSPC, f"No space left on device (injected fault: {where} is full)")


# -------------------------------------------------------------- for the tests
def arm(
    directory: str | os.PathLike[str],
    point: FaultPoint,
    action: Action,
    run_id: str | None = None,
    times: int | None = 1,
    error: BaseException | None = None,
) -> str:
    """Arm ``point``: the next ``times`` processes to reach it (for ``run_id`` only, if given)
    do ``action``; ``times=None``: every one, until :func:`disarm` (a disk that stays full).
    ``error``: what RAISE raises (default :func:`disk_full`). The arming's id."""
    point, action = FaultPoint(point), Action(action)
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a whole number >= 1 or None (until disarmed), got {times!r}")
    if error is not None and action is not Action.RAISE:
        raise ValueError(f"error= only goes with Action.RAISE, not {action.value}")
    folder = Path(directory) / "armed" / point.value
    folder.mkdir(parents=True, exist_ok=True)
    arm_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"  # sorts in arming order
    for n in range(times or 0):  # the tokens first: a process that sees the arming sees all its tokens
        (folder / f"{arm_id}.{n:06d}.token").touch()
    _write_json(
        folder / f"{arm_id}.json",
        {
            "run_id": run_id,
            "action": action.value,
            "error": None if error is None else base64.b64encode(pickle.dumps(error)).decode(),
            "unlimited": times is None,
        },
    )
    return arm_id


def disarm(directory: str | os.PathLike[str], point: FaultPoint | None = None) -> int:
    """Take back the firings still allowed at ``point`` (every point if None); how many were."""
    root = Path(directory) / "armed"
    points = [FaultPoint(point)] if point is not None else list(FaultPoint)
    taken = 0
    for each in points:
        folder = root / each.value
        if not folder.exists():
            continue
        for entry in sorted(folder.iterdir()):
            try:
                entry.unlink()
            except FileNotFoundError:
                continue  # fired meanwhile
            taken += entry.name.endswith(".token")
    return taken


def fired(directory: str | os.PathLike[str], point: FaultPoint) -> list[Firing]:
    """Every firing of ``point`` so far, oldest first."""
    folder = Path(directory) / "fired" / FaultPoint(point).value
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    firings = []
    for name in names:
        if not name.endswith(".json"):
            continue
        data = json.loads((folder / name).read_text())
        firings.append(
            Firing(
                point=FaultPoint(data["point"]),
                action=Action(data["action"]),
                arm_id=data["arm_id"],
                pid=int(data["pid"]),
                run_ids=tuple(data["run_ids"]),
                at=float(data["at"]),
                record=folder / name,
            )
        )
    return sorted(firings, key=lambda f: f.at)


def wait_fired(
    directory: str | os.PathLike[str], point: FaultPoint, count: int = 1, timeout: float = 30.0
) -> list[Firing]:
    """Poll until ``point`` fired at least ``count`` times; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        firings = fired(directory, point)
        if len(firings) >= count:
            return firings
        if time.monotonic() >= deadline:
            raise TimeoutError(f"fault point {FaultPoint(point).value} fired {len(firings)} of {count} times")
        time.sleep(GATE_POLL_SECONDS)


def release(directory: str | os.PathLike[str], point: FaultPoint) -> int:
    """Open the gates of the GATE firings of ``point`` so far (call :func:`wait_fired` first);
    how many were still shut."""
    opened = 0
    for firing in fired(directory, point):
        gate = firing.record.with_suffix(".released")
        if firing.action is Action.GATE and not gate.exists():
            gate.touch()
            opened += 1
    return opened


# ------------------------------------------------------------------- helpers
def _write_json(path: Path, data: dict[str, object]) -> None:
    """Write atomically: readers see the whole file or none."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_arming(path: Path) -> _Arming | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None  # disarmed meanwhile
    error = data.get("error")
    return _Arming(
        arm_id=path.name[: -len(".json")],
        run_id=data.get("run_id"),
        action=Action(data["action"]),
        error=pickle.loads(base64.b64decode(error)) if error else None,
        unlimited=bool(data.get("unlimited")),
    )
