"""The ``runner`` command line end to end: every command in a subprocess, against one Ray head.

Each check looks at the exit code (0 ok, 1 the run failed, 2 usage or bad
input) and at the output. A CLI call costs a second or two (the Ray driver
connects), so independent calls run side by side (``cli.many``) and the
runs several tests read are made once per module (fixtures ``runs``/``ids``).
The last test stops the head and reads the same store with no cluster up.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from cli_support import FLOWS, Cli, RayHead, Result, eventually, submitted_id, touch

pytestmark = pytest.mark.ray

QUICK = f"{FLOWS}:quick"
FAILS = f"{FLOWS}:fails"
APPROVAL = f"{FLOWS}:approval"
GATED = f"{FLOWS}:gated"
PAYMENT = f"{FLOWS}:payment"
RELEASE = f"{FLOWS}:release"
GENERATED_ID = re.compile(r"^(?P<workflow>[a-z]+)-[0-9a-f]{16}$")


# -------------------------------------------------------------------- helpers
def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table (one line each: stdout is a pipe, so nothing is wrapped or cut)."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def show_field(result: Result, name: str) -> str:
    """A ``name    value`` line of ``runner show``."""
    found = re.search(rf"^{name}\s+(.*)$", result.out, re.MULTILINE)
    assert found is not None, str(result)
    return found.group(1)


def steps_of(result: Result) -> dict[str, str]:
    """``runner show``'s step table: step name -> status."""
    return {row[0]: row[2] for row in table_rows(result.out)}


def one_error(result: Result, code: int) -> str:
    """Exit ``code`` with exactly one ``error:`` line on stderr and no traceback; that line."""
    assert result.code == code, str(result)
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, str(result)
    assert "Traceback" not in result.err, str(result)
    return errors[0]


def one_error_like(result: Result, text: str) -> str:
    """Exit 1 and exactly one stderr line containing ``text``, no traceback; that line."""
    assert result.code == 1, str(result)
    lines = result.lines(text)
    assert len(lines) == 1 and "Traceback" not in result.err, str(result)
    return lines[0]


def new_run_id(result: Result, workflow: str) -> str:
    assert result.code == 0, str(result)
    run_id = result.out.strip()
    found = GENERATED_ID.match(run_id)
    assert found is not None and found["workflow"] == workflow, str(result)
    return run_id


def wait_until_status(cli: Cli, run_id: str, status: str, timeout: float = 90) -> Result:
    def reached() -> Result | None:
        result = cli("show", run_id)
        assert result.code == 0, str(result)
        return result if show_field(result, "status") == status else None

    return eventually(reached, timeout=timeout, interval=0.2, what=f"run {run_id} to be {status}")


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def started(cli: Cli) -> Result:
    """``runner start`` launches the namespace's Runner (four workers) on the module's head."""
    return cli("start", "--max-workers", "4")


@pytest.fixture(scope="module")
def runs(cli: Cli, started: Result) -> dict[str, Result]:
    """The runs most tests read, made at once: quick, fails (twice, once with --debug), payment, approval."""
    assert started.code == 0, str(started)
    names = ("quick", "fails", "fails_debug", "payment", "approval")
    results = cli.many(
        ["run", QUICK, "--input", '{"n": 3}'],
        ["run", FAILS, "--input", "42"],
        ["run", FAILS, "--input", "42", "--debug"],
        ["run", PAYMENT, "--input", '{"amount": 12.5}'],
        ["submit", APPROVAL, "--input", '{"doc": "d-1"}'],
    )
    return dict(zip(names, results, strict=True))


@pytest.fixture(scope="module")
def ids(runs: dict[str, Result]) -> dict[str, str]:
    return {
        "quick": submitted_id(runs["quick"]),
        "fails": submitted_id(runs["fails"]),
        "fails_debug": submitted_id(runs["fails_debug"]),
        "payment": submitted_id(runs["payment"]),
        "approval": new_run_id(runs["approval"], "approval"),
    }


# ----------------------------------------------------------- without a Runner
def test_usage_errors_exit_2_with_one_line(cli: Cli) -> None:
    (
        unknown_command,
        missing_argument,
        unknown_option,
        bad_json,
        no_such_workflow,
        not_a_workflow,
        no_such_file,
        no_such_module,
        not_a_target,
        bad_status,
        bad_json_debug,
    ) = cli.many(
        ["frobnicate"],
        ["show"],
        ["run", QUICK, "--frobnicate"],
        ["run", QUICK, "--input", "{not json"],
        ["run", f"{FLOWS}:no_such_flow"],
        ["submit", f"{FLOWS}:not_a_workflow"],
        ["run", "tests/cli/no_such_file.py:quick"],
        ["run", "no_such_module_xyz:quick"],
        ["graph", "quick"],
        ["list", "--status", "bogus"],
        ["run", QUICK, "--input", "{not json", "--debug"],
    )
    for result, text in (
        (unknown_command, "No such command 'frobnicate'"),
        (missing_argument, "Missing argument 'RUN_ID'"),
        (unknown_option, "No such option '--frobnicate'"),
    ):
        assert result.code == 2, str(result)
        assert text in result.err, str(result)
    # our own checks: nothing but one "error:" line (they fail before connecting to Ray)
    expected = {
        bad_json: "--input is not valid JSON",
        no_such_workflow: "has no 'no_such_flow'; workflows there: approval, fails, gated, payment, quick",
        not_a_workflow: "is a int, not a runner.Workflow; workflows there: approval",
        no_such_file: "no file 'tests/cli/no_such_file.py'",
        no_such_module: "cannot import module 'no_such_module_xyz'",
        not_a_target: "expected MODULE:WORKFLOW",
        bad_status: "unknown run status 'bogus'",
    }
    for result, text in expected.items():
        assert result.code == 2, str(result)
        assert result.out == "", str(result)
        assert result.err.count("\n") == 1 and result.err.startswith("error: "), str(result)
        assert text in result.err, str(result)
    # --debug adds the traceback and keeps the exit code
    assert bad_json_debug.code == 2, str(bad_json_debug)
    assert "Traceback (most recent call last)" in bad_json_debug.err, str(bad_json_debug)
    assert bad_json_debug.err.splitlines()[-1] == bad_json.err.strip(), str(bad_json_debug)


def test_graph_prints_mermaid(cli: Cli) -> None:
    approval, gated = cli.many(["graph", APPROVAL], ["graph", GATED])
    for result in (approval, gated):
        assert result.code == 0, str(result)
        assert result.out.startswith("flowchart TD\n"), str(result)

    def edges(result: Result) -> set[tuple[str, str]]:
        names = {"input": "input"}
        for line in result.out.splitlines()[1:]:
            node = re.match(r'^\s+(\w+)\W+"([^":( ]+)', line)
            if node:
                names[node.group(1)] = node.group(2)
        arrows = [re.match(r"^\s+(\w+) --> (\w+)$", line) for line in result.out.splitlines()]
        return {(names[a.group(1)], names[a.group(2)]) for a in arrows if a}

    for name in ("draft", "wait_approve", "publish", "wait for approve"):
        assert name in approval.out
    assert edges(approval) == {
        ("input", "draft"),
        ("draft", "wait_approve"),
        ("draft", "publish"),
        ("wait_approve", "publish"),
    }
    assert edges(gated) == {("input", "first"), ("first", "second"), ("second", "finish")}


# ------------------------------------------------------------ start, run, submit
def test_start_launches_the_runner(started: Result, cli: Cli) -> None:
    assert started.code == 0, str(started)
    assert started.out.strip() == f"runner ready (namespace {cli.namespace}, store {cli.store}); resumed 0 run(s)"


def test_run_prints_the_result_as_json(runs: dict[str, Result], ids: dict[str, str]) -> None:
    quick, payment = runs["quick"], runs["payment"]
    assert quick.code == 0, str(quick)
    assert json.loads(quick.out) == {"total": 6, "label": "total=6"}
    assert GENERATED_ID.match(ids["quick"]), str(quick)
    assert payment.code == 0, str(payment)
    assert json.loads(payment.out) == "receipt for 12.50"


def test_run_failure_exits_1_with_one_line_and_no_traceback(runs: dict[str, Result], ids: dict[str, str]) -> None:
    failed = runs["fails"]
    assert failed.code == 1, str(failed)
    assert failed.out == "", str(failed)
    assert failed.lines("failed") == [f"run {ids['fails']} failed in step 'explode': ValueError: bad value 42"]
    assert "Traceback" not in failed.err, str(failed)


def test_run_failure_with_debug_shows_the_steps_traceback(runs: dict[str, Result], ids: dict[str, str]) -> None:
    failed = runs["fails_debug"]
    assert failed.code == 1, str(failed)
    assert "Traceback (most recent call last)" in failed.err, str(failed)
    assert ", in explode\n" in failed.err and "\nValueError: bad value 42\n" in failed.err, str(failed)
    last = failed.err.strip().splitlines()[-1]
    assert last == f"run {ids['fails_debug']} failed in step 'explode': ValueError: bad value 42", str(failed)


def test_submit_prints_the_run_id(cli: Cli, ids: dict[str, str]) -> None:
    assert ids["approval"].startswith("approval-")
    chosen, keyed, keyed_again = cli.many(
        ["submit", QUICK, "--input", '{"n": 1}', "--run-id", "cli-chosen-1"],
        ["submit", QUICK, "--input", '{"n": 1}', "--idempotency-key", "key-1"],
        ["submit", QUICK, "--input", '{"n": 2}', "--idempotency-key", "key-1"],
    )
    assert chosen.code == 0 and chosen.out == "cli-chosen-1\n", str(chosen)
    first = new_run_id(keyed, "quick")
    assert new_run_id(keyed_again, "quick") == first  # the same key: the same run


# ---------------------------------------------------------------- reading runs
def test_list_shows_runs_and_filters_them(cli: Cli, ids: dict[str, str]) -> None:
    everything, failed, quick, none, no_queue = cli.many(
        ["list"],
        ["list", "--status", "failed"],
        ["list", "--workflow", "quick"],
        ["list", "--workflow", "fails", "--status", "completed"],
        ["list", "--queue", "emails"],  # these runs were submitted to no queue
    )
    for result in (everything, failed, quick, none, no_queue):
        assert result.code == 0, str(result)
    statuses = {row[0]: row[2] for row in table_rows(everything.out)}
    assert set(ids.values()) <= set(statuses), str(everything)
    assert statuses[ids["quick"]] == statuses[ids["payment"]] == "completed"
    assert statuses[ids["fails"]] == "failed"
    failed_rows = table_rows(failed.out)
    assert {row[0] for row in failed_rows} == {ids["fails"], ids["fails_debug"]}, str(failed)
    assert all(row[6] == "ValueError: bad value 42" for row in failed_rows), str(failed)
    quick_rows = table_rows(quick.out)
    assert ids["quick"] in {row[0] for row in quick_rows}, str(quick)
    assert {row[1] for row in quick_rows} == {"quick"}, str(quick)
    assert table_rows(none.out) == [] and "no runs match" in none.err, str(none)
    assert table_rows(no_queue.out) == [] and "no runs match" in no_queue.err, str(no_queue)


def test_show_gives_status_result_and_every_step(cli: Cli, ids: dict[str, str]) -> None:
    quick, failed = cli.many(["show", ids["quick"]], ["show", ids["fails"]])
    assert quick.code == 0, str(quick)
    assert show_field(quick, "status") == "completed"
    assert show_field(quick, "workflow") == "quick"
    assert json.loads(show_field(quick, "result")) == {"total": 6, "label": "total=6"}
    assert steps_of(quick) == {"parse": "done", "double": "done", "report": "done"}
    assert failed.code == 0, str(failed)
    assert show_field(failed, "status") == "failed"
    assert show_field(failed, "error") == "ValueError: bad value 42"
    assert steps_of(failed) == {"load": "done", "explode": "failed"}
    assert table_rows(failed.out)[1][-1] == "ValueError: bad value 42"


def test_json_for_scripts_and_watch(cli: Cli, ids: dict[str, str]) -> None:
    listed, shown, failed, watched, watched_failed = cli.many(
        ["list", "--json", "--workflow", "quick"],
        ["show", ids["quick"], "--json"],
        ["show", ids["fails"], "--json"],
        ["watch", ids["quick"]],
        ["watch", ids["fails"]],
    )
    assert listed.code == 0, str(listed)
    rows = [json.loads(line) for line in listed.out.splitlines()]
    assert ids["quick"] in {r["run_id"] for r in rows} and {r["workflow"] for r in rows} == {"quick"}, str(listed)
    assert shown.code == 0, str(shown)
    quick = json.loads(shown.out)
    assert (quick["status"], quick["result"]) == ("completed", {"total": 6, "label": "total=6"})
    assert {s["name"]: s["status"] for s in quick["steps"]} == {"parse": "done", "double": "done", "report": "done"}
    broken = json.loads(failed.out)
    assert broken["status"] == "failed" and broken["error"] == "ValueError: bad value 42"
    assert {s["name"]: s["status"] for s in broken["steps"]} == {"load": "done", "explode": "failed"}
    assert watched.code == 0 and watched.out == f"{ids['quick']}: completed\n", str(watched)
    assert watched_failed.code == 1 and f"run {ids['fails']} failed" in watched_failed.err, str(watched_failed)


def test_history_lists_events_in_order(cli: Cli, ids: dict[str, str]) -> None:
    table, as_json = cli.many(["history", ids["quick"]], ["history", ids["quick"], "--json"])
    assert table.code == 0, str(table)
    rows = table_rows(table.out)
    kinds = ["RunSubmitted"] + ["StepStarted", "FactProduced"] * 3 + ["RunCompleted"]
    assert [row[2] for row in rows] == kinds
    assert [row[3] for row in rows] == ["", "parse", "parse", "double", "double", "report", "report", ""]
    assert [row[0] for row in rows] == [str(n) for n in range(1, 9)]
    assert as_json.code == 0, str(as_json)
    events = [json.loads(line) for line in as_json.out.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["kind"] for e in events] == kinds
    assert events[0]["workflow"] == "quick"
    assert [e["node"] for e in events[1:-1]] == ["parse", "parse", "double", "double", "report", "report"]


# ------------------------------------------------------------------ lifecycle
def test_signal_resumes_a_waiting_run(cli: Cli, ids: dict[str, str]) -> None:
    run_id = ids["approval"]

    def suspended() -> bool:
        result = cli("list", "--status", "suspended", "--workflow", "approval")
        assert result.code == 0, str(result)
        return run_id in {row[0] for row in table_rows(result.out)}

    eventually(suspended, timeout=90, interval=0.2, what="the approval run to wait for its signal")
    sent = cli("signal", run_id, "approve", '{"ok": true}')
    assert sent.code == 0, str(sent)
    assert sent.out == f"signal approve #1 stored for {run_id}\n", str(sent)
    done = wait_until_status(cli, run_id, "completed")
    assert json.loads(show_field(done, "result")) == {"doc": "d-1", "approved": True}
    assert steps_of(done) == {"draft": "done", "wait_approve": "done", "publish": "done"}


def test_metadata_at_submit_filters_list_and_a_keyed_signal_is_stored_once(cli: Cli, started: Result) -> None:
    assert started.code == 0, str(started)
    tagged = new_run_id(
        cli("submit", APPROVAL, "--input", '{"doc": "d-meta"}', "--meta", "tenant=t-cli", "--meta", "tier:=2"),
        "approval",
    )
    by_tenant, by_tier, by_string_tier, bad = cli.many(
        ["list", "--meta", "tenant=t-cli"],
        ["list", "--meta", "tier:=2", "--meta", "tenant=t-cli"],
        ["list", "--meta", "tier=2"],  # the string "2" is not the number 2
        ["list", "--meta", "tenant"],
    )
    assert [row[0] for row in table_rows(by_tenant.out)] == [tagged], str(by_tenant)
    assert [row[0] for row in table_rows(by_tier.out)] == [tagged], str(by_tier)
    assert table_rows(by_string_tier.out) == [], str(by_string_tier)
    assert "--meta takes KEY=VALUE" in one_error(bad, 2)
    first = cli("signal", tagged, "approve", '{"ok": true}', "--key", "review-1")
    assert first.code == 0 and first.out == f"signal approve #1 stored for {tagged}\n", str(first)
    again = cli("signal", tagged, "approve", '{"ok": false}', "--key", "review-1")
    assert again.code == 0, str(again)
    assert "with key 'review-1' was stored before as #1" in again.out and "not stored again" in again.out, str(again)
    done = wait_until_status(cli, tagged, "completed")
    assert json.loads(show_field(done, "result")) == {"doc": "d-meta", "approved": True}
    assert json.loads(show_field(done, "metadata")) == {"tenant": "t-cli", "tier": 2}


def test_approve_and_reject_decide_waiting_runs_and_the_first_decision_stands(cli: Cli, started: Result) -> None:
    approved_id, rejected_id = (
        new_run_id(result, "release")
        for result in cli.many(
            ["submit", RELEASE, "--input", '{"version": 1}'], ["submit", RELEASE, "--input", '{"version": 2}']
        )
    )
    approve, reject, unknown = cli.many(
        ["approve", approved_id, "ship", "--by", "dana", "--comment", "all green"],
        ["reject", rejected_id, "ship", "--by", "lee"],
        ["approve", approved_id, "shipp", "--by", "dana"],
    )
    assert approve.code == 0, str(approve)
    assert approve.out == f"approval ship approved by dana for {approved_id}\n", str(approve)
    assert reject.out == f"approval ship rejected by lee for {rejected_id}\n", str(reject)
    assert "no approval named 'shipp'" in one_error(unknown, 2)
    done = wait_until_status(cli, approved_id, "completed")
    assert json.loads(show_field(done, "result")) == {"version": "1", "shipped": True, "by": "dana"}
    again, history, rejected = cli.many(
        ["reject", approved_id, "ship", "--by", "lee"], ["history", approved_id], ["show", rejected_id]
    )
    if show_field(rejected, "status") != "completed":  # one CLI call less when it is done already
        rejected = wait_until_status(cli, rejected_id, "completed")
    assert json.loads(show_field(rejected, "result")) == {"version": "2", "shipped": False, "by": "lee"}
    assert "already approved by dana" in one_error(again, 2)
    rows = [row for row in table_rows(history.out) if row[2] == "ApprovalDecided"]
    assert [(row[3], row[4]) for row in rows] == [("approve_ship", "approved by dana: all green")], str(history)


def test_run_timeout_then_cancel_then_cancel_again(cli: Cli, started: Result, gates: dict[str, str]) -> None:
    watched = cli("run", GATED, "--input", json.dumps(gates), "--timeout", "1")
    run_id = submitted_id(watched)
    line = one_error_like(watched, "still")
    assert line.startswith(f"run {run_id} still ") and line.endswith("after 1s; it goes on running"), str(watched)
    eventually(lambda: os.path.exists(gates["started1"]), what="step first to start")

    cancelled = cli("cancel", run_id)
    assert cancelled.code == 0, str(cancelled)
    assert cancelled.out == f"{run_id}: cancelled\n", str(cancelled)

    again, shown = cli.many(["cancel", run_id], ["show", run_id])
    error = one_error(again, 2)
    assert f"run '{run_id}' cannot go from 'cancelled' to 'cancelled'" in error, str(again)
    assert shown.code == 0 and show_field(shown, "status") == "cancelled", str(shown)
    assert steps_of(shown)["finish"] == "pending"
    assert not os.path.exists(gates["started2"])


def test_pause_then_resume(cli: Cli, started: Result, gates: dict[str, str], tmp_path: Path) -> None:
    run_id = new_run_id(cli("submit", GATED, "--input", json.dumps(gates)), "gated")
    eventually(lambda: os.path.exists(gates["started1"]), what="step first to start")

    # pause waits for the running step; it says so before it asks, then the gate opens
    pause_err = tmp_path / "pause.err"
    with open(pause_err, "w") as stderr:
        pausing = cli.start("pause", run_id, stderr=stderr)
    eventually(lambda: f"pausing {run_id}" in pause_err.read_text(), what="pause to ask")
    touch(gates["gate1"])

    def paused() -> bool:
        if pausing.poll() is not None:
            return True
        if os.path.exists(gates["started2"]) and not os.path.exists(gates["gate2"]):
            touch(gates["gate2"])  # the request came after `first` ended: it stops after `second`
        return False

    eventually(paused, timeout=90, what="pause to return")
    out, _ = pausing.communicate()
    result = Result(("pause", run_id), pausing.returncode, out, pause_err.read_text())
    assert result.code == 0, str(result)
    assert result.out == f"{run_id}: paused\n", str(result)

    shown = cli("show", run_id)
    assert show_field(shown, "status") == "paused", str(shown)
    assert steps_of(shown)["first"] == "done"
    # nothing starts while paused: `finish` waits, ready if `second` ended before the pause landed
    steps = steps_of(shown)
    assert steps["finish"] == ("ready" if steps["second"] == "done" else "pending"), str(shown)

    touch(gates["gate2"])
    resumed = cli("resume", run_id)
    assert resumed.code == 0, str(resumed)
    assert resumed.out == f"{run_id}: resumed\n", str(resumed)
    done = wait_until_status(cli, run_id, "completed")
    assert json.loads(show_field(done, "result")) == "finished"
    assert set(steps_of(done).values()) == {"done"}


def test_replay_and_fork(cli: Cli, ids: dict[str, str]) -> None:
    quick, payment = ids["quick"], ids["payment"]
    (
        replayed,
        forked,
        refused_replay,
        forced_replay,
        forked_downstream,
        refused_fork,
        forced_fork,
        unknown_step,
    ) = cli.many(
        ["replay", quick],
        ["fork", quick, "--from-step", "double"],
        ["replay", payment],
        ["replay", payment, "--allow-irreversible"],
        ["fork", payment, "--from-step", "receipt"],
        ["fork", payment, "--from-step", "charge_card"],
        ["fork", payment, "--from-step", "charge_card", "--allow-irreversible"],
        ["fork", quick, "--from-step", "nope"],
    )
    for refused in (refused_replay, refused_fork):
        error = one_error(refused, 2)
        assert "irreversible step(s) ['charge_card']" in error and "--allow-irreversible" in error, str(refused)
    assert "has no step 'nope'; steps: parse, double, report" in one_error(unknown_step, 2)

    new = {
        "replayed": new_run_id(replayed, "quick"),
        "forked": new_run_id(forked, "quick"),
        "forced_replay": new_run_id(forced_replay, "payment"),
        "forked_downstream": new_run_id(forked_downstream, "payment"),
        "forced_fork": new_run_id(forced_fork, "payment"),
    }
    assert len(set(new.values()) | {quick, payment}) == 7

    def all_completed() -> dict[str, Result] | None:
        shown = dict(zip(new, cli.many(*(["show", run_id] for run_id in new.values())), strict=True))
        return shown if all(show_field(r, "status") == "completed" for r in shown.values()) else None

    shown = eventually(all_completed, timeout=90, interval=0.2, what="the replays and forks to complete")
    assert show_field(shown["replayed"], "parent") == quick
    assert steps_of(shown["replayed"]) == {"parse": "done", "double": "done", "report": "done"}
    assert json.loads(show_field(shown["forked"], "result")) == {"total": 6, "label": "total=6"}
    assert steps_of(shown["forked"]) == {"parse": "done (reused)", "double": "done", "report": "done"}
    assert steps_of(shown["forked_downstream"]) == {
        "amount": "done (reused)",
        "charge_card": "done (reused)",
        "receipt": "done",
    }
    assert steps_of(shown["forced_fork"]) == {"amount": "done (reused)", "charge_card": "done", "receipt": "done"}
    for name in ("forced_replay", "forked_downstream", "forced_fork"):
        assert show_field(shown[name], "parent") == payment
        assert json.loads(show_field(shown[name], "result")) == "receipt for 12.50"


def test_sql_through_the_cluster(cli: Cli, ids: dict[str, str]) -> None:
    count, per_run, syntax, write = cli.many(
        ["sql", "SELECT count(*) FROM events"],
        ["sql", f"SELECT kind, count(*) AS n FROM events WHERE run_id = '{ids['quick']}' GROUP BY kind", "--json"],
        ["sql", "SELEC kind FROM events"],
        ["sql", "COMMIT; DELETE FROM events"],
    )
    assert count.code == 0, str(count)
    assert table_rows(count.out) and int(table_rows(count.out)[0][0]) >= 8 * 2, str(count)
    assert per_run.code == 0, str(per_run)
    rows = {r["kind"]: r["n"] for r in map(json.loads, per_run.out.splitlines())}
    assert rows == {"RunSubmitted": 1, "StepStarted": 3, "FactProduced": 3, "RunCompleted": 1}
    assert "syntax error" in one_error(syntax, 2)
    assert "read-only" in one_error(write, 2)


def test_unknown_run_id_exits_2(cli: Cli, started: Result) -> None:
    results = cli.many(
        ["show", "nope-0"],
        ["history", "nope-0"],
        ["signal", "nope-0", "approve"],
        ["cancel", "nope-0"],
        ["fork", "nope-0", "--from-step", "parse"],
    )
    for result in results:
        assert "no run 'nope-0' in the store" in one_error(result, 2), str(result)


# ------------------------------------------------------------ no cluster at all
@pytest.fixture
def offline(cli: Cli, ray_head: RayHead, ids: dict[str, str]) -> Cli:
    """The module's head stopped (its Runner held the DuckDB file until then); the CLI without --address."""
    ray_head.stop()
    assert not ray_head.running
    return cli.without_address()


def test_reads_without_a_cluster(offline: Cli, ids: dict[str, str]) -> None:
    """With no Ray at all, the reads open the DuckDB file read-only."""
    listed, auto_listed, shown, history, query = offline.many(
        ["list"],
        ["list", "--address", "auto"],
        ["show", ids["quick"]],
        ["history", ids["quick"], "--json"],
        ["sql", "SELECT status, count(*) AS n FROM runs GROUP BY status ORDER BY status", "--json"],
    )
    for result in (listed, auto_listed):
        assert result.code == 0, str(result)
        statuses = {row[0]: row[2] for row in table_rows(result.out)}
        assert statuses[ids["quick"]] == "completed" and statuses[ids["fails"]] == "failed", str(result)
        assert statuses[ids["approval"]] == "completed", str(result)
    assert shown.code == 0 and show_field(shown, "status") == "completed", str(shown)
    assert steps_of(shown) == {"parse": "done", "double": "done", "report": "done"}
    assert history.code == 0, str(history)
    assert [json.loads(line)["seq"] for line in history.out.splitlines()] == list(range(1, 9))
    assert query.code == 0, str(query)
    counts = {r["status"]: r["n"] for r in map(json.loads, query.out.splitlines())}
    assert counts["failed"] == 2 and counts["cancelled"] == 1 and counts["completed"] >= 9, str(query)
    unknown = offline("show", "nope-0")
    assert "no run 'nope-0' in the store" in one_error(unknown, 2)
