"""A definition carries its own code to the workers, however its steps are given.

The steps here live in a module that exists only on the driver's ``sys.path``
(a file in ``tmp_path``, as a helper beside a notebook would be): the Worker
actors and step tasks Ray starts cannot import it. Given as a partial (nested,
with functions and instances among its arguments), a bound method, a
callable instance, a lambda or a closure, each step must still run.
"""

from __future__ import annotations

import functools
import importlib
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import runner
from runner.shipping import definition_parts, user_modules

pytestmark = pytest.mark.ray

RESULT_TIMEOUT = 60

HELPERS = textwrap.dedent(
    """
    import dataclasses

    def scale(factor, x):
        return x * factor

    def double(x):
        return 2 * x

    @dataclasses.dataclass(frozen=True)
    class Offset:
        value: int

    def combine(inner, x, *, offset):
        return inner(x) + offset.value

    class Counter:
        def __init__(self, step):
            self.step = step

        def add(self, x):
            return x + self.step

    class Adder:
        def __init__(self, amount):
            self.amount = amount

        def __call__(self, x):
            return x + self.amount

    def make_lambda(n):
        return lambda x: x - n

    def make_closure(n):
        def times(x):
            return x * n
        return times

    def big(x):
        return x > 0

    def repeat(n, x):
        return [x] * n

    def total(xs):
        return sum(xs)
    """
)


@pytest.fixture
def helpers(tmp_path: Path) -> Iterator[ModuleType]:
    """A module importable by the driver only: its directory is on this process's sys.path alone."""
    name = f"driver_only_helpers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(HELPERS)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def _workflow(h: ModuleType) -> runner.Workflow:
    wf = runner.Workflow("shipped")
    scaled = wf.step(functools.partial(h.scale, 3), name="scaled")  # a partial
    nested = functools.partial(functools.partial(h.combine, h.double), offset=h.Offset(1))
    combined = wf.step(nested, name="combined", after=scaled)  # nested, a function and an instance inside
    counted = wf.step(h.Counter(4).add, name="counted", after=combined)  # a bound method
    added = wf.step(h.Adder(10), name="added", after=counted)  # a callable instance
    lowered = wf.step(h.make_lambda(2), name="lowered", after=added)  # a lambda
    tripled = wf.step(h.make_closure(3), name="tripled", after=lowered)  # a closure
    checked = wf.rule(
        functools.partial(h.scale, 1), name="checked", after=tripled, when=functools.partial(h.big)
    )  # a rule: partials for both its condition and its reaction
    spread = wf.step(functools.partial(h.repeat, 2), name="spread", after=checked)
    each = wf.map(h.Counter(1).add, name="each", after=spread)  # a bound method per item
    wf.reduce(functools.partial(h.total), name="summed", after=each)
    return wf


def _partials_only(h: ModuleType) -> runner.Workflow:
    """Every step a partial: nothing in the definition names the module at its top level."""
    wf = runner.Workflow("partials")
    scaled = wf.step(functools.partial(h.scale, 3), name="scaled")
    nested = functools.partial(functools.partial(h.combine, h.double), offset=h.Offset(1))
    wf.step(nested, name="combined", after=scaled)
    return wf


def test_the_callables_are_followed_to_the_users_module(helpers: ModuleType) -> None:
    modules = user_modules(definition_parts(_workflow(helpers)))
    assert [m.__name__ for m in modules] == [helpers.__name__]
    assert [m.__name__ for m in user_modules(definition_parts(_partials_only(helpers)))] == [helpers.__name__]
    # the library's own modules and installed packages stay imported by name
    assert user_modules([functools.partial(helpers.scale, runner.SKIPPED), pytest.raises]) == [helpers]
    assert user_modules([functools.partial(print, 1), runner.Workflow, len, textwrap.dedent]) == []


def test_partial_steps_of_a_module_only_the_driver_can_import(
    shared_client: runner.Client, helpers: ModuleType
) -> None:
    client = shared_client
    assert client.submit(_partials_only(helpers), 2).result(timeout=RESULT_TIMEOUT) == 13


def test_steps_from_a_module_only_the_driver_can_import_run_on_the_workers(
    client: runner.Client, helpers: ModuleType
) -> None:
    handle = client.submit(_workflow(helpers), 2)
    # 2*3=6 -> 2*6+1=13 -> 17 -> 27 -> 25 -> 75 -> 75 -> [75, 75] -> [76, 76] -> 152
    assert handle.result(timeout=RESULT_TIMEOUT) == 152
    values = {s.name: s.status for s in handle.steps()}
    assert set(values.values()) == {"done"}
