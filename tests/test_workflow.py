"""The definition API and its build-time validation (pure; no Ray)."""

from __future__ import annotations

import pytest

from runner.errors import DefinitionError, InvalidArgument
from runner.policy import Policy, Resources
from runner.workflow import Node, NodeKind, Workflow, _code_fingerprint


def linear() -> Workflow:
    wf = Workflow("linear")

    @wf.step()
    def load(order):
        return order

    @wf.step(after=load)
    def total(order):
        return sum(order["items"])

    return wf


# ------------------------------------------------------------------ building
def test_nodes_keep_insertion_order_kinds_and_upstreams():
    wf = Workflow("shapes")

    @wf.step()
    def items(order):
        return order["items"]

    @wf.map(after=items)
    def double(x):
        return 2 * x

    @wf.reduce(after=double)
    def total(xs):
        return sum(xs)

    @wf.rule(after=total, when=lambda t: t > 10)
    def big(t):
        return "big"

    wait = wf.wait_for("approve", after=[total])
    nap = wf.sleep(5, after=wait)

    assert list(wf.nodes) == ["items", "double", "total", "big", "wait_approve", nap.name]
    kinds = {name: node.kind for name, node in wf.nodes.items()}
    assert kinds == {
        "items": NodeKind.STEP,
        "double": NodeKind.MAP,
        "total": NodeKind.STEP,
        "big": NodeKind.RULE,
        "wait_approve": NodeKind.WAIT,
        nap.name: NodeKind.SLEEP,
    }
    assert wf.node("double").after == ("items",)
    assert wait.signal == "approve" and nap.seconds == 5.0
    assert wf.downstream("total") == ("big", "wait_approve")
    assert set(wf.sinks()) == {"big", nap.name}
    wf.validate()


def test_decorated_step_stays_callable_and_names_resolve_as_strings():
    wf = Workflow("calls")

    @wf.step()
    def double(x):
        return 2 * x

    @wf.step(after="double")
    def plus_one(x):
        return x + 1

    assert isinstance(double, Node)
    assert double(21) == 42
    assert wf.node("plus_one").after == ("double",)
    # the non-decorator form works too
    node = wf.step(lambda x: x, name="ident", after=plus_one)
    assert node.name == "ident" and node.after == ("plus_one",)


def test_node_without_function_refuses_to_be_called():
    wf = Workflow("w")
    wait = wf.wait_for("go")
    with pytest.raises(InvalidArgument, match="wait 'wait_go' has no function"):
        wait()


def test_options_land_in_policy_and_resources():
    wf = Workflow("opts")

    def fb(x):
        return "fallback"

    node = wf.step(
        lambda x: x,
        name="s",
        retries=3,
        backoff="linear",
        backoff_base=0.5,
        backoff_max=4,
        timeout=10,
        on_failure="skip",
        fallback=fb,
        priority=7,
        irreversible=True,
        num_cpus=2,
        num_gpus=0.5,
        memory=1024,
        resources={"tpu": 1},
    )
    # inline=True with a timeout is refused (an inline step cannot be interrupted): its own step
    quick = wf.step(lambda x: x, name="quick", retries=3, num_cpus=2, inline=True)
    assert node.policy == Policy(
        retries=3,
        backoff="linear",
        backoff_base=0.5,
        backoff_max=4,
        timeout=10,
        on_failure="skip",
        fallback=fb,
        priority=7,
        irreversible=True,
    )
    assert node.policy.max_attempts == 4
    assert node.resources == Resources(num_cpus=2, num_gpus=0.5, memory=1024, custom={"tpu": 1})
    assert node.resources.ray_options() == {"num_cpus": 2, "num_gpus": 0.5, "memory": 1024, "resources": {"tpu": 1}}
    assert quick.inline is True and quick.policy.retries == 3 and quick.resources.num_cpus == 2
    m = wf.map(lambda x: x, name="m", after=node, retries=2, num_cpus=1, inline=True)
    assert m.policy.retries == 2 and m.resources.num_cpus == 1 and m.inline


def test_default_resources_ask_ray_for_nothing_special():
    assert Resources().ray_options() == {}


@pytest.mark.parametrize(
    ("attempt", "backoff", "expected"),
    [
        (1, "none", 0.0),
        (3, "none", 0.0),
        (1, "linear", 2.0),
        (3, "linear", 6.0),
        (10, "linear", 10.0),  # capped at backoff_max
        (1, "exponential", 2.0),
        (2, "exponential", 4.0),
        (3, "exponential", 8.0),
        (5, "exponential", 10.0),
    ],
)
def test_retry_delay(attempt, backoff, expected):
    policy = Policy(retries=10, backoff=backoff, backoff_base=2, backoff_max=10)
    assert policy.retry_delay(attempt) == expected


def test_jitter_delay_is_within_the_exponential_ceiling():
    import random

    policy = Policy(retries=5, backoff="jitter", backoff_base=1, backoff_max=5)
    rng = random.Random(7)
    delays = [policy.retry_delay(attempt, rng) for attempt in (1, 2, 3, 4, 5) for _ in range(20)]
    ceilings = [min(5, 2 ** (attempt - 1)) for attempt in (1, 2, 3, 4, 5) for _ in range(20)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) > 50  # actually random, not the ceiling
    # the same seed gives the same delays (in-process runs are reproducible)
    rng2 = random.Random(7)
    assert delays == [policy.retry_delay(attempt, rng2) for attempt in (1, 2, 3, 4, 5) for _ in range(20)]


# --------------------------------------------------------------- validation
def test_unknown_upstream_names_the_component():
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="depends on unknown component 'missing'") as info:
        wf.step(lambda x: x, name="child", after="missing")
    assert info.value.component == "child"
    assert "component 'child'" in str(info.value)
    assert "child" not in wf.nodes


def test_upstream_from_another_workflow_is_refused():
    other = Workflow("other")
    foreign = other.step(lambda x: x, name="foreign")
    wf = Workflow("w")
    wf.step(lambda x: x, name="foreign")  # same name, different node object
    with pytest.raises(DefinitionError, match="belongs to another workflow") as info:
        wf.step(lambda x: x, name="child", after=foreign)
    assert info.value.component == "child"


def test_upstream_listed_twice_and_bad_after_value():
    wf = Workflow("w")
    a = wf.step(lambda x: x, name="a")
    with pytest.raises(DefinitionError, match="lists 'a' twice") as info:
        wf.step(lambda x, y: x, name="b", after=[a, "a"])
    assert info.value.component == "b"
    with pytest.raises(DefinitionError, match="after= takes components or their names, got 42"):
        wf.step(lambda x: x, name="c", after=[42])


def test_duplicate_names_are_refused_and_the_first_kept():
    wf = Workflow("w")

    @wf.step()
    def fetch(x):
        return x

    first = wf.node("fetch")
    with pytest.raises(DefinitionError, match="a component named 'fetch' already exists; pass name=") as info:

        @wf.step()
        def fetch(x):  # noqa: F811
            return x

    assert info.value.component == "fetch"
    assert wf.node("fetch") is first
    wf.wait_for("go")
    with pytest.raises(DefinitionError, match="'wait_go' already exists"):
        wf.wait_for("go")
    wf.wait_for("go", name="second_go")  # name= tells them apart


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be a whole number >= 0, got -1"),
        ({"retries": 1.5}, "retries must be a whole number >= 0"),
        ({"retries": True}, "retries must be a whole number >= 0"),
        ({"backoff": "bogus"}, "backoff must be one of none, linear, exponential, jitter; got 'bogus'"),
        ({"backoff_base": -1}, "backoff_base must be at least 0"),
        ({"backoff_base": 10, "backoff_max": 5}, r"backoff_max \(5\) must be at least backoff_base \(10\)"),
        ({"timeout": 0}, "timeout must be greater than 0, got 0"),
        ({"timeout": -3}, "timeout must be greater than 0"),
        ({"timeout": "10s"}, "timeout must be a number, got '10s'"),
        ({"num_cpus": -1}, "num_cpus must be at least 0, got -1"),
        ({"num_gpus": "one"}, "num_gpus must be a number"),
        ({"memory": -5}, "memory must be at least 0"),
        ({"resources": {"tpu": -1}}, r"resources\['tpu'\] must be at least 0"),
        ({"resources": {"": 1}}, "resource names must be non-empty strings"),
        ({"resources": [("tpu", 1)]}, "resources must be a dict"),
        ({"on_failure": "x"}, "on_failure must be 'halt' or 'skip', got 'x'"),
        ({"fallback": 3}, "fallback must be callable, got 3"),
        ({"priority": "high"}, "priority must be an int, got 'high'"),
        ({"irreversible": "yes"}, "irreversible must be True or False"),
        ({"inline": 1}, "inline must be True or False, got 1"),
    ],
)
def test_bad_option_values_name_the_component(options, message):
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match=message) as info:
        wf.step(lambda x: x, name="charge", **options)
    assert info.value.component == "charge"
    assert str(info.value).startswith("component 'charge': ")
    assert "charge" not in wf.nodes  # nothing half-registered


@pytest.mark.parametrize("builder", ["map", "rule", "reduce"])
def test_bad_options_on_map_rule_and_reduce(builder):
    wf = Workflow("w")
    src = wf.step(lambda x: [x], name="src")
    add = getattr(wf, builder)
    extra = {"when": lambda x: True} if builder == "rule" else {}
    with pytest.raises(DefinitionError, match="retries must be a whole number") as info:
        add(lambda x: x, name="comp", after=src, retries=-1, **extra)
    assert info.value.component == "comp"
    with pytest.raises(DefinitionError, match="unknown option\\(s\\) bogus, colour") as info:
        add(lambda x: x, name="comp", after=src, bogus=1, colour="red", **extra)
    assert info.value.component == "comp"


def test_non_callable_components_are_refused():
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="a step needs a callable, got 5") as info:
        wf.step(5, name="five")
    assert info.value.component == "five"
    with pytest.raises(DefinitionError, match="rule condition `when` must be callable, got True") as info:
        wf.rule(lambda x: x, name="r", when=True)
    assert info.value.component == "r"


def test_wrong_arity_for_a_join():
    wf = Workflow("w")
    a = wf.step(lambda x: x, name="a")
    b = wf.step(lambda x: x, name="b")

    def join(only_one):
        return only_one

    with pytest.raises(
        DefinitionError, match=r"function 'join' cannot be called with 2 positional argument\(s\) \(upstream a, b\)"
    ) as info:
        wf.step(join, after=[a, b])
    assert info.value.component == "join"
    # *args and defaults are fine
    wf.step(lambda *xs: xs, name="varargs", after=[a, b])
    wf.step(lambda x, y, z=0: x, name="defaults", after=[a, b])


def test_wrong_arity_for_a_rule_condition_and_fallback():
    wf = Workflow("w")
    a = wf.step(lambda x: x, name="a")
    b = wf.step(lambda x: x, name="b")
    with pytest.raises(DefinitionError, match="condition '<lambda>' cannot be called with 2") as info:
        wf.rule(lambda x, y: x, name="r", after=[a, b], when=lambda x: True)
    assert info.value.component == "r"

    def fb():
        return None

    with pytest.raises(DefinitionError, match="fallback 'fb' cannot be called with 1 positional argument") as info:
        wf.step(lambda x: x, name="s", after=a, fallback=fb)
    assert info.value.component == "s"


def test_map_function_takes_one_item_whatever_the_upstream():
    wf = Workflow("w")
    items = wf.step(lambda x: x, name="items")
    with pytest.raises(DefinitionError, match="cannot be called with 1 positional") as info:
        wf.map(lambda a, b: a, name="pairs", after=items)
    assert info.value.component == "pairs"


@pytest.mark.parametrize("builder", ["map", "reduce"])
@pytest.mark.parametrize("after", [lambda a, b: [a, b], lambda a, b: (a,), lambda a, b: ["a", "b"]])
def test_map_and_reduce_take_exactly_one_upstream(builder, after):
    wf = Workflow("w")
    a = wf.step(lambda x: [x], name="a")
    b = wf.step(lambda x: [x], name="b")
    with pytest.raises(DefinitionError, match=f"{builder} takes exactly one upstream component") as info:
        getattr(wf, builder)(lambda xs: xs, name="fan", after=after(a, b))
    assert info.value.component == "fan"


def test_map_needs_an_upstream():
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="map takes exactly one upstream") as info:
        wf.map(lambda x: x, name="m", after=None)
    assert info.value.component == "m"


def test_root_step_takes_zero_or_one_parameter():
    wf = Workflow("roots")
    one = wf.step(lambda order: order, name="one")
    zero = wf.step(lambda: 42, name="zero")
    optional = wf.step(lambda order=None: order, name="optional")
    star = wf.step(lambda *args: args, name="star")
    assert one.takes_input and optional.takes_input and star.takes_input
    assert not zero.takes_input

    with pytest.raises(DefinitionError, match="a root component takes the run input: one argument, or none") as info:
        wf.step(lambda a, b: a, name="two")
    assert info.value.component == "two"

    def kw_only(*, order):
        return order

    with pytest.raises(DefinitionError, match="one argument, or none"):
        wf.step(kw_only)


def test_root_fallback_matches_the_root_function_arity():
    wf = Workflow("w")
    wf.step(lambda: 1, name="zero", fallback=lambda: 0)
    with pytest.raises(
        DefinitionError,
        match="fallback '<lambda>' cannot be called with 0 positional argument\\(s\\) \\(the run input\\)",
    ):
        wf.step(lambda: 1, name="zero2", fallback=lambda x: 0)


@pytest.mark.parametrize("name", ["", "1abc", "has space", "slash/no", None, 3])
def test_bad_workflow_names(name):
    with pytest.raises(DefinitionError, match="workflow name must be letters"):
        Workflow(name)  # type: ignore[arg-type]


def test_bad_component_names():
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="names must be letters, digits") as info:
        wf.step(lambda x: x, name="no spaces")
    assert info.value.component == "no spaces"
    with pytest.raises(DefinitionError, match="signal name must be a plain identifier, got 'a b'"):
        wf.wait_for("a b")


@pytest.mark.parametrize("seconds", [-1, "5", True, None])
def test_bad_sleep(seconds):
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="sleep needs a number of seconds >= 0") as info:
        wf.sleep(seconds, name="nap")
    assert info.value.component == "nap"


def test_sleep_takes_at_most_one_upstream():
    wf = Workflow("w")
    a = wf.step(lambda x: x, name="a")
    b = wf.step(lambda x: x, name="b")
    with pytest.raises(DefinitionError, match="sleep takes at most one upstream") as info:
        wf.sleep(1, name="nap", after=[a, b])
    assert info.value.component == "nap"


def test_output_by_set_output_and_by_constructor():
    wf = linear()
    assert wf.output is None
    wf.set_output("load")
    assert wf.output == "load"
    with pytest.raises(DefinitionError, match="depends on unknown component 'nope'") as info:
        wf.set_output("nope")
    assert info.value.component == "output"

    # the constructor names a component that is defined later; validate() checks it
    later = Workflow("later", output="final")
    later.step(lambda x: x, name="final")
    later.step(lambda x: x, name="other")
    later.validate()
    assert later.output == "final"
    broken = Workflow("broken", output="never")
    broken.step(lambda x: x, name="final")
    with pytest.raises(DefinitionError, match="names unknown component 'never'") as info:
        broken.validate()
    assert info.value.component == "output"


def test_unknown_component_lookup():
    wf = linear()
    with pytest.raises(DefinitionError, match="workflow 'linear' has no component of that name") as info:
        wf.node("nope")
    assert info.value.component == "nope"


# ------------------------------------------------------------------ validate
def test_validate_refuses_an_empty_workflow():
    with pytest.raises(DefinitionError, match="workflow 'empty' has no components; add a step first"):
        Workflow("empty").validate()


def test_validate_detects_a_cycle_and_names_it():
    wf = Workflow("loop")
    wf.step(lambda x: x, name="a")
    wf.step(lambda x: x, name="b", after="a")
    wf.step(lambda x: x, name="c", after="b")
    wf.validate()
    # the API cannot build a cycle, so patch one in: a now depends on c
    wf._nodes["a"] = Node(name="a", kind=NodeKind.STEP, after=("c",), fn=lambda x: x)
    with pytest.raises(DefinitionError, match="is part of a cycle: a -> c -> b -> a") as info:
        wf.validate()
    assert info.value.component == "a"


def test_validate_detects_a_self_loop():
    wf = Workflow("self")
    wf.step(lambda x: x, name="a")
    wf._nodes["a"] = Node(name="a", kind=NodeKind.STEP, after=("a",), fn=lambda x: x)
    with pytest.raises(DefinitionError, match="cycle: a -> a"):
        wf.validate()


def test_validate_detects_an_unknown_upstream_patched_in():
    wf = Workflow("w")
    wf.step(lambda x: x, name="a")
    wf._nodes["b"] = Node(name="b", kind=NodeKind.STEP, after=("ghost",), fn=lambda x: x)
    with pytest.raises(DefinitionError, match="depends on unknown component 'ghost'") as info:
        wf.validate()
    assert info.value.component == "b"


# ---------------------------------------------------------- definition hash
def test_definition_hash_is_stable_for_identical_definitions():
    assert linear().definition_hash() == linear().definition_hash()
    assert len(linear().definition_hash()) == 64


def build_variant(
    *,
    name="wf",
    body=1,
    retries=0,
    backoff="exponential",
    cpus=None,
    after_b=("a",),
    fb=1,
    cond=10,
    output=None,
    inline=False,
    seconds=5,
    signal="go",
):
    """The same workflow, or one that differs in exactly the given way (same qualnames throughout)."""
    wf = Workflow(name)

    if body == 1:

        def a(x):
            return x + 1

    else:

        def a(x):
            return x + 2

    def b(*xs):
        return xs

    if fb == 1:

        def fallback(*xs):
            return "one"

    else:

        def fallback(*xs):
            return "two"

    if cond == 10:

        def when(v):
            return v > 10

    else:

        def when(v):
            return v > 11

    wf.step(a, retries=retries, backoff=backoff, num_cpus=cpus, inline=inline)
    wf.rule(lambda v: v, name="r", after="a", when=when)
    wf.step(b, after=list(after_b), fallback=fallback)
    wf.wait_for(signal, name="w", after="a")
    wf.sleep(seconds, name="s", after="w")
    if output:
        wf.set_output(output)
    return wf


@pytest.mark.parametrize(
    "change",
    [
        {"name": "other"},
        {"body": 2},
        {"retries": 1},
        {"backoff": "linear"},
        {"cpus": 2},
        {"after_b": ("a", "r")},
        {"fb": 2},
        {"cond": 11},
        {"output": "a"},
        {"inline": True},
        {"seconds": 6},
        {"signal": "stop"},
    ],
)
def test_definition_hash_changes_with_code_shape_and_options(change):
    base = build_variant().definition_hash()
    assert build_variant().definition_hash() == base
    assert build_variant(**change).definition_hash() != base


def test_definition_hash_does_not_depend_on_the_hash_seed():
    """frozenset constants iterate in hash order, which changes between processes."""

    def check(x):
        return x in {8, 16, 24}

    consts = check.__code__.co_consts
    frozen = next(c for c in consts if isinstance(c, frozenset))
    reordered = frozenset(sorted(frozen, reverse=True))
    assert list(reordered) != list(frozen)  # same set, other iteration order (colliding ints)

    def clone():
        def check(x):
            return x in {8, 16, 24}

        return check

    other = clone()
    other.__code__ = other.__code__.replace(
        co_consts=tuple(reordered if isinstance(c, frozenset) else c for c in other.__code__.co_consts)
    )
    import hashlib

    d2 = hashlib.sha256()
    _code_fingerprint(clone(), d2)
    d3 = hashlib.sha256()
    _code_fingerprint(other, d3)
    assert d2.hexdigest() == d3.hexdigest()


def _scale(factor, x):
    return x * factor


class _Counter:
    def __init__(self, step):
        self.step = step

    def add(self, x):
        return x + self.step

    def __call__(self, x):
        return x - self.step


def test_definition_hash_follows_partials_methods_and_callable_instances_to_their_code():
    import functools

    def hash_of(fn):
        wf = Workflow("shipped")
        wf.step(fn, name="s")
        return wf.definition_hash()

    assert hash_of(functools.partial(_scale, 3)) == hash_of(functools.partial(_scale, 3))
    assert hash_of(functools.partial(_scale, 3)) != hash_of(functools.partial(_scale, 4))
    assert hash_of(functools.partial(_scale, x=3)) != hash_of(functools.partial(_scale, x=4))
    assert hash_of(functools.partial(_scale, [1, "a"])) != hash_of(functools.partial(_scale, [1, "b"]))
    assert hash_of(functools.partial(_scale, _Counter(1))) == hash_of(functools.partial(_scale, _Counter(2)))
    assert hash_of(functools.partial(_scale, len)) != hash_of(functools.partial(_scale, abs))
    assert hash_of(_Counter(1).add) != hash_of(functools.partial(_scale, 1))
    assert hash_of(_Counter(1).add) != hash_of(_Counter(1))  # a bound method and a callable instance
    assert hash_of(_Counter(1)) == hash_of(_Counter(2))  # instance state is data, like a function's globals
