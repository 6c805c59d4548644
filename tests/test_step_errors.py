"""Errors as values (catch_exceptions) and which errors are retried (retry_exceptions), in the pure core."""

from __future__ import annotations

import pytest

from runner.errors import DefinitionError, NonRetryableError
from runner.events import FactProduced, StepFailed
from runner.testing.inprocess import drive
from runner.workflow import Workflow


class Flaky(ConnectionError):
    pass


def flaky_then(outcomes: list[BaseException | str], **options: object) -> Workflow:
    """A workflow whose step ``call`` raises or returns the next of ``outcomes`` per attempt;
    ``handle`` gets what ``call`` gives."""
    wf = Workflow("errors")
    remaining = list(outcomes)

    @wf.step(name="call", retries=2, backoff="none", **options)
    def call(x: object) -> object:
        outcome = remaining.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @wf.step(after=call)
    def handle(result: object) -> object:
        return result

    return wf


def failures(run) -> list[tuple[int, str, bool, float | None]]:
    return [
        (e.attempt, e.error.type, e.error.non_retryable, e.retry_at)
        for e in (s.event for s in run.log)
        if isinstance(e, StepFailed)
    ]


def test_retry_exceptions_list_retries_only_those_errors_and_their_subclasses():
    run = drive(flaky_then([Flaky("1"), ConnectionError("2"), "ok"], retry_exceptions=[ConnectionError]))
    assert run.state.status == "completed" and run.state.result == "ok"
    assert [f[:3] for f in failures(run)] == [(1, "test_step_errors.Flaky", False), (2, "ConnectionError", False)]

    run = drive(flaky_then([ValueError("bad"), "ok"], retry_exceptions=[ConnectionError]))
    assert run.state.status == "failed"
    assert failures(run) == [(1, "ValueError", True, None)]  # recorded as today, marked not retryable


def test_retry_exceptions_false_retries_nothing_and_true_everything_but_non_retryable():
    run = drive(flaky_then([Flaky("1"), "ok"], retry_exceptions=False))
    assert run.state.status == "failed" and failures(run) == [(1, "test_step_errors.Flaky", True, None)]
    run = drive(flaky_then([ValueError("1"), NonRetryableError("stop"), "ok"]))
    assert run.state.status == "failed"
    assert [f[:3] for f in failures(run)] == [(1, "ValueError", False), (2, "runner.errors.NonRetryableError", True)]


def test_catch_exceptions_gives_value_none_on_success():
    run = drive(flaky_then(["ok"], catch_exceptions=True))
    assert run.state.status == "completed" and run.state.result == ("ok", None)


def test_catch_exceptions_retries_first_then_passes_the_exception_downstream():
    run = drive(flaky_then([Flaky("1"), Flaky("2"), ValueError("last")], catch_exceptions=True))
    assert run.state.status == "completed"
    value, exc = run.state.result
    assert value is None and isinstance(exc, ValueError) and str(exc) == "last"
    assert [f[:3] for f in failures(run)] == [
        (1, "test_step_errors.Flaky", False),
        (2, "test_step_errors.Flaky", False),
    ]
    [fact] = [s.event for s in run.log if isinstance(s.event, FactProduced) and s.event.node == "call"]
    assert fact.attempt == 3


def test_catch_exceptions_with_an_error_not_retried_catches_it_at_once():
    run = drive(flaky_then([ValueError("no"), "never"], catch_exceptions=True, retry_exceptions=[ConnectionError]))
    assert run.state.status == "completed"
    assert isinstance(run.state.result[1], ValueError)
    assert failures(run) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_exceptions": "ValueError"}, "retry_exceptions must be True, False or a list of exception classes"),
        ({"retry_exceptions": [ValueError, 3]}, "retry_exceptions must be True, False or a list of exception classes"),
        ({"catch_exceptions": "yes"}, "catch_exceptions must be True or False"),
        (
            {"catch_exceptions": True, "fallback": lambda x: x},
            "catch_exceptions=True passes the failure downstream; it takes no fallback",
        ),
    ],
)
def test_bad_error_options_are_definition_errors_naming_the_step(options, message):
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match=f"component 'call': {message}"):
        wf.step(lambda x: x, name="call", **options)


def test_error_options_change_the_definition_hash_only_when_set():
    def build(**options: object) -> str:
        wf = Workflow("w")
        wf.step(lambda x: x, name="call", **options)
        return wf.definition_hash()

    assert build() == build(retry_exceptions=True, catch_exceptions=False)
    assert len({build(), build(catch_exceptions=True), build(retry_exceptions=[ValueError])}) == 3
