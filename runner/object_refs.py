"""Ray ObjectRefs in a run's input or a step's result are stored as their values.

An ObjectRef names a value in Ray's object store, which does not survive a
cluster restart, and a log that held the ref would name a value that is gone.
So the client resolves every ref in a run's input with ``ray.get`` before the
run is written, and a step's result is resolved the same way before it is
recorded: the log holds values only. Refs are found at the top level and inside
lists, tuples, dicts (their values), sets and frozensets, at any depth, and in
the values they resolve to; refs inside other objects (a dataclass's field) are
left as they are.
"""

from __future__ import annotations

from typing import Any

import ray

_OPENED = (list, tuple, dict, set, frozenset)
MAX_DEPTH = 100  # refs resolving to refs: give up past this many levels


def resolve_object_refs(value: Any, depth: int = 0) -> Any:
    """``value`` with every ObjectRef in it replaced by its value (one ``ray.get`` per level).
    A value holding no ref comes back as it is, the same object."""
    refs: list[ray.ObjectRef] = []
    _collect(value, refs)
    if not refs:
        return value
    if depth >= MAX_DEPTH:
        raise ValueError(f"ObjectRefs nested more than {MAX_DEPTH} levels deep")
    values = {ref: v for ref, v in zip(refs, ray.get(refs), strict=True)}
    return resolve_object_refs(_replace(value, values), depth + 1)


def _collect(value: Any, refs: list[ray.ObjectRef]) -> None:
    if isinstance(value, ray.ObjectRef):
        refs.append(value)
    elif type(value) in _OPENED:
        for item in value.values() if type(value) is dict else value:
            _collect(item, refs)


def _replace(value: Any, values: dict[ray.ObjectRef, Any]) -> Any:
    if isinstance(value, ray.ObjectRef):
        return values[value]
    if type(value) not in _OPENED:
        return value
    if type(value) is dict:
        return {key: _replace(item, values) for key, item in value.items()}
    items = [_replace(item, values) for item in value]
    return items if type(value) is list else type(value)(items)
