"""Fuzzing the event codec: any bytes decode to an event whose envelope has the types it
promises, or are refused as a CorruptEvent with its reason (which the dead-letter store
keeps); any payload that validates survives encoding and decoding unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from ledgerflow.events.codec import REGISTRY, decode, decode_data, decode_row, encode
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import CorruptEvent, InvalidInput
from ledgerflow.events.payloads import Payload, RunParamsLogged, RunTagsSet
from tests.unit.fuzzing import FUZZ, answers_or_refuses, any_text, mutated, sendable, utf8
from tests.unit.test_codec import SAMPLES

samples = st.sampled_from(SAMPLES)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
ID = "019b7a6e-0000-7000-8000-000000000000"
ENVELOPE = ("id", "type", "stream", "time", "v", "actor", "trace", "data")


def _event(payload: Payload) -> Event:
    """`Event.of`, with the id and time fixed so the same draw gives the same bytes."""
    return replace(Event.of(payload, actor="user:fuzz"), id=ID, time=1_767_225_600_000)


def _blob(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8", "surrogatepass")


def _well_typed(event: Event) -> None:
    """What every reader of a decoded event relies on."""
    assert all(isinstance(x, str) for x in (event.id, event.type, event.stream, event.actor))
    assert type(event.time) is int and type(event.v) is int, event
    assert event.trace is None or isinstance(event.trace, str)
    assert isinstance(event.data, Payload) and event.type == event.data.TYPE


@st.composite
def near_valid_docs(draw: st.DrawFn) -> bytes:
    """A real encoded event with one envelope or payload field replaced, dropped or
    doubled in depth."""
    doc = json.loads(encode(_event(draw(samples))))
    target = doc["data"] if draw(st.booleans()) and doc["data"] else doc
    key = draw(st.sampled_from(sorted(target)))
    action = draw(st.sampled_from(["replace", "drop", "nest"]))
    if action == "replace":
        target[key] = draw(json_values)
    elif action == "drop":
        del target[key]
    else:
        target[key] = [target[key]] * draw(st.integers(1, 3))
    return _blob(doc)


blobs = st.one_of(
    st.binary(max_size=200),
    any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(_blob),
    near_valid_docs(),
    mutated(samples.map(lambda p: encode(_event(p)).decode())).map(
        lambda t: t.encode("utf-8", "surrogatepass")
    ),
)


@FUZZ
@given(blobs)
@example(b"[" * 100_000)  # json: RecursionError
@example(b'{"id":"x","type":["run.deleted"],"stream":"s","time":1,"v":1,"actor":"a","data":{}}')
@example(b'{"id":"x","type":"run.deleted","stream":"s","time":1,"v":"1","actor":"a","data":{}}')
@example(b'{"id":5,"type":"run.deleted","stream":null,"time":"x","v":1,"actor":[],'
         b'"data":{"run_id":"r"}}')  # fmt: skip
@example(b'{"id":"x","type":"run.deleted","stream":"s","time":1,"v":true,"actor":"a",'
         b'"data":{"run_id":"r"},"trace":7}')  # fmt: skip
def test_any_bytes_decode_to_a_well_typed_event_or_a_corrupt_event_with_a_reason(
    blob: bytes,
) -> None:
    event = answers_or_refuses(lambda: decode(blob), CorruptEvent)
    if event is not None:
        _well_typed(event)


row_values = st.one_of(st.none(), st.integers(), st.floats(), any_text, st.binary(max_size=8))


@FUZZ
@given(
    sample=samples,
    field=st.sampled_from(ENVELOPE[:-1]),
    value=row_values,
    data=st.one_of(st.none(), any_text, st.binary(max_size=40), st.just("{}")),
)
def test_a_stored_row_with_any_column_values_decodes_well_typed_or_is_corrupt(
    sample: Payload, field: str, value: object, data: object
) -> None:
    """What a log adapter hands `decode_row`: columns of any type SQLite may hold."""
    row: dict[str, Any] = {**_event(sample).envelope(), field: value}
    row["data"] = sample.model_dump_json() if data is None else data
    event = answers_or_refuses(lambda: decode_row(**row), CorruptEvent)
    if event is not None:
        _well_typed(event)


@FUZZ
@given(
    type_=st.one_of(st.sampled_from(REGISTRY.types()), any_text),
    version=st.one_of(st.integers(), st.sampled_from([0, 1, 2]), row_values),
    data=st.one_of(row_values, json_values.map(json.dumps), samples.map(Payload.model_dump_json)),
)
@example(type_="run.deleted", version=1, data="[" * 100_000)
@example(type_="run.deleted", version=0, data="[" * 100_000)  # json.loads: RecursionError
@example(type_="run.deleted", version="1", data='{"run_id": "r"}')
@example(type_="run.deleted", version=0, data=None)
@example(type_="run.deleted", version=1, data='"\\ud800"')
def test_any_payload_text_decodes_or_is_a_corrupt_event(
    type_: str, version: object, data: object
) -> None:
    payload = answers_or_refuses(
        lambda: decode_data(type_, version, data),  # type: ignore[arg-type]
        CorruptEvent,
    )
    assert payload is None or type_ == payload.TYPE


def _fields(payload: Payload, kind: type) -> list[str]:
    return sorted(k for k, v in payload.model_dump().items() if type(v) is kind)


@st.composite
def edited_payloads(draw: st.DrawFn) -> Payload:
    """A sample payload with one text, whole-number or text-to-text field set to anything
    it accepts."""
    sample = draw(samples)
    values = {
        **dict.fromkeys(_fields(sample, str), any_text),
        **dict.fromkeys(_fields(sample, int), st.integers()),
        **dict.fromkeys(_fields(sample, dict), st.dictionaries(any_text, any_text, max_size=3)),
    }
    assume(values)
    key = draw(st.sampled_from(sorted(values)))
    try:
        return type(sample).model_validate({**sample.model_dump(), key: draw(values[key])})
    except ValidationError:
        assume(False)
        raise


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_texts(k), *_texts(v))]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return []


@FUZZ
@given(payload=edited_payloads(), actor=any_text, trace=st.none() | any_text)
@example(payload=RunParamsLogged(run_id="r", params={"k": "\ud800"}), actor="a", trace=None)
@example(payload=RunTagsSet(run_id="r", tags={"\udc00": "v"}), actor="a", trace=None)
def test_any_valid_payload_survives_encoding_or_is_refused_as_text_no_log_can_hold(
    payload: Payload, actor: str, trace: str | None
) -> None:
    event = Event.of(payload, actor=actor, trace=trace)
    blob = answers_or_refuses(lambda: encode(event), InvalidInput)
    if blob is None:
        assert not all(utf8(t) for t in _texts(payload.model_dump()))
        return
    assert decode(blob) == event


def _doc(**changes: object) -> bytes:
    doc = json.loads(encode(_event(RunParamsLogged(run_id="r", params={"lr": "0.1"}))))
    doc.update(changes)
    return _blob({k: v for k, v in doc.items() if v is not ...})


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"[" * 100_000, "nested too deeply"),
        (b'["run.deleted"]', "not a JSON object"),
        (_doc(data=...), "has no 'data' field"),
        (_doc(type=["run.deleted"]), "type is list"),
        (_doc(v="1"), "v is str '1', expected a whole number"),
        (_doc(v=True), "v is bool"),
        (_doc(time=None), "time is NoneType"),
        (_doc(actor=7), "actor is int 7, expected text"),
        (_doc(trace=7), "trace is int 7, expected text or null"),
        (_doc(data={"run_id": "r", "params": {"\udc00": 1}}), "run.params_logged payload"),
    ],
)
def test_a_corrupt_event_says_what_is_wrong_with_it(blob: bytes, reason: str) -> None:
    with pytest.raises(CorruptEvent) as e:
        decode(blob)
    assert reason in e.value.message
    sendable(e.value)
