"""Sealing webhook secrets with the server key: keys, ids, rotation, and the errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from ledgerflow.events import webhook_payloads as w
from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.settings import load_settings
from ledgerflow.services.secret_box import SecretBox, open_secret_box

SECRET = "a-webhook-secret-0123456789"


def test_a_sealed_secret_holds_no_trace_of_the_secret_and_opens_with_the_same_key():
    box = SecretBox(Fernet.generate_key())
    sealed = box.seal(SECRET)
    assert SECRET not in sealed.ciphertext and sealed.key_id == box.key_id
    assert box.open(sealed, what="webhook 'w'") == SECRET


def test_after_a_rotation_old_secrets_open_with_the_old_key_listed_and_new_ones_use_the_new():
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_before = SecretBox(old).seal(SECRET)
    rotated = SecretBox(new, (old,))
    assert rotated.open(sealed_before, what="webhook 'w'") == SECRET
    assert rotated.seal(SECRET).key_id == SecretBox(new).key_id != sealed_before.key_id


def test_a_secret_sealed_with_a_key_the_server_lacks_names_the_key_id_and_what_to_set():
    sealed = SecretBox(Fernet.generate_key()).seal(SECRET)
    other = SecretBox(Fernet.generate_key())
    with pytest.raises(Unavailable) as e:
        other.open(sealed, what="webhook 'ci'")
    assert f"webhook 'ci''s secret was encrypted with key id {sealed.key_id}" in e.value.message
    assert (
        "LEDGERFLOW_SECRET_KEY" in e.value.message
        and "LEDGERFLOW_OLD_SECRET_KEYS" in e.value.message
    )


def test_a_key_that_is_not_a_fernet_key_is_refused_naming_the_setting():
    with pytest.raises(InvalidInput, match="LEDGERFLOW_SECRET_KEY is not a Fernet key"):
        open_secret_box(load_settings(tracking_uri="/nowhere", secret_key="hunter2"))


def test_the_embedded_default_makes_one_private_key_beside_the_log_and_keeps_it(tmp_path: Path):
    settings = load_settings(tracking_uri=str(tmp_path / "data"))
    first = open_secret_box(settings)
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert open_secret_box(settings).key_id == first.key_id


def test_a_key_file_setting_is_read_and_a_missing_one_is_named(tmp_path: Path):
    key = Fernet.generate_key()
    (tmp_path / "k").write_bytes(key + b"\n")
    box = open_secret_box(load_settings(tracking_uri="/x", secret_key_file=str(tmp_path / "k")))
    assert box.key_id == SecretBox(key).key_id
    with pytest.raises(InvalidInput, match="LEDGERFLOW_SECRET_KEY_FILE .* cannot be read"):
        open_secret_box(load_settings(tracking_uri="/x", secret_key_file=str(tmp_path / "no")))


def test_a_kafka_log_needs_the_key_set_since_every_gateway_must_share_it():
    with pytest.raises(InvalidInput, match="set LEDGERFLOW_SECRET_KEY"):
        open_secret_box(load_settings(event_log="kafka://127.0.0.1:9092"))


def test_a_new_webhook_event_must_carry_a_sealed_secret_and_its_key_id():
    base = {"id": "h", "name": "n", "url": "https://e.com", "events": ("model.*",)}
    with pytest.raises(ValidationError, match="needs its sealed_secret"):
        w.WebhookCreated(**base)
    with pytest.raises(ValidationError, match="come together"):
        w.WebhookCreated(**base, sealed_secret="gAAA")
    with pytest.raises(ValidationError, match="not both"):
        w.WebhookUpdated(id="h", sealed_secret="gAAA", secret_key_id="k", secret=SECRET)
    assert w.WebhookCreated(**base, secret=SECRET).secret == SECRET  # as old events carry it
