"""Checking a run's input against ``input_type``: dataclasses, TypedDicts, type hints and validator callables.

Pure: no Ray. The types live at module level so ``typing.get_type_hints``
resolves their (postponed) annotations.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Protocol, TypedDict, Union

import pytest

from runner import DefinitionError, InvalidInput, Workflow
from runner.inputs import check_input_type, validate_input


@dataclass
class Line:
    sku: str
    qty: int


@dataclass
class Address:
    city: str
    zip: str | None = None


@dataclass
class Order:
    id: str
    address: Address
    lines: list[Line] = field(default_factory=list)
    priority: int = 1
    note: str | None = None


@dataclass
class Scalars:
    count: int = 0
    ratio: float = 0.0
    flag: bool = False
    size: Literal["small", "large"] = "small"
    level: Literal[1, 2] = 1
    key: Union[int, str] = 0
    either: int | str = 0
    counts: dict[str, int] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


@dataclass
class Checked:
    qty: int
    total: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise ValueError(f"qty must be positive, got {self.qty}")
        self.total = self.qty * 1.5


class Named(Protocol):  # not runtime_checkable: isinstance() would raise
    name: str


@dataclass
class WithProtocol:
    thing: Named


class Required(TypedDict):
    name: str


class Options(Required, total=False):
    size: int
    tags: list[str]
    line: Line


class Plain(TypedDict):
    a: int
    b: str | None


def problems_of(kind: Any, value: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        validate_input("wf", kind, value)
    assert caught.value.workflow == "wf"
    return caught.value.problems


# ------------------------------------------------------------------ dataclasses
def test_dataclass_defaults_are_applied_first() -> None:
    order = validate_input("wf", Order, {"id": "A-1", "address": {"city": "Oslo"}})
    assert order == Order(id="A-1", address=Address(city="Oslo"), lines=[], priority=1, note=None)
    other = validate_input("wf", Order, {"id": "A-2", "address": {"city": "Oslo"}})
    assert other.lines is not order.lines  # default_factory runs per input


def test_nested_dataclass_and_list_of_dataclasses_are_built_from_dicts() -> None:
    order = validate_input(
        "wf",
        Order,
        {
            "id": "A-1",
            "address": {"city": "Oslo", "zip": "0150"},
            "lines": [{"sku": "pen", "qty": 3}, {"sku": "ink", "qty": 2}],
        },
    )
    assert isinstance(order, Order) and isinstance(order.address, Address)
    assert order.address == Address(city="Oslo", zip="0150")
    assert order.lines == [Line("pen", 3), Line("ink", 2)]
    assert all(isinstance(line, Line) for line in order.lines)


def test_an_instance_is_accepted_and_checked() -> None:
    order = Order(id="A-1", address=Address(city="Oslo"), lines=[Line("pen", 1)])
    assert validate_input("wf", Order, order) == order
    assert problems_of(Order, Order(id="A-1", address=Address(city="Oslo"), priority="high")) == {  # type: ignore[arg-type]
        "priority": "expected int, got str"
    }


def test_nested_problems_are_named_by_their_path() -> None:
    problems = problems_of(
        Order,
        {"id": "A-1", "address": {"zip": 150}, "lines": [{"sku": "pen", "qty": 1}, {"sku": "ink", "qty": "two"}]},
    )
    assert problems == {
        "address.city": "missing",
        "address.zip": "expected str | None, got int",
        "lines[1].qty": "expected int, got str",
    }
    assert problems_of(Order, {"id": "A-1", "address": "Oslo"}) == {
        "address": "expected Address or a dict of its fields, got str"
    }
    assert problems_of(Order, {"id": "A-1", "address": {"city": "x"}, "lines": {"sku": "pen"}}) == {
        "lines": "expected list[Line], got dict"
    }


def test_missing_unknown_and_wrong_types_are_reported_together() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_input("orders", Order, {"address": {"city": 7}, "priority": "high", "colour": "red", "size": 3})
    error = caught.value
    assert error.workflow == "orders"
    assert error.problems == {
        "id": "missing",
        "address.city": "expected str, got int",
        "priority": "expected int, got str",
        "colour": "unknown field",
        "size": "unknown field",
    }
    message = str(error)
    assert message.startswith("input for workflow 'orders' rejected (")
    assert message.endswith("); nothing was stored")
    for name, reason in error.problems.items():
        assert f"{name}: {reason}" in message
    assert isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))  # Ray pickles errors between processes
    assert again.problems == error.problems and str(again) == message


def test_input_that_is_neither_a_dict_nor_an_instance() -> None:
    assert problems_of(Order, ["A-1"]) == {"input": "expected Order or a dict of its fields, got list"}
    assert problems_of(Order, None) == {"input": "expected Order or a dict of its fields, got NoneType"}


def test_unknown_keys_that_are_not_strings_are_reported_not_crashed_on() -> None:
    assert problems_of(Line, {"sku": "pen", "qty": 1, 1: "a", (2,): "b"}) == {
        "1": "unknown field",
        "(2,)": "unknown field",
    }


def test_post_init_errors_are_invalid_input_and_init_false_fields_are_not_input() -> None:
    checked = validate_input("wf", Checked, {"qty": 2})
    assert checked.total == 3.0
    assert validate_input("wf", Checked, Checked(qty=2)) == checked  # its init=False field is not "unknown"
    assert problems_of(Checked, {"qty": 0}) == {"input": "qty must be positive, got 0"}
    assert problems_of(Checked, {"qty": 1, "total": 9.0}) == {"total": "unknown field"}


def test_optional_and_union() -> None:
    assert validate_input("wf", Address, {"city": "Oslo", "zip": None}).zip is None
    assert validate_input("wf", Scalars, {"key": "k", "either": 5}) == Scalars(key="k", either=5)
    problems = problems_of(Scalars, {"key": 1.5, "either": None})
    assert problems == {"key": "expected int | str, got float", "either": "expected int | str, got NoneType"}


def test_a_union_member_dataclass_is_built() -> None:
    @dataclass
    class Holder:
        item: Union[int, Line]

    assert validate_input("wf", Holder, {"item": {"sku": "pen", "qty": 1}}) == Holder(item=Line("pen", 1))
    assert validate_input("wf", Holder, {"item": 3}) == Holder(item=3)


def test_literal_admits_only_its_values_of_their_type() -> None:
    assert validate_input("wf", Scalars, {"size": "large", "level": 2}) == Scalars(size="large", level=2)
    assert problems_of(Scalars, {"size": "medium"}) == {"size": "expected one of 'small', 'large', got 'medium'"}
    assert problems_of(Scalars, {"level": True}) == {"level": "expected one of 1, 2, got True"}
    assert problems_of(Scalars, {"level": 1.0}) == {"level": "expected one of 1, 2, got 1.0"}


def test_int_bool_and_float_are_told_apart() -> None:
    assert validate_input("wf", Scalars, {"count": 3, "ratio": 2, "flag": True}) == Scalars(count=3, ratio=2, flag=True)
    assert validate_input("wf", Scalars, {"ratio": 0.5}).ratio == 0.5
    assert problems_of(Scalars, {"count": True, "ratio": False, "flag": 1}) == {
        "count": "expected int, got bool",
        "ratio": "expected float, got bool",
        "flag": "expected bool, got int",
    }
    assert problems_of(Scalars, {"count": 1.0, "ratio": "0.5"}) == {
        "count": "expected int, got float",
        "ratio": "expected float, got str",
    }


def test_dict_of_str_to_int() -> None:
    assert validate_input("wf", Scalars, {"counts": {"a": 1, "b": 2}}).counts == {"a": 1, "b": 2}
    assert problems_of(Scalars, {"counts": {"a": "1", "b": True, 3: 4}}) == {
        "counts['a']": "expected int, got str",
        "counts['b']": "expected int, got bool",
        "counts[3] key": "expected str, got int",
    }
    assert problems_of(Scalars, {"counts": [("a", 1)]}) == {"counts": "expected dict[str, int], got list"}
    assert problems_of(Scalars, {"tags": ["a", 2]}) == {"tags[1]": "expected str, got int"}


def test_a_protocol_annotation_is_trusted() -> None:
    thing = object()
    assert validate_input("wf", WithProtocol, {"thing": thing}).thing is thing


# ------------------------------------------------------------------- TypedDict
def test_typed_dict_required_and_optional_keys() -> None:
    assert validate_input("wf", Options, {"name": "x"}) == {"name": "x"}
    given = {"name": "x", "size": 2, "tags": ["a"], "line": {"sku": "pen", "qty": 1}}
    checked = validate_input("wf", Options, given)
    assert checked == {"name": "x", "size": 2, "tags": ["a"], "line": Line("pen", 1)}
    assert given["line"] == {"sku": "pen", "qty": 1}  # the caller's dict is not changed
    assert problems_of(Options, {}) == {"name": "missing"}  # total=False keys may be left out; inherited ones not
    assert problems_of(Options, {"size": "big", "tags": "a", "extra": 1}) == {
        "name": "missing",
        "size": "expected int, got str",
        "tags": "expected list[str], got str",
        "extra": "unknown field",
    }


def test_typed_dict_total_requires_every_key() -> None:
    assert validate_input("wf", Plain, {"a": 1, "b": None}) == {"a": 1, "b": None}
    assert problems_of(Plain, {"a": 1}) == {"b": "missing"}
    assert problems_of(Plain, {"a": False, "b": 2}) == {
        "a": "expected int, got bool",
        "b": "expected str | None, got int",
    }
    assert problems_of(Plain, [1, 2]) == {"input": "expected a dict, got list"}


# ---------------------------------------------------------- validator callables
def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be positive, got {number}")
    return number


def test_a_validator_normalises_the_input() -> None:
    assert validate_input("wf", positive_int, "12") == 12
    assert validate_input("wf", positive_int, 3.0) == 3
    workflow = Workflow("counted", input_type=positive_int)
    assert workflow.check_input("7") == 7


def test_a_validator_error_is_invalid_input_with_its_message() -> None:
    assert problems_of(positive_int, -4) == {"input": "must be positive, got -4"}
    assert problems_of(positive_int, [1]) == {"input": "expected a number, got list"}
    with pytest.raises(InvalidInput) as caught:
        Workflow("counted", input_type=positive_int).check_input(0)
    assert caught.value.workflow == "counted"
    assert "must be positive, got 0" in str(caught.value)


def test_a_validator_error_without_a_message_names_its_type() -> None:
    def refuse(value: Any) -> Any:
        raise ValueError

    assert problems_of(refuse, 1) == {"input": "ValueError"}


def test_a_validator_may_raise_invalid_input_itself() -> None:
    def strict(value: Any) -> Any:
        raise InvalidInput("elsewhere", {"a": "bad", "b": "worse"})

    with pytest.raises(InvalidInput) as caught:
        validate_input("wf", strict, {})
    assert caught.value.workflow == "elsewhere" and caught.value.problems == {"a": "bad", "b": "worse"}


def test_no_input_type_takes_anything() -> None:
    value = {"anything": [1, object()]}
    assert validate_input("wf", None, value) is value
    assert Workflow("free").check_input(value) is value


# ------------------------------------------------------------------ type hints
def test_a_type_hint_as_input_type_is_checked_not_called() -> None:
    listed = Workflow("listed", input_type=list[int])
    assert listed.check_input([1, 2]) == [1, 2]
    with pytest.raises(InvalidInput) as caught:
        listed.check_input(["a", 2, True])
    assert caught.value.problems == {"input[0]": "expected int, got str", "input[2]": "expected int, got bool"}
    with pytest.raises(InvalidInput) as caught:
        listed.check_input("ab")  # list[int]("ab") would have "normalised" it to ['a', 'b']
    assert caught.value.problems == {"input": "expected list[int], got str"}
    lines = Workflow("lines", input_type=list[Line]).check_input([{"sku": "pen", "qty": 1}])
    assert lines == [Line("pen", 1)]

    for hint in (Optional[int], int | None):  # noqa: UP045  (typing.Optional on purpose)
        maybe = Workflow("maybe", input_type=hint)
        assert maybe.check_input(None) is None and maybe.check_input(3) == 3
        with pytest.raises(InvalidInput, match="got str"):
            maybe.check_input("3")
    choice = Workflow("choice", input_type=Literal["a", "b"])
    assert choice.check_input("a") == "a"
    with pytest.raises(InvalidInput, match="expected one of 'a', 'b', got 'c'"):
        choice.check_input("c")


# ------------------------------------------------------------------ definition
@pytest.mark.parametrize("bad", [42, "Order", Order(id="x", address=Address(city="y")), [Line]])
def test_input_type_that_is_not_a_type_or_callable_is_a_definition_error(bad: Any) -> None:
    with pytest.raises(DefinitionError) as caught:
        Workflow("typed", input_type=bad)
    assert caught.value.component is None
    message = str(caught.value)
    assert "workflow 'typed'" in message and "input_type must be" in message and repr(bad) in message
    with pytest.raises(TypeError):
        check_input_type(bad)


@pytest.mark.parametrize("good", [Order, Options, positive_int, int, list[int], Optional[Line], Literal[1, 2]])  # noqa: UP045
def test_accepted_input_types(good: Any) -> None:
    check_input_type(good)
    assert Workflow("typed", input_type=good).input_type is good
