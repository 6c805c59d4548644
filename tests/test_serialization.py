"""Values, events and errors to bytes and back (runner.serialization)."""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
from typing import Any

import cloudpickle
import pytest

from runner import SKIPPED
from runner.errors import DefinitionError, InvalidArgument, NonRetryableError, StoreError
from runner.events import EVENT_TYPES, ErrorInfo, FactRef
from runner.serialization import (
    DEFAULT_FACT_THRESHOLD,
    FactLoader,
    decode_event,
    decode_value,
    dumps,
    encode_event,
    encode_value,
    error_info,
    exception_of,
    externalize,
    fact_hash,
    from_json_value,
    holds_fact_refs,
    json_value,
    loads,
    resolve_facts,
)


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 2


class Tag(str, enum.Enum):
    URGENT = "urgent"


def boom() -> ErrorInfo:
    try:
        raise ValueError("bad value 42")
    except ValueError as exc:
        return error_info(exc)


REF = FactRef(hash="ab" * 32, size=20_000, length=500)

VALUES: list[Any] = [
    None,
    True,
    0,
    -7,
    2**80,
    1.5,
    "text",
    "",
    [1, "two", None],
    {"nested": {"list": [1, 2]}},
    (1, 2),
    {3, 1, 2},
    frozenset({"a"}),
    Point(1, 2),
    b"\x00bytes",
    float("nan"),
    float("inf"),
    Colour.RED,
    Level.HIGH,
    Tag.URGENT,
    SKIPPED,
    REF,
    {"ref": REF},
    [1, (2, 3)],
    {"level": Level.HIGH, "tag": [Tag.URGENT]},
    {1: "int key"},
    list(range(3_000)),
    [[[[["deep"]]]]],
]


# ------------------------------------------------------------------- events
def sample_events() -> list[Any]:
    """One (or more) instance of every event class, with fields that stress the encoding."""
    samples: dict[str, list[dict[str, Any]]] = {
        "RunSubmitted": [
            {"workflow": "w", "input": {"a": (1, 2)}, "definition_hash": "h" * 64, "parent_run_id": "p", "at": 1.25},
            {"workflow": "w", "input": None, "definition_hash": "h", "at": 0.0},
        ],
        "StepStarted": [{"node": "a", "attempt": 2, "lease": 7, "item": 3, "at": 2.0}],
        "FactProduced": [
            {"node": "a", "value": Point(1, 2), "attempt": 3, "item": 0, "fallback": True, "at": 3.0},
            {"node": "a", "value": REF, "at": 3.0},
            {"node": "a", "value": {1, 2, 3}, "at": 3.0},
            {"node": "a", "value": SKIPPED, "at": 3.0},
        ],
        "MapExpanded": [{"node": "m", "count": 0, "at": 4.0}],
        "FactReused": [
            {"node": "a", "value": {"k": [1, 2]}, "source_run_id": "parent-1", "at": 4.5},
            {"node": "b", "value": FactRef(hash="c" * 64, size=9, length=None), "source_run_id": "p", "at": 4.6},
        ],
        "StepFailed": [
            {"node": "a", "attempt": 1, "error": boom(), "retry_at": 9.5, "item": 2, "at": 5.0},
            {"node": "a", "attempt": 1, "error": ErrorInfo(type="X", message="m", non_retryable=True), "at": 5.0},
        ],
        "StepLost": [
            {"node": "a", "attempt": 2, "error": boom(), "item": 4, "at": 5.5},
            {
                "node": "a",
                "attempt": 1,
                "error": ErrorInfo(type="ray.exceptions.NodeDiedError", message="m"),
                "fallback": True,
                "at": 5.6,
            },
        ],
        "StepSkipped": [{"node": "a", "reason": "rule condition was false", "item": None, "at": 6.0}],
        "StepContinued": [{"node": "a", "attempt": 2, "call": REF, "level": 3, "item": 1, "at": 6.5}],
        "SignalReceived": [{"signal_id": 4, "name": "approve", "payload": ("yes", 1), "at": 7.0}],
        "ApprovalDecided": [
            {
                "node": "gate",
                "approval": "ship",
                "signal_id": 5,
                "approved": False,
                "by": "lee",
                "comment": "freeze",
                "decided_at": 6.5,
                "at": 7.5,
            }
        ],
        "TimerScheduled": [{"node": "nap", "due_at": 130.5, "at": 8.0}],
        "TimerFired": [{"node": "nap", "at": 9.0}],
        "RunSuspended": [
            {"reason": "waiting for 'approve'", "at": 10.0},
            {"reason": "timer", "wake_at": 99.5, "at": 10.0},
        ],
        "RunResumed": [{"at": 11.0}],
        "RunReopened": [
            {"from_status": "failed", "reason": "dependency installed", "at": 11.5},
            {"from_status": "cancelled", "at": 11.6},
        ],
        "RunPaused": [{"at": 12.0}, {"reason": "run paused: the store file cannot be written", "at": 12.5}],
        "RunCancelled": [{"reason": "user", "at": 13.0}],
        "RunCompleted": [{"result": {"a": REF, "b": [1.5, None]}, "at": 14.0}, {"result": 3, "at": 14.0}],
        "RunContinuedAsNew": [
            {"node": "a", "successor_run_id": "r:c1", "input": {"round": (2, Point(1, 2))}, "item": 3, "at": 14.5},
            {"node": "a", "successor_run_id": "r:c2", "input": None, "at": 14.5},
        ],
        "RunFailed": [
            {"error": boom(), "node": "a", "at": 15.0},
            {"error": ErrorInfo(type="T", message=""), "at": 15.0},
        ],
        "ChildRunStarted": [{"node": "sub", "child_run_id": "p-1:sub", "at": 16.0}],
        "ChildRunEnded": [
            {"node": "sub", "child_run_id": "p-1:sub", "status": "completed", "result": {"n": REF}, "at": 17.0},
            {"node": "sub", "child_run_id": "p-1:sub", "status": "failed", "error": boom(), "at": 17.5},
        ],
        "StepMetadataAdded": [
            {"node": "a", "attempt": 2, "values": {"rows": 12, "tags": ["x", None], "ok": True}, "item": 1, "at": 18.0},
            {"node": "a", "attempt": 1, "values": {"nested": {"k": 1.5}}, "at": 18.5},
        ],
    }
    assert set(samples) == set(EVENT_TYPES), "a new event class needs a sample here"
    return [EVENT_TYPES[kind](**fields) for kind, many in samples.items() for fields in many]


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__name__)
def test_every_event_class_round_trips(event):
    kind, payload = encode_event(event)
    assert kind == type(event).__name__
    assert isinstance(payload, str)
    parsed = json.loads(payload)  # plain JSON, readable by SQL over the history
    assert set(parsed) == {f.name for f in dataclasses.fields(event)}
    decoded = decode_event(kind, payload)
    assert type(decoded) is type(event)
    assert decoded == event
    assert encode_event(decoded) == (kind, payload)  # stable: encoding the decoded event changes nothing


def test_payload_format_tags_user_values():
    kind, payload = encode_event(EVENT_TYPES["FactProduced"](node="a", value=(1, 2), at=1.0))
    fields = json.loads(payload)
    assert kind == "FactProduced"
    assert fields["node"] == "a" and fields["attempt"] == 1 and fields["item"] is None and fields["at"] == 1.0
    assert set(fields["value"]) == {"pickle"}  # JSON would turn the tuple into a list
    _, payload = encode_event(EVENT_TYPES["FactProduced"](node="a", value="plain", at=1.0))
    assert json.loads(payload)["value"] == {"json": "plain"}
    _, payload = encode_event(EVENT_TYPES["FactProduced"](node="a", value=REF, at=1.0))
    assert json.loads(payload)["value"] == {"fact": REF.hash, "size": 20_000, "length": 500}
    _, payload = encode_event(EVENT_TYPES["RunFailed"](error=ErrorInfo(type="E", message="m", pickled=b"\x01"), at=1.0))
    assert json.loads(payload)["error"] == {
        "type": "E",
        "message": "m",
        "traceback": "",
        "non_retryable": False,
        "pickled": "AQ==",
    }


def test_error_info_with_a_pickled_exception_survives_the_event_round_trip():
    event = EVENT_TYPES["StepFailed"](node="a", attempt=1, error=boom(), at=0.0)
    decoded = decode_event(*encode_event(event))
    assert decoded.error.pickled == event.error.pickled
    exc = exception_of(decoded.error)
    assert isinstance(exc, ValueError) and str(exc) == "bad value 42"


def test_a_run_paused_stored_before_it_had_a_reason_decodes_with_none():
    event = decode_event("RunPaused", '{"at":12.0}')
    assert event == EVENT_TYPES["RunPaused"](reason="", at=12.0)


def test_unknown_event_kind_says_to_upgrade():
    with pytest.raises(
        StoreError, match="stored event kind 'FutureEvent' is unknown to this version of ray-runner; upgrade it"
    ):
        decode_event("FutureEvent", "{}")


# ------------------------------------------------------------------- values
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_round_trip_with_their_types(value):
    decoded = decode_value(json.loads(json.dumps(encode_value(value))))
    assert type(decoded) is type(value)
    assert repr(decoded) == repr(value)  # nested types survive too (a tuple inside a list, an Enum in a dict)
    if value != value:  # nan
        assert decoded != decoded
    else:
        assert decoded == value
    assert from_json_value(json_value(value)) == value or value != value


def test_json_values_stay_readable_and_others_are_pickled():
    assert encode_value("x") == {"json": "x"}
    assert encode_value(3) == {"json": 3}
    assert encode_value(None) == {"json": None}
    assert encode_value(2.5) == {"json": 2.5}
    assert json_value(True) == '{"json":true}'
    # whatever JSON would not give back exactly is pickled
    for value in (
        float("nan"),
        float("inf"),
        (1,),
        {1, 2},
        Level.HIGH,
        Tag.URGENT,
        SKIPPED,
        Point(1, 2),
        b"x",
        [(1, 2)],
        {1: "int key"},
    ):
        assert set(encode_value(value)) == {"pickle"}, value


def test_skipped_stays_the_singleton():
    assert decode_value(encode_value(SKIPPED)) is SKIPPED
    assert loads(dumps([SKIPPED]))[0] is SKIPPED


def test_unpicklable_value_is_an_invalid_argument_naming_its_type():
    with pytest.raises(InvalidArgument, match="value of type lock cannot be serialized .*return plain data"):
        dumps(threading.Lock())
    with pytest.raises(InvalidArgument, match="value of type lock"):
        encode_value(threading.Lock())
    with pytest.raises(InvalidArgument, match="value of type lock"):
        externalize(threading.Lock())
    with pytest.raises(InvalidArgument):
        encode_event(EVENT_TYPES["FactProduced"](node="a", value=threading.Lock()))


# --------------------------------------------------------------- externalize
def test_small_values_stay_inline():
    for value in (None, 1, True, "small", [1, 2, 3], {"a": 1}):
        assert externalize(value) == (value, None)


def test_large_list_becomes_a_fact_ref_with_its_length():
    value = list(range(10_000))
    ref, blob = externalize(value)
    assert isinstance(ref, FactRef)
    assert blob is not None and loads(blob) == value
    assert ref.hash == fact_hash(blob) and len(ref.hash) == 64
    assert ref.size == len(blob) > DEFAULT_FACT_THRESHOLD
    assert ref.length == 10_000
    # content addressed: the same value gives the same ref
    assert externalize(list(range(10_000)))[0] == ref


def test_large_tuple_has_a_length_other_large_values_do_not():
    assert externalize(tuple(range(10_000)))[0].length == 10_000
    ref, _ = externalize("x" * (DEFAULT_FACT_THRESHOLD + 1))
    assert isinstance(ref, FactRef) and ref.length is None
    ref, _ = externalize({i: i for i in range(5_000)})
    assert isinstance(ref, FactRef) and ref.length is None


def test_threshold_is_inclusive_of_its_size():
    value = [0] * 100
    size = len(dumps(value))
    assert externalize(value, threshold=size) == (value, None)
    ref, blob = externalize(value, threshold=size - 1)
    assert isinstance(ref, FactRef) and ref.size == size and ref.length == 100
    assert loads(blob) == value


def test_ints_and_none_are_never_externalized():
    assert externalize(10**5000, threshold=0) == (10**5000, None)
    assert externalize(None, threshold=0) == (None, None)
    ref, _ = externalize("s", threshold=0)  # strings are measured
    assert isinstance(ref, FactRef)


# -------------------------------------------------------------------- errors
def test_error_info_records_type_message_traceback_and_the_exception():
    info = boom()
    assert info.type == "ValueError"
    assert info.message == "bad value 42"
    assert "Traceback" in info.traceback and "bad value 42" in info.traceback and "raise ValueError" in info.traceback
    assert not info.non_retryable
    assert str(info) == "ValueError: bad value 42"
    exc = exception_of(info)
    assert type(exc) is ValueError and exc.args == ("bad value 42",)


def test_error_info_of_library_and_user_exceptions():
    info = error_info(DefinitionError("step", "bad"))
    assert info.type == "runner.errors.DefinitionError"
    exc = exception_of(info)
    assert isinstance(exc, DefinitionError) and exc.component == "step" and str(exc) == "component 'step': bad"
    fatal = error_info(NonRetryableError("stop"))
    assert fatal.non_retryable and fatal.type == "runner.errors.NonRetryableError"

    class Local(Exception):
        pass

    local = error_info(Local("here"))
    assert local.type.endswith("Local") and "<locals>" in local.type
    assert isinstance(exception_of(local), Exception) and str(exception_of(local)) == "here"


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class BadInit(Exception):
    """Pickles, but cannot be rebuilt: its __init__ needs two arguments."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


def test_error_info_of_an_exception_that_cannot_round_trip_keeps_the_text_only():
    for exc in (Unpicklable("locked"), BadInit("x", "y")):
        info = error_info(exc)
        assert info.pickled is None
        assert exception_of(info) is None
        assert info.message in ("locked", "x/y")


def test_exception_of_tolerates_junk_and_non_exceptions():
    assert exception_of(ErrorInfo(type="E", message="m")) is None
    assert exception_of(ErrorInfo(type="E", message="m", pickled=b"junk")) is None
    assert exception_of(ErrorInfo(type="E", message="m", pickled=cloudpickle.dumps("not an exception"))) is None


# ------------------------------------------------------------------- facts
def _fact_store(*values: Any) -> tuple[list[FactRef], dict[str, bytes], list[str]]:
    """Facts of ``values`` (refs, their bytes by hash) and the list of hashes loaded so far."""
    refs, blobs = [], {}
    for value in values:
        ref, blob = externalize(value, threshold=0)
        assert isinstance(ref, FactRef) and blob is not None
        refs.append(ref)
        blobs[ref.hash] = blob
    return refs, blobs, []


def _loader(blobs: dict[str, bytes], loaded: list[str]) -> FactLoader:
    def load_fact(fact_hash: str) -> bytes:
        loaded.append(fact_hash)
        return blobs[fact_hash]

    return FactLoader(load_fact)


def test_resolve_facts_loads_references_at_any_depth_each_fact_once():
    (a, b), blobs, loaded = _fact_store(["a"] * 3, {"b": 2})
    value = {"map": [a, b, a, 7], "nested": {"t": (1, [b]), "s": frozenset({3})}, "top": a}

    resolved = resolve_facts(value, _loader(blobs, loaded))

    assert resolved == {
        "map": [["a"] * 3, {"b": 2}, ["a"] * 3, 7],
        "nested": {"t": (1, [{"b": 2}]), "s": frozenset({3})},
        "top": ["a"] * 3,
    }
    assert type(resolved["nested"]["t"]) is tuple
    assert sorted(loaded) == sorted([a.hash, b.hash])  # each fact loaded once
    assert value["map"] == [a, b, a, 7]  # the value given is left as it was


def test_resolve_facts_returns_values_without_references_as_they_are():
    refs, blobs, loaded = _fact_store([1])
    load = _loader(blobs, loaded)
    plain = {"xs": [1, 2, (3, 4)], "s": {5}}
    assert resolve_facts(plain, load) is plain
    mixed = [plain, refs[0]]
    out = resolve_facts(mixed, load)
    assert out == [plain, [1]] and out[0] is plain
    point = Point(1, 2)
    assert resolve_facts(point, load) is point  # other objects are not opened
    assert loaded == [refs[0].hash]


def test_holds_fact_refs_looks_inside_containers_only():
    (ref,), _, _ = _fact_store([1])
    assert holds_fact_refs(ref)
    assert holds_fact_refs([1, {"k": (ref,)}])
    assert holds_fact_refs({ref})
    assert not holds_fact_refs([1, {"k": (2,)}, "s"])
    assert not holds_fact_refs(Point(1, 2))
