"""Policies given at submit: matched by exact name, then the most specific pattern, then
"default"; a Policy replaces the step's whole, a dict changes only its fields; typos raise."""

from __future__ import annotations

import pytest

from runner import policy_overrides
from runner.errors import DefinitionError, InvalidArgument, UnknownPolicyTarget
from runner.events import StepFailed
from runner.policy import Policy
from runner.testing.inprocess import drive
from runner.workflow import Workflow


def fetchers() -> Workflow:
    wf = Workflow("fetchers")

    @wf.step(retries=1, backoff="none", priority=3)
    def fetch_users(x):
        return x

    @wf.step(retries=1)
    def fetch_orders(x):
        return x

    @wf.step(after=[fetch_users, fetch_orders], timeout=9.0)
    def merge(users, orders):
        return users, orders

    @wf.step(inline=True)
    def quick(x):
        return x

    return wf


def test_exact_name_beats_pattern_beats_default():
    chosen = policy_overrides.resolve(
        fetchers(),
        {"default": Policy(retries=7), "fetch_*": Policy(retries=5), "fetch_users": Policy(retries=2)},
    )
    assert {name: (target, policy.retries) for name, (target, policy) in chosen.items()} == {
        "fetch_users": ("fetch_users", 2),
        "fetch_orders": ("fetch_*", 5),
        "merge": ("default", 7),
        "quick": ("default", 7),
    }


def test_the_pattern_with_more_literal_characters_wins():
    chosen = policy_overrides.resolve(fetchers(), {"f*": Policy(retries=1), "fetch_o*": Policy(retries=4)})
    assert chosen["fetch_orders"] == ("fetch_o*", Policy(retries=4))
    assert chosen["fetch_users"][0] == "f*"


def test_a_policy_replaces_the_whole_and_a_dict_changes_only_its_fields():
    wf = fetchers()
    whole = policy_overrides.resolve(wf, {"fetch_users": Policy(retries=4)})["fetch_users"][1]
    assert (whole.retries, whole.backoff, whole.priority) == (4, "exponential", 0)
    fields = policy_overrides.resolve(wf, {"fetch_users": {"retries": 4}})["fetch_users"][1]
    assert (fields.retries, fields.backoff, fields.priority) == (4, "none", 3)


def test_unknown_names_and_patterns_matching_nothing_raise_naming_them():
    with pytest.raises(UnknownPolicyTarget) as caught:
        policy_overrides.resolve(fetchers(), {"fetch_user": Policy(), "load_*": Policy(), "default": Policy()})
    assert caught.value.steps == ["fetch_user", "load_*"]
    assert "fetch_users" in str(caught.value) and "nothing was stored" in str(caught.value)


def test_a_pattern_outdone_everywhere_by_more_specific_targets_is_no_typo():
    chosen = policy_overrides.resolve(
        fetchers(), {"fetch_*": Policy(retries=1), "fetch_users": Policy(), "fetch_orders": Policy()}
    )
    assert {target for target, _ in chosen.values()} == {"fetch_users", "fetch_orders"}


def test_bad_overrides_raise():
    with pytest.raises(InvalidArgument, match="unknown field"):
        policy_overrides.resolve(fetchers(), {"merge": {"retires": 3}})
    with pytest.raises(InvalidArgument, match="retries must be"):
        policy_overrides.resolve(fetchers(), {"merge": {"retries": -1}})
    with pytest.raises(InvalidArgument, match="runner.Policy or a dict"):
        policy_overrides.resolve(fetchers(), {"merge": 3})
    with pytest.raises(InvalidArgument, match="policies must be a dict"):
        policy_overrides.apply(fetchers(), [("merge", Policy())])  # type: ignore[arg-type]


def test_an_inline_step_given_a_timeout_at_submit_is_refused():
    with pytest.raises(DefinitionError, match="'quick'.*inline step cannot have a timeout"):
        policy_overrides.apply(fetchers(), {"default": {"timeout": 30.0}})
    workflow, _ = policy_overrides.apply(fetchers(), {"fetch_*": {"timeout": 30.0}})
    assert workflow.nodes["fetch_users"].policy.timeout == 30.0


def test_apply_leaves_the_definition_alone_and_the_copy_runs_with_the_overrides():
    wf = Workflow("flaky")
    calls: list[int] = []

    @wf.step(retries=0, backoff="none")
    def call(x):
        calls.append(x)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    overridden, targets = policy_overrides.apply(wf, {"call": {"retries": 5}})
    assert targets == {"call": "call"}
    assert wf.nodes["call"].policy.retries == 0 and overridden.nodes["call"].policy.retries == 5
    assert overridden.definition_hash() != wf.definition_hash()
    run = drive(overridden, 1)
    assert run.state.status == "completed" and run.state.result == "ok"
    assert len([s for s in run.log if isinstance(s.event, StepFailed)]) == 2
    assert policy_overrides.apply(wf, None) == (wf, {})
