"""Webhooks end to end in one process: the real dispatcher POSTing to real HTTP receivers.

Every receiver verifies signatures with `ledgerflow.webhooks.verify_signature`, so
each test also checks that what the dispatcher signs is what receivers accept.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

import ledgerflow as lf
from ledgerflow.events.codec import encode
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import Conflict
from ledgerflow.events.webhook_commands import WebhookCreatedOut
from ledgerflow.events.webhook_entities import Webhook, WebhookDelivery
from ledgerflow.exceptions import AlreadyExists, InvalidInput, NotFound
from ledgerflow.services.leases import LeaseLost
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.webhooks import checkpoint
from ledgerflow.services.webhooks.backoff import Backoff
from ledgerflow.services.webhooks.dispatcher import WebhookDispatcher
from ledgerflow.services.webhooks.store import CURSORS, CursorStore
from ledgerflow.webhooks import standard_secret
from tests.conftest import PYTHON, python_env
from tests.integration.webhook_receiver import Receiver
from tests.waiting import wait_until


@pytest.fixture
def client(tracking: Path) -> lf.Client:
    return lf.Client()


def make_dispatcher(client: lf.Client, lease_s: float = 5.0) -> WebhookDispatcher:
    b = client._backend
    return WebhookDispatcher(
        b.log,
        b.projector.engine,
        secrets=lambda: b.secret_box,
        reader=b.queries.engine,
        backoff=Backoff(base_s=0.05, cap_s=0.4),
        timeout_s=30,
        scan_interval_s=0.1,
        refresh=b.refresh,
        lease_s=lease_s,
    )


@pytest.fixture
def dispatcher(client: lf.Client) -> Iterator[WebhookDispatcher]:
    d = make_dispatcher(client).start()
    yield d
    d.stop()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        if r.gate is not None:
            r.gate.set()
        r.down()


@pytest.fixture
def receiver(receivers: list[Receiver]) -> Receiver:
    r = Receiver().up()
    receivers.append(r)
    return r


def hook_for(client: lf.Client, receiver: Receiver, name: str, events: list[str], **kw) -> Webhook:
    hook = client.create_webhook(name, receiver.url, events, **kw)
    assert hook.secret
    receiver.secret = hook.secret
    return hook


def logged(client: lf.Client, hook: Webhook, pattern: str = "model.*") -> list[Recorded]:
    """The events the webhook should get: those matching, after where it started."""
    items = client._backend.log.read(checkpoint.parse(hook.cursor), 1_000_000, [pattern])
    return [i for i in items if isinstance(i, Recorded)]


def ids(items: list[Recorded]) -> list[str]:
    return [i.event.id for i in items]


def settled(client: lf.Client, name: str, items: list[Recorded]) -> None:
    """Wait until the webhook's cursor is past the last of `items` (so nothing is left to
    arrive late, twice or otherwise)."""
    last = checkpoint.advance(None, items[-1])
    wait_until(lambda: client.get_webhook(name).cursor == last, 60, lambda: f"cursor of {name}")


def test_model_events_reach_the_receiver_signed_in_log_order_and_nothing_else_does(
    client, dispatcher, receiver, receivers
):
    hook = hook_for(client, receiver, "models", ["model.*"])
    everything = Receiver().up()
    receivers.append(everything)
    hook_for(client, everything, "everything", ["*"])
    exp = client.create_experiment("webhooks")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "loss", 0.5)
    client.create_registered_model("digits", tags={"team": "cv"})
    client.set_registered_model_tag("digits", "stage", "dev")
    client.create_webhook("third", receiver.url, ["run.*"])  # webhook.created: never delivered
    client.update_registered_model("digits", "handwritten digits")
    client.create_model_version("digits", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("digits", "champion", 1)

    expected = logged(client, hook)
    assert [i.event.type for i in expected] == [
        "model.created", "model.tag_set", "model.description_set", "model.version_created",
        "model.alias_set",
    ]  # fmt: skip
    assert receiver.wait_for(len(expected)) == ids(expected)
    assert not receiver.rejected
    for request, item in zip(receiver.requests, expected, strict=True):
        assert request.raw == encode(item.event)  # the body is the event as the codec writes it
        assert request.event_type == item.event.type == request.body["type"]
    assert len({r.delivery_id for r in receiver.requests}) == len(receiver.requests)

    all_expected = [i for i in logged(client, hook, "*") if not i.event.type.startswith("webhook")]
    assert everything.wait_for(len(all_expected)) == ids(all_expected)
    assert {r.event_type.split(".")[0] for r in everything.requests} == {
        "experiment",
        "run",
        "model",
    }


def test_a_receiver_down_while_25_events_happen_gets_all_in_order_once_back(client, dispatcher):
    receiver = Receiver()  # its port is closed: connection refused
    hook = hook_for(client, receiver, "down-then-up", ["model.*"])
    client.create_registered_model("m")
    for i in range(24):
        client.set_registered_model_tag("m", f"k{i}", str(i))
    wait_until(lambda: client.get_webhook("down-then-up").failed_attempts >= 3)
    failures = client.list_webhook_deliveries("down-then-up")
    assert failures and all(not d.ok and "Connect" in (d.error or "") for d in failures)
    assert {d.position for d in failures} == {checkpoint.advance(None, logged(client, hook)[0])}

    receiver.up()
    try:
        expected = logged(client, hook)
        assert len(expected) == 25
        receiver.wait_for(25)
        settled(client, "down-then-up", expected)
        assert receiver.accepted() == ids(expected)  # in order, none lost, none twice
        assert client.get_webhook("down-then-up").failed_attempts == 0
    finally:
        receiver.down()


def test_500_answers_are_retried_until_taken_and_the_events_behind_wait(
    client, dispatcher, receiver
):
    receiver.status = lambda n: 500 if n < 3 else 200
    hook = hook_for(client, receiver, "flaky", ["model.*"])
    client.create_registered_model("m")
    client.set_registered_model_tag("m", "a", "1")
    client.set_registered_model_tag("m", "b", "2")
    first, second, third = ids(logged(client, hook))
    receiver.wait_for(3)
    settled(client, "flaky", logged(client, hook))
    assert [(r.event_id, r.status) for r in receiver.requests] == [
        (first, 500), (first, 500), (first, 500), (first, 200), (second, 200), (third, 200),
    ]  # fmt: skip
    # Standard Webhooks' webhook-id is the event's: every attempt at it carries the same one
    assert [r.message_id for r in receiver.requests] == [r.event_id for r in receiver.requests]
    assert len({r.delivery_id for r in receiver.requests}) == 6  # Ledgerflow's: per attempt
    attempts = list(reversed(client.list_webhook_deliveries("flaky")))
    assert [(d.event_id, d.attempt, d.ok, d.status_code) for d in attempts] == [
        (first, 1, False, 500), (first, 2, False, 500), (first, 3, False, 500),
        (first, 4, True, 200), (second, 1, True, 200), (third, 1, True, 200),
    ]  # fmt: skip
    assert attempts[0].error == "HTTP 500"
    assert all(d.duration_ms >= 0 for d in attempts)
    registry = dispatcher.metrics.registry
    for outcome, n in (("failed", 3), ("ok", 3)):
        labels = {"webhook": "flaky", "outcome": outcome}
        assert registry.get_sample_value("ledgerflow_webhooks_deliveries_total", labels) == n
    age = "ledgerflow_webhooks_backlog_age_seconds"
    wait_until(lambda: registry.get_sample_value(age, {"webhook": "flaky"}) == 0, 10, "caught up")


def test_a_slow_receiver_does_not_hold_up_another_webhook(client, dispatcher, receivers):
    slow, fast = Receiver().up(), Receiver().up()
    receivers += [slow, fast]
    slow.gate = threading.Event()  # the slow one answers nothing until set
    slow_hook = hook_for(client, slow, "slow", ["model.*"])
    hook_for(client, fast, "fast", ["model.*"])
    client.create_registered_model("m")
    for i in range(9):
        client.set_registered_model_tag("m", f"k{i}", str(i))
    expected = ids(logged(client, slow_hook))
    assert fast.wait_for(10, timeout=20) == expected
    assert slow.accepted() == []  # still holding its first request
    slow.gate.set()
    assert slow.wait_for(10) == expected


def test_a_new_webhook_starts_at_the_head_unless_created_from_the_start(
    client, dispatcher, receivers
):
    client.create_registered_model("before")
    now, everything = Receiver().up(), Receiver().up()
    receivers += [now, everything]
    hook_for(client, now, "from-now", ["model.*"])
    all_hook = hook_for(client, everything, "from-start", ["model.*"], from_start=True)
    assert all_hook.cursor is None
    client.create_registered_model("after")
    expected = logged(client, all_hook)
    assert [i.event.data.name for i in expected] == ["before", "after"]  # type: ignore[attr-defined]
    assert everything.wait_for(2) == ids(expected)
    assert now.wait_for(1) == ids(expected)[1:]


def test_replaying_the_views_neither_redelivers_nor_forgets_webhooks(client, dispatcher, receiver):
    hook = hook_for(client, receiver, "replayed", ["model.*"])
    client.create_registered_model("m")
    receiver.wait_for(1)
    settled(client, "replayed", logged(client, hook))
    client._backend.projector.rebuild()
    assert client.get_webhook("replayed").id == hook.id
    client.set_registered_model_tag("m", "k", "v")
    receiver.wait_for(2)
    settled(client, "replayed", logged(client, hook))
    assert receiver.accepted() == ids(logged(client, hook))


def test_a_paused_webhook_receives_what_it_missed_in_order_when_resumed(
    client, dispatcher, receiver
):
    hook = hook_for(client, receiver, "pausable", ["model.*"])
    client.create_registered_model("m")
    receiver.wait_for(1)
    assert client.update_webhook("pausable", active=False).active is False
    wait_until(lambda: hook.id not in dispatcher.running)
    for i in range(5):
        client.set_registered_model_tag("m", f"k{i}", str(i))
    time.sleep(0.5)  # ample for a running worker to deliver; a paused one must not
    assert len(receiver.accepted()) == 1
    client.update_webhook("pausable", active=True)
    receiver.wait_for(6)
    settled(client, "pausable", logged(client, hook))
    assert receiver.accepted() == ids(logged(client, hook))


def test_a_rotated_secret_signs_the_deliveries_after_it(client, dispatcher, receiver):
    hook = hook_for(client, receiver, "rotating", ["model.*"])
    client.create_registered_model("m")
    receiver.wait_for(1)
    receiver.secret = "a-brand-new-secret-0123"
    client.update_webhook("rotating", secret=receiver.secret)
    client.set_registered_model_tag("m", "k", "v")
    receiver.wait_for(2)  # only a request signed with the new secret is accepted
    assert receiver.accepted() == ids(logged(client, hook))


def test_deleting_a_webhook_stops_its_deliveries_and_drops_its_cursor(client, dispatcher, receiver):
    hook = hook_for(client, receiver, "doomed", ["model.*"])
    client.create_registered_model("m")
    receiver.wait_for(1)
    client.delete_webhook("doomed")
    wait_until(lambda: hook.id not in dispatcher.running)
    client.set_registered_model_tag("m", "k", "v")
    engine = client._backend.queries.engine

    def cursor_gone() -> bool:
        with engine.connect() as conn:  # a fresh snapshot each time
            return (
                conn.execute(select(CURSORS).where(CURSORS.c.webhook_id == hook.id)).first() is None
            )

    wait_until(cursor_gone)
    with pytest.raises(NotFound, match="no webhook named 'doomed'"):
        client.list_webhook_deliveries("doomed")
    assert client.list_webhooks() == []
    time.sleep(0.3)
    assert len(receiver.accepted()) == 1


def test_the_secret_is_shown_at_creation_and_never_again(client):
    created = client.create_webhook("quiet", "https://example.com/h", ["model.*"], "s" * 20)
    assert created.secret == "s" * 20
    assert client.get_webhook("quiet").secret is None
    assert [h.secret for h in client.list_webhooks()] == [None]
    assert json.dumps([h.name for h in client.list_webhooks()]) == '["quiet"]'
    generated = client.create_webhook("generated", "http://example.com/h", ["run.*"])
    assert generated.secret and len(generated.secret) >= 32


def test_a_standard_webhooks_secret_signs_what_both_verifiers_accept(client, dispatcher, receiver):
    """A `whsec_` secret (base64 of a key, as Standard Webhooks tools make them) is that key
    for both signatures; the receiver checks both, the second with `standardwebhooks`."""
    key = "whsec_" + base64.b64encode(bytes(range(24))).decode()
    hook = hook_for(client, receiver, "standard", ["model.*"], secret=key)
    assert standard_secret(key) == key
    client.create_registered_model("m")
    assert receiver.wait_for(1) == ids(logged(client, hook))
    assert not receiver.rejected
    other = "a-plain-secret-of-twenty-six"
    assert base64.b64decode(standard_secret(other).removeprefix("whsec_")) == other.encode()
    created = client.create_webhook("shown", "https://example.com/h", ["run.*"], other)
    answer = WebhookCreatedOut.model_validate(created).model_dump(mode="json")  # the gateway's
    assert answer["secret"] == other and answer["standard_secret"] == standard_secret(other)
    with pytest.raises(InvalidInput, match="base64 must follow the prefix"):
        client.create_webhook(
            "broken", "https://example.com/h", ["model.*"], "whsec_!!not-base64!!"
        )


def test_bad_webhook_input_is_refused_with_a_clear_error(client):
    client.create_webhook("taken", "https://example.com/h", ["model.*"])
    with pytest.raises(InvalidInput, match="must start with http:// or https://, not ftp://"):
        client.create_webhook("ftp", "ftp://example.com/h", ["model.*"])
    with pytest.raises(InvalidInput, match="at least one event type pattern"):
        client.create_webhook("empty", "https://example.com/h", [])
    with pytest.raises(InvalidInput, match="matches no event type"):
        client.create_webhook("typo", "https://example.com/h", ["modle.*"])
    with pytest.raises(AlreadyExists, match="'taken' already exists"):
        client.create_webhook("taken", "https://example.com/other", ["run.*"])
    with pytest.raises(NotFound, match="no webhook named 'missing'"):
        client.update_webhook("missing", url="https://example.com/h")
    with pytest.raises(InvalidInput, match="nothing to update"):
        client.update_webhook("taken")
    with pytest.raises(InvalidInput, match="max_results must be a positive number"):
        client.list_webhook_deliveries("taken", 0)
    assert [h.name for h in client.list_webhooks()] == ["taken"]


def test_an_event_this_build_cannot_decode_is_delivered_raw_in_its_place(
    client, dispatcher, receiver
):
    hook = hook_for(client, receiver, "future", ["model.*"])
    client.create_registered_model("m")
    conn = sqlite3.connect(client._backend.settings.data_dir / "events.db")
    with conn:
        conn.execute(
            "INSERT INTO events (id, type, stream, time, v, actor, data) "
            "VALUES ('future-1', 'model.from_the_future', 'model:m', 1, 1, 'x', '{\"a\": 1}')"
        )
    conn.close()
    client.set_registered_model_tag("m", "k", "v")
    got = receiver.wait_for(3)
    model_ids = ids(logged(client, hook))
    assert got == [model_ids[0], "future-1", model_ids[1]]
    assert receiver.requests[1].body == {
        "id": "future-1", "type": "model.from_the_future", "stream": "model:m",
        "data": {"a": 1}, "corrupt": "unknown event type 'model.from_the_future'",
    }  # fmt: skip


def test_a_cursor_that_moved_under_a_dispatcher_is_not_moved_again(client):
    store = CursorStore(client._backend.projector.engine)
    assert store.load("h", "5").position == "5"
    attempt = WebhookDelivery("d", "e", "model.created", "6", 1, True, 200, None, 1, 1)
    store.acknowledge("h", "5", "6", attempt)
    assert store.load("h", None).position == "6"  # created once, then as stored
    with pytest.raises(Conflict, match="a second `ledgerflow webhooks run`"):
        store.acknowledge("h", "5", "7", attempt)
    assert store.load("h", None).position == "6"


def _bytes_of_files(folder: Path) -> bytes:
    """Every byte the data directory holds (log, views, WAL files), the key file aside."""
    return b"".join(
        p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "secret.key"
    )


def test_a_webhook_secret_never_reaches_the_log_or_the_views_yet_deliveries_are_signed_with_it(
    client, tracking, dispatcher, receiver
):
    secret = "a-rather-recognisable-secret-42"
    hook_for(client, receiver, "sealed", ["model.*"], secret=secret)
    rotated = "another-recognisable-secret-43"
    client.create_registered_model("m")
    receiver.wait_for(1)  # the receiver verifies with the plain secret: signed right
    assert not receiver.rejected
    receiver.secret = rotated
    client.update_webhook("sealed", secret=rotated)
    client.set_registered_model_tag("m", "k", "v")
    receiver.wait_for(2)  # only once signed with the rotated secret

    with sqlite3.connect(tracking / "events.db") as db:
        rows = db.execute("SELECT type, data FROM events WHERE type LIKE 'webhook.%'").fetchall()
    assert [t for t, _ in rows] == ["webhook.created", "webhook.updated"]
    key_id = client._backend.secret_box.key_id
    for _, data in rows:
        doc = json.loads(data)
        assert doc["secret_key_id"] == key_id and doc["sealed_secret"].startswith("gAAAAA")
        assert doc.get("secret") is None
    raw = _bytes_of_files(tracking)
    for plain in (secret, rotated):
        assert plain.encode() not in raw
    assert all(h.secret is None for h in client.list_webhooks())


def test_a_webhook_whose_old_event_carries_a_plain_secret_still_delivers(
    client, dispatcher, receiver
):
    from ledgerflow.events import webhook_payloads as w
    from ledgerflow.events.envelope import Event

    receiver.secret = "plain-text-from-an-older-version"
    old = w.WebhookCreated(
        id="old-hook", name="old", url=receiver.url, events=("model.*",), secret=receiver.secret
    )
    client._backend.committer.commit([old], "someone")  # as an older ledgerflow wrote it
    assert Event.of(old).data.secret == receiver.secret
    client.create_registered_model("m")
    receiver.wait_for(1)
    assert not receiver.rejected


def test_a_secret_sealed_with_a_key_this_dispatcher_lacks_fails_its_delivery_naming_the_key(
    client, receiver
):
    from cryptography.fernet import Fernet

    from ledgerflow.services.secret_box import SecretBox

    hook_for(client, receiver, "orphaned", ["model.*"])
    b = client._backend
    stranger = SecretBox(Fernet.generate_key())
    with WebhookDispatcher(
        b.log, b.projector.engine, secrets=lambda: stranger, reader=b.queries.engine,
        backoff=Backoff(base_s=0.05, cap_s=0.4), scan_interval_s=0.1, refresh=b.refresh,
    ):  # fmt: skip
        client.create_registered_model("m")
        wait_until(lambda: client.get_webhook("orphaned").last_error is not None)
    error = client.get_webhook("orphaned").last_error or ""
    assert (
        f"webhook 'orphaned''s secret was encrypted with key id {b.secret_box.key_id}, "
        "which this server does not have"
    ) in error
    assert "LEDGERFLOW_SECRET_KEY" in error
    assert receiver.requests == []


def test_a_dispatcher_without_a_server_key_starts_and_says_what_to_set(client, receiver):
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.secret_box import open_secret_box

    hook_for(client, receiver, "keyless", ["model.*"])
    b = client._backend
    kafka = load_settings(event_log="kafka://127.0.0.1:9092")  # no key file beside a log
    with WebhookDispatcher(
        b.log, b.projector.engine, secrets=lambda: open_secret_box(kafka),
        reader=b.queries.engine, backoff=Backoff(base_s=0.05, cap_s=0.4), scan_interval_s=0.1,
        refresh=b.refresh,
    ):  # fmt: skip
        client.create_registered_model("m")
        wait_until(lambda: client.get_webhook("keyless").last_error is not None)
    assert "set LEDGERFLOW_SECRET_KEY" in (client.get_webhook("keyless").last_error or "")
    assert receiver.requests == []


# several dispatchers on one database --------------------------------------------------


def test_two_dispatchers_on_one_database_deliver_each_event_once_and_hand_over_on_stop(
    client, receiver
):
    first = make_dispatcher(client, lease_s=60).start()
    second = make_dispatcher(client, lease_s=60).start()
    try:
        hook = hook_for(client, receiver, "shared", ["model.*"])
        client.create_registered_model("m")
        for i in range(20):
            client.set_registered_model_tag("m", f"k{i}", str(i))
        expected = logged(client, hook)
        receiver.wait_for(len(expected))
        settled(client, "shared", expected)
        assert receiver.accepted() == ids(expected)  # once each, in order
        holders = [d for d in (first, second) if hook.id in d.running]
        assert len(holders) == 1
        holder, standby = holders[0], ({first, second} - {holders[0]}).pop()

        holder.stop()  # gives its lease up: the standby takes over now, not in 60 s
        for i in range(5):
            client.set_registered_model_tag("m", f"after{i}", str(i))
        expected = logged(client, hook)
        receiver.wait_for(len(expected), timeout=10)
        settled(client, "shared", expected)
        assert receiver.accepted() == ids(expected)
        assert hook.id in standby.running
    finally:
        first.stop()
        second.stop()


def test_when_the_dispatcher_holding_a_webhook_is_killed_another_takes_it_over(
    client, receiver, tracking: Path
):
    hook = hook_for(client, receiver, "survives", ["model.*"])
    client.create_registered_model("m")
    process = subprocess.Popen(  # a dispatcher in its own process, to be SIGKILLed
        [PYTHON, "-m", "ledgerflow.cli", "webhooks", "run", "--quiet",
         "--scan-interval", "0.1", "--lease", "1", "--backoff-base", "0.05"],
        env=python_env(tracking), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    standby = make_dispatcher(client, lease_s=1.0)
    try:
        receiver.wait_for(1, timeout=60)  # the process holds the webhook's lease
        standby.start()
        for i in range(5):
            client.set_registered_model_tag("m", f"k{i}", str(i))
        expected = logged(client, hook)
        receiver.wait_for(len(expected))
        settled(client, "survives", expected)
        assert standby.running == {}  # the lease is the process's: the standby waits

        os.killpg(process.pid, signal.SIGKILL)  # no goodbye: its lease has to expire
        process.wait(timeout=30)
        killed = time.monotonic()
        for i in range(5):
            client.set_registered_model_tag("m", f"later{i}", str(i))
        expected = logged(client, hook)
        receiver.wait_for(len(expected), timeout=30)
        assert time.monotonic() - killed < 10  # the 1 s lease, then the next scan
        settled(client, "survives", expected)
        assert receiver.accepted() == ids(expected)  # none lost; none twice (none in flight)
        assert hook.id in standby.running
    finally:
        standby.stop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_a_worker_whose_lease_another_dispatcher_took_cannot_move_the_cursor(client):
    _lease_story(CursorStore(client._backend.projector.engine))


def test_leases_on_postgresql_as_on_sqlite(postgres_url: str) -> None:
    engine = make_engine(postgres_url, writer=True)
    try:
        _lease_story(CursorStore(engine))
    finally:
        engine.dispose()


def _lease_story(store: CursorStore) -> None:
    """Taken, renewed, refused to another while live, taken over once expired, and the
    old holder's writes refused by the fencing token."""
    assert store.load("h", "5").position == "5"
    mine = store.claim("h", "a", ttl_ms=60_000)
    assert mine is not None and store.claim("h", "b", ttl_ms=60_000) is None
    assert store.claim("h", "a", ttl_ms=60_000) == mine  # renewed: the same token
    attempt = WebhookDelivery("d", "e", "model.created", "6", 1, True, 200, None, 1, 1)
    store.acknowledge("h", "5", "6", attempt, mine)
    assert store.claim("h", "b", ttl_ms=-1) is None  # "a"'s has not expired
    store.claim("h", "a", ttl_ms=-1)  # now it has (a stalled holder)
    theirs = store.claim("h", "b", ttl_ms=60_000)
    assert theirs is not None and theirs.token == mine.token + 1
    with pytest.raises(LeaseLost, match="another dispatcher took over"):
        store.acknowledge("h", "6", "7", attempt, mine)
    with pytest.raises(LeaseLost):
        store.fail("h", "6", attempt, 0, mine)
    assert store.load("h", None).position == "6"
    store.acknowledge("h", "6", "7", attempt, theirs)
    assert store.load("h", None).position == "7"
