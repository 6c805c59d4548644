"""The Ray Jobs path of the CLI (``--address http://...``), without a cluster: what is sent, what is refused."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner import cli, jobs
from runner.errors import JobAddressUnreachable
from runner.jobs import JobCommand, JobOutcome, JobState

FLOW = "import runner\n\nflow = runner.Workflow('flow')\nflow.step(lambda x: x, name='echo')\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, JobCommand]]:
    """Jobs "submitted" (run_as_job replaced): each answers exit code 0 and prints ``run-1``."""
    calls: list[tuple[str, JobCommand]] = []

    def fake(address: str, command: JobCommand, timeout: float | None = None) -> JobOutcome:
        calls.append((address, command))
        return JobOutcome(job_id="job-1", status=JobState.SUCCEEDED, exit_code=0, output="run-1\n")

    monkeypatch.setattr(jobs, "run_as_job", fake)
    return calls


def test_submit_sends_the_file_directory_as_working_dir_and_prints_the_job_output(
    tmp_path: Path, sent: list[tuple[str, JobCommand]]
) -> None:
    (tmp_path / "flow_file.py").write_text(FLOW)
    target = str(tmp_path / "flow_file.py") + ":flow"
    argv = ["submit", target, "--input", "3", "--address", "http://head:8265", "--namespace", "ns", "--pip", "rich"]
    result = CliRunner().invoke(cli.main, argv)
    assert result.exit_code == 0, result.output
    assert result.output == "run-1\n"
    [(address, command)] = sent
    assert address == "http://head:8265"
    assert command.args == ("submit", "flow_file.py:flow", "--input", "3")
    assert command.namespace == "ns" and command.store is None  # the Runner's own store
    assert command.runtime_env == {"working_dir": str(tmp_path), "pip": ["rich"]}
    assert command.entrypoint() == "python -m runner.job_entry --namespace ns -- submit flow_file.py:flow --input 3"


def test_read_commands_go_through_a_job_with_their_options(sent: list[tuple[str, JobCommand]]) -> None:
    argv = ["list", "--status", "failed", "--limit", "5", "--address", "https://h:8265", "--store", "duckdb:////d/s.db"]
    result = CliRunner().invoke(cli.main, argv)
    assert result.exit_code == 0, result.output
    [(_, command)] = sent
    assert command.args == ("list", "--status", "failed", "--limit", "5")
    assert command.store == "duckdb:////d/s.db" and command.runtime_env == {}


def test_the_command_exit_code_on_the_cluster_is_the_cli_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    def failed(address: str, command: JobCommand, timeout: float | None = None) -> JobOutcome:
        return JobOutcome(job_id="j", status=JobState.FAILED, exit_code=2, output="error: no run 'x'\n")

    monkeypatch.setattr(jobs, "run_as_job", failed)
    result = CliRunner().invoke(cli.main, ["show", "x", "--address", "http://head:8265"])
    assert (result.exit_code, result.output) == (2, "error: no run 'x'\n")


def test_a_relative_store_is_refused_with_a_job_address(sent: list[tuple[str, JobCommand]]) -> None:
    result = CliRunner().invoke(cli.main, ["list", "--address", "http://head:8265", "--store", "duckdb:///rel.db"])
    assert result.exit_code == 2 and "absolute path on the head" in result.output
    assert sent == []


def test_runtime_env_options_need_a_job_address(tmp_path: Path) -> None:
    (tmp_path / "flow_file2.py").write_text(FLOW)
    result = CliRunner().invoke(cli.main, ["submit", str(tmp_path / "flow_file2.py") + ":flow", "--pip", "rich"])
    assert result.exit_code == 2 and "job address" in result.output


def test_an_address_that_does_not_answer_is_a_typed_error_and_nothing_is_stored(tmp_path: Path) -> None:
    (tmp_path / "flow_file3.py").write_text(FLOW)
    store = tmp_path / "never.duckdb"
    address = f"http://127.0.0.1:{_free_port()}"
    argv = ["submit", str(tmp_path / "flow_file3.py") + ":flow", "--address", address, "--store", f"duckdb:///{store}"]
    result = CliRunner().invoke(cli.main, argv)
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {JobAddressUnreachable(address, 'x')}".split(" (")[0])
    assert "nothing was submitted" in result.output and "RAY_AUTH_TOKEN" in result.output  # with advice
    assert not store.exists()


def test_the_auth_token_is_sent_as_a_bearer_header(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    class FakeClient:
        def __init__(self, address: str, **kwargs: Any) -> None:
            made.append({"address": address, **kwargs})

    monkeypatch.setattr("ray.job_submission.JobSubmissionClient", FakeClient)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "s3cret")
    jobs.job_client("http://head:8265")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    jobs.job_client("http://head:8265")
    assert [m["headers"] for m in made] == [{"Authorization": "Bearer s3cret"}, {}]


def test_the_command_output_is_what_follows_the_job_managers_lines() -> None:
    logs = "2026 INFO job_manager.py -- Runtime env is setting up.\nRunning entrypoint for job j1: python -m x\nrun-7\n"
    assert jobs.command_output(logs) == "run-7\n"
    assert jobs.command_output("plain\n") == "plain\n"


def test_connect_with_a_job_address_says_how_to_reach_the_cluster() -> None:
    from runner.client import connect
    from runner.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="runner submit --address http://head:8265"):
        connect("http://head:8265")
