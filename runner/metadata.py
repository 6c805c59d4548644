"""Run metadata: JSON values users attach to a run at submit and that steps add while they run.

Metadata is a mapping of string keys to JSON values (None, bool, int, float,
str, lists and string-keyed dicts of these). It is checked where it enters
(submit, ``runner.context().set_metadata``) so that nothing that cannot be
stored as JSON text is ever accepted, and a bad value names where it is.

``list_runs(metadata={...})`` selects runs whose submit metadata holds each
key with an equal scalar value; :func:`matches` is that rule, which the
DuckDB store applies in SQL and the in-memory store in Python.
Pure: no Ray, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Union

from runner.errors import InvalidArgument

JSONValue = Union[None, bool, int, float, str, list["JSONValue"], dict[str, "JSONValue"]]
Metadata = dict[str, JSONValue]
FilterValue = Union[None, bool, int, float, str]
"""What a metadata filter compares a key's value with: JSON scalars only."""


def check_metadata(value: object, field: str = "metadata") -> Metadata:
    """``value`` as a fresh metadata dict; InvalidArgument naming the offending entry
    (``metadata['a'][2]``) if it is not a mapping of string keys to JSON values."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{field} must be a dict of JSON values, got {type(value).__name__}")
    checked = _check_json(value, field)
    assert isinstance(checked, dict)
    return checked


def _check_json(value: object, where: str) -> JSONValue:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where} is {value!r}, which JSON cannot hold; use a finite number or a string")
        return value
    if isinstance(value, list):
        return [_check_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgument(f"{where} has key {key!r}: JSON keys must be strings")
            out[key] = _check_json(item, f"{where}[{key!r}]")
        return out
    raise InvalidArgument(
        f"{where} is a {type(value).__name__}, not a JSON value (None, bool, int, float, str, list or dict); "
        "convert it (e.g. a tuple to a list, a datetime to an ISO string) before passing it"
    )


def check_filter(value: object, field: str = "metadata") -> dict[str, FilterValue]:
    """A metadata filter: string keys, each with a JSON scalar to compare its value with."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{field} filter must be a dict of key -> value, got {type(value).__name__}")
    out: dict[str, FilterValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"{field} filter keys must be non-empty strings, got {key!r}")
        if item is not None and not isinstance(item, (bool, int, float, str)):
            raise InvalidArgument(
                f"{field} filter {key!r} must be compared with a string, number, bool or None, "
                f"got {type(item).__name__}"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidArgument(f"{field} filter {key!r} must be a finite number, got {item!r}")
        out[key] = item
    return out


def matches(metadata: Mapping[str, JSONValue], wanted: Mapping[str, FilterValue]) -> bool:
    """True if ``metadata`` holds every key of ``wanted`` with an equal value: a string equals the
    same string, a number an equal number (1 == 1.0), a bool the same bool, None a JSON null."""
    return all(key in metadata and scalar_equal(metadata[key], value) for key, value in wanted.items())


def scalar_equal(stored: JSONValue, wanted: FilterValue) -> bool:
    if wanted is None or isinstance(wanted, (bool, str)):
        return type(stored) is type(wanted) and stored == wanted
    return isinstance(stored, (int, float)) and not isinstance(stored, bool) and stored == wanted


def to_json(metadata: Mapping[str, JSONValue]) -> str | None:
    """The text stored for ``metadata`` (None: no metadata)."""
    return json.dumps(metadata, sort_keys=True, allow_nan=False) if metadata else None


def from_json(text: str | None) -> Metadata:
    """Metadata stored as :func:`to_json` text."""
    if not text:
        return {}
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def json_pointer(key: str) -> str:
    """The JSON pointer (RFC 6901) that names top-level ``key``: ``/`` + key with ``~`` and ``/`` escaped."""
    return "/" + key.replace("~", "~0").replace("/", "~1")
