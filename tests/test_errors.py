"""Every exception in runner.errors survives pickling (Ray pickles errors between processes)
and says what to do about it."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import cloudpickle
import pytest

import runner
from runner import errors

ERROR_CLASSES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == errors.__name__
    ),
    key=lambda cls: cls.__name__,
)

# A sample argument for every constructor parameter name in runner.errors.
SAMPLES: dict[str, Any] = {
    "component": "charge",
    "message": "retries must be a whole number >= 0, got -1",
    "workflow": "orders",
    "problems": {"amount": "missing", "colour": "unknown field"},
    "run_id": "run-42",
    "fact_hash": "ab" * 32,
    "lease": 3,
    "current": 4,
    "owner": "worker-7",
    "expires_at": 1700000000.5,
    "from_status": "completed",
    "to_status": "running",
    "status": "failed",
    "reason": "step 'charge' raised ValueError: card declined",
    "node": "charge",
    "timeout": 2.5,
    "steps": ["charge"],
    "path": "/data/store.duckdb",
    "detail": "IO Error: the driver's own words",
    "after_seq": 5,
    "last_seq": 7,
    "namespace": "runner",
    "differences": {"max_workers": "running 4, asked 2", "worker.lease_ttl": "running 30.0, asked 10.0"},
    "step": "'charge'",
    "losses": 6,
    "cause": "ray.exceptions.NodeDiedError: the node running the task died",
    "approval": "ship",
    "by": "dana",
    "comment": "not on a friday",
    "verb": "approved",
    "known": ["deploy", "ship"],
    "child_run_id": "orders-1:bill",
    "deadline": 30.0,
    "deadline_at": 1700000000.5,
    "cron": "*/5 * * *",
    "schedule": "nightly",
    "field": "concurrency",
    "queue": "emails",
    "max_pending": 1000,
    "pending": 1000,
    "address": "http://head:8265",
    "job_id": "raysubmit_abc",
    "output": "error: no run 'x'",
}
# ResultTimeout reads its status as "still running"
SAMPLES_BY_CLASS: dict[str, dict[str, Any]] = {"ResultTimeout": {"status": "running"}}

# What the message of each error with a fixed text must tell the reader to do.
ADVICE: dict[str, str] = {
    "DefinitionError": "component 'charge': ",  # the message itself is the advice; it names the culprit
    "InvalidInput": "nothing was stored",
    "RunNotFound": "list runs with `runner list` or client.list_runs()",
    "FactNotFound": "was it saved with save_fact() first?",
    "FencedError": "this writer must stop",
    "LeaseHeld": "wait for it to expire or take it over with force=True",
    "IllegalTransition": "see runner.store.TRANSITIONS for the legal moves",
    "RunClosed": "replay or fork it to run again",
    "ResumeRefused": "resume takes a paused, failed or cancelled run",
    "DefinitionUnavailable": "make what it imports importable on the cluster",
    "WorkflowFailed": "fix it, then replay or fork the run",
    "StepTimeout": "raise its timeout=",
    "ChildRunFailed": "then resume this run",
    "StepLostError": "Check the nodes' health and memory (or raise system_retries), then replay the run",
    "ResultTimeout": "call result() again later or cancel it",
    "ReplayRefused": "pass allow_irreversible=True",
    "RunWasCancelled": "replay it to run it again",
    "StoreLocked": "go through the cluster that holds it",
    "StoreCorrupt": "point the store at another file or move this one away",
    "StorePathInvalid": "give the path of a DuckDB file in a directory you can write to",
    "StoreWriteFailed": "Free disk space or fix the file's permissions",
    "AppendConflict": "this writer must stop and recover the run from the store",
    "ConfigMismatch": "connect without config= and max_workers= to use the running Runner as it is",
    "ApprovalRejected": "replay or fork the run to ask again",
    "ApprovalAlreadyDecided": "a decision once recorded stands",
    "UnknownApproval": "nothing was stored",
    "DeadlineExceeded": "raise its deadline=",
    "RunDeadlineExceeded": "submit it with a later deadline=",
    "UnknownPolicyTarget": "nothing was stored",
    "InvalidCron": "nothing was stored",
    "ScheduleNotFound": "list them with `runner schedules`",
    "QueueConfigError": "concurrency: ",  # it names the field; the message is the advice
    "UnknownQueue": "declare it in RunnerConfig(queues=[Queue(...)])",
    "QueueFull": "submit again once runs have started, or raise max_pending",
    "JobAddressUnreachable": "Check that the head node runs Ray's dashboard",
    "JobFailed": "full log: `ray job logs",
}


def has_own_init(cls: type) -> bool:
    return any("__init__" in vars(klass) for klass in cls.__mro__ if klass.__module__ == errors.__name__)


def make(cls: type[BaseException]) -> BaseException:
    if not has_own_init(cls):
        return cls("free-form message: do the thing")
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    missing = [p for p in params if p not in SAMPLES]
    assert not missing, f"add a sample for {cls.__name__}({', '.join(missing)}) to SAMPLES"
    return cls(*(sample(cls, p) for p in params))


def sample(cls: type, param: str) -> Any:
    return SAMPLES_BY_CLASS.get(cls.__name__, {}).get(param, SAMPLES[param])


def test_discovery_finds_the_whole_hierarchy():
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {
        "RunnerError",
        "DefinitionError",
        "FoldError",
        "SnapshotMismatch",
        "StepTimeout",
        "NonRetryableError",
    } <= names
    assert len(ERROR_CLASSES) >= 16


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("pickler", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])
def test_every_error_survives_a_pickle_round_trip(cls, pickler):
    original = make(cls)
    copy = pickler.loads(pickler.dumps(original))
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert copy.args == original.args
    assert vars(copy) == vars(original)
    # and survives it again (Ray may forward an error more than once)
    again = pickler.loads(pickler.dumps(copy))
    assert str(again) == str(original) and vars(again) == vars(original)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_a_runner_error_and_exported(cls):
    assert issubclass(cls, errors.RunnerError)
    assert cls.__name__ in runner.__all__
    assert getattr(runner, cls.__name__) is cls


@pytest.mark.parametrize("cls", [c for c in ERROR_CLASSES if has_own_init(c)], ids=lambda c: c.__name__)
def test_fixed_messages_say_what_to_do_and_name_what_went_wrong(cls):
    assert cls.__name__ in ADVICE, f"say in ADVICE what {cls.__name__}'s message tells the reader to do"
    exc = make(cls)
    text = str(exc)
    assert ADVICE[cls.__name__] in text
    # every identifying argument shows up in the text
    for name in list(inspect.signature(cls.__init__).parameters)[1:]:
        value = sample(cls, name)
        if isinstance(value, dict):
            for key, reason in value.items():
                assert f"{key}: {reason}" in text
        elif isinstance(value, float):
            assert f"{value:g}" in text or f"{value:.3f}" in text
        else:
            assert str(value) in text, (name, text)


@pytest.mark.parametrize("cls", [c for c in ERROR_CLASSES if not has_own_init(c)], ids=lambda c: c.__name__)
def test_free_form_errors_keep_their_message(cls):
    assert str(cls("do this instead")) == "do this instead"


def test_key_errors_are_not_quoted_like_keys():
    assert str(errors.RunNotFound("run-1")).startswith("no run 'run-1' in the store")
    assert str(errors.FactNotFound("abc")).startswith("no fact 'abc' in the store")
    assert isinstance(errors.RunNotFound("r"), KeyError) and isinstance(errors.RunNotFound("r"), errors.StoreError)


def test_value_errors_are_value_errors():
    assert issubclass(errors.InvalidArgument, ValueError)
    assert issubclass(errors.InvalidInput, ValueError)
    assert issubclass(errors.SnapshotMismatch, errors.FoldError)


def test_definition_error_without_a_component():
    exc = errors.DefinitionError(None, "workflow 'w' has no components; add a step first")
    assert str(exc) == "workflow 'w' has no components; add a step first"
    assert pickle.loads(pickle.dumps(exc)).component is None


def test_invalid_input_lists_every_problem_sorted():
    exc = errors.InvalidInput("orders", {"zeta": "unknown field", "amount": "missing", "qty": "expected int, got str"})
    assert str(exc) == (
        "input for workflow 'orders' rejected (amount: missing; qty: expected int, got str; zeta: unknown field); "
        "nothing was stored"
    )


def test_the_problems_dict_is_copied():
    problems = {"a": "missing"}
    exc = errors.InvalidInput("w", problems)
    problems["b"] = "late"
    assert exc.problems == {"a": "missing"}


def test_step_timeout_formats_the_timeout_compactly():
    assert "timeout of 30s" in str(errors.StepTimeout("slow", 30.0))
    assert "timeout of 0.25s" in str(errors.StepTimeout("slow", 0.25))
