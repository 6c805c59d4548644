"""Checking a run's input against the workflow's declared input type.

A workflow may declare ``input_type=``: a dataclass, a TypedDict, a type
hint (``list[int]``, ``Optional[str]``, ``Literal["a", "b"]``) or a validator
callable. The input is checked when a run is submitted, before anything is
stored: defaults are applied first, then every problem is collected
(missing, unknown and wrongly typed fields together) and reported in one
:class:`~runner.errors.InvalidInput`. A validator's ValueError or TypeError,
and a dataclass's ``__post_init__``'s, are reported the same way. Pure: no
Ray, no I/O.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from runner.errors import InvalidInput


def is_typed_dict(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, dict) and hasattr(kind, "__required_keys__")


def is_type_hint(kind: Any) -> bool:
    """A parameterised typing construct: ``list[int]``, ``Optional[int]``, ``int | None``, ``Literal[...]``.

    These are checked like a dataclass field's annotation, never called (most are callable, but
    calling ``list[int]`` converts rather than checks, and ``Optional[int]()`` always raises).
    """
    return typing.get_origin(kind) is not None


def check_input_type(kind: Any) -> None:
    """Raise TypeError unless ``kind`` is a dataclass, a TypedDict, a type hint or a callable."""
    if (
        not (dataclasses.is_dataclass(kind) and isinstance(kind, type))
        and not is_typed_dict(kind)
        and not is_type_hint(kind)
        and not callable(kind)
    ):
        raise TypeError(
            f"input_type must be a dataclass, a TypedDict, a type hint or a validator callable, got {kind!r}"
        )


def validate_input(workflow: str, kind: Any, value: Any) -> Any:
    """The input to store: ``value`` checked and normalised, or InvalidInput listing every problem."""
    if kind is None:
        return value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _dataclass(workflow, kind, value)
    if is_typed_dict(kind) or is_type_hint(kind):
        problems: dict[str, str] = {}
        if is_typed_dict(kind):
            result = _typed_dict(kind, value, "", problems)
        else:
            result = _check(value, kind, "input", problems)
        if problems:
            raise InvalidInput(workflow, problems)
        return result
    try:
        return kind(value)
    except InvalidInput:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidInput(workflow, {"input": str(exc) or type(exc).__name__}) from exc


def _dataclass(workflow: str, kind: type, value: Any) -> Any:
    if isinstance(value, kind):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(kind) if f.init}
    elif isinstance(value, Mapping):
        fields = dict(value)
    else:
        raise InvalidInput(
            workflow, {"input": f"expected {kind.__name__} or a dict of its fields, got {type(value).__name__}"}
        )
    problems: dict[str, str] = {}
    checked = _fields(kind, fields, "", problems)
    built = None if problems else _build(kind, checked, "input", problems)
    if problems:
        raise InvalidInput(workflow, problems)
    return built


def _build(kind: type, fields: dict[str, Any], path: str, problems: dict[str, str]) -> Any:
    """``kind(**fields)``; what its ``__post_init__`` (or an InitVar it lacks) rejects becomes a problem."""
    try:
        return kind(**fields)
    except (TypeError, ValueError) as exc:
        problems[path] = str(exc) or type(exc).__name__
        return None


def _fields(kind: type, fields: dict[str, Any], prefix: str, problems: dict[str, str]) -> dict[str, Any]:
    hints = _hints(kind)
    known = {f.name: f for f in dataclasses.fields(kind) if f.init}
    out: dict[str, Any] = {}
    for name in sorted(set(fields) - set(known), key=str):
        problems[prefix + str(name)] = "unknown field"
    for name, f in known.items():
        if name in fields:
            out[name] = _check(fields[name], hints.get(name, Any), prefix + name, problems)
        elif f.default is not dataclasses.MISSING:
            out[name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[name] = f.default_factory()
        else:
            problems[prefix + name] = "missing"
    return out


def _typed_dict(kind: Any, value: Any, prefix: str, problems: dict[str, str]) -> Any:
    if not isinstance(value, Mapping):
        problems[prefix.rstrip(".") or "input"] = f"expected a dict, got {type(value).__name__}"
        return value
    hints = _hints(kind)
    out: dict[str, Any] = {}
    for name in sorted(set(value) - set(hints), key=str):
        problems[prefix + str(name)] = "unknown field"
    for name, hint in hints.items():
        if name in value:
            out[name] = _check(value[name], hint, prefix + name, problems)
        elif name in kind.__required_keys__:
            problems[prefix + name] = "missing"
    return out


def _hints(kind: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(kind)
    except Exception:  # unresolvable forward references: check nothing rather than fail
        return {}


def _check(value: Any, hint: Any, path: str, problems: dict[str, str]) -> Any:
    """``value`` (nested dataclasses built from dicts) if it fits ``hint``; else a problem is recorded."""
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(hint, types.UnionType)):
        for option in args:
            trial: dict[str, str] = {}
            result = _check(value, option, path, trial)
            if not trial:
                return result
        problems[path] = f"expected {_name(hint)}, got {type(value).__name__}"
        return value
    if origin is typing.Annotated:
        return _check(value, args[0], path, problems)
    if origin is typing.Literal:
        # by type too: True == 1 and 0 == False, but Literal[1] does not admit True
        if not any(value == option and type(value) is type(option) for option in args):
            problems[path] = f"expected one of {', '.join(map(repr, args))}, got {value!r}"
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            before = len(problems)
            fields = _fields(hint, dict(value), path + ".", problems)
            return _build(hint, fields, path, problems) if len(problems) == before else value
        problems[path] = f"expected {hint.__name__} or a dict of its fields, got {type(value).__name__}"
        return value
    if is_typed_dict(hint):
        return _typed_dict(hint, value, path + ".", problems)
    if origin in (list, tuple, set, frozenset, dict) or isinstance(hint, type):
        base = origin or hint
        if base is float and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is int and isinstance(value, bool):
            problems[path] = "expected int, got bool"
            return value
        try:
            fits = isinstance(value, base)
        except TypeError:  # a Protocol that is not runtime_checkable, and the like: trusted
            return value
        if not fits:
            problems[path] = f"expected {_name(hint)}, got {type(value).__name__}"
            return value
        if origin is list and args:
            return [_check(item, args[0], f"{path}[{i}]", problems) for i, item in enumerate(value)]
        if origin in (set, frozenset) and args:
            for item in value:
                _check(item, args[0], f"{path} item", problems)
        elif origin is dict and len(args) == 2:
            return {
                _check(key, args[0], f"{path}[{key!r}] key", problems): _check(
                    item, args[1], f"{path}[{key!r}]", problems
                )
                for key, item in value.items()
            }
        return value
    return value  # annotations we cannot check (protocols, generics of user classes) are trusted


def _name(hint: Any) -> str:
    """How a message names a type: ``int``, ``list[Line]``, ``dict[str, int]``, ``int | None``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is None:
        if hint is type(None):
            return "None"
        return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return " | ".join(_name(arg) for arg in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    inner = ", ".join("..." if arg is Ellipsis else _name(arg) for arg in args)
    return f"{getattr(origin, '__name__', None) or _name(origin)}[{inner}]"
