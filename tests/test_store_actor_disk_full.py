"""The Store actor's commit when the disk refuses it, without Ray: every caller of that commit
gets StoreWriteFailed, nothing of it is stored, and the next commit goes through."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import faults
from runner.errors import StoreWriteFailed
from runner.events import FactProduced, RunSubmitted
from runner.faults import Action, FaultPoint
from runner.store import AppendRequest, NewRun
from runner.store_actor import StoreActor


@pytest.fixture
def fault_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "faults"
    before = faults.directory()
    faults.enable(directory)
    yield directory
    faults.enable(before)


def _actor_with_runs(url: str, *run_ids: str) -> tuple[StoreActor, dict[str, int]]:
    actor = StoreActor(url)
    leases = {}
    for run_id in run_ids:
        first = RunSubmitted(workflow="w", input=None, definition_hash="h", at=0.0)
        new = NewRun(run_id=run_id, workflow="w", definition=b"x", definition_hash="h", events=(first,))
        asyncio.run(actor.create_run(new))
        leases[run_id] = actor.acquire_lease(run_id, "me", 60.0).token
    return actor, leases


def _request(run_id: str, lease: int) -> AppendRequest:
    return AppendRequest(run_id=run_id, events=(FactProduced(node="a", value=1, at=1.0),), lease=lease, after_seq=1)


@pytest.mark.parametrize("url", ["memory://", "duckdb"])
def test_a_full_disk_at_commit_answers_every_caller_with_store_write_failed(
    fault_dir: Path, tmp_path: Path, url: str
) -> None:
    url = f"duckdb:///{tmp_path}/s.duckdb" if url == "duckdb" else url
    actor, leases = _actor_with_runs(url, "r1", "r2")
    faults.arm(fault_dir, FaultPoint.STORE_COMMIT, Action.RAISE)  # OSError(ENOSPC), once

    answers = asyncio.run(actor.append_batch([_request(run_id, lease) for run_id, lease in leases.items()]))

    assert all(isinstance(answer, StoreWriteFailed) for answer in answers)
    failure = answers[0]
    assert isinstance(failure, StoreWriteFailed)
    assert failure.path == (str(tmp_path / "s.duckdb") if url.startswith("duckdb") else "memory://")
    assert failure.detail.startswith("ENOSPC: No space left on device")
    assert isinstance(failure.__cause__, OSError) and failure.__cause__.errno == errno.ENOSPC
    assert [len(actor.read_events(run_id)) for run_id in leases] == [1, 1]  # nothing of that commit
    # the disk has room again: the same appends go through
    answers = asyncio.run(actor.append_batch([_request(run_id, lease) for run_id, lease in leases.items()]))
    assert [(a.first_seq, a.last_seq) for a in answers if not isinstance(a, Exception)] == [(2, 2), (2, 2)]
    actor.close()
