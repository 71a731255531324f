"""`ledgerflow webhooks …` as real processes: the CLI commands, and a dispatcher process
that is killed and restarted while a real HTTP receiver counts what arrives."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow.events.envelope import Recorded
from ledgerflow.services.webhooks import checkpoint
from tests.conftest import PYTHON
from tests.e2e.test_cli import clean_error, cli, cli_env, doc
from tests.integration.webhook_receiver import Receiver
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().up()
    yield r
    r.down()


def start_dispatcher(data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    args = ["--backoff-base", "0.05", "--backoff-max", "0.5", "--scan-interval", "0.2"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [PYTHON, "-m", "ledgerflow.cli", "webhooks", "run", *args],
            env=cli_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def model_events(client: lf.Client, after: str | None) -> list[str]:
    items = client._backend.log.read(checkpoint.parse(after), 1_000_000, ["model.*"])
    return [i.event.id for i in items if isinstance(i, Recorded)]


def test_a_killed_dispatcher_resumes_from_its_cursor_losing_and_repeating_nothing(
    tracking: Path, receiver: Receiver, tmp_path: Path
):
    client = lf.Client()
    hook = client.create_webhook("crashy", receiver.url, ["model.*"])
    receiver.secret = hook.secret or ""
    out = tmp_path / "dispatcher.log"
    proc = start_dispatcher(tracking, out)
    try:
        client.create_registered_model("m")
        for i in range(9):
            client.set_registered_model_tag("m", f"first{i}", str(i))
        receiver.wait_for(10)
        first = model_events(client, hook.cursor)
        last = client._backend.log.head().encode()
        wait_until(lambda: client.get_webhook("crashy").cursor == last)  # acknowledged
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

        for i in range(10):  # happen while no dispatcher runs
            client.set_registered_model_tag("m", f"second{i}", str(i))
        proc = start_dispatcher(tracking, out)
        receiver.wait_for(20)
        everything = model_events(client, hook.cursor)
        assert everything[:10] == first
        last = client._backend.log.head().encode()
        wait_until(lambda: client.get_webhook("crashy").cursor == last)
        assert receiver.accepted() == everything  # exactly once each, in log order
        assert not receiver.rejected

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    text = out.read_text()
    assert "Traceback" not in text
    assert "webhook dispatcher stopped" in text
    assert "crashy  model.tag_set" in text  # one line per attempt


def test_webhook_commands_create_list_show_update_and_delete(tmp_path: Path):
    data = tmp_path / "data"
    created = doc(
        cli(data, "webhooks", "create", "ci", "https://example.com/hook", "-e", "model.*",
            "-e", "run.finished", "-d", "CI trigger", "--json")
    )  # fmt: skip
    assert created["name"] == "ci" and created["events"] == ["model.*", "run.finished"]
    assert len(created["secret"]) >= 32
    listed = doc(cli(data, "webhooks", "list", "--json"))
    assert [(h["name"], h["secret"]) for h in listed] == [("ci", None)]
    paused = doc(cli(data, "webhooks", "update", "ci", "--pause", "--json"))
    assert paused["active"] is False and paused["secret"] is None
    shown = cli(data, "webhooks", "show", "ci")
    assert shown.returncode == 0 and "CI trigger" in shown.stdout
    assert created["secret"] not in shown.stdout
    assert doc(cli(data, "webhooks", "deliveries", "ci", "--json")) == []
    assert doc(cli(data, "webhooks", "delete", "ci", "--json")) == {"deleted": "ci"}
    assert doc(cli(data, "webhooks", "list", "--json")) == []


def test_bad_webhook_commands_fail_with_one_clear_line(tmp_path: Path):
    data = tmp_path / "data"
    doc(cli(data, "webhooks", "create", "taken", "http://127.0.0.1:9/h", "-e", "run.*", "--json"))
    cases = {
        "must start with http:// or https://, not ftp://": (
            "create", "x", "ftp://example.com/h", "-e", "model.*",
        ),
        "at least one event type pattern": ("create", "x", "https://example.com/h"),
        "'taken' already exists": ("create", "taken", "https://example.com/h", "-e", "model.*"),
        "no webhook named 'nope'": ("show", "nope"),
        "backoff cap (0.1s) must be at least the base (1.0s)": ("run", "--backoff-max", "0.1"),
    }  # fmt: skip
    for message, args in cases.items():
        assert message in clean_error(cli(data, "webhooks", *args))


def test_ctrl_c_stops_the_dispatcher_cleanly(tmp_path: Path):
    out = tmp_path / "dispatcher.log"
    proc = start_dispatcher(tmp_path / "data", out)
    try:
        wait_until(lambda: "Ctrl-C or SIGTERM stops" in out.read_text(), 60)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert "Traceback" not in out.read_text()
    assert "webhook dispatcher stopped" in out.read_text()
