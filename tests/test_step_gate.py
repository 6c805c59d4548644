"""A step task checks the append it was dispatched on before running its step (runner.step_task.check_gate)."""

from __future__ import annotations

import pytest

from runner.errors import FencedError, StoreWriteFailed
from runner.step_task import check_gate
from runner.store import Receipt


def test_a_committed_append_or_none_lets_the_step_run() -> None:
    check_gate("r1", Receipt(run_id="r1", first_seq=2, last_seq=3))
    check_gate("r1", None)  # dispatched with no append before it (nothing was buffered)


@pytest.mark.parametrize("refusal", [FencedError("r1", 1, 2), StoreWriteFailed("/s.duckdb", "disk full")])
def test_a_refused_append_is_raised_and_the_step_does_not_run(refusal: Exception) -> None:
    with pytest.raises(type(refusal)):
        check_gate("r1", refusal)


def test_a_receipt_of_another_run_is_refused() -> None:
    with pytest.raises(RuntimeError, match="gated on an append of run 'r2'"):
        check_gate("r1", Receipt(run_id="r2", first_seq=1, last_seq=1))
