"""Webhook decisions, signatures, the retry schedule and cursors: pure, no I/O."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from ledgerflow.events import model_payloads as m
from ledgerflow.events import webhook_payloads as w
from ledgerflow.events.codec import REGISTRY, encode
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import AlreadyExists, CorruptEvent, InvalidInput
from ledgerflow.events.log import Checkpoint, CorruptRecord
from ledgerflow.events.webhook_entities import Webhook
from ledgerflow.services.secret_box import SecretBox
from ledgerflow.services.webhooks import checkpoint, signing
from ledgerflow.services.webhooks.backoff import Backoff
from ledgerflow.services.webhooks.decide import decide_create, decide_update
from ledgerflow.services.webhooks.worker import request_body
from ledgerflow.webhooks import WebhookSignatureError, verify_signature

TYPES = REGISTRY.types()
SECRET = "0123456789abcdef-secret"
BOX = SecretBox(Fernet.generate_key())


def create(**overrides: object) -> w.WebhookCreated:
    args: dict[str, object] = {
        "webhook_id": "h1",
        "name": "ci-hook",
        "url": "https://example.com/hooks",
        "events": ["model.*"],
        "secret": SECRET,
        "seal": BOX.seal,
        "description": None,
        "deliver_after": "7",
        "known_types": TYPES,
        "taken_names": set(),
    }
    args.update(overrides)
    return decide_create(**args)  # type: ignore[arg-type]


def existing(**overrides: object) -> Webhook:
    fields: dict[str, object] = {
        "id": "h1",
        "name": "ci-hook",
        "url": "https://example.com/hooks",
        "events": ["model.*"],
        "description": "",
        "active": True,
        "creation_time": 1,
        "last_updated_time": 1,
    }
    fields.update(overrides)
    return Webhook(**fields)  # type: ignore[arg-type]


# decisions ---------------------------------------------------------------------------
def test_a_valid_creation_becomes_one_created_event_that_starts_where_it_was_told():
    created = create(events=["model.*", "run.finished", "model.*"], description="ci")
    assert created.events == ("model.*", "run.finished")
    assert created.deliver_after == "7"
    assert created.stream() == "webhook:h1"
    assert created.TYPE == "webhook.created"


def test_a_single_pattern_given_as_a_string_is_one_pattern_not_its_letters():
    assert create(events="model.*").events == ("model.*",)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "must start with http:// or https://, not ftp://"),
        ("example.com/hook", "must start with http:// or https://"),
        ("http:///nohost", "names no host"),
        ("http://example.com:99999/x", "Port out of range"),
        ("http://exa mple.com/", "without spaces"),
        ("", "must be an http(s) URL"),
    ],
)
def test_urls_other_than_http_and_https_are_refused_with_the_reason(url, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        create(url=url)


def test_an_empty_pattern_list_is_refused():
    with pytest.raises(InvalidInput, match="at least one event type pattern"):
        create(events=[])


@pytest.mark.parametrize("pattern", ["model .*", "", "model.*;drop", 7])
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(InvalidInput, match="must be a glob"):
        create(events=[pattern])


def test_a_pattern_that_matches_no_known_type_is_refused_naming_the_known_families():
    with pytest.raises(InvalidInput, match=r"'modle\.\*' matches no event type.*model\.\*"):
        create(events=["modle.*"])


def test_patterns_for_webhook_events_alone_are_refused_because_they_carry_secrets():
    with pytest.raises(InvalidInput, match="carry secrets"):
        create(events=["webhook.*"])


def test_a_taken_name_is_refused_as_already_existing():
    with pytest.raises(AlreadyExists, match="'ci-hook' already exists"):
        create(taken_names={"ci-hook"})


@pytest.mark.parametrize("name", ["", "has space", "-leading", "a/b", "x" * 129, None])
def test_bad_names_are_refused(name):
    with pytest.raises(InvalidInput, match="webhook name"):
        create(name=name)


@pytest.mark.parametrize("secret", ["short", "has a space in it ok", "x" * 257])
def test_a_given_secret_must_be_long_enough_and_without_spaces(secret):
    with pytest.raises(InvalidInput, match="secret must be 16-256"):
        create(secret=secret)


def test_an_update_carries_only_what_changes():
    update = decide_update(
        existing(),
        url="https://example.com/hooks",
        events=["run.*"],
        known_types=TYPES,
        seal=BOX.seal,
    )
    assert update == w.WebhookUpdated(id="h1", events=("run.*",))


def test_an_update_to_the_current_state_is_no_event():
    assert (
        decide_update(existing(), active=True, events=["model.*"], known_types=TYPES, seal=BOX.seal)
        is None
    )


def test_a_new_secret_is_always_applied_since_nobody_can_see_the_old_one():
    update = decide_update(existing(), secret=SECRET, known_types=TYPES, seal=BOX.seal)
    assert update is not None and update.secret is None and update.sealed_secret is not None
    assert update.secret_key_id == BOX.key_id
    assert SECRET not in update.model_dump_json()


def test_an_update_with_nothing_in_it_is_refused():
    with pytest.raises(InvalidInput, match="nothing to update"):
        decide_update(existing(), known_types=TYPES, seal=BOX.seal)


def test_an_update_is_validated_like_a_creation():
    with pytest.raises(InvalidInput, match="ftp://"):
        decide_update(existing(), url="ftp://example.com", known_types=TYPES, seal=BOX.seal)
    with pytest.raises(InvalidInput, match="true or false"):
        decide_update(existing(), active="yes", known_types=TYPES, seal=BOX.seal)


# signatures --------------------------------------------------------------------------
BODY = b'{"id":"e1","type":"model.created","data":{"name":"m"}}'
NOW = 1_800_000_000


def signed(body: bytes = BODY, timestamp: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return signing.headers(
        secret=secret, event_id="e1", event_type="model.created", delivery_id="d1",
        timestamp=timestamp, body=body,
    )  # fmt: skip


def test_a_signed_request_verifies_with_the_same_secret():
    verify_signature(SECRET, signed(), BODY, now=NOW + 10)
    verify_signature(SECRET, signed(), BODY.decode(), now=NOW - 10)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signed()["X-Ledgerflow-Signature"] == f"sha256={digest}"


def test_header_names_match_whatever_their_case():
    lowered = {k.lower(): v for k, v in signed().items()}
    verify_signature(SECRET, lowered, BODY, now=NOW)


def test_a_changed_body_is_refused():
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(SECRET, signed(), BODY.replace(b'"m"', b'"x"'), now=NOW)


def test_a_wrong_secret_is_refused_and_any_of_several_secrets_is_accepted():
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature("another-secret-of-16+", signed(), BODY, now=NOW)
    verify_signature(["another-secret-of-16+", SECRET], signed(), BODY, now=NOW)


def test_a_stale_or_future_timestamp_is_refused_even_with_a_good_signature():
    with pytest.raises(WebhookSignatureError, match="301 s old, outside the 300 s tolerance"):
        verify_signature(SECRET, signed(), BODY, now=NOW + 301)
    with pytest.raises(WebhookSignatureError, match="in the future"):
        verify_signature(SECRET, signed(), BODY, now=NOW - 400)
    verify_signature(SECRET, signed(), BODY, tolerance_s=1000, now=NOW + 900)


def test_a_timestamp_moved_to_look_fresh_breaks_the_signature():
    headers = signed()
    headers["X-Ledgerflow-Timestamp"] = str(NOW + 500)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(SECRET, headers, BODY, now=NOW + 500)


@pytest.mark.parametrize("header", ["X-Ledgerflow-Timestamp", "X-Ledgerflow-Signature"])
def test_a_request_without_the_headers_is_refused_naming_the_missing_one(header):
    headers = signed()
    del headers[header]
    with pytest.raises(WebhookSignatureError, match=f"no {header} header"):
        verify_signature(SECRET, headers, BODY, now=NOW)


def test_a_timestamp_that_is_not_a_number_is_refused():
    headers = signed()
    headers["X-Ledgerflow-Timestamp"] = "yesterday"
    with pytest.raises(WebhookSignatureError, match="must be unix seconds"):
        verify_signature(SECRET, headers, BODY, now=NOW)


def test_verifying_without_a_secret_is_a_usage_error():
    with pytest.raises(InvalidInput, match="needs the webhook's secret"):
        verify_signature("", signed(), BODY, now=NOW)


# retry schedule ----------------------------------------------------------------------
def test_retry_ceilings_double_from_the_base_up_to_the_cap():
    backoff = Backoff(base_s=1.0, cap_s=300.0)
    assert [backoff.ceiling(n) for n in range(1, 11)] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 300,
    ]  # fmt: skip
    assert backoff.ceiling(10_000) == 300.0  # no overflow after days of failures


def test_jitter_keeps_each_wait_between_half_the_ceiling_and_the_ceiling():
    backoff = Backoff(base_s=0.5, cap_s=10.0)
    assert backoff.delay(3, rng=lambda: 0.0) == 1.0
    assert backoff.delay(3, rng=lambda: 1.0) == 2.0
    waits = [backoff.delay(20) for _ in range(200)]
    assert all(5.0 <= d <= 10.0 for d in waits)
    assert len(set(waits)) > 1


def test_a_backoff_without_a_positive_base_or_with_a_cap_below_it_is_refused():
    with pytest.raises(InvalidInput, match="base must be positive"):
        Backoff(base_s=0)
    with pytest.raises(InvalidInput, match="at least the base"):
        Backoff(base_s=5, cap_s=1)


# cursors and bodies ------------------------------------------------------------------
def test_a_cursor_resumes_after_the_item_it_advanced_past():
    item = Recorded(41, Event.of(m.RegisteredModelCreated(name="m")))
    cursor = checkpoint.advance(None, item)
    assert isinstance(cursor, str)
    assert cursor == "41"  # a single-partition log's checkpoint
    assert checkpoint.parse(cursor) == Checkpoint({"": 41})
    on_kafka = checkpoint.advance("lf.runs/1=3", Recorded(7, item.event, "lf.registry/0"))
    assert checkpoint.parse(on_kafka) == Checkpoint({"lf.runs/1": 3, "lf.registry/0": 7})
    assert checkpoint.parse(None) is None
    with pytest.raises(CorruptEvent, match="not a log checkpoint"):
        checkpoint.parse("forty-one")


def test_the_request_body_is_the_event_as_the_codec_encodes_it():
    event = Event.of(m.RegisteredModelCreated(name="m", tags={"a": "b"}), actor="user:x")
    body = request_body(Recorded(3, event))
    assert body == encode(event)
    doc = json.loads(body)
    assert (doc["id"], doc["type"], doc["data"]["tags"]) == (event.id, "model.created", {"a": "b"})


def test_an_undecodable_event_is_delivered_raw_with_the_reason_not_skipped():
    item = CorruptRecord(5, "e5", "model.future_thing", "model:m", '{"x": 1}', "unknown type")
    doc = json.loads(request_body(item))
    assert doc == {
        "id": "e5", "type": "model.future_thing", "stream": "model:m", "data": {"x": 1},
        "corrupt": "unknown type",
    }  # fmt: skip
