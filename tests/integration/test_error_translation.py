"""Driver errors reach users as Ledgerflow errors that say what is wrong."""

from pathlib import Path

import pytest

from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.settings import load_settings
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.projector.database import make_engine


def test_an_event_log_file_that_is_not_a_database_is_unavailable_with_a_hint(tmp_path: Path):
    bad = tmp_path / "events.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(Unavailable, match="cannot open the event log.*not a database"):
        SQLiteEventLog(bad)


def test_an_event_log_under_a_file_is_invalid_input(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="cannot create the event log folder"):
        SQLiteEventLog(tmp_path / "file" / "events.db")


def test_a_views_database_that_is_not_a_database_is_unavailable(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "views.db").write_bytes(b"garbage" * 100)
    with pytest.raises(Unavailable, match="creating the view tables failed"):
        bootstrap(load_settings(tracking_uri=str(data)))


def test_a_malformed_views_url_names_the_setting():
    with pytest.raises(InvalidInput, match="LEDGERFLOW_VIEWS_DB"):
        make_engine("not a url at all", writer=True)


def test_unsupported_log_and_artifact_schemes_say_what_this_version_supports(tmp_path: Path):
    with pytest.raises(InvalidInput, match="LEDGERFLOW_EVENT_LOG.*sqlite:///FILE or kafka://"):
        bootstrap(load_settings(tracking_uri=str(tmp_path), event_log="nats://localhost:4222"))
    with pytest.raises(InvalidInput, match="kafka://HOST:PORT"):
        bootstrap(load_settings(tracking_uri=str(tmp_path), event_log="kafka://localhost"))
    with pytest.raises(InvalidInput, match="LEDGERFLOW_ARTIFACTS"):
        bootstrap(load_settings(tracking_uri=str(tmp_path), artifacts="s3://bucket/x"))
