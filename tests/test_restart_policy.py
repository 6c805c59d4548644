"""RestartPolicy: the restart-intensity window, backoff doubling with a cap, and the give-up message."""

from __future__ import annotations

import pytest

from runner.restart_policy import GiveUp, Restart, RestartPolicy, TurnFailure


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _policy(clock: _Clock, **overrides: float) -> RestartPolicy:
    settings: dict[str, float] = {"limit": 3, "window": 60.0, "backoff": 0.2, "backoff_max": 10.0}
    settings.update(overrides)
    return RestartPolicy(
        limit=int(settings["limit"]),
        window=settings["window"],
        backoff=settings["backoff"],
        backoff_max=settings["backoff_max"],
        clock=clock,
    )


def test_backoff_doubles_per_restart_inside_the_window() -> None:
    policy = _policy(_Clock())
    decisions = [policy.after_failure("r", "its worker died", TurnFailure.WORKER_DIED) for _ in range(3)]
    assert decisions == [Restart(delay=0.2), Restart(delay=0.4), Restart(delay=0.8)]
    assert policy.restarts == 3


def test_backoff_stops_at_its_cap() -> None:
    policy = _policy(_Clock(), limit=10, backoff=1.0, backoff_max=3.0)
    delays = [policy.after_failure("r", "died", TurnFailure.WORKER_DIED) for _ in range(4)]
    assert delays == [Restart(delay=1.0), Restart(delay=2.0), Restart(delay=3.0), Restart(delay=3.0)]


def test_one_more_failure_than_the_limit_inside_the_window_gives_up_saying_why() -> None:
    policy = _policy(_Clock(), limit=2, window=30.0)
    for _ in range(2):
        assert isinstance(policy.after_failure("r", "its worker died (boom)", TurnFailure.WORKER_DIED), Restart)
    decision = policy.after_failure("r", "its worker died (boom)", TurnFailure.WORKER_DIED)
    assert isinstance(decision, GiveUp)
    assert decision.message.startswith("run stopped: its worker died (boom); that is 3 failed worker turns within 30s")
    assert "over the restart limit of 2" in decision.message
    assert "A step that kills its process" in decision.message and "replay the run" in decision.message


def test_a_worker_that_raised_gets_the_load_or_fold_advice() -> None:
    policy = _policy(_Clock(), limit=0)
    decision = policy.after_failure(
        "r", "its worker could not drive it: ModuleNotFoundError", TurnFailure.WORKER_RAISED
    )
    assert isinstance(decision, GiveUp)
    assert "could not load or fold the run" in decision.message and "restart limit of 0" in decision.message


def test_failures_older_than_the_window_no_longer_count() -> None:
    clock = _Clock()
    policy = _policy(clock, limit=2, window=10.0)
    policy.after_failure("r", "died", TurnFailure.WORKER_DIED)
    policy.after_failure("r", "died", TurnFailure.WORKER_DIED)
    clock.now += 10.5  # both fall out of the window
    assert policy.after_failure("r", "died", TurnFailure.WORKER_DIED) == Restart(delay=0.2)


def test_a_give_up_or_forget_starts_the_count_again() -> None:
    policy = _policy(_Clock(), limit=1)
    policy.after_failure("r", "died", TurnFailure.WORKER_DIED)
    assert isinstance(policy.after_failure("r", "died", TurnFailure.WORKER_DIED), GiveUp)
    assert policy.after_failure("r", "died", TurnFailure.WORKER_DIED) == Restart(delay=0.2)
    policy.forget("r")
    assert policy.after_failure("r", "died", TurnFailure.WORKER_DIED) == Restart(delay=0.2)


def test_runs_are_counted_apart() -> None:
    policy = _policy(_Clock(), limit=1)
    assert isinstance(policy.after_failure("a", "died", TurnFailure.WORKER_DIED), Restart)
    assert isinstance(policy.after_failure("b", "died", TurnFailure.WORKER_DIED), Restart)
    assert isinstance(policy.after_failure("a", "died", TurnFailure.WORKER_DIED), GiveUp)
    assert policy.restarts == 3


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_the_limit_counts_restarts_not_failures(limit: int) -> None:
    policy = _policy(_Clock(), limit=limit)
    for _ in range(limit):
        assert isinstance(policy.after_failure("r", "died", TurnFailure.WORKER_DIED), Restart)
    assert isinstance(policy.after_failure("r", "died", TurnFailure.WORKER_DIED), GiveUp)


# ------------------------------------------------------- the store's outages
DISK_FULL = "the store file /data/s.duckdb cannot be written (ENOSPC: No space left on device)"


def test_a_store_outage_is_counted_apart_from_worker_losses() -> None:
    policy = _policy(_Clock(), limit=2)
    assert policy.after_failure("r", DISK_FULL, TurnFailure.STORE) == Restart(delay=0.2)
    assert policy.after_failure("r", DISK_FULL, TurnFailure.STORE) == Restart(delay=0.4)
    assert (policy.restarts, policy.store_outages) == (0, 2)
    # the run's worker budget is untouched by the outage, and the other way round
    assert policy.after_failure("r", "its worker died", TurnFailure.WORKER_DIED) == Restart(delay=0.2)
    assert (policy.restarts, policy.store_outages) == (1, 2)
    assert isinstance(policy.after_failure("r", DISK_FULL, TurnFailure.STORE), GiveUp)
    assert policy.after_failure("r", "its worker died", TurnFailure.WORKER_DIED) == Restart(delay=0.4)


def test_over_the_limit_a_store_outage_says_the_run_is_paused_and_how_to_go_on() -> None:
    policy = _policy(_Clock(), limit=1, window=30.0)
    policy.after_failure("r", DISK_FULL, TurnFailure.STORE)
    decision = policy.after_failure("r", DISK_FULL, TurnFailure.STORE)
    assert isinstance(decision, GiveUp)
    assert decision.message.startswith(f"run paused: {DISK_FULL}; that is 2 failed store writes within 30s")
    assert "over the restart limit of 1" in decision.message
    assert "free disk space or fix the store file's permissions" in decision.message
    assert "`runner resume RUN_ID` or client.resume(run_id)" in decision.message
    assert "replay" not in decision.message  # nothing is lost: no replay needed


def test_forget_clears_both_counts() -> None:
    policy = _policy(_Clock(), limit=1)
    policy.after_failure("r", DISK_FULL, TurnFailure.STORE)
    policy.after_failure("r", "died", TurnFailure.WORKER_DIED)
    policy.forget("r")
    assert policy.after_failure("r", DISK_FULL, TurnFailure.STORE) == Restart(delay=0.2)
    assert policy.after_failure("r", "died", TurnFailure.WORKER_DIED) == Restart(delay=0.2)
