"""The pure pieces between the SDK's remote mode and the gateway: error mapping both
ways, ingest decoding, URL segments, the spliced ingest body and the spool folder."""

import json
import math
from pathlib import Path

import httpx
import pytest

from ledgerflow.events import codec
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import (
    AlreadyExists,
    Conflict,
    CorruptEvent,
    InvalidInput,
    LedgerflowError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from ledgerflow.events.settings import load_settings
from ledgerflow.remote.http import error_from, segment
from ledgerflow.remote.shipper import ingest_body
from ledgerflow.remote.spool import Row, folder_for
from ledgerflow.services.gateway.app import _validation_field
from ledgerflow.services.gateway.errors import error_body, status_of
from ledgerflow.services.gateway.ingest_routes import EventIn, decode
from ledgerflow.services.gateway.schemas import MetricHistoryOut

ERRORS = [
    InvalidInput("bad lr", field="lr"),
    NotFound("no run 'x'", kind="run", key="x"),
    AlreadyExists("exists"),
    Conflict("changed"),
    Timeout("slow"),
    Unavailable("down"),
    LedgerflowError("odd"),
    Unauthenticated("who are you"),
    PermissionDenied("bob needs EDIT on experiment '1' for this", kind="experiment", key="1"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_kind_crosses_http_and_comes_back_as_the_same_exception(error):
    response = httpx.Response(status_of(error), json=error_body(error))
    back = error_from(response, "GET /x")
    assert type(back) is type(error)
    assert back.message == error.message
    if isinstance(error, InvalidInput):
        assert back.field == "lr"
    if isinstance(error, NotFound):
        assert (back.kind, back.key) == ("run", "x")
    if isinstance(error, PermissionDenied):
        assert (back.kind, back.key) == ("experiment", "1")


def test_error_kinds_get_the_http_status_their_meaning_implies():
    assert [status_of(e) for e in ERRORS] == [400, 404, 409, 409, 504, 503, 500, 401, 403]
    assert status_of(CorruptEvent("x")) == 500


def test_an_answer_without_our_error_body_is_mapped_by_its_status_and_names_the_call():
    err = error_from(httpx.Response(404, text="Not Found"), "GET /api/v1/nothing")
    assert isinstance(err, NotFound) and "GET /api/v1/nothing" in err.message
    assert isinstance(error_from(httpx.Response(502), "x"), Unavailable)
    assert isinstance(error_from(httpx.Response(504), "x"), Timeout)
    assert type(error_from(httpx.Response(500), "x")) is LedgerflowError
    assert isinstance(error_from(httpx.Response(401), "x"), Unauthenticated)
    assert isinstance(error_from(httpx.Response(403), "x"), PermissionDenied)


def test_validation_errors_name_the_field_without_the_request_part():
    assert _validation_field(("body", "params", "lr")) == "params.lr"
    assert _validation_field(("query", "max_points")) == "max_points"
    assert _validation_field(("body",)) == "body"


def _raw(payload: p.Payload, **changes: object) -> EventIn:
    doc = json.loads(codec.encode(Event.of(payload, actor="user:t")))
    doc.update(changes)
    return EventIn.model_validate(doc)


def test_an_ingested_event_is_decoded_and_validated_with_the_codec():
    payload = p.RunMetricsLogged(run_id="r", points=(("loss", math.nan, 5, 1),))
    event = decode(0, _raw(payload))
    assert isinstance(event.data, p.RunMetricsLogged)
    assert math.isnan(event.data.points[0][1]) and event.stream == "run:r"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"type": "run.exploded"}, "events[3].type"),
        ({"v": 9}, "events[3].v"),
        ({"data": {"run_id": "r", "tags": {"k": 5}}}, "events[3].data.tags.k"),
        ({"data": {"run_id": "r"}}, "events[3].data.tags"),
        ({"stream": "run:other"}, "events[3].stream"),
    ],
)
def test_a_bad_ingested_event_is_invalid_input_naming_the_event_and_the_field(changes, field):
    raw = _raw(p.RunTagsSet(run_id="r", tags={"k": "v"}), **changes)
    with pytest.raises(InvalidInput) as caught:
        decode(3, raw)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"events[3] (id {raw.id})")


def test_url_segments_escape_slashes_queries_and_dot_segments():
    assert segment("a/b?c#d") == "a%2Fb%3Fc%23d"
    assert segment("..") == "%2E%2E" and segment(".") == "%2E"
    assert segment("v1.2") == "v1.2"
    assert httpx.URL("http://h/models/" + segment("..")).raw_path == b"/models/%2E%2E"


def test_the_ingest_body_is_spliced_from_stored_events_and_decodes_back_to_them():
    events = [
        Event.of(p.RunTagsSet(run_id="r", tags={"a": "1"}), actor="user:t"),
        Event.of(p.RunMetricsLogged(run_id="r", points=(("m", math.inf, 1, 0),)), actor="x"),
    ]
    rows = [Row(i, e.id, codec.encode(e)) for i, e in enumerate(events)]
    doc = json.loads(ingest_body(rows, wait=True))
    assert doc["wait"] is True
    back = [decode(i, EventIn.model_validate(d)) for i, d in enumerate(doc["events"])]
    assert [(e.id, e.data) for e in back] == [(e.id, e.data) for e in events]
    assert json.loads(ingest_body([], wait=False)) == {"wait": False, "events": []}


def test_each_gateway_url_gets_its_own_readable_spool_folder(tmp_path: Path):
    a = folder_for(tmp_path, "http://gw.example:8080")
    assert a.parent == tmp_path and a.name.startswith("gw-example-8080-")
    assert folder_for(tmp_path, "http://gw.example:8080/") == a
    assert folder_for(tmp_path, "https://gw.example:8080") != a


def test_the_spool_folder_defaults_under_the_user_cache_and_follows_the_setting(tmp_path):
    assert load_settings(tracking_uri="http://gw").spool_root == (
        Path.home() / ".cache" / "ledgerflow" / "spool"
    )
    given = load_settings(tracking_uri="http://gw", spool_dir=str(tmp_path / "s"))
    assert given.spool_root == tmp_path / "s"


def test_metric_histories_travel_as_columns_with_non_finite_values_as_text():
    from ledgerflow.events.entities import Metric

    points = [Metric("m", math.nan, 1, 0), Metric("m", -math.inf, 2, 1), Metric("m", 0.5, 3, 2)]
    wire = MetricHistoryOut.of("m", points).model_dump_json()
    assert '"NaN"' in wire and '"-Infinity"' in wire
    back = MetricHistoryOut.model_validate_json(wire).entity()
    assert [(m.step, m.timestamp) for m in back] == [(0, 1), (1, 2), (2, 3)]
    assert math.isnan(back[0].value) and back[1].value == -math.inf and back[2].value == 0.5
