"""Policies given at submit: ``submit(..., policies={...})`` overrides the definition's.

``policies`` maps a target to an override. A target is a step's exact name, a
glob pattern (``fnmatch``: ``*``, ``?``, ``[abc]``) or ``"default"``. Each step
(step, rule or map) takes the single most specific target that matches it:
its exact name, else the matching pattern with the most literal characters
(the first given on a tie), else ``default``, else nothing (it keeps its own
policy). Targets do not stack.

An override is either a :class:`~runner.policy.Policy`, which replaces the
step's policy whole, or a dict of Policy fields (``{"retries": 5}``), which
changes only those fields and keeps the rest of the step's own policy.

A name or pattern that matches no step raises UnknownPolicyTarget (a typo must
not silently do nothing); a bad field raises InvalidArgument; an inline step
given a timeout or deadline raises DefinitionError. The client checks all of
it before anything is stored, and stores the run with the overridden
definition, so every worker and every recovery runs the run with them.
Pure: no Ray, no I/O.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from typing import Any, Union

from runner.errors import InvalidArgument, UnknownPolicyTarget
from runner.policy import Policy
from runner.workflow import NodeKind, Workflow

DEFAULT = "default"
OVERRIDABLE = (NodeKind.STEP, NodeKind.RULE, NodeKind.MAP)
_WILDCARDS = frozenset("*?[")

Override = Union[Policy, Mapping[str, Any]]
"""A Policy (replaces the step's whole) or a dict of Policy fields (changes only those)."""

_FIELDS = frozenset(f.name for f in dataclasses.fields(Policy))


def is_pattern(target: str) -> bool:
    return any(ch in _WILDCARDS for ch in target)


def _literal_length(pattern: str) -> int:
    """How specific a pattern is: its characters that are not wildcards."""
    return sum(1 for ch in pattern if ch not in _WILDCARDS)


def target_of(step: str, targets: list[str]) -> str | None:
    """The target among ``targets`` that sets ``step``'s policy (None: none matches)."""
    if step in targets:
        return step
    patterns = [t for t in targets if is_pattern(t) and fnmatch.fnmatchcase(step, t)]
    if patterns:
        return max(patterns, key=_literal_length)  # max keeps the first on a tie
    return DEFAULT if DEFAULT in targets else None


def _check(policies: Any) -> dict[str, Override]:
    if not isinstance(policies, Mapping):
        raise InvalidArgument(f"policies must be a dict of step name, pattern or 'default' -> Policy, got {policies!r}")
    checked: dict[str, Override] = {}
    for target, override in policies.items():
        if not isinstance(target, str) or not target:
            raise InvalidArgument(f"policies keys must be step names, patterns or 'default', got {target!r}")
        if isinstance(override, Mapping):
            unknown = sorted(set(override) - _FIELDS)
            if unknown:
                raise InvalidArgument(
                    f"policies[{target!r}] has unknown field(s) {', '.join(map(str, unknown))}; "
                    f"Policy fields: {', '.join(sorted(_FIELDS))}"
                )
        elif not isinstance(override, Policy):
            raise InvalidArgument(
                f"policies[{target!r}] must be a runner.Policy or a dict of its fields, got {type(override).__name__}"
            )
        checked[target] = override
    return checked


def resolve(workflow: Workflow, policies: Mapping[str, Override]) -> dict[str, tuple[str, Policy]]:
    """Each overridden step's ``(target, new policy)``; raises as the module says."""
    checked = _check(policies)
    targets = list(checked)
    steps = [node for node in workflow.nodes.values() if node.kind in OVERRIDABLE]
    chosen: dict[str, tuple[str, Policy]] = {}
    for node in steps:
        target = target_of(node.name, targets)
        if target is None:
            continue
        override = checked[target]
        try:
            policy = override if isinstance(override, Policy) else dataclasses.replace(node.policy, **override)
        except InvalidArgument as exc:
            raise InvalidArgument(f"policies[{target!r}] for step {node.name!r}: {exc}") from None
        chosen[node.name] = (target, policy)
    used = {target for target, _ in chosen.values()}
    unmatched = [t for t in targets if t != DEFAULT and t not in used and not _matches_any(t, steps)]
    if unmatched:
        raise UnknownPolicyTarget(workflow.name, unmatched, [node.name for node in steps])
    return chosen


def _matches_any(target: str, steps: list[Any]) -> bool:
    """A pattern that matches some step, but lost every one to more specific targets, is no typo."""
    return is_pattern(target) and any(fnmatch.fnmatchcase(node.name, target) for node in steps)


def apply(workflow: Workflow, policies: Mapping[str, Override] | None) -> tuple[Workflow, dict[str, str]]:
    """``workflow`` with ``policies`` applied, and which target set each overridden step's
    policy (recorded in RunSubmitted). No policies: the workflow itself, unchanged."""
    if not policies:
        if policies is not None and not isinstance(policies, Mapping):
            _check(policies)
        return workflow, {}
    chosen = resolve(workflow, policies)
    overridden = workflow.with_policies({name: policy for name, (_, policy) in chosen.items()})
    return overridden, {name: target for name, (target, _) in chosen.items()}
