"""The end of `ledgerflow demo`'s summary: how to look at what it made in the web UI."""

from __future__ import annotations

from rich.console import Console

from ledgerflow.demo.summary import _print_web_ui


def _printed(*args: object) -> str:
    console = Console(record=True, width=60)
    _print_web_ui(console, *args)  # type: ignore[arg-type]
    return console.export_text()


def test_on_a_data_directory_the_demo_says_to_run_ledgerflow_ui_and_which_url_to_open() -> None:
    text = _printed("ledgerflow", "/tmp/a-rather-long-path/to/the/demo-data", False, "42")
    assert "ledgerflow --tracking-uri /tmp/a-rather-long-path/to/the/demo-data ui" in text
    assert "http://127.0.0.1:5000/experiments/42/runs" in text


def test_on_a_server_the_demo_points_at_the_servers_own_web_ui() -> None:
    text = _printed("ledgerflow", "http://gateway:8080/", True, "7")
    assert "open http://gateway:8080/experiments/7/runs" in text
    assert " ui" not in text.replace("web UI", "")
