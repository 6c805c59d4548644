"""Start-up recovery's decisions: the order unfinished runs resume in, which leases were still held,
and what becomes of a suspended run (woken, timer set, or left waiting)."""

from __future__ import annotations

from runner.events import RunSuspended, SignalReceived, StoredEvent
from runner.startup_recovery import AtStart, RecoveryLedger, StartupPlan, resume_order, suspended_at_start
from runner.store import RunRecord, RunStatus, Signal

NOW = 10_000.0


def _record(run_id: str, status: RunStatus, created_at: float, lease_until: float | None = None) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow="wf",
        status=status,
        definition=b"",
        definition_hash="h",
        created_at=created_at,
        updated_at=created_at,
        lease_owner=None if lease_until is None else "worker-1",
        lease_expires_at=lease_until,
    )


def _signal(sent_at: float) -> Signal:
    return Signal(run_id="s", signal_id=1, name="go", payload=None, sent_at=sent_at)


def _suspended(at: float, wake_at: float | None) -> StoredEvent:
    return StoredEvent(run_id="s", seq=5, event=RunSuspended(reason="waiting", wake_at=wake_at, at=at))


def test_running_and_cancelling_runs_resume_before_pending_ones_each_oldest_first() -> None:
    records = [
        _record("p-new", RunStatus.PENDING, 3.0),
        _record("r-new", RunStatus.RUNNING, 4.0),
        _record("p-old", RunStatus.PENDING, 1.0),
        _record("c", RunStatus.CANCELLING, 2.0),
    ]
    resumed, _ = resume_order(records, NOW)
    assert resumed == ("c", "r-new", "p-old", "p-new")


def test_only_leases_that_have_not_expired_count_as_taken_over() -> None:
    records = [
        _record("held", RunStatus.RUNNING, 1.0, lease_until=NOW + 10),
        _record("expired", RunStatus.RUNNING, 2.0, lease_until=NOW - 10),
        _record("free", RunStatus.PENDING, 3.0),
    ]
    assert resume_order(records, NOW)[1] == ("held",)


def test_a_suspended_run_with_a_signal_sent_since_it_slept_is_woken() -> None:
    assert suspended_at_start(_suspended(at=100.0, wake_at=None), [_signal(150.0)], NOW) == (AtStart.WAKE, None)


def test_a_signal_from_before_it_slept_does_not_wake_it() -> None:
    assert suspended_at_start(_suspended(at=100.0, wake_at=None), [_signal(50.0)], NOW) == (AtStart.LEAVE, None)


def test_a_due_timer_wakes_it_and_a_later_one_is_set() -> None:
    assert suspended_at_start(_suspended(at=100.0, wake_at=NOW - 1), [], NOW) == (AtStart.WAKE, NOW - 1)
    assert suspended_at_start(_suspended(at=100.0, wake_at=NOW + 60), [], NOW) == (AtStart.SET_TIMER, NOW + 60)


def test_a_run_whose_last_event_is_not_its_suspension_has_no_timer() -> None:
    last = StoredEvent(run_id="s", seq=5, event=SignalReceived(signal_id=1, name="go", payload=None, at=100.0))
    assert suspended_at_start(last, [], NOW) == (AtStart.LEAVE, None)
    assert suspended_at_start(None, [], NOW) == (AtStart.LEAVE, None)


def test_the_plan_reports_what_it_found() -> None:
    plan = StartupPlan(resume=("a", "b"), wake=("w",), timers=((NOW + 5, "t"),), leases_taken_over=("a",))
    report = plan.report()
    assert (report.resumed, report.woken, report.timers, report.leases_taken_over) == (
        ("a", "b"),
        ("w",),
        ("t",),
        ("a",),
    )
    assert report.redispatched == {} and report.not_resumed == {}


def test_the_report_lists_blocked_runs_with_why_until_they_are_unblocked() -> None:
    ledger = RecoveryLedger()
    ledger.blocked("r1", "run paused: the store file cannot be written (ENOSPC)")
    ledger.blocked("r2", "run paused: the store file cannot be written (EROFS)")
    assert ledger.report().blocked == {
        "r1": "run paused: the store file cannot be written (ENOSPC)",
        "r2": "run paused: the store file cannot be written (EROFS)",
    }
    ledger.unblocked("r1")
    ledger.unblocked("r3")  # never blocked: nothing to do
    assert ledger.report().blocked == {"r2": "run paused: the store file cannot be written (EROFS)"}
