"""A model server's background threads (the alias follower here; a replica's deployment
follower and traffic recorder are watched alike) are watched: one that dies makes the
server not ready, so a load balancer stops sending it requests before it exits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledgerflow.events import model_payloads as m
from ledgerflow.events.envelope import Event
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.serving.app import create_app
from ledgerflow.services.serving.labels import Aliases
from ledgerflow.services.serving.repository import ModelRepository
from ledgerflow.services.watchdog import Watchdog
from tests.integration.faults import BreakingLog


class Echo:
    """The least a predictor is: it answers what it is given."""

    platform, inputs, outputs, input_schema = "echo", [], [], None

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        return data

    def assemble(self, tensors: dict[str, Any]) -> Any:
        return tensors

    def warmup_input(self) -> Any | None:
        return None

    def model_params(self, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        return None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the point
def test_a_dead_alias_follower_makes_the_model_server_not_ready(tmp_path: Path) -> None:
    inner = SQLiteEventLog(tmp_path / "events.db")
    log = BreakingLog(inner)
    dog = Watchdog()
    aliases = Aliases(log).start()
    dog.expect("alias follower", aliases.alive, every_s=0.05)
    repository = ModelRepository(aliases=aliases, watchdog=dog)
    served = repository.add("m", Echo())
    app = create_app(repository)

    async def ready() -> int:
        await served.warm()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as http:
            return (await http.get("/v2/health/ready")).status_code

    try:
        assert asyncio.run(ready()) == 200
        log.broken.set()
        inner.append([Event.of(m.ModelAliasSet(name="m", alias="prod", version=1))])
        deadline = time.monotonic() + 10
        while not dog.failures and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(dog.failures) == {"alias follower"}
        assert not repository.ready
        assert asyncio.run(ready()) == 503
    finally:
        dog.join(5)
        aliases.stop()
        inner.close()
