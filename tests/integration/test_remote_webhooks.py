"""Webhooks managed over a real gateway (`/api/v1/webhooks`) give what embedded mode
gives: the same answers, the secret only on create, the same exceptions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import ledgerflow as lf
from ledgerflow.events.errors import InvalidInput, LedgerflowError, NotFound
from ledgerflow.events.webhook_entities import Webhook
from tests.integration.gateway_fixture import GatewayThread

GIVEN_SECRET = "s3cret-" + "x" * 20


def normal(value: Any) -> Any:
    """An answer without what differs between two logs by chance (ids, clocks), with a
    generated secret shown only as being there."""
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, Webhook):
        doc = dataclasses.asdict(value)
        for key in ("id", "creation_time", "last_updated_time"):
            doc.pop(key)
        if doc["secret"] not in (None, GIVEN_SECRET):
            doc["secret"] = "<generated>"
        return doc
    return value


def exercise(c: lf.Client) -> list[Any]:
    """The same webhook commands and mistakes, with what each answered or raised."""
    out: list[Any] = []

    def record(call: Callable[[], Any]) -> None:
        try:
            out.append(normal(call()))
        except LedgerflowError as e:
            out.append((type(e).__name__, getattr(e, "field", None), e.message))

    record(lambda: c.create_webhook("ci", "https://ci.example.com/hook", ["model.*"], None, "CI"))
    record(lambda: c.create_webhook("given", "http://127.0.0.1:9/x", "run.finished",
                                    secret=GIVEN_SECRET, from_start=True))  # fmt: skip
    record(lambda: c.create_webhook("ci", "https://other.example.com", ["model.*"]))
    record(lambda: c.create_webhook("bad name!", "https://x.example.com", ["model.*"]))
    record(lambda: c.create_webhook("x", "ftp://x.example.com", ["model.*"]))
    record(lambda: c.create_webhook("x", "https://x.example.com", ["modle.*"]))
    record(lambda: c.create_webhook("x", "https://x.example.com", ["webhook.*"]))
    record(lambda: c.create_webhook("x", "https://x.example.com", []))
    record(lambda: c.create_webhook("x", "https://x.example.com", ["model.*"], secret="short"))
    record(lambda: c.create_webhook("x", "https://x.example.com", ["run.*"], None, "d" * 5001))
    record(c.list_webhooks)
    record(lambda: c.get_webhook("ci"))
    record(lambda: c.get_webhook("absent"))
    record(lambda: c.update_webhook("ci", url="https://ci.example.com/v2", active=False,
                                    events=["model.*", "run.finished"]))  # fmt: skip
    record(lambda: c.update_webhook("ci", secret="n" * 32, description="rotated"))
    record(lambda: c.update_webhook("ci", events=[]))
    record(lambda: c.update_webhook("ci"))
    record(lambda: c.update_webhook("absent", active=True))
    record(lambda: c.list_webhook_deliveries("ci"))
    record(lambda: c.list_webhook_deliveries("absent"))
    record(lambda: c.delete_webhook("ci"))
    record(lambda: c.delete_webhook("ci"))
    record(c.list_webhooks)
    return out


def test_webhook_commands_over_the_gateway_answer_as_embedded_mode_does(
    remote: GatewayThread,
    tmp_path: Path,
):
    over_gateway = exercise(lf.Client())
    in_process = exercise(lf.Client(str(tmp_path / "embedded")))
    assert over_gateway == in_process

    created, given = over_gateway[0], over_gateway[1]
    assert created["secret"] == "<generated>" and given["secret"] == GIVEN_SECRET
    listed = over_gateway[10]
    assert [h["name"] for h in listed] == ["ci", "given"]
    assert all(h["secret"] is None for h in listed)  # secrets only in create's answer
    assert over_gateway[2][0] == "AlreadyExists"
    assert [e[1] for e in over_gateway[3:10]] == [
        "name", "url", "events", "events", "events", "secret", "description",
    ]  # fmt: skip
    assert over_gateway[12][0] == "NotFound" and over_gateway[-2][0] == "NotFound"


def test_remote_webhook_errors_are_the_embedded_exceptions_naming_the_field(remote):
    c = lf.Client()
    c.create_webhook("ci", "https://ci.example.com/hook", ["model.*"])
    with pytest.raises(NotFound) as missing:
        c.get_webhook("nope")
    assert (missing.value.kind, missing.value.key) == ("webhook", "nope")
    with pytest.raises(InvalidInput) as not_bool:
        c.update_webhook("ci", active="yes")  # type: ignore[arg-type]
    assert not_bool.value.field == "active"
    with pytest.raises(InvalidInput) as not_positive:
        c.list_webhook_deliveries("ci", max_results=0)
    assert not_positive.value.field == "max_results"
    with pytest.raises(InvalidInput) as not_text:
        c.create_webhook(5, "https://x.example.com", ["model.*"])  # type: ignore[arg-type]
    assert not_text.value.field == "name"


def test_the_webhook_routes_record_the_caller_and_show_a_secret_only_when_created(
    remote: GatewayThread,
):
    c = lf.Client()
    c.create_webhook("ci", "https://ci.example.com/hook", ["model.*"], secret=GIVEN_SECRET)
    assert remote.backend is not None
    [created] = [i for i in remote.backend.log.read() if i.event.type == "webhook.created"]
    assert created.event.actor == c._actor

    api = httpx.get(f"{remote.url}/openapi.json", timeout=10).json()
    schemas = api["components"]["schemas"]
    assert "secret" in schemas["WebhookCreatedOut"]["properties"]
    assert "secret" not in schemas["WebhookOut"]["properties"]
    create = api["paths"]["/api/v1/webhooks"]["post"]
    assert create["tags"] == ["webhooks"] and "secret" in create["summary"]
    answer = create["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/WebhookCreatedOut")
    for path in ("/api/v1/webhooks/{name}", "/api/v1/webhooks/{name}/deliveries"):
        for method, op in api["paths"][path].items():
            assert op["summary"], (method, path)
            schema = op["responses"].get("200", {}).get("content", {})
            assert "WebhookCreatedOut" not in str(schema)

    listed = httpx.get(f"{remote.url}/api/v1/webhooks", timeout=10).json()
    assert "secret" not in listed[0] and listed[0]["name"] == "ci"
