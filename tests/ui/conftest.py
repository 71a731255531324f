"""Browser tests of the web UI: a real `ledgerflow ui` process on a data directory the
session fills through the SDK, looked at with Debian's Chromium driven by Playwright (never
a downloaded browser). Each test saves a screenshot into SCREENSHOTS, which
scripts/screenshots.sh copies into docs/ui/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port, python_env
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("LEDGERFLOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = ROOT / "build" / "ui-screenshots"
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class UiServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        r = httpx.request(method, f"{self.url}/api/v1{path}", timeout=30, **kwargs)
        r.raise_for_status()
        return r.json() if r.content else None


def start_ui(data_dir: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> UiServer:
    """`ledgerflow ui` on `data_dir`, once it answers /health."""
    port = free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ledgerflow", "ui", "--port", str(port), *args],
        env=env or python_env(data_dir), stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"ledgerflow ui exited:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 90, "ledgerflow ui to answer /health")
    return UiServer(url, data_dir, process, log)


def stop(server: UiServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)


@pytest.fixture(scope="package")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A data directory with what tests/ui/fill.py logs, and its summary (ids)."""
    root = tmp_path_factory.mktemp("ui")
    data_dir = root / "data"
    out = subprocess.run(
        [sys.executable, "-m", "tests.ui.fill", str(data_dir)],
        cwd=ROOT, env=python_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return data_dir, json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="package")
def ui(filled: tuple[Path, dict[str, Any]]) -> Iterator[UiServer]:
    data_dir, _ = filled
    server = start_ui(data_dir, data_dir.parent / "ui.log")
    yield server
    stop(server)


@pytest.fixture(scope="package")
def ids(filled: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return filled[1]


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One Chromium for the browser tests, closed when they end: Playwright's sync API keeps
    an event loop running on the main thread while it is open, and later tests that call
    asyncio.run() there would fail."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shot(page: Any, name: str) -> None:
    """Save what the page shows as SCREENSHOTS/NAME.png (docs/ui.md shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
