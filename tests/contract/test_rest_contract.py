"""The REST API does what its OpenAPI document says: Schemathesis, run as its own CLI
against a real `ledgerflow server`, generates requests from the document (examples,
boundary and negative cases, random fuzzing, and stateful sequences that follow the links
it infers from create to read routes) and checks every answer: no 5xx, only documented
status codes and bodies, schema-valid input accepted and schema-violating input refused,
405 with a correct `Allow` for methods a path lacks.

`tests/contract/schemathesis.toml` lists the few operations that may also refuse
schema-valid input, each with the reason. The seed is fixed so a failure replays; set
LEDGERFLOW_CONTRACT_SEED to explore another schedule, LEDGERFLOW_CONTRACT_EXAMPLES for a
longer run (the test prints the command that reproduces it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway_fixture import GatewayProcess

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = os.environ.get("LEDGERFLOW_CONTRACT_SEED", "20261205")
EXAMPLES = os.environ.get("LEDGERFLOW_CONTRACT_EXAMPLES", "10")


def _st() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[test]' (it brings it)")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    here = tmp_path_factory.mktemp("contract")
    s = GatewayProcess(here / "data", here / "server.log", command="server").start()
    yield s
    s.stop()


def test_every_operation_answers_as_its_openapi_document_says(
    server: GatewayProcess, tmp_path: Path
) -> None:
    command = [
        _st(), "--config-file", str(CONFIG), "run", f"{server.url}/openapi.json",
        "--checks", "all", "--max-examples", EXAMPLES, "--seed", SEED,
        "--request-timeout", "30", "--no-color",
    ]  # fmt: skip
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False
    )
    report = out.stdout + out.stderr
    assert out.returncode == 0, (
        f"schemathesis found contract failures (seed {SEED}); reproduce against a server "
        f"with: {' '.join(command)}\n{report[-20000:]}\nserver log:\n{server.output()[-3000:]}"
    )
    tested = re.search(r"Tested: (\d+)", report)
    assert tested is not None and int(tested.group(1)) >= 100, report[-3000:]  # every route
    assert re.search(r"Stateful \(in ", report), report[-3000:]  # the linked sequences ran
