"""Turning values, events and errors into bytes and back.

User values and definitions are cloudpickled. A value larger than a
threshold becomes a content-addressed fact (sha256 of its bytes), stored
once and referenced by a :class:`~runner.events.FactRef`. Events are stored
as JSON (so SQL over the history can read them); the user values inside are
tagged: plain scalars as JSON, everything else as base64 cloudpickle.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle

from runner.errors import InvalidArgument, NonRetryableError, StoreError
from runner.events import EVENT_TYPES, ErrorInfo, Event, FactRef, kind_of

DEFAULT_FACT_THRESHOLD = 16 * 1024
_VALUE_FIELDS = frozenset({"input", "value", "payload", "result", "call", "sub_workflow"})
_SCALARS = (str, int, bool, type(None))
_JSON_BUDGET = 1_000  # values with more parts than this are pickled rather than checked


def dumps(value: Any) -> bytes:
    """cloudpickle ``value``; InvalidArgument naming its type if it cannot be pickled."""
    try:
        return cloudpickle.dumps(value)
    except Exception as exc:
        raise InvalidArgument(
            f"value of type {type(value).__name__} cannot be serialized ({exc}); "
            "return plain data (dicts, lists, dataclasses) from steps"
        ) from exc


def loads(blob: bytes) -> Any:
    return cloudpickle.loads(blob)


def fact_hash(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def externalize(value: Any, threshold: int = DEFAULT_FACT_THRESHOLD) -> tuple[Any, bytes | None]:
    """Return ``(value, None)`` for small values, ``(FactRef, blob)`` for large ones.

    The caller saves ``blob`` with ``store.save_fact(ref.hash, blob)`` before
    appending the event that holds the ref.
    """
    if isinstance(value, _SCALARS) and not isinstance(value, str):
        return value, None
    blob = dumps(value)
    if len(blob) <= threshold:
        return value, None
    length = len(value) if isinstance(value, (list, tuple)) else None
    return FactRef(hash=fact_hash(blob), size=len(blob), length=length), blob


# ------------------------------------------------------------------- facts
class FactLoader:
    """Loads the values fact references name, each fact once: ``loader(ref)`` is the value.
    ``load_fact(hash)`` reads a fact's bytes (from the store, however the caller reaches it)."""

    def __init__(self, load_fact: Callable[[str], bytes]) -> None:
        self._load_fact = load_fact
        self._values: dict[str, Any] = {}

    def __call__(self, ref: FactRef) -> Any:
        if ref.hash not in self._values:
            self._values[ref.hash] = loads(self._load_fact(ref.hash))
        return self._values[ref.hash]


_OPENED = (list, tuple, dict, set, frozenset)  # the containers fact references may sit in


def resolve_facts(value: Any, load: Callable[[FactRef], Any]) -> Any:
    """``value`` with every FactRef in it replaced by the value ``load`` gives for it, at any
    depth of lists, tuples, dicts (their values), sets and frozensets (a map's list of large
    items, a run result naming several components). A container holding no FactRef comes
    back as it is, the same object; a loaded fact is not opened again (it holds none)."""
    if isinstance(value, FactRef):
        return load(value)
    if type(value) not in _OPENED:
        return value
    if type(value) is dict:
        values = {k: resolve_facts(v, load) for k, v in value.items()}
        return value if all(values[k] is v for k, v in value.items()) else values
    items = [resolve_facts(v, load) for v in value]
    if all(new is old for new, old in zip(items, value, strict=True)):
        return value
    return items if type(value) is list else type(value)(items)


def holds_fact_refs(value: Any) -> bool:
    """Whether a FactRef sits anywhere in ``value`` (itself, or inside the containers
    :func:`resolve_facts` opens)."""
    if isinstance(value, FactRef):
        return True
    if type(value) not in _OPENED:
        return False
    return any(holds_fact_refs(v) for v in (value.values() if type(value) is dict else value))


# ------------------------------------------------------------------ errors
def error_info(exc: BaseException) -> ErrorInfo:
    """Record an exception: its type, message, traceback and (when it round-trips) itself."""
    pickled: bytes | None
    try:
        pickled = cloudpickle.dumps(exc)
        cloudpickle.loads(pickled)
    except Exception:
        pickled = None
    cls = type(exc)
    return ErrorInfo(
        type=f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__,
        message=str(exc),
        traceback="".join(traceback.format_exception(cls, exc, exc.__traceback__)),
        non_retryable=isinstance(exc, NonRetryableError),
        pickled=pickled,
    )


def exception_of(info: ErrorInfo) -> BaseException | None:
    """The original exception, if it was pickled and still unpickles here."""
    if info.pickled is None:
        return None
    try:
        exc = cloudpickle.loads(info.pickled)
    except Exception:
        return None
    return exc if isinstance(exc, BaseException) else None


# ------------------------------------------------------------------ events
def _plain_json(value: Any, budget: list[int]) -> bool:
    """True if JSON round-trips ``value`` exactly: str-keyed dicts, lists and scalars of exact
    built-in types (a str or int subclass, an Enum member say, must come back as itself)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_plain_json(v, budget) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain_json(v, budget) for k, v in value.items())
    return False


def encode_value(value: Any) -> dict[str, Any]:
    """A tagged form of a user value: ``json`` when JSON keeps it exactly (readable from SQL),
    ``fact`` for a FactRef, ``pickle`` (base64 cloudpickle) for everything else."""
    if isinstance(value, FactRef):
        return {"fact": value.hash, "size": value.size, "length": value.length}
    if _plain_json(value, [_JSON_BUDGET]):
        return {"json": value}
    return {"pickle": base64.b64encode(dumps(value)).decode("ascii")}


def decode_value(tagged: dict[str, Any]) -> Any:
    if "json" in tagged:
        return tagged["json"]
    if "fact" in tagged:
        return FactRef(hash=tagged["fact"], size=tagged["size"], length=tagged.get("length"))
    return loads(base64.b64decode(tagged["pickle"]))


def json_value(value: Any) -> str:
    """A user value as tagged JSON text (how signal payloads are stored)."""
    return json.dumps(encode_value(value), separators=(",", ":"))


def from_json_value(text: str) -> Any:
    return decode_value(json.loads(text))


def _encode_error(error: ErrorInfo) -> dict[str, Any]:
    fields = dataclasses.asdict(error)
    fields["pickled"] = None if error.pickled is None else base64.b64encode(error.pickled).decode("ascii")
    return fields


def _decode_error(fields: dict[str, Any]) -> ErrorInfo:
    pickled = fields.get("pickled")
    return ErrorInfo(**{**fields, "pickled": None if pickled is None else base64.b64decode(pickled)})


def encode_event(event: Event) -> tuple[str, str]:
    """``(kind, JSON payload)`` of an event, as stored."""
    payload: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name in _VALUE_FIELDS:
            payload[f.name] = encode_value(value)
        elif isinstance(value, ErrorInfo):
            payload[f.name] = _encode_error(value)
        else:
            payload[f.name] = value
    return kind_of(event), json.dumps(payload, separators=(",", ":"))


def decode_event(kind: str, payload: str) -> Event:
    """The event that ``encode_event`` turned into ``(kind, payload)``."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise StoreError(f"stored event kind {kind!r} is unknown to this version of ray-runner; upgrade it")
    fields = json.loads(payload)
    for name, value in fields.items():
        if name in _VALUE_FIELDS:
            fields[name] = decode_value(value)
        elif name == "error" and value is not None:
            fields[name] = _decode_error(value)
    event: Event = cls(**fields)
    return event
